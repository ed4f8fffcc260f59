/** The adapters under test, each started as a real HTTP server on loopback (port 0). */
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import express from 'express';
import type { SwitchyardOptions } from '@switchyard/core';
import { fallbackMiddleware } from '@switchyard/express';

export interface RunningApp {
  /** `http://127.0.0.1:PORT` */
  url: string;
  close(): Promise<void>;
}

export interface AdapterUnderTest {
  name: string;
  /** The host parses JSON before Switchyard sees the request (so it answers invalid JSON itself). */
  hostParsesJson?: boolean;
  /** Starts a host app with Switchyard mounted and one business route `GET /health` of its own. */
  start(options: SwitchyardOptions): Promise<RunningApp>;
}

export function listen(server: Server): Promise<RunningApp> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

export const expressAdapter: AdapterUnderTest = {
  name: 'express',
  start(options) {
    const app = express();
    app.use(fallbackMiddleware(options));
    app.get('/health', (_req, res) => {
      res.json({ ok: true });
    });
    return listen(createServer(app));
  },
};

/** Express with `express.json()` in front: the middleware must use the parsed body. */
export const expressJsonAdapter: AdapterUnderTest = {
  name: 'express + express.json()',
  hostParsesJson: true,
  start(options) {
    const app = express();
    app.use(express.json({ limit: '20mb' }));
    app.use(fallbackMiddleware(options));
    app.get('/health', (_req, res) => {
      res.json({ ok: true });
    });
    return listen(createServer(app));
  },
};

export const adapters: AdapterUnderTest[] = [expressAdapter, expressJsonAdapter];
