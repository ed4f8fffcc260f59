import { createLogsHandler, type LogsHandlerOptions } from '@switchyard/core';
import type { RequestHandler } from 'express';

/**
 * The request-logs endpoint for Express: mount it where it should live, e.g.
 * `app.use('/switchyard/logs', logsMiddleware({ store, token, viewer: true }))`. Serves the viewer page (`GET /`,
 * when `viewer` is on), `GET /api/requests` and `GET /api/requests/:requestId`; anything else goes to `next()`.
 * Options without `auth`, `token` or `allowUnauthenticated` throw here, at startup.
 */
export function logsMiddleware(options: LogsHandlerOptions): RequestHandler {
  return createLogsHandler(options);
}
