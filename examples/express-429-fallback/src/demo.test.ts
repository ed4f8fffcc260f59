import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI, { APIError } from 'openai';
import { MemoryLogStore } from '@switchyard/core';
import { replies, startFakeAzureOpenAI, startFakeOpenAI } from '@switchyard/testing';
import { buildApp } from './app';
import { runDemo } from './demo';
import { FAKE_KEYS, fallbackOptions } from './options';

// Variables left empty (a copied .env) count as unset: the example runs on the fakes, it does not refuse to start.
const EMPTY_ENV = { OPENAI_API_KEY: '', AZURE_OPENAI_API_KEY: '', AZURE_OPENAI_DEPLOYMENT: '', AZURE_OPENAI_API_VERSION: '', DEMO_MODEL: '' };

describe('examples/express-429-fallback', () => {
  it('on the fakes, serves rate-limited requests from Azure and logs each one', async () => {
    const lines: string[] = [];
    const result = await runDemo(EMPTY_ENV, (line) => lines.push(line));

    expect(result.mode).toBe('fakes');
    expect(result.served.map((s) => [s.request, s.target, s.fallback])).toEqual([
      ['demo-1', 'targets[1]', true],
      ['demo-2', 'targets[0]', false],
      ['demo-3', 'targets[1]', true],
      ['demo-stream', 'targets[1]', true],
    ]);
    expect(result.served[0]!.text).toBe('Hello from Azure OpenAI');
    expect(result.served[1]!.text).toBe('Hello from OpenAI');
    expect(result.served[3]!.text).toBe('Hello from Azure OpenAI');
    expect(result.logs.map((e) => [e.traceId, e.status, e.fallback, e.attempts.map((a) => a.status)])).toEqual([
      ['demo-1', 200, true, [429, 200]],
      ['demo-2', 200, false, [200]],
      ['demo-3', 200, true, [429, 200]],
      ['demo-stream', 200, true, [429, 200]],
    ]);
    expect(lines.join('\n')).toContain('served by Azure OpenAI');
    expect(result.found.map((e) => [e.traceId, e.fallback, e.servedBy?.provider])).toEqual([['demo-1', true, 'azure-openai']]);
    expect(lines).toContainEqual(expect.stringMatching(/^demo-1 {7}openai 429 rate_limit_exceeded \(\d+ ms\) -> azure-openai 200 \(\d+ ms\)$/));
    expect(lines).toContain('The app stops now: run with DEMO_SERVE=1 to keep it up and open the request logs viewer.');
  });

  it('with only some provider variables, says which are missing and runs on the fakes; a busy PORT is a sentence', async () => {
    const lines: string[] = [];
    const result = await runDemo({ ...EMPTY_ENV, OPENAI_API_KEY: 'sk-my-real-key' }, (line) => lines.push(line));
    expect(result.mode).toBe('fakes');
    expect(lines[0]).toBe('Not enough for the real providers (missing AZURE_OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT (or AZURE_OPENAI_RESOURCE)): running on fake providers, with fake keys.');
    expect(result.served).toHaveLength(4);

    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = String((taken.address() as AddressInfo).port);
    try {
      await expect(runDemo({ ...EMPTY_ENV, PORT: port }, () => undefined)).rejects.toThrow(`Port ${port} is in use`);
      await expect(runDemo({ ...EMPTY_ENV, PORT: 'abc' }, () => undefined)).rejects.toThrow('PORT must be a port number (0-65535), not "abc".');
    } finally {
      taken.close();
    }
  });

  it('falls back on 429 only: an OpenAI 503 reaches the client as it is, and Azure is not called', async () => {
    const openai = await startFakeOpenAI({ apiKey: FAKE_KEYS.openai, defaultReply: replies.serverError(503) });
    const azure = await startFakeAzureOpenAI({ apiKey: FAKE_KEYS.azure });
    const server = createServer(buildApp(fallbackOptions({}, { openai: openai.baseURL, azure: azure.baseURL }, () => undefined), { store: new MemoryLogStore(), token: 'example-token-0123456789' }));
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

  it('names the variable behind a refused option: AZURE_OPENAI_ENDPOINT, not the option path alone', async () => {
    const env = { ...EMPTY_ENV, OPENAI_API_KEY: 'sk-x', AZURE_OPENAI_API_KEY: 'az-x', AZURE_OPENAI_ENDPOINT: 'my-resource.openai.azure.com' };
    await expect(runDemo(env, () => undefined)).rejects.toThrow('- AZURE_OPENAI_ENDPOINT: must be an http(s) URL (virtualKeys["azure-prod"].endpoint)');
  });
});

describe('examples/express-429-fallback: the environment', () => {
  it('with no provider variables at all, runs on the fakes without a "Not enough" line', async () => {
    const lines: string[] = [];
    await runDemo(EMPTY_ENV, (line) => lines.push(line));
    expect(lines[0]).toMatch(/^Switchyard demo on fake providers at http:\/\/127\.0\.0\.1:\d+\/v1/);
    expect(lines.join('\n')).not.toContain('Not enough');
  });

  it('real-provider options take the resource, API version and deployment from the environment (Azure pointed at a loopback fake)', async () => {
    const azure = await startFakeAzureOpenAI({ apiKey: 'az-env-key', deployments: ['my-gpt4o'] });
    const openai = await startFakeOpenAI({ apiKey: FAKE_KEYS.openai, defaultReply: replies.rateLimited(1) });
    const env = { OPENAI_API_KEY: '', AZURE_OPENAI_API_KEY: 'az-env-key', AZURE_OPENAI_ENDPOINT: azure.url, AZURE_OPENAI_API_VERSION: '2024-06-01', AZURE_OPENAI_DEPLOYMENT: 'my-gpt4o', DEMO_MODEL: 'gpt-4o' };
    const server = createServer(buildApp(fallbackOptions(env, { openai: openai.baseURL }, () => undefined), { store: new MemoryLogStore(), token: 'example-token-0123456789' }));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const client = new OpenAI({ apiKey: 'unused', baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, maxRetries: 0 });
      const { response } = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
      expect(response.headers.get('x-switchyard-target')).toBe('targets[1]');
      expect(azure.requests.map((r) => [r.deployment, r.query['api-version']])).toEqual([['my-gpt4o', '2024-06-01']]);
    } finally {
      server.close();
      await Promise.all([openai.close(), azure.close()]);
    }
    // Without an endpoint, AZURE_OPENAI_RESOURCE names the resource; DEMO_MODEL unset defaults to gpt-4o-mini, deployed as {model}-prod.
    const byResource = fallbackOptions({ AZURE_OPENAI_API_KEY: 'az', AZURE_OPENAI_RESOURCE: 'contoso-eu' }, {}, () => undefined).virtualKeys!['azure-prod'];
    expect(byResource).toMatchObject({ resource_name: 'contoso-eu', deployments: { 'gpt-4o-mini': 'gpt-4o-mini-prod' } });
  });
});

it("examples/express-429-fallback: the app's own /health route stays the app's beside Switchyard and the logs endpoint", async () => {
  const app = buildApp(fallbackOptions({}, { openai: 'http://127.0.0.1:9/v1', azure: 'http://127.0.0.1:9/openai' }, () => undefined), { store: new MemoryLogStore(), token: 'example-token-0123456789' });
  const server = createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const health = await fetch(`${url}/health`);
    expect([health.status, await health.json()]).toEqual([200, { ok: true }]);
    expect((await fetch(`${url}/switchyard/logs/api/requests`)).status).toBe(401);
  } finally {
    server.close();
  }
});
