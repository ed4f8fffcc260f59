/**
 * The in-process client: the fallback engine without an HTTP hop, shaped like the official SDK's
 * `openai.chat.completions.create`, so code written against the SDK switches with one line. Same engine, same
 * fallback rules and log events as the HTTP routes; what the Nest service wraps.
 */
import type { Readable } from 'node:stream';
import { createParser } from 'eventsource-parser';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionCreateParams,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionCreateParamsStreaming,
} from 'openai/resources/chat/completions';
import { MAX_TIMER_MS, positiveMs, type SwitchyardOptions } from '../config/schema';
import { clientClosed, gatewayFrom, streamInterrupted, type Gateway, type GatewayResponse } from '../engine/gateway';
import { PORTKEY_ROUTING_HEADERS } from '../engine/request';
import { SwitchyardError, type OpenAIErrorBody } from '../errors';
import { toReadable } from '../http/body-stream';
import { errorMessage, SseFramer, streamFault } from '../http/sse-framer';
import type { AttemptLog } from '../log/log-event';
import { REST_AFTER_ANSWER } from '../log/usage';

export interface FallbackRequestOptions {
  /** Trace id of this request (as the `x-switchyard-trace-id` header). */
  traceId?: string | undefined;
  /** Id of a named routing config (as the `x-switchyard-config` header). */
  configId?: string | undefined;
  /**
   * Aborts the request: until `create` resolves, it rejects with a FallbackRequestError, status 499, `client_closed`
   * (where the SDK throws `APIUserAbortError`); a stream it returned then ends early without an error, as the SDK's
   * does (its upstream is closed, the log event says 499).
   */
  signal?: AbortSignal | null | undefined;
  /**
   * Milliseconds until the response must start, every retry and fallback included (the SDK's `timeout` times each
   * attempt): a shorter deadline than the options' `deadlineMs` for this call; a longer one is capped at it (raise
   * `deadlineMs` for a slow model). Past it: FallbackRequestError 504 `deadline_exceeded`.
   */
  timeout?: number | undefined;
  /**
   * As the SDK's per-request `headers` (a plain object, a `Headers` or `[name, value]` pairs), for code written
   * against it: `x-switchyard-trace-id`, `x-switchyard-config` and `traceparent` are read from them (`traceId` and
   * `configId` win); nothing here is sent upstream.
   */
  headers?: RequestHeaders | null | undefined;
}

/** The forms the SDK takes per-request headers in. */
export type RequestHeaders =
  | Headers
  | ReadonlyArray<ReadonlyArray<string | null | undefined>>
  | Readonly<Record<string, string | null | undefined | ReadonlyArray<string | null | undefined>>>
  // The SDK's own parsed form (its `HeadersLike` includes it), as code passing an SDK request's headers on holds it.
  | { readonly values: Headers; readonly nulls: ReadonlySet<string> };

function headerEntries(headers: RequestHeaders | null | undefined): Iterable<readonly [unknown, unknown]> {
  if (!headers) return [];
  if (headers instanceof Headers) return headers.entries();
  if ('values' in headers && headers.values instanceof Headers) return headers.values.entries();
  return Array.isArray(headers) ? (headers as ReadonlyArray<readonly [unknown, unknown]>) : Object.entries(headers);
}

/**
 * The request headers the engine reads: the only ones taken from `headers`. W3C's `tracestate` and `baggage` go with
 * `traceparent` to the host's propagator (a vendor's sampling state must travel with the trace), as over HTTP; and
 * Portkey's, read as the HTTP route reads them (code moved over from Portkey may pass them per request).
 */
const READ_HEADERS = new Set(['x-switchyard-trace-id', 'x-switchyard-config', 'traceparent', 'tracestate', 'baggage', 'x-portkey-trace-id', ...PORTKEY_ROUTING_HEADERS]);

/**
 * A request that did not succeed, as in-process callers see it: the status the HTTP route would have answered with
 * (the upstream's error, the gateway's own, or 499 when the caller's signal aborted it), the body and the attempts.
 */
export class FallbackRequestError extends Error {
  override readonly name = 'FallbackRequestError';
  // Own fields, as the SDK's APIError has them, not getters: JSON.stringify and loggers' error serializers (pino's)
  // copy an error's own properties, and a log line without the code is little help.
  /**
   * The envelope's error (as the SDK's `APIError.error`), when the body has one: OpenAI's four fields read as their
   * types say (Azure's has no `type`; an OpenAI-compatible server may send a numeric `code`, or a string `error`), and
   * the rest as sent (Azure's `innererror`). `body` keeps it as it came.
   */
  readonly error: UpstreamErrorObject | null;
  /** Stable code when the error is Switchyard's own or the upstream's envelope has one. */
  readonly code: string | null;
  /** The envelope's `param` (as the SDK's `APIError.param`). */
  readonly param: string | null;
  /** The envelope's `type` (as the SDK's `APIError.type`). */
  readonly type: string | null;
  /** The upstream's `x-request-id` (as the SDK's `APIError.requestID`): what its provider's support asks for. */
  readonly requestID: string | null;

