/**
 * Switchyard inside a Koa app with the middleware commonly stacked around it: an access logger and an error-catching
 * middleware in front, @koa/router or koa-mount around it, a ctx.throw(404) after. A stream must still reach the SDK
 * event by event as the upstream sends them, not at the end.
 */
import { createServer } from 'node:http';
import Router from '@koa/router';
import Koa from 'koa';
import mount from 'koa-mount';
import { fallbackMiddleware } from '@switchyard/koa';
import { replies } from '@switchyard/testing';
import { listen } from '../../e2e/src/support/adapters';
import { messages, nextLog, sdk, seedOptions, useUpstreams } from '../../e2e/src/support/fixture';

const { up, logs, track } = useUpstreams();

// The second event comes a minute after the first: a stack that held the stream back would never show the first.
const HELD_MS = 60_000;

describe.each([
  ['app.use', '', (app: Koa, mw: Koa.Middleware): void => void app.use(mw)],
  ['@koa/router route', '', (app: Koa, mw: Koa.Middleware): void => {
    const router = new Router({ prefix: '/v1' });
    router.post('/chat/completions', mw);
    app.use(router.routes());
  }],
  ["koa-mount('/api')", '/api', (app: Koa, mw: Koa.Middleware): void => void app.use(mount('/api', mw))],
] as const)('Koa, Switchyard by %s among common middleware', (_name, prefix, place) => {
  async function start(): Promise<{ url: string; access: number[]; appErrors: unknown[] }> {
    const access: number[] = [];
    const appErrors: unknown[] = [];
    const app = new Koa();
    app.on('error', (err) => appErrors.push(err));
    app.use(async (ctx, next) => {
      await next();
      access.push(ctx.status);
    });
    app.use(async (ctx, next) => {
      try {
        await next();
      } catch (err) {
        ctx.status = (err as { status?: number }).status ?? 500;
        ctx.body = { error: { message: 'host handler' } };
      }
    });
    app.use(async (ctx, next) => {
      ctx.set('x-host-before', '1');
      await next();
    });
    place(app, fallbackMiddleware(seedOptions(up, logs)));
    app.use((ctx) => ctx.throw(404, 'nothing after Switchyard'));
    const url = track(await listen(createServer(app.callback())));
    return { url: url + prefix, access, appErrors };
  }

  it('streams each event as the upstream sends it (the first while the upstream holds the next), with the host headers set in front, and logs the client leaving', async () => {
    const { url, access, appErrors } = await start();
    up.openai.enqueue(replies.stream({ chunks: ['a', 'b'], intervalMs: HELD_MS }));
    const { data: stream, response } = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages, stream: true }).withResponse();
    let text = '';
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (text) break; // the first event came while the upstream holds the next
    }
    expect(text).toBe('a');
    expect(response.headers.get('x-host-before')).toBe('1');
    expect(response.headers.get('cache-control')).toBe('no-cache, no-transform');
    const event = await nextLog(logs);
    expect(event).toMatchObject({ status: 499, stream: true, fallback: false });
    expect(access).toEqual([200]);
    expect(appErrors).toEqual([]);
  });

  it('answers JSON through the stack with its status for the access logger, after a fallback too', async () => {
    const { url, access, appErrors } = await start();
    up.openai.enqueue(replies.rateLimited(0));
    const { data, response } = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
    expect(data.choices[0]!.message.content).toBe('Hello from azure');
    expect([response.headers.get('x-host-before'), response.headers.get('x-switchyard-fallback')]).toEqual(['1', 'true']);
    expect(await nextLog(logs)).toMatchObject({ status: 200, fallback: true });
    expect(access).toEqual([200]);
    expect(appErrors).toEqual([]);
  });
});
