/**
 * Long-running behaviour: rounds of every kind of request through Express, Koa and the in-process client leave
 * nothing behind (listeners on a caller's app-wide signal, requests in flight, timers, process warnings).
 * Deterministic: counts, not timings or heap figures.
 */
import { spawnSync } from 'node:child_process';
import { getEventListeners } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Koa from 'koa';
import OpenAI from 'openai';
import { createFallbackClient, Gateway, type LogEvent } from '@switchyard/core';
import { fallbackMiddleware } from '@switchyard/express';
import { fallbackMiddleware as koaFallbackMiddleware } from '@switchyard/koa';
import { replies, startFakeAzureOpenAI, startFakeOpenAI, type FakeProvider, type FakeReply } from '@switchyard/testing';

const KINDS = ['ok', 'r429', 'retry', 'slow', 'reset', 'stream', 'cut', 'breakstream', 'abortstream', 'abortjson'] as const;
type Kind = (typeof KINDS)[number];
const STREAMS: readonly Kind[] = ['stream', 'cut', 'breakstream', 'abortstream'];

function replyFor(kind: string, content: string): FakeReply {
  switch (kind) {
    case 'r429':
      return { status: 429, headers: { 'retry-after-ms': '1' } };
    case 'retry': // a 429 the first time, then an answer
      return content.endsWith(':again') ? {} : { status: 429, headers: { 'retry-after-ms': '1' } };
    case 'slow': // past the target's request_timeout
      return { delayMs: 400 };
    case 'reset':
      return { reset: true };
    case 'cut':
      return replies.stream({ chunks: 8, cutAfter: 3 });
    case 'breakstream':
    case 'abortstream':
      return replies.stream({ chunks: 12, intervalMs: 3 });
    case 'abortjson':
      return { delayMs: 100 };
    default:
      return {};
  }
}

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
}

