import { Inject, Module, RequestMethod, type DynamicModule, type MiddlewareConsumer, type NestModule, type OnApplicationShutdown } from '@nestjs/common';
import { createLogsHandler, Gateway, isLogsPath, MAX_TIMER_MS, SwitchyardOptionsError, type LogsHandlerOptions, type OptionsIssue } from '@switchyard/core';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  SWITCHYARD_ASYNC_OPTIONS_TYPE, SWITCHYARD_EXTRAS_ISSUES, SWITCHYARD_GATEWAY, SWITCHYARD_OPTIONS, SwitchyardConfigurableModule, asyncKeyIssues, withIssues,
  type SwitchyardModuleOptions,
} from './switchyard.module-definition';
import { SwitchyardService } from './switchyard.service';

/** Builds the engine once; invalid options (and extras) fail module init with each field's path. */
function createGateway(options: SwitchyardModuleOptions, extrasIssues: OptionsIssue[]): Gateway {
  if (typeof options !== 'object' || options === null) {
    // A block-bodied factory that forgot its `return`.
    throw new SwitchyardOptionsError([{ path: 'useFactory', message: `returned ${options === null ? 'null' : typeof options}, not the options object` }]);
  }
  // `route` and `basePath` are not in the type, but plain JS or a shared options object may still carry them.
  const { logs, route, basePath, upstreamClient, shutdownDrainMs, ...rest } = options as SwitchyardModuleOptions & { route?: unknown; basePath?: unknown };
  const issues: OptionsIssue[] = [...extrasIssues, ...logsIssues(logs)];
  if (shutdownDrainMs !== undefined && !(Number.isInteger(shutdownDrainMs) && shutdownDrainMs >= 0 && shutdownDrainMs <= MAX_TIMER_MS)) {
    issues.push({ path: 'shutdownDrainMs', message: `must be a whole number of milliseconds from 0 to ${MAX_TIMER_MS}` });
  }
  // Nest fixes its routes before a factory runs: the route is given beside it, and a basePath has no meaning here.
  if (route !== undefined) {
    issues.push({ path: 'route', message: 'give it to forRoot/forRootAsync beside the options (forRootAsync({ route, useFactory })), not from useFactory' });
  }
  if (basePath !== undefined) issues.push({ path: 'basePath', message: 'not used by the NestJS module: set the route with `route.path`' });
  let gateway: Gateway | undefined;
  try {
    gateway = new Gateway(rest, upstreamClient === undefined ? {} : { client: upstreamClient });
  } catch (err) {
    // One error naming every bad field, the module's own and the engine's.
    if (!(err instanceof SwitchyardOptionsError)) throw err;
    issues.push(...err.issues);
  }
  if (issues.length > 0 || !gateway) throw new SwitchyardOptionsError(issues);
  return gateway;
}

/** How long `app.close()` waits for requests in flight before the sinks are flushed, unless `shutdownDrainMs` says. */
const SHUTDOWN_DRAIN_MS = 10_000;

/** The logs endpoint's problems, checked with the engine's (at module init, not first when Nest mounts it). */
function logsIssues(logs: unknown): OptionsIssue[] {
  if (logs === undefined) return [];
  if (typeof logs !== 'object' || logs === null) return [{ path: 'logs', message: 'must be an object: { path, store, token | auth, viewer? }' }];
  const issues: OptionsIssue[] = [];
  const { path } = logs as { path?: unknown };
  const mount = typeof path === 'string' ? mountOf(path) : '';
  // At the root it would answer every GET of the app (the viewer instead of the app's own pages).
  if (mount === '') issues.push({ path: 'logs.path', message: 'required: where the endpoint lives below the app\'s root, e.g. "switchyard/logs"' });
  try {
    createLogsHandler({ ...(logs as LogsHandlerOptions), path: `/${mount}` });
  } catch (err) {
    if (!(err instanceof SwitchyardOptionsError)) throw err;
    issues.push(...err.issues.filter((i) => i.path !== 'path').map((i) => ({ ...i, path: `logs.${i.path}` })));
  }
  return issues;
}

/** The logs path as Nest routes it: no slash at either end. */
function mountOf(path: string): string {
  return path.replace(/^\/+|\/+$/g, '');
}

/** Log sinks that hold events in memory a moment (SQLite, JSON lines): written out before the app stops. */
type FlushableSink = { flush?: () => unknown };

/**
 * `SwitchyardModule.forRoot(options)` / `forRootAsync({ imports, inject, useFactory })`, with `isGlobal` and `route`
 * beside the options. Provides `SwitchyardService`; with `route`, also serves an OpenAI-compatible POST route.
 */
