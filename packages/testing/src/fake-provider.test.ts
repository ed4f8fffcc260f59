/// <reference types="jest" />
import OpenAI, { APIConnectionError, APIError, AuthenticationError, AzureOpenAI, BadRequestError, RateLimitError } from 'openai';
import { missingProviderEnv, replies, withProviderEnvNames, startFakeAzureOpenAI, startFakeOpenAI, type FakeProvider } from './index';

const KEY = 'sk-test-key';
const messages = [{ role: 'user' as const, content: 'hi' }];

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

function post(url: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
}

describe('fake OpenAI', () => {
  let fake: FakeProvider;
  let client: OpenAI;

  beforeEach(async () => {
    fake = await startFakeOpenAI({ apiKey: KEY });
    client = new OpenAI({ apiKey: KEY, baseURL: fake.baseURL, maxRetries: 0 });
  });
  afterEach(() => fake.close());

  it('serves a realistic chat.completion and records the request', async () => {
    expect(fake.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(fake.baseURL).toBe(`${fake.url}/v1`);

    const { data, response } = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages, temperature: 0 })
      .withResponse();

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.headers.get('content-length')).not.toBeNull();
    expect(response.headers.get('x-request-id')).toBe('req_fake_1');
    expect(data).toMatchObject({
      id: 'chatcmpl-fake-1',
      object: 'chat.completion',
      model: 'gpt-4o-mini',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hello from openai', refusal: null }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
    });

    expect(fake.requests).toHaveLength(1);
    const rec = fake.requests[0]!;
    expect(rec).toMatchObject({ method: 'POST', path: '/v1/chat/completions', aborted: false });
    expect(rec.headers['authorization']).toBe(`Bearer ${KEY}`);
    expect(rec.body).toEqual({ model: 'gpt-4o-mini', messages, temperature: 0 });
    expect(JSON.parse(rec.rawBody)).toEqual(rec.body);
    expect(rec.deployment).toBeUndefined();
  });

  it('streams SSE chunks that the SDK can consume, with a usage chunk when asked', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o',
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);

    expect(chunks).toHaveLength(5); // 3 content chunks, the finish chunk, usage
    expect(chunks.slice(0, 3).map((c) => c.choices[0]?.delta.content).join('')).toBe('Hello from openai');
    expect(chunks[0]?.choices[0]?.delta.role).toBe('assistant');
    // As OpenAI ends a choice: a chunk of its own, with an empty delta and the finish reason.
    expect(chunks.map((c) => c.choices[0]?.finish_reason ?? null)).toEqual([null, null, null, 'stop', null]);
    expect(chunks[3]?.choices[0]?.delta).toEqual({});
    expect(chunks[4]).toMatchObject({ choices: [], usage: { prompt_tokens: 10, completion_tokens: 3, total_tokens: 13 } });
    expect(new Set(chunks.map((c) => c.id))).toEqual(new Set(['chatcmpl-fake-1']));
  });

  it('plays explicit stream pieces and sends SSE headers and [DONE]', async () => {
    fake.enqueue(replies.stream({ chunks: ['a', 'b'] }));
    const res = await post(`${fake.baseURL}/chat/completions`, { model: 'm', messages }, { authorization: `Bearer ${KEY}` });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    const events = (await res.text()).split('\n\n').filter(Boolean);
    expect(events).toHaveLength(4); // a, b, the finish chunk, [DONE]
    expect(events[3]).toBe('data: [DONE]');
    expect(JSON.parse(events[1]!.slice(6))).toMatchObject({ object: 'chat.completion.chunk', choices: [{ delta: { content: 'b' } }] });
  });

  it('returns scripted 429s in FIFO order, then falls back to the default', async () => {
    fake.enqueue({ ...replies.rateLimited(7), headers: { ...replies.rateLimited(7).headers, 'X-Custom': 'yes' } });
    const err = await client.chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(RateLimitError);
    const rl = err as RateLimitError;
    expect(rl.status).toBe(429);
    expect(rl.headers?.get('retry-after')).toBe('7');
    expect(rl.headers?.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(rl.headers?.get('x-custom')).toBe('yes');
    expect(rl.code).toBe('rate_limit_exceeded');
    expect(rl.type).toBe('requests');

    const ok = await client.chat.completions.create({ model: 'gpt-4o', messages });
    expect(ok.choices[0]?.message.content).toBe('Hello from openai');
    expect(fake.requests).toHaveLength(2);
  });

  it('rejects a wrong key with 401 after recording it, without consuming the script', async () => {
    fake.enqueue(replies.ok('scripted'));
    const bad = new OpenAI({ apiKey: 'sk-wrong', baseURL: fake.baseURL, maxRetries: 0 });
    const err = await bad.chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthenticationError);
    expect((err as AuthenticationError).code).toBe('invalid_api_key');
    expect(fake.requests).toHaveLength(1);

    const ok = await client.chat.completions.create({ model: 'gpt-4o', messages });
    expect(ok.choices[0]?.message.content).toBe('scripted');
  });

  it('resets the connection: the SDK throws APIConnectionError', async () => {
    fake.enqueue({ reset: true });
    const err = await client.chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIConnectionError);
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]?.aborted).toBe(false);
  });

  it('reset is a TCP RST (ECONNRESET), not a clean close; a scripted header replaces the stock one whatever its case', async () => {
    fake.enqueue({ reset: true });
    const err = await post(`${fake.baseURL}/chat/completions`, { model: 'gpt-4o', messages }, { authorization: `Bearer ${KEY}` }).catch((e: unknown) => e);
    expect(err).toMatchObject({ cause: { code: 'ECONNRESET' } });

    fake.enqueue({ headers: { 'X-Request-Id': 'req_scripted' } });
    const res = await post(`${fake.baseURL}/chat/completions`, { model: 'gpt-4o', messages }, { authorization: `Bearer ${KEY}` });
    expect(res.headers.get('x-request-id')).toBe('req_scripted');
  });

  it('cutAfterDone sends [DONE] and then cuts the body before its end; usage: false leaves the usage chunk out though asked', async () => {
    fake.enqueue(replies.stream({ chunks: ['a'], cutAfterDone: true }));
    const res = await post(`${fake.baseURL}/chat/completions`, { model: 'gpt-4o', messages, stream: true }, { authorization: `Bearer ${KEY}` });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const err = await (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return undefined;
        text += decoder.decode(value, { stream: true });
      }
    })().catch((e: unknown) => e);
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(err).toMatchObject({ message: 'terminated' });

    fake.enqueue(replies.stream({ chunks: ['a', 'b'], usage: false }));
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true, stream_options: { include_usage: true } });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.map((c) => c.usage ?? null)).toEqual([null, null, null]); // a, b, the finish chunk: no usage chunk
  });

  it('intervalMs spaces every content chunk, the first two included', async () => {
    fake.enqueue(replies.stream({ chunks: ['a', 'b', 'c'], intervalMs: 150 }));
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    const at: number[] = [];
    for await (const chunk of stream) if (chunk.choices[0]?.delta.content) at.push(Date.now());
    expect(at).toHaveLength(3);
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(120);
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(120);
  });

  it('cuts a stream mid-way after cutAfter chunks', async () => {
    fake.enqueue(replies.stream({ chunks: 5, cutAfter: 2 }));
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    const got: string[] = [];
    const err = await (async () => {
      for await (const chunk of stream) got.push(chunk.choices[0]?.delta.content ?? '');
    })().catch((e: unknown) => e);

    // undici reports a truncated chunked body as "terminated" (fetch errors come from another realm, so no instanceof).
    expect(err).toMatchObject({ name: 'TypeError', message: 'terminated', cause: { code: 'UND_ERR_SOCKET' } });
    expect(got).toHaveLength(2);
    expect(got.join('')).toBe('Hello from openai'.slice(0, Math.floor((2 * 17) / 5)));
  });

  it('cutMidEvent cuts inside the last event: the body ends with half an event, not at an event boundary', async () => {
    fake.enqueue(replies.stream({ chunks: 5, cutAfter: 2, cutMidEvent: true }));
    const res = await post(`${fake.baseURL}/chat/completions`, { model: 'gpt-4o', messages, stream: true }, { authorization: `Bearer ${KEY}` });
    const reader = res.body!.getReader();
    let text = '';
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
    } catch {
      // the cut: what arrived before it is what counts
    }
    const events = text.split('\n\n');
    expect(events).toHaveLength(2); // one whole event, then the cut one
    expect(events[1]).toMatch(/^data: \{/);
    expect(() => JSON.parse(events[1]!.slice('data: '.length))).toThrow();
  });

  it('delays, scripts by function, and reset() restores defaults', async () => {
    fake.setDefault((req, index) => replies.ok(`#${index} ${(req.body as { model: string }).model}`));
    fake.enqueue({ delayMs: 120 });
    const t0 = Date.now();
    await client.chat.completions.create({ model: 'a', messages });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(110);

    const scripted = await client.chat.completions.create({ model: 'b', messages });
    expect(scripted.choices[0]?.message.content).toBe('#1 b');

    fake.reset();
    expect(fake.requests).toHaveLength(0);
    const plain = await client.chat.completions.create({ model: 'c', messages });
    expect(plain.choices[0]?.message.content).toBe('Hello from openai');
    expect(plain.id).toBe('chatcmpl-fake-1');
  });

  it('serves error envelopes for serverError and unknown routes', async () => {
    fake.enqueue(replies.serverError(503));
    const res = await post(`${fake.baseURL}/chat/completions`, { model: 'm' }, { authorization: `Bearer ${KEY}` });
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({
      error: { message: 'The server is overloaded or not ready yet.', type: 'server_error', param: null, code: null },
    });

    const missing = await post(`${fake.url}/v1/embeddings`, {});
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { message: string } }).error.message).toBe('Invalid URL (POST /v1/embeddings)');
    expect(fake.requests.map((r) => r.path)).toEqual(['/v1/chat/completions', '/v1/embeddings']);
  });

  it('records a client abort on a hanging reply', async () => {
    fake.enqueue({ hang: true });
    const ac = new AbortController();
    const pending = post(`${fake.baseURL}/chat/completions`, { model: 'm' }, { authorization: `Bearer ${KEY}` }, ac.signal);
    await until(() => fake.requests.length === 1);
    ac.abort();
    await expect(pending).rejects.toThrow();
    await until(() => fake.requests[0]?.aborted === true);
  });

  it('pads chunks to chunkBytes for large streams', async () => {
    fake.enqueue(replies.stream({ chunks: 2000, chunkBytes: 4096 }));
    const res = await post(`${fake.baseURL}/chat/completions`, { model: 'm' }, { authorization: `Bearer ${KEY}` });
    const text = await res.text();
    const events = text.split('\n\n').filter(Boolean);
    expect(events).toHaveLength(2002); // and the finish chunk and [DONE]
    expect(text.length).toBeGreaterThan(2000 * 4096);
    const first = JSON.parse(events[0]!.slice(6)) as { choices: Array<{ delta: { content: string } }> };
    expect(Buffer.byteLength(first.choices[0]!.delta.content)).toBe(4096);
  });
});

