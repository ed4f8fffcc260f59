import 'reflect-metadata';
import {
  Body, Controller, Get, Inject, Injectable, Module, Post, RequestTimeoutException, Scope, UnauthorizedException, UseGuards, VersioningType,
  type CallHandler, type CanActivate, type ExecutionContext, type NestInterceptor, type OnApplicationShutdown,
} from '@nestjs/common';
import { APP_GUARD, APP_INTERCEPTOR, NestFactory, REQUEST } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { catchError, throwError, timeout } from 'rxjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import type { LogEvent } from '@switchyard/core';
import { SqliteLogStore } from '@switchyard/logs';
import { SWITCHYARD_OPTIONS, SwitchyardModule, SwitchyardService, type SwitchyardModuleOptions } from '@switchyard/nestjs';
import { replies, startFakeAzureOpenAI, startFakeOpenAI, type FakeProvider } from '@switchyard/testing';
import { listenNest, nestPlatforms } from './support/adapters';
import { until } from './support/fixture';

// What a Nest developer wires around the module (CORS, auth guards, timeouts, request scope, the testing module's
// overrides, app contexts without HTTP, closing twice): each keeps working as it does for the app's own routes.

let openai: FakeProvider;
let azure: FakeProvider;
const options = (): SwitchyardModuleOptions => ({
  virtualKeys: {
    'openai-prod': { provider: 'openai', api_key: 'sk-o', custom_host: openai.baseURL },
    'azure-prod': { provider: 'azure-openai', api_key: 'az', custom_host: azure.baseURL, deployments: { 'gpt-4o': 'gpt4o-prod' } },
  },
  config: { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] },
});
const messages = [{ role: 'user' as const, content: 'hi' }];
const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

beforeAll(async () => {
  [openai, azure] = await Promise.all([startFakeOpenAI({ name: 'openai' }), startFakeAzureOpenAI({ name: 'azure' })]);
});
afterAll(() => Promise.all([openai.close(), azure.close()]));
beforeEach(() => {
  openai.reset();
  azure.reset();
});

