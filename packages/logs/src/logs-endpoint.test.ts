/**
 * The logs endpoint through real HTTP: an Express host with fallbackMiddleware writing to a store and
 * logsMiddleware reading it; the official SDK makes the requests, the fakes answer (OpenAI 429 -> Azure).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import express from 'express';
import pino from 'pino';
import { Counter, Registry } from 'prom-client';
import { MemoryLogStore, SwitchyardOptionsError, type LogEvent, type LogStore } from '@switchyard/core';
import { Gateway, fallbackMiddleware, logsMiddleware, type ExpressLogsOptions } from '@switchyard/express';
import { JsonLinesSink, SqliteLogStore, createLoggerSink, createMetricsSink } from '@switchyard/logs';
import { replies } from '@switchyard/testing';
import { listen } from '../../e2e/src/support/adapters';
import { messages, sdk, seedOptions, until, useUpstreams } from '../../e2e/src/support/fixture';

const TOKEN = 'logs-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };

describe('logs endpoint (Express)', () => {
  const { up, logs, track } = useUpstreams();
  let store: LogStore;

  beforeEach(() => {
    store = new MemoryLogStore();
  });

  async function start(options: Partial<ExpressLogsOptions> = { token: TOKEN }): Promise<string> {
    const host = express();
    host.use(fallbackMiddleware(seedOptions(up, logs, { logSinks: [store] })));
    host.use('/switchyard/logs', logsMiddleware({ store, ...options }));
    host.get('/switchyard/logs/host-route', (_req, res) => {
      res.json({ host: true });
    });
    return track(await listen(createServer(host)));
  }

  /** Two requests: one served by OpenAI, one that fell back to Azure after a 429. */
  async function traffic(url: string): Promise<void> {
    await sdk(url, { 'x-switchyard-trace-id': 'direct-1' }).chat.completions.create({ model: 'gpt-4o', messages });
    up.openai.enqueue(replies.rateLimited());
    await sdk(url, { 'x-switchyard-trace-id': 'fell-back-1' }).chat.completions.create({ model: 'gpt-4o', messages });
    await until(() => logs.length === 2);
  }

  it('lists requests newest first, filters them, and returns one with every attempt', async () => {
    const url = await start();
    await traffic(url);
    const list = await fetch(`${url}/switchyard/logs/api/requests`, { headers: auth });
    expect(list.status).toBe(200);
    expect(list.headers.get('cache-control')).toBe('no-store');
    expect(list.headers.get('x-content-type-options')).toBe('nosniff');
    const page = (await list.json()) as { data: LogEvent[]; nextCursor: string | null };
    expect(page.data.map((e) => e.traceId)).toEqual(['fell-back-1', 'direct-1']);
    expect(page.nextCursor).toBeNull();

    const fellBack = (await (await fetch(`${url}/switchyard/logs/api/requests?fallback=true&status=2xx&provider=azure-openai`, { headers: auth })).json()) as { data: LogEvent[] };
    expect(fellBack.data.map((e) => e.traceId)).toEqual(['fell-back-1']);
    // A status class in capitals is the same class; HEAD is answered as GET is, without a body.
    const capitals = (await (await fetch(`${url}/switchyard/logs/api/requests?status=2XX&fallback=true`, { headers: auth })).json()) as { data: LogEvent[] };
    expect(capitals.data.map((e) => e.traceId)).toEqual(['fell-back-1']);
    const head = await fetch(`${url}/switchyard/logs/api/requests`, { method: 'HEAD', headers: auth });
    expect([head.status, head.headers.get('content-type'), await head.text()]).toEqual([200, expect.stringContaining('application/json'), '']);
    // The totals of a search, over every match (not a page).
    const totals = (await (await fetch(`${url}/switchyard/logs/api/summary?failedProvider=openai`, { headers: auth })).json()) as { requests: number; fallbacks: number };
    expect([totals.requests, totals.fallbacks]).toEqual([1, 1]);
    const paged = await fetch(`${url}/switchyard/logs/api/summary?limit=5`, { headers: auth });
    expect([paged.status, ((await paged.json()) as { error: { param: string } }).error.param]).toEqual([400, 'limit']);
    // Who paid a failed OpenAI attempt, whoever served it then.
    const failedAtOpenAI = (await (await fetch(`${url}/switchyard/logs/api/requests?failedProvider=openai&failedStatus=4xx`, { headers: auth })).json()) as { data: LogEvent[] };
    expect(failedAtOpenAI.data.map((e) => e.traceId)).toEqual(['fell-back-1']);
    const by503 = (await (await fetch(`${url}/switchyard/logs/api/requests?failedStatus=503`, { headers: auth })).json()) as { data: LogEvent[] };
    expect(by503.data).toEqual([]);
    // A failure with no status (the connection reset) is found by its error code.
    up.openai.enqueue({ reset: true });
    await sdk(url, { 'x-switchyard-trace-id': 'reset-1' }).chat.completions.create({ model: 'gpt-4o', messages });
    await until(() => logs.length === 3);
    const unreachable = (await (await fetch(`${url}/switchyard/logs/api/requests?failedError=upstream_unreachable&failedProvider=openai`, { headers: auth })).json()) as { data: LogEvent[] };
    expect(unreachable.data.map((e) => e.traceId)).toEqual(['reset-1']);

    const one = await fetch(`${url}/switchyard/logs/api/requests/${fellBack.data[0]!.requestId}`, { headers: auth });
    expect(await one.json()).toMatchObject({
      traceId: 'fell-back-1',
      fallback: true,
      attempts: [{ provider: 'openai', status: 429 }, { provider: 'azure-openai', status: 200 }],
    });
    const body = JSON.stringify(page);
    for (const secret of ['sk-openai-secret-0001', 'azure-secret-0002', 'sk-client-never-forwarded']) expect(body).not.toContain(secret);
  });

  it('pages with nextCursor over HTTP', async () => {
    const url = await start();
    await traffic(url);
    const first = (await (await fetch(`${url}/switchyard/logs/api/requests?limit=1`, { headers: auth })).json()) as { data: LogEvent[]; nextCursor: string };
    expect(first.data.map((e) => e.traceId)).toEqual(['fell-back-1']);
    const second = (await (await fetch(`${url}/switchyard/logs/api/requests?limit=1&cursor=${first.nextCursor}`, { headers: auth })).json()) as { data: LogEvent[]; nextCursor: string | null };
    expect([second.data.map((e) => e.traceId), second.nextCursor]).toEqual([['direct-1'], null]);
  });

  it('answers bad parameters and unknown ids in OpenAI\'s error envelope', async () => {
    const url = await start();
    const bad = await fetch(`${url}/switchyard/logs/api/requests?status=9xx`, { headers: auth });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: { message: expect.stringContaining('status'), type: 'invalid_request_error', param: 'status', code: 'invalid_query' } });
    const unknown = await fetch(`${url}/switchyard/logs/api/requests?traceid=x`, { headers: auth });
    expect(await unknown.json()).toMatchObject({ error: { param: 'traceid', code: 'invalid_query' } });
    const limit = await fetch(`${url}/switchyard/logs/api/requests?limit=abc`, { headers: auth });
    expect([limit.status, ((await limit.json()) as { error: { param: string } }).error.param]).toEqual([400, 'limit']);
    // Numbers as people write them: not what Number() also reads (hex, exponents, padding), nor a hand-made cursor.
    const cursor = (text: string) => Buffer.from(text).toString('base64url');
    for (const [query, param] of [['limit=0x10', 'limit'], ['limit=1e2', 'limit'], ['limit=%2010', 'limit'], ['minCostUsd=0x1', 'minCostUsd'], [`cursor=${cursor('0x10|x')}`, 'cursor'], [`cursor=${cursor(' |x')}`, 'cursor']]) {
      const res = await fetch(`${url}/switchyard/logs/api/requests?${query}`, { headers: auth });
      expect([res.status, ((await res.json()) as { error: { param: string } }).error.param]).toEqual([400, param]);
    }
    expect((await fetch(`${url}/switchyard/logs/api/requests?limit=10&minCostUsd=0.5&maxTokens=100`, { headers: auth })).status).toBe(200);
    expect((await fetch(`${url}/switchyard/logs/api/requests?minCostUsd=.5`, { headers: auth })).status).toBe(200);
    // What is wrong is said: an exponent, a number too large, or an empty range (as from after to is).
    const said = async (query: string) => ((await (await fetch(`${url}/switchyard/logs/api/requests?${query}`, { headers: auth })).json()) as { error: { message: string; param: string } }).error;
    expect(await said('minCostUsd=1e-3')).toEqual(expect.objectContaining({ param: 'minCostUsd', message: expect.stringContaining('plain digits') }));
    expect(await said(`minTokens=${'9'.repeat(400)}`)).toEqual(expect.objectContaining({ param: 'minTokens', message: 'minTokens is too large.' }));
    expect(await said('minCostUsd=0.02&maxCostUsd=0.01')).toEqual(expect.objectContaining({ param: 'minCostUsd', message: 'minCostUsd must not be more than maxCostUsd.' }));
    expect(await said('minTokens=5&maxTokens=1')).toEqual(expect.objectContaining({ param: 'minTokens' }));
    // An offset's + that was not encoded arrives as a space: the message says what to send.
    const plus = await fetch(`${url}/switchyard/logs/api/requests?from=2026-11-26T09:00+02:00`, { headers: auth });
    expect(((await plus.json()) as { error: { message: string } }).error.message).toMatch(/ISO 8601 date .*%2B/);
    // Only epoch ms or ISO 8601 (Date.parse alone reads "foo 2024" as a date), and each parameter once.
    // Nor a date that does not exist (Date.parse would roll February 30 over into March).
    const impossible = [['from=2026-02-30', 'from'], ['to=2026-02-31T10:00', 'to'], ['from=2026-04-31', 'from'], ['to=2026-01-01T24:00', 'to']];
    for (const [query, param] of [['from=foo%202024', 'from'], ['to=2024-13-01', 'to'], ['status=429&status=5xx', 'status'], ...impossible]) {
      const res = await fetch(`${url}/switchyard/logs/api/requests?${query}`, { headers: auth });
      expect([res.status, ((await res.json()) as { error: { param: string } }).error.param]).toEqual([400, param]);
    }
    const iso = await fetch(`${url}/switchyard/logs/api/requests?from=2024-01-01T00:00:00Z&to=${Date.now()}`, { headers: auth });
    expect(iso.status).toBe(200);
    expect((await fetch(`${url}/switchyard/logs/api/requests?from=2024-02-29`, { headers: auth })).status).toBe(200); // a leap day
    // A date-time without an offset is UTC, whatever the server's time zone: read in a process set to New York's
    // (jest's process.env is a copy), from the source itself (transpiled as it loads, so no stale build can answer).
    const source = resolve(__dirname, '../../core/src/logs/log-query.ts');
    const script = `const ts = require(${JSON.stringify(require.resolve('typescript'))});
      require.extensions['.ts'] = (m, file) => m._compile(ts.transpileModule(require('fs').readFileSync(file, 'utf8'), { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText, file);
      const { normalizeLogQuery, parseLogQuery } = require(${JSON.stringify(source)});
      const q = (from) => normalizeLogQuery(parseLogQuery(new URLSearchParams({ from }))).from;
      const t = (to) => normalizeLogQuery(parseLogQuery(new URLSearchParams({ to }))).to;
      console.log(JSON.stringify([q('2026-11-26T09:00'), q('2026-11-26T09:00:00.5'), q('2026-11-26T09:00+02:00'), q('2026-11-26'),
        t('2026-11-26'), t('2026-11-26T09:00'), t('2026-11-26T09:00:07'), t('2026-11-26T09:00:07.5'), t('2026-11-26T09:00+02:00')]));`;
    const out = execFileSync(process.execPath, ['-e', script], { env: { ...process.env, TZ: 'America/New_York' }, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual([Date.UTC(2026, 10, 26, 9), Date.UTC(2026, 10, 26, 9, 0, 0, 500), Date.UTC(2026, 10, 26, 7), Date.UTC(2026, 10, 26),
      // An inclusive `to` of a day, minute or second means up to its last millisecond; a fraction is an exact instant.
      Date.UTC(2026, 10, 27) - 1, Date.UTC(2026, 10, 26, 9, 1) - 1, Date.UTC(2026, 10, 26, 9, 0, 8) - 1, Date.UTC(2026, 10, 26, 9, 0, 7, 500), Date.UTC(2026, 10, 26, 7, 1) - 1]);
    // One request's record takes no parameters: one given is refused, as on the list, not ignored.
    const stray = await fetch(`${url}/switchyard/logs/api/requests/nope?foo=1`, { headers: auth });
    expect([stray.status, ((await stray.json()) as { error: { param: string } }).error.param]).toEqual([400, 'foo']);
    const missing = await fetch(`${url}/switchyard/logs/api/requests/nope`, { headers: auth });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: 'not_found', param: 'requestId' } });
    const post = await fetch(`${url}/switchyard/logs/api/requests`, { method: 'POST', headers: auth });
    expect([post.status, post.headers.get('allow')]).toEqual([405, 'GET, HEAD']);
  });

  it('needs the token for the API: 401 without it or with a wrong one', async () => {
    const url = await start();
    await traffic(url);
    const none = await fetch(`${url}/switchyard/logs/api/requests`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await none.json()).toMatchObject({ error: { code: 'unauthorized', type: 'authentication_error' } });
    const wrong = await fetch(`${url}/switchyard/logs/api/requests`, { headers: { authorization: 'Bearer wrong-token-0123456789' } });
    expect(wrong.status).toBe(401);
    const one = await fetch(`${url}/switchyard/logs/api/requests/${logs[0]!.requestId}`);
    expect(one.status).toBe(401);
    // RFC 9110 11.1: the auth scheme is case-insensitive (`bearer`, as some clients and proxies send it).
    const lower = await fetch(`${url}/switchyard/logs/api/requests`, { headers: { authorization: `bearer ${TOKEN}` } });
    expect(lower.status).toBe(200);
    // In its own header (what the viewer sends), beside a proxy's own login in Authorization (nginx's auth_basic).
    const basic = { authorization: `Basic ${Buffer.from('ops:proxy-password').toString('base64')}` };
    const own = await fetch(`${url}/switchyard/logs/api/requests`, { headers: { ...basic, 'x-switchyard-logs-token': TOKEN } });
    expect(own.status).toBe(200);
    const ownWrong = await fetch(`${url}/switchyard/logs/api/requests`, { headers: { ...basic, 'x-switchyard-logs-token': 'wrong-token-0123456789' } });
    expect(ownWrong.status).toBe(401);
  });

  it('lets an auth hook decide (403 when it refuses), and keeps host routes under the mount path working', async () => {
    // Express's own request (its `get`), as a session check would read `req.session`.
    const url = await start({ auth: (req) => req.get('x-admin') === 'yes' });
    await traffic(url);
    const refused = await fetch(`${url}/switchyard/logs/api/requests`);
    expect([refused.status, await refused.json()]).toEqual([403, { error: expect.objectContaining({ type: 'permission_error', code: 'forbidden' }) }]);
    expect((await fetch(`${url}/switchyard/logs/api/requests`, { headers: { 'x-admin': 'yes' } })).status).toBe(200);
    // Only `true` lets a request through: a hook from plain JS that returns the user, or the string "false", refuses.
    const loose = await start({ auth: ((req: { get(name: string): string | undefined }) => req.get('x-user') ?? 'false') as never });
    expect((await fetch(`${loose}/switchyard/logs/api/requests`)).status).toBe(403);
    expect((await fetch(`${loose}/switchyard/logs/api/requests`, { headers: { 'x-user': 'ops' } })).status).toBe(403);
    // With a token too, a Bearer that is not it may be the host's own (a JWT the hook reads): still a 403, whose
    // message says the token did not match either (an admin's typo).
    const both = await start({ token: TOKEN, auth: (req) => req.get('x-admin') === 'yes' });
    const wrong = await fetch(`${both}/switchyard/logs/api/requests`, { headers: { authorization: 'Bearer wrong-token-0123456789' } });
    expect([wrong.status, ((await wrong.json()) as { error: { message: string } }).error.message]).toEqual([403, expect.stringContaining('not the logs token either')]);
    const none = await fetch(`${both}/switchyard/logs/api/requests`);
    expect([none.status, ((await none.json()) as { error: { message: string } }).error.message]).toEqual([403, 'You may not see these logs.']);
    expect((await fetch(`${both}/switchyard/logs/api/requests`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect(await (await fetch(`${url}/switchyard/logs/host-route`)).json()).toEqual({ host: true });
  });

  it('serves the viewer only when enabled, with a strict CSP; with a token only, the page is a data-free shell', async () => {
    const off = await start();
    expect((await fetch(`${off}/switchyard/logs/`)).status).toBe(404);
    const on = await start({ token: TOKEN, viewer: true });
    const page = await fetch(`${on}/switchyard/logs/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = page.headers.get('content-security-policy')!;
    const nonce = /'nonce-([^']+)'/.exec(csp)![1]!;
    const html = await page.text();
    expect(html).toContain(`<script nonce="${nonce}">`);
    expect(csp).toContain("default-src 'none'");
    // The page can be neither framed (clickjacking a token typed into it) nor made to post or rebase its links.
    for (const directive of ["frame-ancestors 'none'", "form-action 'none'", "base-uri 'none'"]) expect(csp).toContain(directive);
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(html).not.toContain(TOKEN);
    const guarded = await start({ auth: () => false, viewer: true });
    expect((await fetch(`${guarded}/switchyard/logs/`)).status).toBe(403);
  });

  it("answers 501 for a summary when the host's own store has no summarize (it is optional), and lists as ever", async () => {
    const memory = new MemoryLogStore();
    store = { write: (e) => memory.write(e), query: (q) => memory.query(q), get: (id) => memory.get(id) };
    const url = await start();
    await traffic(url);
    const res = await fetch(`${url}/switchyard/logs/api/summary`, { headers: auth });
    expect([res.status, ((await res.json()) as { error: { code: string } }).error.code]).toEqual([501, 'not_implemented']);
    expect(((await (await fetch(`${url}/switchyard/logs/api/requests`, { headers: auth })).json()) as { data: unknown[] }).data).toHaveLength(2);
  });

  it('says once when given path beside an Express mount at that path (the API would sit at it twice over), and serves without it', async () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const doubled = await start({ token: TOKEN, path: '/switchyard/logs' });
      for (let i = 0; i < 2; i++) expect((await fetch(`${doubled}/switchyard/logs/api/requests`, { headers: auth })).status).toBe(404);
      expect(warn.mock.calls.map(([message]) => String(message))).toEqual([
        "Switchyard's logsMiddleware, mounted at /switchyard/logs, has the option path: '/switchyard/logs', which Express already cut from the path it passes on: leave path out (app.use('/switchyard/logs', ...) places it); the request went on to next()",
      ]);
      const right = await start();
      expect((await fetch(`${right}/switchyard/logs/api/requests`, { headers: auth })).status).toBe(200);
      expect(warn.mock.calls).toHaveLength(1);
    } finally {
      warn.mockRestore();
    }
  });

  it('refuses to start without auth, token or allowUnauthenticated, with a short token, or with contradictory checks', () => {
    expect(() => logsMiddleware({ store })).toThrow(SwitchyardOptionsError);
    expect(() => logsMiddleware({ store })).toThrow(/auth: the logs are private/);
    expect(() => logsMiddleware({ store, token: 'short' })).toThrow(/token: must be a string of at least 16 characters/);
    // HTTP drops blanks around a header value: a token read from a file with its newline could never match.
    expect(() => logsMiddleware({ store, token: 'a-token-of-16-chars-or-more\n' })).toThrow(/token: must not start or end with whitespace/);
    expect(() => logsMiddleware({ store, token: 'geheim-schlüssel-€-0123456789' })).toThrow(/token: must be printable ASCII/);
    expect(() => logsMiddleware({ store, allowUnauthenticated: true })).not.toThrow();
    // From plain JS, a misspelt key would leave the page off or a check out: refused, as the engine's options are.
    const misspelt = { store, token: 'a-token-of-16-chars-or-more', veiwer: true } as Parameters<typeof logsMiddleware>[0];
    expect(() => logsMiddleware(misspelt)).toThrow(/veiwer: unknown option/);
    // It would skip the token's check: a contradiction, refused rather than resolved silently.
    expect(() => logsMiddleware({ store, allowUnauthenticated: true, token: 'a-token-of-16-chars-or-more' })).toThrow(/allowUnauthenticated: cannot be combined/);
    // A string from the environment ("false") would read as true and skip the token's check: only booleans pass.
    const fromEnv = (value: string) => value as unknown as boolean;
    expect(() => logsMiddleware({ store, token: 'a-token-of-16-chars-or-more', allowUnauthenticated: fromEnv('false') })).toThrow(/allowUnauthenticated: must be true or false/);
    expect(() => logsMiddleware({ store, token: 'a-token-of-16-chars-or-more', viewer: fromEnv('false') })).toThrow(/viewer: must be true or false/);
  });

  it('answers 500 internal_error when the store or the auth hook throws, the details only in a process warning', async () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const secret = 'SQLITE_CORRUPT at /srv/secret/path.db';
      store = { write: () => {}, query: () => Promise.reject(new Error(secret)), get: () => Promise.reject(new Error(secret)), summarize: () => Promise.reject(new Error(secret)) };
      const url = await start();
      for (const path of ['api/requests', 'api/requests/some-id', 'api/summary']) {
        const res = await fetch(`${url}/switchyard/logs/${path}`, { headers: auth });
        const text = await res.text();
        expect([res.status, JSON.parse(text)]).toEqual([500, { error: { message: 'The logs could not be read.', type: 'api_error', param: null, code: 'internal_error' } }]);
        expect(text).not.toContain('secret');
      }
      const hook = await start({ auth: () => { throw new Error('session store down'); } });
      const refused = await fetch(`${hook}/switchyard/logs/api/requests`);
      expect([refused.status, ((await refused.json()) as { error: { code: string } }).error.code]).toEqual([500, 'internal_error']);
      const asyncHook = await start({ auth: async () => { throw new Error('session store down'); } });
      expect((await fetch(`${asyncHook}/switchyard/logs/api/requests`)).status).toBe(500);
      const said = warn.mock.calls.map(([message]) => String(message));
      expect(said.filter((m) => m.includes(secret))).toHaveLength(3);
      expect(said.filter((m) => m.includes('session store down'))).toHaveLength(2);
    } finally {
      warn.mockRestore();
    }
  });

  it('takes an auth hook that returns a Promise<boolean> (a session looked up asynchronously)', async () => {
    const url = await start({ auth: async (req) => { await new Promise((r) => setImmediate(r)); return req.get('x-admin') === 'yes'; } });
    expect((await fetch(`${url}/switchyard/logs/api/requests`)).status).toBe(403);
    expect((await fetch(`${url}/switchyard/logs/api/requests`, { headers: { 'x-admin': 'yes' } })).status).toBe(200);
  });

  it('refuses allowUnauthenticated beside an auth hook (it would skip it), as beside a token', () => {
    expect(() => logsMiddleware({ store, allowUnauthenticated: true, auth: () => false })).toThrow(/allowUnauthenticated: cannot be combined with `auth` or `token`/);
  });

  it('pages 50 requests by default and at most 500, over HTTP', async () => {
    const memory = new MemoryLogStore();
    for (let i = 0; i < 501; i++) {
      memory.write({ traceId: `t-${i}`, requestId: `r-${String(i).padStart(4, '0')}`, configId: null, startedAt: 1_700_000_000_000 + i, durationMs: 1, status: 200, stream: false,
        fallback: false, model: 'gpt-4o', servedBy: null, attempts: [], usage: null, costUsd: null });
    }
    store = memory;
    const url = await start();
    const page = (await (await fetch(`${url}/switchyard/logs/api/requests`, { headers: auth })).json()) as { data: LogEvent[]; nextCursor: string | null };
    expect([page.data.length, page.data[0]!.traceId, page.nextCursor === null]).toEqual([50, 't-500', false]);
    const most = (await (await fetch(`${url}/switchyard/logs/api/requests?limit=500`, { headers: auth })).json()) as { data: LogEvent[] };
    expect(most.data).toHaveLength(500);
    const over = await fetch(`${url}/switchyard/logs/api/requests?limit=501`, { headers: auth });
    expect([over.status, ((await over.json()) as { error: { param: string } }).error]).toEqual([400, expect.objectContaining({ param: 'limit', message: 'limit must be an integer from 1 to 500.' })]);
  });
});

/**
 * packages/logs/README.md's host, as written there (a port-0 loopback listen instead of 3000, the fakes' virtual
 * keys, pino to a captured stream instead of stdout, isAdmin a header check, the shutdown called rather than bound to
 * a signal), with the README's lost-events Counter on the same registry.
 */
describe("the logs README's example host", () => {
  const { up } = useUpstreams();
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'switchyard-readme-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('serves, logs to SQLite, JSON lines, pino and /metrics, shows the logs to an admin, and writes everything on shutdown', async () => {
    const { virtualKeys, config } = seedOptions(up, []);
    const isAdmin = (req: express.Request) => req.get('x-admin') === 'yes';
    const records: Array<{ traceId: string; msg: string }> = [];
    const destination = new Writable({ write(chunk: Buffer, _enc, done) { records.push(JSON.parse(chunk.toString())); done(); } });

    const store = new SqliteLogStore({ path: join(dir, 'switchyard-logs.db') });
    const jsonl = new JsonLinesSink({ path: join(dir, 'requests.jsonl') });
    const registry = new Registry();
    const gateway = new Gateway({
      virtualKeys, config,
      logSinks: [store, jsonl, createLoggerSink(pino({}, destination)), createMetricsSink({ registry })],
    });
    const app = express();
    let stopping = false;
    app.use((req, res, next) => { // answers close their connection once stopping (main README: Shutdown)
      if (stopping) res.setHeader('connection', 'close');
      next();
    });
    app.use(fallbackMiddleware(gateway));
    app.use('/switchyard/logs', logsMiddleware({ store, auth: (req) => isAdmin(req), viewer: true }));
    app.get('/metrics', async (_req, res) => res.type(registry.contentType).send(await registry.metrics()));
    const server = app.listen(0, '127.0.0.1');
    async function shutdown(): Promise<void> {
      stopping = true;
      const closed = new Promise((resolve) => server.close(resolve));
      const cap = setTimeout(() => server.closeAllConnections(), 20_000);
      await closed;
      clearTimeout(cap);
      await gateway.drain();
      await Promise.all([store.close(), jsonl.close()]);
    }
    // The README's Counter of lost events, read when Prometheus scrapes.
    new Counter({
      name: 'switchyard_log_events_lost_total', help: 'Log events a store or sink dropped or failed to write', labelNames: ['sink'],
      registers: [registry],
      collect() {
        this.reset();
        this.inc({ sink: 'sqlite' }, store.dropped + store.failed);
        this.inc({ sink: 'jsonl' }, jsonl.dropped);
      },
    });

    await new Promise((r) => server.once('listening', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    up.openai.enqueue(replies.rateLimited());
    const answer = await sdk(url, { 'x-switchyard-trace-id': 'readme-1' }).chat.completions.create({ model: 'gpt-4o', messages });
    expect(answer.choices[0]!.message.content).toBe('Hello from azure');
    await sdk(url, { 'x-switchyard-trace-id': 'readme-2' }).chat.completions.create({ model: 'gpt-4o', messages });

    // What the logs show an admin (and nobody else), the viewer page included.
    await until(() => store.written + store.queued === 2);
    expect((await fetch(`${url}/switchyard/logs/api/requests`)).status).toBe(403);
    const listed = (await (await fetch(`${url}/switchyard/logs/api/requests?fallback=true`, { headers: { 'x-admin': 'yes' } })).json()) as { data: LogEvent[] };
    expect(listed.data.map((e) => e.traceId)).toEqual(['readme-1']);
    const page = await fetch(`${url}/switchyard/logs/`, { headers: { 'x-admin': 'yes' } });
    expect([page.status, page.headers.get('content-type')]).toEqual([200, expect.stringMatching(/^text\/html/)]);
    await page.text();

    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('switchyard_requests_total{provider="azure-openai",status="200",fallback="true"} 1');
    expect(metrics).toContain('switchyard_fallbacks_total{provider="azure-openai"} 1');
    expect(metrics).toContain('switchyard_log_events_lost_total{sink="sqlite"} 0');
    expect(metrics).toContain('switchyard_log_events_lost_total{sink="jsonl"} 0');

    // A last request, and the shutdown at once: the drain waits for its event, the closes write it.
    await sdk(url, { 'x-switchyard-trace-id': 'readme-3' }).chat.completions.create({ model: 'gpt-4o', messages });
    await shutdown();
    expect(server.listening).toBe(false);
    expect(records.map((r) => [r.traceId, r.msg]).sort()).toEqual([['readme-1', 'switchyard request'], ['readme-2', 'switchyard request'], ['readme-3', 'switchyard request']]);
    const lines = readFileSync(join(dir, 'requests.jsonl'), 'utf8').trimEnd().split('\n').map((l) => (JSON.parse(l) as LogEvent).traceId);
    expect(lines.sort()).toEqual(['readme-1', 'readme-2', 'readme-3']);
    const reopened = new SqliteLogStore({ path: join(dir, 'switchyard-logs.db') });
    expect((await reopened.query()).data.map((e) => e.traceId)).toEqual(['readme-3', 'readme-2', 'readme-1']);
    await reopened.close();
  });
});
