/**
 * The logs endpoint on plain node:http (`createLogsHandler` with its `path` option, no framework in front): the
 * query string's edge cases, the request id in the URL, trailing slashes, and the options a host may get wrong.
 */
import { createServer } from 'node:http';
import { MemoryLogStore, SwitchyardOptionsError, createLogsHandler, type LogEvent, type LogsHandlerOptions } from '@switchyard/core';
import { listen, type RunningApp } from '../../e2e/src/support/adapters';

const TOKEN = 'node-logs-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

let seq = 0;
function event(over: Partial<LogEvent> = {}): LogEvent {
  seq++;
  return {
    traceId: `trace-${seq}`, requestId: `req-${seq}`, configId: null, startedAt: 1_700_000_000_000 + seq * 1000, durationMs: 10, status: 200,
    stream: false, fallback: false, model: 'gpt-4o', servedBy: { target: 'targets[0]', provider: 'openai', model: 'gpt-4o' },
    attempts: [{ target: 'targets[0]', provider: 'openai', model: 'gpt-4o', status: 200, durationMs: 9 }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }, costUsd: 0.0000125, ...over,
  };
}

describe('logs endpoint (plain node:http)', () => {
  const store = new MemoryLogStore();
  const byDefault = event({ traceId: 'default-config' });
  const named = event({ traceId: 'named-config', configId: 'prod' });
  // An id from another writer: not a UUID, with a space and a character beyond ASCII, as the URL carries them encoded.
  const odd = event({ traceId: 'odd-id', requestId: 'imported req ü' });
  let app: RunningApp;
  const apps: RunningApp[] = [];

  async function start(options: Partial<LogsHandlerOptions>): Promise<string> {
    const handler = createLogsHandler({ store, token: TOKEN, ...options });
    const running = await listen(createServer((req, res) => void handler(req, res)));
    apps.push(running);
    return running.url;
  }

  beforeAll(async () => {
    for (const e of [byDefault, named, odd]) store.write(e);
    await start({ path: '/switchyard/logs' });
    app = apps[0]!;
  });
  afterAll(() => Promise.all(apps.map((a) => a.close())));

  const get = (path: string) => fetch(`${app.url}/switchyard/logs${path}`, { headers: auth });
  const traces = async (query: string) => ((await (await get(`/api/requests?${query}`)).json()) as { data: LogEvent[] }).data.map((e) => e.traceId);
  const refused = async (query: string) => {
    const res = await get(`/api/requests?${query}`);
    return [res.status, ((await res.json()) as { error: { param: string; code: string } }).error] as const;
  };

  it('reads an empty configId as the default config, and refuses what the query string cannot mean', async () => {
    expect(await traces('configId=')).toEqual(['odd-id', 'default-config']);
    expect(await traces('configId=prod')).toEqual(['named-config']);
    // A filter given empty, a boolean not spelt true or false, a hand-made cursor without a request id: said, not
    // answered with nothing (or with everything).
    expect(await refused('traceId=')).toEqual([400, expect.objectContaining({ param: 'traceId', code: 'invalid_query' })]);
    expect(await refused('fallback=yes')).toEqual([400, expect.objectContaining({ param: 'fallback' })]);
    expect(await refused('fallback=1')).toEqual([400, expect.objectContaining({ param: 'fallback' })]);
    expect(await refused('limit=1.5')).toEqual([400, expect.objectContaining({ param: 'limit' })]);
    expect(await refused(`cursor=${Buffer.from(`${named.startedAt}|`).toString('base64url')}`)).toEqual([400, expect.objectContaining({ param: 'cursor' })]);
    // Epoch ms before 1970 are still epoch ms: a lower bound there keeps every request.
    expect(await traces('from=-1000')).toEqual(['odd-id', 'named-config', 'default-config']);
  });

  it('finds a request whose id the URL carries percent-encoded, and refuses one that is not valid encoding', async () => {
    const one = await get(`/api/requests/${encodeURIComponent(odd.requestId)}`);
    expect([one.status, ((await one.json()) as LogEvent).requestId]).toEqual([200, odd.requestId]);
    const malformed = await get('/api/requests/%E0%A4%A');
    expect([malformed.status, await malformed.json()]).toEqual([400, { error: expect.objectContaining({ code: 'invalid_query', param: 'requestId' }) }]);
  });

  it('takes a trailing slash on every API path, and on the path option', async () => {
    expect((await get(`/api/requests/${byDefault.requestId}/`)).status).toBe(200);
    const summary = await get('/api/summary/');
    expect([summary.status, ((await summary.json()) as { requests: number }).requests]).toEqual([200, 3]);
    expect((await get('/api/requests/')).status).toBe(200);
    // `path: '/switchyard/logs/'` is the same mount as without its slash.
    const slashed = await start({ path: '/switchyard/logs/' });
    const res = await fetch(`${slashed}/switchyard/logs/api/requests?traceId=named-config`, { headers: auth });
    expect([res.status, ((await res.json()) as { data: LogEvent[] }).data.map((e) => e.traceId)]).toEqual([200, ['named-config']]);
  });

  it('answers a path outside its mount with a 404 when there is no next(), rather than leaving the request open', async () => {
    const res = await fetch(`${app.url}/elsewhere`, { headers: auth, signal: AbortSignal.timeout(10_000) });
    expect([res.status, await res.json()]).toEqual([404, { error: expect.objectContaining({ code: 'not_found' }) }]);
  });

  it('refuses at construction a token one character short of 16, and an auth that is not a function', () => {
    expect(() => createLogsHandler({ store, token: 'x'.repeat(15) })).toThrow(/token: must be a string of at least 16 characters/);
    expect(() => createLogsHandler({ store, token: 'x'.repeat(16) })).not.toThrow();
    // From plain JS (or a config file), `auth: true` would throw on every request instead.
    expect(() => createLogsHandler({ store, auth: true as never })).toThrow(SwitchyardOptionsError);
    expect(() => createLogsHandler({ store, auth: true as never })).toThrow(/auth: must be a function/);
  });
});
