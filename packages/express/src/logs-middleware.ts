import { createLogsHandler, type LogsHandlerOptions } from '@switchyard/core';
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
  return createLogsHandler(options as LogsHandlerOptions);
}
