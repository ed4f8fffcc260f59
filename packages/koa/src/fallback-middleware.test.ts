import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import Router from '@koa/router';
import Koa from 'koa';
import mount from 'koa-mount';
import { AzureOpenAI } from 'openai';
import request from 'supertest';
import serverless from 'serverless-http';
import { Gateway, handleNodeRequest } from '@switchyard/core';
import { fallbackMiddleware } from '@switchyard/koa';
import { replies } from '@switchyard/testing';
import { listen } from '../../e2e/src/support/adapters';
import { messages, nextLog, sdk, seedOptions, until, useUpstreams } from '../../e2e/src/support/fixture';

const { up, logs, track } = useUpstreams();

/** A Koa timeout middleware as they are often written: races the rest of the app and answers through ctx. */
function timeoutAnswer(limit: { ms: number }): Koa.Middleware {
  return async (ctx, next) => {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        ctx.status = 503;
        ctx.body = 'Service Unavailable: timed out';
        resolve();
      }, limit.ms);
    });
    try {
      await Promise.race([next(), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  };
}

describe('Koa: a timeout middleware in front that answers through ctx.status and ctx.body', () => {
  it.each([
    ['a JSON request', false],
    ['a stream request', true],
  ])('answers %s with the host\'s 503, stops the upstream call, and serves the next request', async (_name, stream) => {
    const app = new Koa();
    // Long enough for the upstream to have the request on a busy machine (the whole suite on two cores).
    const limit = { ms: 400 };
    app.use(timeoutAnswer(limit));
    app.use(fallbackMiddleware(seedOptions(up, logs)));
    const url = track(await listen(createServer(app.callback())));
    up.openai.enqueue({ ...replies.stream({ chunks: 3 }), delayMs: 2000 });

    const res = await request(url).post('/v1/chat/completions').send({ model: 'gpt-4o', messages, stream });
    expect([res.status, res.text]).toEqual([503, 'Service Unavailable: timed out']);
    expect(up.openai.requests).toHaveLength(1); // the timeout came while the upstream had it
    await until(() => up.openai.requests[0]?.aborted === true);
    expect(await nextLog(logs)).toMatchObject({ status: 503, attempts: [{ status: null, error: { code: 'host_answered' } }] });
    expect(up.azure.requests).toHaveLength(0);

    // Answered in time (a limit no busy machine reaches): Switchyard's response, whole (no length the host left
    // behind cuts a stream short).
    limit.ms = 10_000;
    up.openai.enqueue(replies.stream({ chunks: ['Hel', 'lo'] }));
    const next = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    let text = '';
    for await (const chunk of next) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('Hello');
  });
});

/** A page streamed out slowly: 6 parts over ~300 ms. */
function slowPage(): Readable {
  let n = 0;
  return new Readable({ read() { setTimeout(() => this.push(n++ < 6 ? `part${n};` : null), 50); } });
}

// Koa 3 pipes a web ReadableStream or a fetch Response given as ctx.body as it does a Node Readable.
it.each([
  ['a Node Readable', () => slowPage()],
  ['a web ReadableStream', () => Readable.toWeb(slowPage())],
  ['a fetch Response', () => new Response(Readable.toWeb(slowPage()) as ReadableStream, { status: 503 })],
])("Koa: a timeout middleware's streamed answer (ctx.body %s) is left for Koa to finish when the upstream answers meanwhile", async (_name, body) => {
  const app = new Koa();
  const errors: string[] = [];
  app.on('error', (err: Error & { code?: string }) => errors.push(err.code ?? err.message));
  app.use(async (ctx, next) => {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        ctx.status = 503;
        ctx.type = 'text';
        ctx.body = body() as never;
        resolve();
      }, 100);
    });
    try {
      await Promise.race([next(), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  });
  app.use(fallbackMiddleware(seedOptions(up, logs)));
  const url = track(await listen(createServer(app.callback())));
  up.openai.enqueue({ ...replies.ok('late'), delayMs: 200 });
  const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-4o', messages }) });
  expect([res.status, await res.text()]).toEqual([503, 'part1;part2;part3;part4;part5;part6;']);
  expect((await nextLog(logs)).status).toBe(503);
  expect(errors).toEqual([]);
});

