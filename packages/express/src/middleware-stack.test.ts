/**
 * Switchyard inside an Express app with the middleware commonly stacked around it: an access logger reading
 * res.statusCode on 'finish', a rate limiter answering 429 in front, an express.Router, and an error handler after.
 * A stream must reach the SDK event by event as the upstream sends them; the host's 429 must reach the client as the
 * host's, with no upstream call and no fallback.
 */
import { createServer } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import { APIError } from 'openai';
import { fallbackMiddleware } from '@switchyard/express';
import { replies } from '@switchyard/testing';
import { listen } from '../../e2e/src/support/adapters';
import { messages, nextLog, sdk, seedOptions, useUpstreams } from '../../e2e/src/support/fixture';

const { up, logs, track } = useUpstreams();

// The second event comes a minute after the first: a stack that held the stream back would never show the first.
const HELD_MS = 60_000;

async function start(limit = 100): Promise<{ url: string; access: number[]; hostErrors: unknown[] }> {
  const access: number[] = [];
  const hostErrors: unknown[] = [];
  let seen = 0;
  const app = express();
  app.use((_req, res, next) => {
    res.on('finish', () => access.push(res.statusCode));
    next();
  });
  const api = express.Router();
  // A rate limiter as express-rate-limit answers: its own 429 before the route.
  api.use((_req, res, next) => {
    if (++seen <= limit) return next();
    res.set({ 'retry-after': '60', ratelimit: 'limit=1, remaining=0, reset=60' }).status(429).send('Too many requests, please try again later.');
  });
  api.use(fallbackMiddleware(seedOptions(up, logs, { config: { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] } })));
  app.use(api);
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    hostErrors.push(err);
    res.status(500).json({ error: { message: 'host handler' } });
  });
  return { url: track(await listen(createServer(app))), access, hostErrors };
}

it('Express: streams each event as the upstream sends it (the first while the upstream holds the next), behind a router and in front of an error handler, and logs the client leaving', async () => {
  const { url, access, hostErrors } = await start();
  up.openai.enqueue(replies.stream({ chunks: ['a', 'b'], intervalMs: HELD_MS }));
  const stream = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages, stream: true });
  let text = '';
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? '';
    if (text) break; // the first event came while the upstream holds the next
  }
  expect(text).toBe('a');
  expect(await nextLog(logs)).toMatchObject({ status: 499, stream: true, fallback: false });
  // A response the client left never finishes: an access logger on 'finish' has nothing to record.
  expect(access).toEqual([]);
  expect(hostErrors).toEqual([]);
});

it("Express: a rate limiter's 429 in front reaches the client as the host's: no upstream call, no fallback, no log event", async () => {
  const { url, access, hostErrors } = await start(0);
  const err = (await sdk(url).chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)) as APIError;
  expect(err).toBeInstanceOf(APIError);
  expect(err.status).toBe(429);
  expect(err.headers?.get('ratelimit')).toBe('limit=1, remaining=0, reset=60');
  expect(err.headers?.get('x-switchyard-attempts')).toBeNull();
  await new Promise((r) => setTimeout(r, 100));
  expect([up.openai.requests.length, up.azure.requests.length, logs.length]).toEqual([0, 0, 0]);
  expect(access).toEqual([429]);
  expect(hostErrors).toEqual([]);
});
