/**
 * OpenTelemetry (issue 4): one span per request and one per upstream attempt, with the GenAI semantic conventions
 * (https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/). Spans go through `@opentelemetry/api`, so
 * nothing happens unless the host registers an SDK; without one, a request costs one provider check.
 * An attempt's span starts with its upstream call (active while it is dispatched) and gets what the attempt log
 * knows when the request ends; a request the sampler dropped records nothing of its attempts.
 */
import type * as OtelApi from '@opentelemetry/api';
import type { Attributes, Context, Link, Span, Tracer, TracerProvider } from '@opentelemetry/api';
import { isRecord } from '../config/resolve';
import type { ProviderName } from '../config/schema';
import { header, parseTraceparent, type ChatRequestBody, type HeaderBag } from '../engine/request';
import { eventsData } from '../http/sse-framer';
import { calledUpstream, servedAttemptIndex, serverFailure, type AttemptLog, type LogEvent, type ServedBy } from './log-event';

const TRACER_NAME = '@switchyard/core';

/**
 * `@opentelemetry/api` is an optional peer: without it (npm --legacy-peer-deps, Yarn 1 skip peers) there is no
 * tracing, not a crash on load. Loaded on the first request, with the API's no-op provider, what a proxy delegates
 * to until an SDK is registered.
 */
interface Otel {
  api: typeof OtelApi;
  noop: TracerProvider;
}
let otel: Otel | null | undefined;
function loadOtel(): Otel | null {
  try {
    const api = require('@opentelemetry/api') as typeof OtelApi;
    return { api, noop: new api.ProxyTracerProvider().getDelegate() };
  } catch {
    return null;
  }
}

/** GenAI semconv's `gen_ai.provider.name` values. */
const PROVIDER_NAMES: Record<ProviderName, string> = { openai: 'openai', 'azure-openai': 'azure.ai.openai' };
/** The deprecated `gen_ai.system`, for backends that still read it: its own enum names Azure `az.ai.openai`. */
const SYSTEM_NAMES: Record<ProviderName, string> = { openai: 'openai', 'azure-openai': 'az.ai.openai' };

function registeredProvider(api: typeof OtelApi, noop: TracerProvider): TracerProvider | null {
  const provider = api.trace.getTracerProvider();
  const real = provider instanceof api.ProxyTracerProvider ? provider.getDelegate() : provider;
  return real === noop ? null : real;
}

/** The parent: the host's active span if its instrumentation has one, else the caller's W3C `traceparent`. */
function parentContext({ context, propagation, trace }: typeof OtelApi, headers: HeaderBag): Context {
  const active = context.active();
  if (trace.getSpanContext(active)) return active;
  const extracted = propagation.extract(active, headers);
  if (trace.getSpanContext(extracted)) return extracted;
  // No propagator registered (a bare BasicTracerProvider): read traceparent ourselves so the span still joins the trace.
  const parent = parseTraceparent(header(headers, 'traceparent'));
  if (!parent) return active;
  return trace.setSpanContext(active, { traceId: parent.traceId, spanId: parent.spanId, traceFlags: parent.flags & 1, isRemote: true });
}

/**
 * A caller's `traceparent` in another trace than the host's active span (a host that starts its own traces at the
 * edge): the log event keeps the caller's trace id, and the request span links to it, so each leads to the other.
 */
function callerLink({ trace }: typeof OtelApi, parent: Context, headers: HeaderBag): Link[] | undefined {
  const caller = parseTraceparent(header(headers, 'traceparent'));
  const parentTraceId = trace.getSpanContext(parent)?.traceId;
  if (!caller || parentTraceId === undefined || parentTraceId === caller.traceId) return undefined;
  return [{ context: { traceId: caller.traceId, spanId: caller.spanId, traceFlags: caller.flags & 1, isRemote: true } }];
}

