import { Inject, Module, RequestMethod, type MiddlewareConsumer, type NestModule } from '@nestjs/common';
import { createLogsHandler, Gateway, handleNodeRequest, SwitchyardOptionsError, type OptionsIssue } from '@switchyard/core';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  SWITCHYARD_GATEWAY, SWITCHYARD_OPTIONS, SwitchyardConfigurableModule, type SwitchyardModuleOptions,
} from './switchyard.module-definition';
import { SwitchyardService } from './switchyard.service';

/** Builds the engine once; invalid options fail module init with each field's path. */
function createGateway(options: SwitchyardModuleOptions): Gateway {
  const { route, logs: _logs, ...rest } = options;
  const issues: OptionsIssue[] = [];
  if (route !== undefined && (typeof route !== 'object' || route === null || typeof route.path !== 'string' || route.path === '')) {
    issues.push({ path: 'route.path', message: 'must be a non-empty path, e.g. "v1/chat/completions"' });
  }
  // Nest routes by `route.path`: a basePath would be silently ignored.
  if ('basePath' in rest) issues.push({ path: 'basePath', message: 'not used by the NestJS module: set the route with `route.path`' });
  if (issues.length > 0) throw new SwitchyardOptionsError(issues);
  return new Gateway(rest);
}

/**
 * `SwitchyardModule.forRoot(options)` / `forRootAsync({ imports, inject, useFactory })`, `isGlobal` optional.
 * Provides `SwitchyardService`; with `route`, also serves an OpenAI-compatible POST route (Express platform).
 */
@Module({
  providers: [{ provide: SWITCHYARD_GATEWAY, useFactory: createGateway, inject: [SWITCHYARD_OPTIONS] }, SwitchyardService],
  exports: [SwitchyardService, SWITCHYARD_GATEWAY],
})
export class SwitchyardModule extends SwitchyardConfigurableModule implements NestModule {
  constructor(
    @Inject(SWITCHYARD_OPTIONS) private readonly options: SwitchyardModuleOptions,
    @Inject(SWITCHYARD_GATEWAY) private readonly gateway: Gateway,
  ) {
    super();
  }

  // Route middlewares, not controllers: their paths come from options, which forRootAsync only knows at runtime.
  configure(consumer: MiddlewareConsumer): void {
    const path = this.options.route?.path;
    const gateway = this.gateway;
    if (path) {
      consumer
        .apply((req: IncomingMessage & { body?: unknown }, res: ServerResponse) => {
          void handleNodeRequest(gateway, req, res, { parsedBody: req.body });
        })
        .forRoutes({ path, method: RequestMethod.POST });
    }
    const logs = this.options.logs;
    if (logs) {
      const prefix = logs.path.replace(/^\/+|\/+$/g, '');
      const mount = `/${prefix}`;
      // GET routes keep the full URL (a prefix `use` would strip it), so the handler matches its own prefix.
      const handler = createLogsHandler({ ...logs, path: mount });
      consumer
        .apply((req: IncomingMessage & { params?: { rest?: unknown } }, res: ServerResponse, next: (err?: unknown) => void) => {
          // Nest sends only this path's requests here, but a global prefix (app.setGlobalPrefix) may stand before
          // it: the part below the mount is the route's wildcard (decoded segments), never found by searching the URL.
          const url = req.url ?? '/';
          const rest = req.params?.rest;
          const below = Array.isArray(rest) ? rest.map((segment) => encodeURIComponent(String(segment))).join('/') : '';
          const q = url.indexOf('?');
          req.url = `${mount}${below === '' ? '' : `/${below}`}${q < 0 ? '' : url.slice(q)}`;
          handler(req, res, (err?: unknown) => {
            req.url = url;
            next(err);
          });
        })
        .forRoutes({ path: prefix, method: RequestMethod.GET }, { path: `${prefix}/{*rest}`, method: RequestMethod.GET });
    }
  }
}
