import { createLogsHandler, isLogsPath, type LogsHandlerOptions } from '@switchyard/core';
import type { Request, RequestHandler } from 'express';

export interface ExpressLogsOptions extends Omit<LogsHandlerOptions, 'auth'> {
  /** Decides whether a request may see the logs, from Express's request (`req.session`, `req.user`). A throw denies (500). */
  auth?: ((req: Request) => boolean | Promise<boolean>) | undefined;
}

/**
 * The request-logs endpoint for Express: mount it where it should live, e.g.
 * `app.use('/switchyard/logs', logsMiddleware({ store, token, viewer: true }))`. Serves the viewer page (`GET /`,
 * when `viewer` is on), `GET /api/requests` and `GET /api/requests/:requestId`; anything else goes to `next()`.
 * Options without `auth`, `token` or `allowUnauthenticated` throw here, at startup.
 */
export function logsMiddleware(options: ExpressLogsOptions): RequestHandler {
  // The handler passes `auth` the request Express called it with: Express's own, typed as Node's in core.
  const handler = createLogsHandler(options as LogsHandlerOptions);
  const prefix = typeof options.path === 'string' ? options.path.replace(/\/+$/, '') : '';
  if (prefix === '') return handler;
  // `path` (for hosts that strip no mount) beside `app.use(path, ...)`, which strips it: the page and the API would
  // sit at the path twice over, and every request at the mount would reach the host's 404 with no other sign. Only a
  // request the endpoint would serve without `path` says so: the host's own routes beside it in a router are not one.
  let warned = false;
  return (req, res, next) => {
    if (!warned && req.baseUrl.endsWith(prefix) && !underPrefix(req.path, prefix) && isLogsPath(req.path)) {
      warned = true;
      process.emitWarning(
        `Switchyard's logsMiddleware, mounted at ${req.baseUrl}, has the option path: '${prefix}', which Express already cut from the path it passes on: leave path out (app.use('${req.baseUrl}', ...) places it); the request went on to next()`,
        'SwitchyardMountWarning',
      );
    }
    return handler(req, res, next);
  };
}

function underPrefix(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}/`);
}
