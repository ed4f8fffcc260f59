import { createLogsHandler, type LogsHandlerOptions } from '@switchyard/core';
import type { Middleware } from 'koa';

export interface KoaLogsOptions extends LogsHandlerOptions {
  /** Where the endpoint lives, e.g. `/switchyard/logs` (Koa has no `app.use(path, ...)`; `/` under koa-mount). */
  path: string;
}

/**
 * The request-logs endpoint for Koa: serves the viewer page (`GET {path}/`, when `viewer` is on),
 * `GET {path}/api/requests` and `GET {path}/api/requests/:requestId`; requests outside `path` go to `next()`.
 * The shared Node handler writes the response itself (`ctx.respond = false`).
 */
export function logsMiddleware(options: KoaLogsOptions): Middleware {
  const prefix = options.path.replace(/\/+$/, '');
  const handler = createLogsHandler({ ...options, path: prefix });
  return async (ctx, next) => {
    if (prefix && ctx.path !== prefix && !ctx.path.startsWith(`${prefix}/`)) return next();
    ctx.respond = false;
    handler(ctx.req, ctx.res);
  };
}
