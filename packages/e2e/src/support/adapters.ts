/** The adapters under test, each started as a real HTTP server on loopback (port 0). */
import type { AddressInfo } from 'node:net';
import { createServer, type Server, type ServerResponse } from 'node:http';
import 'reflect-metadata';
import express from 'express';
import Koa from 'koa';
import { bodyParser } from '@koa/bodyparser';
import { Controller, Get, Module, type CanActivate, type INestApplication, type Type } from '@nestjs/common';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Gateway, handleNodeRequest, type SwitchyardOptions } from '@switchyard/core';
import { fallbackMiddleware } from '@switchyard/express';
import { fallbackMiddleware as koaFallbackMiddleware } from '@switchyard/koa';
import { SwitchyardModule } from '@switchyard/nestjs';

export interface RunningApp {
  /** `http://127.0.0.1:PORT` */
  url: string;
  close(): Promise<void>;
}

export interface AdapterUnderTest {
  name: string;
  /** The host parses JSON before Switchyard sees the request. */
  hostParsesJson?: boolean;
  /** That parser answers the bodies it refuses (invalid JSON) in its own format: Switchyard never sees them. */
  hostAnswersParserErrors?: boolean;
  /** That parser refuses an empty JSON body itself (Fastify), where others pass `{}` on. */
  hostRefusesEmptyJson?: boolean;
  /** That parser does not inflate a compressed body (Fastify's): what it does with one is the host's. */
  hostCannotInflate?: boolean;
  /** The host refuses a form-encoded body itself (Fastify: 415 for a content type it has no parser for). */
  hostRefusesForms?: boolean;
  /** Starts a host app with Switchyard mounted and one business route `GET /health` of its own. */
  start(options: SwitchyardOptions, host?: HostMiddleware): Promise<RunningApp>;
}

/** The host's own async middleware in front of Switchyard (auth, rate limits), after its body parser. */
export interface HostMiddleware {
  before(res: ServerResponse): Promise<void>;
}

export function listen(server: Server): Promise<RunningApp> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

/** Plain node:http, as the README shows it: the chat route through `handleNodeRequest`, everything else the host's. */
export const nodeAdapter: AdapterUnderTest = {
  name: 'node:http',
  start(options, host) {
    const gateway = new Gateway(options);
    const server = createServer((req, res) => {
      const path = (req.url ?? '').split('?', 1)[0]!;
      if (req.method === 'POST' && gateway.isChatPath(path)) {
        void (host ? host.before(res) : Promise.resolve()).then(() => handleNodeRequest(gateway, req, res));
        return;
      }
      if (req.method === 'GET' && path === '/health') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"Not found","type":"invalid_request_error","param":null,"code":null}}');
    });
    return listen(server);
  },
};

// The previous majors, which the adapters' peer ranges accept and many apps still run (installed as aliases).
export const express4 = require('express4') as typeof express;
const Koa2 = require('koa2') as typeof Koa;

/** An Express app (5, or 4 when given) with Switchyard mounted, optionally behind `express.json()`. */
function expressApp(options: SwitchyardOptions, withJson: boolean, lib: typeof express = express, host?: HostMiddleware): Server {
  const app = lib();
  if (withJson) app.use(lib.json({ limit: '20mb' }));
  if (host) app.use((_req, res, next) => void host.before(res).then(() => next()));
  app.use(fallbackMiddleware(options));
  app.get('/health', (_req, res) => {
    res.json({ ok: true });
  });
  return createServer(app);
}

export const expressAdapter: AdapterUnderTest = {
  name: 'express',
  start: (options, host) => listen(expressApp(options, false, express, host)),
};

/** Express with `express.json()` in front: the middleware must use the parsed body. */
export const expressJsonAdapter: AdapterUnderTest = {
  name: 'express + express.json()',
  hostParsesJson: true,
  start: (options, host) => listen(expressApp(options, true, express, host)),
};

/** Express 4 with its `express.json()` (body-parser 1, which sets `req.body = {}` when it skips a request). */
export const express4Adapter: AdapterUnderTest = {
  name: 'express 4 + express.json()',
  hostParsesJson: true,
  start: (options, host) => listen(expressApp(options, true, express4, host)),
};

