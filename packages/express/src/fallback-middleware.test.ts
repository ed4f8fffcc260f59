import { Agent, createServer, request as httpRequest } from 'node:http';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import request from 'supertest';
import { AzureOpenAI } from 'openai';
import serverless from 'serverless-http';
import { SwitchyardError, createFallbackClient, type LogEvent } from '@switchyard/core';
import { fallbackMiddleware, Gateway } from '@switchyard/express';
import { replies } from '@switchyard/testing';
import { express4, listen, type RunningApp } from '../../e2e/src/support/adapters';
import { messages, sdk, seedOptions, startUpstreams, until, type Upstreams } from '../../e2e/src/support/fixture';

// A host app as many are written: express.json() for every route, its own error handler last.
describe.each([
  ['Express 5', express],
  ['Express 4', express4],
])('%s: a JSON parser in front refuses a chat request', (_name, lib) => {
  let up: Upstreams;
  let app: RunningApp;
  const logs: LogEvent[] = [];
  const hostErrors: string[] = [];

  beforeAll(async () => {
    up = await startUpstreams();
    const host = lib();
    // The host's own body check (a webhook signature, say) on its /signed route: its errors stay the host's.
    host.use(lib.json({
      limit: '2kb',
      verify: (req: { url?: string }) => {
        if (req.url === '/v1/chat/completions?signed=bad') throw Object.assign(new Error('bad signature'), { status: 401 });
      },
    }));
    host.use(fallbackMiddleware(seedOptions(up, logs)));
    host.post('/notes', (req, res) => {
      res.json({ saved: req.body });
    });
    host.get('/boom', () => {
      throw new Error('host failure');
    });
    host.use((err: Error & { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
      hostErrors.push(err.message);
      res.status(err.status ?? 500).type('text/plain').send('host error handler');
    });
    app = await listen(createServer(host));
  });
  afterAll(async () => {
    await app.close();
    await up.close();
  });
  beforeEach(() => {
    logs.length = 0;
    hostErrors.length = 0;
    up.reset();
  });

  it('invalid JSON gets OpenAI\'s 400 envelope and a log event, not the host\'s error page', async () => {
    const res = await request(app.url)
      .post('/v1/chat/completions')
      .set('content-type', 'application/json')
      .set('x-switchyard-trace-id', 'bad-json-1')
      .send('{"model": "gpt-4o", messages: [');
    expect(res.status).toBe(400);
    expect(res.body.error).toEqual({ message: expect.any(String), type: 'invalid_request_error', param: null, code: 'invalid_json' });
    expect(res.headers['x-switchyard-trace-id']).toBe('bad-json-1');
    expect(hostErrors).toEqual([]);
    expect(up.openai.requests).toHaveLength(0);
    await until(() => logs.length === 1);
    expect(logs[0]).toMatchObject({ traceId: 'bad-json-1', status: 400, attempts: [] });
  });

  it('a body over the parser\'s limit gets 413 body_too_large naming that limit, with a log event', async () => {
    const res = await request(app.url)
      .post('/v1/chat/completions')
      .send({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x'.repeat(5000) }] });
    expect(res.status).toBe(413);
    expect(res.body.error).toMatchObject({ code: 'body_too_large', type: 'invalid_request_error' });
    expect(res.body.error.message).toContain('2048-byte limit of the body parser');
    expect(up.openai.requests).toHaveLength(0);
    await until(() => logs.length === 1);
    // A trace id Switchyard made is the same in the response and in the log event.
    expect(res.headers['x-switchyard-trace-id']).toMatch(/^[\da-f]{32}$/);
    expect(logs[0]).toMatchObject({ traceId: res.headers['x-switchyard-trace-id'], status: 413 });
  });

  it.each([
    ['an unsupported charset', { 'content-type': 'application/json; charset=latin1' }, 415, 'unsupported_media_type'],
    ['an unsupported content-encoding', { 'content-type': 'application/json', 'content-encoding': 'br-unknown' }, 415, 'unsupported_media_type'],
  ])('%s gets OpenAI\'s envelope with the parser\'s status, not the host\'s error page', async (_what, headers, status, code) => {
    const res = await request(app.url).post('/v1/chat/completions').set(headers).send(JSON.stringify({ model: 'gpt-4o', messages }));
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body.error).toMatchObject({ code, type: 'invalid_request_error', message: expect.stringContaining('body parser in front of Switchyard') });
    expect(hostErrors).toEqual([]);
    expect(up.openai.requests).toHaveLength(0);
    await until(() => logs.length === 1);
    expect(logs[0]).toMatchObject({ status, attempts: [] });
  });

  // Express 4's body-parser knows no brotli (its 415 is tested above as an unsupported content-encoding).
  it.each(lib === express ? ['gzip', 'br'] : ['gzip'])('a body that does not decompress as its content-encoding (%s) says gets OpenAI\'s 400 envelope and a log event', async (coding) => {
    const res = await request(app.url)
      .post('/v1/chat/completions')
      .set('content-type', 'application/json')
      .set('content-encoding', coding)
      .send(Buffer.from(`not ${coding} at all, but long enough to be read as a body`));
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'invalid_request', message: expect.stringContaining('could not be decompressed') });
    expect(hostErrors).toEqual([]);
    await until(() => logs.length === 1);
    expect(logs[0]).toMatchObject({ status: 400, attempts: [] });
  });

  it("an error of the host's own verify hook on the chat route stays the host's, with its status", async () => {
    const res = await request(app.url).post('/v1/chat/completions?signed=bad').send({ model: 'gpt-4o', messages });
    expect([res.status, res.text]).toEqual([401, 'host error handler']);
    expect(hostErrors).toEqual(['bad signature']);
    expect(up.openai.requests).toHaveLength(0);
  });

  it('the SDK raises an APIError with status 413 and the code', async () => {
    // The SDK always sends valid JSON: a refusal it can meet is the size limit.
    const failure = await sdk(app.url, {})
      .chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x'.repeat(5000) }] }, { maxRetries: 0 })
      .catch((err: unknown) => err);
    expect(failure).toMatchObject({ status: 413, code: 'body_too_large' });
  });

  it('parser errors on the host\'s own routes, and other errors, stay the host\'s', async () => {
    const notes = await request(app.url).post('/notes').set('content-type', 'application/json').send('{broken');
    expect(notes.status).toBe(400);
    expect(notes.text).toBe('host error handler');
    const boom = await request(app.url).get('/boom');
    expect(boom.status).toBe(500);
    expect(boom.text).toBe('host error handler');
    expect(hostErrors).toHaveLength(2);
    expect(hostErrors[1]).toBe('host failure');
    // A chat request after them logs one event: had either of them logged, it would be the second.
    await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages });
    await until(() => logs.length >= 1);
    expect(logs).toHaveLength(1);
    expect(logs[0]!.status).toBe(200);
  });

  it('valid chat requests and host routes work as before', async () => {
    const completion = await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages });
    expect(completion.choices[0]!.message.content).toEqual(expect.any(String));
    const notes = await request(app.url).post('/notes').send({ a: 1 });
    expect(notes.body).toEqual({ saved: { a: 1 } });
  });
});

