import { getEventListeners } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { replies, startFakeAzureOpenAI, startFakeOpenAI, type FakeProvider } from '@switchyard/testing';
import { ProxyAgent } from 'undici';
import { createFallbackClient, createUpstreamClient, FallbackRequestError, Gateway, type LogEvent, type SwitchyardOptions, type UpstreamClient, type UpstreamRequest } from '../index';
import { until } from '../../../e2e/src/support/fixture';

describe('createFallbackClient (in-process, SDK-shaped)', () => {
  let openai: FakeProvider;
  let azure: FakeProvider;
  let logs: LogEvent[];
  let options: SwitchyardOptions;

  beforeAll(async () => {
    [openai, azure] = await Promise.all([startFakeOpenAI({ name: 'openai' }), startFakeAzureOpenAI({ name: 'azure' })]);
  });
  afterAll(() => Promise.all([openai.close(), azure.close()]));
  beforeEach(() => {
    openai.reset();
    azure.reset();
    logs = [];
    options = {
      virtualKeys: {
        o: { provider: 'openai', api_key: 'sk-o', custom_host: openai.baseURL },
        a: { provider: 'azure-openai', api_key: 'az', custom_host: azure.baseURL, deployment_id: 'dep' },
      },
      config: { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'o' }, { virtual_key: 'a' }] },
      configs: { 'azure-only': { strategy: { mode: 'single' }, targets: [{ virtual_key: 'a' }] } },
      onLog: (e) => logs.push(e),
    };
  });

  const messages = [{ role: 'user' as const, content: 'hi' }];

  it('returns a ChatCompletion, falling back on 429, and logs the request with its trace id', async () => {
    openai.enqueue(replies.rateLimited());
    const client = createFallbackClient(options);
    const completion = await client.chat.completions.create({ model: 'gpt-4o', messages }, { traceId: 'in-process-1' });
    expect(completion.choices[0]!.message.content).toBe('Hello from azure');
    // The serving upstream's request id, where the SDK puts it: not enumerable, so not in JSON.stringify.
    expect(completion._request_id).toMatch(/^req_fake_/);
    expect(Object.keys(completion)).not.toContain('_request_id');
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatchObject({ traceId: 'in-process-1', fallback: true, status: 200, attempts: [{ status: 429 }, { status: 200 }] });
  });

  it('sends every target the messages create() was called with, override_params or not, though the caller added one meanwhile', async () => {
    // A chat server appends to the session's history while a request for it is pending (the SDK encoded it at once).
    for (const override_params of [undefined, { temperature: 0 }]) {
      openai.reset();
      azure.reset();
      const client = createFallbackClient({ ...options, config: { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'o' }, { virtual_key: 'a', ...(override_params && { override_params }) }] } });
      openai.enqueue({ ...replies.rateLimited(), delayMs: 50 });
      const history: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'first question' }];
      const pending = client.chat.completions.create({ model: 'gpt-4o', messages: history });
      await new Promise((r) => setTimeout(r, 10));
      history.push({ role: 'user', content: 'asked after create() was called' });
      await pending;
      const sent = [openai.requests[0]!, azure.requests[0]!].map((r) => r.body as { messages: unknown[]; temperature?: number });
      expect(sent.map((b) => [b.messages.length, b.temperature])).toEqual([[1, undefined], [1, override_params?.temperature]]);
    }
  });

  it("says which target could not be reached, and what an OpenSSL code means for a TLS setup mistake (an https:// host on a plain-HTTP port), without the host", async () => {
    const client = createFallbackClient({
      ...options,
      virtualKeys: { ...options.virtualKeys, tls: { provider: 'azure-openai', api_key: 'az', custom_host: azure.baseURL.replace('http:', 'https:'), deployment_id: 'dep' } },
      config: { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'o' }, { virtual_key: 'tls' }] },
    });
    openai.enqueue(replies.rateLimited());
    const err = (await client.chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)) as FallbackRequestError;
    expect(err).toBeInstanceOf(FallbackRequestError);
    expect([err.status, err.code, err.error?.message]).toEqual([
      502,
      'upstream_unreachable',
      'The upstream of targets[1] (azure-openai) could not be reached (ERR_SSL_WRONG_VERSION_NUMBER: it does not speak TLS there; an https:// URL on a plain-HTTP port?).',
    ]);
    expect(logs[0]!.attempts.map((a) => a.error?.code ?? a.status)).toEqual([429, 'upstream_unreachable']);
  });

  it("carries its attempts' durations rounded to a hundredth of a millisecond in its error, as logged, also with no log sink", async () => {
    const { onLog: _unused, ...withoutSink } = options;
    openai.enqueue(replies.rateLimited());
    azure.enqueue({ status: 503 });
    const err = (await createFallbackClient(withoutSink).chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)) as FallbackRequestError;
    expect(err.attempts.map((a) => a.status)).toEqual([429, 503]);
    for (const { durationMs } of err.attempts) expect(durationMs).toBe(Math.round(durationMs * 100) / 100);
  });

  it("reaches providers through an egress proxy, as the README's recipe gives (a gateway on undici's ProxyAgent)", async () => {
    const tunnels: string[] = [];
    const proxy = createServer((_req, res) => res.writeHead(405).end());
    let refuse = false;
    proxy.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
      if (refuse) {
        client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="egress"\r\n\r\n');
        return;
      }
      tunnels.push(req.url ?? '');
      const [host, port] = (req.url ?? '').split(':');
      const upstream = connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(client).on('error', () => undefined);
        client.pipe(upstream).on('error', () => undefined);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const client = createUpstreamClient(new ProxyAgent(`http://127.0.0.1:${(proxy.address() as AddressInfo).port}`));
    const gateway = new Gateway(options, { client });
    try {
      openai.enqueue(replies.rateLimited());
      const completion = await createFallbackClient(gateway).chat.completions.create({ model: 'gpt-4o', messages });
      expect(completion.choices[0]!.message.content).toBe('Hello from azure');
      expect(tunnels).toEqual([new URL(openai.url).host, new URL(azure.url).host]);

      // A proxy that wants credentials: the error says it was the proxy, with its status.
      refuse = true;
      const fresh = createUpstreamClient(new ProxyAgent(`http://127.0.0.1:${(proxy.address() as AddressInfo).port}`));
      const err = (await createFallbackClient(new Gateway(options, { client: fresh }))
        .chat.completions.create({ model: 'gpt-4o', messages })
        .catch((e: unknown) => e)
        .finally(() => fresh.close())) as FallbackRequestError;
      expect([err.status, err.error?.message]).toEqual([502, expect.stringMatching(/^The upstream of targets\[1\] \(azure-openai\) could not be reached \(UND_ERR_ABORTED: the egress proxy refused the tunnel with 407\)\.$/)]);
    } finally {
      await client.close();
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it('says once per key, in a process warning, that a provider refuses it (401), as the fallback hides it from the caller; again after it worked', async () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const client = createFallbackClient({
        ...options,
        config: { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'o' }, { virtual_key: 'a' }] },
        configs: { 'openai-only': { virtual_key: 'o' }, inline: { provider: 'openai', api_key: 'sk-inline-0123456789wxyz', custom_host: openai.baseURL } },
      });
      openai.setDefault({ status: 401 });
      for (let i = 0; i < 2; i++) {
        expect((await client.chat.completions.create({ model: 'gpt-4o', messages })).choices[0]!.message.content).toBe('Hello from azure');
      }
      azure.enqueue({ status: 401 });
      expect(await client.chat.completions.create({ model: 'gpt-4o', messages }).catch((e: FallbackRequestError) => e.status)).toBe(401);
      // Once per key, whichever config uses it: another config's target with the same virtual key says nothing more.
      await client.chat.completions.create({ model: 'gpt-4o', messages }, { configId: 'openai-only' }).catch(() => undefined);
      // A key written inline is named by its last characters, never whole.
      await client.chat.completions.create({ model: 'gpt-4o', messages }, { configId: 'inline' }).catch(() => undefined);
      // Nor does another Gateway of the process with those keys (one made per request, a hot reload).
      const again = createFallbackClient({ ...options, config: { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'o' }, { virtual_key: 'a' }] } });
      expect((await again.chat.completions.create({ model: 'gpt-4o', messages })).choices[0]!.message.content).toBe('Hello from azure');
      expect(warn).toHaveBeenCalledTimes(3);
      // Azure's key works again (it served just now), then is revoked again: said again.
      azure.enqueue({ status: 401 });
      await client.chat.completions.create({ model: 'gpt-4o', messages }).catch(() => undefined);
      expect(warn.mock.calls.map(([message, type]) => [String(message), type])).toEqual([
        ['targets[0] (openai, virtual key "o") answered 401: the provider refuses its key. Check it; until then every target with that key fails (said once, and again if it is refused after it worked).', 'SwitchyardCredentialWarning'],
        ['targets[1] (azure-openai, virtual key "a") answered 401: the provider refuses its key. Check it; until then every target with that key fails (said once, and again if it is refused after it worked).', 'SwitchyardCredentialWarning'],
        ['config (openai, the api_key ending "wxyz") answered 401: the provider refuses its key. Check it; until then every target with that key fails (said once, and again if it is refused after it worked).', 'SwitchyardCredentialWarning'],
        ['targets[1] (azure-openai, virtual key "a") answered 401: the provider refuses its key. Check it; until then every target with that key fails (said once, and again if it is refused after it worked).', 'SwitchyardCredentialWarning'],
      ]);
    } finally {
      warn.mockRestore();
    }
  });

  it('does not retry an account out of credit (429 insufficient_quota): falls back at once, says so once per key; as the last answer, tells the SDK not to retry', async () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const retried = { virtual_key: 'spent', retry: { attempts: 3 } };
      const client = createFallbackClient({
        ...options,
        virtualKeys: { ...options.virtualKeys, spent: { provider: 'openai', api_key: 'sk-spent-0123456789abcd', custom_host: openai.baseURL } },
        config: { strategy: { mode: 'fallback' }, targets: [retried, { virtual_key: 'a' }] },
        configs: { alone: retried },
      });
      openai.enqueue(replies.insufficientQuota(), replies.insufficientQuota());
      expect((await client.chat.completions.create({ model: 'gpt-4o', messages })).choices[0]!.message.content).toBe('Hello from azure');
      expect(openai.requests).toHaveLength(1);
      // The log tells it from a rate limit: the upstream's code and message, and its request id for OpenAI's support.
      expect(logs.at(-1)!.attempts[0]).toMatchObject({
        status: 429,
        upstreamError: { code: 'insufficient_quota', message: expect.stringMatching(/^You exceeded your current quota/) },
        upstreamRequestId: expect.stringMatching(/^req_fake_/),
      });
      expect(logs.at(-1)!.attempts[1]).not.toHaveProperty('upstreamRequestId'); // the served one's goes to the caller
      const err = (await client.chat.completions.create({ model: 'gpt-4o', messages }, { configId: 'alone' }).catch((e: unknown) => e)) as FallbackRequestError;
      expect([err.status, err.code, err.headers['x-should-retry'], openai.requests.length]).toEqual([429, 'insufficient_quota', 'false', 2]);
      // A rate limit is still retried on the same key.
      openai.enqueue({ status: 429, headers: { 'retry-after-ms': '1' } });
      expect((await client.chat.completions.create({ model: 'gpt-4o', messages }, { configId: 'alone' })).choices[0]!.message.content).toBe('Hello from openai');
      expect(openai.requests).toHaveLength(4);
      expect(warn.mock.calls.map(([message, type]) => [String(message), type])).toEqual([
        [
          'targets[0] (openai, virtual key "spent") answered 429 insufficient_quota: its account is out of credit or over its spending limit. Switchyard does not retry it; until it is topped up, every request pays for that attempt (said once, and again if it runs out after it worked).',
          'SwitchyardCredentialWarning',
        ],
      ]);
    } finally {
      warn.mockRestore();
    }
  });

  it('says a key refused by one resource and accepted by another once, not at every request (a key copied to the wrong one)', async () => {
    const west = await startFakeAzureOpenAI({ name: 'west' });
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const client = createFallbackClient({
        virtualKeys: {
          east: { provider: 'azure-openai', api_key: 'az-shared-key-0001', custom_host: azure.baseURL, deployment_id: 'dep' },
          west: { provider: 'azure-openai', api_key: 'az-shared-key-0001', custom_host: west.baseURL, deployment_id: 'dep' },
        },
        config: { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'east' }, { virtual_key: 'west' }] },
      });
      azure.setDefault({ status: 401 });
      for (let i = 0; i < 4; i++) expect((await client.chat.completions.create({ model: 'gpt-4o', messages })).choices[0]!.message.content).toBe('Hello from west');
      expect(warn.mock.calls.filter(([, type]) => String(type) === 'SwitchyardCredentialWarning')).toHaveLength(1);
    } finally {
      warn.mockRestore();
      await west.close();
    }
  });

  it("reads an upstream's error fields as the types say (strings or null): Azure's envelope without type, a numeric code, a string error", async () => {
    const client = createFallbackClient({ ...options, config: { strategy: { mode: 'single' }, targets: [{ virtual_key: 'a' }] } });
    const thrown = async () => (await client.chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)) as FallbackRequestError;
    azure.enqueue(replies.azureRateLimited(0));
    const azureErr = await thrown();
    expect([azureErr.status, azureErr.code, azureErr.type, azureErr.param, azureErr.error?.type]).toEqual([429, '429', null, null, null]);
    expect(azureErr.error?.message).toContain('exceeded token rate limit');
    // An OpenAI-compatible server's numeric code; the fields OpenAI does not have (Azure's innererror) are kept.
    azure.enqueue({ status: 400, body: { error: { message: 'bad', type: 'invalid_request_error', code: 400, innererror: { code: 'ResponsibleAIPolicyViolation' } } } });
    const numeric = await thrown();
    expect([numeric.code, numeric.error?.code, numeric.error?.['innererror']]).toEqual(['400', '400', { code: 'ResponsibleAIPolicyViolation' }]);
    expect((numeric.body as { error: { code: unknown } }).error.code).toBe(400); // the body stays as it came
    // `{ "error": "text" }`: its message, as the SDK's APIError words it.
    azure.enqueue({ status: 500, body: { error: 'upstream exploded' } });
    const text = await thrown();
    expect([text.status, text.error, text.code]).toEqual([500, { message: 'upstream exploded', type: null, param: null, code: null }, null]);
    // An empty string is no error object; a message that is no string reads as ''.
    azure.enqueue({ status: 500, body: { error: '' } }, { status: 400, body: { error: { message: { detail: 'bad' }, code: 'x' } } });
    expect((await thrown()).error).toBeNull();
    expect((await thrown()).error).toEqual({ message: '', type: null, param: null, code: 'x' });
  });

  it("keeps the override_params it was built with when the caller edits its options object in place (preparing the next config)", async () => {
    const override = { response_format: { type: 'text' }, stop: ['END'] };
    const mine = { ...options, config: { strategy: { mode: 'single' as const }, targets: [{ virtual_key: 'o', override_params: override }] } };
    const client = createFallbackClient(mine);
    override.response_format.type = 'json_object';
    override.stop.push('STOP');
    await client.chat.completions.create({ model: 'gpt-4o', messages });
    expect(openai.requests[0]!.body).toMatchObject({ response_format: { type: 'text' }, stop: ['END'] });
  });

  it('never lets loadbalance pick a target of weight 0, even when rounding leaves the pick past every weight', async () => {
    // Math.random()'s largest value: 1.7 * it, less each weight in turn, stays >= 0 after the last weighted target.
    const random = jest.spyOn(Math, 'random').mockReturnValue(1 - 2 ** -53);
    try {
      const weights = [0.3, 0.7, 0.1, 0.6];
      const client = createFallbackClient({
        ...options,
        config: { strategy: { mode: 'loadbalance' }, targets: [...weights.map((weight) => ({ virtual_key: 'o', weight })), { virtual_key: 'a', weight: 0 }] },
      });
      const completion = await client.chat.completions.create({ model: 'gpt-4o', messages });
      expect(completion.choices[0]!.message.content).toBe('Hello from openai');
      expect(logs[0]).toMatchObject({ servedBy: { target: 'targets[3]' } });
      expect(azure.requests).toHaveLength(0);
    } finally {
      random.mockRestore();
    }
  });

  it('takes stream: null as not streaming, as the API and the SDK types (`stream?: boolean | null`) do', async () => {
    const completion = await createFallbackClient(options).chat.completions.create({ model: 'gpt-4o', messages, stream: null });
    expect(completion.choices[0]!.message.content).toBe('Hello from openai');
    expect(openai.requests).toHaveLength(1);
  });

  it('refuses a trace id a header cannot carry (hosts echo it as one) before any upstream call', async () => {
    const client = createFallbackClient(options);
    const err = (await client.chat.completions.create({ model: 'gpt-4o', messages }, { traceId: 'a\r\nset-cookie: x=1' }).catch((e: unknown) => e)) as FallbackRequestError;
    expect(err).toBeInstanceOf(FallbackRequestError);
    expect([err.status, err.code, err.param]).toEqual([400, 'invalid_request', 'x-switchyard-trace-id']);
    // Beyond Latin-1: the message says so (it names no line break or control character).
    const wide = (await client.chat.completions.create({ model: 'gpt-4o', messages }, { traceId: 'trace-é-✓' }).catch((e: unknown) => e)) as FallbackRequestError;
    expect([wide.status, wide.error?.message]).toEqual([400, expect.stringContaining('Latin-1 characters only')]);
    expect(openai.requests).toHaveLength(0);
  });

  it('says how to name a config when there is no default, in the words of the in-process API', async () => {
    const client = createFallbackClient({ ...options, config: undefined });
    const err = (await client.chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)) as FallbackRequestError;
    expect([err.status, err.code, err.error?.message]).toEqual([400, 'unknown_config', expect.stringContaining('the `configId` option')]);
    expect(openai.requests).toHaveLength(0);
  });

  it('refuses params JSON cannot carry (a BigInt) as the caller\'s error, saying so, before any upstream call', async () => {
    const client = createFallbackClient(options);
    const params = { model: 'gpt-4o', messages, seed: 1n } as unknown as Parameters<typeof client.chat.completions.create>[0];
    const err = (await client.chat.completions.create(params).catch((e: unknown) => e)) as FallbackRequestError;
    expect([err.status, err.code]).toEqual([400, 'invalid_request']);
    expect(err.message).toContain('a BigInt');
    expect(openai.requests).toHaveLength(0);
  });

  it('holds params to maxBodyBytes as the HTTP routes hold a body: 413, no upstream call', async () => {
    const client = createFallbackClient({ ...options, maxBodyBytes: 100_000 });
    const big = [{ role: 'user' as const, content: 'x'.repeat(150_000) }];
    const err = (await client.chat.completions.create({ model: 'gpt-4o', messages: big }).catch((e: unknown) => e)) as FallbackRequestError;
    expect([err.status, err.code]).toEqual([413, 'body_too_large']);
    expect(openai.requests).toHaveLength(0);
    expect(logs[0]).toMatchObject({ status: 413, attempts: [] });
    // Under the limit, it is sent.
    await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x'.repeat(90_000) }] });
    expect(openai.requests).toHaveLength(1);
  });

  it("reads the trace id and config from SDK-style per-request headers, as code written for the SDK passes them", async () => {
    const client = createFallbackClient(options);
    await client.chat.completions.create({ model: 'gpt-4o', messages }, { headers: { 'X-Switchyard-Trace-Id': 'from-headers', 'x-switchyard-config': 'azure-only', 'x-other': 'ignored' } });
    expect(logs[0]).toMatchObject({ traceId: 'from-headers', configId: 'azure-only', servedBy: { provider: 'azure-openai' } });
    expect(azure.requests[0]!.headers['x-other']).toBeUndefined();
    // The SDK's other forms: a Headers, [name, value] pairs, a list of values.
    await client.chat.completions.create({ model: 'gpt-4o', messages }, { headers: new Headers({ 'x-switchyard-trace-id': 'from-Headers' }) });
    await client.chat.completions.create({ model: 'gpt-4o', messages }, { headers: [['x-switchyard-trace-id', 'from-pairs']] });
    await client.chat.completions.create({ model: 'gpt-4o', messages }, { headers: { 'x-switchyard-trace-id': ['from-list', 'second'] } });
    // The SDK's parsed form, and no headers or signal at all (null, as the SDK's types allow).
    const parsed = { values: new Headers({ 'x-switchyard-trace-id': 'from-parsed' }), nulls: new Set<string>() };
    await client.chat.completions.create({ model: 'gpt-4o', messages }, { headers: parsed });
    await client.chat.completions.create({ model: 'gpt-4o', messages }, { headers: null, signal: null, traceId: undefined });
    expect(logs.slice(1).map((e) => e.traceId)).toEqual(['from-Headers', 'from-pairs', 'from-list', 'from-parsed', expect.stringMatching(/^[0-9a-f]{32}$/)]);
    // Only those: headers an HTTP request brought (passed on whole, as code that forwards them does) are not read,
    // not even a long chain of Switchyard hops, which over HTTP is refused as a loop.
    const hops = Array.from({ length: 8 }, (_, i) => String(i).repeat(12)).join(', ');
    const forwarded = await client.chat.completions.create({ model: 'gpt-4o', messages }, { headers: { 'x-switchyard-hop': hops } });
    expect(forwarded.choices[0]!.message.content).toBe('Hello from openai');
  });

  it("reads Portkey's headers as the HTTP route does: its trace id header, and a 400 for a routing header rather than the default config", async () => {
    const client = createFallbackClient(options);
    await client.chat.completions.create({ model: 'gpt-4o', messages }, { headers: { 'x-portkey-trace-id': 'portkey-trace', 'x-portkey-metadata': '{}' } });
    expect(logs[0]!.traceId).toBe('portkey-trace');
    const err = (await client.chat.completions.create({ model: 'gpt-4o', messages }, { headers: { 'x-portkey-config': 'azure-only' } }).catch((e: unknown) => e)) as FallbackRequestError;
    expect([err.status, err.code, err.param]).toEqual([400, 'invalid_request', 'x-portkey-config']);
    expect(openai.requests).toHaveLength(1);
  });

  it("refuses a whole config sent as JSON in x-switchyard-config, space before it included, as Portkey's JSON form (not as an unknown id)", async () => {
    const client = createFallbackClient(options);
    const err = (await client.chat.completions.create({ model: 'gpt-4o', messages }, { headers: { 'x-switchyard-config': ' \t{"virtual_key":"openai-prod"}' } }).catch((e: unknown) => e)) as FallbackRequestError;
    expect([err.status, err.code, err.param]).toEqual([400, 'unknown_config', 'x-switchyard-config']);
    expect(err.error?.message).toContain("Portkey's JSON form");
    expect(openai.requests).toHaveLength(0);
  });

  it('lets the traceId and configId options win over the same names in headers, as documented', async () => {
    const client = createFallbackClient(options);
    await client.chat.completions.create(
      { model: 'gpt-4o', messages },
      { traceId: 'from-option', configId: 'azure-only', headers: { 'x-switchyard-trace-id': 'from-header', 'x-switchyard-config': 'no-such-config' } },
    );
    expect(logs[0]).toMatchObject({ traceId: 'from-option', configId: 'azure-only', servedBy: { provider: 'azure-openai' } });
    expect(openai.requests).toHaveLength(0);
  });

  it('rejects with 499 and closes what came when the signal aborts as the response arrives, JSON or stream', async () => {
    const gateway = new Gateway(options);
    let controller = new AbortController();
    // The abort lands between the engine's answer and the client's reading of it (another task's abort, run first).
    const handle = gateway.handle.bind(gateway);
    gateway.handle = async (req) => {
      const res = await handle(req);
      controller.abort();
      return res;
    };
    const client = createFallbackClient(gateway);
    const json = await client.chat.completions.create({ model: 'gpt-4o', messages }, { signal: controller.signal }).catch((e: unknown) => e);
    expect(json).toMatchObject({ status: 499, code: 'client_closed' });
    controller = new AbortController();
    openai.enqueue(replies.stream({ chunks: 40, intervalMs: 10 }));
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true }, { signal: controller.signal }).catch((e: unknown) => e);
    expect(stream).toMatchObject({ status: 499, code: 'client_closed' });
    await until(() => openai.requests[1]!.aborted);
    expect(logs.map((e) => e.status)).toEqual([499, 499]);
  });

  it('leaves no listener on the signal and closes and logs a stream whose iterator is returned or thrown into before its first read', async () => {
    const client = createFallbackClient(options);
    const controller = new AbortController();
    openai.enqueue(replies.stream({ chunks: 40, intervalMs: 10 }), replies.stream({ chunks: 40, intervalMs: 10 }));
    const returned = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true }, { signal: controller.signal });
    await returned[Symbol.asyncIterator]().return!();
    // `yield*` in a caller's own generator forwards a throw() to it.
    const thrown = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true }, { signal: controller.signal });
    const stop = new Error('stop');
    await expect(thrown[Symbol.asyncIterator]().throw!(stop)).rejects.toBe(stop);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(logs.map((e) => e.status)).toEqual([499, 499]);
    await until(() => openai.requests.every((r) => r.aborted));
  });

  /** A raw upstream on loopback (for what the fakes do not send), and a client whose one target it is. */
  async function rawUpstream(handler: (req: IncomingMessage, res: ServerResponse) => void) {
    const server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const client = createFallbackClient({ virtualKeys: { r: { provider: 'openai', api_key: 'sk-r', custom_host: `http://127.0.0.1:${port}/v1` } }, config: { virtual_key: 'r' }, onLog: (e) => logs.push(e) });
    const close = () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    };
    return { client, close };
  }

  it("gives null, as the SDK does, for the request id of an upstream that sends no x-request-id; a 2xx JSON body that does not parse rejects with 502", async () => {
    const answers = [
      { status: 200, body: JSON.stringify({ id: 'c', object: 'chat.completion', created: 1, model: 'gpt-4o', choices: [] }) },
      { status: 429, body: JSON.stringify({ error: { message: 'slow down', type: 'requests', param: null, code: 'rate_limit_exceeded' } }) },
      // Opens as a JSON object (so the engine passes it on, as the HTTP route does), but is cut.
      { status: 200, body: '{"id":"c","object":"chat.completion","choices":[' },
    ];
    const { client, close } = await rawUpstream((_req, res) => {
      const { status, body } = answers.shift()!;
      res.writeHead(status, { 'content-type': 'application/json' }).end(body);
    });
    try {
      const completion = await client.chat.completions.create({ model: 'gpt-4o', messages });
      expect(completion._request_id).toBeNull();
      const limited = (await client.chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)) as FallbackRequestError;
      expect([limited.status, limited.requestID]).toEqual([429, null]);
      const cut = await client.chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e);
      expect(cut).toBeInstanceOf(FallbackRequestError);
      expect(cut).toMatchObject({ status: 502, code: 'upstream_invalid_response' });
      expect(logs[2]).toMatchObject({ status: 502, attempts: [{ status: 200, error: { code: 'upstream_invalid_response' } }] });
    } finally {
      await close();
    }
  });

  it('throws an error event at once, though the upstream keeps the stream open after it, and closes the upstream', async () => {
    let closed = false;
    const error = { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null };
    const { client, close } = await rawUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [{ index: 0, delta: { content: 'Hel' }, finish_reason: null }] })}\n\n`);
      res.write(`data: ${JSON.stringify({ error })}\n\n`);
      // Then nothing more, and no end.
      req.socket.on('close', () => (closed = true));
    });
    try {
      const seen: string[] = [];
      const err = await (async () => {
        for await (const chunk of await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true })) seen.push(chunk.choices[0]?.delta.content ?? '');
      })().catch((e: unknown) => e);
      expect(seen).toEqual(['Hel']);
      expect(err).toMatchObject({ status: 502, body: { error } });
      await until(() => closed);
      // Logged as a started stream that failed: the status it started with, the error on its attempt.
      expect(logs[0]).toMatchObject({ status: 200, attempts: [{ status: 200, error: { code: 'upstream_error_event' } }] });
    } finally {
      await close();
    }
  });

  it('reads on after the last finish_reason for at most 64 KiB: more before [DONE] logs the stream as the caller left it (499)', async () => {
    const event = (choices: object[], usage: object | null = null) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'gpt-4o', choices, usage })}\n\n`;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const { client, close } = await rawUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(event([{ index: 0, delta: { content: 'a' }, finish_reason: null }]));
      res.write(event([{ index: 0, delta: {}, finish_reason: 'stop' }]));
      // Once the caller left: 96 KiB of comments (a chatty proxy's), then the usage and [DONE], well within 1 s.
      void released.then(() => {
        res.write(`: ${'x'.repeat(96 * 1024)}\n\n`);
        setTimeout(() => res.end(`${event([], { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 })}data: [DONE]\n\n`), 50);
      });
    });
    try {
      for await (const chunk of await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true, stream_options: { include_usage: true } })) {
        if (chunk.choices[0]?.finish_reason) break;
      }
      release();
      await client.gateway.drain();
      expect(logs.map((e) => [e.status, e.attempts[0]!.error?.code, e.usage])).toEqual([[499, 'client_closed', null]]);
    } finally {
      await close();
    }
  });

  it('throws on a second loop over a stream, as the SDK does, instead of ending it as if empty', async () => {
    const client = createFallbackClient(options);
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('Hello from openai');
    expect(() => stream[Symbol.asyncIterator]()).toThrow('Cannot iterate over a consumed stream');
  });

  it('closes and logs a stream whose iterator is stopped before its first read (Readable.from destroyed early)', async () => {
    const client = createFallbackClient(options);
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.return!();
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    expect(logs.map((e) => e.status)).toEqual([499]);
    await client.gateway.drain(); // nothing left in flight
  });

  it("says once per target that a sub-second request_timeout fired at a provider's own host: it is in milliseconds", async () => {
    // A client that never answers (no traffic leaves the machine): every attempt ends at its request_timeout.
    const client = {
      request: (req: UpstreamRequest) => new Promise((_, reject) => req.signal.addEventListener('abort', () => reject(req.signal.reason))),
      close: () => Promise.resolve(),
    } as unknown as UpstreamClient;
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const gateway = new Gateway(
        {
          virtualKeys: {
            openai: { provider: 'openai', api_key: 'sk-openai-0123456789' },
            local: { provider: 'openai', api_key: 'sk-local-0123456789', custom_host: 'http://127.0.0.1:9/v1' },
          },
          // Seconds meant: 30 ms at OpenAI; the same at a host of the operator's own is taken as meant.
          config: { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'openai', request_timeout: 30 }, { virtual_key: 'local', request_timeout: 30 }] },
        },
        { client },
      );
      for (let i = 0; i < 2; i++) {
        const err = await createFallbackClient(gateway).chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e);
        expect(err).toMatchObject({ status: 504, code: 'upstream_timeout' });
      }
      expect(warn.mock.calls.map(([message, type]) => [String(message), type])).toEqual([
        ['targets[0] (openai, virtual key "openai") timed out after its request_timeout of 30 ms: request_timeout is in milliseconds (30 seconds is 30000); said once per target.', 'SwitchyardConfigWarning'],
      ]);
    } finally {
      warn.mockRestore();
    }
  });

  it("names its engine in x-switchyard-hop to an upstream that may be another Switchyard, not to the providers' own hosts", async () => {
    const sent: Array<[string, string | undefined]> = [];
    // Records each call's origin and hop header, and answers 429 so that every target is tried.
    const client = {
      request: (req: { origin: string; headers: Record<string, string> }) => {
        sent.push([req.origin, req.headers['x-switchyard-hop']]);
        return Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
      },
      close: () => Promise.resolve(),
    } as unknown as UpstreamClient;
    const gateway = new Gateway(
      {
        virtualKeys: {
          openai: { provider: 'openai', api_key: 'sk-openai-0123456789' },
          azure: { provider: 'azure-openai', api_key: 'az', endpoint: 'https://my-resource.openai.azure.com/', deployment_id: 'd' },
          foundry: { provider: 'azure-openai', api_key: 'az', endpoint: 'https://my-hub.services.ai.azure.com/', deployment_id: 'd' },
          apim: { provider: 'azure-openai', api_key: 'az', endpoint: 'https://my-apim.azure-api.net/', deployment_id: 'd' },
          proxy: { provider: 'openai', api_key: 'sk-proxy-0123456789', custom_host: 'http://127.0.0.1:9/v1' },
        },
        config: { strategy: { mode: 'fallback' }, targets: ['openai', 'azure', 'foundry', 'apim', 'proxy'].map((virtual_key) => ({ virtual_key })) },
      },
      { client },
    );
    await createFallbackClient(gateway).chat.completions.create({ model: 'gpt-4o', messages }).catch(() => undefined);
    expect(sent.map(([origin, hop]) => [origin, hop === undefined ? 'none' : /^[0-9a-f]{12}$/.test(hop) ? 'name' : hop])).toEqual([
      ['https://api.openai.com', 'none'],
      ['https://my-resource.openai.azure.com', 'none'],
      ['https://my-hub.services.ai.azure.com', 'none'],
      ['https://my-apim.azure-api.net', 'name'],
      ['http://127.0.0.1:9', 'name'],
    ]);
  });

  it('drain() waits for the requests started before it, not for those a gateway still serving starts after', async () => {
    const client = createFallbackClient(options);
    const read = async (stream: AsyncIterable<unknown>) => {
      for await (const _chunk of stream);
    };
    openai.enqueue(replies.stream({ chunks: 5, intervalMs: 20 }));
    const first = read(await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
    const drained: string[] = [];
    const beforeSecond = client.gateway.drain().then(() => drained.push(`first drain, ${logs.length} logged`));
    openai.enqueue(replies.stream({ chunks: 30, intervalMs: 20 }));
    const second = read(await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
    const afterSecond = client.gateway.drain().then(() => drained.push(`second drain, ${logs.length} logged`));
    await Promise.all([first, second, beforeSecond, afterSecond]);
    expect(drained).toEqual(['first drain, 1 logged', 'second drain, 2 logged']);
    await client.gateway.drain(); // nothing in flight: at once
    // A ticket given back twice counts down once: a later drain does not wait for a request that is not there.
    const ticket = client.gateway.enter();
    let done = false;
    const waiting = client.gateway.drain().then(() => (done = true));
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    client.gateway.leave(ticket);
    client.gateway.leave(ticket);
    await waiting;
    await client.gateway.drain();
  });

  it('logs a stream the caller stops after [DONE] came (at its usage chunk) as complete, one stopped before as 499', async () => {
    const client = createFallbackClient(options);
    // Every byte, [DONE] included, in one write: the caller breaks at the usage chunk, the last before [DONE].
    const chunk = (delta: object, usage: object | null = null) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'gpt-4o', choices: usage ? [] : [{ index: 0, delta, finish_reason: null }], usage })}\n\n`;
    const sse = chunk({ content: 'a' }) + chunk({}, { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }) + 'data: [DONE]\n\n';
    openai.enqueue({ headers: { 'content-type': 'text/event-stream' }, body: sse });
    const whole = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true, stream_options: { include_usage: true } });
    for await (const chunk of whole) if (chunk.usage) break;
    openai.enqueue(replies.stream({ chunks: 20, intervalMs: 20 }));
    const part = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    for await (const _chunk of part) break;
    expect(logs.map((e) => [e.status, e.attempts[0]!.error?.code])).toEqual([[200, undefined], [499, 'client_closed']]);
  });

  it("logs a stream the caller stops at the last finish_reason as complete, with the usage that follows; one whose rest never comes as 499", async () => {
    // The finish chunk, then the usage chunk and [DONE] in a later write (or, for the second request, never).
    const event = (choices: object[], usage: object | null = null) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'gpt-4o', choices, usage })}\n\n`;
    let request = 0;
    const upstream = createServer((_req, res) => {
      const stalls = request++ === 1;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(event([{ index: 0, delta: { content: 'a' }, finish_reason: null }, { index: 1, delta: { content: 'b' }, finish_reason: null }]));
      res.write(event([{ index: 0, delta: {}, finish_reason: 'stop' }]));
      res.write(event([{ index: 1, delta: {}, finish_reason: 'stop' }]));
      if (stalls) return void setTimeout(() => res.end(), 60_000).unref(); // past the test's timeout: only the 1 s limit ends the read
      setTimeout(() => res.end(`${event([], { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 })}data: [DONE]\n\n`), 50);
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const { port } = upstream.address() as AddressInfo;
    try {
      const client = createFallbackClient({ virtualKeys: { o: { provider: 'openai', api_key: 'sk-o', custom_host: `http://127.0.0.1:${port}/v1` } }, config: { virtual_key: 'o' }, onLog: (e) => logs.push(e) });
      const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
      for (let i = 0; i < 2; i++) {
        const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, n: 2, stream: true, stream_options: { include_usage: true } });
        const ended = new Set<number>();
        const before = timers();
        for await (const chunk of stream) {
          for (const choice of chunk.choices) if (choice.finish_reason) ended.add(choice.index);
          if (ended.size === 2) break;
        }
        // Reading on for the log holds no script open: its 1 s timer does not keep the event loop alive. (Checked
        // on the stalled stream, where the upstream's own timer is unref'd too.)
        if (i === 1) expect(timers()).toBe(before);
      }
      await client.gateway.drain();
      expect(logs.map((e) => [e.status, e.attempts[0]!.error?.code, e.usage?.total_tokens ?? null])).toEqual([
        [200, undefined, 5],
        [499, 'client_closed', null],
      ]);
    } finally {
      upstream.closeAllConnections();
      upstream.close();
    }
  });

  it('logs a caller that stops at one choice\'s finish_reason as 499, even when the other choice\'s chunks are kilobytes back', async () => {
    // n: 2. Choice 0 starts; choice 1 then sends a burst (logprobs make a chunk kilobytes) and finishes; choice 0's
    // rest comes later. A caller stopping at the first finish_reason (the README's loop) did not get choice 0.
    const logprobs = { content: [{ token: 'x', logprob: -0.1, top_logprobs: Array.from({ length: 20 }, (_, i) => ({ token: `t${i}`, logprob: -i })) }] };
    const event = (choices: object[]) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'gpt-4o', choices })}\n\n`;
    const upstream = createServer(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      // Apart, as a model streams them: written at once, they would arrive as one piece, kept whole in the tail.
      const send = async (choice: object) => {
        res.write(event([choice]));
        await new Promise((r) => setTimeout(r, 5));
      };
      await send({ index: 0, delta: { role: 'assistant', content: 'a' }, logprobs, finish_reason: null });
      for (let i = 0; i < 10; i++) await send({ index: 1, delta: { content: 'b' }, logprobs, finish_reason: null });
      await send({ index: 1, delta: {}, logprobs: null, finish_reason: 'stop' });
      setTimeout(() => res.end(`${event([{ index: 0, delta: {}, finish_reason: 'stop' }])}data: [DONE]\n\n`), 200).unref();
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const { port } = upstream.address() as AddressInfo;
    try {
      // n asked by the caller, or by the target's override_params.
      for (const [config, n] of [[{ virtual_key: 'o' }, 2], [{ virtual_key: 'o', override_params: { n: 2 } }, undefined]] as const) {
        const client = createFallbackClient({ virtualKeys: { o: { provider: 'openai', api_key: 'sk-o', custom_host: `http://127.0.0.1:${port}/v1` } }, config, onLog: (e) => logs.push(e) });
        const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, ...(n && { n }), stream: true, logprobs: true, top_logprobs: 20 });
        let bytes = 0;
        for await (const chunk of stream) {
          bytes += JSON.stringify(chunk).length;
          if (chunk.choices[0]?.finish_reason) break;
        }
        await client.gateway.drain();
        expect(bytes).toBeGreaterThan(4096); // choice 0's chunk is further back than the last 4 KiB
      }
      expect(logs.map((e) => [e.status, e.attempts[0]!.error?.code])).toEqual([[499, 'client_closed'], [499, 'client_closed']]);
    } finally {
      upstream.closeAllConnections();
      upstream.close();
    }
  });

  it("words a failure's message as the SDK's APIError does for the same answer, envelope or not", async () => {
    const client = createFallbackClient({ ...options, config: { virtual_key: 'o' } });
    const direct = new OpenAI({ apiKey: 'sk-o', baseURL: openai.baseURL, maxRetries: 0 });
    const answers = [
      { status: 502, headers: { 'content-type': 'text/html' }, body: '<html>Bad Gateway (nginx)</html>' },
      { status: 429, body: '{"error":"Too many requests"}' },
      { status: 400, body: '{"error":{"message":{"detail":"bad"}}}' },
      { status: 503, body: '{"detail":"down"}' },
      { status: 500, body: '' },
      { status: 503, body: 'null' },
      { status: 503, body: '0' },
      { status: 503, body: '"Service unavailable"' },
      { status: 429, body: '{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}' },
    ];
    for (const answer of answers) {
      openai.enqueue(answer);
      const sdkError = (await direct.chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)) as Error;
      openai.enqueue(answer);
      const ours = (await client.chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)) as Error;
      expect([answer.body, ours.message]).toEqual([answer.body, sdkError.message]);
    }
  });

  it('leaves no listener on a signal the caller reuses for many requests', async () => {
    const client = createFallbackClient(options);
    const controller = new AbortController();
    openai.enqueue(replies.rateLimited());
    await client.chat.completions.create({ model: 'gpt-4o', messages }, { signal: controller.signal });
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true }, { signal: controller.signal });
    for await (const _ of stream);
    openai.enqueue(replies.rateLimited());
    azure.enqueue(replies.rateLimited());
    await expect(client.chat.completions.create({ model: 'gpt-4o', messages }, { signal: controller.signal })).rejects.toThrow(FallbackRequestError);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('streams ChatCompletionChunks, with usage in the log', async () => {
    const client = createFallbackClient(options);
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true, stream_options: { include_usage: true } });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('Hello from openai');
    expect(logs[0]).toMatchObject({ stream: true, status: 200, usage: { completion_tokens: 3 } });
  });

  it('throws FallbackRequestError with status, upstream body and attempts when every target fails', async () => {
    openai.enqueue(replies.rateLimited());
    azure.enqueue(replies.rateLimited());
    const client = createFallbackClient(options);
    const err = (await client.chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)) as FallbackRequestError;
    expect(err).toBeInstanceOf(FallbackRequestError);
    expect(String(err)).toMatch(/^FallbackRequestError: 429 /); // its name, as loggers print it
    expect(err.status).toBe(429);
    expect(err.body).toEqual({ error: { code: '429', message: expect.stringContaining('exceeded token rate limit') } }); // Azure's envelope
    expect([err.code, err.type, err.requestID]).toEqual(['429', null, expect.stringMatching(/^req_fake_/)]);
    expect(err.attempts.map((a) => [a.provider, a.status])).toEqual([['openai', 429], ['azure-openai', 429]]);
    // Own properties, as on the SDK's APIError: what a logger's error serializer (pino's) and JSON.stringify copy.
    expect(JSON.parse(JSON.stringify(err))).toMatchObject({ status: 429, code: '429', type: null, requestID: expect.stringMatching(/^req_fake_/) });
    // As APIError: the envelope's type and param; a body whose error is no object (a proxy's text) has none.
    const bad = new FallbackRequestError(400, { error: { message: 'bad n', type: 'invalid_request_error', param: 'n', code: null } }, [], {});
    expect([bad.type, bad.param, bad.code]).toEqual(['invalid_request_error', 'n', null]);
    expect(new FallbackRequestError(502, { error: 'Bad gateway' }, [], {}).error).toEqual({ message: 'Bad gateway', type: null, param: null, code: null });
  });

  it('throws on a stream that breaks mid-way, and picks named configs', async () => {
    openai.enqueue(replies.stream({ chunks: 5, cutAfter: 2 }));
    const client = createFallbackClient(options);
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    const seen: string[] = [];
    const err = await (async () => {
      for await (const chunk of stream) seen.push(chunk.choices[0]?.delta.content ?? '');
    })().catch((e: unknown) => e);
    expect(seen).toHaveLength(2);
    expect(err).toBeInstanceOf(FallbackRequestError);
    expect((err as FallbackRequestError).code).toBe('stream_interrupted');

    // Ended without [DONE]: cut at an event boundary, not complete. After [DONE], a lost connection lost nothing.
    openai.enqueue(replies.stream({ chunks: 2, omitDone: true }));
    const cut = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    const read = async (s: AsyncIterable<unknown>) => {
      let n = 0;
      for await (const _ of s) n++;
      return n;
    };
    const cutErr = (await read(cut).catch((e: unknown) => e)) as FallbackRequestError;
    expect([cutErr.code, cutErr.message]).toEqual(['stream_interrupted', expect.stringContaining('ENDED_WITHOUT_DONE')]);
    openai.enqueue(replies.stream({ chunks: 2, cutAfterDone: true }));
    expect(await read(await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true }))).toBe(3); // 2 content chunks and the finish chunk

    const viaConfig = await client.chat.completions.create({ model: 'gpt-4o', messages }, { configId: 'azure-only' });
    expect(viaConfig.choices[0]!.message.content).toBe('Hello from azure');
  });

  it('throws an error event the upstream sends mid-stream as a 502 carrying its error', async () => {
    const chunk = { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [{ index: 0, delta: { content: 'Hel' }, finish_reason: null }] };
    const error = { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null };
    openai.enqueue({ status: 200, headers: { 'content-type': 'text/event-stream' }, body: `data: ${JSON.stringify(chunk)}\n\ndata: ${JSON.stringify({ error })}\n\n` });
    const stream = await createFallbackClient(options).chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    const seen: string[] = [];
    const err = await (async () => {
      for await (const c of stream) seen.push(c.choices[0]?.delta.content ?? '');
    })().catch((e: unknown) => e);
    expect(seen).toEqual(['Hel']);
    expect(err).toBeInstanceOf(FallbackRequestError);
    expect((err as FallbackRequestError).status).toBe(502);
    expect((err as FallbackRequestError).body).toEqual({ error });
  });

  it('an aborted signal rejects with FallbackRequestError 499 client_closed before a response; a stream it stops ends quietly, as the SDK\'s', async () => {
    const client = createFallbackClient(options);
    const isAbort = (err: unknown) => err instanceof FallbackRequestError && err.status === 499 && err.code === 'client_closed' && err.error?.type === 'invalid_request_error';

    // Already aborted: no upstream call, with or without a per-attempt timeout (which has a signal of its own).
    const timed = createFallbackClient({ ...options, config: { ...(options.config as object), request_timeout: 5000 } });
    for (const c of [client, timed]) {
      const early = await c.chat.completions.create({ model: 'gpt-4o', messages }, { signal: AbortSignal.abort() }).catch((e: unknown) => e);
      expect(isAbort(early)).toBe(true);
    }
    expect(openai.requests).toHaveLength(0);

    // While waiting for the upstream.
    openai.enqueue({ hang: true });
    const waiting = new AbortController();
    const pending = client.chat.completions.create({ model: 'gpt-4o', messages }, { signal: waiting.signal }).catch((e: unknown) => e);
    while (openai.requests.length < 1) await new Promise((r) => setTimeout(r, 5));
    waiting.abort();
    expect(isAbort(await pending)).toBe(true);

    // In the middle of a stream.
    openai.enqueue(replies.stream({ chunks: 40, intervalMs: 10 }));
    const streaming = new AbortController();
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true }, { signal: streaming.signal });
    const seen: string[] = [];
    const mid = await (async () => {
      for await (const chunk of stream) {
        seen.push(chunk.choices[0]?.delta.content ?? '');
        if (seen.length === 2) streaming.abort();
      }
      return 'ended';
    })().catch((e: unknown) => e);
    // The code after the loop runs with the partial answer (a "stop generating" button), as with the SDK.
    expect(mid).toBe('ended');
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(seen.length).toBeLessThan(40);
    const end = Date.now() + 2000;
    while (!openai.requests[1]!.aborted && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    expect(openai.requests[1]!.aborted).toBe(true);
    expect(logs.map((e) => [e.status, e.attempts.length])).toEqual([[499, 0], [499, 0], [499, 1], [499, 1]]);
  });

  it('a stream aborted before anyone reads it ends its upstream request and is logged', async () => {
    openai.enqueue(replies.stream({ chunks: 40, intervalMs: 10 }));
    const client = createFallbackClient(options);
    const controller = new AbortController();
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true }, { signal: controller.signal });
    controller.abort();
    const end = Date.now() + 2000;
    while (!openai.requests[0]!.aborted && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    expect(openai.requests[0]!.aborted).toBe(true);
    expect(logs).toHaveLength(1);
    expect(logs[0]!.status).toBe(499);
    // Reading it afterwards ends at once, with no chunk, as the SDK's stream does once its signal aborted.
    const read: unknown[] = [];
    for await (const chunk of stream) read.push(chunk);
    expect(read).toEqual([]);
    expect(logs).toHaveLength(1);
  });

  it('a consumer that stops early closes the upstream stream', async () => {
    openai.enqueue(replies.stream({ chunks: 40, intervalMs: 10 }));
    const client = createFallbackClient(options);
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    for await (const _ of stream) break;
    const end = Date.now() + 2000;
    while (!openai.requests[0]!.aborted && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    expect(openai.requests[0]!.aborted).toBe(true);
    expect(logs[0]!.status).toBe(499);
  });

  it('a 2xx body that is not what was asked for rejects with 502 upstream_invalid_response, never the wrong type', async () => {
    const client = createFallbackClient(options);
    // A proxy's login page where a completion was expected, from both providers (from one, the other would serve).
    for (const fake of [openai, azure]) fake.enqueue({ status: 200, headers: { 'content-type': 'text/html' }, body: '<html>proxy login</html>' });
    const page = await client.chat.completions.create({ model: 'gpt-4o', messages }).catch((err: unknown) => err);
    expect(page).toBeInstanceOf(FallbackRequestError);
    expect(page).toMatchObject({ status: 502, code: 'upstream_invalid_response' });
    // A JSON completion where a stream was asked for: no iterable that would fail in the caller's for-await.
    azure.enqueue({ status: 200, body: { id: 'x', object: 'chat.completion', choices: [] } });
    openai.enqueue(replies.rateLimited());
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true }).catch((err: unknown) => err);
    expect(stream).toMatchObject({ status: 502, code: 'upstream_invalid_response' });
    expect((stream as FallbackRequestError).error?.message).toMatch(/^The upstream of \S+ \([a-z-]+\) answered a stream request with something other than an event stream \(content-type application\/json\)/);
    // Logged as what the caller got (502), the upstream's 200 and the error on its attempt. The stream's attempt
    // failed in the engine, like a broken connection: no target served it.
    expect(logs[0]).toMatchObject({ status: 502, attempts: [{ status: 200, error: { code: 'upstream_invalid_response' } }, { status: 200, error: { code: 'upstream_invalid_response' } }] });
    expect(logs[1]).toMatchObject({ status: 502, servedBy: null, attempts: [{ status: 429 }, { status: 200, error: { code: 'upstream_invalid_response' } }] });
  });

  it("takes the SDK's per-call timeout as a shorter deadline for that call", async () => {
    const client = createFallbackClient(options);
    openai.enqueue({ hang: true });
    const started = Date.now();
    const err = await client.chat.completions.create({ model: 'gpt-4o', messages }, { timeout: 200 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 504, code: 'deadline_exceeded' });
    // Well before the options' 600 s deadline; the hung upstream request is aborted, and no fallback is tried.
    expect(Date.now() - started).toBeLessThan(5000);
    const end = Date.now() + 3000;
    while (!openai.requests[0]!.aborted && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    expect(openai.requests[0]!.aborted).toBe(true);
    expect(azure.requests).toHaveLength(0);
    await expect(client.chat.completions.create({ model: 'gpt-4o', messages }, { timeout: 0 })).rejects.toThrow(TypeError);
    // Longer than the options' deadline, it does not extend it: an answer after the deadline comes too late.
    const short = createFallbackClient({ ...options, deadlineMs: 300 });
    openai.enqueue({ delayMs: 1000 });
    const late = await short.chat.completions.create({ model: 'gpt-4o', messages }, { timeout: 5000 }).catch((e: unknown) => e);
    expect(late).toMatchObject({ status: 504, code: 'deadline_exceeded' });
    await expect(client.chat.completions.create({ model: 'gpt-4o', messages }, { timeout: 1.5 })).rejects.toThrow(/timeout must be a whole number/);
  });

  /** Defaults and less common forms the README documents, each pinned by what a caller sees (found unpinned by mutation). */
  describe('routing: documented defaults and forms', () => {
    const client = (over: Partial<SwitchyardOptions> & Pick<SwitchyardOptions, 'config'>) =>
      createFallbackClient({
        virtualKeys: {
          o: { provider: 'openai', api_key: 'sk-o', custom_host: openai.baseURL },
          a: { provider: 'azure-openai', api_key: 'az', custom_host: azure.baseURL, deployments: { 'gpt-4o': 'gpt4o-prod' } },
          west: { provider: 'azure-openai', api_key: 'az', custom_host: azure.baseURL, deployments: { 'gpt-4o': 'gpt4o-west' } },
          v1: { provider: 'azure-openai', api_key: 'az', custom_host: azure.baseURL, api_version: 'v1' },
          v1map: { provider: 'azure-openai', api_key: 'az', custom_host: azure.baseURL, api_version: 'v1', deployments: { 'gpt-4o': 'gpt4o-prod', 'gpt-4o-mini': 'gpt4o-mini-prod' } },
        },
        onLog: (e) => logs.push(e),
        ...over,
      });
    const failure = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a failure'); }, (e: FallbackRequestError) => e);

    it('retries the default codes (429, 500, 502, 503, 504) when retry names none', async () => {
      const c = client({ maxRetryDelayMs: 0, config: { targets: [{ virtual_key: 'o', retry: { attempts: 5 } }], strategy: { mode: 'single' } } });
      openai.enqueue(...[429, 500, 502, 503, 504].map((status) => ({ status, headers: { 'retry-after-ms': '0' } })));
      expect((await c.chat.completions.create({ model: 'gpt-4o', messages })).choices[0]!.message.content).toBe('Hello from openai');
      expect(logs[0]!.attempts.map((a) => a.status)).toEqual([429, 500, 502, 503, 504, 200]);
    });

    it('gives loadbalance targets weight 1 when they name none', async () => {
      const c = client({ config: { strategy: { mode: 'loadbalance' }, targets: [{ virtual_key: 'o' }, { virtual_key: 'a' }] } });
      const served = new Set<string>();
      for (let i = 0; i < 40 && served.size < 2; i++) served.add((await c.chat.completions.create({ model: 'gpt-4o', messages })).choices[0]!.message.content ?? '');
      expect([...served].sort()).toEqual(['Hello from azure', 'Hello from openai']);
    });

    it("keeps OpenAI's 429 for the client when every fallback after it has no deployment for the model", async () => {
      const c = client({ config: { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'o' }, { virtual_key: 'a' }, { virtual_key: 'west' }] } });
      const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
      try {
        openai.enqueue(replies.rateLimited(7));
        const err = await failure(c.chat.completions.create({ model: 'o3', messages }));
        expect([err.status, err.headers['retry-after']]).toEqual([429, '7']);
        expect(logs[0]!.attempts.map((a) => a.error?.code ?? a.status)).toEqual([429, 'model_not_deployed', 'model_not_deployed']);
        openai.enqueue(replies.rateLimited(7));
        await failure(c.chat.completions.create({ model: 'o3', messages }));
        // A model the first target does not know (a client's typo: OpenAI's 404) says nothing: it is not the config's gap.
        openai.enqueue({ status: 404 });
        await failure(client({ config: { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'o' }, { virtual_key: 'a' }] } }).chat.completions.create({ model: 'gpt-4o-typo', messages }));
        // The only sign but the log's attempts that the fallback cannot happen: said once per target and model.
        expect(warn.mock.calls.map(([message, type]) => [String(message), type])).toEqual([
          ['targets[1] (azure-openai, virtual key "a") has no deployment for model "o3": requests for it cannot fall back there. Add it to the target\'s deployments, or give a deployment_id (said once per target and model).', 'SwitchyardConfigWarning'],
          ['targets[2] (azure-openai, virtual key "west") has no deployment for model "o3": requests for it cannot fall back there. Add it to the target\'s deployments, or give a deployment_id (said once per target and model).', 'SwitchyardConfigWarning'],
        ]);
      } finally {
        warn.mockRestore();
      }
    });

    it("says once per target address that a target's chat path answers 404, but not for OpenAI's model_not_found", async () => {
      const strict = await startFakeAzureOpenAI({ name: 'strict', deployments: ['gpt4o-prod'] });
      const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
      try {
        const c = client({
          virtualKeys: {
            // The fake's root, without /v1; an Azure deployment name the fake does not have.
            bare: { provider: 'openai', api_key: 'sk-o', custom_host: new URL(openai.baseURL).origin },
            typo: { provider: 'azure-openai', api_key: 'az', custom_host: strict.baseURL, deployment_id: 'gpt4o-prd' },
            o: { provider: 'openai', api_key: 'sk-o', custom_host: openai.baseURL },
          },
          config: { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'bare' }, { virtual_key: 'typo' }, { virtual_key: 'o' }] },
        });
        for (let i = 0; i < 2; i++) expect((await c.chat.completions.create({ model: 'gpt-4o', messages })).choices[0]!.message.content).toBe('Hello from openai');
        expect(logs[1]!.attempts.map((a) => [a.status, a.upstreamError?.code])).toEqual([[404, 'invalid_request_error'], [404, 'DeploymentNotFound'], [200, undefined]]);
        expect(warn.mock.calls.map(([message, type]) => [String(message), type])).toEqual([
          ['targets[0] (openai, virtual key "bare") answered 404 ("Invalid URL (POST /chat/completions)") to POST /chat/completions: check its custom_host or endpoint (OpenAI-compatible servers serve under /v1, Azure under /openai), its api_version and its deployment (said once per target address).', 'SwitchyardConfigWarning'],
          [expect.stringMatching(/^targets\[1\] \(azure-openai, virtual key "typo"\) answered 404 \("[^"]+"\) to POST \/openai\/deployments\/gpt4o-prd\/chat\/completions\?api-version=2024-10-21: check/), 'SwitchyardConfigWarning'],
        ]);
        warn.mockClear();
        // The client's unknown model where the upstream finds models by name: OpenAI's model_not_found, a compatible
        // server's 404 naming it (vLLM, Ollama), Azure v1's DeploymentNotFound for a deployment named by the client.
        openai.enqueue({ status: 404 }, { status: 404, body: { error: { message: 'The model `gpt-4o-typo` does not exist.', type: 'NotFoundError', code: 404 } } });
        for (let i = 0; i < 2; i++) await failure(client({ config: { virtual_key: 'o' } }).chat.completions.create({ model: 'gpt-4o-typo', messages }));
        const v1 = client({ virtualKeys: { v1: { provider: 'azure-openai', api_key: 'az', custom_host: strict.baseURL, api_version: 'v1' } }, config: { virtual_key: 'v1' } });
        expect((await failure(v1.chat.completions.create({ model: 'gpt-4o-typo', messages }))).code).toBe('DeploymentNotFound');
        expect(warn).not.toHaveBeenCalled();
      } finally {
        warn.mockRestore();
        await strict.close();
      }
    });

    it('says that a deployments map keyed by deployment is the wrong way round', async () => {
      const c = client({
        virtualKeys: { back: { provider: 'azure-openai', api_key: 'az', custom_host: azure.baseURL, deployments: { 'gpt4o-prod': 'gpt-4o' } } },
        config: { virtual_key: 'back' },
      });
      const err = await failure(c.chat.completions.create({ model: 'gpt-4o', messages }));
      expect([err.status, err.code, err.message]).toEqual([
        400,
        'model_not_deployed',
        expect.stringContaining('Model "gpt-4o" has no Azure OpenAI deployment in this target\'s "deployments". It is one of the map\'s deployment names: "deployments" is keyed by model, { "<model>": "<deployment>" }.'),
      ]);
    });

    it("Azure v1: with no deployments, the model goes as it is; with a map, a target's override model goes as its deployment", async () => {
      await client({ config: { virtual_key: 'v1' } }).chat.completions.create({ model: 'gpt-4o', messages });
      await client({ config: { targets: [{ virtual_key: 'v1map', override_params: { model: 'gpt-4o-mini' } }], strategy: { mode: 'single' } } }).chat.completions.create({ model: 'gpt-4o', messages });
      expect(azure.requests.map((r) => [r.path, (r.body as { model: string }).model])).toEqual([
        ['/openai/v1/chat/completions', 'gpt-4o'],
        ['/openai/v1/chat/completions', 'gpt4o-mini-prod'],
      ]);
    });

    it('lets a stream run past request_timeout once its first event came', async () => {
      const c = client({ config: { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'o', request_timeout: 150 }, { virtual_key: 'a' }] } });
      openai.enqueue(replies.stream({ chunks: ['a', 'b', 'c', 'd', 'e', 'f'], intervalMs: 60 }));
      let text = '';
      for await (const chunk of await c.chat.completions.create({ model: 'gpt-4o', messages, stream: true })) text += chunk.choices[0]?.delta.content ?? '';
      expect(text).toBe('abcdef');
      expect(logs[0]!.attempts.map((a) => [a.status, a.error?.code])).toEqual([[200, undefined]]);
    });

    it('falls back from a 300, as from any redirect', async () => {
      const c = client({ config: { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'o' }, { virtual_key: 'a' }] } });
      openai.enqueue({ status: 300, body: {} });
      expect((await c.chat.completions.create({ model: 'gpt-4o', messages })).choices[0]!.message.content).toBe('Hello from azure');
    });
  });
});
