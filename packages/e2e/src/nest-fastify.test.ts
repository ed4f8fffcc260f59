/**
 * NestJS on Fastify, beyond the behaviour suite: the route takes Fastify's reply over (hijack) and writes Node's
 * response itself, so what the host's Fastify hooks set on the reply must still reach the client.
 */
import 'reflect-metadata';
import type { ServerResponse } from 'node:http';
import { Controller, Inject, Module, Post, RequestTimeoutException, Res, type CallHandler, type NestInterceptor } from '@nestjs/common';
import { APP_FILTER, APP_INTERCEPTOR } from '@nestjs/core';
import { catchError, throwError, timeout } from 'rxjs';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import request from 'supertest';
import { MemoryLogStore, type LogEvent } from '@switchyard/core';
import { SwitchyardExceptionFilter, SwitchyardModule, SwitchyardService } from '@switchyard/nestjs';
import { listenNest } from './support/adapters';
import { replies } from '@switchyard/testing';
import { messages, sdk, seedOptions, until, useUpstreams } from './support/fixture';

describe('NestJS on Fastify: the chat route', () => {
  const { up, logs, track } = useUpstreams();

  async function start(): Promise<string> {
    @Module({ imports: [SwitchyardModule.forRoot({ ...seedOptions(up, logs), route: { path: 'v1/chat/completions' } })] })
    class AppModule {}
    const app = await NestFactory.create<NestFastifyApplication>(AppModule, new FastifyAdapter({ forceCloseConnections: true }), { logger: false });
    // A host hook, as request-id or rate-limit plugins add: it sets a header on the reply before the route runs.
    app.getHttpAdapter().getInstance().addHook('onRequest', async (_req, reply) => {
      reply.header('x-host-request-id', 'rid-1');
    });
    return track(await listenNest(app));
  }

  it("keeps the headers the host's hooks set, on answers, streams and errors", async () => {
    const url = await start();
    const json = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
    expect(json.response.headers.get('x-host-request-id')).toBe('rid-1');
    expect(json.response.headers.get('x-switchyard-target')).toBe('targets[0]');

    const stream = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages, stream: true }).withResponse();
    for await (const _ of stream.data);
    expect(stream.response.headers.get('x-host-request-id')).toBe('rid-1');

    const refused = await request(url).post('/v1/chat/completions').send({ model: 'gpt-4o' });
    expect([refused.status, refused.body.error.code, refused.headers['x-host-request-id']]).toEqual([400, 'invalid_request', 'rid-1']);
    // Fastify passes the JSON null on as the body: no object, not a request without a body.
    const nullBody = await request(url).post('/v1/chat/completions').set('content-type', 'application/json').send('null');
    expect([nullBody.status, nullBody.body.error?.message]).toEqual([400, 'The request body must be a JSON object.']);
    expect(up.openai.requests).toHaveLength(2);
  });

  it('reads a JSON body Fastify hands on as text (text/plain) with a byte order mark before it, as the same body read raw', async () => {
    const url = await start();
    const json = JSON.stringify({ model: 'gpt-4o', messages });
    const res = await request(url).post('/v1/chat/completions').set('content-type', 'text/plain').send(`\ufeff${json}`);
    expect([res.status, res.body.error]).toEqual([200, undefined]);
    expect(up.openai.requests[0]!.rawBody).toBe(json);
  });

  it("leaves the reply to Nest until it writes: an interceptor's timeout is answered as on Express, and stops the upstream", async () => {
    class Timeout implements NestInterceptor {
      intercept(_ctx: unknown, next: CallHandler) {
        return next.handle().pipe(timeout(300), catchError(() => throwError(() => new RequestTimeoutException())));
      }
    }
    @Module({
      imports: [SwitchyardModule.forRoot({ ...seedOptions(up, logs), route: { path: 'v1/chat/completions' } })],
      providers: [{ provide: APP_INTERCEPTOR, useClass: Timeout }],
    })
    class AppModule {}
    const app = await NestFactory.create<NestFastifyApplication>(AppModule, new FastifyAdapter({ forceCloseConnections: true }), { logger: false });
    const url = track(await listenNest(app));
    up.openai.enqueue({ delayMs: 1500 });
    const res = await request(url).post('/v1/chat/completions').send({ model: 'gpt-4o', messages });
    expect([res.status, res.body.statusCode]).toEqual([408, 408]);
    await until(() => logs.length === 1);
    expect(logs[0]!.attempts[0]!.error?.code).toBe('host_answered');
  });
});

