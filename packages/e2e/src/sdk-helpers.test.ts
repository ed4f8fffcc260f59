/**
 * What an experienced user of the official `openai` SDK does beyond plain create(), through Switchyard with a
 * fallback (OpenAI 429, Azure serves): tool calling, structured outputs (`parse()` + `zodResponseFormat`), the
 * `stream()` and `runTools()` helpers, n > 1 streams with logprobs and usage, `withResponse()`, per-request options.
 * Raw loopback upstreams script exact bytes (tool-call deltas), and the same SDK call made directly against such an
 * upstream gives the reference: through Switchyard the upstream must get the same bytes, and the SDK the same result.
 */
import { spawnSync } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { zodResponseFormat, zodFunction } from 'openai/helpers/zod';
import type { ChatCompletionChunk, ChatCompletionCreateParams } from 'openai/resources/chat/completions';
import { createFallbackClient, type LogEvent, type SwitchyardOptions } from '@switchyard/core';
import { SwitchyardModule, SwitchyardService } from '@switchyard/nestjs';
import { Test } from '@nestjs/testing';
import { expressAdapter, expressJsonAdapter, koaAdapter, koaBodyParserAdapter, nestAdapter, nestFastifyAdapter, type AdapterUnderTest, type RunningApp } from './support/adapters';

// zod is core's dependency (and the SDK's peer), not the e2e package's: taken from where core resolves it.
// (typed loosely: the e2e package's type-check does not see core's zod)
interface Zod {
  object(shape: Record<string, unknown>): Parameters<typeof zodResponseFormat>[0] & Parameters<typeof zodFunction>[0]['parameters'];
  string(): unknown;
  number(): unknown;
  array(item: unknown): unknown;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { z } = require(require.resolve('zod', { paths: [require.resolve('@switchyard/core')] })) as { z: Zod };

interface Recorded {
  path: string;
  headers: IncomingMessage['headers'];
  raw: string;
  body: Record<string, unknown>;
}
type Handler = (req: Recorded, res: ServerResponse) => void;

interface Raw {
  url: string;
  requests: Recorded[];
  queue: Handler[];
  fallback: Handler;
  close(): Promise<void>;
}

async function startRaw(fallback: Handler): Promise<Raw> {
  const raw: Raw = { url: '', requests: [], queue: [], fallback, close: async () => {} };
  const server: Server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const text = Buffer.concat(parts).toString('utf8');
      const rec: Recorded = { path: req.url ?? '', headers: req.headers, raw: text, body: JSON.parse(text) as Record<string, unknown> };
      raw.requests.push(rec);
      (raw.queue.shift() ?? raw.fallback)(rec, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  raw.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  raw.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return raw;
}

const rateLimited: Handler = (_req, res) => {
  res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '1', 'x-request-id': 'req-openai-429' });
  res.end(JSON.stringify({ error: { message: 'Rate limit reached', type: 'requests', param: null, code: 'rate_limit_exceeded' } }));
};

function json(body: unknown, requestId = 'req-azure-1'): Handler {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': requestId });
    res.end(JSON.stringify(body));
  };
}

/** An SSE stream of exactly these events (objects are JSON-encoded), then [DONE]. */
function sse(events: unknown[], requestId = 'req-azure-s'): Handler {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'x-request-id': requestId });
    for (const e of events) res.write(`data: ${typeof e === 'string' ? e : JSON.stringify(e)}\n\n`);
    res.end('data: [DONE]\n\n');
  };
}

const usage = { prompt_tokens: 42, completion_tokens: 17, total_tokens: 59 };

