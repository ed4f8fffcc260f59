/**
 * A request the host's sampler drops (a ratio sampler's unsampled share): its own file, as the tracer provider is
 * registered globally for the worker.
 */
import { resolve } from 'node:path';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { AlwaysOffSampler, BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { replies } from '@switchyard/testing';
import { withUndiciParents } from '../../e2e/src/support/undici-parents';
import { messages, sdk, until } from '../../e2e/src/support/fixture';

interface OtelApi {
  trace: { setGlobalTracerProvider(provider: unknown): boolean; getActiveSpan(): { spanContext(): object } | undefined; disable(): void };
  context: { setGlobalContextManager(manager: unknown): boolean; disable(): void };
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const api = require(require.resolve('@opentelemetry/api', { paths: [resolve(__dirname, '../../core')] })) as OtelApi;

it('starts only the request span for a request the sampler drops, which still gives the log its trace id and stays the parent of the upstream call', async () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ sampler: new AlwaysOffSampler(), spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const started: string[] = [];
  const getTracer = provider.getTracer.bind(provider);
  provider.getTracer = (...args: Parameters<typeof getTracer>) => {
    const tracer = getTracer(...args);
    const startSpan = tracer.startSpan.bind(tracer);
    tracer.startSpan = (name, ...rest) => {
      started.push(name);
      return startSpan(name, ...rest);
    };
    return tracer;
  };
  expect(api.trace.setGlobalTracerProvider(provider)).toBe(true);
  expect(api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())).toBe(true);
  // Where an HTTP client instrumentation (undici's) reads the parent of its span.
  try {
    await withUndiciParents(() => api.trace.getActiveSpan()?.spanContext() ?? 'none', async ({ up, app, logs, parents }) => {
      up.openai.enqueue(replies.rateLimited());
      const caller = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7' };
      // The caller did not sample it (flags 00): neither are the calls made for it.
      const res = await sdk(app.url, { traceparent: `00-${caller.traceId}-${caller.spanId}-00` }).chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
      expect(res.data.choices[0]!.message.content).toBe('Hello from azure');
      await until(() => logs.length === 1);
      // The attempts (429, then 200) are neither gathered nor written as spans nobody records.
      expect(started).toEqual(['switchyard chat']);
      expect(exporter.getFinishedSpans()).toEqual([]);
      expect(logs[0]!.traceId).toBe(caller.traceId);
      expect(res.response.headers.get('x-switchyard-trace-id')).toBe(caller.traceId);
      // The SDK client's own fetch in this process has no active span: Switchyard's two upstream calls are the others.
      expect(parents.filter((p) => p !== 'none')).toEqual([
        expect.objectContaining({ traceId: caller.traceId, traceFlags: 0 }),
        expect.objectContaining({ traceId: caller.traceId, traceFlags: 0 }),
      ]);
    });
  } finally {
    api.context.disable();
    api.trace.disable();
  }
});