  constructor(
    /** Status the HTTP route would have answered with. */
    readonly status: number,
    /** The upstream's (or the gateway's) error body as parsed: OpenAI's envelope when the upstream sent one (see `error`). */
    readonly body: unknown,
    readonly attempts: readonly AttemptLog[],
    /** The upstream's response headers that are forwarded (e.g. `retry-after`, `x-request-id`). */
    readonly headers: Readonly<Record<string, string>>,
    /** The message; by default worded from `body` as the SDK's APIError words it. */
    message?: string,
  ) {
    super(message ?? (typeof body === 'string' ? failureMessage(status, undefined, body) : failureMessage(status, body, undefined)));
    this.error = errorObjectOf((body as { error?: unknown } | null)?.error);
    this.code = this.error?.code ?? null;
    this.param = this.error?.param ?? null;
    this.type = this.error?.type ?? null;
    this.requestID = headers['x-request-id'] ?? null;
  }
}

/** An upstream's error object as FallbackRequestError reads it. */
export interface UpstreamErrorObject {
  readonly message: string;
  readonly type: string | null;
  readonly param: string | null;
  readonly code: string | null;
  readonly [field: string]: unknown;
}

function errorObjectOf(error: unknown): UpstreamErrorObject | null {
  if (typeof error === 'string' && error !== '') return { message: error, type: null, param: null, code: null };
  if (!error || typeof error !== 'object' || Array.isArray(error)) return null;
  const { message, type, param, code } = error as Record<string, unknown>;
  const text = (value: unknown): string | null => (typeof value === 'string' ? value : typeof value === 'number' ? String(value) : null);
  return { ...error, message: typeof message === 'string' ? message : '', type: text(type), param: text(param), code: text(code) };
}

/** A completion as the SDK's `create` resolves to it: with the serving upstream's `x-request-id`, not enumerable. */
export type ChatCompletionWithRequestId = ChatCompletion & { _request_id?: string | null };

/**
 * What `create` returns: a Promise of the result that, as the SDK's, also gives the response's status and headers
 * (`x-switchyard-target`, `x-switchyard-fallback`, the upstream's `x-request-id`...) through `withResponse()`.
 */
export interface FallbackPromise<T> extends Promise<T> {
  /** The result, a `Response` with the status and headers the HTTP route would send (no body: `data` is it), and the request id. */
  withResponse(): Promise<{ data: T; response: Response; request_id: string | null }>;
  /** Not available in process (there is no raw body to hand over): rejects with a TypeError, and closes a stream. */
  asResponse(): Promise<never>;
}

export interface FallbackChatCompletions {
  create(params: ChatCompletionCreateParamsNonStreaming, options?: FallbackRequestOptions): FallbackPromise<ChatCompletionWithRequestId>;
  create(params: ChatCompletionCreateParamsStreaming, options?: FallbackRequestOptions): FallbackPromise<AsyncIterable<ChatCompletionChunk>>;
  create(params: ChatCompletionCreateParams, options?: FallbackRequestOptions): FallbackPromise<ChatCompletionWithRequestId | AsyncIterable<ChatCompletionChunk>>;
}

export interface FallbackClient {
  chat: { completions: FallbackChatCompletions };
  /** The engine behind the client (shared with an HTTP route, if you mount one). */
  readonly gateway: Gateway;
}