describe('behind a host middleware that sets cache-control on every answer', () => {
  it("keeps the host's directives on a stream, adding no-transform (so compression leaves it alone) and no-cache where missing", async () => {
    const up = await startUpstreams();
    const logs: LogEvent[] = [];
    const host = express();
    let policy = '';
    host.use((_req: Request, res: Response, next: NextFunction) => {
      if (policy) res.set('cache-control', policy);
      next();
    });
    host.use(fallbackMiddleware(seedOptions(up, logs)));
    const app = await listen(createServer(host));
    try {
      const cacheControl = async (stream: boolean) => {
        const { response, data } = await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages, stream }).withResponse();
        if (stream) for await (const _ of data as AsyncIterable<unknown>); // read to its end
        return response.headers.get('cache-control');
      };
      const answers: Array<[string, string | null, string | null]> = [];
      for (policy of ['private, no-store', 'private, max-age=0', 'no-cache, no-transform', '']) {
        answers.push([policy, await cacheControl(false), await cacheControl(true)]);
      }
      expect(answers).toEqual([
        ['private, no-store', 'private, no-store', 'private, no-store, no-transform'],
        ['private, max-age=0', 'private, max-age=0', 'private, max-age=0, no-cache, no-transform'],
        ['no-cache, no-transform', 'no-cache, no-transform', 'no-cache, no-transform'],
        ['', null, 'no-cache, no-transform'],
      ]);
    } finally {
      await app.close();
      await up.close();
    }
  });
});

describe('mounted under a path prefix', () => {
  let up: Upstreams;
  let app: RunningApp;

  beforeAll(async () => {
    up = await startUpstreams();
    const host = express();
    // Express strips the mount path: basePath is relative to it.
    host.use('/v1', fallbackMiddleware(seedOptions(up, [], { basePath: '' })));
    app = await listen(createServer(host));
  });
  afterAll(async () => {
    await app.close();
    await up.close();
  });

  it("app.use('/v1', ...) with basePath '' serves /v1/chat/completions", async () => {
    const completion = await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages });
    expect(completion.choices[0]!.message.content).toBe('Hello from openai');
    expect(up.openai.requests).toHaveLength(1);
  });
});

describe('on a route method, with express.json() app-wide', () => {
  let up: Upstreams;
  let app: RunningApp;
  const logs: LogEvent[] = [];

  beforeAll(async () => {
    up = await startUpstreams();
    const host = express();
    host.use(express.json());
    // Express passes the parser's error only to error handlers at its own level, never into a route's stack.
    const switchyard = fallbackMiddleware(seedOptions(up, logs, { basePath: '/api/v1' }));
    host.post('/api/v1/chat/completions', switchyard);
    host.use(switchyard[1]);
    app = await listen(createServer(host));
  });
  afterAll(async () => {
    await app.close();
    await up.close();
  });

  it('serves the route, and its error handler beside the parser answers a refused body in OpenAI\'s format', async () => {
    const completion = await sdk(`${app.url}/api`).chat.completions.create({ model: 'gpt-4o', messages });
    expect(completion.choices[0]!.message.content).toBe('Hello from openai');
    const res = await request(app.url).post('/api/v1/chat/completions').set('content-type', 'application/json').send('{"model": ');
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'invalid_json' });
    await until(() => logs.length === 2);
    expect(logs[1]).toMatchObject({ status: 400 });
    expect(up.openai.requests).toHaveLength(1);
  });
});

describe('behind a JSON parser with a larger limit than maxBodyBytes', () => {
  let up: Upstreams;
  let app: RunningApp;

  beforeAll(async () => {
    up = await startUpstreams();
    const host = express();
    host.use(express.json({ limit: '5mb' }));
    host.use(fallbackMiddleware(seedOptions(up, [], { maxBodyBytes: 2048 })));
    app = await listen(createServer(host));
  });
  afterAll(async () => {
    await app.close();
    await up.close();
  });

  /** Posts `body` in two pieces with these headers (supertest would set its own length and encoding). */
  const post = (body: Buffer, headers: Record<string, string>) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode!, body: text }));
      });
      req.on('error', reject);
      req.write(body.subarray(0, 100));
      req.end(body.subarray(100));
    });
  /** A body sent chunked, as a streaming client sends it: no content-length to check (the length is known at the end). */
  const postChunked = (body: string) => post(Buffer.from(body), { 'transfer-encoding': 'chunked' });

  it('a chunked body the parser took is still held to maxBodyBytes, before any upstream call', async () => {
    const big = await postChunked(JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x'.repeat(4000) }] }));
    expect(big.status).toBe(413);
    expect(JSON.parse(big.body).error.code).toBe('body_too_large');
    expect(up.openai.requests).toHaveLength(0);
    const small = await postChunked(JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x'.repeat(1500) }] }));
    expect(small.status).toBe(200);
    expect(up.openai.requests).toHaveLength(1);
  });

  it('a compressed body the parser inflated is held to maxBodyBytes by its inflated size, not its declared length', async () => {
    up.reset();
    const body = gzipSync(JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x'.repeat(100_000) }] }));
    expect(body.length).toBeLessThan(2048);
    const res = await post(body, { 'content-encoding': 'gzip', 'content-length': String(body.length) });
    expect([res.status, JSON.parse(res.body).error.code]).toEqual([413, 'body_too_large']);
    expect(up.openai.requests).toHaveLength(0);
  });
});

describe.each([
  ['express.raw()', () => express.raw({ type: 'application/json' })],
  ['express.text()', () => express.text({ type: 'application/json' })],
])('a %s parser in front', (_name, parser) => {
  let up: Upstreams;
  let app: RunningApp;

  beforeAll(async () => {
    up = await startUpstreams();
    const host = express();
    host.use(parser());
    host.use(fallbackMiddleware(seedOptions(up, [], { maxBodyBytes: 2048 })));
    app = await listen(createServer(host));
  });
  afterAll(async () => {
    await app.close();
    await up.close();
  });

  /** Sent chunked and gzip-compressed: only the bytes the parser produced can be held to the limit. */
  const post = (json: string) =>
    new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${app.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', 'transfer-encoding': 'chunked' },
      }, (res) => resolve(res.resume().statusCode!));
      req.on('error', reject);
      req.end(gzipSync(json));
    });

  it('holds the body it produced to maxBodyBytes by its own size, not by the size of its JSON encoding', async () => {
    // Quotes and line breaks, which a JSON encoding of the text would escape: 1,860 bytes, under the limit.
    const fits = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'say "hi"\n'.repeat(150) }] });
    expect(Buffer.byteLength(fits)).toBeGreaterThan(1800);
    expect(Buffer.byteLength(fits)).toBeLessThan(2048);
    expect(await post(fits)).toBe(200);
    expect(up.openai.requests).toHaveLength(1);
    expect(await post(JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x'.repeat(3000) }] }))).toBe(413);
    expect(up.openai.requests).toHaveLength(1);
  });
});