describe.each(nestPlatforms)('NestJS on %s, as its developers wire it', (_platform, create) => {
  it("answers app.enableCors()'s preflight, and its answers, errors and streams carry the CORS headers", async () => {
    @Module({ imports: [SwitchyardModule.forRoot({ ...options(), route: { path: 'v1/chat/completions' } })] })
    class App {}
    const nest = await create(App);
    nest.enableCors({ origin: 'https://ui.example', exposedHeaders: ['x-request-id', 'x-switchyard-trace-id'] });
    const app = await listenNest(nest);
    try {
      const origin = { origin: 'https://ui.example' };
      const preflight = await fetch(`${app.url}/v1/chat/completions`, {
        method: 'OPTIONS',
        headers: { ...origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,authorization' },
      });
      expect([preflight.status, preflight.headers.get('access-control-allow-origin')]).toEqual([204, 'https://ui.example']);
      expect(openai.requests).toHaveLength(0);
      const ok = await post(`${app.url}/v1/chat/completions`, { model: 'gpt-4o', messages }, origin);
      expect([ok.status, ok.headers.get('access-control-allow-origin')]).toEqual([200, 'https://ui.example']);
      expect(ok.headers.get('access-control-expose-headers')).toMatch(/x-request-id/);
      openai.enqueue(replies.rateLimited());
      azure.enqueue(replies.rateLimited());
      const failed = await post(`${app.url}/v1/chat/completions`, { model: 'gpt-4o', messages }, origin);
      expect([failed.status, failed.headers.get('access-control-allow-origin')]).toEqual([429, 'https://ui.example']);
      const stream = await post(`${app.url}/v1/chat/completions`, { model: 'gpt-4o', messages, stream: true }, origin);
      expect([stream.headers.get('content-type'), stream.headers.get('access-control-allow-origin')]).toEqual([expect.stringMatching(/^text\/event-stream/), 'https://ui.example']);
      expect(await stream.text()).toMatch(/\[DONE\]/);
    } finally {
      await app.close();
    }
  });

  it("lets a global auth guard's 401 (Nest's body) stop the request before any upstream call, under a global prefix and header versioning", async () => {
    @Injectable()
    class Auth implements CanActivate {
      canActivate(context: ExecutionContext): boolean {
        if (context.switchToHttp().getRequest<{ headers: Record<string, string | undefined> }>().headers.authorization !== 'Bearer good') throw new UnauthorizedException();
        return true;
      }
    }
    @Module({ imports: [SwitchyardModule.forRoot({ ...options(), route: { path: 'v1/chat/completions' } })], providers: [{ provide: APP_GUARD, useClass: Auth }] })
    class App {}
    const nest = await create(App);
    nest.setGlobalPrefix('api');
    nest.enableVersioning({ type: VersioningType.HEADER, header: 'x-api-version' });
    const app = await listenNest(nest);
    try {
      const client = (apiKey: string) => new OpenAI({ apiKey, baseURL: `${app.url}/api/v1`, maxRetries: 0 });
      const refused = await client('bad').chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(OpenAI.AuthenticationError);
      const raw = await post(`${app.url}/api/v1/chat/completions`, { model: 'gpt-4o', messages });
      expect([raw.status, await raw.json()]).toEqual([401, { statusCode: 401, message: 'Unauthorized' }]);
      expect(openai.requests).toHaveLength(0);
      const completion = await client('good').chat.completions.create({ model: 'gpt-4o', messages }, { headers: { 'x-api-version': '2' } });
      expect(completion.choices[0]!.message.content).toBe('Hello from openai');
    } finally {
      await app.close();
    }
  });

  it("answers a timeout interceptor's 408 as Nest does, stops the upstream and logs the request as answered by the host", async () => {
    class Timeout implements NestInterceptor {
      intercept(_context: ExecutionContext, next: CallHandler) {
        return next.handle().pipe(timeout(300), catchError(() => throwError(() => new RequestTimeoutException())));
      }
    }
    const logs: LogEvent[] = [];
    @Module({
      imports: [SwitchyardModule.forRoot({ ...options(), onLog: (e) => logs.push(e), route: { path: 'v1/chat/completions' } })],
      providers: [{ provide: APP_INTERCEPTOR, useClass: Timeout }],
    })
    class App {}
    const app = await listenNest(await create(App));
    try {
      openai.enqueue({ delayMs: 1500 });
      const res = await post(`${app.url}/v1/chat/completions`, { model: 'gpt-4o', messages, stream: true });
      expect([res.status, ((await res.json()) as { statusCode: number }).statusCode]).toEqual([408, 408]);
      await until(() => logs.length === 1);
      expect(logs[0]!.attempts[0]!.error?.code).toBe('host_answered');
      // The app keeps serving: a stream that starts in time is not cut by the interceptor.
      const ok = await post(`${app.url}/v1/chat/completions`, { model: 'gpt-4o', messages, stream: true });
      expect([ok.status, await ok.text()]).toEqual([200, expect.stringMatching(/\[DONE\]$/m)]);
    } finally {
      await app.close();
    }
  });

  it('serves the route beside request-scoped providers, a request-scoped global interceptor and a request-scoped route guard', async () => {
    @Injectable({ scope: Scope.REQUEST })
    class PerRequest {
      constructor(@Inject(REQUEST) readonly request: unknown, readonly switchyard: SwitchyardService) {}
    }
    @Controller()
    class Ask {
      constructor(private readonly perRequest: PerRequest) {}
      @Get('ask')
      async ask(): Promise<{ text: string | null }> {
        const completion = await this.perRequest.switchyard.createChatCompletion({ model: 'gpt-4o', messages });
        return { text: completion.choices[0]!.message.content };
      }
    }
    @Injectable({ scope: Scope.REQUEST })
    class PerRequestInterceptor implements NestInterceptor {
      constructor(@Inject(REQUEST) readonly request: unknown) {}
      intercept(_context: ExecutionContext, next: CallHandler) {
        return next.handle();
      }
    }
    @Injectable({ scope: Scope.REQUEST })
    class TenantGuard implements CanActivate {
      constructor(@Inject(REQUEST) readonly request: unknown) {}
      canActivate(context: ExecutionContext): boolean {
        return context.switchToHttp().getRequest<{ headers: Record<string, string | undefined> }>().headers['x-tenant'] === 'a';
      }
    }
    @Module({
      imports: [SwitchyardModule.forRoot({ ...options(), isGlobal: true, route: { path: 'v1/chat/completions', decorators: [UseGuards(TenantGuard)] } })],
      controllers: [Ask],
      providers: [PerRequest, { provide: APP_INTERCEPTOR, useClass: PerRequestInterceptor }],
    })
    class App {}
    const app = await listenNest(await create(App));
    try {
      expect(await (await fetch(`${app.url}/ask`)).json()).toEqual({ text: 'Hello from openai' });
      expect((await post(`${app.url}/v1/chat/completions`, { model: 'gpt-4o', messages })).status).toBe(403);
      expect((await post(`${app.url}/v1/chat/completions`, { model: 'gpt-4o', messages }, { 'x-tenant': 'a' })).status).toBe(200);
    } finally {
      await app.close();
    }
  });
});

it("serves the route with Nest's body parser off, and with rawBody on (Express)", async () => {
  @Module({ imports: [SwitchyardModule.forRoot({ ...options(), route: { path: 'v1/chat/completions' } })] })
  class App {}
  for (const platformOptions of [{ bodyParser: false }, { rawBody: true }]) {
    const app = await listenNest(await NestFactory.create(App, { logger: false, forceCloseConnections: true, ...platformOptions }));
    try {
      const res = await post(`${app.url}/v1/chat/completions`, { model: 'gpt-4o', messages, temperature: 0.1 });
      expect([platformOptions, res.status]).toEqual([platformOptions, 200]);
    } finally {
      await app.close();
    }
  }
  expect(openai.requests.map((r) => JSON.parse(r.rawBody).temperature)).toEqual([0.1, 0.1]);
});

describe('the testing module', () => {
  @Controller()
  class Summaries {
    constructor(private readonly switchyard: SwitchyardService) {}
    @Post('summaries')
    async summarise(@Body() _body: unknown): Promise<{ text: string | null }> {
      const completion = await this.switchyard.createChatCompletion({ model: 'gpt-4o', messages });
      return { text: completion.choices[0]!.message.content };
    }
  }
  // Production options: a host no test can reach.
  @Module({
    imports: [
      SwitchyardModule.forRootAsync({
        useFactory: () => ({ virtualKeys: { k: { provider: 'openai', api_key: 'x', custom_host: 'http://127.0.0.1:9' } }, config: { strategy: { mode: 'single' }, targets: [{ virtual_key: 'k' }] } }),
        route: { path: 'v1/chat/completions' },
      }),
    ],
    controllers: [Summaries],
  })
  class App {}

  it('takes overrideProvider(SwitchyardService) for the app\'s own code', async () => {
    const mock = { createChatCompletion: jest.fn().mockResolvedValue({ choices: [{ message: { content: 'mocked' } }] }) };
    const moduleRef = await Test.createTestingModule({ imports: [App] }).overrideProvider(SwitchyardService).useValue(mock).compile();
    const app = await listenNest(moduleRef.createNestApplication({ logger: false, forceCloseConnections: true }));
    try {
      expect(await (await post(`${app.url}/summaries`, {})).json()).toEqual({ text: 'mocked' });
      expect(mock.createChatCompletion).toHaveBeenCalledTimes(1);
    } finally {
      await app.close();
    }
  });

  it('takes overrideProvider(SWITCHYARD_OPTIONS): the service and the route then use the test\'s options', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [App] }).overrideProvider(SWITCHYARD_OPTIONS).useValue(options()).compile();
    const app = await listenNest(moduleRef.createNestApplication({ logger: false, forceCloseConnections: true }));
    try {
      expect(await (await post(`${app.url}/summaries`, {})).json()).toEqual({ text: 'Hello from openai' });
      expect((await post(`${app.url}/v1/chat/completions`, { model: 'gpt-4o', messages })).status).toBe(200);
      expect(openai.requests).toHaveLength(2);
    } finally {
      await app.close();
    }
  });
});