/** Creates the in-process client from options, or from an existing gateway to share its configs and log sinks. */
export function createFallbackClient(options: SwitchyardOptions | Gateway): FallbackClient {
  const gateway = gatewayFrom(options);
  // The status and headers of each result, for withResponse(): the result object is the SDK's shape, with no room for them.
  const responses = new WeakMap<object, { status: number; headers: Record<string, string> }>();
  const run = async (params: ChatCompletionCreateParams, opts: FallbackRequestOptions = {}): Promise<ChatCompletionWithRequestId | AsyncIterable<ChatCompletionChunk>> => {
    const headers: Record<string, string> = {};
    for (const [name, value] of headerEntries(opts.headers)) {
      if (typeof name !== 'string') continue;
      const key = name.toLowerCase();
      // A list (the SDK's form for a repeated header) counts by its first value, as a repeated HTTP header does.
      const first = Array.isArray(value) ? (value as unknown[]).find((v) => typeof v === 'string') : value;
      if (typeof first === 'string' && READ_HEADERS.has(key)) headers[key] = first;
    }
    if (opts.traceId !== undefined) headers['x-switchyard-trace-id'] = opts.traceId;
    if (opts.configId !== undefined) headers['x-switchyard-config'] = opts.configId;
    const { timeout } = opts;
    const signal = opts.signal ?? undefined;
    if (timeout !== undefined && !positiveMs.safeParse(timeout).success) {
      throw new TypeError(`timeout must be a whole number of milliseconds from 1 to ${MAX_TIMER_MS}.`);
    }
    const res = await gateway.handle({ body: params, headers, signal, deadlineMs: timeout });
    if (signal?.aborted) {
      // Aborted as the response arrived: nobody will read it.
      abandon(res);
      throw aborted(res);
    }
    if (res.stream) {
      const stream = chunks(res, signal);
      responses.set(stream, { status: res.status, headers: res.headers });
      return stream;
    }
    const text = res.body!.toString('utf8');
    const body = parseJson(text);
    if (res.status >= 400) {
      res.end();
      // Worded from the text as the SDK does: JSON (any JSON) is read for its `error`, anything else quoted.
      const json = body !== text ? body : undefined;
      throw new FallbackRequestError(res.status, body, res.attempts, res.headers, failureMessage(res.status, json, json ? undefined : text));
    }
    // The engine falls back from a 2xx that does not open as a JSON object; one that opens so but does not parse, the
    // HTTP route passes on as it came, and the caller here would get as a string typed ChatCompletion: a bad gateway.
    const invalid = typeof body !== 'object' || body === null ? invalidResponse('The upstream answered with a body that is not a JSON object.') : null;
    res.end(invalid ? { streamError: invalid, status: invalid.status } : {});
    if (invalid) throw new FallbackRequestError(invalid.status, invalid.toBody(), res.attempts, res.headers);
    responses.set(body as object, { status: res.status, headers: res.headers });
    // As the SDK's: code that logs `completion._request_id` for its provider's support keeps working.
    return Object.defineProperty(body, '_request_id', { value: res.headers['x-request-id'] ?? null, enumerable: false }) as ChatCompletionWithRequestId;
  };
  const create = (params: ChatCompletionCreateParams, opts?: FallbackRequestOptions) => {
    const result = run(params, opts);
    const withResponse = () =>
      result.then((data) => {
        const { status, headers } = responses.get(data)!;
        return { data, response: new Response(null, { status, headers }), request_id: headers['x-request-id'] ?? null };
      });
    // The request has started: a stream it gives is closed (its upstream freed, its log written); a failure is not
    // left unhandled (Node would end the process), the TypeError says what to use instead.
    const asResponse = () =>
      result
        .then(
          (data) => void (Symbol.asyncIterator in data && data[Symbol.asyncIterator]().return?.()),
          () => undefined,
        )
        .then(() => Promise.reject(noAsResponse()));
    return Object.assign(result, { withResponse, asResponse });
  };
  return { gateway, chat: { completions: { create } as FallbackChatCompletions } };
}

const noAsResponse = () => new TypeError('asResponse() is not available on the in-process client (there is no raw body): use withResponse() for the status and headers.');

/** Ends a response nobody will read: its upstream stream (if any) is closed and the request logged as 499 (or, when
 * the caller already had the whole answer, as complete). */
function abandon(res: GatewayResponse, clientClosed = true): void {
  res.stream?.destroy();
  res.end({ clientClosed });
}

/**
 * Streams dropped before they were read to the end, without `break` or the signal (a throw between `create` and the
 * loop): once nothing can read one any more, its upstream is closed, its listener leaves the caller's signal, and it
 * is logged (499 unless every choice had finished), as undici does for a fetch body nobody reads. The callbacks are
 * made outside `chunks`, whose scope holds the iterator: a closure made there would keep it reachable (from the
 * caller's signal) and never let it go.
 */
const unreadStreams = new FinalizationRegistry<() => void>((release) => release());
const abandoning = (res: GatewayResponse) => () => abandon(res);
const releasing = (res: GatewayResponse, signal: AbortSignal | undefined, onAbort: () => void) => () => {
  signal?.removeEventListener('abort', onAbort);
  // Read by hand (`next()`) through every choice's finish_reason, then let go: the caller had the whole answer.
  abandon(res, !res.answered());
};