it('Koa: a stream is not cut short by a content-length the host set before Switchyard answered', async () => {
  const app = new Koa();
  app.use(async (ctx, next) => {
    ctx.body = 'a default body'; // Koa sets its content-length header on the response at once
    await next();
  });
  app.use(fallbackMiddleware(seedOptions(up, logs)));
  const url = track(await listen(createServer(app.callback())));
  up.openai.enqueue(replies.stream({ chunks: ['a much longer answer ', 'than fourteen bytes'] }));
  const stream = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages, stream: true });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  expect(text).toBe('a much longer answer than fourteen bytes');
});

describe('Koa: middleware in front that works after `await next()`', () => {
  /** A rolling session's cookie and an access log, as koa-session and koa-logger do them: both after next(). */
  function hostApp(seen: Array<number | string>, errors: string[]): Koa {
    const app = new Koa();
    app.on('error', (err: Error & { code?: string }) => errors.push(err.code ?? err.message));
    app.use(async (ctx, next) => {
      await next();
      seen.push(ctx.status);
      ctx.cookies.set('session', 'renewed', { httpOnly: true });
      ctx.set('x-response-time', '1ms');
    });
    app.use(fallbackMiddleware(seedOptions(up, logs)));
    return app;
  }

  it('a JSON answer goes out through Koa: their cookies and headers are sent, ctx.status is ours', async () => {
    const seen: Array<number | string> = [];
    const errors: string[] = [];
    const url = track(await listen(createServer(hostApp(seen, errors).callback())));
    const ok = await request(url).post('/v1/chat/completions').send({ model: 'gpt-4o', messages });
    expect([ok.status, ok.body.choices[0].message.content]).toEqual([200, 'Hello from openai']);
    expect([ok.headers['set-cookie'], ok.headers['x-response-time'], ok.headers['content-type']]).toEqual([
      [expect.stringMatching(/^session=renewed/)],
      '1ms',
      'application/json',
    ]);
    expect(ok.headers['x-switchyard-trace-id']).toBe((await nextLog(logs)).traceId);
    // An error answer as well: its status and retry-after stay.
    up.openai.enqueue(replies.rateLimited(2));
    up.azure.enqueue(replies.rateLimited(3));
    const limited = await request(url).post('/v1/chat/completions').send({ model: 'gpt-4o', messages });
    expect([limited.status, limited.headers['retry-after'], limited.headers['set-cookie']]).toEqual([429, '3', [expect.stringMatching(/^session=/)]]);
    expect((await nextLog(logs, 2)).status).toBe(429);
    expect([seen, errors]).toEqual([[200, 429], []]);
  });

  it('ctx.status says what went out for a stream too, and 499 for a client that left before any answer', async () => {
    const seen: Array<number | string> = [];
    const errors: string[] = [];
    const app = new Koa();
    app.use(async (ctx, next) => {
      await next();
      seen.push(ctx.status);
    });
    app.use(fallbackMiddleware(seedOptions(up, logs)));
    const url = track(await listen(createServer(app.callback())));
    const stream = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    for await (const _chunk of stream);
    expect((await nextLog(logs)).status).toBe(200);

    up.openai.enqueue({ delayMs: 300 });
    const controller = new AbortController();
    const left = fetch(`${url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'gpt-4o', messages }), signal: controller.signal }).catch(() => null);
    await until(() => up.openai.requests.length === 2);
    controller.abort();
    await left;
    expect((await nextLog(logs, 2)).status).toBe(499);
    await until(() => seen.length === 2);
    expect([seen, errors]).toEqual([[200, 499], []]);
  });
});

it('Koa: an upstream answer without a content-type goes on without one, as on the other adapters', async () => {
  const upstream = createServer((_req, res) => {
    res.removeHeader('content-type');
    res.writeHead(400, { 'x-request-id': 'req-bare' });
    res.end('{"error":{"message":"bare"}}');
  });
  const raw = track(await listen(upstream));
  const app = new Koa();
  app.use(fallbackMiddleware({ virtualKeys: { raw: { provider: 'openai', api_key: 'sk-raw', custom_host: `${raw}/v1` } }, config: { virtual_key: 'raw' } }));
  const url = track(await listen(createServer(app.callback())));
  const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'gpt-4o', messages }) });
  expect([res.status, res.headers.get('content-type'), await res.text()]).toEqual([400, null, '{"error":{"message":"bare"}}']);
});

it("Koa: as @koa/router's route handler under a prefix basePath does not name, says once that they disagree, and serves with the basePath it names", async () => {
  const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
  const mounted = (extra: { basePath?: string }) => {
    const router = new Router({ prefix: '/api' });
    router.post('/v1/chat/completions', fallbackMiddleware(seedOptions(up, logs, extra)));
    const app = new Koa();
    app.use(router.routes());
    return listen(createServer(app.callback()));
  };
  try {
    const wrong = track(await mounted({}));
    const right = track(await mounted({ basePath: '/api/v1' }));
    for (let i = 0; i < 2; i++) {
      expect((await request(wrong).post('/api/v1/chat/completions').send({ model: 'gpt-4o', messages })).status).toBe(404);
    }
    expect(warn.mock.calls.map(([message]) => String(message))).toEqual([
      "Switchyard is the handler of a route that got POST /api/v1/chat/completions, but it serves POST /v1/chat/completions (basePath counts from the path the framework passes it: here, basePath: '/api/v1'); the request went on to next()",
    ]);
    const completion = await sdk(`${right}/api`).chat.completions.create({ model: 'gpt-4o', messages });
    expect(completion.choices[0]!.message.content).toBe('Hello from openai');
    expect(warn.mock.calls).toHaveLength(1);
  } finally {
    warn.mockRestore();
  }
});

it("Koa: serves code written on the SDK's AzureOpenAI class through a parameterised @koa/router route that names the chat path (README's recipe)", async () => {
  const router = new Router();
  // koa-mount takes no parameters: the route rewrites the path Switchyard reads to the one it serves.
  router.post('/openai/deployments/:deployment/chat/completions', (ctx, next) => ((ctx.path = '/chat/completions'), next()), fallbackMiddleware(seedOptions(up, logs, { basePath: '' })));
  const app = new Koa();
  app.use(router.routes());
  const url = track(await listen(createServer(app.callback())));
  for (const deployment of ['one-deployment', 'another']) {
    const azure = new AzureOpenAI({ endpoint: url, apiKey: 'client-key', apiVersion: '2024-10-21', deployment, maxRetries: 0 });
    const completion = await azure.chat.completions.create({ model: 'gpt-4o', messages });
    expect(completion.choices[0]!.message.content).toBe('Hello from openai');
  }
  expect((await nextLog(logs)).status).toBe(200);
  // Without the rewrite, a basePath would name one deployment: the warning says so, not which basePath to set.
  const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
  try {
    const bare = new Router();
    bare.post('/t/:tenant/v1/chat/completions', fallbackMiddleware(seedOptions(up, logs)));
    const plain = new Koa();
    plain.use(bare.routes());
    const at = track(await listen(createServer(plain.callback())));
    expect((await request(at).post('/t/acme/v1/chat/completions').send({ model: 'gpt-4o', messages })).status).toBe(404);
    expect(warn.mock.calls.map(([said]) => String(said))).toEqual([expect.stringContaining("route /t/:tenant/v1/chat/completions, which got POST /t/acme/v1/chat/completions, but it serves POST /v1/chat/completions: a basePath names one path")]);
  } finally {
    warn.mockRestore();
  }
});

it("Koa: under koa-mount with the full path as basePath, says once that the mount was cut from the path it got, and serves with the basePath it names; rightly mounted, says nothing", async () => {
  const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
  const mounted = (at: string, extra: { basePath?: string }) => {
    const app = new Koa();
    app.use(mount(at, fallbackMiddleware(seedOptions(up, logs, extra))));
    app.use(async (ctx, next) => (ctx.path === '/api/legacy/chat/completions' ? void (ctx.body = 'legacy') : next()));
    return listen(createServer(app.callback()));
  };
  try {
    const right = track(await mounted('/api', { basePath: '/v1' }));
    expect((await request(right).post('/api/legacy/chat/completions?x=1').send({})).text).toBe('legacy');
    expect((await sdk(`${right}/api`).chat.completions.create({ model: 'gpt-4o', messages })).choices[0]!.message.content).toBe('Hello from openai');
    expect(warn).not.toHaveBeenCalled();
    const wrong = track(await mounted('/v1', {}));
    for (let i = 0; i < 2; i++) {
      expect((await request(wrong).post('/v1/chat/completions?api-version=1').send({ model: 'gpt-4o', messages })).status).toBe(404);
    }
    expect(warn.mock.calls.map(([message]) => String(message))).toEqual([
      "Switchyard, mounted at /v1, got POST /v1/chat/completions as POST /chat/completions, but it serves POST /v1/chat/completions (basePath counts from the path the framework passes it: here, basePath: ''); the request went on to next()",
    ]);
    const fixed = track(await mounted('/v1', { basePath: '' }));
    expect((await sdk(fixed).chat.completions.create({ model: 'gpt-4o', messages })).choices[0]!.message.content).toBe('Hello from openai');
    expect(warn.mock.calls).toHaveLength(1);
  } finally {
    warn.mockRestore();
  }
});

it('Koa: under koa-mount at the chat route itself, says once how to mount it (no basePath serves the / it passes on)', async () => {
  const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
  try {
    const app = new Koa();
    app.use(mount('/v1/chat/completions', fallbackMiddleware(seedOptions(up, logs))));
    const url = track(await listen(createServer(app.callback())));
    for (let i = 0; i < 2; i++) expect((await request(url).post('/v1/chat/completions').send({ model: 'gpt-4o', messages })).status).toBe(404);
    expect(warn.mock.calls.map(([message]) => String(message))).toEqual([
      "Switchyard, mounted at the chat route /v1/chat/completions, got POST /v1/chat/completions as POST /, and it serves POST {basePath}/chat/completions below its mount: mount it at /v1 with basePath: '', or make it the handler of a POST route on /v1/chat/completions; the request went on to next()",
    ]);
  } finally {
    warn.mockRestore();
  }
});

it("Koa: says nothing when it rightly passes a request on: behind the host's own router, or on a route that also matches other paths", async () => {
  const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
  try {
    const host = new Router();
    host.all('/{*any}', async (_ctx, next) => next()); // a catch-all (CORS, say) that @koa/router records as matched
    const api = new Router({ prefix: '/api' });
    api.post('/v1/{*rest}', fallbackMiddleware(seedOptions(up, logs, { basePath: '/api/v1' })));
    api.post('/v1/embeddings', (ctx) => void (ctx.body = 'embeddings'));
    const app = new Koa();
    app.use(host.routes());
    app.use(fallbackMiddleware(seedOptions(up, logs)));
    app.use(api.routes());
    // The host's own chat path under another base, served after Switchyard passed it on.
    app.use(async (ctx, next) => (ctx.path === '/legacy/v1/chat/completions' ? void (ctx.body = 'legacy') : next()));
    const url = track(await listen(createServer(app.callback())));
    expect((await request(url).post('/legacy/v1/chat/completions').send({})).text).toBe('legacy');
    expect((await request(url).post('/api/v1/embeddings').send({})).text).toBe('embeddings');
    expect((await sdk(`${url}/api`).chat.completions.create({ model: 'gpt-4o', messages })).choices[0]!.message.content).toBe('Hello from openai');
    expect(warn).not.toHaveBeenCalled();
  } finally {
    warn.mockRestore();
  }
});

it("Koa: is named, as an APM's Koa instrumentation shows it ('middleware - switchyardFallback')", () => {
  expect(fallbackMiddleware({ virtualKeys: { o: { provider: 'openai', api_key: 'sk-o' } }, config: { virtual_key: 'o' } }).name).toBe('switchyardFallback');
});

it('Koa on serverless-http (AWS Lambda), whose response sits on a socket of its own: logs what the client got, not 499', async () => {
  const app = new Koa();
  app.use(fallbackMiddleware(seedOptions(up, logs)));
  const handler = serverless(app);
  const invoke = (body: unknown) =>
    handler({ httpMethod: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), isBase64Encoded: false, requestContext: {} }, {}) as Promise<{ statusCode: number; body: string }>;
  up.openai.enqueue(replies.rateLimited());
  const answers = [
    await invoke({ model: 'gpt-4o', messages }),
    await invoke({ model: 'gpt-4o', messages: [] }), // Switchyard's own 400
    await invoke({ model: 'gpt-4o', messages, stream: true }),
  ];
  expect(answers.map((a) => a.statusCode)).toEqual([200, 400, 200]);
  expect(JSON.parse(answers[0]!.body).choices[0].message.content).toBe('Hello from azure');
  await until(() => logs.length === 3);
  expect(logs.map((e) => [e.status, e.fallback])).toEqual([[200, true], [400, false], [200, false]]);

  // A stream that broke after it started keeps its 200, its attempt the error, as on a network socket.
  up.openai.enqueue({ stream: { chunks: 5, cutAfter: 2 } });
  const broken = await invoke({ model: 'gpt-4o', messages, stream: true });
  expect(broken.body).toContain('stream_interrupted');
  await until(() => logs.length === 4);
  expect([logs[3]!.status, logs[3]!.attempts.map((a) => a.error?.code)]).toEqual([200, ['stream_interrupted']]);
});

it('on serverless-http, a host that answers first (its own timeout) stops the upstream call, logged host_answered', async () => {
  const gateway = new Gateway(seedOptions(up, logs, { deadlineMs: 20_000 }));
  // serverless-http takes a plain (req, res) handler too: a host with a timeout of its own in front of Switchyard.
  const handler = serverless((req: IncomingMessage, res: ServerResponse) => {
    setTimeout(() => {
      if (res.headersSent) return;
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"timeout"}}');
    }, 100);
    void handleNodeRequest(gateway, req, res);
  });
  up.openai.enqueue({ hang: true });
  const event = { httpMethod: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-4o', messages }), isBase64Encoded: false, requestContext: {} };
  expect(((await handler(event, {})) as { statusCode: number }).statusCode).toBe(503);
  // Not after the 20 s deadline: the upstream call stopped when the host answered.
  await gateway.drain();
  expect(logs.map((e) => [e.status, e.attempts.map((a) => a.error?.code)])).toEqual([[503, ['host_answered']]]);
});

it("Koa: a config chosen on the server (README's ctx.request.headers['x-switchyard-config'] = ...) overrides the client's header, and deleting it serves the default", async () => {
  const options = seedOptions(up, logs, {
    configs: {
      'fallback-429': { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] },
      'azure-only': { strategy: { mode: 'single' }, targets: [{ virtual_key: 'azure-prod' }] },
    },
  });
  const plans: Record<string, string | undefined> = { 'Bearer sk-paid': 'fallback-429', 'Bearer sk-free': undefined };
  const app = new Koa();
  app.use(async (ctx, next) => {
    ctx.state.user = ctx.get('authorization');
    const chosen = plans[ctx.state.user as string];
    if (chosen === undefined) delete ctx.request.headers['x-switchyard-config'];
    else ctx.request.headers['x-switchyard-config'] = chosen;
    await next();
  });
  app.use(fallbackMiddleware(options));
  const url = track(await listen(createServer(app.callback())));
  // Both clients ask for the Azure-only config: the server's choice wins (OpenAI first, then the default config).
  for (const key of ['sk-paid', 'sk-free']) {
    const client = new (await import('openai')).default({ apiKey: key, baseURL: `${url}/v1`, maxRetries: 0, defaultHeaders: { 'x-switchyard-config': 'azure-only' } });
    const { response } = await client.chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
    expect(response.headers.get('x-switchyard-target')).toBe('targets[0]');
  }
  expect([up.openai.requests.length, up.azure.requests.length]).toEqual([2, 0]);
  await until(() => logs.length === 2);
  expect(logs.map((e) => e.configId).sort()).toEqual(['fallback-429', null].sort());
});

it("Koa: the README's shutdown with a Gateway from @switchyard/koa: once stopping, JSON and stream answers close their keep-alive connection, server.close() ends and drain() has every event", async () => {
  const { Gateway: KoaGateway } = await import('@switchyard/koa');
  expect(KoaGateway).toBe(Gateway);
  const gateway = new KoaGateway(seedOptions(up, logs));
  let stopping = false;
  const app = new Koa();
  app.use(async (ctx, next) => {
    if (stopping) ctx.set('Connection', 'close');
    await next();
  });
  app.use(fallbackMiddleware(gateway));
  const server = createServer(app.callback());
  const { url } = await listen(server);
  const { Agent, request: httpRequest } = await import('node:http');
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const post = (stream: boolean) =>
    new Promise<{ connection: string | undefined; body: string }>((resolve, reject) => {
      const req = httpRequest(`${url}/v1/chat/completions`, { agent, method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ connection: res.headers.connection, body }));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ model: 'gpt-4o', messages, stream }));
    });
  try {
    expect((await post(false)).connection).toBe('keep-alive');
    expect((await post(true)).connection).toBe('keep-alive');
    // Set first, as shutdown() does; a request already on its connection is then answered with connection: close.
    stopping = true;
    const json = await post(false);
    expect([json.connection, JSON.parse(json.body).choices[0].message.content]).toEqual(['close', 'Hello from openai']);
    const stream = await post(true);
    expect([stream.connection, stream.body.endsWith('data: [DONE]\n\n')]).toEqual(['close', true]);
    await new Promise((resolve) => server.close(resolve)); // no connection left open: it ends without closeAllConnections()
    await gateway.drain();
    expect(logs.map((e) => [e.stream, e.status])).toEqual([[false, 200], [true, 200], [false, 200], [true, 200]]);
  } finally {
    agent.destroy();
    server.closeAllConnections();
    server.close();
  }
});
