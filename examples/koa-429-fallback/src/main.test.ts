import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI, { APIError } from 'openai';
import { replies, startFakeAzureOpenAI, startFakeOpenAI } from '@switchyard/testing';
import { buildApp, FAKE_KEYS, fallbackOptions } from './app';
import { main } from './main';

// Variables left empty (a copied .env) count as unset: the example runs on the fakes, it does not refuse to start.
const EMPTY_ENV = { OPENAI_API_KEY: '', AZURE_OPENAI_API_KEY: '', AZURE_OPENAI_DEPLOYMENT: '', AZURE_OPENAI_API_VERSION: '', DEMO_MODEL: '' };

it('examples/koa-429-fallback: on the fakes, the rate-limited request is served by Azure', async () => {
  const { targets, logs } = await main(EMPTY_ENV, () => undefined);
  expect(targets).toEqual(['targets[1]', 'targets[0]']);
  expect(logs.map((e) => [e.fallback, e.stream])).toEqual([[true, false], [false, true]]);
});

it('examples/koa-429-fallback: falls back on 429 only: an OpenAI 503 reaches the client as it is, and Azure is not called', async () => {
  const openai = await startFakeOpenAI({ apiKey: FAKE_KEYS.openai, defaultReply: replies.serverError(503) });
  const azure = await startFakeAzureOpenAI({ apiKey: FAKE_KEYS.azure });
  const server = createServer(buildApp(fallbackOptions({}, { openai: openai.baseURL, azure: azure.baseURL }, () => undefined)).callback());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const client = new OpenAI({ apiKey: 'unused', baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, maxRetries: 0 });
    const err = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect([(err as APIError).status, azure.requests.length]).toEqual([503, 0]);
  } finally {
    server.close();
    await Promise.all([openai.close(), azure.close()]);
  }
});

it('examples/koa-429-fallback: names the variable behind a refused option', async () => {
  const env = { ...EMPTY_ENV, OPENAI_API_KEY: 'sk-x\r', AZURE_OPENAI_API_KEY: 'az-x', AZURE_OPENAI_RESOURCE: 'my-resource' };
  await expect(main(env, () => undefined)).rejects.toThrow('- OPENAI_API_KEY: must not contain line breaks');
});

it('examples/koa-429-fallback: with no provider variables at all, says it runs on the fakes without a "Not enough" line', async () => {
  const lines: string[] = [];
  await main(EMPTY_ENV, (line) => lines.push(line));
  expect(lines[0]).toBe('Koa app with Switchyard on fake providers (OpenAI answers 429 to every other request)');
  expect(lines.join('\n')).not.toContain('Not enough');
});

it("examples/koa-429-fallback: the app's own /health route stays the app's, and other paths reach Koa's 404", async () => {
  const server = createServer(buildApp(fallbackOptions({}, { openai: 'http://127.0.0.1:9/v1', azure: 'http://127.0.0.1:9/openai' }, () => undefined)).callback());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const health = await fetch(`${url}/health`);
    expect([health.status, await health.json()]).toEqual([200, { ok: true }]);
    expect((await fetch(`${url}/v1/models`)).status).toBe(404);
  } finally {
    server.close();
  }
});
