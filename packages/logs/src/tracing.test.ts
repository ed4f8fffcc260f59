/**
 * OpenTelemetry spans from the engine (core/src/log/tracing.ts), through real HTTP: an SDK tracer provider is
 * registered globally for this file (jest runs each file in its own worker), the official SDK sends a request with a
 * W3C traceparent, the fakes make it fall back, and the exported spans are checked against the GenAI conventions.
 */
import { createServer } from 'node:http';
import { resolve } from 'node:path';
import express from 'express';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { createFallbackClient, type LogEvent } from '@switchyard/core';
import { fallbackMiddleware } from '@switchyard/express';
import { replies } from '@switchyard/testing';
import { expressAdapter, listen, type RunningApp } from '../../e2e/src/support/adapters';
import { messages, sdk, seedOptions, startUpstreams, until, type Upstreams } from '../../e2e/src/support/fixture';

/** The copy of @opentelemetry/api that core uses: a provider must be registered through a compatible API version. */
interface OtelApi {
  trace: { setGlobalTracerProvider(provider: unknown): boolean; disable(): void };
  SpanKind: { CLIENT: number };
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const api = require(require.resolve('@opentelemetry/api', { paths: [resolve(__dirname, '../../core')] })) as OtelApi;
const { SpanKind } = api;

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_SPAN = '00f067aa0ba902b7';
const ms = (t: [number, number]) => t[0] * 1000 + t[1] / 1e6;

describe('OpenTelemetry spans', () => {
  let up: Upstreams;
  let app: RunningApp;
  const logs: LogEvent[] = [];
  const exporter = new InMemorySpanExporter();
  let registered = false;
  /** Registers an SDK (once) for the tests that read spans: each of them runs alone too (`-t`). */
  const registerSdk = () => {
    if (!registered) registered = api.trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
    expect(registered).toBe(true);
  };

  beforeAll(async () => {
    up = await startUpstreams();
    app = await expressAdapter.start(seedOptions(up, logs, { config: { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] } }));
  });
  afterAll(async () => {
    api.trace.disable();
    registered = false;
    await app.close();
    await up.close();
  });
  beforeEach(() => {
    exporter.reset();
    logs.length = 0;
  });

  it('serves and logs requests while no SDK is registered (the API is a no-op)', async () => {
    const completion = await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages });
    expect(completion.choices[0]!.message.content).toBe('Hello from openai');
    await until(() => logs.length === 1);
    expect(logs[0]!.status).toBe(200);
  });

  it('writes a request span and one span per attempt, under the caller\'s traceparent, with GenAI attributes', async () => {
    registerSdk();
    up.openai.enqueue(replies.rateLimited());
    up.azure.enqueue({ model: 'gpt-4o-2024-08-06' }); // the snapshot the deployment runs
    await sdk(app.url, { traceparent: `00-${TRACE_ID}-${PARENT_SPAN}-01` }).chat.completions.create({ model: 'gpt-4o', messages, n: 1 });
    await until(() => logs.length === 1);
    const event = logs[0]!;
    expect(event.traceId).toBe(TRACE_ID);

    const spans = exporter.getFinishedSpans();
    const request = spans.find((s) => s.name === 'switchyard chat gpt-4o') as ReadableSpan;
    const attempts = spans.filter((s) => s !== request).sort((a, b) => ms(a.startTime) - ms(b.startTime));
    expect(spans).toHaveLength(3);
    expect(request.spanContext().traceId).toBe(TRACE_ID);
    expect(request.parentSpanContext?.spanId).toBe(PARENT_SPAN);
    expect(request.kind).toBe(0); // INTERNAL
    expect(request.attributes).toMatchObject({
      'switchyard.request.model': 'gpt-4o',
      'switchyard.provider.name': 'azure.ai.openai',
      'switchyard.response.model': 'gpt-4o-2024-08-06',
      'switchyard.usage.input_tokens': 10,
      'switchyard.usage.output_tokens': 5,
      'http.response.status_code': 200,
      'switchyard.request_id': event.requestId,
      'switchyard.fallback': true,
      'switchyard.attempts': 2,
      // The caller's trace id, as the log keeps it; a JSON answer; the price the log gives.
      'switchyard.trace_id': TRACE_ID,
      'switchyard.stream': false,
      'switchyard.cost_usd': event.costUsd!,
    });
    expect(event.costUsd).toBeGreaterThan(0);
    // Its parent is the caller's traceparent, in the same trace: nothing to link.
    expect(request.links).toEqual([]);
    // The attempts are the model calls: a backend that counts spans with GenAI attributes (calls, latency by
    // provider, usage) must not count the request again, as an Azure call of 2 attempts' time.
    expect(Object.keys(request.attributes).filter((key) => key.startsWith('gen_ai.'))).toEqual([]);

    expect(attempts.map((s) => s.name)).toEqual(['chat gpt-4o', 'chat gpt4o-prod']);
    for (const span of attempts) {
      expect(span.kind).toBe(2); // CLIENT
      expect(span.spanContext().traceId).toBe(TRACE_ID);
      expect(span.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
      expect(ms(span.startTime)).toBeGreaterThanOrEqual(ms(request.startTime) - 1);
      expect(ms(span.endTime)).toBeLessThanOrEqual(ms(request.endTime) + 1);
    }
    expect(attempts[0]!.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'openai', 'gen_ai.system': 'openai', 'gen_ai.request.model': 'gpt-4o',
      'http.response.status_code': 429, 'error.type': '429',
      // Which target and key made the call, as the log's attempt says.
      'switchyard.target': 'targets[0]', 'switchyard.virtual_key': 'openai-prod',
    });
    expect(attempts[0]!.status.code).toBe(2); // ERROR
    expect(attempts[1]!.attributes).toMatchObject({
      'gen_ai.provider.name': 'azure.ai.openai', 'gen_ai.system': 'az.ai.openai', 'http.response.status_code': 200, 'gen_ai.usage.input_tokens': 10, 'gen_ai.usage.output_tokens': 5,
      'gen_ai.response.model': 'gpt-4o-2024-08-06', 'server.address': '127.0.0.1', 'server.port': Number(new URL(up.azure.baseURL).port),
    });
    expect(attempts[1]!.attributes['error.type']).toBeUndefined();
    // Left out when they say nothing: no prompt tokens read from the cache, one choice (the default).
    expect(attempts[1]!.attributes['gen_ai.usage.cache_read.input_tokens']).toBeUndefined();
    expect(attempts[1]!.attributes['gen_ai.request.choice.count']).toBeUndefined();
    expect(ms(attempts[1]!.startTime)).toBeGreaterThanOrEqual(ms(attempts[0]!.endTime) - 1);
  });

  it("records each attempt's request settings as sent (override_params included) and the served response's id and finish reasons", async () => {
    registerSdk();
    const overridden = await listen(
      createServer(
        express().use(
          fallbackMiddleware(
            seedOptions(up, logs, {
              config: { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod', override_params: { temperature: 0, stop: ['END', 'STOP'] } }] },
            }),
          ),
        ),
      ),
    );
    try {
      up.openai.enqueue(replies.rateLimited());
      const params = { model: 'gpt-4o', messages, temperature: 0.2, top_p: 0.9, max_completion_tokens: 50, stop: 'END', seed: 7, response_format: { type: 'json_object' as const }, service_tier: 'flex' as const };
      const completion = await sdk(overridden.url).chat.completions.create(params);
      await until(() => logs.length === 1);
      const [openai, azure] = exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.CLIENT).sort((a, b) => ms(a.startTime) - ms(b.startTime));
      const asked = {
        'gen_ai.request.top_p': 0.9, 'gen_ai.request.max_tokens': 50, 'gen_ai.request.seed': 7, 'gen_ai.output.type': 'json',
      };
      expect(openai!.attributes).toMatchObject({ ...asked, 'gen_ai.request.temperature': 0.2, 'gen_ai.request.stop_sequences': ['END'], 'openai.request.service_tier': 'flex' });
      // The 429 produced no response: no id or finish reason on it.
      expect([openai!.attributes['gen_ai.response.id'], openai!.attributes['gen_ai.response.finish_reasons']]).toEqual([undefined, undefined]);
      // Azure's attempt sent the target's override_params; OpenAI's service tier is not Azure's setting.
      expect(azure!.attributes).toMatchObject({ ...asked, 'gen_ai.request.temperature': 0, 'gen_ai.request.stop_sequences': ['END', 'STOP'] });
      expect(azure!.attributes['openai.request.service_tier']).toBeUndefined();
      expect(azure!.attributes['gen_ai.request.stream']).toBeUndefined(); // said only of a streamed request
      expect([azure!.attributes['gen_ai.response.id'], azure!.attributes['gen_ai.response.finish_reasons']]).toEqual([completion.id, ['stop']]);
      expect(completion.id).toMatch(/^chatcmpl-/);

      exporter.reset();
      logs.length = 0;
      // A stream's id and finish reasons come from its last chunks (Azure's first chunk, the prompt filter's, has no id).
      up.openai.enqueue(replies.rateLimited());
      const stream = await sdk(overridden.url).chat.completions.create({ model: 'gpt-4o', messages, stream: true, n: 2 });
      let streamId = '';
      for await (const chunk of stream) if (chunk.id !== '') streamId = chunk.id;
      await until(() => logs.length === 1);
      const served = exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.CLIENT).find((s) => s.attributes['gen_ai.provider.name'] === 'azure.ai.openai')!;
      expect(served.attributes).toMatchObject({ 'gen_ai.request.choice.count': 2, 'gen_ai.response.id': streamId, 'gen_ai.response.finish_reasons': ['stop'] });
      expect(streamId).toMatch(/^chatcmpl-/);
    } finally {
      await overridden.close();
      exporter.reset();
      logs.length = 0;
    }
  });

  it('names the targets a circuit breaker skipped on the request span; they have no attempt span', async () => {
    registerSdk();
    exporter.reset();
    logs.length = 0;
    const breaker = await expressAdapter.start(
      seedOptions(up, logs, { config: { strategy: { mode: 'fallback', cb_config: { failure_threshold: 1, cooldown_interval: 30_000 } }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] } }),
    );
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      up.openai.enqueue({ status: 503 });
      await sdk(breaker.url).chat.completions.create({ model: 'gpt-4o', messages }); // opens targets[0]
      await sdk(breaker.url).chat.completions.create({ model: 'gpt-4o', messages });
      await until(() => logs.length === 2);
      const requests = exporter.getFinishedSpans().filter((s) => s.name.startsWith('switchyard'));
      expect(requests.map((s) => s.attributes['switchyard.circuit_open_targets'])).toEqual([undefined, ['targets[0]']]);
      expect(requests[1]!.attributes).toMatchObject({ 'switchyard.fallback': true, 'switchyard.attempts': 1 });
      const clients = exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.CLIENT);
      // 503 and Azure for the first request, Azure alone for the second.
      expect(clients.map((s) => s.attributes['gen_ai.provider.name'])).toEqual(['openai', 'azure.ai.openai', 'azure.ai.openai']);
    } finally {
      warn.mockRestore();
      await breaker.close();
      exporter.reset();
      logs.length = 0;
    }
  });

  it("names a 429 by its status when the fallback target had no deployment, and marks no attempt as serving", async () => {
    registerSdk();
    exporter.reset();
    logs.length = 0;
    up.openai.enqueue(replies.rateLimited());
    await sdk(app.url).chat.completions.create({ model: 'o3', messages }).catch(() => undefined);
    await until(() => logs.length === 1);
    expect(logs[0]!.attempts.map((a) => a.status ?? a.error?.code)).toEqual([429, 'model_not_deployed']);
    const spans = exporter.getFinishedSpans();
    const request = spans.find((s) => s.name.startsWith('switchyard'))!;
    expect([request.attributes['error.type'], request.attributes['http.response.status_code']]).toEqual(['429', 429]);
    expect(request.status.code).toBe(2); // ERROR: every target it could try rate-limited
    // Upstream attempts, as the x-switchyard-attempts header counts them.
    expect(request.attributes['switchyard.attempts']).toBe(1);
    for (const span of spans) expect(span.attributes['gen_ai.response.model']).toBeUndefined();
    // The target that could not be tried called no upstream: one client span, OpenAI's.
    expect(spans.filter((s) => s.kind === SpanKind.CLIENT).map((s) => s.attributes['gen_ai.provider.name'])).toEqual(['openai']);
    exporter.reset();
    logs.length = 0;
  });

  it("names a 502 by the error the client got, not by a fallback target that had no deployment", async () => {
    registerSdk();
    up.openai.enqueue({ reset: true });
    const err = (await sdk(app.url).chat.completions.create({ model: 'o3', messages }).catch((e: unknown) => e)) as { status: number };
    expect(err.status).toBe(502);
    await until(() => logs.length === 1);
    expect(logs[0]!.attempts.map((a) => a.error?.code)).toEqual(['upstream_unreachable', 'model_not_deployed']);
    const request = exporter.getFinishedSpans().find((s) => s.name.startsWith('switchyard'))!;
    expect([request.attributes['error.type'], request.attributes['http.response.status_code']]).toEqual(['upstream_unreachable', 502]);
    exporter.reset();
    logs.length = 0;
  });

  it('writes a span for a request refused before the engine ran (a form body), as for its log event', async () => {
    registerSdk();
    const res = await fetch(`${app.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', traceparent: `00-${TRACE_ID}-${PARENT_SPAN}-01` },
      body: 'model=gpt-4o',
    });
    expect(res.status).toBe(400);
    await until(() => logs.length === 1);
    const request = exporter.getFinishedSpans().find((s) => s.name.startsWith('switchyard'))!;
    expect([request.spanContext().traceId, request.attributes['error.type'], request.attributes['http.response.status_code']]).toEqual([TRACE_ID, 'invalid_json', 400]);
    expect(logs[0]!.traceId).toBe(TRACE_ID);
    exporter.reset();
    logs.length = 0;
  });

  it("records the prompt tokens the provider's cache served on the serving attempt", async () => {
    registerSdk();
    const usage = { prompt_tokens: 1200, completion_tokens: 5, total_tokens: 1205, prompt_tokens_details: { cached_tokens: 1024 } };
    up.openai.enqueue({
      body: { id: 'chatcmpl-cached', object: 'chat.completion', created: 0, model: 'gpt-4o', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }], usage },
    });
    await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages });
    await until(() => logs.length === 1 && exporter.getFinishedSpans().length === 2);
    const span = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.CLIENT)!;
    expect(span.attributes).toMatchObject({ 'gen_ai.usage.input_tokens': 1200, 'gen_ai.usage.cache_read.input_tokens': 1024 });
    exporter.reset();
    logs.length = 0;
  });

  it('times a streamed attempt until its stream ended, in the log event and on its span', async () => {
    registerSdk();
    up.openai.enqueue(replies.stream({ chunks: 5, intervalMs: 40 }));
    const stream = await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    for await (const _ of stream);
    await until(() => logs.length === 1);
    // Four gaps of 40 ms at least between the first chunk and the last: not just the time to the headers.
    expect(logs[0]!.attempts[0]!.durationMs).toBeGreaterThanOrEqual(150);
    const span = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.CLIENT)!;
    expect(ms(span.endTime) - ms(span.startTime)).toBeGreaterThanOrEqual(150);
    expect(span.attributes['gen_ai.request.stream']).toBe(true);
    const request = exporter.getFinishedSpans().find((s) => s.kind !== SpanKind.CLIENT)!;
    expect(request.attributes['switchyard.stream']).toBe(true);
    exporter.reset();
    logs.length = 0;
  });

  it("keeps attempt spans inside their request span on the SDK's clock, when the wall clock moved (NTP step, host resumed)", async () => {
    registerSdk();
    const realNow = Date.now.bind(Date);
    // The wall clock a minute ahead of the monotonic one: the SDK offsets performance times by it, as the spans must.
    const ahead = jest.spyOn(Date, 'now').mockImplementation(() => realNow() + 60_000);
    // Many requests: left to the SDK, each span's offset came from its own whole-millisecond Date.now(), and about
    // half the attempts started before or ended after their request span by up to a millisecond.
    const requests = 20;
    try {
      for (let i = 0; i < requests; i++) {
        up.openai.enqueue(replies.rateLimited());
        await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages });
      }
      await until(() => logs.length === requests && exporter.getFinishedSpans().length === 3 * requests);
    } finally {
      ahead.mockRestore();
    }
    const spans = exporter.getFinishedSpans();
    const ns = (t: [number, number]) => BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);
    for (const request of spans.filter((s) => s.kind !== SpanKind.CLIENT)) {
      const attempts = spans.filter((s) => s.parentSpanContext?.spanId === request.spanContext().spanId);
      expect(attempts).toHaveLength(2);
      // On the wall clock a minute ahead, as the SDK's own times would be.
      expect(Math.abs(ms(request.startTime) - (Date.now() + 60_000))).toBeLessThan(30_000);
      for (const attempt of attempts) {
        expect(ns(attempt.startTime) >= ns(request.startTime)).toBe(true);
        expect(ns(attempt.endTime) <= ns(request.endTime)).toBe(true);
      }
    }
    exporter.reset();
    logs.length = 0;
  });

  it('marks a stream broken after its start as an error, and leaves the caller\'s own 4xx and leaving unmarked', async () => {
    registerSdk();
    up.openai.enqueue(replies.stream({ chunks: 5, cutAfter: 2 }));
    const broken = await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    await (async () => {
      for await (const _ of broken);
    })().catch(() => undefined);
    await until(() => logs.length === 1);
    const request = () => exporter.getFinishedSpans().find((s) => s.name.startsWith('switchyard'))!;
    // The client got 200 and then an error: the SDK threw, so the request failed.
    expect([request().attributes['http.response.status_code'], request().attributes['error.type'], request().status.code]).toEqual([200, 'stream_interrupted', 2]);
    exporter.reset();
    // Switchyard's own refusal of the caller's body: named by its error code, not this service failing (as an HTTP
    // server span).
    await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages: [] }).catch(() => undefined);
    await until(() => logs.length === 2);
    expect([request().attributes['error.type'], request().status.code]).toEqual(['invalid_request', 0]);
    exporter.reset();
    logs.length = 0;
  });

  it("counts a target's retries on their attempt spans (http.request.resend_count), so a backend can tell a retry from another call", async () => {
    registerSdk();
    const client = createFallbackClient(seedOptions(up, logs, { config: { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'openai-prod', retry: { attempts: 2, use_retry_after_header: true } }, { virtual_key: 'azure-prod' }] } }));
    for (let i = 0; i < 3; i++) up.openai.enqueue(replies.rateLimited(0));
    await client.chat.completions.create({ model: 'gpt-4o', messages });
    await until(() => logs.length === 1);
    const attempts = exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.CLIENT).sort((a, b) => ms(a.startTime) - ms(b.startTime));
    expect(attempts.map((s) => [s.attributes['gen_ai.provider.name'], s.attributes['http.request.resend_count']])).toEqual([
      ['openai', undefined],
      ['openai', 1],
      ['openai', 2],
      ['azure.ai.openai', undefined],
    ]);
  });

  it('records the other request settings as the conventions name them: max_completion_tokens over max_tokens, penalties, a text or json_schema output, no "auto" tier', async () => {
    registerSdk();
    await sdk(app.url).chat.completions.create({
      model: 'gpt-4o', messages, max_tokens: 100, max_completion_tokens: 50, frequency_penalty: 0.5, presence_penalty: -0.5, response_format: { type: 'text' }, service_tier: 'auto',
    });
    await sdk(app.url).chat.completions.create({
      model: 'gpt-4o', messages, response_format: { type: 'json_schema', json_schema: { name: 'answer', schema: { type: 'object' } } },
    });
    await until(() => logs.length === 2 && exporter.getFinishedSpans().length === 4);
    const [first, second] = exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.CLIENT).sort((a, b) => ms(a.startTime) - ms(b.startTime));
    expect(first!.attributes).toMatchObject({
      'gen_ai.request.max_tokens': 50, 'gen_ai.request.frequency_penalty': 0.5, 'gen_ai.request.presence_penalty': -0.5, 'gen_ai.output.type': 'text',
    });
    // "auto" is the default tier: it says nothing.
    expect(first!.attributes['openai.request.service_tier']).toBeUndefined();
    // Structured output by schema is "json" too.
    expect(second!.attributes['gen_ai.output.type']).toBe('json');
  });

  it("records OpenAI's fingerprint and tier, each choice's finish reason by its index, and not OpenAI's fields on an Azure answer", async () => {
    registerSdk();
    const usage = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };
    const choice = (index: number, reason: string) => ({ index, message: { role: 'assistant', content: 'x' }, finish_reason: reason });
    // Choices listed out of their index order: the reasons go by index.
    const body = { id: 'chatcmpl-two', object: 'chat.completion', created: 0, model: 'gpt-4o', system_fingerprint: 'fp_abc', service_tier: 'default', choices: [choice(1, 'length'), choice(0, 'stop')], usage };
    up.openai.enqueue({ body });
    await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages, n: 2 });
    await until(() => logs.length === 1 && exporter.getFinishedSpans().length === 2);
    const openai = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.CLIENT)!;
    expect(openai.attributes).toMatchObject({
      'gen_ai.response.id': 'chatcmpl-two', 'gen_ai.response.finish_reasons': ['stop', 'length'], 'openai.response.system_fingerprint': 'fp_abc', 'openai.response.service_tier': 'default',
    });
    exporter.reset();
    logs.length = 0;
    // Azure's answer with the same fields: they are OpenAI's attributes, not Azure's.
    up.openai.enqueue(replies.rateLimited());
    up.azure.enqueue({ body: { ...body, id: 'chatcmpl-azure', choices: [choice(0, 'stop')] } });
    await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages });
    await until(() => logs.length === 1 && exporter.getFinishedSpans().length === 3);
    const azure = exporter.getFinishedSpans().find((s) => s.attributes['gen_ai.provider.name'] === 'azure.ai.openai')!;
    expect(azure.attributes['gen_ai.response.id']).toBe('chatcmpl-azure');
    expect([azure.attributes['openai.response.system_fingerprint'], azure.attributes['openai.response.service_tier']]).toEqual([undefined, undefined]);
  });

  it("keeps a stream's id when its last event has an empty one (Azure's content filter results)", async () => {
    registerSdk();
    const chunk = (id: string, extra: object) => `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: 0, model: 'gpt-4o', ...extra })}\n\n`;
    const sse =
      chunk('', { choices: [], prompt_filter_results: [{ prompt_index: 0, content_filter_results: {} }] }) +
      chunk('chatcmpl-filtered', { choices: [{ index: 0, delta: { role: 'assistant', content: 'hi' }, finish_reason: null }] }) +
      chunk('chatcmpl-filtered', { choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }) +
      // Azure's asynchronous filter: the results of the last content come after it, in a chunk with no id.
      chunk('', { choices: [{ index: 0, delta: {}, finish_reason: null, content_filter_results: {}, content_filter_offsets: { check_offset: 0, start_offset: 0, end_offset: 2 } }] }) +
      'data: [DONE]\n\n';
    up.openai.enqueue({ headers: { 'content-type': 'text/event-stream' }, body: sse });
    const stream = await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    for await (const _ of stream);
    await until(() => logs.length === 1 && exporter.getFinishedSpans().length === 2);
    const span = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.CLIENT)!;
    expect(span.attributes).toMatchObject({ 'gen_ai.response.id': 'chatcmpl-filtered', 'gen_ai.response.finish_reasons': ['stop'] });
  });

  it("names an upstream's 400 by its status on the attempt span, a failed call; the caller's mistake leaves the request span unmarked", async () => {
    registerSdk();
    up.openai.enqueue({ status: 400 });
    const err = (await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)) as { status: number };
    expect(err.status).toBe(400);
    await until(() => logs.length === 1 && exporter.getFinishedSpans().length === 2);
    const attempt = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.CLIENT)!;
    expect([attempt.attributes['http.response.status_code'], attempt.attributes['error.type'], attempt.status.code]).toEqual([400, '400', 2]);
    const request = exporter.getFinishedSpans().find((s) => s.kind !== SpanKind.CLIENT)!;
    expect([request.attributes['error.type'], request.status.code]).toEqual(['400', 0]);
  });

  it("records nothing of a request whose caller did not sample it (traceparent flags 00), with the SDK's default parent-based sampler", async () => {
    registerSdk();
    const res = await sdk(app.url, { traceparent: `00-${TRACE_ID}-${PARENT_SPAN}-00` }).chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
    expect(res.response.headers.get('x-switchyard-trace-id')).toBe(TRACE_ID);
    await until(() => logs.length === 1);
    expect(logs[0]!.traceId).toBe(TRACE_ID);
    expect(exporter.getFinishedSpans()).toEqual([]);
  });

  it('puts the config id a request named on its span, and the port an origin without one implies on its attempt', async () => {
    registerSdk();
    const named = await expressAdapter.start(
      seedOptions(up, logs, {
        // Nothing listens on port 80 of the loopback: the call fails and Azure serves.
        virtualKeys: { ...seedOptions(up, logs).virtualKeys, 'openai-default-port': { provider: 'openai', api_key: 'sk-x', custom_host: 'http://127.0.0.1/v1' } },
        configs: { 'default-port-first': { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'openai-default-port' }, { virtual_key: 'azure-prod' }] } },
      }),
    );
    try {
      await sdk(named.url, { 'x-switchyard-config': 'default-port-first' }).chat.completions.create({ model: 'gpt-4o', messages });
      await until(() => logs.length === 1 && exporter.getFinishedSpans().length === 3);
      const spans = exporter.getFinishedSpans();
      expect(spans.find((s) => s.kind !== SpanKind.CLIENT)!.attributes['switchyard.config_id']).toBe('default-port-first');
      const first = spans.find((s) => s.attributes['switchyard.virtual_key'] === 'openai-default-port')!;
      expect([first.attributes['server.address'], first.attributes['server.port'], first.attributes['error.type']]).toEqual(['127.0.0.1', 80, 'upstream_unreachable']);
      exporter.reset();
      logs.length = 0;
      // A request that named no config has no config id on its span.
      await sdk(named.url).chat.completions.create({ model: 'gpt-4o', messages });
      await until(() => logs.length === 1 && exporter.getFinishedSpans().length === 2);
      expect(exporter.getFinishedSpans().find((s) => s.kind !== SpanKind.CLIENT)!.attributes['switchyard.config_id']).toBeUndefined();
    } finally {
      await named.close();
    }
  });

  it('marks a request that failed everywhere as an error, and stops once the SDK is unregistered', async () => {
    registerSdk();
    up.openai.enqueue(replies.rateLimited());
    up.azure.enqueue(replies.rateLimited());
    await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages }).catch(() => undefined);
    await until(() => logs.length === 1);
    const request = exporter.getFinishedSpans().find((s) => s.name.startsWith('switchyard'))!;
    expect([request.attributes['error.type'], request.status.code, request.attributes['http.response.status_code']]).toEqual(['429', 2, 429]);
    // The last target answered, but no model produced a response: the span names none.
    expect([request.attributes['switchyard.target'], request.attributes['switchyard.response.model']]).toEqual(['targets[1]', undefined]);
    // No trace id or traceparent came in: the log event takes its span's, so a trace leads to its log and back.
    expect(logs[0]!.traceId).toBe(request.spanContext().traceId);
    // OpenAI rate-limited, then Azure refusing the operator's key (a client's key never goes upstream): a failure too.
    exporter.reset();
    up.openai.enqueue(replies.rateLimited());
    up.azure.enqueue({ status: 401 });
    await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages }).catch(() => undefined);
    await until(() => logs.length === 2);
    const refused = exporter.getFinishedSpans().find((s) => s.name.startsWith('switchyard'))!;
    expect([refused.attributes['error.type'], refused.status.code]).toEqual(['401', 2]);
    logs.length = 1;

    api.trace.disable();
    registered = false;
    exporter.reset();
    await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages });
    await until(() => logs.length === 2);
    expect(exporter.getFinishedSpans()).toEqual([]);
  });
});
