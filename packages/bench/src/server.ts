/**
 * One server under test, started by the runner as `taskset -c 1 node server.js <system>` (its own core), upstreams
 * in BENCH_OPENAI / BENCH_AZURE. It answers memory questions on its IPC channel, never on the HTTP path.
 */
import 'reflect-metadata';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Koa from 'koa';
import { Controller, Module, Post, Req, Res, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import OpenAI, { AzureOpenAI } from 'openai';
import type { SwitchyardOptions } from '@switchyard/core';
import { fallbackMiddleware as expressFallback } from '@switchyard/express';
import { badGateway, createFloorProxy, passHeaders, pipeTo, readRaw } from './floor-proxy';
import { AZURE_API_VERSION, AZURE_DEPLOYMENT, ROUTE, type ChildReply, type ChildRequest, type SystemName, type Upstreams } from './shared';

const upstreams: Upstreams = { openai: process.env.BENCH_OPENAI!, azure: process.env.BENCH_AZURE! };

/** Switchyard with the README's quick-start options: OpenAI first, Azure OpenAI on 429/5xx. */
export function switchyardOptions(up: Upstreams): SwitchyardOptions {
  return {
    virtualKeys: {
      'openai-prod': { provider: 'openai', api_key: 'sk-bench-openai', custom_host: `${up.openai}/v1` },
      'azure-prod': { provider: 'azure-openai', api_key: 'bench-azure-key', custom_host: `${up.azure}/openai`, deployment_id: AZURE_DEPLOYMENT },
    },
    config: {
      strategy: { mode: 'fallback', on_status_codes: [429, 500, 502, 503, 504] },
      targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }],
    },
  };
}

function listen(server: Server): Promise<number> {
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

/** The floor's handler for a raw Node request: read, forward with fallback, pipe. */
function floorHandler() {
  const proxy = createFloorProxy(upstreams);
  return (req: IncomingMessage, res: ServerResponse): void => {
    readRaw(req)
      .then((body) => proxy.forward(body))
      .then((up) => pipeTo(up, res))
      .catch(() => badGateway(res));
  };
}

async function floorNode(): Promise<number> {
  const handle = floorHandler();
  return listen(
    createServer((req, res) => {
      if (req.method === 'POST' && req.url === ROUTE) return handle(req, res);
      res.writeHead(404).end();
    }),
  );
}

async function floorExpress(): Promise<number> {
  const app = express();
  app.post(ROUTE, floorHandler());
  return listen(createServer(app));
}

async function floorKoa(): Promise<number> {
  const proxy = createFloorProxy(upstreams);
  const app = new Koa();
  app.use(async (ctx, next) => {
    if (ctx.method !== 'POST' || ctx.path !== ROUTE) return next();
    const up = await proxy.forward(await readRaw(ctx.req));
    ctx.status = up.statusCode ?? 502;
    ctx.set(passHeaders(up));
    ctx.body = up; // Koa pipes a stream body
  });
  return listen(createServer(app.callback()));
}

async function nestApp(module: DynamicModule | (new () => unknown)): Promise<number> {
  const app = await NestFactory.create(module, { logger: false });
  await app.init();
  return listen(app.getHttpServer() as Server);
}

async function floorNest(): Promise<number> {
  const proxy = createFloorProxy(upstreams);
  @Controller()
  class FloorController {
    // Nest's default JSON body parser has already read the body: the floor encodes it again, as any route must.
    @Post(ROUTE.slice(1))
    forward(@Req() req: IncomingMessage & { body?: unknown }, @Res() res: ServerResponse): void {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.from(JSON.stringify(req.body));
      proxy.forward(body).then((up) => pipeTo(up, res), () => badGateway(res));
    }
  }
  @Module({ controllers: [FloorController] })
  class FloorModule {}
  return nestApp(FloorModule);
}

async function switchyardExpress(): Promise<number> {
  const app = express();
  app.use(expressFallback(switchyardOptions(upstreams)));
  return listen(createServer(app));
}

async function switchyardKoa(): Promise<number> {
  // Loaded at run time: the runner only asks for this system once @switchyard/koa builds.
  const { fallbackMiddleware } = require('@switchyard/koa') as { fallbackMiddleware(o: SwitchyardOptions): Koa.Middleware };
  const app = new Koa();
  app.use(fallbackMiddleware(switchyardOptions(upstreams)));
  return listen(createServer(app.callback()));
}

async function switchyardNest(): Promise<number> {
  const { SwitchyardModule } = require('@switchyard/nestjs') as { SwitchyardModule: { forRoot(o: unknown): DynamicModule } };
  @Module({ imports: [SwitchyardModule.forRoot({ ...switchyardOptions(upstreams), route: { path: ROUTE.slice(1) } })] })
  class AppModule {}
  return nestApp(AppModule);
}

/** What users write without Switchyard: the official SDK, no retries, try/catch fallback to AzureOpenAI. */
async function sdkExpress(): Promise<number> {
  const openai = new OpenAI({ apiKey: 'sk-bench-openai', baseURL: `${upstreams.openai}/v1`, maxRetries: 0 });
  const azure = new AzureOpenAI({
    apiKey: 'bench-azure-key', endpoint: upstreams.azure, apiVersion: AZURE_API_VERSION, deployment: AZURE_DEPLOYMENT, maxRetries: 0,
  });
  const app = express();
  app.use(express.json());
  app.post(ROUTE, async (req, res) => {
    const body = req.body as OpenAI.Chat.ChatCompletionCreateParams;
    const create = async (client: OpenAI) => client.chat.completions.create(body);
    let result: Awaited<ReturnType<typeof create>>;
    try {
      try {
        result = await create(openai);
      } catch (err) {
        const status = (err as { status?: number }).status;
        if (status !== 429 && !(status !== undefined && status >= 500)) throw err;
        result = await create(azure);
      }
    } catch (err) {
      const e = err as { status?: number; error?: unknown };
      res.status(e.status ?? 502).json({ error: e.error ?? { message: 'upstream failed' } });
      return;
    }
    if (!(Symbol.asyncIterator in result)) {
      res.json(result);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    for await (const chunk of result) res.write(`data: ${JSON.stringify(chunk)}\n\n`);
    res.end('data: [DONE]\n\n');
  });
  return listen(createServer(app));
}

const systems: Partial<Record<SystemName, () => Promise<number>>> = {
  'floor-node': floorNode,
  'floor-express': floorExpress,
  'floor-koa': floorKoa,
  'floor-nest': floorNest,
  'switchyard-express': switchyardExpress,
  'switchyard-koa': switchyardKoa,
  'switchyard-nest': switchyardNest,
  'sdk-express': sdkExpress,
};

async function main(): Promise<void> {
  const name = process.argv[2] as SystemName;
  const start = systems[name];
  if (!start) throw new Error(`unknown system ${name}`);
  const port = await start();
  process.on('message', (msg: ChildRequest) => {
    if (msg.type !== 'mem') return;
    if (msg.gc && typeof global.gc === 'function') global.gc();
    const m = process.memoryUsage();
    process.send!({ type: 'mem', rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal } satisfies ChildReply);
  });
  process.on('disconnect', () => process.exit(0));
  process.send!({ type: 'ready', port } satisfies ChildReply);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
