/**
 * A request the host's sampler drops (a ratio sampler's unsampled share): its own file, as the tracer provider is
 * registered globally for the worker.
 */
import { createServer } from 'node:http';
import { resolve } from 'node:path';
import express from 'express';
import { AlwaysOffSampler, BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { LogEvent } from '@switchyard/core';
import { fallbackMiddleware } from '@switchyard/express';
import { replies } from '@switchyard/testing';
import { listen } from '../../e2e/src/support/adapters';
import { messages, sdk, seedOptions, startUpstreams, until } from '../../e2e/src/support/fixture';

interface OtelApi {
  trace: { setGlobalTracerProvider(provider: unknown): boolean; disable(): void };
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const api = require(require.resolve('@opentelemetry/api', { paths: [resolve(__dirname, '../../core')] })) as OtelApi;

it('starts only the request span for a request the sampler drops, which still gives the log its trace id', async () => {
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
  const up = await startUpstreams();
  const logs: LogEvent[] = [];
  const host = express();
  host.use(fallbackMiddleware(seedOptions(up, logs)));
  const app = await listen(createServer(host));
  try {
    up.openai.enqueue(replies.rateLimited());
    const res = await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
    expect(res.data.choices[0]!.message.content).toBe('Hello from azure');
    await until(() => logs.length === 1);
    // The attempts (429, then 200) are neither gathered nor written as spans nobody records.
    expect(started).toEqual(['switchyard chat']);
    expect(exporter.getFinishedSpans()).toEqual([]);
    expect(logs[0]!.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(res.response.headers.get('x-switchyard-trace-id')).toBe(logs[0]!.traceId);
  } finally {
    api.trace.disable();
    await app.close();
    await up.close();
  }
});