describe('a body express.json() already parsed', () => {
  it('is encoded once for a first target that changes it, when its declared length was checked', async () => {
    const up = await startUpstreams();
    const host = express();
    host.use(express.json({ limit: '5mb' }));
    host.use(fallbackMiddleware(seedOptions(up, [], { config: { strategy: { mode: 'single' }, targets: [{ virtual_key: 'openai-prod', override_params: { temperature: 0 } }] } })));
    const app = await listen(createServer(host));
    const stringify = jest.spyOn(JSON, 'stringify');
    try {
      const content = 'x'.repeat(1_000_000);
      await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content }] });
      // The SDK's own encoding of the request, then the target's, with its override: not a third to measure the body.
      const bodies = stringify.mock.results.filter((r) => typeof r.value === 'string' && r.value.length > 1_000_000 && r.value.includes('"model"'));
      expect(bodies).toHaveLength(2);
      expect((up.openai.requests[0]!.body as { temperature: number }).temperature).toBe(0);
    } finally {
      stringify.mockRestore();
      await app.close();
      await up.close();
    }
  });
});

describe('shutdown with gateway.drain()', () => {
  it('resolves once the requests a forced close cut have logged their 499, so log stores close after them', async () => {
    const up = await startUpstreams();
    const logs: LogEvent[] = [];
    const gateway = new Gateway(seedOptions(up, logs));
    await gateway.drain(); // nothing in flight: at once
    const host = express();
    let arrived = 0; // Switchyard runs right after this
    host.use((_req: Request, _res: Response, next: NextFunction) => {
      arrived++;
      next();
    });
    host.use(fallbackMiddleware(gateway)); // the route serves through the gateway it is given
    const app = await listen(createServer(host));
    const { port } = new URL(app.url);
    const body = JSON.stringify({ model: 'gpt-4o', messages, stream: true });
    const send = (upload: string, length = upload.length) => {
      const req = httpRequest({ port, method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json', 'content-length': length } });
      req.on('error', () => {}); // cut by the close below
      req.write(upload);
      return req;
    };
    try {
      up.openai.enqueue({ hang: true }, replies.stream({ chunks: 5, intervalMs: 1000 }));
      // Upstream hanging; a stream mid-way; a body still arriving (not yet handed to the engine).
      send(JSON.stringify({ model: 'gpt-4o', messages })).end();
      await until(() => up.openai.requests.length === 1);
      const streaming = send(body);
      streaming.end();
      await new Promise((resolve) => streaming.on('response', resolve));
      send(body.slice(0, 10), body.length);
      await until(() => arrived === 3);
      let drained = false;
      void gateway.drain().then(() => (drained = true));
      await new Promise((r) => setTimeout(r, 20));
      expect([drained, logs.length]).toEqual([false, 0]);

      await app.close(); // closeAllConnections(), then close(): the server reports itself closed before the 499s are logged
      await gateway.drain();
      expect(logs.map((e) => e.status)).toEqual([499, 499, 499]);
      expect(logs.filter((e) => e.attempts.length === 0)).toHaveLength(1); // the upload the close cut
    } finally {
      await app.close(); // again after a failed expectation: a second close only calls back
      await up.close();
    }
  });

  it("stops under steady keep-alive traffic with the README's recipe: answers close their connections once stopping, and every answer is logged", async () => {
    const up = await startUpstreams();
    const logs: LogEvent[] = [];
    const gateway = new Gateway(seedOptions(up, logs));
    // The README's shutdown, as written there.
    let stopping = false;
    const host = express();
    host.use((_req: Request, res: Response, next: NextFunction) => {
      if (stopping) res.setHeader('connection', 'close');
      next();
    });
    host.use(fallbackMiddleware(gateway));
    const server = createServer(host);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const shutdown = async () => {
      stopping = true;
      const closed = new Promise((resolve) => server.close(resolve));
      const cap = setTimeout(() => server.closeAllConnections(), 20_000);
      await closed;
      clearTimeout(cap);
      await gateway.drain();
    };
    const { port } = server.address() as { port: number };
    const agent = new Agent({ keepAlive: true });
    const body = JSON.stringify({ model: 'gpt-4o', messages });
    let answered = 0;
    const post = () =>
      new Promise<boolean>((resolve) => {
        const req = httpRequest({ host: '127.0.0.1', port, agent, method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode === 200 && ++answered > 0));
        });
        req.on('error', () => resolve(false));
        req.end(body);
      });
    // Four clients sending back to back on kept-alive connections, until the server stops taking them.
    const clients = Array.from({ length: 4 }, async () => {
      while (await post());
    });
    try {
      await until(() => answered >= 40);
      const started = Date.now();
      await shutdown();
      // Without the header, the close waits for the 20 s cap: the clients keep every connection busy.
      expect(Date.now() - started).toBeLessThan(5000);
      await Promise.all(clients);
      expect(logs.filter((e) => e.status === 200)).toHaveLength(answered);
    } finally {
      agent.destroy();
      server.closeAllConnections();
      await up.close();
    }
  });

  it('counts a request whose body is still arriving, before the engine has it', async () => {
    const { up, logs, gateway, app, arrived } = await appNotingArrivals();
    try {
      const upload = httpRequest(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': 100 } });
      upload.on('error', () => {});
      upload.write('{"model":');
      await until(arrived);
      let loggedAtDrain = -1;
      const drained = gateway.drain().then(() => (loggedAtDrain = logs.length));
      await new Promise((r) => setTimeout(r, 20));
      expect(loggedAtDrain).toBe(-1);
      await app.close();
      await drained; // the drain asked while the body arrived, not a later one
      expect(loggedAtDrain).toBe(1);
      expect(logs.map((e) => [e.status, e.attempts.length])).toEqual([[499, 0]]);
      expect(up.openai.requests).toHaveLength(0);
    } finally {
      await app.close(); // again after a failed expectation: a second close only calls back
      await up.close();
    }
  });
});

/** An API Gateway (REST API) event with a JSON body, as Lambda hands it to a serverless adapter. */
function apiGatewayEvent(body: unknown): Record<string, unknown> {
  return {
    httpMethod: 'POST', path: '/v1/chat/completions', resource: '/{proxy+}', headers: { 'content-type': 'application/json' }, multiValueHeaders: { 'content-type': ['application/json'] },
    body: JSON.stringify(body), isBase64Encoded: false, queryStringParameters: null, multiValueQueryStringParameters: null, pathParameters: null, stageVariables: null,
    requestContext: { httpMethod: 'POST', path: '/v1/chat/completions', stage: 'prod', requestId: 'r1', identity: { sourceIp: '127.0.0.1' } },
  };
}

/** The Lambda handler @vendia/serverless-express makes of an app (an untyped package: called as its README does). */
function onVendia(app: unknown): (event: unknown, context: unknown) => Promise<{ statusCode: number; body: string }> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const serverlessExpress = require('@vendia/serverless-express') as (o: { app: unknown }) => (event: unknown, context: unknown) => Promise<{ statusCode: number; body: string }>;
  return serverlessExpress({ app });
}

it('on serverless-http (AWS Lambda), whose socket never sets writableFinished: logs what the client got, not 499', async () => {
  const up = await startUpstreams();
  const logs: LogEvent[] = [];
  const gateway = new Gateway(seedOptions(up, logs));
  const handler = serverless(express().use(fallbackMiddleware(gateway)));
  try {
    const json = (await handler(apiGatewayEvent({ model: 'gpt-4o', messages }), {})) as { statusCode: number };
    const refused = (await handler(apiGatewayEvent({ model: 'gpt-4o', messages: [] }), {})) as { statusCode: number }; // Switchyard's own 400
    expect([json.statusCode, refused.statusCode]).toEqual([200, 400]);
    await gateway.drain();
    expect(logs.map((e) => e.status)).toEqual([200, 400]);
  } finally {
    await up.close();
  }
});

