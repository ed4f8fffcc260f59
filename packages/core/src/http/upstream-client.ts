/**
 * HTTP to providers: undici's Agent keeps one keep-alive pool per origin. We drive it through `dispatch` with our
 * own handler, not `fetch` (several times the CPU: ~580 µs vs ~90 µs per request here) nor `request`, whose body
 * is a Readable stream even for a short JSON answer (~50 µs more per request than collecting chunks, issue 5).
 * A streamed answer is handed over chunk by chunk to one consumer (`BodyStream`), without a Readable either.
 */
import { Agent, Pool, type Dispatcher } from 'undici';
import type { CancelSignal } from '../engine/cancellation';
import { isProviderHost } from '../providers/provider';
import type { BodyConsumer, BodyStream } from './body-stream';
import { HeldBytes } from './held-bytes';
import { errorEventIn, FirstEventScanner, MAX_EVENT_BYTES, unansweredEvents, type UpstreamErrorEvent } from './sse-framer';

export interface UpstreamResponse {
  status: number;
  /** Response headers, lower-case names. */
  headers: Record<string, string | string[] | undefined>;
  /**
   * Resolves with the whole body, or null when it grows past `limit` bytes (the connection is then closed). Call one
   * of `read`, `stream` or `discard`, once.
   */
  read(limit?: number): Promise<Buffer | null>;
  /**
   * For a server-sent event stream: resolves once the body's first whole event with data arrived (past Azure's
   * prompt-filter verdict, which answers nothing yet), with the body for
   * one consumer (backpressure reaches the upstream; destroying it aborts the upstream request). Rejects if the body
   * ends or fails before that event, or sends 4 MiB without one: nothing a client would read was sent yet.
   */
  stream(): Promise<BodyStream>;
  /**
   * Drops the body; a short one is read to its end so the connection stays reusable. `cut`: closes the connection
   * at once instead (a body that may never end, such as an event stream).
   */
  discard(cut?: boolean): void;
}

export interface UpstreamRequest {
  origin: string;
  path: string;
  headers: Record<string, string>;
  body: string | Buffer;
  /** Aborts the request (a Node AbortSignal fits; the engine passes its lighter `Cancellation`). */
  signal: CancelSignal;
}

/** The HTTP seam of the engine: swap it in tests or to route through a proxy. */
export interface UpstreamClient {
  request(req: UpstreamRequest): Promise<UpstreamResponse>;
  close(): Promise<void>;
}

/**
 * A client on `dispatcher` (an undici Agent, Pool or ProxyAgent), whose `close()` closes it; without one, on the
 * process-wide pool every gateway shares, which `close()` leaves open for the others.
 */
export function createUpstreamClient(dispatcher?: Dispatcher): UpstreamClient {
  const target = dispatcher ?? defaultAgent();
  return {
    request(req) {
      if (req.signal.aborted) return Promise.reject(req.signal.reason);
      return new Promise((resolve, reject) => {
        target.dispatch(
          { origin: req.origin, path: req.path, method: 'POST', headers: req.headers, body: req.body },
          new Exchange(req.signal, resolve, reject),
        );
      });
    },
    close: () => (dispatcher ? dispatcher.close() : Promise.resolve()),
  };
}

/** A discarded body longer than this is cut (connection closed) rather than read to its end. */
const DISCARD_LIMIT = 128 * 1024;
/** Streamed bytes held for a consumer that has not started yet, beyond which the upstream is paused. */
const HOLD_LIMIT = 64 * 1024;
/**
 * Bytes an upstream may send before its first whole event (comments, or that event itself), as for any one event.
 * The upstream is not paused meanwhile: a paused upstream could never finish the event being waited for.
 */
const MAX_BEFORE_EVENT = MAX_EVENT_BYTES;

type BodyMode = 'pending' | 'read' | 'stream' | 'discard';

const discardedTooLong = () => new Error('Discarded response body too long to read.');
const readTooLong = () => new Error('Response body longer than the limit it was read with.');
/**
 * A stream that failed before its first event, said as what the upstream did: the engine, which knows the target,
 * makes it the attempt's error (logged as what happened, not as a connection failure).
 */
export class StreamStartError extends Error {}
const endedBeforeEvent = () => new StreamStartError('ended its stream before sending any event');
const noEventInLimit = () => new StreamStartError(`sent ${MAX_BEFORE_EVENT} bytes of its stream without a whole event`);
/**
 * Events before the answer starts (Azure's prompt-filter verdicts, a [DONE]) are read again as each one completes:
 * past this many, the stream is given up rather than read again on every event (Azure sends one).
 */
const MAX_EVENTS_BEFORE_ANSWER = 32;
const noAnswerInEvents = () => new StreamStartError(`sent ${MAX_EVENTS_BEFORE_ANSWER} events of its stream without an answer`);
/**
 * A stream whose first event is the upstream's error (OpenAI may answer so with a 200): nothing a client can use was
 * sent yet, so `stream()` rejects with this, and the engine treats the event as the error answer it is.
 */