function koaApp(options: SwitchyardOptions, withBodyParser: boolean, Lib: typeof Koa = Koa, host?: HostMiddleware): Koa {
  const app = new Lib();
  if (withBodyParser) app.use(bodyParser({ jsonLimit: '20mb' }));
  if (host) {
    app.use(async (ctx, next) => {
      await host.before(ctx.res);
      await next();
    });
  }
  app.use(koaFallbackMiddleware(options));
  app.use(async (ctx, next) => {
    if (ctx.method === 'GET' && ctx.path === '/health') ctx.body = { ok: true };
    else await next();
  });
  return app;
}

export const koaAdapter: AdapterUnderTest = {
  name: 'koa',
  start: (options, host) => listen(createServer(koaApp(options, false, Koa, host).callback())),
};

export const koa2Adapter: AdapterUnderTest = {
  name: 'koa 2',
  start: (options, host) => listen(createServer(koaApp(options, false, Koa2, host).callback())),
};

export const koaBodyParserAdapter: AdapterUnderTest = {
  name: 'koa + @koa/bodyparser',
  hostParsesJson: true,
  hostAnswersParserErrors: true,
  start: (options, host) => listen(createServer(koaApp(options, true, Koa, host).callback())),
};

@Controller()
class HealthController {
  @Get('health')
  health(): { ok: boolean } {
    return { ok: true };
  }
}

/** Listens on loopback port 0 and gives the URL (Nest may report `[::1]` for a loopback listener). */
export async function listenNest(app: INestApplication): Promise<RunningApp> {
  await app.listen(0, '127.0.0.1');
  return { url: (await app.getUrl()).replace('[::1]', '127.0.0.1'), close: () => app.close() };
}

/**
 * The host app of both NestJS adapters: Switchyard's route, `GET /health`, and the host's check as a guard (guards run
 * after the body parser on Express and on Fastify alike; Fastify runs middleware before it parses the body).
 */
function nestAppModule(options: SwitchyardOptions, host?: HostMiddleware): Type<unknown> {
  const guard: CanActivate = {
    canActivate: async (context) => {
      const res = context.switchToHttp().getResponse<ServerResponse & { raw?: ServerResponse }>();
      await host!.before(res.raw ?? res);
      return true;
    },
  };
  @Module({
    imports: [SwitchyardModule.forRoot({ ...options, route: { path: 'v1/chat/completions' } })],
    controllers: [HealthController],
    providers: host ? [{ provide: APP_GUARD, useValue: guard }] : [],
  })
  class AppModule {}
  return AppModule;
}

// forceCloseConnections, like the other adapters' close(): open keep-alive connections of the test's clients are
// closed, not awaited (an aborted SDK request leaves one that otherwise holds app.close() for seconds).

/** NestJS (Express platform, its default JSON body parser on) with Switchyard's OpenAI-compatible route. */
export const nestAdapter: AdapterUnderTest = {
  name: 'nestjs route',
  hostParsesJson: true,
  hostAnswersParserErrors: true,
  async start(options, host) {
    const app = await NestFactory.create<NestExpressApplication>(nestAppModule(options, host), { logger: false, forceCloseConnections: true });
    app.useBodyParser('json', { limit: '20mb' });
    return listenNest(app);
  },
};

/** NestJS on Fastify (its JSON parser in front, which answers what it refuses, an empty JSON body too). */
export const nestFastifyAdapter: AdapterUnderTest = {
  name: 'nestjs route on fastify',
  hostParsesJson: true,
  hostAnswersParserErrors: true,
  hostRefusesEmptyJson: true,
  hostCannotInflate: true,
  hostRefusesForms: true,
  async start(options, host) {
    const fastify = new FastifyAdapter({ bodyLimit: 20 * 1024 * 1024, routerOptions: { ignoreTrailingSlash: true }, forceCloseConnections: true });
    return listenNest(await NestFactory.create<NestFastifyApplication>(nestAppModule(options, host), fastify, { logger: false }));
  },
};

/** Nest's two HTTP platforms, for tests of the Nest package's own pieces in a host app. */
export const nestPlatforms: Array<[string, (module: Type<unknown>) => Promise<INestApplication>]> = [
  ['express', (module) => NestFactory.create(module, { logger: false, forceCloseConnections: true })],
  ['fastify', (module) => NestFactory.create<NestFastifyApplication>(module, new FastifyAdapter({ forceCloseConnections: true }), { logger: false })],
];

export const adapters: AdapterUnderTest[] = [
  nodeAdapter, expressAdapter, expressJsonAdapter, express4Adapter, koaAdapter, koaBodyParserAdapter, koa2Adapter, nestAdapter, nestFastifyAdapter,
];
