import express, { type Express } from 'express';
import { fallbackMiddleware, type SwitchyardOptions } from '@switchyard/express';

/** The host app: its own routes, plus Switchyard serving `POST /v1/chat/completions`. */
export function buildApp(options: SwitchyardOptions): Express {
  const app = express();
  app.use(fallbackMiddleware(options));
  app.get('/health', (_req, res) => {
    res.json({ ok: true });
  });
  return app;
}