/**
 * Attempt times are `performance.now()` readings, as the engine times attempts. Every span of a request is given its
 * times as the same reading plus one wall-clock offset, taken when the request starts (`Date.now()`, as the SDK
 * does: after a host suspend or an NTP step an epoch from `timeOrigin` would be off). Left to the SDK, each span
 * takes its own offset from a whole-millisecond `Date.now()`, and attempts stuck out of their request span by up to
 * a millisecond.
 */
const now = () => performance.now();

/** A `performance.now()` reading as an HrTime on the epoch, `offset` being the request's wall-clock offset. */
function hrTime(reading: number, offset: number): [number, number] {
  const ms = reading + offset;
  const seconds = Math.floor(ms / 1000);
  const nanos = Math.min(Math.round((ms - seconds * 1000) * 1e6), 999_999_999);
  return [seconds, nanos];
}

/** What ends a request span beside its log event (see `RequestTrace.end`). */
export interface TraceEnd {
  responseModel?: string | null;
  response?: Buffer | null;
  cachedTokens?: number;
  errorCode?: string;
}

/** The spans of one request. */
export class RequestTrace {
  /** Each attempt's span and start, in the order of `attempts`; none for an attempt that called no upstream. */
  private readonly attemptSpans: Array<{ span: Span; start: number } | undefined> = [];
  /** Calls sent so far to each target: a retry's span says it is one (HTTP's resend count), not another call. */
  private readonly sentTo = new Map<string, number>();

  /**
   * Whether the sampler kept the request: a request it dropped (a ratio sampler's unsampled share) records no
   * spans, so nothing is gathered or parsed for them; its span still carries the trace id.
   */
  readonly recording: boolean;

  constructor(
    private readonly api: typeof OtelApi,
    private readonly tracer: Tracer,
    private readonly span: Span,
    private readonly context: Context,
    /** The request's wall-clock offset: `Date.now() - performance.now()` when its span started. */
    private readonly offset: number,
  ) {
    this.recording = span.isRecording();
  }

  /** The W3C trace id of the request's span (the log event's when the request named none); none if it is invalid. */
  get traceId(): string | undefined {
    const context = this.span.spanContext();
    // A suppressed or non-recording tracer gives the all-zero id: every request would share it.
    return this.api.isSpanContextValid(context) ? context.traceId : undefined;
  }

  /**
   * Called as each attempt starts (in the order of `attempts`), with its `performance.now()` start, the upstream's
   * origin (none: the target could not call one, such as a model with no deployment), and the body it sends: the
   * client's, with the target's `override_params` over it. Its span starts now, for `dispatch`.
   */
  attemptStarted(startedAt: number, attempt: AttemptLog, origin: string | undefined, body: ChatRequestBody, overrides: Readonly<Record<string, unknown>> | null): void {
    if (!this.recording) return;
    let started: { span: Span; start: number } | undefined;
    try {
      if (origin !== undefined) started = { span: this.attemptSpan(startedAt, attempt, origin, body, overrides), start: startedAt };
    } catch {
      // Tracing must never break a request: a span processor of the host's that throws leaves the attempt spanless.
    }
    this.attemptSpans.push(started);
  }