it('on @vendia/serverless-express (AWS Lambda), whose response never closes: logs each request, and drain() resolves', async () => {
  const up = await startUpstreams();
  const logs: LogEvent[] = [];
  const gateway = new Gateway(seedOptions(up, logs));
  const host = express();
  host.use(fallbackMiddleware(gateway));
  const handler = onVendia(host);
  try {
    up.openai.enqueue(replies.rateLimited());
    const json = await handler(apiGatewayEvent({ model: 'gpt-4o', messages }), {});
    const stream = await handler(apiGatewayEvent({ model: 'gpt-4o', messages, stream: true }), {});
    const refused = await handler(apiGatewayEvent({ model: 'gpt-4o', messages: [] }), {});
    // A stream whose chunks come apart, as a model's do: its stand-in socket's write() returns nothing, not `true`.
    up.openai.enqueue({ stream: { chunks: 3, intervalMs: 20 } });
    const spread = await handler(apiGatewayEvent({ model: 'gpt-4o', messages, stream: true }), {});
    expect([json.statusCode, stream.statusCode, refused.statusCode, spread.statusCode]).toEqual([200, 200, 400, 200]);
    expect(stream.body).toContain('data: [DONE]');
    expect(spread.body).toContain('data: [DONE]');
    // What a Lambda handler awaits before it returns: every event written.
    await gateway.drain();
    expect(logs.map((e) => [e.status, e.fallback])).toEqual([[200, true], [200, false], [400, false], [200, false]]);
  } finally {
    await up.close();
  }
});

it.each([
  {
    when: 'while the upstream call runs (its own timeout): the call stops, logged host_answered',
    host: (res: Response, next: NextFunction) => {
      setTimeout(() => res.headersSent || res.status(503).json({ error: { message: 'timeout' } }), 100);
      next();
    },
    calls: 1,
    attempts: ['host_answered'],
  },
  {
    when: 'before Switchyard ran (a slow auth behind its own timeout): no upstream call',
    host: (res: Response, next: NextFunction) => {
      setTimeout(() => res.status(503).json({ error: { message: 'timeout' } }), 50);
      setTimeout(next, 150); // the auth check ends after the timeout answered
    },
    calls: 0,
    attempts: [],
  },
])('on @vendia/serverless-express, a host that answers $when', async ({ host: before, calls, attempts }) => {
  const up = await startUpstreams();
  const logs: LogEvent[] = [];
  // Not after this 20 s deadline: the request stops when the host answered.
  const gateway = new Gateway(seedOptions(up, logs, { deadlineMs: 20_000 }));
  const host = express();
  host.use((_req: Request, res: Response, next: NextFunction) => before(res, next));
  host.use(fallbackMiddleware(gateway));
  try {
    up.openai.setDefault({ hang: true });
    expect((await onVendia(host)(apiGatewayEvent({ model: 'gpt-4o', messages }), {})).statusCode).toBe(503);
    await until(() => logs.length === 1);
    await gateway.drain();
    expect(logs.map((e) => [e.status, e.attempts.map((a) => a.error?.code)])).toEqual([[503, attempts]]);
    expect(up.openai.requests).toHaveLength(calls);
  } finally {
    await up.close();
  }
});