export class FirstEventError extends Error {
  constructor(readonly event: UpstreamErrorEvent) {
    super(`The upstream's stream began with an error event${event.message ? `: ${event.message}` : ''}.`);
  }
}
/**
 * Whether `pieces`, fed to `scanner`, hold a whole event a client can use: Azure's prompt-filter verdict, which opens
 * its streams before anything is generated, is not one, nor is a `[DONE]` before any (a stream that stalls, fails or
 * ends after them may still fall back).
 */
function answerStarted(scanner: FirstEventScanner, pieces: readonly Buffer[]): boolean {
  return scanner.events > 0 && scanner.events > unansweredEvents(pieces);
}

function errorAsFirstEvent(held: readonly Buffer[]): FirstEventError | null {
  const event = errorEventIn(held, 'first');
  return event ? new FirstEventError(event) : null;
}

/** One upstream request and its response: undici's handler, the engine's `UpstreamResponse` and its body stream. */
class Exchange implements Dispatcher.DispatchHandler, UpstreamResponse, BodyStream {
  status = 0;
  headers: Record<string, string | string[] | undefined> = {};
  private controller: Dispatcher.DispatchController | null = null;
  private started = false;
  private mode: BodyMode = 'pending';
  /** Body bytes that arrived before the engine chose what to do with them (or, in read mode, all of them). */
  private readonly chunks = new HeldBytes();
  private size = 0;
  /** In read mode: past this many bytes the body is cut and `read()` resolves null. */
  private readLimit = Infinity;
  private ended = false;
  private failure: Error | null = null;
  /** Who receives a streamed body, once `consume` was called; null again after `destroy`. */
  private consumer: BodyConsumer | null = null;
  destroyed = false;
  /** Until `stream()` resolves: looks for the end of the first event in the bytes held. */
  private scanner: FirstEventScanner | null = null;
  /** The pending `read()` or `stream()` promise. */
  private waiter: { resolve(value: never): void; reject(err: unknown): void } | null = null;