  private attemptSpan(startedAt: number, attempt: AttemptLog, origin: string, body: ChatRequestBody, overrides: Readonly<Record<string, unknown>> | null): Span {
    const url = new URL(origin);
    const attrs: Attributes = {
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': PROVIDER_NAMES[attempt.provider],
      'gen_ai.system': SYSTEM_NAMES[attempt.provider],
      'gen_ai.request.model': attempt.model,
      'switchyard.target': attempt.target,
      ...requestAttributes(overrides ? { ...body, ...overrides } : body, attempt.provider),
      'server.address': url.hostname,
      'server.port': url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port),
    };
    if (attempt.virtualKey !== undefined) attrs['switchyard.virtual_key'] = attempt.virtualKey;
    const sent = this.sentTo.get(attempt.target) ?? 0;
    this.sentTo.set(attempt.target, sent + 1);
    if (sent > 0) attrs['http.request.resend_count'] = sent;
    return this.tracer.startSpan(`chat ${attempt.model}`, { kind: this.api.SpanKind.CLIENT, startTime: hrTime(startedAt, this.offset), attributes: attrs }, this.context);
  }

  /**
   * Runs the upstream call with the latest attempt's span active, as an instrumented library does: the host's HTTP
   * client instrumentation (undici's) then nests its span under the attempt and propagates that trace upstream.
   */
  dispatch<T>(call: () => T): T {
    const attempt = this.attemptSpans.at(-1);
    // Sampled out, no attempt span: the request's own (not recorded) span, so the call stays unsampled in its trace.
    return this.api.context.with(attempt ? this.api.trace.setSpan(this.context, attempt.span) : this.context, call);
  }

  /**
   * Writes the attempt spans and ends the request span. Never throws. `responseModel`: the model the upstream
   * reported (gen_ai.response.model); the served target's model when it reported none. `response`: the served JSON
   * body, or a stream's last few KiB, for the response's id and finish reasons. `cachedTokens`: the prompt tokens
   * the provider's cache served. `errorCode`: the code of the error Switchyard answered with, when no upstream's did.
   */
  end(event: LogEvent, { responseModel = null, response = null, cachedTokens = 0, errorCode }: TraceEnd = {}): void {
    if (!this.recording) {
      this.span.end();
      return;
    }
    try {
      const served = event.servedBy;
      const servedAt = servedAttemptIndex(event);
      event.attempts.forEach((attempt, i) => {
        // A target with no deployment for the model called no upstream: no client span (its error is on the log).
        const started = this.attemptSpans[i];
        if (!started) return;
        // Each on its own: a span processor that throws on one attempt's end must not leave the others open.
        try {
          this.endAttempt(started, attempt, i === servedAt ? served : null, event, { responseModel, response, cachedTokens });
        } catch {
          // Tracing must never break a request's logging.
        }
      });

      // Not gen_ai.*: a backend reads every span with GenAI call attributes as a model call (Datadog, Tempo, Honeycomb
      // select them by gen_ai.operation.name), and the attempt spans are the calls; a fallen-back request would count
      // twice, its latency (the failed attempts' included) as the serving provider's.
      const attrs: Attributes = {
        'http.response.status_code': event.status,
        'switchyard.trace_id': event.traceId,
        'switchyard.request_id': event.requestId,
        'switchyard.fallback': event.fallback,
        // Upstream attempts, as the x-switchyard-attempts header counts them.
        'switchyard.attempts': event.attempts.filter(calledUpstream).length,
        'switchyard.stream': event.stream,
      };
      if (event.model !== null) attrs['switchyard.request.model'] = event.model;
      if (event.configId !== null) attrs['switchyard.config_id'] = event.configId;
      // Targets a circuit breaker skipped have no span: without this, a fallback with one attempt span is a puzzle.
      const skipped = event.attempts.filter((a) => a.error?.code === 'circuit_open').map((a) => a.target);
      if (skipped.length > 0) attrs['switchyard.circuit_open_targets'] = skipped;
      if (served) {
        attrs['switchyard.provider.name'] = PROVIDER_NAMES[served.provider];
        if (event.status < 400) attrs['switchyard.response.model'] = responseModel ?? served.model;
        attrs['switchyard.target'] = served.target;
      }
      if (event.usage) {
        attrs['switchyard.usage.input_tokens'] = event.usage.prompt_tokens;
        attrs['switchyard.usage.output_tokens'] = event.usage.completion_tokens;
      }
      if (event.costUsd !== null) attrs['switchyard.cost_usd'] = event.costUsd;
      this.span.setAttributes(attrs);
      this.span.updateName(event.model ? `switchyard chat ${event.model}` : 'switchyard chat');
      const last = event.attempts[event.attempts.length - 1];
      const servedError = servedAt >= 0 ? event.attempts[servedAt]!.error?.code : undefined;
      // An upstream's own answer (e.g. a 429) names the error by its status; else the last attempt's failure does; a
      // stream that broke after its start (the client's SDK threw), the serving attempt's.
      let errorType = servedError;
      if (event.status === 499) errorType = 'client_closed';
      else if (event.status >= 400) errorType = served ? String(event.status) : (errorCode ?? last?.error?.code ?? String(event.status));
      if (errorType !== undefined) {
        this.span.setAttribute('error.type', errorType);
        // As an HTTP server span: the caller's own mistakes and its leaving (4xx) are not this service failing; a
        // serverFailure status and a stream broken after its start are.
        if (serverFailure(event.status) || event.status < 400) this.span.setStatus({ code: this.api.SpanStatusCode.ERROR });
      }
    } catch {
      // Tracing must never break a request's logging.
    } finally {
      try {
        this.span.end(hrTime(now(), this.offset));
      } catch {
        // Nor a span processor that throws on its end.
      }
    }
  }

  /** Writes an attempt's outcome on its span and ends it. `served`: the request's serving target, when it is this one. */
  private endAttempt(
    { span, start }: { span: Span; start: number },
    attempt: AttemptLog,
    served: ServedBy | null,
    event: LogEvent,
    { responseModel, response, cachedTokens }: Required<Omit<TraceEnd, 'errorCode'>>,
  ): void {
    const attrs: Attributes = {};
    if (attempt.status !== null) attrs['http.response.status_code'] = attempt.status;
    if (served) {
      // A model produced the response only if it succeeded: a 429 names none.
      if (event.status < 400) attrs['gen_ai.response.model'] = responseModel ?? served.model;
      if (event.usage) {
        attrs['gen_ai.usage.input_tokens'] = event.usage.prompt_tokens;
        attrs['gen_ai.usage.output_tokens'] = event.usage.completion_tokens;
        // Of the input tokens, those the provider's prompt cache served (OpenAI's prompt_tokens_details).
        if (cachedTokens > 0) attrs['gen_ai.usage.cache_read.input_tokens'] = cachedTokens;
      }
      if (response && event.status < 400) Object.assign(attrs, responseAttributes(response, event.stream, attempt.provider));
    }
    span.setAttributes(attrs);
    const errorType = attempt.error?.code ?? (attempt.status !== null && attempt.status >= 400 ? String(attempt.status) : undefined);
    if (errorType !== undefined) {
      span.setAttribute('error.type', errorType);
      // The caller leaving, or the host answering first (its own timeout), is no failure of the provider's call (a
      // dashboard of GenAI calls would count closed tabs as OpenAI errors): named, not marked, as on the request span.
      if (errorType !== 'client_closed' && errorType !== 'host_answered') span.setStatus({ code: this.api.SpanStatusCode.ERROR, message: attempt.error?.message ?? `HTTP ${attempt.status}` });
    }
    // Never later than now, when the request span ends.
    span.end(hrTime(Math.min(start + attempt.durationMs, now()), this.offset));
  }
}