describe('hang + close()', () => {
  it('close() resolves promptly and fails the hanging request', async () => {
    const fake = await startFakeOpenAI();
    fake.enqueue({ hang: true });
    const pending = post(`${fake.baseURL}/chat/completions`, { model: 'm' }).catch((e: unknown) => e);
    await until(() => fake.requests.length === 1);

    const t0 = Date.now();
    await fake.close();
    expect(Date.now() - t0).toBeLessThan(500);
    expect(await pending).toMatchObject({ message: 'fetch failed', cause: { code: 'UND_ERR_SOCKET' } });
    await fake.close(); // idempotent
  });

  it('fails hanging and delayed replies without marking them aborted: the fake closed them, not the client', async () => {
    const fake = await startFakeOpenAI();
    fake.enqueue({ hang: true }, { delayMs: 60_000 });
    const pending = [post(`${fake.baseURL}/chat/completions`, {}).catch((e: unknown) => e), post(`${fake.baseURL}/chat/completions`, {}).catch((e: unknown) => e)];
    await until(() => fake.requests.length === 2);
    await fake.close();
    expect(await Promise.all(pending)).toMatchObject([{ message: 'fetch failed' }, { message: 'fetch failed' }]);
    await new Promise((r) => setImmediate(r)); // the responses' own close events come after the server's
    expect(fake.requests.map((r) => r.aborted)).toEqual([false, false]);
  });
});

