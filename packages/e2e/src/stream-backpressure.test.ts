/** A client that reads slowly holds the upstream back (backpressure), instead of the stream piling up in memory. */
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LogEvent } from '@switchyard/core';
import { expressAdapter, type RunningApp } from './support/adapters';

const EVENTS = 128;
const content = 'x'.repeat(1024 * 1024);
const event = `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'gpt-4o', choices: [{ index: 0, delta: { content } }] })}\n\n`;

let sent = 0;
let upstream: Server;
let app: RunningApp;
const logs: LogEvent[] = [];

beforeAll(async () => {
  upstream = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const more = () => {
      while (sent < EVENTS && !res.destroyed) {
        sent++;
        if (!res.write(event)) return void res.once('drain', more);
      }
      if (sent === EVENTS) res.end('data: [DONE]\n\n');
    };
    more();
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const custom_host = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`;
  app = await expressAdapter.start({
    virtualKeys: { raw: { provider: 'openai', api_key: 'sk-raw', custom_host } },
    config: { strategy: { mode: 'single' }, targets: [{ virtual_key: 'raw' }] },
    onLog: (e) => logs.push(e),
  });
});
afterAll(async () => {
  await app.close();
  upstream.closeAllConnections();
  await new Promise((r) => upstream.close(r));
});

it('holds the upstream back while the client does not read, and delivers the whole stream once it does', async () => {
  const url = new URL(app.url);
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' } }, resolve);
    req.on('error', reject);
    req.end(JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], stream: true }));
  });
  res.pause();
  await new Promise((r) => setTimeout(r, 1500));
  // With backpressure only what the socket buffers hold has left the upstream (a few MiB), not the whole 128 MiB.
  expect(sent).toBeLessThan(48);
  let bytes = 0;
  let tail = '';
  for await (const chunk of res) {
    bytes += (chunk as Buffer).length;
    tail = (tail + (chunk as Buffer).toString('latin1')).slice(-64);
  }
  expect(bytes).toBeGreaterThan(EVENTS * 1024 * 1024);
  expect(tail.endsWith('data: [DONE]\n\n')).toBe(true);
}, 30_000);

