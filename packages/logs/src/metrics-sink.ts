/**
 * Prometheus metrics as a log sink, through prom-client (an optional peer dependency, loaded only here). Labels
 * stay bounded: provider, status, attempt outcome and model. The model label is the served target's model (an Azure
 * deployment, or the model an OpenAI target was sent); since an OpenAI-compatible `custom_host` may accept any name
 * a client sends, at most `maxModels` distinct values are kept and later ones count as `other`.
 */
import type * as PromClient from 'prom-client';
import { calledUpstream, providerOf, servedAttemptIndex, serverFailure, type LogEvent, type LogSink } from '@switchyard/core';

/**
 * What is used of a prom-client `Registry` (any one fits). Written out so that this package's types do not import
 * prom-client, an optional peer: an app without it still type-checks with `skipLibCheck: false`.
 */
export interface MetricsRegistry {
  getSingleMetric(name: string): unknown;
  metrics(): Promise<string>;
  readonly contentType: string;
}

export interface MetricsSinkOptions {
  /** Registry to register the metrics in (a prom-client `Registry`). Default: prom-client's global `register`. */
  registry?: MetricsRegistry | undefined;
  /** Prefix of every metric name. Default `switchyard_`. */
  prefix?: string | undefined;
  /** Buckets of the latency histograms, in seconds. */
  buckets?: number[] | undefined;
  /** Distinct `model` label values kept; later models are counted as `other`. Default 50. Sinks on one registry and prefix share one cap (a different one throws). */
  maxModels?: number | undefined;
}

export interface MetricsSink extends LogSink {
  /** The registry the metrics are in: expose it with `registry.metrics()` on the host's `/metrics`. */
  readonly registry: MetricsRegistry;
}

const DEFAULT_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

function loadPromClient(): typeof PromClient {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('prom-client') as typeof PromClient;
  } catch (cause) {
    throw new Error('createMetricsSink needs prom-client: npm install prom-client', { cause });
  }
}

/**
 * The model label values in use, per registry and prefix, with their cap: sinks that share metrics (two apps) share
 * one set and one cap, set by the first of them.
 */
const modelSets = new WeakMap<object, Map<string, { models: Set<string>; max: number }>>();
function sharedModels(registry: object, prefix: string, maxModels: number | undefined): { models: Set<string>; max: number } {
  let byPrefix = modelSets.get(registry);
  if (!byPrefix) modelSets.set(registry, (byPrefix = new Map()));
  let shared = byPrefix.get(prefix);
  if (!shared) byPrefix.set(prefix, (shared = { models: new Set(), max: maxModels ?? 50 }));
  else if (maxModels !== undefined && maxModels !== shared.max) {
    // Two caps on one label would each let the other's values through: the contradiction is refused.
    throw new RangeError(`createMetricsSink: maxModels ${maxModels} differs from ${shared.max}, the cap of the sink already counting ${prefix}* metrics in this registry`);
  }
  return shared;
}

/**
 * A request's outcome for its latency: failures (see `serverFailure`, or a stream that broke after it started), the
 * caller's own mistakes (another 4xx: a bad request, an unknown model) and clients that left are timed apart from
 * the answers, whose percentiles they would skew. A caller's typo is not an outage.
 */
function outcomeOf(event: LogEvent): 'ok' | 'error' | 'client_error' | 'client_closed' {
  if (event.status === 499) return 'client_closed';
  if (serverFailure(event.status)) return 'error';
  if (event.status >= 400) return 'client_error';
  const served = servedAttemptIndex(event);
  return served >= 0 && event.attempts[served]!.error ? 'error' : 'ok';
}