const toolCallCompletion = {
  id: 'chatcmpl-tools-1',
  object: 'chat.completion',
  created: 1_700_000_000,
  model: 'gpt-4o-2024-08-06',
  system_fingerprint: 'fp_abc',
  choices: [
    {
      index: 0,
      message: {
        role: 'assistant',
        content: null,
        refusal: null,
        tool_calls: [
          { id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
          { id: 'call_b', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Tokyo"}' } },
        ],
      },
      logprobs: null,
      finish_reason: 'tool_calls',
    },
  ],
  usage,
};

const head = { id: 'chatcmpl-s1', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-4o-2024-08-06', system_fingerprint: 'fp_abc' };
const azureFilter = { choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: [{ prompt_index: 0, content_filter_results: {} }] };
/** Parallel tool calls streamed as OpenAI streams them: id and name first, arguments in pieces, then the finish. */
const toolCallEvents = [
  azureFilter,
  { ...head, choices: [{ index: 0, delta: { role: 'assistant', content: null, tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '' } }] }, logprobs: null, finish_reason: null }], usage: null },
  { ...head, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '{"ci' } }] }, logprobs: null, finish_reason: null }], usage: null },
  { ...head, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: 'ty":"Paris"}' } }] }, logprobs: null, finish_reason: null }], usage: null },
  { ...head, choices: [{ index: 0, delta: { tool_calls: [{ index: 1, id: 'call_b', type: 'function', function: { name: 'get_weather', arguments: '' } }] }, logprobs: null, finish_reason: null }], usage: null },
  { ...head, choices: [{ index: 0, delta: { tool_calls: [{ index: 1, function: { arguments: '{"city":"Tokyo"}' } }] }, logprobs: null, finish_reason: null }], usage: null },
  { ...head, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'tool_calls' }], usage: null },
  { ...head, choices: [], usage },
];

const weatherTool = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Weather of a city',
    strict: true,
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  },
};

const toolParams = {
  model: 'gpt-4o',
  messages: [
    { role: 'system' as const, content: 'You are terse.' },
    { role: 'user' as const, content: 'Weather in Paris and Tokyo?' },
  ],
  tools: [weatherTool],
  tool_choice: 'auto' as const,
  parallel_tool_calls: true,
  max_completion_tokens: 256,
  logprobs: true,
  top_logprobs: 2,
  seed: 9007199254740993,
  user: 'u-1',
};

let openaiUp: Raw;
let azureUp: Raw;
/** A third raw upstream, the reference: the SDK talks to it directly. */
let direct: Raw;
const logs: LogEvent[] = [];
const apps: RunningApp[] = [];

beforeAll(async () => {
  openaiUp = await startRaw(rateLimited);
  azureUp = await startRaw(json(toolCallCompletion));
  direct = await startRaw(json(toolCallCompletion));
});
afterAll(async () => {
  await Promise.all([openaiUp.close(), azureUp.close(), direct.close()]);
});
beforeEach(() => {
  for (const r of [openaiUp, azureUp, direct]) {
    r.requests.length = 0;
    r.queue.length = 0;
  }
  logs.length = 0;
});
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

function options(extra: Partial<SwitchyardOptions> = {}): SwitchyardOptions {
  return {
    virtualKeys: {
      'openai-prod': { provider: 'openai', api_key: 'sk-openai-raw-0000000001', custom_host: `${openaiUp.url}/v1` },
      'azure-prod': { provider: 'azure-openai', api_key: 'azure-raw-key-000002', custom_host: `${azureUp.url}/openai`, deployments: { 'gpt-4o': 'gpt4o-prod' } },
    },
    config: { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] },
    onLog: (e) => logs.push(e),
    ...extra,
  };
}

const directSdk = () => new OpenAI({ apiKey: 'sk-direct', baseURL: `${direct.url}/v1`, maxRetries: 0 });