describe('fake Azure OpenAI', () => {
  let fake: FakeProvider;
  beforeEach(async () => {
    fake = await startFakeAzureOpenAI({ apiKey: KEY, name: 'azure-east' });
  });
  afterEach(() => fake.close());

  it('serves the deployments form and records the deployment', async () => {
    expect(fake.baseURL).toBe(`${fake.url}/openai`);
    const azure = new AzureOpenAI({ apiKey: KEY, endpoint: fake.url, apiVersion: '2024-10-21', deployment: 'gpt4o-prod', maxRetries: 0 });
    const out = await azure.chat.completions.create({ model: '', messages });

    expect(out.choices[0]?.message.content).toBe('Hello from azure-east');
    expect(out.model).toBe('gpt4o-prod');
    const rec = fake.requests[0]!;
    expect(rec.path).toBe('/openai/deployments/gpt4o-prod/chat/completions');
    expect(rec.deployment).toBe('gpt4o-prod');
    expect(rec.query).toEqual({ 'api-version': '2024-10-21' });
    expect(rec.headers['api-key']).toBe(KEY);
  });

  it('requires api-version on the deployments form, and the api-key header', async () => {
    const url = `${fake.baseURL}/deployments/d1/chat/completions`;
    const noVersion = await post(url, { messages }, { 'api-key': KEY });
    // What Azure answers: its envelope (code and message only), 404 for a deployment URL without api-version.
    expect(noVersion.status).toBe(404);
    expect(await noVersion.json()).toEqual({ error: { code: '404', message: 'Resource not found' } });

    const bearer = await post(`${url}?api-version=2024-10-21`, { messages }, { authorization: `Bearer ${KEY}` });
    expect(bearer.status).toBe(401);

    const ok = await post(`${url}?api-version=2024-10-21`, { messages }, { 'api-key': KEY });
    expect(ok.status).toBe(200);
    expect(fake.requests.map((r) => r.deployment)).toEqual(['d1', 'd1', 'd1']);
  });

  it('serves the v1 form without api-version', async () => {
    const v1 = new OpenAI({ apiKey: 'unused', baseURL: `${fake.baseURL}/v1`, defaultHeaders: { 'api-key': KEY }, maxRetries: 0 });
    const out = await v1.chat.completions.create({ model: 'gpt-4o', messages });
    expect(out.model).toBe('gpt-4o');
    expect(fake.requests[0]?.path).toBe('/openai/v1/chat/completions');
    expect(fake.requests[0]?.deployment).toBeUndefined();
    expect(fake.requests[0]?.query).toEqual({});
  });

  it("answers like Azure: content filter results, a stream opened by the prompt filters' chunk, Azure's 429 envelope", async () => {
    const azure = new AzureOpenAI({ apiKey: KEY, endpoint: fake.url, apiVersion: '2024-10-21', deployment: 'gpt4o-prod', maxRetries: 0 });
    const out = (await azure.chat.completions.create({ model: '', messages })) as unknown as { prompt_filter_results: unknown[]; choices: Array<{ content_filter_results: unknown }> };
    expect(out.prompt_filter_results).toHaveLength(1);
    expect(out.choices[0]!.content_filter_results).toMatchObject({ hate: { filtered: false } });

    const stream = await azure.chat.completions.create({ model: '', messages, stream: true });
    const chunks: Array<{ id: string; choices: unknown[] }> = [];
    for await (const chunk of stream) chunks.push(chunk);
    // Code that reads choices[0] or the id of every chunk breaks on Azure's first one: the fake shows it too.
    expect(chunks[0]).toMatchObject({ id: '', model: '', choices: [] });
    expect(chunks.slice(1).every((c) => c.choices.length === 1)).toBe(true);

    fake.enqueue(replies.rateLimited(2));
    const err = (await azure.chat.completions.create({ model: '', messages }).catch((e: unknown) => e)) as RateLimitError;
    expect(err).toBeInstanceOf(RateLimitError);
    expect([err.code, err.type]).toEqual(['429', undefined]);
    expect(err.headers?.get('retry-after')).toBe('2');

    // A client error without a stock text is not described as a server error.
    fake.enqueue({ status: 400 });
    const bad = (await azure.chat.completions.create({ model: '', messages }).catch((e: unknown) => e)) as APIError;
    expect([bad.status, bad.code, bad.error]).toEqual([400, '400', { code: '400', message: 'The request was refused (status 400).' }]);
  });

  it("knows its deployments when told: another name gets Azure's 404 DeploymentNotFound, in both URL forms", async () => {
    const strict = await startFakeAzureOpenAI({ apiKey: KEY, deployments: ['gpt4o-prod'] });
    try {
      const classic = (deployment: string) => new AzureOpenAI({ apiKey: KEY, endpoint: strict.url, apiVersion: '2024-10-21', deployment, maxRetries: 0 });
      expect((await classic('gpt4o-prod').chat.completions.create({ model: '', messages })).model).toBe('gpt4o-prod');
      const missing = (await classic('gpt-4o').chat.completions.create({ model: '', messages }).catch((e: unknown) => e)) as APIError;
      expect([missing.status, missing.code]).toEqual([404, 'DeploymentNotFound']);
      const v1 = new OpenAI({ apiKey: 'unused', baseURL: `${strict.baseURL}/v1`, defaultHeaders: { 'api-key': KEY }, maxRetries: 0 });
      expect((await v1.chat.completions.create({ model: 'gpt4o-prod', messages })).model).toBe('gpt4o-prod');
      const v1Missing = (await v1.chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)) as APIError;
      expect([v1Missing.status, v1Missing.code]).toEqual([404, 'DeploymentNotFound']);
    } finally {
      await strict.close();
    }
  });

  it("scripts Azure's content-filter refusal: a 400 in OpenAI's envelope with code content_filter", async () => {
    fake.enqueue(replies.contentFilter());
    const azure = new AzureOpenAI({ apiKey: KEY, endpoint: fake.url, apiVersion: '2024-10-21', deployment: 'gpt4o-prod', maxRetries: 0 });
    const err = (await azure.chat.completions.create({ model: '', messages }).catch((e: unknown) => e)) as APIError;
    expect(err).toBeInstanceOf(BadRequestError);
    expect([err.status, err.code, err.param]).toEqual([400, 'content_filter', 'prompt']);
    expect(err.error).toMatchObject({ innererror: { code: 'ResponsibleAIPolicyViolation' } });
  });

  it("scripts Azure's own 429 for a deployment over its quota: its body and retry headers reach the SDK", async () => {
    fake.enqueue(replies.azureRateLimited(2));
    const azure = new AzureOpenAI({ apiKey: KEY, endpoint: fake.url, apiVersion: '2024-10-21', deployment: 'gpt4o-prod', maxRetries: 0 });
    const err = (await azure.chat.completions.create({ model: '', messages }).catch((e: unknown) => e)) as APIError;
    expect(err).toBeInstanceOf(RateLimitError);
    expect([err.code, err.headers?.get('retry-after-ms'), err.headers?.get('retry-after')]).toEqual(['429', '2000', '2']);
    expect(err.message).toContain('Please retry after 2 seconds');
  });

  it('answers a malformed deployment path with 404 instead of throwing', async () => {
    const res = await post(`${fake.url}/openai/deployments/%zz/chat/completions?api-version=2024-10-21`, { messages }, { 'api-key': KEY });
    expect(res.status).toBe(404);
    const ok = await post(`${fake.baseURL}/deployments/d1/chat/completions?api-version=2024-10-21`, { messages }, { 'api-key': KEY });
    expect(ok.status).toBe(200);
  });
});

