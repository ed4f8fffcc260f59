import type { IncomingMessage } from 'node:http';
import { createLogsHandler, SwitchyardOptionsError, type LogsHandlerOptions } from '@switchyard/core';
import type { Context, Middleware } from 'koa';

export interface KoaLogsOptions extends Omit<LogsHandlerOptions, 'auth'> {
  /** Where the endpoint lives, e.g. `/switchyard/logs` (Koa has no `app.use(path, ...)`; `/` under koa-mount). */
  path: string;
  /** Who may see the logs, from Koa's context (`ctx.state.user`, `ctx.session`...): true to allow. */
  auth?: ((ctx: Context) => boolean | Promise<boolean>) | undefined;
}

/**
 * The request-logs endpoint for Koa: serves the viewer page (`GET {path}/`, when `viewer` is on),
 * `GET {path}/api/requests` and `GET {path}/api/requests/:requestId`; requests outside `path`, or below it but not
 * its own, go to `next()`. Its answers go out through Koa (`ctx.status`, `ctx.body`), as any route's: middleware in
 * front still sets headers and cookies after `await next()` (koa-session's rolling cookie, a response-time header).
 */
export function logsMiddleware(options: KoaLogsOptions): Middleware {
  if (typeof options.path !== 'string') {
    // Without it the endpoint would answer every request of the app.
    throw new SwitchyardOptionsError([{ path: 'path', message: 'required: where the endpoint lives, e.g. "/switchyard/logs" ("" under koa-mount)' }]);
  }
  const prefix = options.path.replace(/\/+$/, '');
  const { auth } = options;
  // The shared handler knows Node's request only: the hook gets the Koa context it belongs to.
  const contexts = new WeakMap<IncomingMessage, Context>();
  const handler = createLogsHandler({ ...options, path: prefix, auth: auth && ((req) => auth(contexts.get(req)!)) });
  return async (ctx, next) => {
    if (prefix && ctx.path !== prefix && !ctx.path.startsWith(`${prefix}/`)) return next();
    if (auth) contexts.set(ctx.req, ctx);
    // The handler tells at once (before any await) whether a path below the mount is its own; the app's
    // own routes there, as in Express, go on to next().
    let notOurs = false;
    const served = handler(
      ctx.req,
      ctx.res,
      () => {
        notOurs = true;
      },
      (status, headers, body) => {
        ctx.status = status;
        ctx.set(headers);
        ctx.body = body;
      },
    );
    if (notOurs) return next();
    // Until the answer is set: middleware in front (a 404 handler, an access log) sees the request done.
    await served;
  };
}
