import { ConfigurableModuleBuilder, type DynamicModule, type Provider, type VERSION_NEUTRAL } from '@nestjs/common';
import type { LogsHandlerOptions, OptionsIssue, SwitchyardOptions, UpstreamClient } from '@switchyard/core';
import { chatRouteController, SWITCHYARD_GATEWAY } from './chat-route.controller';

/** Switchyard's options plus what only the Nest module needs: what `useFactory` returns. */
export type SwitchyardModuleOptions = Omit<SwitchyardOptions, 'basePath'> & {
  /**
   * Mounts the request-logs endpoint (query API, and the viewer page with `viewer: true`) under `path`, e.g.
   * `{ path: 'switchyard/logs', store, token }`. Off when absent; the store should also be in `logSinks`.
   */
  logs?: Omit<LogsHandlerOptions, 'path'> & { path: string } | undefined;
  /**
   * The client the engine calls providers with, e.g. `createUpstreamClient(new ProxyAgent(url))` behind an egress
   * proxy. Default: Switchyard's own keep-alive pool.
   */
  upstreamClient?: UpstreamClient | undefined;
  /**
   * How long `app.close()` waits for requests in flight (an in-process stream a background job reads) before the
   * log sinks are flushed, in ms. Default 10000: keep it under your orchestrator's grace period. Those still running
   * then are named in a `SwitchyardShutdownWarning`: their log events may come after the stores closed.
   */
  shutdownDrainMs?: number | undefined;
};

/** A Nest controller version (as `@Controller({ version })` takes it). */
export type RouteVersion = string | typeof VERSION_NEUTRAL | Array<string | typeof VERSION_NEUTRAL>;

/** Given to `forRoot` / `forRootAsync` beside the options: Nest fixes its routes before any factory runs. */
export interface SwitchyardModuleExtras {
  /** Registers the module globally: SwitchyardService injectable without importing the module. Default false. */
  isGlobal?: boolean | undefined;
  /**
   * Serves an OpenAI-compatible route, e.g. `{ path: 'v1/chat/completions' }` (POST), as a Nest controller: the
   * app's guards, global prefix and exception filters apply to it as to any route (interceptors run, but see no
   * return value: the route writes its response itself). Version-neutral unless `version` says otherwise (the app's
   * `enableVersioning` would otherwise move it or require a version header SDK clients do not send). Off when absent.
   * `decorators` go on its controller class, as on one of yours: `[Public()]` for a global auth guard that skips
   * public routes by their metadata, `[UseGuards(ApiKeyGuard)]` for a guard of this route only, `[SkipThrottle()]`
   * (a guard class is made in this module: what it injects must reach it, e.g. through forRootAsync's `imports`).
   */
  route?: { path: string; version?: RouteVersion | undefined; decorators?: ClassDecorator[] | undefined } | undefined;
}

/** What `forRoot` takes: the options and the extras in one object. */
export type SwitchyardForRootOptions = SwitchyardModuleOptions & SwitchyardModuleExtras;

/** Problems of the extras, reported with the options' at module init (not when `forRoot` is called). */
export const SWITCHYARD_EXTRAS_ISSUES = Symbol('SWITCHYARD_EXTRAS_ISSUES');

/** What forRootAsync takes beside the options' factory; Nest would ignore any other key. */
const ASYNC_KEYS = new Set(['imports', 'inject', 'useFactory', 'useClass', 'useExisting', 'provideInjectionTokensFrom', 'isGlobal', 'route']);

/**
 * Keys given to forRootAsync that Nest would silently ignore (a `logs` beside `useFactory` would leave the endpoint
 * unmounted): reported at module init with the options' own problems.
 */
export function asyncKeyIssues(asyncOptions: object): OptionsIssue[] {
  return Object.keys(asyncOptions)
    .filter((key) => !ASYNC_KEYS.has(key))
    .map((key) => ({
      path: key,
      message: `forRootAsync does not take it beside the factory: return it from useFactory${key === 'logs' ? ' ({ ...options, logs })' : ''} (beside the factory go imports, inject, useFactory | useClass | useExisting, isGlobal and route)`,
    }));
}

/** The module with more problems to report at init. */
export function withIssues(definition: DynamicModule, more: OptionsIssue[]): DynamicModule {
  if (more.length === 0) return definition;
  const providers = (definition.providers ?? []).map((p) =>
    typeof p === 'object' && 'provide' in p && p.provide === SWITCHYARD_EXTRAS_ISSUES && 'useValue' in p ? { ...p, useValue: [...(p.useValue as OptionsIssue[]), ...more] } : p,
  );
  return { ...definition, providers };
}

function withExtras(definition: DynamicModule, extras: SwitchyardModuleExtras): DynamicModule {
  const { route } = extras;
  const issues: OptionsIssue[] = [];
  let controllers: DynamicModule['controllers'] = [];
  if (route !== undefined) {
    const decorators: unknown = (route as { decorators?: unknown } | null)?.decorators;
    if (typeof route !== 'object' || route === null || typeof route.path !== 'string' || route.path === '') {
      issues.push({ path: 'route.path', message: 'must be a non-empty path, e.g. "v1/chat/completions"' });
    } else if (decorators !== undefined && !(Array.isArray(decorators) && decorators.every((d) => typeof d === 'function'))) {
      issues.push({ path: 'route.decorators', message: 'must be a list of class decorators, e.g. [UseGuards(ApiKeyGuard)]' });
    } else controllers = [chatRouteController(route.path, route.version, route.decorators)];
  }
  const providers: Provider[] = [...(definition.providers ?? []), { provide: SWITCHYARD_EXTRAS_ISSUES, useValue: issues }];
  return { ...definition, global: extras.isGlobal === true, controllers, providers };
}

// Nest's own builder generates forRoot / forRootAsync (useFactory | useClass | useExisting, inject, imports).
export const {
  ConfigurableModuleClass: SwitchyardConfigurableModule,
  MODULE_OPTIONS_TOKEN: SWITCHYARD_OPTIONS,
  ASYNC_OPTIONS_TYPE: SWITCHYARD_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<SwitchyardModuleOptions>({ moduleName: 'Switchyard' })
  .setClassMethodName('forRoot')
  .setExtras<SwitchyardModuleExtras>({ isGlobal: false, route: undefined }, withExtras)
  .build();

export { SWITCHYARD_GATEWAY };
