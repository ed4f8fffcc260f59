import { createServer } from 'node:http';
import Koa from 'koa';
import { MemoryLogStore, SwitchyardOptionsError, type LogEvent } from '@switchyard/core';
import { fallbackMiddleware, logsMiddleware } from '@switchyard/koa';
import { replies } from '@switchyard/testing';
import { listen, type RunningApp } from '../../e2e/src/support/adapters';
import { messages, sdk, seedOptions, startUpstreams, until, type Upstreams } from '../../e2e/src/support/fixture';

const TOKEN = 'koa-logs-token-0123456789';

describe('logs endpoint (Koa)', () => {
  let up: Upstreams;
  let app: RunningApp;
  const logs: LogEvent[] = [];
  const store = new MemoryLogStore();

  beforeAll(async () => {
    up = await startUpstreams();
    const koa = new Koa();
    koa.use(fallbackMiddleware(seedOptions(up, logs, { logSinks: [store] })));
    koa.use(logsMiddleware({ path: '/switchyard/logs/', store, token: TOKEN, viewer: true }));
    koa.use((ctx) => {
      ctx.body = { host: ctx.path };
    });
    app = await listen(createServer(koa.callback()));
  });
  afterAll(async () => {
    await app.close();
    await up.close();
  });

  it('serves the API and the viewer under its path, and leaves every other path to the app', async () => {
    up.openai.enqueue(replies.rateLimited());
    await sdk(app.url, { 'x-switchyard-trace-id': 'koa-fell-back' }).chat.completions.create({ model: 'gpt-4o', messages });
    await until(() => logs.length === 1);

    const res = await fetch(`${app.url}/switchyard/logs/api/requests?traceId=koa-fell-back`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const page = (await res.json()) as { data: LogEvent[] };
    expect(page.data).toHaveLength(1);
    expect(page.data[0]).toMatchObject({ fallback: true, servedBy: { provider: 'azure-openai' } });

    expect((await fetch(`${app.url}/switchyard/logs/api/requests`)).status).toBe(401);
    const viewer = await fetch(`${app.url}/switchyard/logs`);
    expect([viewer.status, viewer.headers.get('content-type')]).toEqual([200, 'text/html; charset=utf-8']);
    expect(await (await fetch(`${app.url}/switchyard/logsx`)).json()).toEqual({ host: '/switchyard/logsx' });
    expect(await (await fetch(`${app.url}/switchyard/logs/host-route`)).json()).toEqual({ host: '/switchyard/logs/host-route' });
    expect(await (await fetch(`${app.url}/health`)).json()).toEqual({ host: '/health' });
  });

  it("answers any method but GET and HEAD with a 405 in OpenAI's envelope, as on Express (the README: every platform)", async () => {
    for (const method of ['POST', 'DELETE', 'PUT']) {
      const res = await fetch(`${app.url}/switchyard/logs/api/requests`, { method, headers: { authorization: `Bearer ${TOKEN}` } });
      expect([res.status, res.headers.get('allow'), await res.json()]).toEqual([405, 'GET, HEAD', { error: expect.objectContaining({ code: 'method_not_allowed', type: 'invalid_request_error' }) }]);
    }
    const head = await fetch(`${app.url}/switchyard/logs/api/requests`, { method: 'HEAD', headers: { authorization: `Bearer ${TOKEN}` } });
    expect([head.status, await head.text()]).toEqual([200, '']);
  });

  it("gives the auth hook Koa's context, so the host's session decides", async () => {
    const koa = new Koa();
    koa.use(async (ctx, next) => {
      ctx.state.user = ctx.get('x-user') === 'admin' ? { admin: true } : null;
      await next();
    });
    koa.use(logsMiddleware({ path: '/logs', store, auth: (ctx) => ctx.state.user?.admin === true }));
    const own = await listen(createServer(koa.callback()));
    try {
      expect((await fetch(`${own.url}/logs/api/requests`, { headers: { 'x-user': 'admin' } })).status).toBe(200);
      expect((await fetch(`${own.url}/logs/api/requests`, { headers: { 'x-user': 'guest' } })).status).toBe(403);
    } finally {
      await own.close();
    }
  });

  it('is done when its answer is written: middleware in front that handles 404s after next() leaves it alone', async () => {
    const koa = new Koa();
    const seen: number[] = [];
    koa.use(async (ctx, next) => {
      await next();
      seen.push(ctx.status);
      if (ctx.status === 404 && !ctx.body) ctx.throw(404, 'app not found');
    });
    // An async hook keeps the answer pending after the middleware's first await.
    koa.use(logsMiddleware({ path: '/logs', store, auth: async () => new Promise<boolean>((r) => setTimeout(() => r(true), 20)) }));
    const own = await listen(createServer(koa.callback()));
    try {
      const res = await fetch(`${own.url}/logs/api/requests`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ data: expect.any(Array) });
      expect(seen).toEqual([200]); // what went out, as an access log in front would record it
    } finally {
      await own.close();
    }
  });

  it("answers through Koa, so middleware in front still sets headers and cookies after next() (koa-session's rolling cookie)", async () => {
    const koa = new Koa();
    const errors: string[] = [];
    koa.on('error', (err: Error) => errors.push(err.message));
    koa.use(async (ctx, next) => {
      const t0 = Date.now();
      await next();
      ctx.set('x-response-time', `${Date.now() - t0}ms`);
      ctx.cookies.set('sid', 'renewed', { httpOnly: true });
    });
    koa.use(logsMiddleware({ path: '/logs', store, token: TOKEN, viewer: true }));
    const own = await listen(createServer(koa.callback()));
    try {
      const answers = [
        await fetch(`${own.url}/logs/api/requests`, { headers: { authorization: `Bearer ${TOKEN}` } }),
        await fetch(`${own.url}/logs/`),
        await fetch(`${own.url}/logs/api/requests`), // refused: no token
      ];
      expect(answers.map((r) => [r.status, r.headers.get('x-response-time') !== null, r.headers.get('set-cookie')?.startsWith('sid=renewed')])).toEqual([
        [200, true, true],
        [200, true, true],
        [401, true, true],
      ]);
      expect(answers[0]!.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(await answers[0]!.json()).toMatchObject({ data: expect.any(Array) });
      expect(answers[1]!.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(answers[1]!.headers.get('content-security-policy')).toMatch(/^default-src 'none'/);
      expect(answers[2]!.headers.get('www-authenticate')).toBe('Bearer realm="switchyard-logs"');
      expect(errors).toEqual([]);
    } finally {
      await own.close();
    }
  });

  it('refuses to start without a path (it would answer every request of the app)', () => {
    const options = { store, token: TOKEN } as unknown as Parameters<typeof logsMiddleware>[0];
    expect(() => logsMiddleware(options)).toThrow(SwitchyardOptionsError);
    expect(() => logsMiddleware(options)).toThrow(/path: required/);
    expect(() => logsMiddleware({ path: 'logs', store, token: TOKEN })).toThrow(/path: must be a path starting with \//);
  });
});