async function nextLog(count = 1): Promise<LogEvent> {
  const end = Date.now() + 3000;
  while (logs.length < count) {
    if (Date.now() > end) throw new Error(`expected ${count} log event(s), got ${logs.length}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return logs[count - 1]!;
}

/** Drops what differs between two SDK results only by transport (the non-enumerable _request_id is not compared). */
const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

const httpAdapters: AdapterUnderTest[] = [expressAdapter, expressJsonAdapter, koaAdapter, koaBodyParserAdapter, nestAdapter, nestFastifyAdapter];

describe.each(httpAdapters)('the openai SDK over HTTP through $name, OpenAI 429 -> Azure', (adapter) => {
  async function start(extra: Partial<SwitchyardOptions> = {}): Promise<OpenAI> {
    const app = await adapter.start(options(extra));
    apps.push(app);
    return new OpenAI({ apiKey: 'sk-client', baseURL: `${app.url}/v1`, maxRetries: 0 });
  }

  it('tools, tool_choice, parallel tool calls: the body reaches both providers as the SDK sent it, the answer the SDK as Azure sent it', async () => {
    const client = await start();
    const { data, response, request_id } = await client.chat.completions.create(toolParams).withResponse();
    const reference = await directSdk().chat.completions.create(toolParams);

    expect(plain(data)).toEqual(plain(reference));
    expect(data.choices[0]!.message.tool_calls).toHaveLength(2);
    expect(request_id).toBe('req-azure-1');
    expect(response.headers.get('x-switchyard-fallback')).toBe('true');
    // Unchanged bytes where no parser sits in front (a 64-bit seed is not rounded); the same JSON value otherwise.
    const sent = direct.requests[0]!.raw;
    for (const up of [openaiUp, azureUp]) {
      if (adapter.hostParsesJson) expect(up.requests[0]!.body).toEqual(JSON.parse(sent));
      else expect(up.requests[0]!.raw).toBe(sent);
    }
    expect(azureUp.requests[0]!.path).toBe('/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21');
    const log = await nextLog();
    expect(log).toMatchObject({ status: 200, fallback: true, model: 'gpt-4o', usage, servedBy: { provider: 'azure-openai', model: 'gpt4o-prod' } });
  });

  it("the tool results follow-up (role: 'tool', the assistant's tool_calls) is forwarded as sent", async () => {
    const client = await start();
    azureUp.queue.push(json({ ...toolCallCompletion, choices: [{ index: 0, message: { role: 'assistant', content: 'Sunny in both.', refusal: null }, logprobs: null, finish_reason: 'stop' }] }));
    const followUp: ChatCompletionCreateParams = {
      ...toolParams,
      messages: [
        ...toolParams.messages,
        toolCallCompletion.choices[0]!.message as OpenAI.Chat.ChatCompletionAssistantMessageParam,
        { role: 'tool', tool_call_id: 'call_a', content: '{"temp":21}' },
        { role: 'tool', tool_call_id: 'call_b', content: [{ type: 'text', text: '{"temp":18}' }] },
      ],
    };
    const res = await client.chat.completions.create({ ...followUp, stream: false });
    expect(res.choices[0]!.message.content).toBe('Sunny in both.');
    expect(azureUp.requests[0]!.body).toEqual(JSON.parse(JSON.stringify({ ...followUp, stream: false })));
  });

  it('parse() with zodResponseFormat: json_schema reaches Azure unchanged, .parsed is what it is against OpenAI', async () => {
    const client = await start();
    const Weather = z.object({ city: z.string(), tempC: z.number(), tags: z.array(z.string()) });
    const content = JSON.stringify({ city: 'Paris', tempC: 21.5, tags: ['sunny'] });
    const answer = { ...toolCallCompletion, choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, logprobs: null, finish_reason: 'stop' }] };
    azureUp.queue.push(json(answer));
    direct.queue.push(json(answer));
    const params = { model: 'gpt-4o', messages: toolParams.messages, response_format: zodResponseFormat(Weather, 'weather') };
    const parsed = await client.chat.completions.parse(params);
    const reference = await directSdk().chat.completions.parse(params);
    expect(parsed.choices[0]!.message.parsed).toEqual({ city: 'Paris', tempC: 21.5, tags: ['sunny'] });
    expect(plain(parsed)).toEqual(plain(reference));
    expect(azureUp.requests[0]!.body['response_format']).toEqual(direct.requests[0]!.body['response_format']);
    expect(openaiUp.requests[0]!.body).toEqual(direct.requests[0]!.body);
  });

  it('stream(): tool-call deltas and finalChatCompletion() are what they are against OpenAI; usage in the log', async () => {
    const client = await start();
    azureUp.queue.push(sse(toolCallEvents));
    direct.queue.push(sse(toolCallEvents));
    const params = { ...toolParams, stream_options: { include_usage: true } };
    const run = async (c: OpenAI) => {
      const stream = c.chat.completions.stream(params);
      const chunks: ChatCompletionChunk[] = [];
      const args: string[] = [];
      stream.on('chunk', (chunk) => chunks.push(chunk));
      stream.on('tool_calls.function.arguments.done', (e) => args.push(`${e.name}:${e.arguments}`));
      const final = await stream.finalChatCompletion();
      return { chunks, args, final };
    };
    const got = await run(client);
    const reference = await run(directSdk());
    expect(got.chunks).toEqual(reference.chunks);
    expect(got.args).toEqual(['get_weather:{"city":"Paris"}', 'get_weather:{"city":"Tokyo"}']);
    expect(got.args).toEqual(reference.args);
    expect(plain(got.final)).toEqual(plain(reference.final));
    expect(got.final.choices[0]!.message.tool_calls!.map((t) => t.id)).toEqual(['call_a', 'call_b']);
    const log = await nextLog();
    expect(log).toMatchObject({ status: 200, stream: true, fallback: true, usage, servedBy: { provider: 'azure-openai' } });
    expect(log.attempts.map((a) => a.status)).toEqual([429, 200]);
  });

  it('runTools(): each round trip falls back, the tool results reach Azure, finalContent() as against OpenAI', async () => {
    const client = await start();
    const final = { ...toolCallCompletion, choices: [{ index: 0, message: { role: 'assistant', content: 'Paris 21, Tokyo 18.', refusal: null }, logprobs: null, finish_reason: 'stop' }] };
    azureUp.queue.push(json(toolCallCompletion), json(final));
    const tool = zodFunction({ name: 'get_weather', parameters: z.object({ city: z.string() }), function: (args: unknown) => ({ temp: (args as { city: string }).city === 'Paris' ? 21 : 18 }) });
    const runner = client.chat.completions.runTools({ model: 'gpt-4o', messages: toolParams.messages, tools: [tool] });
    expect(await runner.finalContent()).toBe('Paris 21, Tokyo 18.');
    expect(openaiUp.requests).toHaveLength(2);
    expect(azureUp.requests).toHaveLength(2);
    const second = azureUp.requests[1]!.body['messages'] as Array<{ role: string; tool_call_id?: string; content?: unknown }>;
    expect(second.slice(-2)).toEqual([
      { role: 'tool', tool_call_id: 'call_a', content: '{"temp":21}' },
      { role: 'tool', tool_call_id: 'call_b', content: '{"temp":18}' },
    ]);
    await nextLog(2);
    expect(logs.map((l) => l.fallback)).toEqual([true, true]);
  });

  it('n: 2 stream with logprobs and include_usage: every chunk as sent, the usage in the log', async () => {
    const client = await start();
    const lp = (token: string) => ({ content: [{ token, logprob: -0.1, bytes: [...Buffer.from(token)], top_logprobs: [{ token, logprob: -0.1, bytes: [...Buffer.from(token)] }] }], refusal: null });
    const events = [
      azureFilter,
      { ...head, choices: [{ index: 0, delta: { role: 'assistant', content: 'model' }, logprobs: lp('model'), finish_reason: null }], usage: null },
      { ...head, choices: [{ index: 1, delta: { role: 'assistant', content: 'Hi' }, logprobs: lp('Hi'), finish_reason: null }], usage: null },
      { ...head, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }], usage: null },
      { ...head, choices: [{ index: 1, delta: { content: ' there' }, logprobs: lp(' there'), finish_reason: null }], usage: null },
      { ...head, choices: [{ index: 1, delta: {}, logprobs: null, finish_reason: 'length' }], usage: null },
      { ...head, choices: [], usage },
    ];
    azureUp.queue.push(sse(events));
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages: toolParams.messages, n: 2, logprobs: true, top_logprobs: 1, stream: true, stream_options: { include_usage: true } });
    const got: ChatCompletionChunk[] = [];
    for await (const chunk of stream) got.push(chunk);
    expect(got).toEqual(events);
    const log = await nextLog();
    expect(log).toMatchObject({ status: 200, usage, servedBy: { provider: 'azure-openai' } });
  });

  it('per-request headers, timeout, signal and withOptions() behave as against OpenAI', async () => {
    const client = await start();
    const scoped = client.withOptions({ defaultHeaders: { 'x-switchyard-trace-id': 'scoped-trace' }, timeout: 60_000 });
    const { response } = await scoped.chat.completions.create(toolParams, { headers: { 'x-custom': 'not-forwarded' } }).withResponse();
    expect(response.headers.get('x-switchyard-trace-id')).toBe('scoped-trace');
    expect(azureUp.requests[0]!.headers['x-custom']).toBeUndefined();
    // A stream the caller aborts part way: the SDK's loop ends, the log says 499.
    azureUp.queue.push((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify(toolCallEvents[1])}\n\n`);
      // never ends
    });
    const controller = new AbortController();
    const stream = await client.chat.completions.create({ ...toolParams, stream: true }, { signal: controller.signal });
    const seen: ChatCompletionChunk[] = [];
    // As the SDK's loop over OpenAI's stream: it ends quietly at the abort.
    for await (const chunk of stream) {
      seen.push(chunk);
      controller.abort();
    }
    expect(seen).toHaveLength(1);
    const log = await nextLog(2);
    expect(log.status).toBe(499);
  });
});