it('a process awaiting drain() is kept alive while an async sink has not settled (what follows it, a store close, still runs)', async () => {
  // The built package, as an app runs it (\`pnpm test\` builds first).
  const script = `
    const { Gateway, SwitchyardError } = require(${JSON.stringify(join(__dirname, '../../core/dist/index.js'))});
    const gateway = new Gateway({ virtualKeys: { o: { provider: 'openai', api_key: 'sk-unused' } }, config: { virtual_key: 'o' }, onLog: () => new Promise(() => {}) });
    gateway.reject(new SwitchyardError('invalid_json', 'Not JSON.'), {}).end();
    gateway.drain().then(() => console.log('drained'));
    console.log('waiting');
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  const early = await Promise.race([exited, new Promise((r) => setTimeout(() => r('alive'), 1500))]);
  child.kill();
  await exited;
  expect([early, out.trim()]).toEqual(['alive', 'waiting']);
});

it('drain() waits for an async onLog to finish (a serverless handler awaits it before its process is frozen)', async () => {
  const up = await startUpstreams();
  let shipped = 0;
  const gateway = new Gateway({ ...seedOptions(up, []), onLog: async () => {
    await new Promise((r) => setTimeout(r, 200));
    shipped++;
  } });
  const app = await listen(createServer(express().use(fallbackMiddleware(gateway))));
  try {
    await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages });
    await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages: [] }).catch(() => undefined);
    await gateway.drain();
    expect(shipped).toBe(2);
  } finally {
    await app.close();
    await up.close();
  }
});

it('drain() stops waiting for an async sink that never settles after 30 s, and says so once', async () => {
  jest.useFakeTimers();
  const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  try {
    const gateway = new Gateway({ virtualKeys: { o: { provider: 'openai', api_key: 'sk-unused' } }, config: { virtual_key: 'o' }, onLog: () => new Promise<void>(() => {}) });
    gateway.reject(new SwitchyardError('invalid_json', 'Not JSON.'), {}).end();
    gateway.reject(new SwitchyardError('invalid_json', 'Not JSON.'), {}).end();
    let drained = false;
    void gateway.drain().then(() => (drained = true));
    await jest.advanceTimersByTimeAsync(29_000);
    expect(drained).toBe(false);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(drained).toBe(true);
    expect(warn.mock.calls.filter(([, type]) => (type as unknown) === 'SwitchyardLogSinkWarning')).toEqual([
      ['An async Switchyard log sink has not settled within 30 s: drain() stops waiting for it (give the sink a timeout of its own).', 'SwitchyardLogSinkWarning'],
    ]);
  } finally {
    jest.useRealTimers();
    warn.mockRestore();
  }
});

describe('drain() asked while a body arrives', () => {
  it('waits for that request to the end of its upstream call, once the body is in and the engine has it', async () => {
    const { up, logs, gateway, app, arrived } = await appNotingArrivals();
    try {
      up.openai.enqueue({ delayMs: 300 });
      const body = JSON.stringify({ model: 'gpt-4o', messages });
      const upload = httpRequest(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } });
      upload.on('error', () => {});
      upload.on('response', (r) => r.resume());
      upload.write(body.slice(0, 5));
      await until(arrived);
      let loggedAtDrain = -1;
      const drained = gateway.drain().then(() => (loggedAtDrain = logs.length));
      await new Promise((r) => setTimeout(r, 20));
      upload.end(body.slice(5)); // the engine takes the request now, after the drain was asked
      await drained;
      // A shutdown closes its log stores here: the request started before drain() is logged already.
      expect(loggedAtDrain).toBe(1);
      expect(logs[0]!.status).toBe(200);
    } finally {
      await app.close();
      await up.close();
    }
  });
});

describe('a target whose address leads back to the app (custom_host: OPENAI_BASE_URL pointing at it)', () => {
  /** An Express app with Switchyard whose options are made at its first request, once every URL is known. */
  async function appAt(options: (url: string) => Parameters<typeof fallbackMiddleware>[0]) {
    let serve: ReturnType<typeof fallbackMiddleware> | null = null;
    let chats = 0;
    const host = express();
    host.use((req: Request, res: Response, next: NextFunction) => {
      if (req.path === '/v1/chat/completions') chats++;
      serve ??= fallbackMiddleware(options(app.url));
      serve[0](req, res, next);
    });
    const app = await listen(createServer(host));
    return { app, chats: () => chats };
  }

  it('is refused with 508 loop_detected where it comes back, instead of calling itself without end; a loop through two apps too', async () => {
    const up = await startUpstreams();
    const logs: LogEvent[] = [];
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const self = await appAt((url) => ({
      virtualKeys: { loop: { provider: 'openai', api_key: 'sk-loop', custom_host: `${url}/v1` } },
      config: { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'loop' }] },
      onLog: (e) => logs.push(e),
    }));
    let otherUrl = '';
    const a = await appAt(() => ({
      virtualKeys: { b: { provider: 'openai', api_key: 'sk-b', custom_host: `${otherUrl}/v1` } },
      config: { virtual_key: 'b' },
    }));
    const b = await appAt(() => ({ virtualKeys: { a: { provider: 'openai', api_key: 'sk-a', custom_host: `${a.app.url}/v1` } }, config: { virtual_key: 'a' } }));
    otherUrl = b.app.url;
    try {
      const err = await sdk(self.app.url).chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e);
      expect(err).toMatchObject({ status: 508, code: 'loop_detected' });
      // The SDK does not retry it (a loop loops again).
      expect((err as { headers: Headers }).headers.get('x-should-retry')).toBe('false');
      expect(self.chats()).toBe(2); // the client's, and the one it sent itself, refused
      await until(() => logs.length === 2);
      expect(logs.map((e) => [e.status, e.attempts.map((t) => t.status)])).toEqual([[508, []], [508, [508]]]);
      expect(warn).toHaveBeenCalledWith(expect.stringContaining("a target's custom_host (or endpoint) leads back to this app"), 'SwitchyardConfigWarning');
      // A -> B -> A: B passes on whom the request came through, and A finds itself there.
      const looped = await sdk(a.app.url).chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e);
      expect(looped).toMatchObject({ status: 508 });
      expect([a.chats(), b.chats()]).toEqual([2, 1]);
      // Two engines chained with no loop (an edge app before a central one, in one process too) serve as ever.
      const ok = await appAt(() => seedOptions(up, []));
      const edge = await appAt(() => ({ virtualKeys: { central: { provider: 'openai', api_key: 'sk-c', custom_host: `${ok.app.url}/v1` } }, config: { virtual_key: 'central' } }));
      expect((await sdk(edge.app.url).chat.completions.create({ model: 'gpt-4o', messages })).choices[0]!.message.content).toBe('Hello from openai');
      await edge.app.close();
      up.openai.reset();
      // A client's own request (no such header) reaches the upstream with this engine's name alone; one another
      // Switchyard sent goes on with its name first, for a loop through several engines to be found.
      await sdk(ok.app.url).chat.completions.create({ model: 'gpt-4o', messages });
      const ours = up.openai.requests[0]!.headers['x-switchyard-hop'];
      expect(ours).toMatch(/^[0-9a-f]{12}$/);
      await sdk(ok.app.url, { 'x-switchyard-hop': '0123456789ab' }).chat.completions.create({ model: 'gpt-4o', messages });
      expect(up.openai.requests[1]!.headers['x-switchyard-hop']).toBe(`0123456789ab, ${ours}`);
      // A client's own text there is not a Switchyard's name: not forwarded (nothing of the client's goes upstream).
      await sdk(ok.app.url, { 'x-switchyard-hop': 'hello provider' }).chat.completions.create({ model: 'gpt-4o', messages });
      expect(up.openai.requests[2]!.headers['x-switchyard-hop']).toBe(ours);
      await ok.app.close();
    } finally {
      warn.mockRestore();
      await Promise.all([self.app.close(), a.app.close(), b.app.close(), up.close()]);
    }
  });

  it("refuses a client's made-up chain of hop names without blaming the config, and still warns of a real loop after it", async () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const self = await appAt((url) => ({
      virtualKeys: { loop: { provider: 'openai', api_key: 'sk-loop', custom_host: `${url}/v1` } },
      config: { virtual_key: 'loop' },
    }));
    try {
      const made = Array.from({ length: 8 }, (_, i) => String(i).repeat(12)).join(',');
      const forged = await sdk(self.app.url, { 'x-switchyard-hop': made }).chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e);
      await sdk(self.app.url, { 'x-switchyard-hop': made }).chat.completions.create({ model: 'gpt-4o', messages }).catch(() => undefined); // said once
      expect(forged).toMatchObject({ status: 508, code: 'loop_detected', message: expect.stringContaining('or a client that sent that header itself') });
      const said = () => warn.mock.calls.map(([message]) => String(message));
      expect(said()).toEqual([expect.stringContaining('names 8 or more Switchyards')]);
      const looped = await sdk(self.app.url).chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e);
      expect(looped).toMatchObject({ status: 508, code: 'loop_detected' });
      await sdk(self.app.url).chat.completions.create({ model: 'gpt-4o', messages }).catch(() => undefined); // said once
      expect(said()).toEqual([expect.stringContaining('names 8 or more'), expect.stringContaining("a target's custom_host (or endpoint) leads back to this app")]);
    } finally {
      warn.mockRestore();
      await self.app.close();
    }
  });
});

describe('as a route handler in a Router mounted at /v1', () => {
  it("says once that the route and basePath disagree (every chat request reaches the host's 404), and serves with the basePath it names", async () => {
    const up = await startUpstreams();
    const logs: LogEvent[] = [];
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const mounted = (extra: { basePath?: string }) => {
      const v1 = express.Router();
      v1.post('/chat/completions', fallbackMiddleware(seedOptions(up, logs, extra)));
      const host = express();
      host.use('/v1', v1);
      return listen(createServer(host));
    };
    const wrong = await mounted({});
    const right = await mounted({ basePath: '' });
    try {
      for (let i = 0; i < 2; i++) {
        const res = await request(wrong.url).post('/v1/chat/completions').send({ model: 'gpt-4o', messages });
        expect(res.status).toBe(404);
      }
      expect(warn.mock.calls.map(([message]) => String(message))).toEqual([
        "Switchyard is the handler of a route that got POST /chat/completions, but it serves POST /v1/chat/completions (basePath counts from the path the framework passes it: here, basePath: ''); the request went on to next()",
      ]);
      const completion = await sdk(right.url).chat.completions.create({ model: 'gpt-4o', messages });
      expect(completion.choices[0]!.message.content).toBe('Hello from openai');
      expect(warn.mock.calls).toHaveLength(1);
    } finally {
      warn.mockRestore();
      await wrong.close();
      await right.close();
      await up.close();
    }
  });

  it('says nothing when it rightly passes a request on: behind a catch-all route of the host, or on a route that also matches other paths', async () => {
    const up = await startUpstreams();
    const logs: LogEvent[] = [];
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const host = express();
    // A CORS catch-all leaves req.route set for everything after it.
    host.all('/{*splat}', (_req: Request, _res: Response, next: NextFunction) => next());
    host.use(fallbackMiddleware(seedOptions(up, logs)));
    host.post('/login', (_req: Request, res: Response) => void res.send('login'));
    host.post('/legacy/v1/chat/completions', (_req: Request, res: Response) => void res.send('legacy'));
    host.post('/api/v1/{*rest}', fallbackMiddleware(seedOptions(up, logs, { basePath: '/api/v1' })));
    host.post('/api/v1/embeddings', (_req: Request, res: Response) => void res.send('embeddings'));
    const app = await listen(createServer(host));
    try {
      expect((await request(app.url).post('/login').send({})).text).toBe('login');
      expect((await request(app.url).post('/legacy/v1/chat/completions').send({})).text).toBe('legacy');
      expect((await request(app.url).post('/api/v1/embeddings').send({})).text).toBe('embeddings');
      expect((await sdk(`${app.url}/api`).chat.completions.create({ model: 'gpt-4o', messages })).choices[0]!.message.content).toBe('Hello from openai');
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
      await app.close();
      await up.close();
    }
  });
});

/** Two chat requests to a mis-mounted app: both reach the host's 404, and the first alone says why (`message`). */
async function expectPassedOnAndWarnedOnce(url: string, warn: jest.SpyInstance, message: string): Promise<void> {
  for (let i = 0; i < 2; i++) expect((await request(url).post('/v1/chat/completions').send({ model: 'gpt-4o', messages })).status).toBe(404);
  expect(warn.mock.calls.map(([said]) => String(said))).toEqual([message]);
}

describe("mounted with app.use('/v1', ...)", () => {
  it("with the full path as basePath, says once that Express cut the mount from the path it got, and serves with the basePath it names; rightly mounted, says nothing", async () => {
    const up = await startUpstreams();
    const logs: LogEvent[] = [];
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const mounted = (at: string, extra: { basePath?: string }) => {
      const host = express();
      host.use(at, fallbackMiddleware(seedOptions(up, logs, extra)));
      host.post('/api/legacy/chat/completions', (_req: Request, res: Response) => void res.send('legacy'));
      return listen(createServer(host));
    };
    const right = await mounted('/api', { basePath: '/v1' });
    const wrong = await mounted('/v1', {});
    const fixed = await mounted('/v1', { basePath: '' });
    try {
      expect((await request(right.url).post('/api/legacy/chat/completions').send({})).text).toBe('legacy');
      expect((await sdk(`${right.url}/api`).chat.completions.create({ model: 'gpt-4o', messages })).choices[0]!.message.content).toBe('Hello from openai');
      expect(warn).not.toHaveBeenCalled();
      await expectPassedOnAndWarnedOnce(wrong.url, warn, "Switchyard, mounted at /v1, got POST /v1/chat/completions as POST /chat/completions, but it serves POST /v1/chat/completions (basePath counts from the path the framework passes it: here, basePath: ''); the request went on to next()");
      expect((await sdk(fixed.url).chat.completions.create({ model: 'gpt-4o', messages })).choices[0]!.message.content).toBe('Hello from openai');
      expect(warn.mock.calls).toHaveLength(1);
    } finally {
      warn.mockRestore();
      await Promise.all([right.close(), wrong.close(), fixed.close(), up.close()]);
    }
  });
});

/** Fake upstreams, the process warnings caught, and a host app made by `mount` and listening. */
async function hostsWithWarnings() {
  const up = await startUpstreams();
  const logs: LogEvent[] = [];
  const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
  const app = (mount: (host: express.Express) => void) => {
    const host = express();
    mount(host);
    return listen(createServer(host));
  };
  return { up, logs, warn, app };
}

describe('under a prefix with route parameters (per tenant)', () => {
  it("says once what serves every tenant: mounted at /t/:tenant/v1 with the default basePath, or as a parameterised route's handler", async () => {
    const { up, logs, warn, app } = await hostsWithWarnings();
    const used = await app((host) => host.use('/t/:tenant/v1', fallbackMiddleware(seedOptions(up, logs))));
    const routed = await app((host) => host.post('/t/:tenant/v1/chat/completions', fallbackMiddleware(seedOptions(up, logs))));
    const fixed = await app((host) => host.use('/t/:tenant/v1', fallbackMiddleware(seedOptions(up, logs, { basePath: '' }))));
    try {
      const post = (url: string, tenant: string) => request(url).post(`/t/${tenant}/v1/chat/completions`).send({ model: 'gpt-4o', messages });
      for (const tenant of ['acme', 'globex']) expect((await post(used.url, tenant)).status).toBe(404);
      expect(warn.mock.calls.map(([said]) => String(said))).toEqual([
        "Switchyard, mounted at /t/acme/v1, got POST /t/acme/v1/chat/completions as POST /chat/completions, but it serves POST /v1/chat/completions (basePath counts from the path the framework passes it: here, basePath: ''); the request went on to next()",
      ]);
      warn.mockClear();
      for (const tenant of ['acme', 'globex']) expect((await post(routed.url, tenant)).status).toBe(404);
      expect(warn.mock.calls.map(([said]) => String(said))).toEqual([expect.stringContaining("route /t/:tenant/v1/chat/completions, which got POST /t/acme/v1/chat/completions, but it serves POST /v1/chat/completions: a basePath names one path")]);
      for (const tenant of ['acme', 'globex']) expect((await sdk(`${fixed.url}/t/${tenant}`).chat.completions.create({ model: 'gpt-4o', messages })).choices[0]!.message.content).toBe('Hello from openai');
    } finally {
      warn.mockRestore();
      await Promise.all([used.close(), routed.close(), fixed.close(), up.close()]);
    }
  });

  it("says nothing of a host route of its own below a right mount, and names several paths or a RegExp as a route's parameters, not a bare wildcard", async () => {
    const { up, logs, warn, app } = await hostsWithWarnings();
    const right = await app((host) => {
      host.use('/api', fallbackMiddleware(seedOptions(up, logs)));
      host.post('/api/legacy/v1/chat/completions', (_req: Request, res: Response) => void res.send('legacy'));
    });
    const several = await app((host) => host.post(['/a/v1/chat/completions', '/b/v1/chat/completions'], fallbackMiddleware(seedOptions(up, logs))));
    const regexp = await app((host) => host.post(/^\/t\/[^/]+\/v1\/chat\/completions$/, fallbackMiddleware(seedOptions(up, logs))));
    const wildcard = await app((host) => host.post('/{*rest}', fallbackMiddleware(seedOptions(up, logs))));
    const said = async (url: string, path: string) => {
      warn.mockClear();
      await request(url).post(path).send({ model: 'gpt-4o', messages });
      return warn.mock.calls.map(([message]) => String(message));
    };
    try {
      expect((await request(right.url).post('/api/legacy/v1/chat/completions').send({})).text).toBe('legacy');
      expect(warn).not.toHaveBeenCalled();
      expect(await said(several.url, '/a/v1/chat/completions')).toEqual([expect.stringContaining('a basePath names one path')]);
      expect(await said(regexp.url, '/t/acme/v1/chat/completions')).toEqual([expect.stringContaining('a basePath names one path')]);
      expect(await said(wildcard.url, '/legacy/v1/chat/completions')).toEqual([expect.stringContaining("(basePath counts from the path the framework passes it: here, basePath: '/legacy/v1')")]);
    } finally {
      warn.mockRestore();
      await Promise.all([right.close(), several.close(), regexp.close(), wildcard.close(), up.close()]);
    }
  });
});

describe("mounted at the chat route itself (app.use('/v1/chat/completions', auth, ...))", () => {
  it('says once how to mount it, as no basePath serves the / Express passes on; as the POST route\'s handler it serves', async () => {
    const up = await startUpstreams();
    const logs: LogEvent[] = [];
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const auth: RequestHandler = (_req, _res, next) => next();
    const wrong = express();
    wrong.use('/v1/chat/completions', auth, fallbackMiddleware(seedOptions(up, logs)));
    const right = express();
    right.post('/v1/chat/completions', auth, fallbackMiddleware(seedOptions(up, logs)));
    const [wrongApp, rightApp] = await Promise.all([listen(createServer(wrong)), listen(createServer(right))]);
    try {
      await expectPassedOnAndWarnedOnce(wrongApp.url, warn, "Switchyard, mounted at the chat route /v1/chat/completions, got POST /v1/chat/completions as POST /, and it serves POST {basePath}/chat/completions below its mount: mount it at /v1 with basePath: '', or make it the handler of a POST route on /v1/chat/completions; the request went on to next()");
      expect((await sdk(rightApp.url).chat.completions.create({ model: 'gpt-4o', messages })).choices[0]!.message.content).toBe('Hello from openai');
      expect(warn.mock.calls).toHaveLength(1);
      expect(up.openai.requests).toHaveLength(1);
    } finally {
      warn.mockRestore();
      await Promise.all([wrongApp.close(), rightApp.close(), up.close()]);
    }
  });
});

describe("mounted at Azure's path for code written on the SDK's AzureOpenAI class (README)", () => {
  it('serves it, falling back, JSON and streamed: the routing config picks the targets, the model the deployment', async () => {
    const up = await startUpstreams();
    const logs: LogEvent[] = [];
    const host = express();
    host.use('/openai/deployments/:deployment', fallbackMiddleware(seedOptions(up, logs, { basePath: '' })));
    const app = await listen(createServer(host));
    try {
      const azure = new AzureOpenAI({ endpoint: app.url, apiKey: 'client-key', apiVersion: '2024-10-21', deployment: 'whatever-it-was', maxRetries: 0 });
      up.openai.enqueue(replies.rateLimited());
      const { data, response } = await azure.chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
      expect([data.choices[0]!.message.content, response.headers.get('x-switchyard-target')]).toEqual(['Hello from azure', 'targets[1]']);
      up.openai.enqueue(replies.rateLimited());
      const stream = await azure.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      expect(text.length).toBeGreaterThan(0);
      expect(up.azure.requests.map((r) => r.path)).toEqual(['/openai/deployments/gpt4o-prod/chat/completions', '/openai/deployments/gpt4o-prod/chat/completions']);
      // The client's key and api-version stay with the app: the upstream got the virtual key's.
      expect(up.azure.requests[0]!.headers['api-key']).not.toBe('client-key');
    } finally {
      await Promise.all([app.close(), up.close()]);
    }
  });
});

// npm installs a second copy when an app's own @switchyard/core and an adapter's ranges differ.
it("is named, as an APM's Express instrumentation shows it ('middleware - switchyardFallback')", () => {
  const [serve] = fallbackMiddleware({ virtualKeys: { o: { provider: 'openai', api_key: 'sk-o' } }, config: { virtual_key: 'o' } });
  expect(serve.name).toBe('switchyardFallback');
});

it("names a Gateway from another copy of @switchyard/core as that, not as a bag of unknown options", () => {
  let Other: typeof Gateway | undefined;
  jest.isolateModules(() => {
    Other = (require('@switchyard/core') as { Gateway: typeof Gateway }).Gateway;
  });
  expect(Other).not.toBe(Gateway);
  const theirs = new Other!({ virtualKeys: {}, config: { provider: 'openai', api_key: 'sk-test' } });
  expect(() => fallbackMiddleware(theirs)).toThrow(
    'Invalid Switchyard options:\n  - gateway: is a Gateway from another copy of @switchyard/core than the one this package uses: install a single version (`npm ls @switchyard/core` lists them)',
  );
  // One from this copy is served through, as before.
  expect(fallbackMiddleware(new Gateway({ virtualKeys: {}, config: { provider: 'openai', api_key: 'sk-test' } }))).toHaveLength(2);
});

describe('bodies the bridge reads itself (mutation review)', () => {
  it('answers a body a host middleware consumed without leaving req.body as no body (400), instead of waiting forever', async () => {
    const up = await startUpstreams();
    const logs: LogEvent[] = [];
    const host = express();
    // A raw-body logger or signature check that reads the stream and keeps the bytes to itself.
    host.use((req: Request, _res: Response, next: NextFunction) => {
      req.on('data', () => {});
      req.on('end', () => next());
    });
    host.use(fallbackMiddleware(seedOptions(up, logs)));
    const app = await listen(createServer(host));
    try {
      const res = await fetch(`${app.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
        signal: AbortSignal.timeout(5_000),
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_request');
      expect(up.openai.requests).toHaveLength(0);
    } finally {
      await app.close();
      await up.close();
    }
  });

  it('logs 499 and lets drain() resolve when a client leaves in the middle of a gzip body', async () => {
    const { up, logs, gateway, app, arrived } = await appNotingArrivals();
    try {
      const gz = gzipSync(JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x'.repeat(20_000) }] }));
      const upload = httpRequest(`${app.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': gz.length },
      });
      upload.on('error', () => {});
      upload.write(gz.subarray(0, 20));
      await until(arrived);
      await new Promise((r) => setTimeout(r, 50));
      upload.destroy(); // the client leaves mid-body
      await until(() => logs.length > 0, 3_000);
      expect(logs.map((e) => [e.status, e.attempts.length])).toEqual([[499, 0]]);
      let drained = false;
      await Promise.race([gateway.drain().then(() => (drained = true)), new Promise((r) => setTimeout(r, 2_000))]);
      expect(drained).toBe(true);
      expect(up.openai.requests).toHaveLength(0);
    } finally {
      await app.close();
      await up.close();
    }
  });

  it('reads a body sent with content-encoding: identity (RFC 9110: no coding), as express.json() does', async () => {
    const up = await startUpstreams();
    const host = express();
    host.use(fallbackMiddleware(seedOptions(up, [])));
    const app = await listen(createServer(host));
    try {
      const res = await fetch(`${app.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': 'identity' },
        body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
      });
      expect(res.status).toBe(200);
      expect(up.openai.requests).toHaveLength(1);
    } finally {
      await app.close();
      await up.close();
    }
  });
});

