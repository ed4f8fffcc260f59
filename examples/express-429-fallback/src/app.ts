import express, { type Express } from 'express';
import { MemoryLogStore } from '@switchyard/core';
import { fallbackMiddleware, logsMiddleware, type SwitchyardOptions } from '@switchyard/express';

/**
 * The host app: its own routes, Switchyard serving `POST /v1/chat/completions`, and the request-logs viewer at
 * `/switchyard/logs/` behind a bearer token.
 */
export function buildApp(options: SwitchyardOptions, logs: { store: MemoryLogStore; token: string }): Express {
  const app = express();
  app.use(fallbackMiddleware({ ...options, logSinks: [logs.store] }));
  app.use('/switchyard/logs', logsMiddleware({ store: logs.store, token: logs.token, viewer: true }));
  app.get('/health', (_req, res) => {
    res.json({ ok: true });
  });
  return app;
}
