import { NestFactory } from '@nestjs/core';
import OpenAI, { APIError } from 'openai';
import { replies, startFakeAzureOpenAI, startFakeOpenAI } from '@switchyard/testing';
import { appModule, FAKE_KEYS, switchyardOptions } from './app.module';
import { main } from './main';

// Variables left empty (a copied .env) count as unset: the example runs on the fakes, it does not refuse to start.
const EMPTY_ENV = { OPENAI_API_KEY: '', AZURE_OPENAI_API_KEY: '', AZURE_OPENAI_DEPLOYMENT: '', AZURE_OPENAI_API_VERSION: '', DEMO_MODEL: '' };

// DEMO_MODEL from the env main() is given (not this process's): both calls ask for it, and Azure has a deployment for it.
it.each(['', 'gpt-4o'])('examples/nestjs-429-fallback: the business endpoint is served by Azure after 429, the route by OpenAI (DEMO_MODEL=%j)', async (demoModel) => {
  const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
  const { summary, routeTarget } = await main({ ...EMPTY_ENV, DEMO_MODEL: demoModel }, () => undefined);
  expect(summary).toBe('Hello from azure-openai');
  expect(routeTarget).toBe('targets[0]');
  const events = log.mock.calls.map(([line]) => JSON.parse(String(line)) as { fallback: boolean; model: string });
  expect(events.map((e) => [e.fallback, e.model])).toEqual([true, false].map((fallback) => [fallback, demoModel || 'gpt-4o-mini']));
  log.mockRestore();
});

it('examples/nestjs-429-fallback: bad options and a PORT that is no port are one sentence each, without a stack from Nest', async () => {
  const errors = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  const stdout = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    await expect(main({ ...EMPTY_ENV, PORT: 'abc' }, () => undefined)).rejects.toThrow('PORT must be a port number (0-65535), not "abc".');
    const real = { OPENAI_API_KEY: 'sk-fake', AZURE_OPENAI_API_KEY: 'az-fake', AZURE_OPENAI_ENDPOINT: 'my-resource.openai.azure.com' };
    // Named by the variable the user set, as well as by the option it filled.
    await expect(main({ ...EMPTY_ENV, ...real }, () => undefined)).rejects.toThrow('- AZURE_OPENAI_ENDPOINT: must be an http(s) URL (virtualKeys["azure-prod"].endpoint)');
    expect(errors).not.toHaveBeenCalled();
    expect(stdout.mock.calls.map(([text]) => String(text)).join('')).not.toMatch(/ExceptionHandler|\n\s+at /);
  } finally {
    errors.mockRestore();
    stdout.mockRestore();
  }
});

it('examples/nestjs-429-fallback: falls back on 429 only: an OpenAI 503 reaches the client as it is, and Azure is not called', async () => {
  const openai = await startFakeOpenAI({ apiKey: FAKE_KEYS.openai, defaultReply: replies.serverError(503) });
  const azure = await startFakeAzureOpenAI({ apiKey: FAKE_KEYS.azure });
  const app = await NestFactory.create(appModule({ ...switchyardOptions({}, { openai: openai.baseURL, azure: azure.baseURL }), onLog: () => undefined }), { logger: false });
  await app.listen(0, '127.0.0.1');
  try {
    const client = new OpenAI({ apiKey: 'unused', baseURL: `${await app.getUrl()}/v1`, maxRetries: 0 });
    const err = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect([(err as APIError).status, azure.requests.length]).toEqual([503, 0]);
  } finally {
    await app.close();
    await Promise.all([openai.close(), azure.close()]);
  }
});

it('examples/nestjs-429-fallback: when every provider rate-limits, /summaries answers 429 with retry-after as the route would, not a bare 500', async () => {
  const openai = await startFakeOpenAI({ apiKey: FAKE_KEYS.openai, defaultReply: replies.rateLimited(7) });
  const azure = await startFakeAzureOpenAI({ apiKey: FAKE_KEYS.azure, defaultReply: replies.azureRateLimited(7) });
  const app = await NestFactory.create(appModule({ ...switchyardOptions({}, { openai: openai.baseURL, azure: azure.baseURL }), onLog: () => undefined }), { logger: false });
  await app.listen(0, '127.0.0.1');
  try {
    const res = await fetch(`${await app.getUrl()}/summaries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'hi' }) });
    expect([res.status, res.headers.get('retry-after') !== null, res.headers.get('x-switchyard-attempts')]).toEqual([429, true, '2']);
  } finally {
    await app.close();
    await Promise.all([openai.close(), azure.close()]);
  }
});