describe('NestJS on Fastify: the exception filter', () => {
  const { up, logs, track } = useUpstreams();

  it.each([
    ['an APP_FILTER, given the HttpAdapterHost', true],
    ['made with new, without it', false],
  ])("keeps the headers the host's hooks set on an error it answers (%s)", async (_form, appFilter) => {
    @Controller()
    class Summaries {
      constructor(@Inject(SwitchyardService) private readonly switchyard: SwitchyardService) {}
      @Post('summaries')
      async summarise(): Promise<unknown> {
        return this.switchyard.createChatCompletion({ model: 'gpt-4o', messages });
      }
      /** Opens its event stream on Node's response before asking (the reply is not taken over). */
      @Post('relayed-early')
      async relayedEarly(@Res() reply: { raw: ServerResponse }): Promise<void> {
        reply.raw.writeHead(200, { 'content-type': 'text/event-stream' });
        reply.raw.write(': waiting\n\n');
        await this.switchyard.createChatCompletion({ model: 'gpt-4o', messages, stream: true });
        reply.raw.end('data: [DONE]\n\n');
      }
    }
    @Module({
      imports: [SwitchyardModule.forRoot(seedOptions(up, logs))],
      controllers: [Summaries],
      providers: appFilter ? [{ provide: APP_FILTER, useClass: SwitchyardExceptionFilter }] : [],
    })
    class AppModule {}
    const app = await NestFactory.create<NestFastifyApplication>(AppModule, new FastifyAdapter({ forceCloseConnections: true }), { logger: false });
    if (!appFilter) app.useGlobalFilters(new SwitchyardExceptionFilter());
    // A host hook, as request-id or rate-limit plugins add: it sets a header on the reply.
    app.getHttpAdapter().getInstance().addHook('onRequest', async (_req, reply) => {
      reply.header('x-host-request-id', 'rid-1');
    });
    const url = track(await listenNest(app));
    up.openai.enqueue(replies.rateLimited());
    up.azure.enqueue(replies.rateLimited(3));
    const res = await request(url).post('/summaries');
    expect([res.status, res.headers['retry-after'], res.headers['x-host-request-id']]).toEqual([429, '3', 'rid-1']);
    // Headers already sent (without the hook's: the handler wrote them itself): the error goes as the last event.
    up.openai.enqueue(replies.rateLimited());
    up.azure.enqueue(replies.rateLimited(3));
    const early = await request(url).post('/relayed-early').buffer(true).parse((r, done) => {
      let text = '';
      r.on('data', (d: Buffer) => (text += d.toString()));
      r.on('end', () => done(null, text));
    });
    expect(early.body).toMatch(/^: waiting\n\ndata: \{"error":\{[^\n]*\}\}\n\n$/);
  });
});

describe('NestJS on Fastify: the logs endpoint', () => {
  const { up, logs, track } = useUpstreams();
  const TOKEN = 'fastify-logs-token-0123';
  const auth = { authorization: `Bearer ${TOKEN}` };

  it('is found below a global prefix named like its own path (logs/logs/...)', async () => {
    const store = new MemoryLogStore();
    @Module({ imports: [SwitchyardModule.forRoot({ ...seedOptions(up, logs, { logSinks: [store] }), logs: { path: 'logs', store, token: TOKEN } })] })
    class AppModule {}
    const app = await NestFactory.create<NestFastifyApplication>(AppModule, new FastifyAdapter({ forceCloseConnections: true }), { logger: false });
    app.setGlobalPrefix('logs');
    const url = track(await listenNest(app));
    const list = await request(url).get('/logs/logs/api/requests').set(auth);
    expect([list.status, list.body.data]).toEqual([200, []]);
    // A method the endpoint does not serve: its JSON 405, as in Express and Koa, not Nest's own 404.
    const post = await request(url).post('/logs/logs/api/requests').set(auth);
    expect([post.status, post.headers.allow, post.body.error?.code]).toEqual([405, 'GET, HEAD', 'method_not_allowed']);
  });

  it('serves the API and the viewer below its path, behind a global prefix (Fastify gives its middleware no route params)', async () => {
    const store = new MemoryLogStore();
    @Module({
      imports: [
        SwitchyardModule.forRoot({
          ...seedOptions(up, logs, { logSinks: [store] }),
          route: { path: 'v1/chat/completions' },
          logs: { path: 'switchyard/logs', store, token: TOKEN, viewer: true },
        }),
      ],
    })
    class AppModule {}
    const app = await NestFactory.create<NestFastifyApplication>(AppModule, new FastifyAdapter({ forceCloseConnections: true }), { logger: false });
    app.setGlobalPrefix('api');
    const url = track(await listenNest(app));
    up.openai.enqueue(replies.rateLimited());
    await sdk(`${url}/api`, { 'x-switchyard-trace-id': 'fastify-1' }).chat.completions.create({ model: 'gpt-4o', messages });
    await until(() => logs.length === 1);

    const list = await request(url).get('/api/switchyard/logs/api/requests?traceId=fastify-1').set(auth);
    expect([list.status, list.headers['content-type']]).toEqual([200, expect.stringMatching(/^application\/json/)]);
    const [event] = (list.body as { data: LogEvent[] }).data;
    expect(event).toMatchObject({ traceId: 'fastify-1', fallback: true });
    const one = await request(url).get(`/api/switchyard/logs/api/requests/${event!.requestId}`).set(auth);
    expect(one.body).toMatchObject({ requestId: event!.requestId, attempts: [{ status: 429 }, { status: 200 }] });
    // Routes match regardless of case on Nest: the API below the mount too, not the viewer page instead.
    const cased = await request(url).get('/api/Switchyard/Logs/api/requests?traceId=fastify-1').set(auth);
    expect([cased.status, cased.body.data?.length]).toEqual([200, 1]);
    const bad = await request(url).get('/api/switchyard/logs/api/requests?bogus=1').set(auth);
    expect([bad.status, bad.body.error?.param]).toEqual([400, 'bogus']);
    expect((await request(url).get('/api/switchyard/logs/api/requests')).status).toBe(401);
    const page = await request(url).get('/api/switchyard/logs/');
    expect([page.status, page.headers['content-type']]).toEqual([200, expect.stringMatching(/^text\/html/)]);
  });
});
