/**
 * A host's span processor that throws (its own bug, or an exporter's) must not break a request, nor leave the other
 * spans of the request open: its own file, as the tracer provider is registered globally for the worker.
 */
import { createServer } from 'node:http';
import { resolve } from 'node:path';
import express from 'express';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { LogEvent } from '@switchyard/core';
import { fallbackMiddleware } from '@switchyard/express';
import { replies } from '@switchyard/testing';
import { expressAdapter, listen, type RunningApp } from '../../e2e/src/support/adapters';
import { messages, sdk, seedOptions, startUpstreams, until, type Upstreams } from '../../e2e/src/support/fixture';

interface OtelApi {
  trace: { setGlobalTracerProvider(provider: unknown): boolean; disable(): void };
  SpanKind: { CLIENT: number };
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const api = require(require.resolve('@opentelemetry/api', { paths: [resolve(__dirname, '../../core')] })) as OtelApi;

/** Throws where told: on an attempt span's start, or on the end of the spans `failEnd` picks. */
class FaultyProcessor implements SpanProcessor {
  failStart = false;
  failEnd: (span: ReadableSpan) => boolean = () => false;
  onStart(span: { kind: number }): void {
    if (this.failStart && span.kind === api.SpanKind.CLIENT) throw new Error('a span processor failed on start');
  }
  onEnd(span: ReadableSpan): void {
    if (this.failEnd(span)) throw new Error('a span processor failed on end');
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

describe('OpenTelemetry with a span processor that throws', () => {
  let up: Upstreams;
  let app: RunningApp;
  const logs: LogEvent[] = [];
  const exporter = new InMemorySpanExporter();
  const faulty = new FaultyProcessor();
  const names = () => exporter.getFinishedSpans().map((s) => s.name).sort();

  beforeAll(async () => {
    // The exporter's processor first: the SDK calls each in turn, so it has the span before the faulty one throws.
    expect(api.trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter), faulty] }))).toBe(true);
    up = await startUpstreams();
    app = await expressAdapter.start(seedOptions(up, logs, { config: { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] } }));
  });
  afterAll(async () => {
    api.trace.disable();
    await app.close();
    await up.close();
  });
  beforeEach(() => {
    exporter.reset();
    logs.length = 0;
    faulty.failStart = false;
    faulty.failEnd = () => false;
  });

  it('serves and falls back when an attempt span cannot start, which then has none', async () => {
    faulty.failStart = true;
    up.openai.enqueue(replies.rateLimited());
    const completion = await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages });
    expect(completion.choices[0]!.message.content).toBe('Hello from azure');
    await until(() => logs.length === 1);
    expect(logs[0]!.attempts.map((a) => a.status)).toEqual([429, 200]);
    expect(names()).toEqual(['switchyard chat gpt-4o']);
  });

  it("ends the request span and every other attempt's when one attempt span's end throws", async () => {
    faulty.failEnd = (span) => span.attributes['http.response.status_code'] === 429 && span.name === 'chat gpt-4o';
    up.openai.enqueue(replies.rateLimited());
    await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages });
    await until(() => logs.length === 1);
    // The 429 attempt's span reached the exporter before the processor after it threw; the others ended all the same.
    expect(names()).toEqual(['chat gpt-4o', 'chat gpt4o-prod', 'switchyard chat gpt-4o']);
  });

  it('names a client leaving on its attempt span without marking the provider call failed', async () => {
    up.openai.enqueue(replies.stream({ chunks: 20, intervalMs: 20 }));
    const stream = await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    for await (const _chunk of stream) break;
    await until(() => logs.length === 1);
    expect(logs[0]!.status).toBe(499);
    await until(() => exporter.getFinishedSpans().length === 2);
    const attempt = exporter.getFinishedSpans().find((s) => s.name === 'chat gpt-4o')!;
    expect([attempt.attributes['error.type'], attempt.status.code]).toEqual(['client_closed', 0]);
    // The request span too: named by the client leaving (not its 499), and no failure of this service.
    const request = exporter.getFinishedSpans().find((s) => s.name === 'switchyard chat gpt-4o')!;
    expect([request.attributes['error.type'], request.attributes['http.response.status_code'], request.status.code]).toEqual(['client_closed', 499, 0]);
  });

  it('names the host answering first (its own timeout) on the attempt span without marking the provider call failed', async () => {
    const host = express();
    host.use((_req, res, next) => {
      setTimeout(() => res.headersSent || res.status(503).json({ error: { message: 'The app timed out.' } }), 100);
      next();
    });
    host.use(fallbackMiddleware(seedOptions(up, logs)));
    const timingOut = await listen(createServer(host));
    try {
      up.openai.enqueue({ delayMs: 1000 });
      const err = await sdk(timingOut.url).chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e);
      expect(err).toMatchObject({ status: 503 });
      await until(() => logs.length === 1);
      expect(logs[0]!.attempts.map((a) => a.error?.code)).toEqual(['host_answered']);
      await until(() => exporter.getFinishedSpans().length === 2);
      const attempt = exporter.getFinishedSpans().find((s) => s.name === 'chat gpt-4o')!;
      expect([attempt.attributes['error.type'], attempt.status.code]).toEqual(['host_answered', 0]);
    } finally {
      await timingOut.close();
    }
  });
});