it('works in an application context with no HTTP (a worker, a cron job), which closes twice without error', async () => {
  @Module({ imports: [SwitchyardModule.forRoot({ ...options(), route: { path: 'v1/chat/completions' } })] })
  class App {}
  const context = await NestFactory.createApplicationContext(App, { logger: false });
  openai.enqueue(replies.rateLimited());
  const completion = await context.get(SwitchyardService).createChatCompletion({ model: 'gpt-4o', messages });
  expect(completion.choices[0]!.message.content).toBe('Hello from azure');
  await context.close();
  await context.close();
});

it("closes twice without error or warning with the README's store module (its SQLite store closed at the first)", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-nest-close-'));
  @Module({ providers: [{ provide: SqliteLogStore, useFactory: () => new SqliteLogStore({ path: join(dir, 'logs.db') }) }], exports: [SqliteLogStore] })
  class LogStoreModule implements OnApplicationShutdown {
    constructor(@Inject(SqliteLogStore) private readonly store: SqliteLogStore) {}
    onApplicationShutdown(): Promise<void> {
      return this.store.close();
    }
  }
  @Module({
    imports: [
      SwitchyardModule.forRootAsync({
        imports: [LogStoreModule],
        inject: [SqliteLogStore],
        useFactory: (store: SqliteLogStore) => ({ ...options(), logSinks: [store], logs: { path: 'switchyard/logs', store, token: 't'.repeat(32) } }),
        route: { path: 'v1/chat/completions' },
      }),
    ],
  })
  class App {}
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  try {
    const nest = await NestFactory.create(App, { logger: false, forceCloseConnections: true });
    const app = await listenNest(nest);
    expect((await post(`${app.url}/v1/chat/completions`, { model: 'gpt-4o', messages })).status).toBe(200);
    await nest.close();
    await nest.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(warnings).toEqual([]);
  } finally {
    process.off('warning', onWarning);
    rmSync(dir, { recursive: true, force: true });
  }
});