const invalidResponse = (message: string) => new SwitchyardError('upstream_invalid_response', message);

/** What an abort by the caller's signal rejects `create` with (a stream it returned ends quietly instead). */
function aborted(res: GatewayResponse): FallbackRequestError {
  return new FallbackRequestError(499, clientClosed().toBody(), res.attempts, res.headers);
}

/**
 * The stream's chunks. Until its first `next()` the body holds what arrives (up to 64 KiB, then the upstream is
 * paused); the signal is watched from now on, so a stream aborted before anyone reads it still ends and is logged.
 */
function chunks(res: GatewayResponse, signal: AbortSignal | undefined): AsyncIterable<ChatCompletionChunk> {
  // Watched only until reading starts: from then on, parseStream answers an abort.
  const onAbort = abandoning(res);
  signal?.addEventListener('abort', onAbort, { once: true });
  let started = false;
  const iterate = async function* (): AsyncGenerator<ChatCompletionChunk> {
    started = true;
    signal?.removeEventListener('abort', onAbort);
    try {
      // Aborted before the first read: the stream was closed and logged then; like the SDK's, it ends with no chunk.
      if (signal?.aborted) return;
      yield* parseStream(res, signal);
    } finally {
      unreadStreams.unregister(res);
    }
  };
  const generator = iterate();
  // A generator stopped before its first next() skips its body, `finally` included: the stream is closed here then.
  const stopUnread = () => {
    if (started) return;
    unreadStreams.unregister(res);
    signal?.removeEventListener('abort', onAbort);
    abandon(res);
  };
  const iterator: AsyncIterableIterator<ChatCompletionChunk> = {
    next: () => generator.next(),
    return: (value?: unknown) => {
      stopUnread();
      return generator.return(value as undefined);
    },
    throw: (err?: unknown) => {
      stopUnread();
      return generator.throw(err);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  unreadStreams.register(iterator, releasing(res, signal, onAbort), res);
  let used = false;
  return {
    // A second loop over the same stream would end at once, as if it were empty: the SDK throws instead, and so do we.
    [Symbol.asyncIterator]: () => {
      if (used) throw new Error('Cannot iterate over a consumed stream: a stream can be read once.');
      used = true;
      return iterator;
    },
  };
}

/** Parses the SSE stream into chunks; an upstream failure or an error event is thrown, never a silent end. */
async function* parseStream(res: GatewayResponse, signal: AbortSignal | undefined): AsyncGenerator<ChatCompletionChunk> {
  // A Readable for `for await` (this path is the SDK-shaped API, not the proxy's hot path).
  const stream = toReadable(res.stream!);
  const ready: ChatCompletionChunk[] = [];
  let failure: FallbackRequestError | undefined;
  /** What the log event records for `failure` on the serving attempt. */
  let failed: SwitchyardError | undefined;
  // Whole events only, as the HTTP route passes them: an event cut by the upstream's end, or one too large to hold,
  // fails the stream instead of vanishing in the parser. Its `done` says the upstream's [DONE] came, as there.
  const framer = new SseFramer();
  // As the SDK: the stream's end is its [DONE]; whatever an upstream sends after it is not read.
  let ended = false;
  const parser = createParser({
    onEvent: (event) => {
      if (ended || failure) return;
      if (event.data.startsWith('[DONE]')) {
        ended = true;
        return;
      }
      const data = parseJson(event.data) as ChatCompletionChunk & Partial<OpenAIErrorBody>;
      if (typeof data !== 'object' || data === null) {
        // The SDK throws on an event that is not JSON: a chunk of the wrong type would fail later, in caller code.
        failed = invalidResponse('The upstream sent an event that is not JSON.');
        failure = new FallbackRequestError(failed.status, failed.toBody(), res.attempts, res.headers);
      } else if ('error' in data && data.error) {
        // The upstream failed after the response had started: a bad gateway, with the upstream's own error (its
        // message as the HTTP route's log records it; a key it quotes masked).
        // Masked as the caller will read it: parsed first (an escaped key, `\u0073k-...`, is the key once parsed).
        const { error } = JSON.parse(res.redact(JSON.stringify(data))) as OpenAIErrorBody;
        failed = new SwitchyardError('upstream_error_event', errorMessage(error) || 'The upstream sent an error event.');
        failure = new FallbackRequestError(502, { error }, res.attempts, res.headers);
      } else ready.push(data);
    },
  });
  const decoder = new TextDecoder();
  let completed = false;
  // As the SDK: its own [DONE] ends the stream, wherever the upstream's read put it.
  const done = () => ended || framer.done;
  let streamError: unknown;
  // The whole events the framer passes on are what the log reads usage from, as on the HTTP route.
  const feed = (pieces: Buffer[]) => {
    // The events as the HTTP route sends them: one that quotes the target's key has it masked.
    for (const piece of res.observe(pieces)) parser.feed(decoder.decode(piece, { stream: true }));
  };
  try {
    try {
      // Not destroyed when the caller stops: after every choice's finish_reason, what is left is read for the log.
      for await (const chunk of stream.iterator({ destroyOnReturn: false })) {
        feed(framer.push(chunk as Buffer));
        while (ready.length > 0) yield ready.shift()!;
        if (failure) throw failure;
      }
    } catch (err) {
      // A connection that fails after [DONE] lost nothing: the chunks before it are the whole answer.
      if (!done() || err instanceof FallbackRequestError || signal?.aborted) throw err;
    }
    if (!done()) feed(framer.end());
    // An event the framer passed whole at a lone CR (`\r\n\r` at the end) waits in the parser for a possible LF.
    parser.feed('\n');
    while (ready.length > 0) yield ready.shift()!;
    if (failure) throw failure;
    // Ended without [DONE] (and without an error event, thrown above): cut at an event boundary, not complete.
    if (!done()) throw streamFault('ENDED_WITHOUT_DONE', 'The upstream ended its stream without data: [DONE].');
    completed = true;
  } catch (err) {
    // The caller stopped the stream: the loop ends where it is, as the SDK's does (code after it keeps the partial
    // answer); the upstream is closed and the request logged as 499 below.
    if (signal?.aborted) return;
    streamError = err;
    if (err instanceof FallbackRequestError) throw err;
    const error = streamInterrupted(err);
    throw new FallbackRequestError(error.status, error.toBody(), res.attempts, res.headers);
  } finally {
    // The engine tells from the events fed to it whether every choice has its finish_reason, as on the HTTP route.
    if (!completed && !done() && streamError === undefined && !signal?.aborted && res.answered()) {
      // Stopped at the last finish_reason (`if (chunk.choices[0]?.finish_reason) break`): the caller has the whole
      // answer, and its usage chunk and [DONE] are about to come. Read for the log, briefly, then logged as it ends.
      void readRest(stream, (chunk) => feed(framer.push(chunk)), done).then(() => res.end({ clientClosed: !done() }));
    } else {
      // A consumer that stops early (break, abort) is a client leaving: the upstream stream is closed too.
      if (!completed && !stream.destroyed) stream.destroy();
      // A caller that stops after [DONE] came (at the usage chunk) had the whole answer: not a 499.
      res.end(streamError !== undefined ? { streamError: failed ?? streamError } : { clientClosed: !completed && !done() });
    }
  }
}

/** Reads on until [DONE], within REST_AFTER_ANSWER (an upstream that never sends it is not waited for), then closes. */
async function readRest(stream: Readable, read: (chunk: Buffer) => void, done: () => boolean): Promise<void> {
  // Unref'd: a script that ends after its loop is not held up to wait for a log event's usage.
  const timer = setTimeout(() => stream.destroy(), REST_AFTER_ANSWER.ms).unref();
  let bytes = 0;
  try {
    for await (const chunk of stream) {
      bytes += (chunk as Buffer).length;
      read(chunk as Buffer);
      if (done() || bytes > REST_AFTER_ANSWER.bytes) break;
    }
  } catch {
    // Cut, or destroyed at the time limit: logged as the caller left it.
  } finally {
    clearTimeout(timer);
    if (!stream.destroyed) stream.destroy();
  }
}

function parseJson(data: Buffer | string): unknown {
  try {
    return JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
  } catch {
    return typeof data === 'string' ? data : data.toString('utf8');
  }
}

/**
 * The SDK's APIError message (its `makeMessage`) for the same answer: `json` is the body when it parsed as JSON,
 * read for its `error`; `text` is the body when it did not (or parsed to a falsy value), quoted as it came.
 */
function failureMessage(status: number, json: unknown, text: string | undefined): string {
  const error = json ? (json as { error?: unknown }).error : undefined;
  const message = typeof error === 'object' && error !== null ? (error as { message?: unknown }).message : undefined;
  let shown: string | undefined;
  try {
    shown = message ? (typeof message === 'string' ? message : JSON.stringify(message)) : error ? JSON.stringify(error) : json ? undefined : text || undefined;
  } catch {
    shown = undefined; // nested too deeply to encode (a hostile upstream's): the status alone
  }
  return shown === undefined ? `${status} status code (no body)` : `${status} ${shown}`;
}