const REQUEST_NUMBERS: ReadonlyArray<readonly [string, string]> = [
  ['temperature', 'gen_ai.request.temperature'],
  ['top_p', 'gen_ai.request.top_p'],
  ['frequency_penalty', 'gen_ai.request.frequency_penalty'],
  ['presence_penalty', 'gen_ai.request.presence_penalty'],
  ['seed', 'gen_ai.request.seed'],
];

/** The GenAI conventions' request attributes (and OpenAI's) of the body an attempt sends. */
function requestAttributes(body: Readonly<Record<string, unknown>>, provider: ProviderName): Attributes {
  const attrs: Attributes = {};
  // max_tokens is deprecated for max_completion_tokens (o-series models accept only the latter).
  const max = body.max_completion_tokens ?? body.max_tokens;
  if (typeof max === 'number') attrs['gen_ai.request.max_tokens'] = max;
  for (const [key, name] of REQUEST_NUMBERS) {
    const value = body[key];
    if (typeof value === 'number') attrs[name] = value;
  }
  const stop = body.stop;
  if (typeof stop === 'string') attrs['gen_ai.request.stop_sequences'] = [stop];
  else if (Array.isArray(stop) && stop.every((s) => typeof s === 'string')) attrs['gen_ai.request.stop_sequences'] = stop as string[];
  if (typeof body.n === 'number' && body.n !== 1) attrs['gen_ai.request.choice.count'] = body.n;
  if (body.stream === true) attrs['gen_ai.request.stream'] = true;
  const format = isRecord(body.response_format) ? body.response_format.type : undefined;
  // json_object and json_schema are both structured output, "json" in the conventions.
  if (format === 'text') attrs['gen_ai.output.type'] = 'text';
  else if (format === 'json_object' || format === 'json_schema') attrs['gen_ai.output.type'] = 'json';
  if (provider === 'openai' && typeof body.service_tier === 'string' && body.service_tier !== 'auto') attrs['openai.request.service_tier'] = body.service_tier;
  return attrs;
}