@Module({
  providers: [
    { provide: SWITCHYARD_GATEWAY, useFactory: createGateway, inject: [SWITCHYARD_OPTIONS, SWITCHYARD_EXTRAS_ISSUES] },
    SwitchyardService,
  ],
  exports: [SwitchyardService, SWITCHYARD_GATEWAY],
})
export class SwitchyardModule extends SwitchyardConfigurableModule implements NestModule, OnApplicationShutdown {
  constructor(
    @Inject(SWITCHYARD_OPTIONS) private readonly options: SwitchyardModuleOptions,
    @Inject(SWITCHYARD_GATEWAY) private readonly gateway: Gateway,
  ) {
    super();
  }

  /**
   * `app.close()` (or a signal with `enableShutdownHooks`): the events the sinks still queue are written first, as a
   * store made in `useFactory` has no other owner to flush it. The sinks stay open (a test may reuse one). Requests
   * still in flight are waited for first (up to `shutdownDrainMs`, 10 s: an in-process stream nobody reads would never
   * end): those a forced close cut (`forceCloseConnections`) log their 499 only after the server closed.
   */
  async onApplicationShutdown(): Promise<void> {
    const waitMs = this.options.shutdownDrainMs ?? SHUTDOWN_DRAIN_MS;
    let timer: NodeJS.Timeout | undefined;
    const cap = new Promise<boolean>((resolve) => {
      // Not unref'd: with only a stuck request left, the process would exit here, before the flush below.
      timer = setTimeout(() => resolve(false), waitMs);
    });
    const drained = await Promise.race([this.gateway.drain().then(() => true), cap]);
    clearTimeout(timer);
    const open = drained ? 0 : this.gateway.requestsInFlight;
    if (open > 0) {
      // Not silent: their events come after the stores (closed by their own modules) may have closed, or never.
      process.emitWarning(
        `${open} Switchyard request${open === 1 ? ' was' : 's were'} still in flight ${waitMs} ms into app.close() (an in-process stream not read to its end, or a background job's call): its log event is lost if it ends after the log store closed. Stop such work first (an onModuleDestroy that aborts it), or raise shutdownDrainMs.`,
        'SwitchyardShutdownWarning',
      );
    }
    await Promise.all(this.gateway.options.sinks.map((sink) => (sink as FlushableSink).flush?.()));
  }

  static override forRootAsync(options: typeof SWITCHYARD_ASYNC_OPTIONS_TYPE): DynamicModule {
    return withIssues(super.forRootAsync(options), asyncKeyIssues(options));
  }

  // The logs endpoint is a middleware, not a controller: its path comes from options, which forRootAsync only
  // knows at runtime (it checks access itself: auth, token).
  configure(consumer: MiddlewareConsumer): void {
    const logs = this.options.logs;
    if (logs) {
      const prefix = mountOf(logs.path);
      const mount = `/${prefix}`;
      // GET routes keep the full URL (a prefix `use` would strip it), so the handler matches its own prefix.
      const handler = createLogsHandler({ ...logs, path: mount });
      consumer
        .apply((req: IncomingMessage & { params?: { rest?: unknown }; originalUrl?: string }, res: ServerResponse, next: (err?: unknown) => void) => {
          // Nest sends only this path's requests here, but a global prefix (app.setGlobalPrefix) may stand before
          // it: the part below the mount is the route's wildcard (decoded segments) on Express; Fastify's middleware
          // gets no params (and a stripped url), so there it is read from the original URL.
          const url = req.url ?? '/';
          const rest = req.params?.rest;
          const below = Array.isArray(rest)
            ? rest.map((segment) => encodeURIComponent(String(segment))).join('/')
            : belowMount(req.originalUrl ?? url, mount);
          const q = url.indexOf('?');
          req.url = `${mount}${below === '' ? '' : `/${below}`}${q < 0 ? '' : url.slice(q)}`;
          void handler(req, res, (err?: unknown) => {
            req.url = url;
            next(err);
          });
        })
        // Every method: the handler answers one it does not serve with a JSON 405 and Allow, as Express's and Koa's.
        .forRoutes({ path: prefix, method: RequestMethod.ALL }, { path: `${prefix}/{*rest}`, method: RequestMethod.ALL });
    }
  }
}

/**
 * The path below `mount` in a URL (still percent-encoded): searched from the start at segment boundaries, so a global
 * prefix may stand before the mount, and the ids after it cannot be mistaken for it.
 */
function belowMount(url: string, mount: string): string {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  // Nest's routes match regardless of case (Fastify's too, as Nest sets it up): so does the mount here.
  const lower = path.toLowerCase();
  const wanted = mount.toLowerCase();
  let first: string | undefined;
  for (let at = lower.indexOf(wanted); at >= 0; at = lower.indexOf(wanted, at + 1)) {
    const end = at + mount.length;
    if (end !== path.length && path[end] !== '/') continue;
    const below = path.slice(end).replace(/^\/+/, '');
    // A global prefix named like the mount (`logs/logs/...`): the match whose rest is one of the endpoint's paths.
    if (isLogsPath(`/${below}`)) return below;
    first ??= below;
  }
  return first ?? '';
}