describe('the in-process client and the Nest service, OpenAI 429 -> Azure', () => {
  it('createFallbackClient: a tool-call completion and a tool-call stream come out as the SDK gives them', async () => {
    const client = createFallbackClient(options());
    const completion = await client.chat.completions.create(toolParams);
    const reference = await directSdk().chat.completions.create(toolParams);
    expect(plain(completion)).toEqual(plain(reference));
    expect(azureUp.requests[0]!.raw).toBe(direct.requests[0]!.raw);

    azureUp.queue.push(sse(toolCallEvents));
    direct.queue.push(sse(toolCallEvents));
    const params = { ...toolParams, stream: true as const, stream_options: { include_usage: true } };
    const chunks: ChatCompletionChunk[] = [];
    for await (const chunk of await client.chat.completions.create(params)) chunks.push(chunk);
    const refChunks: ChatCompletionChunk[] = [];
    for await (const chunk of await directSdk().chat.completions.create(params)) refChunks.push(chunk);
    expect(chunks).toEqual(refChunks);
    expect(azureUp.requests[1]!.raw).toBe(direct.requests[1]!.raw);
    const log = await nextLog(2);
    expect(log).toMatchObject({ status: 200, stream: true, fallback: true, usage });
  });

  it('createFallbackClient: a stream left at finish_reason "tool_calls" is logged 200 with its usage', async () => {
    const client = createFallbackClient(options());
    azureUp.queue.push(sse(toolCallEvents));
    const stream = await client.chat.completions.create({ ...toolParams, stream: true, stream_options: { include_usage: true } });
    for await (const chunk of stream) if (chunk.choices[0]?.finish_reason) break;
    const log = await nextLog();
    expect(log).toMatchObject({ status: 200, usage });
  });

  it('SwitchyardService: tool calls through createChatCompletion and service.client', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [SwitchyardModule.forRoot(options())] }).compile();
    await moduleRef.init();
    try {
      const service = moduleRef.get(SwitchyardService);
      const completion = await service.createChatCompletion(toolParams);
      expect(completion.choices[0]!.message.tool_calls!.map((t) => (t.type === 'function' ? t.function.arguments : t.type))).toEqual(['{"city":"Paris"}', '{"city":"Tokyo"}']);
      expect(completion._request_id).toBe('req-azure-1');
      azureUp.queue.push(sse(toolCallEvents));
      const chunks: ChatCompletionChunk[] = [];
      for await (const chunk of await service.client.chat.completions.create({ ...toolParams, stream: true })) chunks.push(chunk);
      expect(chunks).toEqual(toolCallEvents);
      expect(logs.map((l) => [l.status, l.fallback])).toEqual([
        [200, true],
        [200, true],
      ]);
    } finally {
      await moduleRef.close();
    }
  });

  it('the SDK helpers the in-process client lacks are absent: calling one fails at once with a TypeError, not a hang', async () => {
    const client = createFallbackClient(options()) as unknown as { chat: { completions: Record<string, unknown> } };
    expect(client.chat.completions['parse']).toBeUndefined();
    expect(client.chat.completions['stream']).toBeUndefined();
    expect(client.chat.completions['runTools']).toBeUndefined();
  });

  it('withResponse() in process (client and Nest service): the result, the status and headers the HTTP route would send, the request id', async () => {
    const client = createFallbackClient(options());
    const { data, response, request_id } = await client.chat.completions.create(toolParams).withResponse();
    expect(data.choices[0]!.message.tool_calls).toHaveLength(2);
    expect(data._request_id).toBe('req-azure-1');
    expect([response.status, response.headers.get('x-switchyard-target'), response.headers.get('x-switchyard-fallback'), request_id]).toEqual([200, 'targets[1]', 'true', 'req-azure-1']);
    azureUp.queue.push(sse(toolCallEvents));
    const streamed = await client.chat.completions.create({ ...toolParams, stream: true }).withResponse();
    expect([streamed.response.status, streamed.response.headers.get('content-type'), streamed.request_id]).toEqual([200, 'text/event-stream', 'req-azure-s']);
    const chunks: ChatCompletionChunk[] = [];
    for await (const chunk of streamed.data) chunks.push(chunk);
    expect(chunks).toEqual(toolCallEvents);
    // A failure rejects it as it rejects create().
    azureUp.queue.push(rateLimited);
    await expect(client.chat.completions.create(toolParams).withResponse()).rejects.toMatchObject({ name: 'FallbackRequestError', status: 429 });
    const moduleRef = await Test.createTestingModule({ imports: [SwitchyardModule.forRoot(options())] }).compile();
    try {
      const fromService = await moduleRef.get(SwitchyardService).createChatCompletion(toolParams).withResponse();
      expect([fromService.response.headers.get('x-switchyard-attempts'), fromService.request_id]).toEqual(['2', 'req-azure-1']);
    } finally {
      await moduleRef.close();
    }
  });

  it('asResponse() in process rejects with a TypeError naming withResponse(); the stream it started is closed and logged', async () => {
    const client = createFallbackClient(options());
    await expect(client.chat.completions.create(toolParams).asResponse()).rejects.toThrow(/in-process client .*withResponse\(\)/);
    azureUp.queue.push(sse(toolCallEvents));
    await expect(client.chat.completions.create({ ...toolParams, stream: true }).asResponse()).rejects.toThrow(TypeError);
    expect((await nextLog(2)).status).toBe(499);
  });

  it('asResponse() on a request that fails leaves no unhandled rejection: the process goes on', () => {
    // Node ends a process on an unhandled rejection: run it in one, on the built package, against a provider that refuses.
    const script = `
      const http = require('node:http');
      const { createFallbackClient } = require('@switchyard/core');
      const server = http.createServer((req, res) => req.resume().on('end', () => {
        res.writeHead(429, { 'content-type': 'application/json' });
        res.end('{"error":{"message":"busy","type":"requests","param":null,"code":"rate_limit_exceeded"}}');
      }));
      server.listen(0, '127.0.0.1', async () => {
        const client = createFallbackClient({ virtualKeys: { o: { provider: 'openai', api_key: 'sk-0000000000000001', custom_host: 'http://127.0.0.1:' + server.address().port + '/v1' } }, config: { virtual_key: 'o' } });
        try { await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }).asResponse(); } catch (err) { console.log(err.name); }
        setTimeout(() => { console.log('alive'); server.close(); }, 100);
      });`;
    const run = spawnSync(process.execPath, ['-e', script], { cwd: __dirname, encoding: 'utf8', timeout: 20_000 });
    expect([run.status, run.stdout.trim().split('\n'), run.stderr]).toEqual([0, ['TypeError', 'alive'], '']);
  });
});
