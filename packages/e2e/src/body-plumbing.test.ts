/**
 * The body plumbing under the routes: request bodies in each content coding a client may send, upstream bodies in
 * each coding a careless upstream may use, a request body paused by host middleware, and the in-process client's
 * stream (backpressure to a slow reader, a transport failure named as such). Raw node:http upstreams on loopback, the
 * official SDK or fetch as client.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import express from 'express';
import OpenAI, { APIError } from 'openai';
import { createFallbackClient, FallbackRequestError, type LogEvent, type SwitchyardOptions } from '@switchyard/core';
import { fallbackMiddleware } from '@switchyard/express';
import { replies } from '@switchyard/testing';
import { listen, nodeAdapter, type RunningApp } from './support/adapters';
import { messages, nextLog, seedOptions, useUpstreams } from './support/fixture';

const ENCODERS: Record<string, (body: Buffer) => Buffer> = {
  gzip: gzipSync,
  'x-gzip': gzipSync,
  deflate: deflateSync,
  br: brotliCompressSync,
  GZIP: gzipSync,
  Br: brotliCompressSync,
  identity: (body) => body,
};

/** POSTs `body` with the given content-encoding over node:http (fetch and supertest would re-encode or re-label). */
function post(url: string, encoding: string, body: Buffer): Promise<{ status: number; json: { error?: { code?: string } } }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: hostname, port, method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json', 'content-encoding': encoding, 'content-length': body.length } },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) as { error?: { code?: string } } }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('request bodies in each content coding', () => {
  const { up, logs, track } = useUpstreams();

  it.each(Object.keys(ENCODERS))('a body sent with content-encoding %s is decoded and forwarded as JSON', async (encoding) => {
    const url = track(await nodeAdapter.start(seedOptions(up, logs)));
    const json = JSON.stringify({ model: 'gpt-4o', messages });
    const res = await post(url, encoding, ENCODERS[encoding]!(Buffer.from(json)));
    expect(res.status).toBe(200);
    expect(up.openai.requests[0]!.body).toEqual(JSON.parse(json));
  });

  it('a coding named like a property every object has (constructor, toString) is an unsupported one: 415, no upstream call', async () => {
    const url = track(await nodeAdapter.start(seedOptions(up, logs)));
    for (const encoding of ['constructor', 'toString', '__proto__']) {
      const res = await post(url, encoding, Buffer.from(JSON.stringify({ model: 'gpt-4o', messages })));
      expect([encoding, res.status, res.json.error?.code]).toEqual([encoding, 415, 'unsupported_media_type']);
    }
    expect(up.openai.requests).toHaveLength(0);
  });

  it('reads a body that host middleware in front paused (req.pause()) instead of waiting for it forever', async () => {
    const app = express();
    app.use((req, _res, next) => {
      req.pause();
      setImmediate(next);
    });
    app.use(fallbackMiddleware(seedOptions(up, logs)));
    const url = track(await listen(createServer(app)));
    const res = await post(url, 'identity', Buffer.from(JSON.stringify({ model: 'gpt-4o', messages })));
    expect(res.status).toBe(200);
    expect((await nextLog(logs)).status).toBe(200);
  });
});

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const completion = (content: string) =>
  JSON.stringify({
    id: 'chatcmpl-raw', object: 'chat.completion', created: 1, model: 'gpt-4o',
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop', logprobs: null }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  });

describe('upstream bodies in each content coding', () => {
  let handler: Handler;
  let upstream: Server;
  let app: RunningApp;
  const { up, logs } = useUpstreams();
  let options: SwitchyardOptions;

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      req.resume();
      req.on('end', () => handler(req, res));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`;
    options = {
      virtualKeys: {
        raw: { provider: 'openai', api_key: 'sk-raw', custom_host: upstreamUrl },
        'azure-prod': { provider: 'azure-openai', api_key: 'az', custom_host: up.azure.baseURL, deployments: { 'gpt-4o': 'gpt4o-prod' } },
      },
      config: { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'raw' }, { virtual_key: 'azure-prod' }] },
      configs: { 'raw-only': { strategy: { mode: 'single' }, targets: [{ virtual_key: 'raw' }] } },
      onLog: (e) => logs.push(e),
    };
    app = await nodeAdapter.start(options);
  });
  afterAll(async () => {
    await app.close();
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
  });
  const client = (configId?: string) =>
    new OpenAI({ apiKey: 'unused', baseURL: `${app.url}/v1`, maxRetries: 0, defaultHeaders: configId ? { 'x-switchyard-config': configId } : {} });

  it.each(Object.keys(ENCODERS))('a completion the upstream sent as %s reaches the client decoded, and its usage is logged', async (encoding) => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': encoding });
      res.end(ENCODERS[encoding]!(Buffer.from(completion(`sent as ${encoding}`))));
    };
    const res = await client().chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
    expect(res.data.choices[0]!.message.content).toBe(`sent as ${encoding}`);
    expect(res.response.headers.get('content-encoding')).toBeNull();
    const log = await nextLog(logs);
    expect([log.attempts.length, log.usage?.total_tokens]).toEqual([1, 2]);
  });

  it('serves an event stream labelled content-encoding: identity (no coding), without falling back', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'content-encoding': 'identity' });
      res.end(`data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [{ index: 0, delta: { content: 'plain' }, finish_reason: 'stop' }] })}\n\ndata: [DONE]\n\n`);
    };
    const got: string[] = [];
    for await (const chunk of await client().chat.completions.create({ model: 'gpt-4o', messages, stream: true })) got.push(chunk.choices[0]?.delta.content ?? '');
    expect(got).toEqual(['plain']);
    expect((await nextLog(logs)).attempts.map((a) => [a.provider, a.status])).toEqual([['openai', 200]]);
  });

  it('measures a brotli error body as decoded: one that inflates past the cap is dropped, not passed on', async () => {
    const packed = brotliCompressSync(`{"error":{"message":"${'y'.repeat(3 * 1024 * 1024)}"}}`);
    handler = (_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json', 'content-encoding': 'br' });
      res.end(packed);
    };
    const err = (await client('raw-only').chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)) as APIError;
    expect([err.status, err.code, packed.length < 64 * 1024]).toEqual([503, 'upstream_error_too_large', true]);
  });
});

describe("the in-process client's stream", () => {
  const { up, logs } = useUpstreams();

  it('delivers a long stream whole to a reader slower than the upstream (backpressure pauses, then resumes)', async () => {
    // About 1.6 MB, written at once: far more than the Readable's buffer, so the upstream is paused and resumed.
    up.openai.enqueue(replies.stream({ chunks: 200, chunkBytes: 8 * 1024 }));
    const client = createFallbackClient(seedOptions(up, logs));
    let count = 0;
    for await (const chunk of await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true })) {
      if (chunk.choices[0]?.delta.content) count++;
      await new Promise((r) => setImmediate(r));
    }
    expect(count).toBe(200);
    expect((await nextLog(logs)).status).toBe(200);
  });

  it('names a transport failure mid-stream as such, not as a stream that ended without [DONE]', async () => {
    up.openai.enqueue(replies.stream({ chunks: 5, cutAfter: 2 }));
    const client = createFallbackClient(seedOptions(up, logs));
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    const err = await (async () => {
      for await (const _ of stream);
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FallbackRequestError);
    const message = (err as FallbackRequestError).message;
    expect([(err as FallbackRequestError).code, message]).toEqual(['stream_interrupted', expect.stringMatching(/after the response had started \((?!ENDED_WITHOUT_DONE|ERR_STREAM_PREMATURE_CLOSE)[A-Z_]+\)/)]);
    const log: LogEvent = await nextLog(logs);
    expect(message).toContain(log.attempts[0]!.error!.message);
  });
});