export function createMetricsSink(options: MetricsSinkOptions = {}): MetricsSink {
  const prom = loadPromClient();
  const registry = (options.registry as PromClient.Registry | undefined) ?? prom.register;
  const prefix = options.prefix ?? 'switchyard_';
  // Ascending and distinct, as prom-client expects (it does not sort: a 5 s request would count under le="0.1"), and as
  // a second sink's are compared.
  const buckets = [...new Set(options.buckets ?? DEFAULT_BUCKETS)].sort((a, b) => a - b);
  if (buckets.length === 0 || !buckets.every(Number.isFinite)) throw new RangeError('createMetricsSink: buckets must be finite numbers of seconds');
  const given = options.maxModels;
  if (given !== undefined && (!Number.isInteger(given) || given < 0)) throw new RangeError('createMetricsSink: maxModels must be an integer >= 0');
  const { models, max: maxModels } = sharedModels(registry, prefix, given);
  const modelLabel = (model: string): string => {
    if (models.has(model)) return model;
    if (models.size >= maxModels) return 'other';
    models.add(model);
    return model;
  };

  /**
   * A metric already registered under the name by a sink like this one (a second app, a hot reload), reused instead
   * of throwing; one of another kind, labels or buckets (the host's own, under this prefix) is refused at once, as
   * prom-client refuses a name taken: taken over, every write would throw and count nothing.
   */
  function registered(type: 'counter' | 'histogram', name: string, labelNames: readonly string[]): unknown {
    // By prom-client's own `type` (a class name does not survive a minifier), its labels and its bounds.
    const existing = registry.getSingleMetric(prefix + name) as { type?: string; labelNames?: string[]; upperBounds?: number[] } | undefined;
    if (!existing) return undefined;
    const same =
      existing.type === type &&
      [...(existing.labelNames ?? [])].sort().join() === [...labelNames].sort().join() &&
      (type === 'counter' || (existing.upperBounds ?? []).join() === buckets.join());
    if (!same) throw new RangeError(`createMetricsSink: a metric named ${prefix + name} is already registered with another type, labels or buckets; give this sink another prefix`);
    return existing;
  }
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]): PromClient.Counter<L> =>
    (registered('counter', name, labelNames) as PromClient.Counter<L> | undefined) ?? new prom.Counter<L>({ name: prefix + name, help, labelNames, registers: [registry] });
  const histogram = <L extends string>(name: string, help: string, labelNames: readonly L[]): PromClient.Histogram<L> =>
    (registered('histogram', name, labelNames) as PromClient.Histogram<L> | undefined) ?? new prom.Histogram<L>({ name: prefix + name, help, labelNames, buckets, registers: [registry] });

  const requests = counter('requests_total', 'Chat completion requests, by provider, status and fallback.', ['provider', 'status', 'fallback']);
  const fallbacks = counter('fallbacks_total', 'Requests answered by a target other than the first (a success, or the last target\'s error when all failed), by that provider.', ['provider']);
  // By `stream` too: a stream lasts as long as its answer is written, seconds where a JSON answer's latency is what
  // the client waited; in one histogram, neither's percentiles would mean anything.
  const requestSeconds = histogram('request_duration_seconds', 'Request latency until the response ended, by provider, fallback, outcome (ok, error, client_error, client_closed) and stream (true or false).', ['provider', 'fallback', 'outcome', 'stream']);
  const attemptSeconds = histogram('attempt_duration_seconds', 'Upstream attempt latency, by provider and outcome (status, error code, or insufficient_quota).', ['provider', 'outcome']);
  const skipped = counter('skipped_targets_total', 'Targets a request did not call, by provider and reason (circuit_open, model_not_deployed).', ['provider', 'reason']);
  const tokens = counter('tokens_total', 'Tokens used, by provider, model and kind (prompt or completion).', ['provider', 'model', 'kind']);
  const cost = counter('cost_usd_total', 'Cost in USD of requests with a known price, by provider and model.', ['provider', 'model']);

  return {
    registry,
    write(event: LogEvent) {
      const provider = providerOf(event) ?? 'none';
      const fallback = String(event.fallback);
      requests.inc({ provider, status: String(event.status), fallback });
      requestSeconds.observe({ provider, fallback, outcome: outcomeOf(event), stream: String(event.stream) }, event.durationMs / 1000);
      if (event.fallback) fallbacks.inc({ provider });
      for (const attempt of event.attempts) {
        // A target skipped (its circuit open) or with no deployment for the model called no upstream: no latency.
        if (!calledUpstream(attempt)) {
          skipped.inc({ provider: attempt.provider, reason: attempt.error!.code });
          continue;
        }
        // An account out of credit is told from a rate limit (one fixed value: the label stays bounded), for an alert.
        // Whether it came as a 429 or as a stream's first event (then also an upstream_error_event).
        const outcome =
          attempt.upstreamError?.code === 'insufficient_quota' ? 'insufficient_quota' : (attempt.error?.code ?? (attempt.status === null ? 'no_response' : String(attempt.status)));
        attemptSeconds.observe({ provider: attempt.provider, outcome }, attempt.durationMs / 1000);
      }
      if (event.usage) {
        const model = modelLabel(event.servedBy?.model ?? 'unknown');
        tokens.inc({ provider, model, kind: 'prompt' }, event.usage.prompt_tokens);
        tokens.inc({ provider, model, kind: 'completion' }, event.usage.completion_tokens);
        if (event.costUsd !== null) cost.inc({ provider, model }, event.costUsd);
      }
    },
  };
}