describe('long-running hosts', () => {
  let openai: FakeProvider;
  let azure: FakeProvider;
  const servers: Server[] = [];
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);

  beforeAll(async () => {
    [openai, azure] = await Promise.all([startFakeOpenAI(), startFakeAzureOpenAI()]);
    openai.setDefault((req) => {
      const content = String((req.body as { messages?: Array<{ content?: unknown }> }).messages?.[0]?.content ?? '');
      return replyFor(content.split(':')[0]!, content);
    });
    process.on('warning', onWarning);
  });
  afterAll(async () => {
    process.off('warning', onWarning);
    for (const s of servers) {
      s.closeAllConnections();
      s.close();
    }
    await Promise.all([openai.close(), azure.close()]);
  });

  function listen(server: Server): Promise<string> {
    servers.push(server);
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`)));
  }

  it('leaves no listener, request in flight, timer or warning behind after rounds of every kind of request, across a reload', async () => {
    const logs: LogEvent[] = [];
    const options = () => ({
      virtualKeys: {
        'openai-prod': { provider: 'openai' as const, api_key: 'sk-openai-000000000001' },
        'azure-prod': { provider: 'azure-openai' as const, api_key: 'azure-000000000002', resource_name: 'fake', deployment_id: 'gpt4o' },
      },
      config: {
        strategy: { mode: 'fallback' as const, on_status_codes: [429, 503] },
        targets: [
          { virtual_key: 'openai-prod', custom_host: openai.baseURL, request_timeout: 200, retry: { attempts: 1, on_status_codes: [429] } },
          { virtual_key: 'azure-prod', custom_host: azure.baseURL },
        ],
      },
      onLog: (e: LogEvent) => void logs.push(e),
    });
    // The README's reload recipe: wrappers that look the current gateway up at each request.
    let gateway = new Gateway(options());
    let mw = fallbackMiddleware(gateway);
    let koaMw = koaFallbackMiddleware(gateway);
    let client = createFallbackClient(gateway);
    const app = express();
    app.use((req, res, next) => mw[0](req, res, next));
    const koa = new Koa();
    koa.use((ctx, next) => koaMw(ctx, next));
    const bases = { express: await listen(createServer(app)), koa: await listen(createServer(koa.callback())) };
    const sdks = { express: new OpenAI({ baseURL: bases.express, apiKey: 'x', maxRetries: 0 }), koa: new OpenAI({ baseURL: bases.koa, apiKey: 'x', maxRetries: 0 }) };
    // One app-wide signal for every in-process call (aborted only on shutdown).
    const appWide = new AbortController();

    const one = async (kind: Kind, via: 'express' | 'koa' | 'inproc', i: number): Promise<void> => {
      const content = kind === 'retry' && i % 2 === 1 ? 'retry:again' : `${kind}:hi`;
      const stream = STREAMS.includes(kind);
      const body = { model: 'gpt-4o', messages: [{ role: 'user' as const, content }], ...(stream && { stream: true as const }) };
      const own = kind === 'abortstream' || kind === 'abortjson' ? new AbortController() : null;
      if (kind === 'abortjson') setTimeout(() => own!.abort(), 20);
      try {
        const result =
          via === 'inproc'
            ? await client.chat.completions.create(body, { signal: own?.signal ?? appWide.signal })
            : await sdks[via].chat.completions.create(body, own ? { signal: own.signal } : {});
        if (stream) {
          let n = 0;
          for await (const _ of result as AsyncIterable<unknown>) {
            if (++n === 3 && kind === 'breakstream') break;
            if (n === 3 && kind === 'abortstream') own!.abort();
          }
        }
      } catch {
        // failures are expected for some kinds
      }
    };
    const round = async () => {
      for (const via of ['express', 'koa', 'inproc'] as const) {
        for (const kind of KINDS) await Promise.all(Array.from({ length: 4 }, (_, i) => one(kind, via, i)));
      }
    };

    await round(); // warm-up: pools, keep-alive connections
    await gateway.drain();
    await until(() => openai.requests.every((r) => r.aborted || r.receivedAt < Date.now() - 500));
    await new Promise((r) => setTimeout(r, 500)); // the fakes' own delays end
    const baseline = timers();
    const loggedBefore = logs.length;

    for (let r = 0; r < 3; r++) {
      await round();
      const old = gateway;
      gateway = new Gateway(options());
      [mw, koaMw, client] = [fallbackMiddleware(gateway), koaFallbackMiddleware(gateway), createFallbackClient(gateway)];
      await old.drain();
      expect(old.requestsInFlight).toBe(0);
    }
    // Every request logged once.
    expect(logs.length - loggedBefore).toBe(3 * 3 * KINDS.length * 4);
    expect(getEventListeners(appWide.signal, 'abort')).toHaveLength(0);
    await until(() => timers() <= baseline);
    expect(timers()).toBeLessThanOrEqual(baseline);
    // Circuit/log-sink/credential warnings are Switchyard's own; none of Node's (MaxListenersExceededWarning...).
    expect(warnings.filter((w) => !w.name.startsWith('Switchyard')).map((w) => `${w.name}: ${w.message}`)).toEqual([]);
    openai.reset();
  }, 60_000);

  it('an in-process stream dropped unread (no loop, break or abort) is closed and logged 499 once nothing can read it, its listener off the app-wide signal', () => {
    // Garbage collection decides when nothing can read it: in a process of its own, run with --expose-gc, on the built
    // package. Each stream holds more than 64 KiB, so its upstream is paused (undici's body timeout then never fires).
    const script = `
      const http = require('node:http');
      const { getEventListeners } = require('node:events');
      const { createFallbackClient } = require('@switchyard/core');
      const chunk = (c) => 'data: ' + JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'gpt-4o', choices: [{ index: 0, delta: { content: c }, finish_reason: null }] }) + '\\n\\n';
      const server = http.createServer((req, res) => req.resume().on('end', () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(chunk('a'));
        res.write(chunk('b'.repeat(100000)));
      }));
      server.listen(0, '127.0.0.1', async () => {
        const statuses = [];
        const client = createFallbackClient({ virtualKeys: { o: { provider: 'openai', api_key: 'sk-0000000000000001', custom_host: 'http://127.0.0.1:' + server.address().port + '/v1' } }, config: { virtual_key: 'o' }, onLog: (e) => statuses.push(e.status) });
        const appWide = new AbortController();
        for (let i = 0; i < 5; i++) await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], stream: true }, { signal: appWide.signal });
        const held = [client.gateway.requestsInFlight, getEventListeners(appWide.signal, 'abort').length];
        for (let i = 0; i < 200 && client.gateway.requestsInFlight > 0; i++) { global.gc(); await new Promise((r) => setTimeout(r, 10)); }
        console.log(JSON.stringify({ held, inFlight: client.gateway.requestsInFlight, listeners: getEventListeners(appWide.signal, 'abort').length, statuses }));
        server.closeAllConnections();
        server.close();
      });`;
    const run = spawnSync(process.execPath, ['--expose-gc', '-e', script], { cwd: __dirname, encoding: 'utf8', timeout: 30_000 });
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual({ held: [5, 10], inFlight: 0, listeners: 0, statuses: [499, 499, 499, 499, 499] });
  });

  it("an in-process stream read by hand through its last chunk, then dropped without return() (a while loop left at finish_reason), is logged as for-await's break would be: 200, not 499", () => {
    // The README: "A loop left at the last choice's finish_reason has the whole answer ... the log records 200". A loop
    // over it.next() that `break`s calls no return(): what garbage collection then logs must not be a client leaving.
    const script = `
      const { createFallbackClient } = require('@switchyard/core');
      const { startFakeOpenAI } = require('@switchyard/testing');
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      (async () => {
        const fake = await startFakeOpenAI();
        const logs = [];
        const client = createFallbackClient({ virtualKeys: { o: { provider: 'openai', api_key: 'sk-0000000000000001', custom_host: fake.baseURL } }, config: { virtual_key: 'o' }, onLog: (e) => logs.push([e.status, e.attempts[0].error?.code ?? null]) });
        const params = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } };
        const readUntil = async (stop) => {
          const it = (await client.chat.completions.create(params))[Symbol.asyncIterator]();
          while (true) { const { value, done } = await it.next(); if (done || stop(value)) break; }
        };
        const statuses = [];
        for (const stop of [(c) => c.choices[0]?.finish_reason, (c) => c.usage]) {
          logs.length = 0;
          await readUntil(stop);
          for (let i = 0; i < 200 && client.gateway.requestsInFlight > 0; i++) { global.gc(); await sleep(10); }
          statuses.push(logs.slice());
        }
        // The same two loops left with for-await's break (return() called), for comparison.
        for (const stop of [(c) => c.choices[0]?.finish_reason, (c) => c.usage]) {
          logs.length = 0;
          for await (const c of await client.chat.completions.create(params)) if (stop(c)) break;
          for (let i = 0; i < 200 && client.gateway.requestsInFlight > 0; i++) await sleep(10);
          statuses.push(logs.slice());
        }
        console.log(JSON.stringify(statuses));
        await fake.close();
      })();`;
    const run = spawnSync(process.execPath, ['--expose-gc', '-e', script], { cwd: __dirname, encoding: 'utf8', timeout: 30_000 });
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual([[[200, null]], [[200, null]], [[200, null]], [[200, null]]]);
  });
});