/**
 * An Express app where Switchyard runs right after a middleware that notes each request's arrival: from then on the
 * request is Switchyard's, its body maybe still coming (a fixed wait for that lost the race under load).
 */
async function appNotingArrivals() {
  const up = await startUpstreams();
  const logs: LogEvent[] = [];
  const gateway = new Gateway(seedOptions(up, logs));
  const host = express();
  let seen = false;
  host.use((_req: Request, _res: Response, next: NextFunction) => {
    seen = true;
    next();
  });
  host.use(fallbackMiddleware(gateway));
  const app = await listen(createServer(host));
  return { up, logs, gateway, app, arrived: () => seen };
}

it("leaves a JSON parser's refusal to the host when middleware in front of the parser had already sent the headers", async () => {
  const up = await startUpstreams();
  const logs: LogEvent[] = [];
  const hostErrors: string[] = [];
  const host = express();
  host.use((_req: Request, res: Response, next: NextFunction) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('early ');
    next();
  });
  host.use(express.json());
  host.use(fallbackMiddleware(seedOptions(up, logs)));
  host.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
    hostErrors.push(err.name);
    res.end('host error handler');
  });
  const app = await listen(createServer(host));
  try {
    const res = await request(app.url).post('/v1/chat/completions').set('content-type', 'application/json').send('{"model": ');
    expect([res.status, res.text, hostErrors]).toEqual([200, 'early host error handler', ['SyntaxError']]);
    expect(up.openai.requests).toHaveLength(0);
  } finally {
    await app.close();
    await up.close();
  }
});