describe('fake scripting mistakes fail loudly', () => {
  let fake: FakeProvider;
  beforeEach(async () => {
    fake = await startFakeOpenAI();
  });
  afterEach(() => fake.close());

  it('a cutAfter past the last content chunk is a 500 naming the mistake, not a clean stream', async () => {
    fake.enqueue(replies.stream({ chunks: 3, cutAfter: 4 }));
    const res = await post(`${fake.baseURL}/chat/completions`, { model: 'gpt-4o', messages, stream: true });
    expect(res.status).toBe(500);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('cutAfter 4 is past');
  });

  it('an unknown path is a 404 without the model_not_found code', async () => {
    const res = await post(`${fake.url}/v1/embeddings`, { model: 'x', input: 'y' });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: unknown } }).error.code).toBeNull();
  });
});

describe('missingProviderEnv', () => {
  it('names what a real run still needs, and nothing once the keys and the Azure resource are set', () => {
    expect(missingProviderEnv({})).toEqual(['OPENAI_API_KEY', 'AZURE_OPENAI_API_KEY', 'AZURE_OPENAI_ENDPOINT (or AZURE_OPENAI_RESOURCE)']);
    expect(missingProviderEnv({ OPENAI_API_KEY: 'sk', AZURE_OPENAI_API_KEY: '' })).toEqual(['AZURE_OPENAI_API_KEY', 'AZURE_OPENAI_ENDPOINT (or AZURE_OPENAI_RESOURCE)']);
    expect(missingProviderEnv({ OPENAI_API_KEY: 'sk', AZURE_OPENAI_API_KEY: 'az', AZURE_OPENAI_RESOURCE: 'res' })).toEqual([]);
  });

  it('an Azure endpoint stands for the resource; an empty OpenAI key is missing', () => {
    expect(missingProviderEnv({ OPENAI_API_KEY: 'sk', AZURE_OPENAI_API_KEY: 'az', AZURE_OPENAI_ENDPOINT: 'https://r.openai.azure.com' })).toEqual([]);
    expect(missingProviderEnv({ OPENAI_API_KEY: '', AZURE_OPENAI_API_KEY: 'az', AZURE_OPENAI_ENDPOINT: 'https://r.openai.azure.com' })).toEqual(['OPENAI_API_KEY']);
  });
});

