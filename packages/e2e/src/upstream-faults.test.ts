/**
 * Upstreams that misbehave in ways the scripted fakes do not: a connection closed mid-event, an event that never
 * ends, a huge error body, a media type in capitals, a compressed body. Raw node:http upstreams on loopback, an
 * Express app with Switchyard (the logic is core's, the behaviour suite checks that adapters agree), the official
 * SDK as client, and the in-process client for the stream rules it shares.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import OpenAI, { APIError } from 'openai';
import { createFallbackClient, FallbackRequestError, type LogEvent, type SwitchyardOptions } from '@switchyard/core';
import { replies, startFakeAzureOpenAI, type FakeProvider } from '@switchyard/testing';
import { expressAdapter, type RunningApp } from './support/adapters';
import { messages, nextLog, until } from './support/fixture';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const RAW_KEY = 'sk-raw-upstream-key-0123456789';
/** As long as OpenAI's project keys (about 160 characters). */
const LONG_KEY = `${RAW_KEY}${'x'.repeat(130)}`;

const completion = (content: string) =>
  JSON.stringify({
    id: 'chatcmpl-raw', object: 'chat.completion', created: 1, model: 'gpt-4o',
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop', logprobs: null }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  });
const event = (content: string) =>
  `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;

/** One whole event, the start of a second, then the connection closes: close-delimited, so that reads as the end. */
const cutMidEvent: Handler = (req, res) => {
  res.useChunkedEncodingByDefault = false;
  res.shouldKeepAlive = false;
  res.writeHead(200, { 'content-type': 'text/event-stream', connection: 'close' });
  res.write(event('whole'));
  res.write('data: {"id":"c","object":"chat.compl');
  setTimeout(() => req.socket.end(), 20);
};

/** Writes `head`, then up to 64 MiB more of an event that never ends (with backpressure); counts the MiB that got out. */
function neverEndingEvent(head: string): { handler: Handler; sent: () => number } {
  const megabyte = 'x'.repeat(1024 * 1024);
  let sent = 0;
  const handler: Handler = (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(head);
    const more = () => {
      while (sent < 64 && !res.destroyed) {
        sent++;
        if (!res.write(megabyte)) return void res.once('drain', more);
      }
    };
    more();
  };
  return { handler, sent: () => sent };
}

/** The chunks' contents until the stream ends, and what it failed with, if it did. */
async function drain(stream: AsyncIterable<{ choices: Array<{ delta: { content?: string | null } }> }>): Promise<{ got: string[]; err: unknown }> {
  const got: string[] = [];
  try {
    for await (const chunk of stream) got.push(chunk.choices[0]?.delta.content ?? '');
    return { got, err: undefined };
  } catch (err) {
    return { got, err };
  }
}

describe('upstreams that misbehave', () => {
  let handler: Handler;
  let upstream: Server;
  let upstreamUrl: string;
  let azure: FakeProvider;
  let app: RunningApp;
  const logs: LogEvent[] = [];
  const seen: IncomingMessage[] = [];
  /** Upstream responses whose connection went away before they were complete (the client cut them off). */
  let cutOff = 0;

  const options = (): SwitchyardOptions => ({
    virtualKeys: {
      raw: { provider: 'openai', api_key: RAW_KEY, custom_host: upstreamUrl },
      long: { provider: 'openai', api_key: LONG_KEY, custom_host: upstreamUrl },
      'azure-prod': { provider: 'azure-openai', api_key: 'az', custom_host: azure.baseURL, deployments: { 'gpt-4o': 'gpt4o-prod' } },
    },
    configs: {
      'raw-only': { strategy: { mode: 'single' }, targets: [{ virtual_key: 'raw' }] },
      'long-key': { strategy: { mode: 'single' }, targets: [{ virtual_key: 'long' }] },
      'raw-429': { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'raw' }, { virtual_key: 'azure-prod' }] },
      'raw-timed': { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'raw', request_timeout: 300 }, { virtual_key: 'azure-prod' }] },
      'raw-retried': { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'raw', retry: { attempts: 3 } }, { virtual_key: 'azure-prod' }] },
    },
    config: { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'raw' }, { virtual_key: 'azure-prod' }] },
    onLog: (e) => logs.push(e),
  });
  /** The oldest log event not taken yet (waiting for it), taken: each request's event in turn. */
  const takeLog = async (): Promise<LogEvent> => {
    const event = await nextLog(logs);
    logs.shift();
    return event;
  };
  const client = (configId?: string) =>
    new OpenAI({ apiKey: 'unused', baseURL: `${app.url}/v1`, maxRetries: 0, defaultHeaders: configId ? { 'x-switchyard-config': configId } : {} });

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      seen.push(req);
      res.on('close', () => {
        if (!res.writableFinished) cutOff++;
      });
      req.resume();
      req.on('end', () => handler(req, res));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`;
    azure = await startFakeAzureOpenAI({ name: 'azure' });
    app = await expressAdapter.start(options());
  });
  afterAll(async () => {
    await app.close();
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
    await azure.close();
  });
  beforeEach(() => {
    logs.length = 0;
    seen.length = 0;
    cutOff = 0;
    azure.reset();
  });

  it('asks upstreams for uncompressed bodies, decodes a compressed JSON answer, and falls back from a compressed stream', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(gzipSync(completion('from a gzipping upstream')));
    };
    const res = await client().chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
    expect(res.data.choices[0]!.message.content).toBe('from a gzipping upstream');
    expect(res.response.headers.get('content-encoding')).toBeNull();
    expect(seen[0]!.headers['accept-encoding']).toBe('identity');
    expect((await nextLog(logs)).usage?.total_tokens).toBe(2); // read from the decoded body
    const inProcess = await createFallbackClient(options()).chat.completions.create({ model: 'gpt-4o', messages });
    expect(inProcess.choices[0]!.message.content).toBe('from a gzipping upstream');

    // A compressed event stream cannot go event by event: nothing was sent yet, so the next target serves it.
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'content-encoding': 'gzip' });
      res.end(gzipSync(`${event('zipped')}data: [DONE]\n\n`));
    };
    azure.enqueue(replies.stream({ chunks: ['from azure'] }));
    const { got, err } = await drain(await client().chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
    expect([got.join(''), err]).toEqual(['from azure', undefined]);
    // Told by its header, not by waiting for an end: one that stays open falls back as soon.
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'content-encoding': 'gzip' });
      res.write(gzipSync(event('zipped, and never ends')));
    };
    azure.enqueue(replies.stream({ chunks: ['from azure'] }));
    const open = await drain(await client().chat.completions.create({ model: 'gpt-4o', messages, stream: true }, { timeout: 3000 }));
    expect([open.got.join(''), open.err]).toEqual(['from azure', undefined]);
    await until(() => logs.length === 4); // the JSON answers (HTTP, in process), then the two streams
    expect(logs.map((e) => e.attempts[0]!.error?.message ?? null).slice(2)).toEqual(Array(2).fill('The upstream of targets[0] (openai) compressed its event stream (gzip).'));
  });

  it('falls back from a body that does not decode, or in a coding it cannot undo, naming the upstream in the log', async () => {
    const cases = [
      ['gzip', 'The upstream of targets[0] (openai) sent a gzip body that could not be decoded.'],
      ['zstd', 'The upstream of targets[0] (openai) sent a body in a content-encoding Switchyard cannot decode (zstd).'],
    ] as const;
    for (const [encoding, message] of cases) {
      handler = (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': encoding });
        res.end('not compressed at all');
      };
      azure.enqueue(replies.ok('from azure'));
      const answer = await client().chat.completions.create({ model: 'gpt-4o', messages });
      expect(answer.choices[0]!.message.content).toBe('from azure');
      expect((await takeLog()).attempts.map((a) => [a.error?.code, a.error?.message])).toEqual([['upstream_unreachable', message], [undefined, undefined]]);
    }
  });

  it('labels a completion sent with another media type (none, text/plain, in capitals) as JSON, which the SDK reads by its type', async () => {
    for (const type of [undefined, 'text/plain', 'application/JSON', 'text/html; charset=utf-8']) {
      handler = (_req, res) => {
        res.writeHead(200, type === undefined ? {} : { 'content-type': type });
        res.end(completion('labelled wrongly'));
      };
      const res = await client().chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
      expect([type, typeof res.data, res.data.choices[0]!.message.content]).toEqual([type, 'object', 'labelled wrongly']);
      expect(res.response.headers.get('content-type')).toBe('application/json');
      await takeLog();
    }
  });

  it('passes on a completion that starts with a UTF-8 byte order mark, as the SDK reads it, without the mark', async () => {
    // An OpenAI-compatible server behind custom_host (.NET gateways do) may open its JSON with a BOM; fetch's json() drops it.
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(completion('after a BOM'))]));
    };
    const res = await client().chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
    expect([res.data.choices[0]!.message.content, res.response.status]).toEqual(['after a BOM', 200]);
    const log = await takeLog();
    expect([log.fallback, log.usage?.total_tokens]).toEqual([false, 2]);
    const inProcess = await createFallbackClient(options()).chat.completions.create({ model: 'gpt-4o', messages });
    expect(inProcess.choices[0]!.message.content).toBe('after a BOM');
  });

  it('streams an event stream whose media type is written in capitals', async () => {
    let release!: () => void;
    const later = new Promise<void>((r) => (release = r));
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'Text/Event-Stream; charset=utf-8' });
      res.write(event('first'));
      void later.then(() => res.end(`${event('second')}data: [DONE]\n\n`));
    };
    const stream = await client().chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    const it = stream[Symbol.asyncIterator]();
    // The first event arrives while the upstream still holds the rest: streamed, not buffered whole.
    expect((await it.next()).value?.choices[0]?.delta.content).toBe('first');
    release();
    expect((await it.next()).value?.choices[0]?.delta.content).toBe('second');
    expect((await it.next()).done).toBe(true);
  });

  it('streams an event stream whose media type comes twice (a proxy adding its own), as the SDK reads it', async () => {
    handler = (_req, res) => {
      res.setHeader('content-type', ['text/event-stream', 'text/event-stream; charset=utf-8']);
      res.end(`${event('once')}data: [DONE]\n\n`);
    };
    const stream = await client().chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    expect(await drain(stream)).toEqual({ got: ['once'], err: undefined });
    expect(await takeLog()).toMatchObject({ status: 200, fallback: false, attempts: [{ status: 200 }] });
    expect(azure.requests).toHaveLength(0);
  });

  it("logs a stream the SDK's loop leaves at the last finish_reason as complete, with the usage that follows; one whose rest never comes as 499", async () => {
    // The finish chunk, then usage and [DONE] in a later write (as providers send them), a few ms later or more
    // (before or after Switchyard notices the client left), or, the last time, never.
    const chunk = (choices: object[], usage: object | null = null) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'gpt-4o', choices, usage })}\n\n`;
    const gaps = [0, 2, 5, 10, 50];
    let request = 0;
    handler = (_req, res) => {
      const gap = gaps[request++];
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk([{ index: 0, delta: { content: 'whole' }, finish_reason: null }]));
      res.write(chunk([{ index: 0, delta: {}, finish_reason: 'stop' }]));
      if (gap === undefined) return void setTimeout(() => res.end(), 3000).unref();
      setTimeout(() => res.end(`${chunk([], { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 })}data: [DONE]\n\n`), gap);
    };
    for (let i = 0; i <= gaps.length; i++) {
      const stream = await client().chat.completions.create({ model: 'gpt-4o', messages, stream: true, stream_options: { include_usage: true } });
      let text = '';
      for await (const part of stream) {
        text += part.choices[0]?.delta.content ?? '';
        if (part.choices[0]?.finish_reason) break; // the SDK closes the connection here
      }
      expect(text).toBe('whole');
    }
    for (const gap of gaps) {
      const complete = await takeLog();
      expect([gap, complete.status, complete.attempts[0]!.error?.code, complete.usage?.total_tokens]).toEqual([gap, 200, undefined, 5]);
    }
    const cut = await takeLog();
    expect([cut.status, cut.attempts[0]!.error?.code, cut.usage]).toEqual([499, 'client_closed', null]);
  });

  it('reads at most 64 KiB of the rest of a stream the client left at its finish_reason: past that it stops the upstream, and logs 499', async () => {
    const chunk = (choices: object[], usage: object | null = null) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'gpt-4o', choices, usage })}\n\n`;
    // After the client left: some 128 KiB of events with no choices, then the usage chunk and [DONE]; the second
    // time, nothing after them (the connection stays open).
    const padding = chunk([]).repeat(Math.ceil((128 * 1024) / chunk([]).length));
    const closed: boolean[] = [];
    handler = (_req, res) => {
      const index = closed.push(false) - 1;
      res.on('close', () => (closed[index] = true));
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk([{ index: 0, delta: { content: 'whole' }, finish_reason: null }]));
      res.write(chunk([{ index: 0, delta: {}, finish_reason: 'stop' }]));
      const rest = index === 0 ? `${padding}${chunk([], { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 })}data: [DONE]\n\n` : padding;
      setTimeout(() => res.write(rest), 250);
    };
    for (let i = 0; i < 2; i++) {
      const stream = await client().chat.completions.create({ model: 'gpt-4o', messages, stream: true, stream_options: { include_usage: true } });
      for await (const part of stream) if (part.choices[0]?.finish_reason) break;
      const cut = await takeLog();
      expect([i, cut.status, cut.attempts[0]!.error?.code, cut.usage]).toEqual([i, 499, 'client_closed', null]);
      // The upstream's connection is closed, not left open for whatever it sends next.
      await until(() => closed[i] === true);
    }
  });

  it('logs as complete an n = 2 stream left once both choices finished, the last finish event split across two reads', async () => {
    const chunk = (choices: object[], usage: object | null = null) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'gpt-4o', choices, usage })}\n\n`;
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk([{ index: 0, delta: { content: 'a' }, finish_reason: null }, { index: 1, delta: { content: 'b' }, finish_reason: null }]));
      res.write(chunk([{ index: 0, delta: {}, finish_reason: 'stop' }]));
      const last = chunk([{ index: 1, delta: {}, finish_reason: 'stop' }]);
      res.write(last.slice(0, 30));
      setTimeout(() => res.write(last.slice(30)), 50);
      setTimeout(() => res.end(`${chunk([], { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 })}data: [DONE]\n\n`), 400);
    };
    const stream = await client('raw-only').chat.completions.create({ model: 'gpt-4o', messages, n: 2, stream: true, stream_options: { include_usage: true } });
    const finished = new Set<number>();
    for await (const part of stream) {
      for (const choice of part.choices) if (choice.finish_reason) finished.add(choice.index);
      if (finished.size === 2) break;
    }
    const log = await takeLog();
    expect([log.status, log.attempts[0]!.error?.code, log.usage?.total_tokens]).toEqual([200, undefined, 5]);
  });

  it("logs as complete a stream left at its finish_reason when Azure's async content filter sends more than 4 KiB of annotations after it", async () => {
    // Azure's asynchronous filter: the finish chunk, then a chunk of filter offsets per window (no delta, empty id),
    // then usage and [DONE] once the filter caught up.
    const chunk = (fields: object) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'gpt-4o', ...fields })}\n\n`;
    const annotation = (i: number) =>
      `data: ${JSON.stringify({ choices: [{ index: 0, finish_reason: null, content_filter_offsets: { check_offset: i * 40, start_offset: i * 40, end_offset: i * 40 + 40 }, content_filter_results: { hate: { filtered: false, severity: 'safe' }, self_harm: { filtered: false, severity: 'safe' }, sexual: { filtered: false, severity: 'safe' }, violence: { filtered: false, severity: 'safe' }, protected_material_text: { filtered: false, detected: false }, protected_material_code: { filtered: false, detected: false } } }], created: 0, id: '', model: '', object: '' })}\n\n`;
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      // More than the log's tail holds (4 to 8 KiB), so the finish chunk has left it when the client stops.
      const after = Array.from({ length: 30 }, (_, i) => annotation(i)).join('');
      expect(after.length).toBeGreaterThan(2 * 4096);
      res.write(chunk({ choices: [{ index: 0, delta: { content: 'whole' }, finish_reason: null }] }) + chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }));
      setTimeout(() => res.write(after), 5);
      setTimeout(() => res.end(`${chunk({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } })}data: [DONE]\n\n`), 300);
    };
    const stream = await client().chat.completions.create({ model: 'gpt-4o', messages, stream: true, stream_options: { include_usage: true } });
    for await (const part of stream) if (part.choices[0]?.finish_reason) break;
    const logged = await takeLog();
    expect([logged.status, logged.attempts[0]!.error?.code, logged.usage?.total_tokens]).toEqual([200, undefined, 5]);
  });

  it('passes on an event stream that comes with no media type (Azure behind API Management has sent none), labelled as one', async () => {
    for (const type of [undefined, '']) {
      handler = (_req, res) => {
        if (type !== undefined) res.setHeader('content-type', type);
        res.writeHead(200);
        res.end(`${event('un')}${event('labelled')}data: [DONE]\n\n`);
      };
      const { data: stream, response } = await client().chat.completions.create({ model: 'gpt-4o', messages, stream: true }).withResponse();
      const { got, err } = await drain(stream);
      expect([got, err, response.headers.get('content-type')]).toEqual([['un', 'labelled'], undefined, 'text/event-stream']);
      expect((await takeLog()).status).toBe(200);
    }
  });

  it('ends with the SSE error event, not a clean end, when the upstream closes in the middle of an event', async () => {
    handler = cutMidEvent;
    const { got, err } = await drain(await client().chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
    expect(got).toEqual(['whole']);
    expect(err).toBeInstanceOf(APIError);
    expect((err as APIError).code).toBe('stream_interrupted');
    expect((err as APIError).message).toMatch(/ENDED_MID_EVENT/);
    const log = await nextLog(logs);
    expect(log.attempts[0]!.error?.code).toBe('stream_interrupted');
  });

  it("reads a stream's end as the SDK does: [DONE] with more after it in the same read, a CR-ended last event, usage over several data lines", async () => {
    const usage = { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 };
    const bodies = [
      // [DONE], then a keep-alive comment in the same write; and [DONE] with a blank after it (the SDK reads both as the end)
      `${event('one')}data: [DONE]\n\n: keep-alive\n\n`,
      `${event('one')}data: [DONE] \n\n`,
      // CRLF events, the last blank line cut after its CR: whole for a client's parser
      `${event('one').replace(/\n/g, '\r\n')}data: [DONE]\r\n\r`,
      // the usage chunk as a two-line event, as OpenAI-compatible proxies may write it
      `${event('one')}data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],\ndata: "usage":${JSON.stringify(usage)}}\n\ndata: [DONE]\n\n`,
      // [DONE] with no line break after it at all: the body's end ends it
      `${event('one')}data: [DONE]`,
    ];
    for (const [i, body] of bodies.entries()) {
      handler = (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(body);
      };
      const raw = await fetch(`${app.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o', messages, stream: true }),
      });
      const text = await raw.text();
      expect([i, text.includes('stream_interrupted')]).toEqual([i, false]);
      const log = await takeLog();
      expect([i, log.attempts.map((a) => a.error?.code)]).toEqual([i, [undefined]]);
      if (i === 3) expect(log.usage).toEqual(usage);

      const inProcessLogs: LogEvent[] = [];
      const inProcess = createFallbackClient({ ...options(), onLog: (e) => inProcessLogs.push(e) });
      const { got, err } = await drain(await inProcess.chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
      expect([i, got, err]).toEqual([i, i === 3 ? ['one', ''] : ['one'], undefined]);
      await until(() => inProcessLogs.length === 1);
      expect([i, inProcessLogs[0]!.attempts.map((a) => a.error?.code)]).toEqual([i, [undefined]]);
    }
    // An upstream error event ending a CRLF stream at its last CR: the in-process caller gets the upstream's message.
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`${event('one').replace(/\n/g, '\r\n')}data: {"error":{"message":"boom","type":"server_error"}}\r\n\r`);
    };
    const { err } = await drain(await createFallbackClient(options()).chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
    expect(err).toBeInstanceOf(FallbackRequestError);
    expect((err as FallbackRequestError).message).toBe('502 boom');
    logs.length = 0;
  });

  it('fails a stream whose event never ends, cutting the upstream off instead of holding it in memory', async () => {
    const endless = neverEndingEvent(`${event('whole')}data: {"x":"`);
    handler = endless.handler;
    const { got, err } = await drain(await client().chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
    expect(got).toEqual(['whole']);
    expect((err as APIError).message).toMatch(/EVENT_TOO_LARGE/);
    await nextLog(logs);
    // The upstream was stopped, not read to its end (its side sees the close a moment after ours is logged).
    await until(() => cutOff === 1);
    expect(endless.sent()).toBeLessThan(64);
  });

  it('falls back, whatever its size, from a stream that breaks before its first whole event', async () => {
    // 70 KB of keep-alive comments, then a clean end: nothing a client reads was sent, so this is no empty success.
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(': keep-alive\n\n'.repeat(5000));
    };
    azure.enqueue(replies.stream({ chunks: ['from azure'] }));
    const comments = await drain(await client().chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
    expect([comments.got.join(''), comments.err]).toEqual(['from azure', undefined]);
    expect((await takeLog()).attempts.map((a) => [a.status, a.error?.code, a.error?.message])).toEqual([
      [200, 'upstream_unreachable', 'The upstream of targets[0] (openai) ended its stream before sending any event.'],
      [200, undefined, undefined],
    ]);

    // A first event of 100 KB cut in its middle (close-delimited): still before anything was sent.
    handler = (req, res) => {
      res.useChunkedEncodingByDefault = false;
      res.shouldKeepAlive = false;
      res.writeHead(200, { 'content-type': 'text/event-stream', connection: 'close' });
      res.write(`data: {"x":"${'y'.repeat(100_000)}`);
      setTimeout(() => req.socket.end(), 20);
    };
    azure.enqueue(replies.stream({ chunks: ['from azure'] }));
    const cut = await drain(await client().chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
    expect([cut.got.join(''), cut.err]).toEqual(['from azure', undefined]);

    // Past 4 MiB without a whole event: the upstream is cut off, not held in memory, and the next target serves.
    const cutBefore = cutOff;
    const endless = neverEndingEvent('data: {"x":"');
    handler = endless.handler;
    azure.enqueue(replies.stream({ chunks: ['from azure'] }));
    const huge = await drain(await client().chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
    expect([huge.got.join(''), huge.err]).toEqual(['from azure', undefined]);
    await takeLog(); // the stream cut mid-event
    expect((await takeLog()).attempts[0]!.error?.message).toBe('The upstream of targets[0] (openai) sent 4194304 bytes of its stream without a whole event.');
    await until(() => cutOff > cutBefore);
    expect(endless.sent()).toBeLessThan(64);
  });

  it('does not read a huge error body: it falls back at once, and as the last answer keeps its status only', async () => {
    const huge = `{"error":{"message":"${'y'.repeat(3 * 1024 * 1024)}"}}`;
    handler = (_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(huge);
    };
    azure.enqueue(replies.ok('from azure'));
    const served = await client().chat.completions.create({ model: 'gpt-4o', messages });
    expect(served.choices[0]!.message.content).toBe('from azure');
    expect(azure.requests[0]!.headers['accept-encoding']).toBe('identity'); // asked of Azure too
    expect((await nextLog(logs)).attempts.map((a) => [a.status, a.error?.code])).toEqual([[503, 'upstream_error_too_large'], [200, undefined]]);

    const err = (await client('raw-only').chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)) as APIError;
    expect(err.status).toBe(503);
    expect(err.code).toBe('upstream_error_too_large');
    expect(err.message.length).toBeLessThan(500);

    // Compressed (a few KB of gzip), it is measured as decoded: not inflated to 3 MiB for the client.
    const packed = gzipSync(huge);
    handler = (_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(packed);
    };
    const gz = (await client('raw-only').chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)) as APIError;
    expect([gz.status, gz.code, packed.length < 64 * 1024]).toEqual([503, 'upstream_error_too_large', true]);

    // The cap is 1 MiB: a body just over it is dropped too.
    const over = `{"error":{"message":"${'y'.repeat(1024 * 1024)}"}}`;
    handler = (_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(over);
    };
    const justOver = (await client('raw-only').chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)) as APIError;
    expect([justOver.status, justOver.code]).toEqual([503, 'upstream_error_too_large']);
  });

  it('falls back from a 200 that is no JSON object (a proxy\'s page, an event stream); as the last answer it is a 502', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>Access denied</html>');
    };
    const served = await client().chat.completions.create({ model: 'gpt-4o', messages });
    expect(served.choices[0]!.message.content).toBe('Hello from azure');
    expect((await takeLog()).attempts.map((a) => [a.status, a.error?.code])).toEqual([[200, 'upstream_invalid_response'], [200, undefined]]);
    // Not retried on the same target, even where retries are set: that upstream answers this way, not by chance.
    const asked = seen.length;
    const next = await client('raw-retried').chat.completions.create({ model: 'gpt-4o', messages });
    expect([next.choices[0]!.message.content, seen.length - asked]).toEqual(['Hello from azure', 1]);
    await takeLog();

    // An event stream that never ends: not waited for (nor held in memory) to its end.
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[]}\n\n');
    };
    const err = (await client('raw-only').chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)) as APIError;
    expect([err.status, err.code, err.headers?.get('x-should-retry')]).toEqual([502, 'upstream_invalid_response', 'false']);
    expect(err.message).toContain('text/event-stream');
    await until(() => cutOff === 1); // its connection closed, not held open waiting for an end
  });

  it('falls back from a redirect (Switchyard follows none); as the last answer it is a 502 that names it', async () => {
    handler = (_req, res) => {
      res.writeHead(301, { location: 'https://elsewhere.example/v1/chat/completions', 'content-type': 'text/html' });
      res.end('<html>Moved Permanently</html>');
    };
    const served = await client().chat.completions.create({ model: 'gpt-4o', messages });
    expect(served.choices[0]!.message.content).toBe('Hello from azure');
    expect((await takeLog()).attempts.map((a) => [a.status, a.error?.code])).toEqual([[301, 'upstream_invalid_response'], [200, undefined]]);

    const err = (await client('raw-only').chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)) as APIError;
    expect([err.status, err.code, err.headers?.get('x-should-retry'), err.headers?.get('location')]).toEqual([502, 'upstream_invalid_response', 'false', null]);
    expect(err.message).toContain('The upstream of targets[0] (openai) answered 301, a redirect');
  });

  it('falls back from a 200 JSON answer to a stream request; as the last answer it is a 502, not an empty stream', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(completion('not a stream'));
    };
    azure.enqueue(replies.stream({ chunks: ['from azure'] }));
    const served = await drain(await client().chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
    expect([served.got.join(''), served.err]).toEqual(['from azure', undefined]);
    expect((await takeLog()).attempts.map((a) => [a.status, a.error?.code])).toEqual([[200, 'upstream_invalid_response'], [200, undefined]]);

    const err = (await client('raw-only').chat.completions.create({ model: 'gpt-4o', messages, stream: true }).catch((e: unknown) => e)) as APIError;
    expect([err.status, err.code, err.headers?.get('x-should-retry')]).toEqual([502, 'upstream_invalid_response', 'false']);
    expect(err.message).toContain('application/json');
    expect(seen.filter((r) => r.url === '/v1/chat/completions')).toHaveLength(2); // not retried: it would answer the same
  });

  it("does not commit a stream on Azure's prompt-filter verdict: a stall or an error after it still falls back; content after it streams", async () => {
    const verdict = `data: ${JSON.stringify({ choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: [{ prompt_index: 0, content_filter_results: {} }] })}\n\n`;
    const afterVerdict = (then: (res: ServerResponse) => void) => (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(verdict);
      then(res);
    };
    // Silent after the verdict: request_timeout (300 ms) still runs, and Azure serves.
    handler = afterVerdict(() => undefined);
    azure.enqueue(replies.stream({ chunks: ['from azure'] }));
    const stalled = await drain(await client('raw-timed').chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
    expect([stalled.got.join(''), stalled.err]).toEqual(['from azure', undefined]);
    expect((await takeLog()).attempts.map((a) => [a.status, a.error?.code])).toEqual([[200, 'upstream_timeout'], [200, undefined]]);
    await until(() => cutOff === 1); // the stalled upstream was cut off

    // The upstream's error right after the verdict: the error answer it stands for, so the fallback runs.
    handler = afterVerdict((res) => res.end('data: {"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}\n\n'));
    azure.enqueue(replies.stream({ chunks: ['from azure'] }));
    const failed = await drain(await client().chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
    expect([failed.got.join(''), failed.err]).toEqual(['from azure', undefined]);
    expect((await takeLog()).attempts[0]).toMatchObject({ status: 200, error: { code: 'upstream_error_event' } });

    // Content after the verdict: the client gets both, the verdict first, as from Azure itself.
    handler = afterVerdict((res) => res.end(`${event('Hello')}data: [DONE]\n\n`));
    const raw = await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-switchyard-config': 'raw-only' }, body: JSON.stringify({ model: 'gpt-4o', messages, stream: true }) });
    expect(await raw.text()).toBe(`${verdict}${event('Hello')}data: [DONE]\n\n`);
    await takeLog();
  });

  it('reads [DONE] and an error event wherever the connection splits them; the in-process client stops at [DONE], as the SDK', async () => {
    /** Writes the pieces 20 ms apart (each its own read upstream of Switchyard), then ends. */
    const inPieces = (...pieces: string[]) => (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const next = (i: number) => (i < pieces.length ? res.write(pieces[i], () => setTimeout(() => next(i + 1), 20)) : res.end());
      next(0);
    };
    const inProcess = () => createFallbackClient({ ...options(), config: options().configs!['raw-only'] });
    for (const [a, b] of [['data: [DO', 'NE]\n\n'], ['data: [DONE]\n', '\n'], ['data: [DONE]\r\n', '\r\n']]) {
      handler = inPieces(event('Hello'), a!, b!);
      const res = await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-4o', messages, stream: true }) });
      expect(await res.text()).toBe(`${event('Hello')}${a}${b}`); // complete: no error event after it
      expect((await takeLog()).attempts[0]!.error).toBeUndefined();
      const read = await drain(await inProcess().chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
      expect([read.got.join(''), read.err]).toEqual(['Hello', undefined]);
      await takeLog();
    }

    // An error event in two reads: the SDK throws it, and the log keeps the upstream's message.
    handler = inPieces(event('Hello'), 'data: {"error":{"message":"The server had an error","type":"server_error","pa', 'ram":null,"code":null}}\n\n');
    const failed = await drain(await client().chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
    expect([failed.got.join(''), (failed.err as APIError).message]).toEqual(['Hello', expect.stringContaining('The server had an error')]);
    expect((await takeLog()).attempts[0]!.error).toEqual({ code: 'upstream_error_event', message: 'The server had an error' });

    // An error event the upstream goes on after (more chunks, usage, [DONE]): the SDK throws at it; the log says so
    // on the route as in process, with the usage the upstream sent.
    const usage = `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 9, completion_tokens: 9, total_tokens: 18 } })}\n\n`;
    const opens = [
      () => client().chat.completions.create({ model: 'gpt-4o', messages, stream: true }),
      () => inProcess().chat.completions.create({ model: 'gpt-4o', messages, stream: true }),
    ];
    for (const open of opens) {
      // In one read: the rest arrives before the client, which stops at the error, could leave.
      handler = inPieces(event('Hello'), `data: {"error":{"message":"overloaded mid-stream","type":"server_error"}}\n\n${event(' more')}${usage}data: [DONE]\n\n`);
      const goneOn = await drain(await open());
      expect([goneOn.got.join(''), (goneOn.err as Error).message]).toEqual(['Hello', expect.stringContaining('overloaded mid-stream')]);
      expect((await takeLog()).attempts[0]!.error).toEqual({ code: 'upstream_error_event', message: 'overloaded mid-stream' });
    }
    // The rest a read later: the SDK, having thrown, hangs up first. The upstream failed; the client did not leave.
    handler = inPieces(event('Hello'), 'data: {"error":{"message":"overloaded mid-stream","type":"server_error"}}\n\n', event(' more'), usage, 'data: [DONE]\n\n');
    const hungUp = await drain(await opens[0]!());
    expect((hungUp.err as Error).message).toContain('overloaded mid-stream');
    const hungUpLog = await takeLog();
    expect([hungUpLog.status, hungUpLog.attempts[0]!.error?.code]).toEqual([200, 'upstream_error_event']);
    // An empty `error` is none, as the SDK reads it (`if (data.error)`).
    handler = inPieces(event('Hello'), `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', choices: [], error: '' })}\n\n`, event(' there'), 'data: [DONE]\n\n');
    for (const open of opens) {
      const read = await drain(await open());
      expect([read.got.join(''), read.err]).toEqual(['Hello there', undefined]);
      expect((await takeLog()).attempts[0]!.error).toBeUndefined();
    }

    // After [DONE], nothing is read: a later chunk, error event or comment.
    handler = inPieces(event('Hello'), 'data: [DONE]\n\n', event(' again'), 'data: {"error":{"message":"late"}}\n\n', ': bye\n\n');
    const over = await drain(await inProcess().chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
    expect([over.got.join(''), over.err]).toEqual(['Hello', undefined]);
    expect((await takeLog()).attempts[0]!.error).toBeUndefined();
    const overRoute = await drain(await client().chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
    expect([overRoute.got.join(''), overRoute.err]).toEqual(['Hello', undefined]);
    expect((await takeLog()).attempts[0]!.error).toBeUndefined();
  });

  it('takes a stream as complete wherever its [DONE] is: cut before its blank line, its blank line in a read of its own, an error event after it in the same read', async () => {
    /** Writes the pieces 20 ms apart (each its own read upstream of Switchyard), then ends. */
    const inPieces = (...pieces: string[]) => (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const next = (i: number) => (i < pieces.length ? res.write(pieces[i], () => setTimeout(() => next(i + 1), 20)) : res.end());
      next(0);
    };
    const fetchStream = () =>
      fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-switchyard-config': 'raw-only' }, body: JSON.stringify({ model: 'gpt-4o', messages, stream: true }) });
    // The connection closed right after `data: [DONE]` (with the blank after its colon, or without, as the SDK reads
    // both): its blank line is added, and nothing follows it, neither on the wire nor in the log.
    for (const done of ['data: [DONE]', 'data:[DONE]']) {
      handler = inPieces(event('Hello'), done);
      expect(await (await fetchStream()).text()).toBe(`${event('Hello')}${done}\n\n`);
      const log = await takeLog();
      expect([done, log.status, log.attempts[0]!.error]).toEqual([done, 200, undefined]);
    }
    // The blank line of [DONE] in a read of its own, then a keep-alive comment before the end: still complete.
    handler = inPieces(event('Hello'), 'data: [DONE]\n', '\n', ': keep-alive\n\n');
    expect(await (await fetchStream()).text()).toBe(`${event('Hello')}data: [DONE]\n\n: keep-alive\n\n`);
    expect((await takeLog()).attempts[0]!.error).toBeUndefined();
    // An error event after [DONE], in the same read: the SDK never reads it, so the stream did not fail.
    handler = inPieces(`${event('Hello')}data: [DONE]\n\ndata: {"error":{"message":"late"}}\n\n`);
    const read = await drain(await client('raw-only').chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
    expect([read.got.join(''), read.err]).toEqual(['Hello', undefined]);
    const log = await takeLog();
    expect([log.status, log.attempts[0]!.error]).toEqual([200, undefined]);
  });

  it('does not commit a stream on a prompt-filter verdict followed by a stray blank line: a stall after them still falls back', async () => {
    const verdict = `data: ${JSON.stringify({ choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: [{ prompt_index: 0, content_filter_results: {} }] })}\n\n`;
    // Silent after the verdict and a blank line (which a client's parser dispatches nothing for): request_timeout
    // (300 ms) still runs, and Azure serves.
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`${verdict}\n`);
    };
    azure.enqueue(replies.stream({ chunks: ['from azure'] }));
    const stalled = await drain(await client('raw-timed').chat.completions.create({ model: 'gpt-4o', messages, stream: true }, { timeout: 5000 }));
    expect([stalled.got.join(''), stalled.err]).toEqual(['from azure', undefined]);
    expect((await takeLog()).attempts.map((a) => [a.status, a.error?.code])).toEqual([[200, 'upstream_timeout'], [200, undefined]]);
    await until(() => cutOff === 1); // the stalled upstream was cut off
  });

  it('falls back from a stream that ends at [DONE] before any answer (with or without the Azure verdict): the client would read an empty one', async () => {
    const verdict = `data: ${JSON.stringify({ choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: [] })}\n\n`;
    for (const body of [': keep-alive\n\ndata: [DONE]\n\n', `${verdict}data: [DONE]\n\n`]) {
      handler = (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(body);
      };
      azure.enqueue(replies.stream({ chunks: ['from azure'] }));
      const served = await drain(await client().chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
      expect([served.got.join(''), served.err]).toEqual(['from azure', undefined]);
      expect((await takeLog()).attempts.map((a) => [a.status, a.error?.code])).toEqual([[200, 'upstream_unreachable'], [200, undefined]]);
    }
  });

  it("answers a stream whose first event is the upstream's error as that error (falling back by its status); later, the SDK throws it and the log records it", async () => {
    const errorEvent = 'data: {"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}\n\n';
    const firstEvent = (data: string) => (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`: keep-alive\n\n${data}`);
    };
    handler = firstEvent(errorEvent);
    azure.enqueue(replies.stream({ chunks: ['from azure'] }));
    const served = await drain(await client().chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
    expect([served.got.join(''), served.err]).toEqual(['from azure', undefined]);
    const moved = await takeLog();
    expect(moved.attempts[0]).toMatchObject({
      status: 200,
      error: { code: 'upstream_error_event', message: 'The server had an error while processing your request.' },
      upstreamError: { code: 'server_error', message: 'The server had an error while processing your request.' },
    });

    // As the last answer: a 500 (a server error) with the upstream's own error, which the SDK raises.
    const last = (await client('raw-only').chat.completions.create({ model: 'gpt-4o', messages, stream: true }).catch((e: unknown) => e)) as APIError;
    expect([last.status, last.type, last.message]).toEqual([500, 'server_error', expect.stringContaining('The server had an error')]);
    expect((await takeLog()).status).toBe(500);

    // Its status decides, as a status would: with on_status_codes [429], a rate limit moves on, a refused request does not.
    handler = firstEvent('data: {"error":{"message":"Rate limit reached","type":"tokens","code":"rate_limit_exceeded"}}\n\n');
    azure.enqueue(replies.stream({ chunks: ['from azure'] }));
    const limited = await drain(await client('raw-429').chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
    expect(limited.got.join('')).toBe('from azure');
    await takeLog();
    handler = firstEvent('data: {"error":{"message":"Invalid prompt","type":"invalid_request_error","code":"invalid_prompt"}}\n\n');
    const azureCalls = azure.requests.length;
    const refused = (await client('raw-429').chat.completions.create({ model: 'gpt-4o', messages, stream: true }).catch((e: unknown) => e)) as APIError;
    expect([refused.status, refused.code, azure.requests.length]).toEqual([400, 'invalid_prompt', azureCalls]);
    await takeLog();
    // Read as the same error sent as an HTTP answer: an account out of credit is a 429 (moves on), an overload a 503.
    // Not retried on the same key, as its HTTP twin is not; and said once, not at every stream (whose 200 status line
    // says nothing of the key until its first event).
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    let quotaHits = 0;
    const quotaEvent = firstEvent('data: {"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}\n\n');
    handler = (req, res) => {
      quotaHits++;
      quotaEvent(req, res);
    };
    azure.enqueue(replies.stream({ chunks: ['from azure'] }));
    expect((await drain(await client('raw-retried').chat.completions.create({ model: 'gpt-4o', messages, stream: true }))).got.join('')).toBe('from azure');
    expect(quotaHits).toBe(1);
    expect((await takeLog()).attempts[0]).toMatchObject({ status: 200, upstreamError: { code: 'insufficient_quota' } });
    azure.enqueue(replies.stream({ chunks: ['from azure'] }));
    expect((await drain(await client('raw-429').chat.completions.create({ model: 'gpt-4o', messages, stream: true }))).got.join('')).toBe('from azure');
    await takeLog();
    // A key refused in a first event is said as a 401 status line is.
    handler = firstEvent('data: {"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}\n\n');
    const refusedKey = (await client('raw-only').chat.completions.create({ model: 'gpt-4o', messages, stream: true }).catch((e: unknown) => e)) as APIError;
    expect([refusedKey.status, refusedKey.code]).toEqual([401, 'invalid_api_key']);
    await takeLog();
    const quotaWarnings = warn.mock.calls.filter(([message]) => String(message).includes('insufficient_quota'));
    const keyWarnings = warn.mock.calls.filter(([message]) => String(message).includes('answered 401'));
    warn.mockRestore();
    expect([quotaWarnings.length, keyWarnings.length]).toEqual([1, 1]);
    handler = firstEvent('data: {"error":{"message":"That model is currently overloaded","type":"service_unavailable_error","param":null,"code":"server_is_overloaded"}}\n\n');
    const overloaded = (await client('raw-only').chat.completions.create({ model: 'gpt-4o', messages, stream: true }).catch((e: unknown) => e)) as APIError;
    expect([overloaded.status, overloaded.code]).toEqual([503, 'server_is_overloaded']);
    expect((await takeLog()).status).toBe(503);

    // After content was sent: the error event passes to the client (its SDK throws it), and the log says so.
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`${event('partial')}${errorEvent}`);
    };
    const cut = await drain(await client().chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
    expect(cut.got).toEqual(['partial']);
    expect((cut.err as APIError).message).toContain('The server had an error');
    const logged = await takeLog();
    expect([logged.status, logged.attempts.map((a) => a.error)]).toEqual([200, [{ code: 'upstream_error_event', message: 'The server had an error while processing your request.' }]]);

    // The in-process client records it the same way.
    const inProcess = createFallbackClient(options());
    const thrown = await drain(await inProcess.chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
    expect([thrown.got, (thrown.err as FallbackRequestError).status]).toEqual([['partial'], 502]);
    expect((await takeLog()).attempts[0]!.error).toEqual({ code: 'upstream_error_event', message: 'The server had an error while processing your request.' });
  });

  it('the in-process client throws on an event that is not JSON, as the SDK does, instead of yielding a string', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`${event('first')}data: upstream overloaded, try later\n\n`);
    };
    const inProcess = createFallbackClient(options());
    const { got, err } = await drain(await inProcess.chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
    expect([got, (err as FallbackRequestError).code]).toEqual([['first'], 'upstream_invalid_response']);
    expect((await takeLog()).attempts[0]!.error?.code).toBe('upstream_invalid_response');
  });

  it('masks its own key in an upstream error body that quotes it, for the client and the in-process client', async () => {
    handler = (req, res) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `Incorrect API key provided: ${req.headers.authorization}.`, type: 'invalid_request_error', param: null, code: 'invalid_api_key' } }));
    };
    const err = (await client('raw-only').chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)) as APIError;
    expect([err.status, err.code]).toEqual([401, 'invalid_api_key']);
    expect(err.message).toContain('Incorrect API key provided: Bearer sk-...6789.');
    const inProcess = await createFallbackClient({ ...options(), config: options().configs!['raw-only'] })
      .chat.completions.create({ model: 'gpt-4o', messages })
      .catch((e: unknown) => e);
    expect(String((inProcess as FallbackRequestError).message)).toContain('Bearer sk-...6789');
    expect(JSON.stringify([err.error, (inProcess as FallbackRequestError).body])).not.toContain(RAW_KEY);
    await nextLog(logs, 2);
    logs.length = 0;

    // Quoted in a stream's first error event: masked in the answer it stands for and in the log.
    handler = (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`data: ${JSON.stringify({ error: { message: `Bad key ${req.headers.authorization}`, type: 'invalid_request_error' } })}\n\n`);
    };
    const streamed = (await client('raw-only').chat.completions.create({ model: 'gpt-4o', messages, stream: true }).catch((e: unknown) => e)) as APIError;
    expect(streamed.message).toContain('Bad key Bearer sk-...6789');
    const logged = await takeLog();
    expect(logged.attempts[0]!.error).toEqual({ code: 'upstream_error_event', message: 'Bad key Bearer sk-...6789' });
    expect(JSON.stringify([streamed.error, logged])).not.toContain(RAW_KEY);

    // Quoted in an error event after content, read by the in-process client: masked in its error and the log.
    handler = (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`${event('partial')}data: ${JSON.stringify({ error: { message: `Bad key ${req.headers.authorization}`, type: 'server_error' } })}\n\n`);
    };
    const inStream = await createFallbackClient({ ...options(), config: options().configs!['raw-only'] }).chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    const { err: midStream } = await drain(inStream);
    expect((midStream as FallbackRequestError).error?.message).toBe('Bad key Bearer sk-...6789');
    expect((await takeLog()).attempts[0]!.error?.message).toBe('Bad key Bearer sk-...6789');

    // Echoed in a forwarded header, or quoted with JSON escapes the client's parser turns back into the key.
    handler = (req, res) => {
      const escaped = `Bad key ${req.headers.authorization}`.replace(/[a-z]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
      res.writeHead(401, { 'content-type': 'application/json', 'x-request-id': `req ${req.headers.authorization}`, 'x-ratelimit-key': RAW_KEY });
      // Quoted twice: escaped in the message, as it is in `param`.
      res.end(`{"error":{"message":"${escaped}","type":"invalid_request_error","param":"${RAW_KEY}","code":"invalid_api_key"}}`);
    };
    const echoed = (await client('raw-only').chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)) as APIError;
    expect([echoed.status, echoed.requestID, echoed.headers?.get('x-ratelimit-key')]).toEqual([401, 'req Bearer sk-...6789', 'sk-...6789']);
    expect([echoed.message, echoed.param]).toEqual([expect.stringContaining('Bad key Bearer sk-...6789'), 'sk-...6789']);
    expect(JSON.stringify([echoed.error, [...(echoed.headers?.entries() ?? [])]])).not.toContain(RAW_KEY);
    await takeLog();

    // Escaped in an error body that is not JSON after all (cut short): its escapes are read as a client would.
    handler = (req, res) => {
      const escaped = `Bad key ${req.headers.authorization}`.replace(/[a-z]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(`{"error":{"message":"${escaped}"}`);
    };
    const cutShort = await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-switchyard-config': 'raw-only' }, body: JSON.stringify({ model: 'gpt-4o', messages }) });
    const cutText = await cutShort.text();
    expect([cutShort.status, cutText]).toEqual([401, expect.stringContaining('Bad key Bearer sk-...6789')]);
    await takeLog();

    // Escaped in an error event after content, read by the in-process client: masked as the caller reads it.
    handler = (req, res) => {
      const escaped = `Bad key ${req.headers.authorization}`.replace(/[a-z]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`${event('partial')}data: {"error":{"message":"${escaped}","type":"server_error"}}\n\n`);
    };
    const escapedMid = await createFallbackClient({ ...options(), config: options().configs!['raw-only'] }).chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    const { err: escapedErr } = await drain(escapedMid);
    expect((escapedErr as FallbackRequestError).message).toBe('502 Bad key Bearer sk-...6789');
    expect(JSON.stringify((escapedErr as FallbackRequestError).body)).not.toContain(RAW_KEY);
    await takeLog();

    // The same after content, through the HTTP route: the SDK throws it masked, in an event split across reads too.
    for (const split of [false, true]) {
      handler = (req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const error = `data: {"error":{"message":"Bad key ${req.headers.authorization}","type":"server_error"}}\n\n`;
        res.write(`${event('partial')}${split ? error.slice(0, 40) : error}`);
        setTimeout(() => res.end(split ? error.slice(40) : ''), 20);
      };
      const routed = await drain(await client('raw-only').chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
      expect([routed.got, (routed.err as APIError).message]).toEqual([['partial'], expect.stringContaining('Bad key Bearer sk-...6789')]);
      expect(JSON.stringify([(routed.err as APIError).error, await takeLog()])).not.toContain(RAW_KEY);
    }

    // In a content chunk (an echoing proxy), read by the in-process client: masked as on the HTTP route.
    handler = (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`${event(`echo ${req.headers.authorization}`)}data: [DONE]\n\n`);
    };
    const echoedChunk = await drain(await createFallbackClient({ ...options(), config: options().configs!['raw-only'] }).chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
    expect([echoedChunk.got, echoedChunk.err]).toEqual([['echo Bearer sk-...6789'], undefined]);
    await takeLog();

    // In the parameters of a content-type named in an error; in a 200 that is a proxy's error.
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': `text/html; x-auth=${RAW_KEY}` });
      res.end('<html>login</html>');
    };
    const wrongType = await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-switchyard-config': 'raw-only' }, body: JSON.stringify({ model: 'gpt-4o', messages }) });
    expect(wrongType.status).toBe(502);
    expect(await wrongType.text()).toContain('(content-type text/html)');
    expect(JSON.stringify(await takeLog())).not.toContain(RAW_KEY);
    // In the media type itself, long enough that the 100 characters shown would cut it: masked before the cut.
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': `text/${LONG_KEY}` });
      res.end('<html>login</html>');
    };
    const typed = await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-switchyard-config': 'long-key' }, body: JSON.stringify({ model: 'gpt-4o', messages }) });
    expect(typed.status).toBe(502);
    const typedBody = await typed.text();
    expect(typedBody).toContain('(content-type text/sk-...xxxx)');
    expect(typedBody).not.toContain(RAW_KEY.slice(0, 12));
    expect(JSON.stringify(await takeLog())).not.toContain(RAW_KEY.slice(0, 12));
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `bad key ${RAW_KEY}` } }));
    };
    const proxyError = await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-switchyard-config': 'raw-only' }, body: JSON.stringify({ model: 'gpt-4o', messages }) });
    expect(await proxyError.text()).toBe(JSON.stringify({ error: { message: 'bad key sk-...6789' } }));
    await takeLog();

    // A key with a `/`, quoted with JSON's `\/` escape (PHP writes it so): masked as the caller's parser reads it.
    const SLASHED = 'sk-slashed/0123456789+abcdefKEY';
    handler = (_req, res) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(`{"error":{"message":"Invalid API key: ${SLASHED.replace('/', '\\/')}","type":"invalid_request_error"}}`);
    };
    const slashed = await createFallbackClient({ virtualKeys: { s: { provider: 'openai', api_key: SLASHED, custom_host: upstreamUrl } }, config: { virtual_key: 's' } })
      .chat.completions.create({ model: 'gpt-4o', messages })
      .catch((e: unknown) => e);
    expect((slashed as FallbackRequestError).message).toBe('401 Invalid API key: sk-...fKEY');
  });

  it('the in-process client fails a stream cut mid-event the same way', async () => {
    handler = cutMidEvent;
    const inProcess = createFallbackClient(options());
    const { got, err } = await drain(await inProcess.chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
    expect(got).toEqual(['whole']);
    expect(err).toBeInstanceOf(FallbackRequestError);
    expect((err as FallbackRequestError).code).toBe('stream_interrupted');
  });

  it("logs a failed attempt's apim-request-id when it has no x-request-id, and what Azure's envelope said: its status-like code, the message cut to 500 characters (README: Log event)", async () => {
    const long = `Requests to the ChatCompletions_Create Operation have exceeded the token rate limit. ${'m'.repeat(600)}`;
    handler = (_req, res) => {
      res.writeHead(429, { 'content-type': 'application/json', 'apim-request-id': 'apim-0001', 'retry-after': '0' });
      res.end(JSON.stringify({ error: { code: '429', message: long } }));
    };
    expect((await client('raw-429').chat.completions.create({ model: 'gpt-4o', messages })).choices[0]!.message.content).toBe('Hello from azure');
    const failed = (await takeLog()).attempts[0]!;
    expect([failed.status, failed.upstreamRequestId, failed.upstreamError?.code, failed.upstreamError?.message]).toEqual([429, 'apim-0001', '429', long.slice(0, 500)]);
  });

  it('reads past an informational answer (103 Early Hints) to the real one', async () => {
    handler = (_req, res) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      res.writeHead(429, { 'content-type': 'application/json', 'x-request-id': 'req_after_hints' });
      res.end(JSON.stringify({ error: { message: 'Rate limit reached', type: 'requests', param: null, code: 'rate_limit_exceeded' } }));
    };
    azure.enqueue(replies.stream({ chunks: ['from azure'] }));
    expect((await drain(await client('raw-429').chat.completions.create({ model: 'gpt-4o', messages, stream: true }))).got.join('')).toBe('from azure');
    expect((await takeLog()).attempts[0]).toMatchObject({ status: 429, upstreamError: { code: 'rate_limit_exceeded' }, upstreamRequestId: 'req_after_hints' });
    handler = (_req, res) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`${event('after hints')}data: [DONE]\n\n`);
    };
    expect((await drain(await client('raw-only').chat.completions.create({ model: 'gpt-4o', messages, stream: true }))).got).toEqual(['after hints']);
    expect((await takeLog()).attempts[0]!.status).toBe(200);
    // The answer in a later packet than the hints (a CDN in front): still the answer's status and body.
    handler = (_req, res) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(completion('hinted'));
      }, 50);
    };
    expect((await client('raw-only').chat.completions.create({ model: 'gpt-4o', messages })).choices[0]!.message.content).toBe('hinted');
    expect((await takeLog()).attempts.map((a) => a.status)).toEqual([200]);
  });

  it('falls back from a 2xx body over 64 MiB instead of holding it whole', async () => {
    const megabyte = Buffer.alloc(1024 * 1024, 0x20);
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"id":"x","choices":[],"padding":"');
      let sent = 0;
      const more = () => {
        while (sent < 65 && !res.destroyed) {
          sent++;
          if (!res.write(megabyte)) return void res.once('drain', more);
        }
        if (!res.destroyed) res.end('"}');
      };
      more();
    };
    const completion = await client().chat.completions.create({ model: 'gpt-4o', messages });
    expect(completion.choices[0]!.message.content).toBe('Hello from azure');
    expect((await takeLog()).attempts[0]).toMatchObject({ status: 200, error: { code: 'upstream_invalid_response', message: expect.stringContaining('with a body over 67108864 bytes') } });
  });

  it('gives up a stream that sends event after event before any answer, rather than reading them all again at each', async () => {
    const verdict = 'data: {"choices":[],"prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}\n\n';
    // One at a time, as a trickle: each would have had everything held read again.
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let sent = 0;
      const next = () => {
        if (res.destroyed) return;
        if (sent++ < 40) {
          res.write(verdict);
          setTimeout(next, 2);
        } else res.end(`${event('never read')}data: [DONE]\n\n`);
      };
      next();
    };
    azure.enqueue(replies.stream({ chunks: ['from azure'] }));
    expect((await drain(await client().chat.completions.create({ model: 'gpt-4o', messages, stream: true }))).got.join('')).toBe('from azure');
    expect((await takeLog()).attempts[0]!.error).toMatchObject({ code: 'upstream_unreachable', message: expect.stringContaining('sent 32 events of its stream without an answer') });
    // One verdict, as Azure sends it, is still read past.
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`${verdict}${event('answered')}data: [DONE]\n\n`);
    };
    expect((await drain(await client('raw-only').chat.completions.create({ model: 'gpt-4o', messages, stream: true }))).got.join('')).toBe('answered');
    await takeLog();
  });
});
