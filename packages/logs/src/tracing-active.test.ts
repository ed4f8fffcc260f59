/**
 * With a context manager registered (as every Node SDK setup has), the upstream call runs with its attempt's span
 * active: what an HTTP client instrumentation reads to nest its span and propagate the trace. Its own file, as the
 * tracer provider and context manager are registered globally for the worker.
 */
import { resolve } from 'node:path';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createFallbackClient, type LogEvent } from '@switchyard/core';
import { replies } from '@switchyard/testing';
import { withUndiciParents } from '../../e2e/src/support/undici-parents';
import { messages, sdk, seedOptions, startUpstreams, until } from '../../e2e/src/support/fixture';

interface OtelApi {
  trace: {
    setGlobalTracerProvider(provider: unknown): boolean;
    getActiveSpan(): { spanContext(): { spanId: string } } | undefined;
    getTracer(name: string): { startActiveSpan<T>(name: string, fn: (span: { end(): void }) => T): T };
    setSpanContext(context: unknown, spanContext: { traceId: string; spanId: string; traceFlags: number; isRemote: boolean }): unknown;
    disable(): void;
  };
  context: { setGlobalContextManager(manager: unknown): boolean; disable(): void };
  propagation: { setGlobalPropagator(propagator: unknown): boolean; disable(): void };
  SpanKind: { CLIENT: number };
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const api = require(require.resolve('@opentelemetry/api', { paths: [resolve(__dirname, '../../core')] })) as OtelApi;

const exporter = new InMemorySpanExporter();
beforeAll(() => {
  expect(api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())).toBe(true);
  expect(api.trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }))).toBe(true);
});
afterAll(() => {
  api.trace.disable();
  api.context.disable();
});
beforeEach(() => exporter.reset());

it("runs each upstream call with its attempt's span active, where undici's instrumentation reads its parent", async () => {
  // What @opentelemetry/instrumentation-undici does on this channel: the active span is its new span's parent.
  await withUndiciParents(() => api.trace.getActiveSpan()?.spanContext().spanId, async ({ up, app, parents }) => {
    up.openai.enqueue(replies.rateLimited());
    await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages });
    await until(() => exporter.getFinishedSpans().length === 3);
    const attempts = exporter.getFinishedSpans().filter((s) => s.kind === api.SpanKind.CLIENT);
    expect(attempts.map((s) => s.name)).toEqual(['chat gpt-4o', 'chat gpt4o-prod']);
    // The SDK client in this test process goes through undici too (Node's fetch): only Switchyard's calls are checked.
    expect(parents.filter((id) => id !== undefined)).toEqual(attempts.map((s) => s.spanContext().spanId));
  });
});

/** An in-process call with the caller's traceparent (flags as given), inside a host's active span of its own trace. */
async function callUnderHostSpan(flags: '00' | '01') {
  const up = await startUpstreams();
  const logs: LogEvent[] = [];
  const client = createFallbackClient(seedOptions(up, logs));
  const caller = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7' };
  try {
    // A host that starts its own trace at its edge, as many do for callers from outside.
    await api.trace.getTracer('host').startActiveSpan('host job', async (job) => {
      await client.chat.completions.create({ model: 'gpt-4o', messages }, { headers: { traceparent: `00-${caller.traceId}-${caller.spanId}-${flags}` } });
      job.end();
    });
    await until(() => logs.length === 1 && exporter.getFinishedSpans().length === 3);
  } finally {
    await up.close();
  }
  const spans = exporter.getFinishedSpans();
  return { caller, logs, job: spans.find((s) => s.name === 'host job')!, request: spans.find((s) => s.name === 'switchyard chat gpt-4o')! };
}

it("links the request span to a caller's traceparent in another trace than the host's span, whose trace id the log keeps", async () => {
  const { caller, logs, job, request } = await callUnderHostSpan('01');
  expect(request.parentSpanContext?.spanId).toBe(job.spanContext().spanId);
  expect(request.spanContext().traceId).not.toBe(caller.traceId);
  expect(logs[0]!.traceId).toBe(caller.traceId);
  expect(request.links.map((l) => [l.context.traceId, l.context.spanId, l.context.traceFlags])).toEqual([[caller.traceId, caller.spanId, 1]]);
});

it("keeps the host's active span as the parent when a W3C propagator reads the caller's traceparent of another trace, and links that", async () => {
  // What W3C's propagator (a NodeSDK's default) does with a traceparent: its span context becomes the remote parent.
  type Getter = { get(carrier: unknown, key: string): unknown };
  const w3c = {
    inject: () => undefined,
    extract: (context: unknown, carrier: unknown, getter: Getter) => {
      const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(String(getter.get(carrier, 'traceparent') ?? ''));
      return match ? api.trace.setSpanContext(context, { traceId: match[1]!, spanId: match[2]!, traceFlags: Number.parseInt(match[3]!, 16), isRemote: true }) : context;
    },
    fields: () => ['traceparent'],
  };
  expect(api.propagation.setGlobalPropagator(w3c)).toBe(true);
  try {
    // A caller that did not sample its trace: the host's does, and the link says the caller's was not.
    const { caller, logs, job, request } = await callUnderHostSpan('00');
    expect(request.parentSpanContext?.spanId).toBe(job.spanContext().spanId);
    expect(request.spanContext().traceId).toBe(job.spanContext().traceId);
    expect(request.links.map((l) => [l.context.traceId, l.context.spanId, l.context.traceFlags])).toEqual([[caller.traceId, caller.spanId, 0]]);
    expect(logs[0]!.traceId).toBe(caller.traceId);
  } finally {
    api.propagation.disable();
  }
});

it("hands the in-process caller's tracestate and baggage to the host's propagator with its traceparent, as the route does", async () => {
  const up = await startUpstreams();
  const logs: LogEvent[] = [];
  const client = createFallbackClient(seedOptions(up, logs));
  // A propagator that records what it is given to read (W3C's would keep tracestate on the context).
  const read: unknown[] = [];
  type Getter = { get(carrier: unknown, key: string): unknown };
  const propagator = {
    inject: () => undefined,
    extract: (context: unknown, carrier: unknown, getter: Getter) => {
      read.push(['traceparent', 'tracestate', 'baggage'].map((key) => getter.get(carrier, key)));
      return context;
    },
    fields: () => ['traceparent', 'tracestate', 'baggage'],
  };
  expect(api.propagation.setGlobalPropagator(propagator)).toBe(true);
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  try {
    await client.chat.completions.create({ model: 'gpt-4o', messages }, { headers: { traceparent, tracestate: 'vendor=abc,ot=th:8', baggage: 'tenant=acme' } });
    expect(read).toEqual([[traceparent, 'vendor=abc,ot=th:8', 'tenant=acme']]);
  } finally {
    api.propagation.disable();
    await up.close();
  }
});
