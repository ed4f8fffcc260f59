/** Where Switchyard is mounted in an Express app (its warnings), a client leaving mid-body, and logsMiddleware's mount warning. */
import { createServer, request as httpRequest } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import request from 'supertest';
import { MemoryLogStore } from '@switchyard/core';
import { fallbackMiddleware, logsMiddleware } from '@switchyard/express';
import { listen } from '../../e2e/src/support/adapters';
import { expectServedWithoutMountWarning, seedOptions, until, useUpstreams } from '../../e2e/src/support/fixture';

const { up, logs, track } = useUpstreams();

// The mount warning is for a POST it passes on, not for a GET / OPTIONS (a browser's CORS preflight) to the chat path.
it("rightly mounted with app.use('/v1', ...), says nothing of a GET or a CORS preflight to the chat path", async () => {
  const host = express();
  host.use('/v1', fallbackMiddleware(seedOptions(up, logs, { basePath: '' })));
  const url = track(await listen(createServer(host)));
  await expectServedWithoutMountWarning(url);
});

// A client that leaves while express.json() reads its body (request.aborted) is Switchyard's to log, not the host's error.
it('a client that leaves mid-body behind express.json() is logged as 499, and the host error handler is not called', async () => {
  const hostErrors: string[] = [];
  const host = express();
  host.use(express.json());
  host.use(fallbackMiddleware(seedOptions(up, logs)));
  host.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
    hostErrors.push(err.message);
    res.status(500).end();
  });
  const url = new URL(track(await listen(createServer(host))));
  const req = httpRequest({ host: url.hostname, port: url.port, method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json', 'content-length': '1000' } });
  req.on('error', () => {});
  req.write('{"model":"gpt-4o",');
  await new Promise((r) => setTimeout(r, 100));
  req.destroy();
  await until(() => logs.length === 1);
  expect(logs[0]).toMatchObject({ status: 499, attempts: [] });
  expect(hostErrors).toEqual([]);
  expect(up.openai.requests).toHaveLength(0);
});

// logsMiddleware's mount warning.
it("logsMiddleware: says nothing when given path without a mount; warns beside a mount at that path even when written with a trailing slash", async () => {
  const TOKEN = 'logs-token-0123456789abcdef';
  const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
  try {
    const store = new MemoryLogStore();
    // Unmounted, with path: right, and no warning on the app's other requests.
    const plain = express();
    plain.use(logsMiddleware({ store, token: TOKEN, path: '/switchyard/logs' }));
    plain.get('/health', (_req, res) => void res.json({ ok: true }));
    const plainUrl = track(await listen(createServer(plain)));
    expect((await request(plainUrl).get('/health')).status).toBe(200);
    expect((await request(plainUrl).get('/switchyard/logs/api/requests').set('authorization', `Bearer ${TOKEN}`)).status).toBe(200);
    // Under a router mounted at /admin/logs, with path '/logs': served there, with no warning that it went on to next(),
    // for the endpoint's root without its trailing slash nor for the host's own routes beside it in that router.
    const nested = express();
    const router = express.Router();
    router.use(logsMiddleware({ store, token: TOKEN, path: '/logs', viewer: true }));
    router.get('/settings', (_req, res) => void res.json({ ok: true }));
    nested.use('/admin/logs', router);
    const nestedUrl = track(await listen(createServer(nested)));
    expect((await request(nestedUrl).get('/admin/logs/logs/api/requests').set('authorization', `Bearer ${TOKEN}`)).status).toBe(200);
    await request(nestedUrl).get('/admin/logs/logs').set('authorization', `Bearer ${TOKEN}`);
    expect((await request(nestedUrl).get('/admin/logs/settings')).body).toEqual({ ok: true });
    expect(warn).not.toHaveBeenCalled();
    // Beside a mount at that path, written with a trailing slash: still said.
    const doubled = express();
    doubled.use('/switchyard/logs', logsMiddleware({ store, token: TOKEN, path: '/switchyard/logs/' }));
    const doubledUrl = track(await listen(createServer(doubled)));
    expect((await request(doubledUrl).get('/switchyard/logs/api/requests').set('authorization', `Bearer ${TOKEN}`)).status).toBe(404);
    expect(warn).toHaveBeenCalledTimes(1);
  } finally {
    warn.mockRestore();
  }
});
