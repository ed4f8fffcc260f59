/// <reference types="jest" />
// packages/testing/README.md, "Testing your own fallback", as written there: the quick start's Express app built by
// createApp/startMyApp, and the test a user copies. If the README's example stops working, or this copy drifts from
// the README, this fails.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import express from 'express';
import OpenAI from 'openai';
import { fallbackMiddleware } from '@switchyard/express';
import { startFakeOpenAI, startFakeAzureOpenAI, replies, type FakeProvider } from '@switchyard/testing';

function createApp(hosts: { openaiHost?: string; azureHost?: string } = {}) {
  // Pointed at a fake, the app sends the fake's key: a real key exported in your shell never goes to a test server.
  const key = (fakeHost: string | undefined, fakeKey: string, real: string | undefined) => (fakeHost ? fakeKey : real ?? '');
  const app = express();
  app.use(fallbackMiddleware({
    virtualKeys: {
      'openai-prod': { provider: 'openai', api_key: key(hosts.openaiHost, 'sk-openai', process.env.OPENAI_API_KEY), custom_host: hosts.openaiHost },
      'azure-prod': { provider: 'azure-openai', api_key: key(hosts.azureHost, 'azure-key', process.env.AZURE_OPENAI_API_KEY), resource_name: 'my-resource',
                      custom_host: hosts.azureHost, deployments: { 'gpt-4o': 'gpt4o-prod' } },
    },
    config: { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] },
  }));
  return app;
}

async function startMyApp(hosts: { openaiHost: string; azureHost: string }) {
  const server = createApp(hosts).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

let openai: FakeProvider, azure: FakeProvider;
let app: { url: string; close(): Promise<void> } | undefined;
beforeEach(async () => {
  openai = await startFakeOpenAI({ apiKey: 'sk-openai' });
  azure = await startFakeAzureOpenAI({ apiKey: 'azure-key' });
});
afterEach(() => Promise.all([app?.close(), openai.close(), azure.close()]));

it('falls back to Azure when OpenAI rate-limits (the README example)', async () => {
  openai.enqueue(replies.rateLimited());
  app = await startMyApp({ openaiHost: openai.baseURL, azureHost: azure.baseURL });

  const client = new OpenAI({ apiKey: 'app-key', baseURL: `${app.url}/v1`, maxRetries: 0 });
  const res = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });

  expect(res.choices[0]?.message.content).toBe('Hello from azure-openai');
  expect(openai.requests).toHaveLength(1);
  expect(azure.requests).toHaveLength(1);
  // And the fakes saw what the README says the app sends them: each provider's key, Azure's deployment for gpt-4o.
  expect(openai.requests[0]?.headers['authorization']).toBe('Bearer sk-openai');
  expect(azure.requests[0]).toMatchObject({ deployment: 'gpt4o-prod', headers: { 'api-key': 'azure-key' } });
});

it("is the README's code: every line of createApp, startMyApp and the test's body is in the README's examples", () => {
  const readme = new Set(readFileSync(join(__dirname, '../../testing/README.md'), 'utf8').split('\n').map((l) => l.trim()));
  const here = readFileSync(__filename, 'utf8').split('\n').map((l) => l.trim());
  const between = (from: string, to: string) => here.slice(here.findIndex((l) => l.startsWith(from)), here.findIndex((l) => l.startsWith(to)) + 1);
  const copied = [...between('function createApp', 'return { url:'), ...between('openai.enqueue(replies.rateLimited())', 'expect(azure.requests)')];
  expect(copied.length).toBeGreaterThan(20);
  expect(copied.filter((l) => !readme.has(l) && !readme.has(`export ${l}`))).toEqual([]);
});