describe("the README's reload recipe (Rotating keys, reloading configs)", () => {
  it('swaps in a new Gateway: new requests (HTTP and in process) use the new key, the old gateway finishes its stream, then drains; invalid options keep the current one', async () => {
    // An OpenAI-compatible upstream that holds a stream after its first event until released, and records the key.
    const keys: string[] = [];
    const ports: number[] = [];
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    const upstream = createServer((req, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c));
      req.on('end', () => {
        keys.push(String(req.headers.authorization));
        ports.push(req.socket.remotePort!);
        const chunk = (content: string, finish: string | null) =>
          `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [{ index: 0, delta: finish ? {} : { content }, finish_reason: finish }] })}\n\n`;
        if ((JSON.parse(raw) as { stream?: boolean }).stream) {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write(chunk('Hello ', null));
          void released.then(() => res.end(`${chunk('world', null)}${chunk('', 'stop')}data: [DONE]\n\n`));
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: 'c2', object: 'chat.completion', created: 1, model: 'gpt-4o', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }] }));
      });
    });
    const up = await listen(upstream);
    const logs: LogEvent[] = [];
    let apiKey = 'sk-old-key-0000001';
    let valid = true;
    const loadOptions = () => ({
      virtualKeys: { 'openai-prod': { provider: 'openai' as const, api_key: apiKey, custom_host: `${up.url}/v1` } },
      config: valid ? { virtual_key: 'openai-prod' } : { virtual_key: 'no-such-key' },
      onLog: (event: LogEvent) => logs.push(event),
    });

    // The README's recipe, as written there.
    let gateway = new Gateway(loadOptions());
    let middleware = fallbackMiddleware(gateway);
    let client = createFallbackClient(gateway);
    const draining = new Set<Promise<void>>();
    const app = express();
    app.use((req: Request, res: Response, next: NextFunction) => middleware[0](req, res, next));
    app.use((err: unknown, req: Request, res: Response, next: NextFunction) => middleware[1](err, req, res, next));
    async function reload(): Promise<void> {
      const fresh = new Gateway(loadOptions());
      const old = gateway;
      [gateway, middleware, client] = [fresh, fallbackMiddleware(fresh), createFallbackClient(fresh)];
      const drained = old.drain();
      draining.add(drained);
      await drained;
      draining.delete(drained);
    }

    const host = await listen(createServer(app));
    try {
      const stream = await sdk(host.url).chat.completions.create({ model: 'gpt-4o', messages, stream: true });
      const reader = stream[Symbol.asyncIterator]();
      expect((await reader.next()).value?.choices[0]?.delta.content).toBe('Hello ');
      const oldClient = client;

      apiKey = 'sk-new-key-0000002';
      let reloaded = false;
      const reloading = reload().then(() => (reloaded = true));
      // New requests go through the new gateway, with the new key; the old in-process client keeps its old config.
      expect((await sdk(host.url).chat.completions.create({ model: 'gpt-4o', messages })).choices[0]!.message.content).toBe('ok');
      await oldClient.chat.completions.create({ model: 'gpt-4o', messages });
      await client.chat.completions.create({ model: 'gpt-4o', messages });
      expect(keys).toEqual(['Bearer sk-old-key-0000001', 'Bearer sk-new-key-0000002', 'Bearer sk-old-key-0000001', 'Bearer sk-new-key-0000002']);
      // Gateways share their connection pool: the old gateway's call took the connection the new one opened.
      expect([ports[1] !== ports[0], ports[2]]).toEqual([true, ports[1]]);
      // The old gateway still has its stream open: it has not drained.
      await new Promise((r) => setImmediate(r));
      expect([reloaded, draining.size]).toEqual([false, 1]);

      // The stream started before the reload finishes whole on the old gateway; then the old gateway drains.
      release();
      let rest = '';
      for (let r = await reader.next(); !r.done; r = await reader.next()) rest += r.value.choices[0]?.delta.content ?? '';
      expect(rest).toBe('world');
      await reloading;
      expect(draining.size).toBe(0);
      expect(logs.find((e) => e.stream)).toMatchObject({ status: 200 });

      // Invalid options throw in reload(): the gateway in use keeps serving.
      valid = false;
      await expect(reload()).rejects.toThrow(/config\.virtual_key/);
      expect((await sdk(host.url).chat.completions.create({ model: 'gpt-4o', messages })).choices[0]!.message.content).toBe('ok');
      expect(keys.at(-1)).toBe('Bearer sk-new-key-0000002');
    } finally {
      release();
      await Promise.all([host.close(), up.close()]);
    }
  });
});