  constructor(
    private readonly signal: CancelSignal,
    private readonly resolveHead: (res: UpstreamResponse) => void,
    private readonly rejectHead: (err: unknown) => void,
  ) {
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  private readonly onAbort = (): void => {
    const reason = this.signal.reason as Error;
    // Still waiting for headers: the caller learns now, not when a connection is (or is not) made.
    if (!this.started) this.rejectHead(reason);
    this.controller?.abort(reason);
  };

  private finish(): void {
    this.signal.removeEventListener('abort', this.onAbort);
  }

  // --- undici's side

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.signal.aborted) controller.abort(this.signal.reason as Error);
  }

  onResponseStart(_controller: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>): void {
    // An informational answer (103 Early Hints) comes before the real one, as undici's own handlers read it.
    if (status < 200) return;
    this.status = status;
    this.headers = headers;
    this.started = true;
    this.resolveHead(this);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    switch (this.mode) {
      case 'stream':
        if (this.consumer) {
          if (!this.consumer.data(chunk)) controller.pause();
          return;
        }
        if (this.destroyed) return;
        this.chunks.push(chunk);
        this.size += chunk.length;
        if (this.waiter) {
          const before = this.scanner!.events;
          // Read again only when an event was completed: a large first event after Azure's prompt-filter verdict,
          // arriving in many reads, would otherwise have everything held decoded again on each.
          const held = this.scanner!.push(chunk) > before ? this.chunks.view() : null;
          if (held && answerStarted(this.scanner!, held)) {
            const failed = errorAsFirstEvent(held);
            if (failed) return this.failBeforeEvent(failed);
            this.settle(this);
          } else if (this.size > MAX_BEFORE_EVENT) return this.failBeforeEvent(noEventInLimit());
          else if (this.scanner!.events >= MAX_EVENTS_BEFORE_ANSWER) return this.failBeforeEvent(noAnswerInEvents());
        }
        // The first event is in and nobody consumes yet: hold a little, then let backpressure reach the upstream.
        if (!this.waiter && this.size >= HOLD_LIMIT) controller.pause();
        return;
      case 'discard':
        this.size += chunk.length;
        if (this.size > DISCARD_LIMIT) controller.abort(discardedTooLong());
        return;
      default:
        this.chunks.push(chunk);
        this.size += chunk.length;
        if (this.size > this.readLimit) this.cut();
    }
  }

  onResponseEnd(): void {
    this.ended = true;
    this.finish();
    if (this.mode === 'read') this.settle(this.body());
    else if (this.mode === 'stream') {
      this.consumer?.end();
      // A stream still waiting for its first event never gets one (an SDK would read an empty, successful stream).
      if (this.waiter) this.fail(endedBeforeEvent());
    }
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    this.finish();
    this.failure = err;
    if (!this.started) {
      this.rejectHead(err);
      return;
    }
    // A consumer learns of it now; one that has not started yet, when it does (after the chunks held for it).
    this.consumer?.error(err);
    this.fail(err);
  }

  // --- the engine's side

  read(limit = Infinity): Promise<Buffer | null> {
    this.mode = 'read';
    this.readLimit = limit;
    if (this.failure) return Promise.reject(this.failure);
    if (this.size > limit) {
      this.cut();
      return Promise.resolve(null);
    }
    if (this.ended) return Promise.resolve(this.body());
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** A body read past its limit: what arrived is dropped, the rest is not read (the connection closes). */
  private cut(): void {
    this.mode = 'discard';
    this.chunks.clear();
    this.size = 0;
    this.settle(null);
    if (!this.ended && !this.failure) this.controller?.abort(readTooLong());
  }

  stream(): Promise<BodyStream> {
    this.mode = 'stream';
    // A body that failed before it was asked for is not started: the engine may still fall back.
    if (this.failure) return Promise.reject(this.failure);
    const scanner = new FirstEventScanner();
    const held = this.chunks.view();
    // The pieces up to the first event's end: only those can hold it (a fast upstream may have sent the whole answer).
    let upTo = 0;
    let seen: readonly Buffer[] = [];
    let whole = false;
    while (!whole && upTo < held.length && scanner.events < MAX_EVENTS_BEFORE_ANSWER) {
      const before = scanner.events;
      if (scanner.push(held[upTo++]!) === before) continue;
      seen = upTo === held.length ? held : held.slice(0, upTo);
      whole = answerStarted(scanner, seen);
    }
    const failed = whole
      ? errorAsFirstEvent(seen)
      : scanner.events >= MAX_EVENTS_BEFORE_ANSWER
        ? noAnswerInEvents()
        : this.ended
          ? endedBeforeEvent()
          : this.size > MAX_BEFORE_EVENT
            ? noEventInLimit()
            : null;
    if (failed) {
      this.failBeforeEvent(failed);
      return Promise.reject(failed);
    }
    if (whole) {
      if (this.size >= HOLD_LIMIT) this.controller?.pause();
      return Promise.resolve(this);
    }
    this.scanner = scanner;
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  consume(consumer: BodyConsumer): void {
    if (this.consumer || this.destroyed) return;
    this.consumer = consumer;
    const held = this.chunks.take();
    this.size = 0;
    let flowing = true;
    for (const chunk of held) {
      flowing = consumer.data(chunk) && flowing;
      if (this.consumer !== consumer) return; // destroyed by the consumer meanwhile
    }
    if (this.failure) consumer.error(this.failure);
    else if (this.ended) consumer.end();
    else if (flowing) this.controller?.resume();
    else this.controller?.pause();
  }

  resume(): void {
    if (this.consumer) this.controller?.resume();
  }

  destroy(err?: Error): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.consumer = null;
    this.chunks.clear();
    // The consumer went away mid-body: stop the upstream too.
    if (!this.ended && !this.failure) this.controller?.abort(err ?? new Error('The response stream was destroyed.'));
  }

  discard(cut = false): void {
    if (this.mode === 'stream') {
      this.destroy();
      return;
    }
    this.mode = 'discard';
    this.chunks.clear();
    if (!this.ended && !this.failure && (cut || this.size > DISCARD_LIMIT)) this.controller?.abort(discardedTooLong());
  }

  private body(): Buffer {
    const pieces = this.chunks.view();
    return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, this.size);
  }

  /**
   * No first event a client can use (too much before it, or an error event): the attempt fails (nothing was sent, so
   * it may fall back) and the upstream is cut.
   */
  private failBeforeEvent(err: Error): void {
    this.chunks.clear();
    this.fail(err);
    if (!this.ended && !this.failure) this.controller?.abort(err);
  }

  private settle(value: unknown): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.resolve(value as never);
  }

  private fail(err: unknown): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.reject(err);
  }
}

let shared: Agent | undefined;
/** One agent per process: pools are shared across every gateway instance, like a browser's. */
function defaultAgent(): Agent {
  shared ??= new Agent({
    keepAliveTimeout: 30_000,
    // Our own per-attempt timeout and deadline govern waiting for headers; the body timeout stays as a
    // safety net against a stream that goes silent forever.
    headersTimeout: 0,
    bodyTimeout: 300_000,
    // Another host (a proxy, an OpenAI-compatible server) may close an idle connection sooner, without saying so in a
    // Keep-Alive header (uvicorn after 5 s, as vLLM runs it): a request written onto it as it closes fails, and the
    // target looks down. There, an idle connection is dropped first, after undici's (and the SDK's) default 4 s.
    factory: (origin, options) => new Pool(origin, isProviderHost(String(origin)) ? options : { ...options, keepAliveTimeout: OTHER_HOSTS_KEEP_ALIVE_MS }),
  });
  return shared;
}
const OTHER_HOSTS_KEEP_ALIVE_MS = 4_000;
