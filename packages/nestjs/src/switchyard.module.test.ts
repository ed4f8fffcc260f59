import 'reflect-metadata';
import { Catch, Controller, HttpException, Inject, Injectable, Module, Post, Res, SetMetadata, type ArgumentsHost, type INestApplication, type ExceptionFilter, UseGuards, VersioningType, type CallHandler, type CanActivate, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_INTERCEPTOR, NestFactory, Reflector } from '@nestjs/core';
import { lastValueFrom, Observable as RxObservable, tap, type Observable } from 'rxjs';
import { HTTP_CODE_METADATA } from '@nestjs/common/constants';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host';
import type { ServerResponse } from 'node:http';
import OpenAI, { AzureOpenAI } from 'openai';
import { MemoryLogStore } from '@switchyard/core';
import { Test } from '@nestjs/testing';
import { createUpstreamClient, FallbackRequestError, SwitchyardOptionsError, type LogEvent, type UpstreamClient } from '@switchyard/core';
import { replies, startFakeAzureOpenAI, startFakeOpenAI, type FakeProvider } from '@switchyard/testing';
import { listenNest, nestPlatforms, type RunningApp } from '../../e2e/src/support/adapters';
import { until } from '../../e2e/src/support/fixture';
import { SWITCHYARD_GATEWAY, SwitchyardExceptionFilter, SwitchyardModule, SwitchyardService, type SwitchyardModuleOptions } from './index';

const hosts = { openai: '', azure: '' };

/** Stands for the host's ConfigService: where keys and hosts come from at runtime. */
@Injectable()
class AppConfig {
  readonly logs: LogEvent[] = [];
  switchyard(): SwitchyardModuleOptions {
    return {
      virtualKeys: {
        'openai-prod': { provider: 'openai', api_key: 'sk-o', custom_host: hosts.openai },
        'azure-prod': { provider: 'azure-openai', api_key: 'az', custom_host: hosts.azure, deployments: { 'gpt-4o': 'gpt4o-prod' } },
      },
      config: { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] },
      onLog: (e) => this.logs.push(e),
    };
  }
}

@Module({ providers: [AppConfig], exports: [AppConfig] })
class AppConfigModule {}