/**
 * The response's id and finish reasons (and OpenAI's fingerprint and tier), from a JSON body or a stream's last
 * chunks. Parsed here, only when a span is written: the engine never parses a response.
 */
function responseAttributes(data: Buffer, stream: boolean, provider: ProviderName): Attributes {
  const objects: unknown[] = [];
  for (const text of stream ? eventsData(data.toString('utf8')) : [data.toString('utf8')]) {
    try {
      objects.push(JSON.parse(text));
    } catch {
      // [DONE], or the first event of the tail cut at its start.
    }
  }
  let id: string | undefined;
  let fingerprint: string | undefined;
  let tier: string | undefined;
  // By choice index: a stream ends each choice in its own chunk.
  const reasons: string[] = [];
  for (const object of objects) {
    if (!isRecord(object)) continue;
    // Azure's prompt-filter chunk has an empty id.
    if (typeof object.id === 'string' && object.id !== '') id = object.id;
    if (typeof object.system_fingerprint === 'string') fingerprint = object.system_fingerprint;
    if (typeof object.service_tier === 'string') tier = object.service_tier;
    if (!Array.isArray(object.choices)) continue;
    object.choices.forEach((choice: unknown, at: number) => {
      if (!isRecord(choice) || typeof choice.finish_reason !== 'string') return;
      const index = typeof choice.index === 'number' && Number.isInteger(choice.index) && choice.index >= 0 && choice.index < 128 ? choice.index : at;
      reasons[index] = choice.finish_reason;
    });
  }
  const attrs: Attributes = {};
  if (id !== undefined) attrs['gen_ai.response.id'] = id;
  const finished = reasons.filter((reason) => reason !== undefined);
  if (finished.length > 0) attrs['gen_ai.response.finish_reasons'] = finished;
  if (provider === 'openai') {
    if (fingerprint !== undefined) attrs['openai.response.system_fingerprint'] = fingerprint;
    if (tier !== undefined) attrs['openai.response.service_tier'] = tier;
  }
  return attrs;
}

/** Starts a request's span, or returns null (the no-op fast path) when the host registered no OpenTelemetry SDK. */
export function startRequestTrace(headers: HeaderBag): RequestTrace | null {
  if (otel === undefined) otel = loadOtel();
  if (otel === null) return null;
  const { api, noop } = otel;
  const provider = registeredProvider(api, noop);
  if (!provider) return null;
  try {
    const tracer = provider.getTracer(TRACER_NAME);
    const parent = parentContext(api, headers);
    const reading = now();
    const offset = Date.now() - reading;
    const span = tracer.startSpan('switchyard chat', { kind: api.SpanKind.INTERNAL, startTime: hrTime(reading, offset), links: callerLink(api, parent, headers) }, parent);
    return new RequestTrace(api, tracer, span, api.trace.setSpan(parent, span), offset);
  } catch {
    return null;
  }
}