it("a config chosen on the server (README's req.headers['x-switchyard-config'] = configFor(req.user)) overrides the client's header, and deleting it serves the default", async () => {
  const up = await startUpstreams();
  const logs: LogEvent[] = [];
  const virtualKeys = seedOptions(up, logs).virtualKeys;
  const plans: Record<string, string | undefined> = { 'Bearer sk-paid': 'fallback-429', 'Bearer sk-free': undefined };
  const app = express();
  app.use('/v1', (req: Request, _res: Response, next: NextFunction) => {
    const chosen = plans[req.get('authorization') ?? ''];
    if (chosen === undefined) delete req.headers['x-switchyard-config'];
    else req.headers['x-switchyard-config'] = chosen;
    next();
  });
  // The README's "Several routing configs", with the config also kept as the default.
  app.use(fallbackMiddleware({
    virtualKeys,
    config: { strategy: { mode: 'single' }, targets: [{ virtual_key: 'openai-prod' }] },
    configs: {
      'fallback-429': { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] },
      'azure-only': { strategy: { mode: 'single' }, targets: [{ virtual_key: 'azure-prod' }] },
    },
    onLog: (event) => logs.push(event),
  }));
  const host = await listen(createServer(app));
  try {
    for (const apiKey of ['sk-paid', 'sk-free']) {
      const { OpenAI } = await import('openai');
      const openai = new OpenAI({ baseURL: `${host.url}/v1`, apiKey, maxRetries: 0, defaultHeaders: { 'x-switchyard-config': 'azure-only' } });
      const { response } = await openai.chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
      expect(response.headers.get('x-switchyard-target')).toBe('targets[0]');
    }
    expect([up.openai.requests.length, up.azure.requests.length]).toEqual([2, 0]);
    await until(() => logs.length === 2);
    expect(logs.map((e) => e.configId).sort()).toEqual(['fallback-429', null].sort());
  } finally {
    await Promise.all([host.close(), up.close()]);
  }
});