describe('SwitchyardModule', () => {
  let openai: FakeProvider;
  let azure: FakeProvider;
  const config = new AppConfig();

  beforeAll(async () => {
    [openai, azure] = await Promise.all([startFakeOpenAI({ name: 'openai' }), startFakeAzureOpenAI({ name: 'azure' })]);
    hosts.openai = openai.baseURL;
    hosts.azure = azure.baseURL;
  });
  afterAll(() => Promise.all([openai.close(), azure.close()]));
  beforeEach(() => {
    openai.reset();
    azure.reset();
  });

  it('forRoot provides SwitchyardService, which falls back on 429', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [SwitchyardModule.forRoot(config.switchyard())] }).compile();
    const service = moduleRef.get(SwitchyardService);
    openai.enqueue(replies.rateLimited());
    const completion = await service.createChatCompletion({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }, { traceId: 'nest-1' });
    expect(completion.choices[0]!.message.content).toBe('Hello from azure');
    expect(azure.requests[0]!.deployment).toBe('gpt4o-prod');
    await moduleRef.close();
  });

  it('forRootAsync builds options from an injected config service, and the service streams', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        SwitchyardModule.forRootAsync({ imports: [AppConfigModule], inject: [AppConfig], useFactory: (c: AppConfig) => c.switchyard() }),
      ],
    }).compile();
    const service = moduleRef.get(SwitchyardService);
    const stream = await service.createChatCompletion({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('Hello from openai');
    expect(moduleRef.get(SWITCHYARD_GATEWAY)).toBe(moduleRef.get(SwitchyardService).client.gateway);
    await moduleRef.close();
  });

  it('calls providers through the upstream client it is given (an egress proxy), from forRootAsync too', async () => {
    const origins: string[] = [];
    const pool = createUpstreamClient();
    const upstreamClient: UpstreamClient = { request: (req) => (origins.push(req.origin), pool.request(req)), close: () => pool.close() };
    const moduleRef = await Test.createTestingModule({
      imports: [SwitchyardModule.forRootAsync({ imports: [AppConfigModule], inject: [AppConfig], useFactory: (c: AppConfig) => ({ ...c.switchyard(), upstreamClient }) })],
    }).compile();
    openai.enqueue(replies.rateLimited());
    const completion = await moduleRef.get(SwitchyardService).createChatCompletion({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
    expect(completion.choices[0]!.message.content).toBe('Hello from azure');
    expect(origins).toEqual([new URL(openai.url).origin, new URL(azure.url).origin]);
    await moduleRef.close();
  });

  it('isGlobal makes the service injectable in modules that do not import it', async () => {
    @Injectable()
    class Summaries {
      constructor(readonly switchyard: SwitchyardService) {}
    }
    @Module({ providers: [{ provide: Summaries, useFactory: (s: SwitchyardService) => new Summaries(s), inject: [SwitchyardService] }] })
    class FeatureModule {}
    const moduleRef = await Test.createTestingModule({ imports: [SwitchyardModule.forRoot({ ...config.switchyard(), isGlobal: true }), FeatureModule] }).compile();
    expect(moduleRef.get(Summaries).switchyard).toBeInstanceOf(SwitchyardService);
    await moduleRef.close();
  });

  it('throws FallbackRequestError carrying status, body and attempts when every target fails', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [SwitchyardModule.forRoot(config.switchyard())] }).compile();
    openai.enqueue(replies.rateLimited());
    azure.enqueue(replies.serverError(503));
    const err = (await moduleRef
      .get(SwitchyardService)
      .createChatCompletion({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e)) as FallbackRequestError;
    expect(err).toBeInstanceOf(FallbackRequestError);
    expect(err.status).toBe(503);
    expect(err.attempts.map((a) => a.status)).toEqual([429, 503]);
    await moduleRef.close();
  });

  const TOKEN = 'a-long-enough-viewer-token';
  const auth = { headers: { authorization: `Bearer ${TOKEN}` } };

  /** A Nest app serving the chat route and the logs endpoint at `logsPath`, under an optional global prefix. */
  async function startRouteApp(logsPath: string, globalPrefix?: string): Promise<RunningApp> {
    const store = new MemoryLogStore();
    @Module({
      imports: [
        SwitchyardModule.forRoot({
          ...config.switchyard(),
          logSinks: [store],
          route: { path: 'v1/chat/completions' },
          logs: { path: logsPath, store, token: TOKEN, viewer: true },
        }),
      ],
    })
    class AppModule {}
    const app = await NestFactory.create(AppModule, { logger: false });
    if (globalPrefix) app.setGlobalPrefix(globalPrefix);
    return listenNest(app);
  }

  const chat = (baseURL: string, traceId: string) =>
    new OpenAI({ apiKey: 'unused', baseURL, maxRetries: 0, defaultHeaders: { 'x-switchyard-trace-id': traceId } }).chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'hi' }],
    });

  it('mounts the OpenAI-compatible route and the logs endpoint, sharing one store', async () => {
    const app = await startRouteApp('switchyard/logs');
    try {
      openai.enqueue(replies.rateLimited());
      await chat(`${app.url}/v1`, 'nest-route-1');

      const denied = await fetch(`${app.url}/switchyard/logs/api/requests`);
      expect(denied.status).toBe(401);
      const found = await fetch(`${app.url}/switchyard/logs/api/requests?traceId=nest-route-1`, auth);
      const page = (await found.json()) as { data: Array<{ traceId: string; fallback: boolean }> };
      expect(page.data.map((e) => [e.traceId, e.fallback])).toEqual([['nest-route-1', true]]);
      const totals = await fetch(`${app.url}/switchyard/logs/api/summary?traceId=nest-route-1`, auth);
      expect(await totals.json()).toMatchObject({ requests: 1, fallbacks: 1 });
      const viewer = await fetch(`${app.url}/switchyard/logs/`);
      expect(viewer.headers.get('content-type')).toMatch(/^text\/html/);
      // A method the endpoint does not serve: its JSON 405, as in Express and Koa, not Nest's own 404.
      for (const path of ['/switchyard/logs/api/requests', '/switchyard/logs/api/requests/x', '/switchyard/logs']) {
        const post = await fetch(`${app.url}${path}`, { method: 'DELETE', ...auth });
        expect([post.status, post.headers.get('allow'), ((await post.json()) as { error: { code: string } }).error.code]).toEqual([405, 'GET, HEAD', 'method_not_allowed']);
      }
    } finally {
      await app.close();
    }
  });

  it("keeps the query string on the logs endpoint's requests: filters narrow what the API answers", async () => {
    const app = await startRouteApp('switchyard/logs');
    try {
      await chat(`${app.url}/v1`, 'nest-query-1');
      openai.enqueue(replies.rateLimited());
      await chat(`${app.url}/v1`, 'nest-query-2');
      const one = (await (await fetch(`${app.url}/switchyard/logs/api/requests?traceId=nest-query-2`, auth)).json()) as { data: Array<{ traceId: string }> };
      expect(one.data.map((e) => e.traceId)).toEqual(['nest-query-2']);
      const fellBack = (await (await fetch(`${app.url}/switchyard/logs/api/summary?fallback=true`, auth)).json()) as { requests: number };
      expect(fellBack.requests).toBe(1);
      expect((await fetch(`${app.url}/switchyard/logs/api/requests?status=9xx`, auth)).status).toBe(400);
    } finally {
      await app.close();
    }
  });

  it("serves the route and the logs endpoint under the app's global prefix", async () => {
    // The prefix starts like the logs path: the sub-path must not be found by searching the URL.
    const app = await startRouteApp('logs', 'logsvc');
    try {
      await chat(`${app.url}/logsvc/v1`, 'nest-prefixed');
      const found = await fetch(`${app.url}/logsvc/logs/api/requests?traceId=nest-prefixed`, auth);
      expect(found.status).toBe(200);
      const [event] = ((await found.json()) as { data: Array<{ traceId: string; requestId: string }> }).data;
      expect(event?.traceId).toBe('nest-prefixed');
      const one = await fetch(`${app.url}/logsvc/logs/api/requests/${encodeURIComponent(event!.requestId)}`, auth);
      expect(((await one.json()) as { requestId: string }).requestId).toBe(event!.requestId);
      expect((await fetch(`${app.url}/logsvc/logs/api/nothing`, auth)).status).toBe(404);
    } finally {
      await app.close();
    }
  });

  it("serves the route as a controller: forRootAsync takes it beside useFactory, and the app's global guard protects it", async () => {
    @Injectable()
    class ApiKeyGuard implements CanActivate {
      canActivate(context: ExecutionContext): boolean {
        return context.switchToHttp().getRequest<{ headers: Record<string, string | undefined> }>().headers['x-app-key'] === 'let-me-in';
      }
    }
    @Module({
      imports: [
        SwitchyardModule.forRootAsync({
          imports: [AppConfigModule],
          inject: [AppConfig],
          useFactory: (c: AppConfig) => c.switchyard(),
          route: { path: 'v1/chat/completions' },
        }),
      ],
      providers: [{ provide: APP_GUARD, useClass: ApiKeyGuard }],
    })
    class GuardedApp {}
    const app = await listenNest(await NestFactory.create(GuardedApp, { logger: false }));
    try {
      const url = `${app.url}/v1`;
      const refused = await new OpenAI({ apiKey: 'unused', baseURL: url, maxRetries: 0 }).chat.completions
        .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] })
        .catch((e: unknown) => e);
      expect((refused as { status?: number }).status).toBe(403);
      expect(openai.requests).toHaveLength(0);
      const allowed = new OpenAI({ apiKey: 'unused', baseURL: url, maxRetries: 0, defaultHeaders: { 'x-app-key': 'let-me-in' } });
      const completion = await allowed.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
      expect(completion.choices[0]!.message.content).toBe('Hello from openai');
    } finally {
      await app.close();
    }
  });

  it("takes the app's decorators for the route: Public() for a global guard that skips public routes, a guard of its own", async () => {
    const IS_PUBLIC = 'isPublic';
    const Public = () => SetMetadata(IS_PUBLIC, true);
    @Injectable()
    class JwtLikeGuard implements CanActivate {
      constructor(@Inject(Reflector) private readonly reflector: Reflector) {}
      canActivate(context: ExecutionContext): boolean {
        return this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()]) === true;
      }
    }
    @Injectable()
    class RouteKeyGuard implements CanActivate {
      canActivate(context: ExecutionContext): boolean {
        return context.switchToHttp().getRequest<{ headers: Record<string, string | undefined> }>().headers['x-route-key'] === 'ok';
      }
    }
    @Module({
      imports: [
        SwitchyardModule.forRoot({ ...config.switchyard(), route: { path: 'v1/chat/completions', decorators: [Public()] } }),
        SwitchyardModule.forRoot({ ...config.switchyard(), route: { path: 'keyed/chat/completions', decorators: [Public(), UseGuards(RouteKeyGuard)] } }),
      ],
      providers: [{ provide: APP_GUARD, useClass: JwtLikeGuard }],
    })
    class App {}
    const app = await listenNest(await NestFactory.create(App, { logger: false }));
    try {
      const ask = (base: string, headers: Record<string, string> = {}) =>
        new OpenAI({ apiKey: 'unused', baseURL: `${app.url}/${base}`, maxRetries: 0, defaultHeaders: headers }).chat.completions
          .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] })
          .then((c) => c.choices[0]!.message.content, (e: { status?: number }) => e.status);
      expect(await ask('v1')).toBe('Hello from openai');
      expect(await ask('keyed')).toBe(403);
      expect(await ask('keyed', { 'x-route-key': 'ok' })).toBe('Hello from openai');
    } finally {
      await app.close();
    }
  });

  it("lets the app's interceptors resume once the response is handed over, not when the handler was called", async () => {
    const seen: Array<[boolean, boolean]> = [];
    @Injectable()
    class Timing implements NestInterceptor {
      intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
        const res = context.switchToHttp().getResponse<{ headersSent: boolean; writableEnded: boolean }>();
        return next.handle().pipe(tap(() => seen.push([res.headersSent, res.writableEnded])));
      }
    }
    @Module({
      imports: [SwitchyardModule.forRoot({ ...config.switchyard(), route: { path: 'v1/chat/completions' } })],
      providers: [{ provide: APP_INTERCEPTOR, useClass: Timing }],
    })
    class TimedApp {}
    const app = await listenNest(await NestFactory.create(TimedApp, { logger: false }));
    try {
      openai.enqueue({ delayMs: 50 });
      const client = new OpenAI({ apiKey: 'unused', baseURL: `${app.url}/v1`, maxRetries: 0 });
      await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
      const stream = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], stream: true });
      for await (const _ of stream);
      // The JSON answer was sent whole; the stream had started (its head sent).
      expect(seen).toEqual([[true, true], [true, expect.any(Boolean)]]);
    } finally {
      await app.close();
    }
  });

  it('two imports with different routes serve both, also with deep-hash module ids', async () => {
    @Module({
      imports: [
        SwitchyardModule.forRoot({ ...config.switchyard(), route: { path: 'v1/chat/completions' } }),
        SwitchyardModule.forRoot({ ...config.switchyard(), route: { path: 'openai/v1/chat/completions' } }),
      ],
    })
    class TwoRoutes {}
    const app = await listenNest(await NestFactory.create(TwoRoutes, { logger: false, moduleIdGeneratorAlgorithm: 'deep-hash' }));
    try {
      for (const base of [`${app.url}/v1`, `${app.url}/openai/v1`]) {
        const completion = await chat(base, `two-routes-${base.length}`);
        expect(completion.choices[0]!.message.content).toBe('Hello from openai');
      }
    } finally {
      await app.close();
    }
  });

  it("serves code written on the SDK's AzureOpenAI class on a route at Azure's path (README), falling back", async () => {
    @Module({ imports: [SwitchyardModule.forRoot({ ...config.switchyard(), route: { path: 'openai/deployments/:deployment/chat/completions' } })] })
    class AzurePathApp {}
    const app = await listenNest(await NestFactory.create(AzurePathApp, { logger: false }));
    try {
      const client = new AzureOpenAI({ endpoint: app.url, apiKey: 'unused', apiVersion: '2024-10-21', maxRetries: 0 });
      openai.enqueue(replies.rateLimited());
      const completion = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
      expect([completion.choices[0]!.message.content, azure.requests[0]!.deployment]).toEqual(['Hello from azure', 'gpt4o-prod']);
    } finally {
      await app.close();
    }
  });

  it('describes the route as it answers to what reads its metadata (an OpenAPI document): 200, and a name that is an identifier', () => {
    const controllers = ['v1/chat/completions', 'v1-chat-completions', '/openai/v1/chat/completions', 'v1/chat/completions'].map(
      (path) => SwitchyardModule.forRoot({ ...config.switchyard(), route: { path } }).controllers![0]!,
    );
    // One name per path, the same for the same path: two paths that read alike get two.
    expect(controllers.map((c) => c.name)).toEqual([
      'SwitchyardChat_v1_chat_completions',
      'SwitchyardChat_v1_chat_completions_2',
      'SwitchyardChat_openai_v1_chat_completions',
      'SwitchyardChat_v1_chat_completions',
    ]);
    for (const c of controllers) expect(Reflect.getMetadata(HTTP_CODE_METADATA, (c.prototype as { chat: object }).chat)).toBe(200);
  });

  it('a route returned from useFactory is refused with where to put it (Nest fixes routes before factories run)', async () => {
    const factory = () => ({ ...config.switchyard(), route: { path: 'v1/chat/completions' } });
    const err = await Test.createTestingModule({ imports: [SwitchyardModule.forRootAsync({ useFactory: factory })] })
      .compile()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SwitchyardOptionsError);
    expect((err as SwitchyardOptionsError).message).toContain('route: give it to forRoot/forRootAsync beside the options');
  });

  it('forRootAsync refuses any option given beside useFactory (Nest would ignore it), not only logs; imports, inject, isGlobal and route pass', async () => {
    const misplaced = { useFactory: () => config.switchyard(), shutdownDrainMs: 1000, deadlineMs: 5000 } as Parameters<typeof SwitchyardModule.forRootAsync>[0];
    const err = await Test.createTestingModule({ imports: [SwitchyardModule.forRootAsync(misplaced)] }).compile().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SwitchyardOptionsError);
    expect((err as SwitchyardOptionsError).issues.map((i) => i.path)).toEqual(['shutdownDrainMs', 'deadlineMs']);
    expect((err as SwitchyardOptionsError).message).toContain('shutdownDrainMs: forRootAsync does not take it beside the factory: return it from useFactory (beside the factory go');
    const fine = SwitchyardModule.forRootAsync({ imports: [AppConfigModule], inject: [AppConfig], useFactory: (c: AppConfig) => c.switchyard(), isGlobal: false, route: { path: 'v1/x/chat/completions' } });
    const module = await Test.createTestingModule({ imports: [fine] }).compile();
    await module.close();
  });

  it('invalid options fail module init with the field path', async () => {
    const bad = { ...config.switchyard(), config: { strategy: { mode: 'fallback' as const }, targets: [{ virtual_key: 'nope' }] } };
    await expect(Test.createTestingModule({ imports: [SwitchyardModule.forRoot(bad)] }).compile()).rejects.toThrow(
      'config.targets[0].virtual_key: unknown virtual key "nope"',
    );
    await expect(
      Test.createTestingModule({ imports: [SwitchyardModule.forRoot({ ...config.switchyard(), route: { path: '' } })] }).compile(),
    ).rejects.toThrow('route.path');
    const decorators = ['Public'] as unknown as ClassDecorator[];
    await expect(
      Test.createTestingModule({ imports: [SwitchyardModule.forRoot({ ...config.switchyard(), route: { path: 'x', decorators } })] }).compile(),
    ).rejects.toThrow('route.decorators: must be a list of class decorators');
    // A basePath would be silently ignored (Nest routes by route.path): refused, so the mistake is seen at init.
    const withBasePath = { ...config.switchyard(), basePath: '/api' } as Parameters<typeof SwitchyardModule.forRoot>[0];
    await expect(Test.createTestingModule({ imports: [SwitchyardModule.forRoot(withBasePath)] }).compile()).rejects.toThrow(
      'basePath: not used by the NestJS module',
    );
    // The module's fields and the engine's are reported together.
    const both = { ...config.switchyard(), route: { path: '' }, deadlineMs: -1 };
    const err = await Test.createTestingModule({ imports: [SwitchyardModule.forRoot(both)] }).compile().catch((e: unknown) => e);
    expect((err as SwitchyardOptionsError).issues.map((i) => i.path)).toEqual(['route.path', 'deadlineMs']);
    // Beside useFactory, Nest would ignore a key it does not know (plain JS has no type to catch it): refused too.
    const store = new MemoryLogStore();
    const misplaced = { useFactory: () => config.switchyard(), logs: { path: 'logs', store, token: TOKEN } } as Parameters<typeof SwitchyardModule.forRootAsync>[0];
    await expect(Test.createTestingModule({ imports: [SwitchyardModule.forRootAsync(misplaced)] }).compile()).rejects.toThrow(
      'logs: forRootAsync does not take it beside the factory: return it from useFactory ({ ...options, logs })',
    );
    // The logs endpoint's options are checked at init too, under `logs.`: not first when Nest mounts it, or never.
    const logsOf = async (logs: unknown) => {
      const options = { ...config.switchyard(), logs } as SwitchyardModuleOptions;
      const failed = await Test.createTestingModule({ imports: [SwitchyardModule.forRoot(options)] }).compile().catch((e: unknown) => e);
      return (failed as SwitchyardOptionsError).issues.map((i) => `${i.path}: ${i.message}`);
    };
    expect(await logsOf({ path: 'logs', store, token: 'short', tokne: 'x' })).toEqual([
      'logs.tokne: unknown option',
      'logs.token: must be a string of at least 16 characters',
    ]);
    // At the root it would answer every GET of the app.
    for (const path of [undefined, '', '/']) expect(await logsOf({ path, store, token: TOKEN })).toEqual([expect.stringMatching(/^logs\.path: required/)]);
    // A block-bodied factory that forgot its return.
    const forgot = SwitchyardModule.forRootAsync({ useFactory: () => undefined as unknown as SwitchyardModuleOptions });
    await expect(Test.createTestingModule({ imports: [forgot] }).compile()).rejects.toThrow('useFactory: returned undefined, not the options object');
  });

  it('writes out what its log sinks still queue when the app closes (a store made in useFactory has no other owner)', async () => {
    const written: LogEvent[] = [];
    const queued: LogEvent[] = [];
    // A sink that, like the SQLite store, writes in batches: flush() writes what is queued.
    const sink = { write: (e: LogEvent) => void queued.push(e), flush: async () => void written.push(...queued.splice(0)) };
    const app = await NestFactory.create(SwitchyardModule.forRootAsync({ useFactory: () => ({ ...config.switchyard(), logSinks: [sink] }) }), { logger: false });
    await app.init();
    await app.get(SwitchyardService).createChatCompletion({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
    await new Promise((r) => setTimeout(r, 20));
    expect([queued.length, written.length]).toEqual([1, 0]);
    await app.close();
    expect([queued.length, written.length]).toEqual([0, 1]);
  });

  it('waits shutdownDrainMs for requests in flight at app.close(), then names those still running in a warning', async () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const app = await NestFactory.create(SwitchyardModule.forRoot({ ...config.switchyard(), shutdownDrainMs: 300 }), { logger: false });
      await app.init();
      // A background job's stream it never reads to its end: it would hold the close forever.
      await app.get(SwitchyardService).createChatCompletion({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], stream: true });
      const started = Date.now();
      await app.close();
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
      expect(warn.mock.calls).toEqual([[expect.stringMatching(/^1 Switchyard request was still in flight 300 ms into app\.close\(\)/), 'SwitchyardShutdownWarning']]);
    } finally {
      warn.mockRestore();
    }
    const bad = Test.createTestingModule({ imports: [SwitchyardModule.forRoot({ ...config.switchyard(), shutdownDrainMs: -1 })] }).compile();
    await expect(bad).rejects.toThrow('shutdownDrainMs: must be a whole number of milliseconds');
    // 0, "from 0" as that message says: no wait. Either way a close leaves no timer to hold the process after it.
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    for (const shutdownDrainMs of [0, undefined]) {
      const app = await NestFactory.create(SwitchyardModule.forRoot({ ...config.switchyard(), shutdownDrainMs }), { logger: false, abortOnError: false });
      await app.init();
      await app.close();
    }
    expect(timers()).toBeLessThanOrEqual(before);
  });

  /**
   * Serves the app, sends a chat request the upstream never answers, and closes the app with it in flight; resolves
   * once closed, with the client's request (settled with its error).
   */
  async function closeWithRequestInFlight(app: INestApplication): Promise<{ cut: Promise<unknown> }> {
    const { url } = await listenNest(app);
    openai.enqueue({ hang: true });
    const client = new OpenAI({ apiKey: 'unused', baseURL: `${url}/v1`, maxRetries: 0 });
    const cut = client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    await until(() => openai.requests.length === 1);
    await app.close();
    return { cut };
  }

  it('on a forced close, flushes after the requests it cut have logged their 499', async () => {
    const written: LogEvent[] = [];
    const queued: LogEvent[] = [];
    const sink = { write: (e: LogEvent) => void queued.push(e), flush: async () => void written.push(...queued.splice(0)) };
    const module = SwitchyardModule.forRootAsync({ route: { path: 'v1/chat/completions' }, useFactory: () => ({ ...config.switchyard(), logSinks: [sink] }) });
    const { cut } = await closeWithRequestInFlight(await NestFactory.create(module, { logger: false, forceCloseConnections: true }));
    // The 499 came after Nest closed the connections, and before the flush: the store wrote it.
    expect(written.map((e) => e.status)).toEqual([499]);
    expect(await cut).toBeInstanceOf(OpenAI.APIConnectionError);
  });

  it("lets the app's own store module, imported by forRootAsync, close its store after the requests the close cut have logged (README's recipe)", async () => {
    const order: string[] = [];
    @Injectable()
    class Store {
      closed = false;
      write(e: LogEvent): void {
        order.push(this.closed ? `dropped ${e.status}` : `wrote ${e.status}`);
      }
    }
    @Module({ providers: [Store], exports: [Store] })
    class LogStoreModule {
      constructor(@Inject(Store) private readonly store: Store) {}
      onApplicationShutdown(): void {
        this.store.closed = true;
        order.push('store closed');
      }
    }
    const switchyard = SwitchyardModule.forRootAsync({
      route: { path: 'v1/chat/completions' },
      imports: [LogStoreModule],
      inject: [Store],
      useFactory: (store: Store) => ({ ...config.switchyard(), logSinks: [store] }),
    });
    @Module({ imports: [switchyard] })
    class AppModule {}
    const { cut } = await closeWithRequestInFlight(await NestFactory.create(AppModule, { logger: false, forceCloseConnections: true }));
    // Nest shuts an imported module down after the modules that import it: SwitchyardModule waited first.
    expect(order).toEqual(['wrote 499', 'store closed']);
    expect(await cut).toBeInstanceOf(OpenAI.APIConnectionError);
  });

  it("keeps a 429 beside the host's catch-all filter when registered after it, as the README says", async () => {
    @Catch()
    class AllExceptionsFilter implements ExceptionFilter {
      // Nest's "catch everything" recipe: what it does not know is a 500.
      catch(exception: unknown, host: ArgumentsHost): void {
        const status = exception instanceof HttpException ? exception.getStatus() : 500;
        host.switchToHttp().getResponse<ServerResponse>().writeHead(status).end();
      }
    }
    @Controller()
    class Summaries {
      constructor(@Inject(SwitchyardService) private readonly switchyard: SwitchyardService) {}
      @Post('summaries')
      summarise(): Promise<unknown> {
        return this.switchyard.createChatCompletion({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
      }
    }
    @Module({ imports: [SwitchyardModule.forRoot(config.switchyard())], controllers: [Summaries] })
    class AppModule {}
    const statusWith = async (...filters: ExceptionFilter[]) => {
      const app = await NestFactory.create(AppModule, { logger: false });
      app.useGlobalFilters(...filters);
      const { url, close } = await listenNest(app);
      openai.enqueue(replies.rateLimited());
      azure.enqueue(replies.rateLimited(3));
      const res = await fetch(`${url}/summaries`, { method: 'POST' });
      await close();
      return [res.status, res.headers.get('retry-after')];
    };
    expect(await statusWith(new AllExceptionsFilter(), new SwitchyardExceptionFilter())).toEqual([429, '3']);
    // The other way round, the catch-all is asked first.
    expect(await statusWith(new SwitchyardExceptionFilter(), new AllExceptionsFilter())).toEqual([500, null]);
  });

  // An APP_FILTER applies to a microservice's message handlers and a gateway's too; Nest hands the filter a host of
  // that type (these are Nest's own host objects). A filter that throws there leaves an RPC caller with no answer.
  it('answers an RPC caller with a failing Observable and a websocket client with an exception event, as Nest\'s own filters do', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [SwitchyardModule.forRoot(config.switchyard())] }).compile();
    openai.enqueue(replies.rateLimited());
    azure.enqueue(replies.rateLimited(3));
    const err = await moduleRef.get(SwitchyardService).createChatCompletion({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    await moduleRef.close();
    expect(err).toBeInstanceOf(FallbackRequestError);
    const failure = { status: 'error', message: (err as FallbackRequestError).message, statusCode: 429, body: (err as FallbackRequestError).body };
    expect(failure.body).toMatchObject({ error: { code: '429' } }); // Azure's envelope, as the route would send it
    const filter = new SwitchyardExceptionFilter();

    const rpc = new ExecutionContextHost([{ text: 'hi' }, {}]);
    rpc.setType('rpc');
    const answer = filter.catch(err as FallbackRequestError, rpc);
    expect(answer).toBeInstanceOf(RxObservable);
    await expect(lastValueFrom(answer as Observable<never>)).rejects.toEqual(failure);

    const emitted: unknown[] = [];
    const ws = new ExecutionContextHost([{ emit: (event: string, data: unknown) => emitted.push([event, data]) }, { text: 'hi' }]);
    ws.setType('ws');
    expect(filter.catch(err as FallbackRequestError, ws)).toBeUndefined();
    expect(emitted).toEqual([['exception', failure]]);

    // Elsewhere (GraphQL) the error goes on to that context's own handling.
    const graphql = new ExecutionContextHost([]);
    graphql.setType('graphql');
    expect(() => filter.catch(err as FallbackRequestError, graphql)).toThrow(err as FallbackRequestError);
  });
});