describe('withProviderEnvNames', () => {
  it("names the variable that filled a refused option, and leaves other options' lines as they are", () => {
    const err = new Error(
      'Invalid Switchyard options:\n  - virtualKeys["azure-prod"].endpoint: must be an http(s) URL\n  - virtualKeys["azure-prod"].deployments["gpt-4o"]: must be a deployment name\n  - config.targets[0].virtual_key: unknown virtual key "x"',
    );
    expect(withProviderEnvNames(err)).toBe(err);
    expect(err.message).toBe(
      'Invalid Switchyard options:\n  - AZURE_OPENAI_ENDPOINT: must be an http(s) URL (virtualKeys["azure-prod"].endpoint)\n  - AZURE_OPENAI_DEPLOYMENT: must be a deployment name (virtualKeys["azure-prod"].deployments["gpt-4o"])\n  - config.targets[0].virtual_key: unknown virtual key "x"',
    );
    expect(withProviderEnvNames('not an error')).toBe('not an error');
  });

  it("names every variable it maps, in a Switchyard error's message too (a subclass of Error)", () => {
    class SwitchyardOptionsError extends Error {
      override readonly name = 'SwitchyardOptionsError';
    }
    const lines = ['openai-prod"].api_key', 'azure-prod"].api_key', 'azure-prod"].resource_name', 'azure-prod"].api_version'];
    const err = new SwitchyardOptionsError(`Invalid Switchyard options:\n${lines.map((l) => `  - virtualKeys["${l}: is wrong`).join('\n')}`);
    expect(withProviderEnvNames(err).message.split('\n').slice(1)).toEqual([
      '  - OPENAI_API_KEY: is wrong (virtualKeys["openai-prod"].api_key)',
      '  - AZURE_OPENAI_API_KEY: is wrong (virtualKeys["azure-prod"].api_key)',
      '  - AZURE_OPENAI_RESOURCE: is wrong (virtualKeys["azure-prod"].resource_name)',
      '  - AZURE_OPENAI_API_VERSION: is wrong (virtualKeys["azure-prod"].api_version)',
    ]);
  });
});
