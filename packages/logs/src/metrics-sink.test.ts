import { createServer } from 'node:http';
import express from 'express';
import { Counter, Gauge, Registry } from 'prom-client';
import { MemoryLogStore, type LogEvent } from '@switchyard/core';
import { fallbackMiddleware } from '@switchyard/express';
import { createMetricsSink } from '@switchyard/logs';
import { replies } from '@switchyard/testing';
import { listen, type RunningApp } from '../../e2e/src/support/adapters';
import { messages, sdk, seedOptions, startUpstreams, until, type Upstreams } from '../../e2e/src/support/fixture';

/** A request OpenAI served, for the tests that write events straight to a sink (each runs alone too). */
const served: LogEvent = {
  traceId: 'served-1', requestId: 'served-1', configId: null, startedAt: 1_700_000_000_000, durationMs: 10, status: 200, stream: false,
  fallback: false, model: 'gpt-4o', servedBy: { target: 'targets[0]', provider: 'openai', virtualKey: 'openai-prod', model: 'gpt-4o' },
  attempts: [{ target: 'targets[0]', provider: 'openai', virtualKey: 'openai-prod', model: 'gpt-4o', status: 200, durationMs: 9 }],
  usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 }, costUsd: 0.000075,
};

describe('Prometheus metrics sink', () => {
  let up: Upstreams;
  let app: RunningApp;
  const logs: LogEvent[] = [];
  const registry = new Registry();

  beforeAll(async () => {
    up = await startUpstreams();
    const metrics = createMetricsSink({ registry });
    const host = express();
    host.use(fallbackMiddleware(seedOptions(up, logs, { logSinks: [metrics] })));
    // The host exposes its registry itself.
    host.get('/metrics', async (_req, res) => {
      res.type(registry.contentType).send(await registry.metrics());
    });
    app = await listen(createServer(host));
  });
  afterAll(async () => {
    await app.close();
    await up.close();
  });

  it('counts requests by provider and status, fallbacks, attempt latency, tokens and cost, on the host\'s /metrics', async () => {
    await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages });
    up.openai.enqueue(replies.rateLimited());
    await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages });
    await until(() => logs.length === 2);

    const text = await (await fetch(`${app.url}/metrics`)).text();
    expect(text).toContain('switchyard_requests_total{provider="openai",status="200",fallback="false"} 1');
    expect(text).toContain('switchyard_requests_total{provider="azure-openai",status="200",fallback="true"} 1');
    expect(text).toContain('switchyard_fallbacks_total{provider="azure-openai"} 1');
    // The request OpenAI served first is no fallback.
    expect(text).not.toContain('switchyard_fallbacks_total{provider="openai"}');
    expect(text).toContain('switchyard_attempt_duration_seconds_count{provider="openai",outcome="429"} 1');
    expect(text).toContain('switchyard_attempt_duration_seconds_count{provider="openai",outcome="200"} 1');
    expect(text).toContain('switchyard_attempt_duration_seconds_count{provider="azure-openai",outcome="200"} 1');
    expect(text).toContain('switchyard_tokens_total{provider="openai",model="gpt-4o",kind="prompt"} 10');
    // Labelled by the served deployment, not by the model string the client sent.
    expect(text).toContain('switchyard_tokens_total{provider="azure-openai",model="gpt4o-prod",kind="completion"} 5');
    expect(text).toMatch(/switchyard_cost_usd_total\{provider="openai",model="gpt-4o"\} 0\.000075\b/);
    expect(text).toMatch(/switchyard_request_duration_seconds_count\{provider="azure-openai",fallback="true",outcome="ok",stream="false"\} 1/);
    expect(text).not.toContain('stream="true"');
    // A stream's duration is how long its answer took to write: counted apart from JSON answers' latency.
    for await (const _chunk of await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages, stream: true }));
    await until(() => logs.length === 3);
    const after = await (await fetch(`${app.url}/metrics`)).text();
    expect(after).toMatch(/switchyard_request_duration_seconds_count\{provider="openai",fallback="false",outcome="ok",stream="false"\} 1/);
    expect(after).toMatch(/switchyard_request_duration_seconds_count\{provider="openai",fallback="false",outcome="ok",stream="true"\} 1/);
  });

  it('tells an account out of credit (429 insufficient_quota) from a rate limit in the attempt outcome, for an alert', async () => {
    up.openai.enqueue(replies.insufficientQuota());
    const before = logs.length;
    await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages });
    await until(() => logs.length === before + 1);
    const text = await (await fetch(`${app.url}/metrics`)).text();
    expect(text).toContain('switchyard_attempt_duration_seconds_count{provider="openai",outcome="insufficient_quota"} 1');
    // Also when it came as a stream's first event (a 200 status line, then the error): one alert for both.
    const own = new Registry();
    const sink = createMetricsSink({ registry: own });
    const quota = { code: 'insufficient_quota', message: 'You exceeded your current quota' };
    sink.write({ ...served, attempts: [{ ...served.attempts[0]!, status: 200, error: { code: 'upstream_error_event', message: quota.message }, upstreamError: quota }] });
    expect(await own.metrics()).toContain('switchyard_attempt_duration_seconds_count{provider="openai",outcome="insufficient_quota"} 1');
  });

  it('takes a usage with a negative or fractional count as unknown: neither counted nor priced, and the sink keeps counting', async () => {
    const before = logs.length;
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      const completion = (usage: object) => ({ id: 'c', object: 'chat.completion', created: 1, model: 'gpt-4o', choices: [{ index: 0, message: { role: 'assistant', content: 'x' }, finish_reason: 'stop' }], usage });
      up.openai.enqueue({ body: completion({ prompt_tokens: -1, completion_tokens: 5, total_tokens: 4 }) }, { body: completion({ prompt_tokens: 2.5, completion_tokens: 1, total_tokens: 3.5 }) });
      await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages });
      await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages });
      await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages });
      await until(() => logs.length === before + 3);
      expect(logs.slice(before).map((e) => [e.usage?.prompt_tokens ?? null, e.costUsd === null])).toEqual([[null, true], [null, true], [10, false]]);
      const text = await (await fetch(`${app.url}/metrics`)).text();
      expect(text).toMatch(/switchyard_requests_total\{provider="openai",status="200",fallback="false"\} \d+/);
      expect(warnings.filter((w) => w.includes('sink'))).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it("names a stream that broke after its 200 by its error code in the attempt outcome, not as a 200", async () => {
    up.openai.enqueue(replies.stream({ chunks: 5, cutAfter: 2 }));
    const before = logs.length;
    const broken = await sdk(app.url).chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    await (async () => {
      for await (const _ of broken);
    })().catch(() => undefined);
    await until(() => logs.length === before + 1);
    expect(logs[before]!.attempts.map((a) => [a.status, a.error?.code])).toEqual([[200, 'stream_interrupted']]);
    const text = await (await fetch(`${app.url}/metrics`)).text();
    expect(text).toContain('switchyard_attempt_duration_seconds_count{provider="openai",outcome="stream_interrupted"} 1');
    expect(text).toMatch(/switchyard_request_duration_seconds_count\{provider="openai",fallback="false",outcome="error",stream="true"\} 1/);
  });

  it('refuses buckets that are none or not numbers, drops repeated ones, takes maxModels 0 (every model "other") and refuses a host gauge of its name', async () => {
    expect(() => createMetricsSink({ registry: new Registry(), buckets: [] })).toThrow(RangeError);
    expect(() => createMetricsSink({ registry: new Registry(), buckets: [1, Number.NaN] })).toThrow('buckets must be finite numbers of seconds');
    const repeated = new Registry();
    createMetricsSink({ registry: repeated, buckets: [1, 0.5, 1] }).write(served);
    const bounds = (await repeated.metrics()).split('\n').filter((l) => l.startsWith('switchyard_request_duration_seconds_bucket{')).map((l) => /le="([^"]+)"/.exec(l)![1]);
    expect(bounds).toEqual(['0.5', '1', '+Inf']);
    const none = new Registry();
    createMetricsSink({ registry: none, maxModels: 0 }).write(served);
    expect(await none.metrics()).toContain('switchyard_tokens_total{provider="openai",model="other",kind="prompt"} 10');
    // A gauge of the host's with the very labels is still another type: counting into it would be wrong.
    const gauged = new Registry();
    new Gauge({ name: 'switchyard_requests_total', help: "the host's own", labelNames: ['provider', 'status', 'fallback'], registers: [gauged] });
    expect(() => createMetricsSink({ registry: gauged })).toThrow('a metric named switchyard_requests_total is already registered with another type');
  });

  it('times failures and clients that left apart from the answers', async () => {
    const own = new Registry();
    const sink = createMetricsSink({ registry: own });
    const broken = { ...served, attempts: served.attempts.map((a, i, all) => (i === all.length - 1 ? { ...a, error: { code: 'stream_interrupted', message: 'cut' } } : a)) };
    sink.write(served);
    sink.write(broken);
    // Retried on the same target (a 429, then the stream that broke): its serving attempt is the last, not the first.
    sink.write({ ...broken, attempts: [{ ...served.attempts[0]!, status: 429 }, ...broken.attempts] });
    sink.write({ ...served, status: 499 });
    sink.write({ ...served, status: 503 });
    sink.write({ ...served, status: 429 });
    // A host timeout (a Nest TimeoutInterceptor) answers 408: the server gave up, no mistake of the caller's; nor is
    // a provider refusing the operator's key (clients' keys never go upstream).
    sink.write({ ...served, status: 408 });
    sink.write({ ...served, status: 401 });
    sink.write({ ...served, status: 403 });
    sink.write({ ...served, status: 500 });
    // The caller's own mistake (a bad request, an unknown model): not an outage to page for.
    sink.write({ ...served, status: 400 });
    sink.write({ ...served, status: 404 });
    const counts = (await own.metrics()).split('\n').filter((l) => l.startsWith('switchyard_request_duration_seconds_count'));
    expect(counts.map((l) => [/outcome="(\w+)"/.exec(l)![1], l.split(' ')[1]]).sort()).toEqual([['client_closed', '1'], ['client_error', '2'], ['error', '8'], ['ok', '1']]);
  });

  it('keeps at most maxModels model labels per registry, however many sinks share it: made-up names count as "other"', async () => {
    const own = new Registry();
    // Two apps (two sinks) in one process, exposing one registry.
    const sinks = [createMetricsSink({ registry: own, maxModels: 2 }), createMetricsSink({ registry: own, maxModels: 2 })];
    const base = served;
    for (const [i, model] of ['gpt-4o', 'gpt-4o-mini', 'made-up-1', 'made-up-2', 'gpt-4o'].entries()) {
      sinks[i % 2]!.write({ ...base, servedBy: { ...base.servedBy!, model }, usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } });
    }
    const text = await own.metrics();
    const series = text.split('\n').filter((l) => l.startsWith('switchyard_tokens_total{') && l.includes('kind="prompt"'));
    expect(series.map((l) => /model="([^"]*)"/.exec(l)![1]).sort()).toEqual(['gpt-4o', 'gpt-4o-mini', 'other']);
    expect(text).toMatch(/model="gpt-4o",kind="prompt"\} 2\b/);
    expect(text).toMatch(/model="other",kind="prompt"\} 2\b/);
    // One cap per label: a sink asking for another is refused; one that names none shares it.
    expect(() => createMetricsSink({ registry: own, maxModels: 100 })).toThrow(/maxModels 100 differs from 2/);
    expect(() => createMetricsSink({ registry: own })).not.toThrow();
  });

  it('records no upstream latency for a target that called no upstream (no deployment for the model, its circuit open), but counts it skipped', async () => {
    const own = new Registry();
    const sink = createMetricsSink({ registry: own });
    const base = served;
    const circuitOpen = { target: 'targets[0]', provider: 'openai' as const, model: 'gpt-4o', status: null, durationMs: 0, error: { code: 'circuit_open', message: 'Skipped' } };
    sink.write({
      ...base,
      attempts: [
        { target: 'targets[0]', provider: 'azure-openai', model: 'gpt-4o', status: null, durationMs: 0, error: { code: 'model_not_deployed', message: 'no deployment' } },
        { ...base.attempts[0]! },
      ],
    });
    sink.write({ ...base, attempts: [circuitOpen, { ...base.attempts[0]!, provider: 'azure-openai' }] });
    sink.write({ ...base, attempts: [circuitOpen, { ...base.attempts[0]!, provider: 'azure-openai' }] });
    const text = await own.metrics();
    expect(text).not.toMatch(/outcome="(model_not_deployed|circuit_open)"/);
    expect(text).toContain('switchyard_attempt_duration_seconds_count{provider="openai",outcome="200"} 1');
    expect(text).toContain('switchyard_skipped_targets_total{provider="azure-openai",reason="model_not_deployed"} 1');
    expect(text).toContain('switchyard_skipped_targets_total{provider="openai",reason="circuit_open"} 2');
  });

  it('files a request none served under the provider it last called, not a target that called nobody, else "none"', async () => {
    const own = new Registry();
    const sink = createMetricsSink({ registry: own });
    const notDeployed = { target: 'targets[1]', provider: 'azure-openai' as const, model: 'o3', status: null, durationMs: 0, error: { code: 'model_not_deployed', message: 'no deployment' } };
    const unreachable = { target: 'targets[0]', provider: 'openai' as const, model: 'o3', status: null, durationMs: 3, error: { code: 'upstream_unreachable', message: 'reset' } };
    // OpenAI's connection failed; Azure has no deployment for the model: the client got OpenAI's 502, Azure saw nothing.
    const outage: LogEvent = { ...served, requestId: 'outage', status: 502, model: 'o3', servedBy: null, usage: null, costUsd: null, attempts: [unreachable, notDeployed] };
    // A loadbalance pick with no deployment: nobody was called.
    const none: LogEvent = { ...outage, requestId: 'none', status: 400, attempts: [notDeployed] };
    sink.write(outage);
    sink.write(none);
    const text = await own.metrics();
    expect(text).toContain('switchyard_requests_total{provider="openai",status="502",fallback="false"} 1');
    expect(text).toContain('switchyard_requests_total{provider="none",status="400",fallback="false"} 1');
    // Azure only as a target skipped.
    expect(text.split('\n').filter((l) => l.includes('provider="azure-openai"') && !l.startsWith('#'))).toEqual(['switchyard_skipped_targets_total{provider="azure-openai",reason="model_not_deployed"} 2']);
    // The query API files them the same way.
    const store = new MemoryLogStore();
    store.write(outage);
    store.write(none);
    expect((await store.query({ provider: 'openai' })).data.map((e) => e.requestId)).toEqual(['outage']);
    expect((await store.query({ provider: 'azure-openai' })).data).toEqual([]);
  });

  it('observes latencies in seconds, as their names say (dashboards and SLO alerts read them so)', async () => {
    const own = new Registry();
    createMetricsSink({ registry: own }).write({ ...served, durationMs: 250, attempts: [{ ...served.attempts[0]!, durationMs: 200 }] });
    const text = await own.metrics();
    expect(text).toContain('switchyard_request_duration_seconds_sum{provider="openai",fallback="false",outcome="ok",stream="false"} 0.25');
    expect(text).toContain('switchyard_request_duration_seconds_bucket{le="0.25",provider="openai",fallback="false",outcome="ok",stream="false"} 1');
    expect(text).toContain('switchyard_attempt_duration_seconds_sum{provider="openai",outcome="200"} 0.2');
    expect(text).toContain('switchyard_attempt_duration_seconds_bucket{le="0.25",provider="openai",outcome="200"} 1');
  });

  it('takes a prefix, and a second sink on the same registry reuses the metrics instead of throwing', () => {
    const other = new Registry();
    const a = createMetricsSink({ registry: other, prefix: 'app_llm_' });
    expect(() => createMetricsSink({ registry: other, prefix: 'app_llm_' })).not.toThrow();
    expect(a.registry).toBe(other);
    expect(other.getSingleMetric('app_llm_requests_total')).toBeDefined();
  });

  it("refuses a name the host's own metric already holds (other labels, other buckets), as prom-client would, instead of taking it over", async () => {
    const taken = new Registry();
    new Counter({ name: 'switchyard_requests_total', help: 'the host\'s own', labelNames: ['route'], registers: [taken] });
    expect(() => createMetricsSink({ registry: taken })).toThrow('a metric named switchyard_requests_total is already registered with another type, labels or buckets');
    // The same sink's metrics, with other buckets: one histogram cannot have two sets.
    const shared = new Registry();
    createMetricsSink({ registry: shared });
    expect(() => createMetricsSink({ registry: shared, buckets: [0.5, 1, 2] })).toThrow('switchyard_request_duration_seconds');
    // Buckets given out of order are sorted (prom-client does not sort them), and a second sink given the same reuses them.
    const unsorted = new Registry();
    createMetricsSink({ registry: unsorted, buckets: [10, 1, 0.1] });
    const again = createMetricsSink({ registry: unsorted, buckets: [10, 1, 0.1] });
    again.write({ ...served, durationMs: 5000 });
    expect(await unsorted.metrics()).toContain('switchyard_request_duration_seconds_bucket{le="0.1",provider="openai",fallback="false",outcome="ok",stream="false"} 0');
    // Reused as they are, the second sink counts into them.
    const second = createMetricsSink({ registry: shared });
    second.write(served);
    expect(await shared.metrics()).toContain('switchyard_requests_total{provider="openai",status="200",fallback="false"} 1');
  });

  it("defaults to prom-client's global register, buckets from 0.05 s to 120 s, and 50 model labels", async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { register } = require('prom-client') as typeof import('prom-client');
    const sink = createMetricsSink();
    try {
      expect(sink.registry).toBe(register);
      sink.write({ ...served, durationMs: 121_000 });
      const text = await register.metrics();
      const bounds = text.split('\n').filter((l) => l.startsWith('switchyard_request_duration_seconds_bucket{')).map((l) => /le="([^"]+)"/.exec(l)![1]);
      expect(bounds).toEqual(['0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '30', '60', '120', '+Inf']);
      expect(text).toContain('switchyard_request_duration_seconds_bucket{le="120",provider="openai",fallback="false",outcome="ok",stream="false"} 0');
      // 50 distinct models are labelled as they are; the 51st counts as "other".
      const own = new Registry();
      const capped = createMetricsSink({ registry: own });
      for (let i = 1; i <= 51; i++) capped.write({ ...served, servedBy: { ...served.servedBy!, model: `model-${i}` } });
      const models = (await own.metrics()).split('\n').filter((l) => l.startsWith('switchyard_tokens_total{') && l.includes('kind="prompt"')).map((l) => /model="([^"]*)"/.exec(l)![1]);
      expect(models).toHaveLength(51);
      expect(models).toContain('model-50');
      expect(models).toContain('other');
      expect(models).not.toContain('model-51');
    } finally {
      register.clear();
    }
  });
});