describe.each(nestPlatforms)('SwitchyardExceptionFilter on Nest\'s %s platform', (_platform, create) => {
  let openai: FakeProvider;
  let azure: FakeProvider;
  let app: RunningApp;

  /** A business endpoint on SwitchyardService, as a host writes it: no error handling of its own. */
  @Controller()
  class SummariesController {
    constructor(@Inject(SwitchyardService) private readonly switchyard: SwitchyardService) {}
    @Post('summaries')
    async summarise(): Promise<{ summary: string | null }> {
      const completion = await this.switchyard.createChatCompletion({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }, { traceId: 'summary-1' });
      return { summary: completion.choices[0]!.message.content };
    }
    @Post('streamed')
    async streamed(): Promise<{ text: string }> {
      const stream = await this.switchyard.createChatCompletion({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], stream: true });
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      return { text };
    }
    /** Relays the chunks as SSE on Node's response itself (Fastify's `reply.raw`), without taking the reply over. */
    @Post('relayed')
    async relayed(@Res() res: ServerResponse | { raw: ServerResponse }): Promise<void> {
      const stream = await this.switchyard.createChatCompletion({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], stream: true });
      const raw = 'raw' in res ? res.raw : res;
      raw.writeHead(200, { 'content-type': 'text/event-stream' });
      for await (const chunk of stream) raw.write(`data: ${JSON.stringify(chunk)}\n\n`);
      raw.end('data: [DONE]\n\n');
    }
    /** Relays the text alone, as plain text. */
    @Post('relayed-text')
    async relayedText(@Res() res: ServerResponse | { raw: ServerResponse }): Promise<void> {
      const stream = await this.switchyard.createChatCompletion({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], stream: true });
      const raw = 'raw' in res ? res.raw : res;
      raw.writeHead(200, { 'content-type': 'text/plain' });
      for await (const chunk of stream) raw.write(chunk.choices[0]?.delta.content ?? '');
      raw.end();
    }
    /** Opens its event stream (a comment while it waits) before asking, then relays. */
    @Post('relayed-early')
    async relayedEarly(@Res() res: ServerResponse | { raw: ServerResponse }): Promise<void> {
      const raw = 'raw' in res ? res.raw : res;
      raw.writeHead(200, { 'content-type': 'text/event-stream' });
      raw.write(': waiting\n\n');
      const stream = await this.switchyard.createChatCompletion({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], stream: true });
      for await (const chunk of stream) raw.write(`data: ${JSON.stringify(chunk)}\n\n`);
      raw.end('data: [DONE]\n\n');
    }
    @Post('boom')
    boom(): never {
      throw new Error('a bug of the host');
    }
  }

  beforeAll(async () => {
    [openai, azure] = await Promise.all([startFakeOpenAI({ name: 'openai' }), startFakeAzureOpenAI({ name: 'azure' })]);
    hosts.openai = openai.baseURL;
    hosts.azure = azure.baseURL;
    @Module({
      imports: [SwitchyardModule.forRoot(new AppConfig().switchyard())],
      controllers: [SummariesController],
      providers: [{ provide: APP_FILTER, useClass: SwitchyardExceptionFilter }],
    })
    class AppModule {}
    app = await listenNest(await create(AppModule));
  });
  afterAll(async () => {
    await app.close();
    await Promise.all([openai.close(), azure.close()]);
  });

  it('answers a FallbackRequestError with its status, OpenAI\'s envelope and the headers, instead of a bare 500', async () => {
    openai.enqueue(replies.rateLimited(7));
    azure.enqueue(replies.rateLimited(3));
    const res = await fetch(`${app.url}/summaries`, { method: 'POST' });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('3'); // Azure's: the last upstream's answer
    expect(res.headers.get('x-switchyard-trace-id')).toBe('summary-1');
    // An upstream error that is no JSON keeps its type, not sniffed (Express labels a string text/html), as on the route.
    // (429-only fallback: OpenAI's 503 is the answer.)
    openai.enqueue({ status: 503, headers: { 'content-type': 'text/plain' }, body: 'upstream overloaded' });
    const text = await fetch(`${app.url}/summaries`, { method: 'POST' });
    expect([text.status, text.headers.get('content-type'), text.headers.get('x-content-type-options'), await text.text()]).toEqual([503, expect.stringMatching(/^text\/plain\b/), 'nosniff', 'upstream overloaded']);
    // Whatever type it came with: a proxy's HTML page stays HTML (not relabelled plain text).
    openai.enqueue({ status: 502, headers: { 'content-type': 'text/html; charset=utf-8' }, body: '<html>Bad Gateway</html>' });
    const page = await fetch(`${app.url}/summaries`, { method: 'POST' });
    expect([page.status, page.headers.get('content-type'), await page.text()]).toEqual([502, 'text/html; charset=utf-8', '<html>Bad Gateway</html>']);
    expect(res.headers.get('x-switchyard-attempts')).toBe('2');
    const body = (await res.json()) as { error: { code: unknown; message: string } };
    expect(body.error).toMatchObject({ code: '429' });
    expect(body.error.message).toEqual(expect.any(String));
  });

  it('answers a stream that failed in the handler\'s hands as JSON (not with the stream\'s content type)', async () => {
    openai.enqueue(replies.stream({ cutAfter: 1 }));
    const res = await fetch(`${app.url}/streamed`, { method: 'POST' });
    expect([res.status, res.headers.get('content-type')]).toEqual([502, expect.stringMatching(/^application\/json/)]);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('stream_interrupted');
  });

  it('ends a stream the handler relayed itself when it fails midway (headers sent) as the route does, never as whole; the app stays up', async () => {
    openai.enqueue(replies.stream({ chunks: ['Hel', 'lo', ' there'], cutAfter: 1, intervalMs: 20 }));
    const res = await fetch(`${app.url}/relayed`, { method: 'POST' });
    expect([res.status, res.headers.get('content-type')]).toEqual([200, 'text/event-stream']);
    const text = await res.text();
    expect(text).toContain('"content":"Hel"');
    expect(text).not.toContain('[DONE]'); // ended, not completed
    // The error as the last event, which the SDK throws: a clean end would read as a whole answer.
    expect(text).toMatch(/data: \{"error":\{[^\n]*"code":"stream_interrupted"\}\}\n\n$/);
    // A body of another kind is cut off: the client sees it did not end.
    openai.enqueue(replies.stream({ chunks: ['Hel', 'lo', ' there'], cutAfter: 1, intervalMs: 20 }));
    const plain = await fetch(`${app.url}/relayed-text`, { method: 'POST' });
    expect(plain.status).toBe(200);
    await expect(plain.text()).rejects.toThrow();
    openai.enqueue(replies.stream({ chunks: ['Hel', 'lo'] }));
    const next = await fetch(`${app.url}/relayed`, { method: 'POST' });
    expect(await next.text()).toContain('[DONE]');
  });

  it("cuts off an event stream the handler opened before its request failed with an upstream's text (no event can carry it), never ends it as whole", async () => {
    // (429-only fallback: OpenAI's plain-text 503 is the answer.)
    openai.enqueue({ status: 503, headers: { 'content-type': 'text/plain' }, body: 'upstream overloaded' });
    const res = await fetch(`${app.url}/relayed-early`, { method: 'POST' });
    expect([res.status, res.headers.get('content-type')]).toEqual([200, 'text/event-stream']);
    await expect(res.text()).rejects.toThrow();
    // The JSON error of the same answer goes as the last event.
    openai.enqueue({ status: 503 });
    const json = await fetch(`${app.url}/relayed-early`, { method: 'POST' });
    expect(await json.text()).toMatch(/^: waiting\n\ndata: \{"error":\{[^\n]*\}\}\n\n$/);
  });

  it('leaves every other error to Nest, and successes alone', async () => {
    const boom = await fetch(`${app.url}/boom`, { method: 'POST' });
    expect([boom.status, await boom.json()]).toEqual([500, { statusCode: 500, message: 'Internal server error' }]);
    openai.enqueue(replies.rateLimited());
    const ok = await fetch(`${app.url}/summaries`, { method: 'POST' });
    expect([ok.status, await ok.json()]).toEqual([201, { summary: 'Hello from azure' }]);
  });
});

describe.each(nestPlatforms)("the route and the filter in the app's own setup, on Nest's %s platform", (_platform, create) => {
  let openai: FakeProvider;
  let azure: FakeProvider;
  const apps: RunningApp[] = [];

  beforeAll(async () => {
    [openai, azure] = await Promise.all([startFakeOpenAI({ name: 'openai' }), startFakeAzureOpenAI({ name: 'azure' })]);
    hosts.openai = openai.baseURL;
    hosts.azure = azure.baseURL;
  });
  afterAll(async () => {
    await Promise.all(apps.map((a) => a.close()));
    await Promise.all([openai.close(), azure.close()]);
  });

  it("keeps the route where SDK clients call it under the app's versioning, unless given a version", async () => {
    @Module({
      imports: [
        SwitchyardModule.forRoot({ ...new AppConfig().switchyard(), route: { path: 'v1/chat/completions' } }),
        SwitchyardModule.forRoot({ ...new AppConfig().switchyard(), route: { path: 'pinned/chat/completions', version: '3' } }),
      ],
    })
    class AppModule {}
    const nest = await create(AppModule);
    nest.enableVersioning({ type: VersioningType.URI, defaultVersion: '2' });
    const app = await listenNest(nest);
    apps.push(app);
    const post = (path: string) => fetch(`${app.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }) });
    expect((await post('/v1/chat/completions')).status).toBe(200);
    expect((await post('/v3/pinned/chat/completions')).status).toBe(200);
    expect((await post('/v2/v1/chat/completions')).status).toBe(404);
  });

  it('answers a FallbackRequestError when the filter is made with new, without the HttpAdapterHost', async () => {
    @Controller()
    class Summaries {
      constructor(@Inject(SwitchyardService) private readonly switchyard: SwitchyardService) {}
      @Post('summaries')
      async summarise(): Promise<unknown> {
        return this.switchyard.createChatCompletion({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
      }
      /** Opens its event stream on Node's response before asking (Fastify's reply is not taken over). */
      @Post('relayed-early')
      async relayedEarly(@Res() res: ServerResponse | { raw: ServerResponse }): Promise<void> {
        const raw = 'raw' in res ? res.raw : res;
        raw.writeHead(200, { 'content-type': 'text/event-stream' });
        raw.write(': waiting\n\n');
        await this.switchyard.createChatCompletion({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], stream: true });
        raw.end('data: [DONE]\n\n');
      }
    }
    @Module({ imports: [SwitchyardModule.forRoot(new AppConfig().switchyard())], controllers: [Summaries] })
    class AppModule {}
    const nest = await create(AppModule);
    nest.useGlobalFilters(new SwitchyardExceptionFilter());
    const app = await listenNest(nest);
    apps.push(app);
    openai.enqueue(replies.rateLimited(7));
    azure.enqueue(replies.rateLimited(3));
    const res = await fetch(`${app.url}/summaries`, { method: 'POST' });
    // Labelled JSON (the SDK reads an error body by its type).
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect([res.status, res.headers.get('retry-after'), ((await res.json()) as { error: { code: string } }).error.code]).toEqual([429, '3', '429']);
    // An upstream error that is no JSON keeps its type, not sniffed, as on the route.
    // (429-only fallback: OpenAI's 503 is the answer.)
    openai.enqueue({ status: 503, headers: { 'content-type': 'text/plain' }, body: 'upstream overloaded' });
    const text = await fetch(`${app.url}/summaries`, { method: 'POST' });
    expect([text.status, text.headers.get('content-type'), text.headers.get('x-content-type-options'), await text.text()]).toEqual([503, expect.stringMatching(/^text\/plain\b/), 'nosniff', 'upstream overloaded']);
    // Headers already sent: the error goes as the stream's last event.
    openai.enqueue({ status: 503 });
    const early = await fetch(`${app.url}/relayed-early`, { method: 'POST' });
    expect(await early.text()).toMatch(/^: waiting\n\ndata: \{"error":\{[^\n]*\}\}\n\n$/);
  });
});
