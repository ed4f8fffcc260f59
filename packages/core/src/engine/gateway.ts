/**
 * The fallback engine. Framework-free: it takes `{ body, headers, signal }` and returns a status, headers and
 * either a complete body or a stream whose first whole event already arrived (so a fallback was still possible up
 * to that point). The consumer reports when delivery ended; the engine then emits the request's one log event.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { LeafNode, ResolvedOptions, RouteNode, StrategyNode } from '../config/resolve';
import { resolveOptions } from '../config/resolve';
import { looksLikeApiKey, type SwitchyardOptions } from '../config/schema';
import { SwitchyardError, SwitchyardOptionsError, type OpenAIErrorBody } from '../errors';
import { createUpstreamClient, FirstEventError, StreamStartError, type UpstreamClient, type UpstreamResponse } from '../http/upstream-client';
import type { BodyStream } from '../http/body-stream';
import { codecFor, contentCoding } from '../http/content-coding';
import { calledUpstream, type AttemptLog, type LogEvent, type ServedBy, type TokenUsage } from '../log/log-event';
import { emitLog } from '../log/emit';
import { extractResponseModel, readUsage, StreamTail, type UsageRead } from '../log/usage';
import { startRequestTrace, type RequestTrace } from '../log/tracing';
import { HOP_HEADER, isProviderHost, maskedKey, maskSecret, maskSecretInEvents, redact, type UpstreamPlan } from '../providers/provider';
import { contextTraceId, givenConfigId, givenTraceId, header, newTraceId, parseBody, tooLarge, type HeaderBag, type ParsedBody } from './request';
import { retryDelayMs } from './retry-delay';
import { mergeMembers } from './body-merge';
import { Cancellation } from './cancellation';
import type { Circuit } from './circuit-breaker';
import { triggersFallback } from './fallback-rule';

export interface GatewayRequest {
  /** Raw body (Buffer or string), or the object a body parser of the host already produced. */
  body: unknown;
  /** Request headers with lower-case names. */
  headers: HeaderBag;
  /** Aborted when the client goes away: the upstream request is aborted too. */
  signal?: AbortSignal;
  /** A shorter deadline for this request than the options' `deadlineMs` (the in-process client's `timeout`). */
  deadlineMs?: number;
  /**
   * Internal, for the Node bridge: the cancellation the request runs on, which its owner aborts with `clientClosed()`
   * when the client goes away. Saves a second one and a listener per request (issue 5).
   */
  cancel?: Cancellation;
  /**
   * Internal, for the Node bridge: the body was already held to `maxBodyBytes` by its declared, uncompressed length,
   * so one a host parser produced need not be encoded to be measured (a target that changes it encodes its own).
   */
  bodySizeChecked?: boolean;
  /**
   * A ticket from `enter()` the request already holds (an adapter that read its body first): `handle()` takes it
   * over, so that the request stays in the era a `drain()` called meanwhile waits for; the adapter does not `leave()`
   * it then.
   */
  ticket?: number;
}

/** The abort reason of a request whose client went away. */
export function clientClosed(): SwitchyardError {
  return new SwitchyardError('client_closed', 'The client closed the request.');
}

/** The abort reason of a request the host app answered itself first, e.g. a timeout middleware's 503. */
export function hostAnswered(status: number): SwitchyardError {
  return new SwitchyardError('host_answered', `The host app answered the request itself (status ${status}) before Switchyard did.`);
}

/** Whether a body's first byte past blanks opens a JSON object: a completion does; HTML, SSE or plain text do not. */
function startsAsObject(body: Buffer): boolean {
  for (const byte of body) {
    if (byte !== 0x20 && byte !== 0x0a && byte !== 0x0d && byte !== 0x09) return byte === 0x7b;
  }
  return false;
}

/** A 2xx of the wrong kind for the request (`upstream_invalid_response`), naming the content type it came with. */
function wrongKind(res: UpstreamResponse, answered: string, leaf: LeafNode): SwitchyardError {
  const secret = leaf.endpoint.secret;
  // The media type alone, never the upstream's parameters (a proxy may put anything there, a credential even); the
  // key masked before the cut, which could leave a part of it unrecognised.
  const type = header(res.headers, 'content-type')?.split(';', 1)[0]!.trim();
  const shown = type ? redact(type, secret).slice(0, 100) : undefined;
  return new SwitchyardError('upstream_invalid_response', `${upstreamOf(leaf)} answered ${answered} (${shown ? `content-type ${shown}` : 'no content-type'}).`);
}

/** The error of an upstream stream that failed after the response had started (its body reached the client). */
export function streamInterrupted(cause: unknown): SwitchyardError {
  const code = (cause as { code?: unknown } | null)?.code;
  const detail = typeof code === 'string' ? ` (${code})` : '';
  return new SwitchyardError('stream_interrupted', `The upstream stream failed after the response had started${detail}.`, { cause });
}

/** How delivery of the response body ended, reported by whoever writes it to the client. */
export interface DeliveryEnd {
  /**
   * The upstream stream failed after the response had started, or (the in-process client) a 2xx body was not what
   * the request asked for: recorded on the serving attempt (the request's status stays the upstream's unless
   * `status` says otherwise).
   */
  streamError?: unknown;
  /** The client went away before the response was complete. */
  clientClosed?: boolean;
  /**
   * The status the caller got when it is not the upstream's: the host app's own answer (a timeout middleware's
   * 503), or the in-process client's 502 for a JSON body it could not use. Logged as the request's status. (A stream
   * that fails once started stays logged with its 200, in process as on the HTTP route: the failure is its attempt's.)
   */
  status?: number;
}

export interface GatewayResponse {
  status: number;
  headers: Record<string, string>;
  /** The complete body (JSON), or null for a stream. */
  body: Buffer | null;
  /**
   * Server-sent events from the serving upstream, or null. Its first whole event has arrived; `consume` it (or
   * `toReadable(stream)`), or `destroy` it.
   */
  stream: BodyStream | null;
  /** Every upstream attempt so far, in order (the same list the log event carries). */
  attempts: readonly AttemptLog[];
  /**
   * Feed the whole events passed on here, as they go: the final usage chunk is read from the tail, error events
   * anywhere. Returns the events to send: one that quotes the serving target's key has it masked.
   */
  observe(pieces: readonly Buffer[]): readonly Buffer[];
  /**
   * Whether the events observed so far end the answer (every choice has its finish_reason), so that a client leaving
   * now had all of it. False when nobody reads the log event (no sink, no tracing): there is nothing to read on for.
   */
  answered(): boolean;
  /** `text` (an upstream's error event) with the serving target's key masked, as in error bodies. */
  redact(text: string): string;
  /** Call once when delivery ended: emits the log event. */
  end(how?: DeliveryEnd): void;
}

/** Upstream response headers a client may use; everything else (cookies, server details) stays behind. */
const FORWARDED_HEADERS = new Set([
  'content-type', 'x-request-id', 'apim-request-id', 'x-ms-region', 'openai-processing-ms', 'openai-version', 'retry-after', 'retry-after-ms',
  'x-ms-retry-after-ms', 'x-should-retry',
]);

/**
 * What is known of the log event before the response ends. `traceId` is null until made: an id the client did not
 * give is generated once the first attempt is on the wire; '' means none (the client's was invalid). The request
 * id is made with the event.
 */
type LogDraft = Pick<LogEvent, 'configId' | 'startedAt' | 'stream' | 'model' | 'attempts'> & {
  traceId: string | null;
  otel?: RequestTrace | null;
  /** Its ticket from `enter()`, given back to `leave()` once its event is emitted. */
  ticket: number;
};

type Outcome =
  | {
      ok: true;
      leaf: LeafNode;
      plan: UpstreamPlan;
      res: UpstreamResponse;
      body: Buffer | null;
      stream: BodyStream | null;
      /** The attempt's log entry, and when it started (`performance.now()`): a stream's attempt lasts until it ends. */
      entry: AttemptLog;
      startedAt: number;
    }
  | { ok: false; error: SwitchyardError };

/** Per-request state shared by the strategy walk. */
class RequestRun {
  readonly attempts: AttemptLog[] = [];
  /** The Switchyard processes the request came through, this one last, when another sent it (see `hopsOf`). */
  hops: string | null = null;
  /** Aborted by the client (gone), the deadline or the caller's signal; every attempt stops with it. */
  readonly cancel: Cancellation;
  private readonly encoded = new Map<string, string>();
  private deadlineTimer: NodeJS.Timeout | undefined;
  /** The caller's signal, listened to until delivery ends. */
  private clientSignal: AbortSignal | undefined;
  private readonly abortForClient = (): void => {
    this.cancel.abort(clientClosed());
  };
  readonly deadlineAt: number;

  constructor(
    readonly parsed: ParsedBody,
    /** OpenTelemetry spans of the request; null unless the host registered an SDK. */
    readonly otel: RequestTrace | null,
    deadlineMs: number,
    clientSignal: AbortSignal | undefined,
    cancel: Cancellation | undefined,
  ) {
    this.cancel = cancel ?? new Cancellation();
    this.deadlineAt = performance.now() + deadlineMs;
    this.deadlineTimer = setTimeout(
      () => this.cancel.abort(new SwitchyardError('deadline_exceeded', `No upstream answered within the ${deadlineMs} ms deadline.`)),
      deadlineMs,
    );
    this.deadlineTimer.unref();
    if (clientSignal) {
      if (clientSignal.aborted) this.abortForClient();
      else {
        clientSignal.addEventListener('abort', this.abortForClient, { once: true });
        this.clientSignal = clientSignal;
      }
    }
  }

  /** Delivery ended: a caller's long-lived signal must not keep this request (and its body) alive. */
  release(): void {
    this.clientSignal?.removeEventListener('abort', this.abortForClient);
  }

  /** The deadline covers finding a response; once it starts, only the client or the upstream ends it. */
  settle(): void {
    clearTimeout(this.deadlineTimer);
  }

  get stream(): boolean {
    return this.parsed.body.stream === true;
  }

  get aborted(): SwitchyardError | null {
    return this.cancel.aborted ? (this.cancel.reason as SwitchyardError) : null;
  }

  /**
   * The upstream body: the client's bytes unless an override or the Azure v1 model changes it, and then only the
   * members they set (encoded once per target).
   */
  bodyFor(leaf: LeafNode, plan: UpstreamPlan): string | Buffer {
    const { raw, body } = this.parsed;
    const changed = leaf.overrideParams !== null || plan.bodyModel !== undefined;
    if (!changed && raw !== null) return raw;
    if (!changed) return this.encode('', body);
    const key = `${leaf.path}\u0000${plan.bodyModel ?? ''}`;
    const set = plan.bodyModel === undefined ? leaf.overrideParams! : { ...leaf.overrideParams, model: plan.bodyModel };
    // Merged into the bytes as they came, or as the body encoded when the request started (the in-process client
    // checks its size then): a fallback target gets the body the caller sent, as the SDK's retries do, even if the
    // caller's `messages` array changed while the first target failed.
    const merged = this.encoded.get(key) ?? mergeMembers(raw === null ? this.encode('', body) : typeof raw === 'string' ? raw : raw.toString('utf8'), set);
    if (merged !== null) {
      this.encoded.set(key, merged);
      return merged;
    }
    return this.encode(key, { ...body, ...set });
  }

  /**
   * A body that came as an object (the in-process client's params, a host parser's result), measured before any
   * attempt as the JSON it encodes to (what a target sending it unchanged sends): the limit holds for it as for bytes
   * read from the socket, and not for what a target's override_params add.
   */
  checkObjectBodySize(maxBytes: number): void {
    if (this.parsed.raw === null && Buffer.byteLength(this.encode('', this.parsed.body)) > maxBytes) throw tooLarge(maxBytes);
  }

  /** JSON for the upstream, encoded once per distinct body. */
  private encode(key: string, value: object): string {
    let json = this.encoded.get(key);
    if (json === undefined) {
      try {
        json = JSON.stringify(value);
      } catch (err) {
        // The client's body, not an upstream failure to fall back from: nested too deeply for V8 (a RangeError), or
        // from the in-process client, a cycle or a BigInt (a TypeError).
        const why = err instanceof RangeError ? 'it is nested too deeply' : 'it holds a cycle or a value JSON cannot carry (a BigInt)';
        throw new SwitchyardError('invalid_request', `The request body could not be encoded as JSON: ${why}.`);
      }
      this.encoded.set(key, json);
    }
    return json;
  }
}

export class Gateway {
  readonly options: ResolvedOptions;
  private readonly client: UpstreamClient;
  private readonly chatPathSlash: string;
  /**
   * Requests started and not yet logged, counted by era: each `drain()` call that finds requests in flight starts a
   * new era and waits for the eras before it only, so that a gateway still serving (an in-process client's queue
   * worker) does not keep it waiting for requests started after it. `inFlight` counts the current era's (the only
   * count a request touches until a drain), `olderInFlight` the earlier ones' still open, oldest first.
   */
  private era = 0;
  private inFlight = 0;
  private readonly olderInFlight = new Map<number, number>();
  private drainWaiters: Array<{ upTo: number; resolve: () => void }> = [];
  /** A sink that never settled was named (see `leaveAfter`). */
  private sinkWaitWarned = false;

  constructor(options: SwitchyardOptions, deps: { client?: UpstreamClient | undefined } = {}) {
    this.options = resolveOptions(options);
    this.chatPathSlash = `${this.options.chatPath}/`;
    this.client = deps.client ?? createUpstreamClient();
  }

  /**
   * Resolves once every request started before this call has ended and emitted its log event (a stream: read to its
   * end, stopped or aborted), and the promises async sinks returned for it settled (at most 30 s each); requests
   * started after it are not waited for. On shutdown, after the server closed and before the log stores close: the
   * events of requests a forced close cut (`closeAllConnections()`) are emitted a few ticks after the server reports
   * itself closed.
   */
  drain(): Promise<void> {
    if (this.inFlight === 0 && this.olderInFlight.size === 0) return Promise.resolve();
    if (this.inFlight > 0) this.olderInFlight.set(this.era, this.inFlight);
    this.inFlight = 0;
    const upTo = this.era++;
    return new Promise((resolve) => this.drainWaiters.push({ upTo, resolve }));
  }

  /** Requests started and not yet logged (each one's event emitted and its async sinks done): what drain() waits for. */
  get requestsInFlight(): number {
    let open = this.inFlight;
    for (const count of this.olderInFlight.values()) open += count;
    return open;
  }

  /**
   * For adapters that read the body before `handle()`: the request counts as in flight (for `drain()`) from now. Give
   * the ticket this returns to `handle()` (`ticket`) or `reject()`, which take it over, or to `leave()` if neither
   * gets it.
   */
  enter(): number {
    this.inFlight++;
    return this.era;
  }

  /** `ticket`: what `enter()` returned. */
  leave(ticket: number): void {
    if (ticket === this.era) {
      this.inFlight--;
      return;
    }
    const open = this.olderInFlight.get(ticket);
    // Not a ticket of a request in flight (given back twice, or none): nothing to count down.
    if (open === undefined) return;
    const left = open - 1;
    if (left > 0) return void this.olderInFlight.set(ticket, left);
    this.olderInFlight.delete(ticket);
    // Eras only grow, so the map's first key is the oldest still open: waiters up to an era before it are done.
    const oldest = this.olderInFlight.keys().next().value ?? this.era;
    const done = this.drainWaiters.filter((w) => w.upTo < oldest);
    if (done.length === 0) return;
    this.drainWaiters = this.drainWaiters.filter((w) => w.upTo >= oldest);
    for (const w of done) w.resolve();
  }

  /**
   * Gives a request's ticket back once its event reached the sinks, and the async ones among them (an `async onLog`
   * shipping it somewhere) are done: drain() resolves with every event written, as a serverless host needs before
   * its process is frozen.
   */
  private leaveAfter(sinking: Promise<unknown> | null, ticket: number): void {
    if (sinking === null) return this.leave(ticket);
    let given = false;
    const giveBack = (): void => {
      if (given) return;
      given = true;
      clearTimeout(timer);
      this.leave(ticket);
    };
    // A sink that never settles (a shipper's request with no timeout) must not hold a shutdown forever.
    const timer = setTimeout(() => {
      if (!this.sinkWaitWarned) {
        this.sinkWaitWarned = true;
        process.emitWarning(`An async Switchyard log sink has not settled within ${SINK_WAIT_MS / 1000} s: drain() stops waiting for it (give the sink a timeout of its own).`, 'SwitchyardLogSinkWarning');
      }
      giveBack();
    }, SINK_WAIT_MS);
    // Not unref'd: a process awaiting drain() would exit here, before what follows it (a store's close).
    void sinking.then(giveBack);
  }

  /** Runs one chat completion request through its routing config. Never throws: errors become responses. */
  async handle(req: GatewayRequest): Promise<GatewayResponse> {
    // Until its response's end(): in flight for drain().
    const ticket = req.ticket ?? this.enter();
    const startedAt = Date.now();
    const t0 = performance.now();
    const otel = startRequestTrace(req.headers);
    const context = contextTraceId(req.headers, otel?.traceId);
    const log: LogDraft = {
      ticket,
      // The trace context's until the id header is read; null until known (see errorResponse).
      traceId: context ?? null,
      configId: null,
      startedAt,
      stream: false,
      model: null,
      attempts: [],
      otel,
    };
    let run: RequestRun | undefined;
    try {
      // An id header refused here leaves the trace context's: the 400's log event still leads to its trace.
      log.traceId = givenTraceId(req.headers) ?? log.traceId;
      const configId = givenConfigId(req.headers);
      log.configId = this.configIdForLog(configId);
      const hops = this.hopsOf(req.headers);
      const root = this.pickConfig(configId);
      const parsed = parseBody(req.body, this.options.maxBodyBytes);
      log.model = parsed.body.model;
      log.stream = parsed.body.stream === true;
      const deadlineMs = req.deadlineMs === undefined ? this.options.deadlineMs : Math.min(req.deadlineMs, this.options.deadlineMs);
      run = new RequestRun(parsed, log.otel ?? null, deadlineMs, req.signal, req.cancel);
      run.hops = hops;
      log.attempts = run.attempts;
      if (!req.bodySizeChecked) run.checkObjectBodySize(this.options.maxBodyBytes);
      const pending = this.runNode(root, run);
      // undici writes the first attempt's request synchronously: from here on, work overlaps the upstream's.
      log.traceId ??= newTraceId();
      const outcome = await pending;
      run.settle();
      if (!outcome.ok) {
        run.release();
        return this.errorResponse(outcome.error, log, t0);
      }
      return this.upstreamResponse(outcome, run, log, t0);
    } catch (err) {
      run?.settle();
      run?.release();
      return this.errorResponse(SwitchyardError.from(err), log, t0);
    }
  }

  /** Whether a request path is the chat route (`{basePath}/chat/completions`, with or without a trailing slash). */
  isChatPath(path: string): boolean {
    return path === this.options.chatPath || path === this.chatPathSlash;
  }

  private mountWarned = false;
  /**
   * The route and `basePath` disagree, so every chat request would reach the host's 404 with no other sign. Said once.
   * An adapter calls this for a POST it passes on while it is a route's own handler
   * (`router.post('/chat/completions', ...)`), or mounted under a path (`app.use('/v1', ...)`, given as `mount`)
   * that the framework strips from what it passes on.
   */
  warnRouteMismatch(path: string, mount?: string, route?: unknown): void {
    // Only a chat path under another base: a route that also matches other paths (`/v1/{*rest}`) passes those on.
    const base = /^(.*)\/chat\/completions\/?$/.exec(path)?.[1];
    if (this.mountWarned || base === undefined) return;
    this.mountWarned = true;
    // A route with parameters (`/t/:tenant/v1/chat/completions`), several paths or a RegExp: a basePath taken from
    // this request would serve one tenant, and the others would 404 with nothing more said. (A bare wildcard,
    // `/{*rest}`, names no parameter: a path it got that is not the chat route is the host's.)
    if (route !== undefined && (typeof route !== 'string' || /:\w|\{(?!\*)|\(/.test(route))) {
      process.emitWarning(
        `Switchyard is the handler of route ${String(route)}, which got POST ${path}, but it serves POST ${this.options.chatPath}: a basePath names one path, not a route's parameters. Mount it below them with basePath: '' (Express: app.use('/t/:tenant/v1', switchyard); Koa: a middleware before it that sets ctx.path = '/chat/completions'); the request went on to next()`,
        'SwitchyardMountWarning',
      );
      return;
    }
    const got = mount === undefined ? ` is the handler of a route that got POST ${path}` : `, mounted at ${mount}, got POST ${mount}${path} as POST ${path}`;
    process.emitWarning(
      `Switchyard${got}, but it serves POST ${this.options.chatPath} (basePath counts from the path the framework passes it: here, basePath: '${base}'); the request went on to next()`,
      'SwitchyardMountWarning',
    );
  }

  /**
   * A provider refusing a target's key (revoked, mistyped) does not heal by itself, yet under a fallback config every
   * request then succeeds on the next target, with no sign but the log's attempts. Said once per key.
   */
  private warnKeyRefused(leaf: LeafNode, origin: string): void {
    warnOncePerProcess(KEYS_REFUSED_WARNED, refusedKeyId(leaf, origin), 'SwitchyardCredentialWarning', () => {
      return `${leaf.path} (${leaf.provider}, ${keyName(leaf)}) answered 401: the provider refuses its key. Check it; until then every target with that key fails (said once, and again if it is refused after it worked).`;
    });
  }

  /**
   * A key whose account is out of credit (`insufficient_quota`): a 429 like a rate limit, but one that lasts until
   * someone pays, while a fallback hides it from every caller. Said once per key, as a refused key is.
   */
  private warnQuotaSpent(leaf: LeafNode, origin: string): void {
    warnOncePerProcess(KEYS_REFUSED_WARNED, `quota ${refusedKeyId(leaf, origin)}`, 'SwitchyardCredentialWarning', () => {
      return `${leaf.path} (${leaf.provider}, ${keyName(leaf)}) answered 429 insufficient_quota: its account is out of credit or over its spending limit. Switchyard does not retry it; until it is topped up, every request pays for that attempt (said once, and again if it runs out after it worked).`;
    });
  }

  /**
   * A 404 for the chat path itself (a `custom_host` without `/v1`, a misspelt Azure `api_version` or deployment): every
   * request to that target fails, and a fallback hides it; on Azure, usually the fallback, it shows only in an outage.
   * Where the upstream finds the model by name, a 404 that names it, or says it is not found (OpenAI's
   * `model_not_found`, Azure v1's `DeploymentNotFound`), is the client's model, not the target's address (vLLM, Ollama
   * name it). Said once per target's address.
   */
  private warnNotFound(leaf: LeafNode, plan: UpstreamPlan, entry: AttemptLog): void {
    const said = entry.upstreamError;
    if (leaf.endpoint.modelByName && (said?.code === 'model_not_found' || said?.code === 'DeploymentNotFound' || said?.message.includes(plan.model))) return;
    warnOncePerProcess(NOT_FOUND_WARNED, `${plan.origin}${plan.path}`, 'SwitchyardConfigWarning', () => {
      const quoted = said?.message ? ` ("${said.message.slice(0, 120)}")` : '';
      return `${targetName(leaf)} answered 404${quoted} to POST ${plan.path}: check its custom_host or endpoint (OpenAI-compatible servers serve under /v1, Azure under /openai), its api_version and its deployment (said once per target address).`;
    }, 100);
  }

  /**
   * `request_timeout` is in milliseconds, where openai-python's `timeout` is in seconds (its default: 600): a
   * `request_timeout: 30` ends every attempt at OpenAI's or Azure's own host, which no chat completion answers so fast,
   * and a fallback hides it. Said once per target when such a timeout fires; a sub-second timeout meant so stays.
   */
  private warnShortTimeout(leaf: LeafNode, ms: number): void {
    warnOncePerProcess(SHORT_TIMEOUT_WARNED, `${leaf.provider} ${leaf.virtualKey ?? ''} ${leaf.path} ${ms}`, 'SwitchyardConfigWarning', () => {
      return `${targetName(leaf)} timed out after its request_timeout of ${ms} ms: request_timeout is in milliseconds (${ms} seconds is ${ms * 1000}); said once per target.`;
    }, 100);
  }

  /** A key said to be refused (or out of credit) answered, where it was: a later refusal is said again. */
  private keyWorks(leaf: LeafNode, origin: string): void {
    const id = refusedKeyId(leaf, origin);
    KEYS_REFUSED_WARNED.delete(id);
    KEYS_REFUSED_WARNED.delete(`quota ${id}`);
  }

  /**
   * For an adapter mounted under a path the framework cuts from what it passes on (`app.use('/v1', ...)`, koa-mount):
   * a POST it passes on whose full path is the chat route was meant for it, with the mount counted twice.
   */
  warnIfMounted(path: string, fullPath: string): void {
    if (this.mountWarned) return;
    // Mounted at the chat route itself (`app.use('/v1/chat/completions', auth, switchyard)`): no basePath can serve the
    // bare `/` the framework passes on, so the warning says how to mount it instead.
    const route = (path === '/' || path === '') && /^(.*)\/chat\/completions\/?$/.exec(fullPath);
    if (route) {
      this.mountWarned = true;
      const mount = withoutSlash(fullPath);
      const base = route[1] || '/';
      process.emitWarning(
        `Switchyard, mounted at the chat route ${mount}, got POST ${mount} as POST /, and it serves POST {basePath}/chat/completions below its mount: mount it at ${base} with basePath: '', or make it the handler of a POST route on ${mount}; the request went on to next()`,
        'SwitchyardMountWarning',
      );
      return;
    }
    // The mount cut from the path: `path` is what is left of a full path that is the chat route, or that ends in it
    // under a prefix of the host's (`app.use('/t/:tenant/v1', ...)` with the default basePath, /v1, counted twice) with
    // the mount inside basePath. A host route of its own below a right mount (`/api/legacy/v1/chat/completions`) is not.
    if (fullPath.length <= path.length || !fullPath.endsWith(path)) return;
    const { chatPath } = this.options;
    const underPrefix = withoutSlash(fullPath).endsWith(chatPath) && chatPath.endsWith(withoutSlash(path));
    if (!this.isChatPath(fullPath) && !underPrefix) return;
    this.warnRouteMismatch(path, fullPath.slice(0, fullPath.length - path.length));
  }

  /**
   * The error response (and log event) for a request refused before the engine ran, e.g. a body too large. `ticket`:
   * one from `enter()` the request holds, taken over as by `handle()`.
   */
  reject(error: SwitchyardError, headers: HeaderBag, ticket = this.enter()): GatewayResponse {
    // A span as for every request: span-based error rates count these refusals as the log does.
    const otel = startRequestTrace(headers);
    // An unusable trace id is not echoed: the refusal gets its trace context's, else a fresh one (see errorResponse).
    let traceId = contextTraceId(headers, otel?.traceId) ?? null;
    try {
      traceId = givenTraceId(headers) ?? traceId;
    } catch {
      // kept: the trace context's
    }
    let configId: string | null;
    try {
      configId = this.configIdForLog(givenConfigId(headers));
    } catch {
      configId = null;
    }
    const log = { traceId, configId, startedAt: Date.now(), stream: false, model: null, attempts: [], otel, ticket };
    return this.errorResponse(error, log, performance.now());
  }

  /**
   * The Switchyard engines a request passed through before, with this one added, or null when a client sent it (the
   * usual case: upstream calls then carry this engine's name alone). Refuses one this engine sent already: a target's
   * address leads back here, and each hop would start another without end.
   */
  private hopsOf(headers: HeaderBag): string | null {
    const given = header(headers, HOP_HEADER);
    if (given === undefined) return null;
    const hops = given.split(',').map((hop) => hop.trim());
    // Only names as Switchyard makes them go on upstream: a client's own text in this header is not forwarded.
    if (!hops.every((hop) => HOP_NAME.test(hop))) return null;
    // Only this engine's own name proves a loop through its config: a client can send any chain of names, and its
    // made-up one must neither claim a config fault nor use up the warning a real loop would give.
    if (hops.includes(this.hop)) {
      if (!this.loopWarned) {
        this.loopWarned = true;
        process.emitWarning(LOOP_MESSAGE, 'SwitchyardConfigWarning');
      }
      throw new SwitchyardError('loop_detected', LOOP_MESSAGE);
    }
    // A loop through several processes (each its own name) comes back to another one first: refused by length.
    if (hops.length >= MAX_HOPS) {
      if (!this.chainWarned) {
        this.chainWarned = true;
        process.emitWarning(CHAIN_MESSAGE, 'SwitchyardConfigWarning');
      }
      throw new SwitchyardError('loop_detected', CHAIN_MESSAGE);
    }
    return `${given}, ${this.hop}`;
  }

  private loopWarned = false;
  private chainWarned = false;
  /** This engine's name in `HOP_HEADER`: random, so that it says nothing about the host. */
  private readonly hop = randomBytes(6).toString('hex');
  /** Each endpoint's headers with this engine's hop name (null: a provider's own host), made once. */
  private readonly hopHeaders = new WeakMap<object, Record<string, string> | null>();

  /** An attempt's headers: the endpoint's, and the engines the request passed through (see `hopsOf`). */
  private headersOut(plan: UpstreamPlan, hops: string | null): Record<string, string> {
    let withHop = this.hopHeaders.get(plan.headers);
    if (withHop === undefined) {
      // The providers' own hosts: no Switchyard behind them, so no hop header to them.
      withHop = isProviderHost(plan.origin) ? null : { ...plan.headers, [HOP_HEADER]: this.hop };
      this.hopHeaders.set(plan.headers, withHop);
    }
    if (withHop === null) return plan.headers;
    // A request another Switchyard sent on: the engines it passed through go on with it.
    return hops === null ? withHop : { ...withHop, [HOP_HEADER]: hops };
  }

  /**
   * A model missing from a target's `deployments` map: a fallback to that target cannot happen for it, with no sign
   * but the log's attempts (the client gets the first target's 429). Said once per target and model in the process
   * (a gateway rebuilt on a config reload says it once too).
   */
  private warnNotDeployed(leaf: LeafNode, model: string): void {
    const id = `${leaf.provider} ${leaf.virtualKey ?? leaf.path} ${model}`;
    // At most 100 models: they come from clients.
    warnOncePerProcess(NOT_DEPLOYED_WARNED, id, 'SwitchyardConfigWarning', () => {
      const target = targetName(leaf);
      return `${target} has no deployment for model ${JSON.stringify(model)}: requests for it cannot fall back there. Add it to the target's deployments, or give a deployment_id (said once per target and model).`;
    }, 100);
  }

  /**
   * The config id a log event keeps: an unknown one as asked, so its 400 is found under the id the client sent,
   * unless it looks like an API key pasted into the wrong header (a JSON config is refused before this).
   */
  private configIdForLog(id: string | undefined): string | null {
    if (id === undefined) return null;
    return this.options.configs.has(id) || !looksLikeApiKey(id) ? id : null;
  }

  private pickConfig(id: string | undefined): RouteNode {
    if (id !== undefined) {
      const config = this.options.configs.get(id);
      if (!config) {
        // Masked where it may be a key pasted into the wrong header: error messages are logged.
        throw new SwitchyardError('unknown_config', `Unknown routing config "${looksLikeApiKey(id) ? maskedKey(id) : id}" in x-switchyard-config.`, {
          param: 'x-switchyard-config',
        });
      }
      return config;
    }
    if (!this.options.defaultConfig) {
      throw new SwitchyardError('unknown_config', 'No default routing config: name one in the x-switchyard-config header (in process: the `configId` option).', {
        param: 'x-switchyard-config',
      });
    }
    return this.options.defaultConfig;
  }

  /** `moreAfter`: an enclosing fallback walk has a later target that can take the request (see `runStrategy`). */
  private runNode(node: RouteNode, run: RequestRun, moreAfter = false): Promise<Outcome> {
    if (node.kind === 'strategy') return this.runStrategy(node, run, moreAfter);
    const circuit = node.circuit;
    if (circuit === null) return this.runTarget(node, run);
    // A target with a circuit (`cb_config`): its outcome, after its retries, counts; a half-open one's may close it.
    const probe = circuit.enter(performance.now());
    return this.runTarget(node, run).then(
      (outcome) => this.count(node, circuit, probe, outcome, run),
      (err: unknown) => {
        // Not the target's doing (a body that cannot be encoded): the next request tests it.
        circuit.release(probe);
        throw err;
      },
    );
  }

  /**
   * `moreAfter`: an enclosing fallback walk has a later target that can take the request, so this strategy may skip
   * every open target of its own (the walk out there moves on), not ask its last one as a last resort.
   */
  private async runStrategy(node: StrategyNode, run: RequestRun, moreAfter: boolean): Promise<Outcome> {
    if (node.mode === 'single' && !node.guarded) return this.runNode(node.children[0]!, run);
    if (node.mode === 'loadbalance') {
      // Targets whose circuit is open (`cb_config`), or null: none to skip.
      const skipped = node.guarded ? this.skippable(node, run) : null;
      // Picked by weight as if none were open; an open pick is logged as skipped and another picked among the rest
      // (the same odds as picking among the rest at once), so the log and metrics show what the breaker did.
      let pick = pickWeighted(node.children, null);
      if (skipped?.[pick]) {
        this.skip(node.children[pick]!, run);
        pick = pickWeighted(node.children, skipped);
      }
      return this.runNode(node.children[pick]!, run, moreAfter);
    }
    // What the last upstream tried did (a response, or a transport failure), kept in case no later target can
    // even be tried.
    let tried: Outcome | undefined;
    let last: Outcome | undefined;
    const keep = (outcome: Outcome | undefined): void => {
      if (tried?.ok) tried.res.discard();
      tried = outcome;
    };
    const settle = (outcome: Outcome): Outcome => {
      // A target that could not be tried (no deployment for the model) does not hide what happened upstream: an
      // OpenAI 429 with its retry-after, or a 502/504 the SDK retries, is worth more than a 400 it never would.
      if (tried && untried(outcome)) return tried;
      keep(undefined);
      return outcome;
    };
    for (let i = 0; i < node.children.length; i++) {
      // Asked as the walk reaches it (a cooldown may have ended while an earlier target answered), and skipped only
      // for a later target that can take the request: the last one that can is asked even open, rather than answer
      // with a failure.
      const child = node.children[i]!;
      if (node.guarded && isOpen(child, performance.now()) && (moreAfter || this.laterTarget(node, i, run))) {
        this.skip(child, run);
        continue;
      }
      // A nested strategy with circuits below may skip all of its open targets when the walk can move on after it.
      const after = child.kind === 'strategy' && child.guarded && (moreAfter || (node.mode === 'fallback' && this.laterTarget(node, i, run)));
      const outcome = await this.runNode(child, run, after);
      // `single` answers with the first target it runs (the first not skipped, as in Portkey).
      if (node.mode === 'single' || !triggersFallback(outcome.ok ? outcome.res.status : null, node.onStatusCodes) || run.aborted) return settle(outcome);
      last = outcome;
      if (!untried(outcome)) keep(outcome);
    }
    // Every target run asked for a fallback: the last upstream's answer (or failure), else the last target's error;
    // none run (all skipped, for a walk out there to move on): no upstream was called.
    return tried ?? last ?? { ok: false, error: new SwitchyardError('circuit_open', `Every target of ${node.path} was skipped, its circuit open.`) };
  }

  /**
   * The children of a `loadbalance` to skip, open (a target's circuit; a nested strategy's, all of its targets'); null
   * when none is open, or when none of the others could be picked and serve the request (all open, as Portkey has it,
   * or the rest have no weight or no deployment for its model): then none is skipped.
   */
  private skippable(node: StrategyNode, run: RequestRun): boolean[] | null {
    const now = performance.now();
    let skipped: boolean[] | null = null;
    node.children.forEach((child, i) => {
      if (isOpen(child, now)) (skipped ??= new Array<boolean>(node.children.length).fill(false))[i] = true;
    });
    if (skipped === null) return null;
    const open: boolean[] = skipped;
    return node.children.some((child, i) => !open[i] && child.weight > 0 && canServe(child, run.parsed)) ? open : null;
  }

  /**
   * Whether child `i`, open, may be skipped: a `fallback` walk has a target after it that can take the request's
   * model, and will ask one (one not open, else the last of them, open or not); `single` uses the next one, which must
   * take it (each skip checks the next, so where it lands can).
   */
  private laterTarget(node: StrategyNode, i: number, run: RequestRun): boolean {
    if (node.mode === 'single') return i + 1 < node.children.length && canServe(node.children[i + 1]!, run.parsed);
    for (let j = i + 1; j < node.children.length; j++) if (canServe(node.children[j]!, run.parsed)) return true;
    return false;
  }

  private count(leaf: LeafNode, circuit: Circuit, probe: boolean, outcome: Outcome, run: RequestRun): Outcome {
    // Not the target's doing: the request was aborted (the client left, the deadline), or no upstream was called.
    if (run.aborted || untried(outcome)) {
      circuit.release(probe);
      return outcome;
    }
    const status = outcome.ok ? outcome.res.status : null;
    const change = circuit.record(circuit.isFailure(status, !outcome.ok && outcome.error.code === 'upstream_timeout'), performance.now(), probe);
    if (change) {
      const seconds = Math.round(circuit.policy.cooldownMs / 1000);
      const target = targetName(leaf, circuit.name);
      const why = status ?? (outcome.ok ? '' : outcome.error.code);
      const message =
        change.kind === 'opened'
          ? `${target} failed ${change.failures} of its last ${change.requests} requests (within ${seconds} s; the last: ${why}): its circuit is open (cb_config), and requests skip it for ${seconds} s.`
          : change.kind === 'reopened'
            ? `${target} still fails (the request let through after the cooldown: ${why}): requests skip it for another ${seconds} s.`
            : `${target} answers again: its circuit is closed.`;
      process.emitWarning(message, 'SwitchyardCircuitWarning');
    }
    return outcome;
  }

  /** Logs the targets under a skipped child, each open: no upstream called, the request moves on. */
  private skip(child: RouteNode, run: RequestRun): void {
    const t = performance.now();
    for (const leaf of leavesOf(child)) {
      const closesIn = Math.ceil((leaf.circuit?.closesInMs(t) ?? 0) / 1000);
      // Past its cooldown, one request tests the target while the others skip it.
      const until = closesIn > 0 ? `it is tried again in ${closesIn} s` : 'another request is testing it';
      const message = leaf.circuit?.isOpen(t)
        ? `Skipped: its circuit is open after repeated failures (cb_config); ${until}.`
        : `Skipped with ${child.path}, whose targets are open (cb_config).`;
      const entry: AttemptLog = {
        target: leaf.path, provider: leaf.provider, ...(leaf.virtualKey !== undefined && { virtualKey: leaf.virtualKey }), model: modelAsked(leaf, run.parsed), status: null, durationMs: 0,
        error: { code: 'circuit_open', message },
      };
      run.attempts.push(entry);
      run.otel?.attemptStarted(t, entry, undefined, run.parsed.body, leaf.overrideParams);
    }
  }

  /** One target, with its retries. */
  private async runTarget(leaf: LeafNode, run: RequestRun): Promise<Outcome> {
    for (let retry = 0; ; retry++) {
      const outcome = await this.attempt(leaf, run);
      const spent = outcome.ok && quotaSpent(outcome.res.status, outcome.entry);
      if (spent) this.warnQuotaSpent(leaf, outcome.plan.origin);
      else if (outcome.ok && outcome.res.status === 404) this.warnNotFound(leaf, outcome.plan, outcome.entry);
      const policy = leaf.retry;
      if (!policy || retry >= policy.attempts || run.aborted) return outcome;
      // An account out of credit answers the same on every retry, and so does an upstream that says not to retry
      // (`x-should-retry: false`, as the SDK reads it: a Switchyard upstream that ran its own chain already).
      const retryable = outcome.ok
        ? !spent && policy.onStatusCodes.has(outcome.res.status) && header(outcome.res.headers, 'x-should-retry') !== 'false'
        : retriesError(outcome.error, policy.onStatusCodes);
      if (!retryable) return outcome;
      const delay = retryDelayMs(retry, {
        capMs: this.options.maxRetryDelayMs,
        header: policy.useRetryAfterHeader && outcome.ok ? (name) => header(outcome.res.headers, name) : undefined,
      });
      if (delay === null || performance.now() + delay >= run.deadlineAt) return outcome;
      if (outcome.ok) outcome.res.discard();
      await sleep(delay, run.cancel);
      if (run.aborted) return { ok: false, error: run.aborted };
    }
  }

  private async attempt(leaf: LeafNode, run: RequestRun): Promise<Outcome> {
    // Already aborted (the client left early, or the caller's signal fired): no upstream call, and none logged.
    if (run.aborted) return { ok: false, error: run.aborted };
    const model = modelAsked(leaf, run.parsed);
    const plan = leaf.endpoint.plan(model);
    // Encoded before the attempt counts: a body that cannot be encoded fails the request (a 400), no attempt of it.
    const payload = plan instanceof SwitchyardError ? '' : run.bodyFor(leaf, plan);
    const t = performance.now();
    const entry: AttemptLog = { target: leaf.path, provider: leaf.provider, ...(leaf.virtualKey !== undefined && { virtualKey: leaf.virtualKey }), model, status: null, durationMs: 0 };
    run.attempts.push(entry);
    if (plan instanceof SwitchyardError) {
      run.otel?.attemptStarted(t, entry, undefined, run.parsed.body, leaf.overrideParams);
      entry.error = { code: plan.code, message: plan.message };
      // Only behind a failure that was not the model's (a 429, a 5xx, no connection): a client's mistyped model, which
      // a provider answers with a 404, must not use up the warnings meant for a deployment the config lacks.
      if (plan.code === 'model_not_deployed' && run.attempts.some(failedNotForTheModel)) this.warnNotDeployed(leaf, model);
      return { ok: false, error: plan };
    }
    entry.model = plan.model;
    run.otel?.attemptStarted(t, entry, plan.origin, run.parsed.body, leaf.overrideParams);

    // A per-attempt timeout needs its own signal; without one the request's (client + deadline) is enough.
    let signal: Cancellation = run.cancel;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    if (leaf.requestTimeoutMs !== null) {
      const attemptCancel = new Cancellation();
      onAbort = () => attemptCancel.abort(run.cancel.reason);
      run.cancel.addEventListener('abort', onAbort);
      const ms = leaf.requestTimeoutMs;
      timer = setTimeout(() => {
        if (ms < 1000 && isProviderHost(plan.origin)) this.warnShortTimeout(leaf, ms);
        attemptCancel.abort(new SwitchyardError('upstream_timeout', `${upstreamOf(leaf)} did not answer within ${ms} ms.`));
      }, ms);
      signal = attemptCancel;
    }
    // A stream being handed to the client still needs the request's aborts (client gone) to reach its upstream.
    let streaming = false;
    let failedRequestId: string | undefined;
    try {
      const headers = this.headersOut(plan, run.hops);
      const upstream = { origin: plan.origin, path: plan.path, headers, body: payload, signal };
      const res = await (run.otel ? run.otel.dispatch(() => this.client.request(upstream)) : this.client.request(upstream));
      entry.status = res.status;
      // Set once the body was read (or failed to be): after upstreamError, in the log event's field order.
      if (res.status >= 400) failedRequestId = upstreamRequestIdOf(res.headers, leaf);
      if (res.status === 401) this.warnKeyRefused(leaf, plan.origin);
      // An event stream's key works once its first event is no error (below): a 200 status line says nothing yet.
      else if (KEYS_REFUSED_WARNED.size > 0 && res.status < 300 && !(run.stream && isEventStream(res.headers, true))) this.keyWorks(leaf, plan.origin);
      if (res.status < 400 && res.status >= 300) {
        // A redirect (a custom_host on http where https is served, a moved path): the SDK could not follow it either
        // (no Location is forwarded, and a POST must not be replayed elsewhere unasked). Nothing was sent: fall back.
        res.discard();
        throw new SwitchyardError('upstream_invalid_response', `${upstreamOf(leaf)} answered ${res.status}, a redirect: Switchyard does not follow redirects; point the target at the address it redirects to.`);
      }
      let body: Buffer | null = null;
      let stream: BodyStream | null = null;
      const encoding = contentCoding(res.headers['content-encoding']);
      if (run.stream && res.status < 300 && isEventStream(res.headers, true)) {
        if (encoding !== null) {
          // We ask for identity: a compressed stream cannot be passed event by event. Nothing was sent yet: fall back.
          res.discard();
          throw new SwitchyardError('upstream_unreachable', `${upstreamOf(leaf)} compressed its event stream (${encoding}).`);
        }
        try {
          stream = await res.stream();
        } catch (err) {
          if (err instanceof StreamStartError) throw new SwitchyardError('upstream_unreachable', `${upstreamOf(leaf)} ${err.message}.`);
          if (!(err instanceof FirstEventError)) throw err;
          // The upstream's error as a stream's first event: the error answer it stands for (a status the fallback and
          // retry rules read, the upstream's error as JSON for the client), not a broken connection.
          const { error, message } = err.event;
          entry.error = { code: 'upstream_error_event', message: redact(message || 'The upstream sent an error event.', leaf.endpoint.secret) };
          entry.durationMs = roundMs(performance.now() - t);
          const body = maskSecret(Buffer.from(errorEnvelopeJson(error, message)), leaf.endpoint.secret);
          const said = upstreamErrorOf(error, leaf.endpoint.secret);
          if (said) entry.upstreamError = said;
          const requestId = upstreamRequestIdOf(res.headers, leaf);
          if (requestId !== undefined) entry.upstreamRequestId = requestId;
          const status = errorEventStatus(error);
          if (status === 401) this.warnKeyRefused(leaf, plan.origin);
          return { ok: true, leaf, plan, res: errorAnswer(res, status), body, stream: null, entry, startedAt: t };
        }
        if (KEYS_REFUSED_WARNED.size > 0) this.keyWorks(leaf, plan.origin);
        streaming = true;
      } else if (run.stream && res.status < 300) {
        // A JSON answer to a stream request would reach the SDK as an empty, successful stream: nothing was sent yet.
        res.discard();
        throw wrongKind(res, 'a stream request with something other than an event stream', leaf);
      } else if (res.status < 300 && isEventStream(res.headers)) {
        // An event stream for a JSON request: not waited for to its end (it may never end, and it would be held whole).
        res.discard(true);
        throw wrongKind(res, 'a JSON request with an event stream', leaf);
      } else {
        const max = res.status >= 400 ? MAX_ERROR_BODY_BYTES : MAX_DECODED_BYTES;
        body = await res.read(max);
        if (body !== null && encoding !== null) body = decoded(res, body, encoding, max, leaf);
        // A completion is a few megabytes at most: a body past the cap is no answer (and would be held whole in the
        // host's memory), so the next target is asked, as for an answer of the wrong kind.
        if (body === null && res.status < 400) throw new SwitchyardError('upstream_invalid_response', `${upstreamOf(leaf)} answered ${res.status} with a body over ${MAX_DECODED_BYTES} bytes; it was dropped.`);
        if (body === null) body = oversizedError(res, entry);
        else if (res.status >= 400) {
          body = maskSecret(body, leaf.endpoint.secret);
          const said = upstreamErrorIn(body, leaf.endpoint.secret);
          if (said) entry.upstreamError = said;
        }
        if (failedRequestId !== undefined) entry.upstreamRequestId = failedRequestId;
        if (res.status < 300) {
          // A UTF-8 BOM opening the JSON (an OpenAI-compatible server may send one): the SDK's json() drops it too.
          if (body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) body = body.subarray(3);
          // A success that is no completion (a proxy's HTML page, an event stream): the SDK would hand business code
          // a string, and the next target may answer properly. As for a stream answered in JSON: nothing was sent.
          if (!startsAsObject(body)) throw wrongKind(res, 'with a body that is not a JSON object', leaf);
          // A proxy's error sent as a 200 may quote the key as well (one search: a body without it is not copied).
          if (body.includes(leaf.endpoint.secret)) body = maskSecret(body, leaf.endpoint.secret);
          // A completion labelled otherwise (none, text/plain): the SDK reads JSON by the media type alone.
          if (!sdkReadsAsJson(res.headers['content-type'])) res.headers = { ...res.headers, 'content-type': 'application/json' };
        }
      }
      entry.durationMs = roundMs(performance.now() - t);
      return { ok: true, leaf, plan, res, body, stream, entry, startedAt: t };
    } catch (err) {
      const error = transportError(signal.aborted ? signal.reason : err, leaf);
      entry.durationMs = roundMs(performance.now() - t);
      entry.error = { code: error.code, message: error.message };
      // An error answer whose body then failed (cut, timed out): its request id still says which call it was.
      if (failedRequestId !== undefined && entry.upstreamRequestId === undefined) entry.upstreamRequestId = failedRequestId;
      return { ok: false, error };
    } finally {
      clearTimeout(timer);
      // Retries and fallbacks would otherwise pile one listener per attempt on the request's signal.
      if (onAbort && !streaming) run.cancel.removeEventListener('abort', onAbort);
    }
  }

  private upstreamResponse(outcome: Extract<Outcome, { ok: true }>, run: RequestRun, log: LogDraft, t0: number): GatewayResponse {
    const { leaf, plan, res, body, stream, entry } = outcome;
    const headers: Record<string, string> = {};
    for (const name in res.headers) {
      const value = res.headers[name];
      if (value !== undefined && (FORWARDED_HEADERS.has(name) || (name.startsWith('x-ratelimit-') && !HOST_LIMITER_HEADERS.has(name)) || name.startsWith('x-rate-limit-'))) {
        // A proxy that echoes the credential in a header it sets: masked, as in an error body.
        headers[name] = redact(Array.isArray(value) ? value.join(', ') : value, leaf.endpoint.secret);
      }
    }
    // A stream that came unlabelled is said to be one (a browser's EventSource, a proxy's buffering, go by the label).
    if (stream && !headers['content-type']?.trim()) headers['content-type'] = 'text/event-stream';
    const first = run.attempts[0]!;
    const fallback = first.target !== leaf.path;
    this.switchyardHeaders(headers, log.traceId ?? '', run.attempts, fallback, leaf.path, res.status);
    // The SDK would retry the 429 twice more, to the same answer.
    if (quotaSpent(res.status, entry)) headers['x-should-retry'] = 'false';
    const servedBy: ServedBy = { target: leaf.path, provider: leaf.provider, ...(leaf.virtualKey !== undefined && { virtualKey: leaf.virtualKey }), model: plan.model };
    // Usage is read from a stream's tail only for whoever reads the log event.
    const tail = body || (this.options.sinks.length === 0 && !log.otel?.recording) ? null : new StreamTail(choicesAsked(leaf, run.parsed));
    let ended = false;
    return {
      status: res.status,
      headers,
      body,
      stream,
      attempts: run.attempts,
      observe: (pieces) => {
        const sent = maskSecretInEvents(pieces, leaf.endpoint.secretScan);
        tail?.pushEvents(sent);
        return sent;
      },
      answered: () => tail?.answerComplete() ?? false,
      redact: (text) => redact(text, leaf.endpoint.secret),
      end: (how = {}) => {
        if (ended) return;
        ended = true;
        let sinking: Promise<unknown> | null = null;
        try {
          run.release();
          // Timed until the headers so far: a stream's attempt (its span, its latency metric) lasts until it ended.
          if (stream) entry.durationMs = roundMs(performance.now() - outcome.startedAt);
          if (how.streamError !== undefined) {
            const error = how.streamError instanceof SwitchyardError ? how.streamError : streamInterrupted(how.streamError);
            entry.error = { code: error.code, message: redact(error.message, leaf.endpoint.secret) };
          }
          // Nobody reads the event (no sink, no tracing): skip the usage scan, pricing and the event object.
          if (this.options.sinks.length === 0 && !log.otel?.recording) return;
          const { usage: read, model: reported, errorEvent, bytes }: { usage: UsageRead | null; model: string | null; errorEvent: string | null; bytes: Buffer | null } = body
            ? { usage: readUsage(body), model: extractResponseModel(body, 'start'), errorEvent: null, bytes: body }
            : tail!.read();
          const usage = read?.usage ?? null;
          // The SDK hangs up at an upstream's error event (it threw there): the upstream failed, the client did not leave.
          const hungUpAtError = errorEvent !== null && how.clientClosed === true;
          const status = how.status ?? (how.clientClosed && !hungUpAtError ? 499 : res.status);
          // An upstream error event came in a stream that had started: the client's SDK threw at it; the log says so.
          if (errorEvent !== null && !entry.error) {
            entry.error = { code: 'upstream_error_event', message: redact(errorEvent || 'The upstream sent an error event.', leaf.endpoint.secret) };
          } else if (how.clientClosed && stream && !entry.error) {
            // The stream was cut where the client left: the attempt did not complete (its span, its latency metric).
            const { code, message } = clientClosed();
            entry.error = { code, message };
          }
          const costUsd = read ? this.costOf(leaf, run.parsed, reported, read, plan.model) : null;
          const event = logEvent(log, t0, status, fallback, servedBy, usage, costUsd);
          log.otel?.end(event, { responseModel: reported, response: bytes, cachedTokens: read?.cachedTokens ?? 0 });
          sinking = emitLog(this.options.sinks, event);
        } finally {
          this.leaveAfter(sinking, log.ticket);
        }
      },
    };
  }

  private errorResponse(error: SwitchyardError, log: LogDraft, t0: number): GatewayResponse {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    // A request refused before its dispatch has not made its trace id yet.
    this.switchyardHeaders(headers, (log.traceId ??= newTraceId()), log.attempts, false, null, error.status, error.code);
    let ended = false;
    return {
      status: error.status,
      headers,
      body: Buffer.from(JSON.stringify(error.toBody() satisfies OpenAIErrorBody)),
      stream: null,
      attempts: log.attempts,
      observe: (pieces) => pieces,
      answered: () => false,
      redact: (text) => text,
      end: (how = {}) => {
        if (ended) return;
        ended = true;
        let sinking: Promise<unknown> | null = null;
        try {
          const status = how.status ?? (how.clientClosed ? 499 : error.status);
          const event = logEvent(log, t0, status, false, null, null, null);
          log.otel?.end(event, { errorCode: error.code });
          sinking = emitLog(this.options.sinks, event);
        } finally {
          this.leaveAfter(sinking, log.ticket);
        }
      },
    };
  }

  /**
   * The model the upstream reports is what was billed (the client's model string may be anything an Azure
   * deployment accepts); the model asked of the target prices a response that names none, or an unknown one.
   */
  private costOf(leaf: LeafNode, parsed: ParsedBody, reported: string | null, { usage, cachedTokens }: UsageRead, served: string): number | null {
    const { prices } = this.options;
    // The model the provider says served is what is billed: when it has no price (an Azure deployment of another
    // model than asked), the cost is unknown, not the asked model's price. Without one, the model asked for.
    return prices.costOf(leaf.provider, reported ?? modelAsked(leaf, parsed), usage, cachedTokens, served);
  }

  private switchyardHeaders(
    headers: Record<string, string>,
    traceId: string,
    attempts: readonly AttemptLog[],
    fallback: boolean,
    target: string | null,
    status: number,
    code?: SwitchyardError['code'],
  ): void {
    if (traceId) headers['x-switchyard-trace-id'] = traceId;
    // Upstream attempts: a target that could not be tried (no deployment for the model) called no upstream.
    const tried = attempts.filter(calledUpstream).length;
    headers['x-switchyard-attempts'] = String(tried);
    headers['x-switchyard-fallback'] = String(fallback);
    if (target !== null) headers['x-switchyard-target'] = target;
    // The openai SDK retries a 429 or 5xx (twice by default) unless told not to: after our own retries and
    // fallbacks, or the whole deadline, its retry would run that chain again, and wait out a retry-after we skipped;
    // an answer of the wrong kind would come again, and a loop (508, here or from a Switchyard upstream) loop again.
    if (status >= 400 && (tried > 1 || status === 508 || code === 'deadline_exceeded' || code === 'upstream_invalid_response')) headers['x-should-retry'] = 'false';
  }
}

/**
 * Marks a Gateway whichever copy of this package made it: with two versions installed side by side (an app's own
 * `@switchyard/core` beside an adapter's), `instanceof` does not see the other copy's class.
 */
const GATEWAY_BRAND = Symbol.for('switchyard.gateway');
Object.defineProperty(Gateway.prototype, GATEWAY_BRAND, { value: true });

/** The gateway given, or one made from the options given: what every adapter and the in-process client take. */
export function gatewayFrom(options: SwitchyardOptions | Gateway): Gateway {
  if (options instanceof Gateway) return options;
  // Read as options, its fields would be reported as unknown options, which says nothing of the cause.
  if (typeof options === 'object' && options !== null && (options as Record<symbol, unknown>)[GATEWAY_BRAND] === true) {
    throw new SwitchyardOptionsError([
      {
        path: 'gateway',
        message: 'is a Gateway from another copy of @switchyard/core than the one this package uses: install a single version (`npm ls @switchyard/core` lists them)',
      },
    ]);
  }
  return new Gateway(options);
}

/**
 * A UUID as one flat string: Node 20's randomUUID() returns a rope of ~14 pieces (~490 bytes of heap, not ~65), which
 * a memory log store would keep as it is for each of its 10,000 events. Reading a character flattens it in place.
 */
function flatUuid(): string {
  const id = randomUUID();
  id.charCodeAt(0);
  return id;
}

/** Builds the event in the contract's field order (readable as a JSON line). */
function logEvent(log: LogDraft, t0: number, status: number, fallback: boolean, servedBy: ServedBy | null, usage: TokenUsage | null, costUsd: number | null): LogEvent {
  return {
    traceId: log.traceId ?? '', requestId: flatUuid(), configId: log.configId, startedAt: log.startedAt,
    durationMs: roundMs(performance.now() - t0), status, stream: log.stream, fallback, model: log.model,
    servedBy, attempts: log.attempts, usage, costUsd,
  };
}

/** The number of choices asked of a target (`n`): its override_params', else the request's; 1 for none or junk. */
function choicesAsked(leaf: LeafNode, parsed: ParsedBody): number {
  const n = leaf.overrideParams?.n ?? parsed.body.n;
  return typeof n === 'number' && Number.isInteger(n) && n > 1 ? n : 1;
}

/** The model asked of a target: its override_params' model, else the request's. */
function modelAsked(leaf: LeafNode, parsed: ParsedBody): string {
  const override = leaf.overrideParams?.model;
  return typeof override === 'string' ? override : parsed.body.model;
}

/** Durations to a hundredth of a millisecond, as logged and as the in-process client's errors carry them. */
function roundMs(ms: number): number {
  return Math.round(ms * 100) / 100;
}

/** A target that called no upstream: no deployment for the model, or (a nested strategy) all of it skipped. */
function untried(outcome: Outcome): boolean {
  return !outcome.ok && (outcome.error.code === 'model_not_deployed' || outcome.error.code === 'circuit_open');
}

/**
 * Whether a retry policy retries an attempt that got no response. As in Portkey, a timed-out attempt counts as a 408
 * (retried only when 408 is listed: a hung upstream would otherwise cost `attempts` more timeouts before the
 * fallback), and a connection failure is retried whatever the list says.
 */
function retriesError(error: SwitchyardError, onStatusCodes: ReadonlySet<number>): boolean {
  // The same target would answer the same again: no deployment, or an answer of the wrong kind.
  if (error.code === 'model_not_deployed' || error.code === 'upstream_invalid_response') return false;
  return error.code !== 'upstream_timeout' || onStatusCodes.has(408);
}

/**
 * Whether the openai SDK parses a body of this media type as JSON (`application/json` in it, or `+json` at its end,
 * compared as written, as the SDK does); else it hands the caller the text.
 */
function sdkReadsAsJson(type: string | string[] | undefined): boolean {
  if (type === 'application/json' || (typeof type === 'string' && type.startsWith('application/json;'))) return true;
  const media = typeof type === 'string' ? type.split(';', 1)[0]!.trim() : '';
  return media.includes('application/json') || media.endsWith('+json');
}

/**
 * An SSE body, to pass on event by event (media types are case-insensitive). For a stream request, also one with no
 * media type: Azure behind API Management has sent none, and the SDK reads a stream whatever its label (one that is
 * JSON after all ends before a first event, and falls back).
 */
function isEventStream(headers: UpstreamResponse['headers'], unlabelledToo = false): boolean {
  // The first of two (a proxy may add its own), as a fetch client's reader would start with it.
  const type = header(headers, 'content-type');
  if (type === undefined || type.trim() === '') return unlabelledToo;
  return /^text\/event-stream/i.test(type);
}

/** A compressed body decoded beyond this is refused: a small body must not inflate the host's memory without bound. */
const MAX_DECODED_BYTES = 64 * 1024 * 1024;

/**
 * A compressed body (a careless upstream: we ask for identity), decoded so that the client, the in-process client and
 * the usage scan all read plain JSON; null for a body that decodes past `max`. An encoding we cannot decode,
 * or a body that does not decode, fails the attempt like a broken connection (so a fallback may follow).
 */
function decoded(res: UpstreamResponse, body: Buffer, encoding: string, max: number, leaf: LeafNode): Buffer | null {
  const codec = codecFor(encoding);
  if (!codec) throw new SwitchyardError('upstream_unreachable', `${upstreamOf(leaf)} sent a body in a content-encoding Switchyard cannot decode (${encoding}).`);
  let plain: Buffer;
  try {
    plain = codec.whole(body, { maxOutputLength: max });
  } catch (err) {
    // A body over its cap once decoded is dropped like one over it as sent (null: the caller says so).
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') return null;
    throw new SwitchyardError('upstream_unreachable', `${upstreamOf(leaf)} sent a ${encoding} body that could not be decoded.`, { cause: err });
  }
  res.headers = { ...res.headers, 'content-encoding': undefined };
  return plain;
}

/** An upstream's in-band error as OpenAI's envelope; one too deeply nested to encode keeps its message alone. */
function errorEnvelopeJson(error: unknown, message: string): string {
  try {
    return JSON.stringify({ error });
  } catch {
    return JSON.stringify({ error: { message: message || 'The upstream sent an error event.', type: null, param: null, code: null } });
  }
}

/** The HTTP status an upstream's in-band error stands for, from its type and code as OpenAI names them. */
function errorEventStatus(error: unknown): number {
  const { type, code } = typeof error === 'object' && error !== null ? (error as { type?: unknown; code?: unknown }) : {};
  const names = [type, code].filter((v): v is string => typeof v === 'string');
  const said = (...words: string[]) => names.some((name) => words.some((word) => name.includes(word)));
  // As the same error would come as an HTTP answer: so a config's on_status_codes and retry read it alike.
  if (said('rate_limit', 'insufficient_quota', 'slow_down')) return 429;
  if (said('overloaded', 'service_unavailable')) return 503;
  if (said('invalid_api_key', 'authentication')) return 401;
  if (said('model_not_found')) return 404;
  return type === 'invalid_request_error' ? 400 : 500;
}

/** The answer an error event stands for: `status`, JSON, with the stream's headers (its body was already dropped). */
function errorAnswer(res: UpstreamResponse, status: number): UpstreamResponse {
  return {
    status,
    headers: { ...res.headers, 'content-type': 'application/json' },
    read: () => Promise.reject(new Error('The error answer has no body to read.')),
    stream: () => Promise.reject(new Error('The error answer has no stream.')),
    discard: () => {},
  };
}

/** An upstream error body is an envelope of a few hundred bytes; past this it is dropped, not held in memory. */
const MAX_ERROR_BODY_BYTES = 1024 * 1024;

/** The body that replaces an oversized error body: the status stays the upstream's (fallback rules still apply). */
function oversizedError(res: UpstreamResponse, entry: AttemptLog): Buffer {
  const error = new SwitchyardError('upstream_error_too_large', `${upstreamOf({ path: entry.target, provider: entry.provider })} answered ${res.status} with an error body over ${MAX_ERROR_BODY_BYTES} bytes; it was dropped.`);
  entry.error = { code: error.code, message: error.message };
  res.headers = { ...res.headers, 'content-type': 'application/json' };
  return Buffer.from(JSON.stringify(error.toBody()));
}


function transportError(err: unknown, leaf: LeafNode): SwitchyardError {
  if (err instanceof SwitchyardError) return err;
  const code = (err as { code?: string } | null)?.code;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new SwitchyardError('upstream_timeout', `${upstreamOf(leaf)} did not answer in time.`, { cause: err });
  }
  // Messages of network errors name hosts and ports: keep them in `cause`, not in what clients see.
  // undici's words for an egress proxy that refused the tunnel (a 407 for missing credentials): its status, no host.
  const proxy = /^Proxy response \((\d{3})\)/.exec((err as { message?: unknown } | null)?.message as string)?.[1];
  const hint = proxy ? `: the egress proxy refused the tunnel with ${proxy}` : (TRANSPORT_HINTS.find(([pattern]) => pattern.test(code ?? ''))?.[1] ?? '');
  return new SwitchyardError('upstream_unreachable', `${upstreamOf(leaf)} could not be reached (${code ?? 'connection failed'}${hint}).`, { cause: err });
}

/**
 * Says a warning once per key of `said`, for every Gateway of the process (one made per request or rebuilt on a
 * reload says it once too); at most `max` keys.
 */
function warnOncePerProcess(said: Set<string>, key: string, type: string, message: () => string, max = Infinity): void {
  if (said.has(key) || said.size >= max) return;
  said.add(key);
  process.emitWarning(message(), type);
}
/** `path` without one trailing slash, as the chat route is matched. */
function withoutSlash(path: string): string {
  return path.endsWith('/') ? path.slice(0, -1) : path;
}
/** A target as warnings name it: its path (or another name of it), provider and virtual key. */
function targetName(leaf: LeafNode, name = leaf.path): string {
  return `${name} (${leaf.provider}${leaf.virtualKey !== undefined ? `, virtual key "${leaf.virtualKey}"` : ''})`;
}
/** A virtual key by its name; a key written inline in a config by its last characters, as providers show keys. */
function keyName(leaf: LeafNode): string {
  const secret = leaf.endpoint.secret;
  return leaf.virtualKey !== undefined ? `virtual key "${leaf.virtualKey}"` : secret.length >= 12 ? `the api_key ending "${secret.slice(-4)}"` : 'an api_key written in a config';
}

/**
 * Whether an answer is OpenAI's 429 for an account out of credit or over its budget (`insufficient_quota`), which no
 * retry cures, unlike a rate limit.
 */
function quotaSpent(status: number, entry: AttemptLog): boolean {
  // The answer's status: an error as a stream's first event came on a 200 status line, and stands for a 429.
  return status === 429 && entry.upstreamError?.code === 'insufficient_quota';
}

/**
 * The first `max` characters of `text` as a string of their own: V8's slice of a long string points into it, and a
 * log store keeping the slice would keep the whole (an error body's message may be a megabyte).
 */
function cut(text: string, max: number): string {
  return text.length <= max ? text : Buffer.from(text.slice(0, max), 'utf8').toString('utf8');
}

/** The upstream's request id, for the log: bounded and masked as the header the client gets is. */
function upstreamRequestIdOf(headers: UpstreamResponse['headers'], leaf: LeafNode): string | undefined {
  const id = header(headers, 'x-request-id') ?? header(headers, 'apim-request-id');
  return id ? cut(redact(id, leaf.endpoint.secret), 128) : undefined;
}

/**
 * The error of OpenAI's envelope (`{ error: ... }`), as the log keeps it: its code (else its type) and message,
 * bounded, the target's key masked (an error read from its JSON: the key as the client reads it).
 */
function upstreamErrorOf(error: unknown, secret: string): AttemptLog['upstreamError'] {
  if (typeof error === 'string') return { code: null, message: cut(redact(error, secret), 500) };
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, type, message } = error as { code?: unknown; type?: unknown; message?: unknown };
  const name = typeof code === 'string' || typeof code === 'number' ? String(code) : typeof type === 'string' ? type : null;
  const text = typeof message === 'string' ? cut(redact(message, secret), 500) : '';
  return name === null && text === '' ? undefined : { code: name === null ? null : cut(redact(name, secret), 100), message: text };
}

/** The same, from an error answer's body; nothing for a body that is not the envelope. */
function upstreamErrorIn(body: Buffer, secret: string): AttemptLog['upstreamError'] {
  if (!startsAsObject(body)) return undefined;
  try {
    return upstreamErrorOf((JSON.parse(body.toString('utf8')) as { error?: unknown } | null)?.error, secret);
  } catch {
    return undefined;
  }
}

/**
 * A key in KEYS_REFUSED_WARNED: by a hash, as that set outlives the options that hold the keys; and by where it was
 * sent, so that a key one resource refuses and another accepts (one copied to the wrong one) is not said every time.
 */
function refusedKeyId(leaf: LeafNode, origin: string): string {
  return `${leaf.provider} ${origin} ${createHash('sha256').update(leaf.endpoint.secret).digest('base64')}`;
}
/** Targets and models a missing-deployment warning named already. */
const NOT_DEPLOYED_WARNED = new Set<string>();
/**
 * What a host's own rate limiter sets on the app's answers (express-rate-limit, koa-ratelimit, @nestjs/throttler): an
 * upstream's would replace them. OpenAI's and Azure's carry a suffix (`x-ratelimit-remaining-requests`).
 */
const HOST_LIMITER_HEADERS = new Set(['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']);
/** Targets a short-timeout warning named already. */
const SHORT_TIMEOUT_WARNED = new Set<string>();
/** Target addresses a 404 warning named already. */
const NOT_FOUND_WARNED = new Set<string>();
/** An attempt that failed for a reason other than its model: rate-limited, a server error, no answer. */
function failedNotForTheModel(attempt: AttemptLog): boolean {
  return attempt.status === 429 || (attempt.status !== null && attempt.status >= 500) || (attempt.status === null && attempt.error !== undefined && attempt.error.code !== 'model_not_deployed');
}
/** An engine's name in the hop header, as a Gateway makes one. */
const HOP_NAME = /^[0-9a-f]{12}$/;
/** Switchyards one request may pass through: past this, a loop among several (each sending to the next). */
const MAX_HOPS = 8;
const LOOP_MESSAGE =
  'This request came back to a Switchyard it passed through already: a target\'s custom_host (or endpoint) leads back to this app (an OPENAI_BASE_URL pointing at it?). Refused, so that it does not call itself without end.';
const CHAIN_MESSAGE = `This request names ${MAX_HOPS} or more Switchyards it passed through (x-switchyard-hop): a loop through several processes, where a target's custom_host (or endpoint) leads back to this app's load balancer, or a client that sent that header itself. Refused.`;

/** How long drain() waits for an async sink's promise for one event. */
const SINK_WAIT_MS = 30_000;
/** Keys a provider refused (by provider and hash) that a warning named already. */
const KEYS_REFUSED_WARNED = new Set<string>();

/** Which target's upstream failed, for the messages Switchyard writes itself (never its host: the path and provider). */
function upstreamOf(leaf: Pick<LeafNode, 'path' | 'provider'>): string {
  return `The upstream of ${leaf.path} (${leaf.provider})`;
}

/** OpenSSL's codes for TLS setup mistakes say little to most operators. */
const TRANSPORT_HINTS: ReadonlyArray<readonly [RegExp, string]> = [
  [/^ERR_SSL_(?:WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|HTTP_REQUEST)$/, ': it does not speak TLS there; an https:// URL on a plain-HTTP port?'],
  [/^(?:DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT(?:_LOCALLY)?|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/, ': its TLS certificate is not trusted; a private CA goes in NODE_EXTRA_CA_CERTS'],
];

/** The index of a child picked by weight, among those not `skipped` (all of them if every one left weighs 0). */
function pickWeighted(children: RouteNode[], skipped: readonly boolean[] | null): number {
  const eligible = (i: number) => children[i]!.weight > 0 && !skipped?.[i];
  if (skipped && !children.some((_, i) => eligible(i))) skipped = null;
  const total = children.reduce((sum, c, i) => (eligible(i) ? sum + c.weight : sum), 0);
  let r = Math.random() * total;
  let last = 0;
  for (let i = 0; i < children.length; i++) {
    if (!eligible(i)) continue;
    r -= children[i]!.weight;
    if (r < 0) return i;
    last = i;
  }
  // Rounding can leave r at or above 0 after every weight (random() near 1): the last weighted target, never a 0.
  return last;
}

/** Whether a route node has a target that can take the request's model (one with no deployment for it cannot). */
function canServe(node: RouteNode, parsed: ParsedBody): boolean {
  if (node.kind === 'strategy') return node.children.some((child) => canServe(child, parsed));
  return !(node.endpoint.plan(modelAsked(node, parsed)) instanceof SwitchyardError);
}

/**
 * Whether a route node is open now: a target's circuit; a strategy's targets, all of them (as in Portkey), or all
 * that a `loadbalance` can pick (a weight above 0).
 */
function isOpen(node: RouteNode, now: number): boolean {
  if (node.kind === 'target') return node.circuit?.isOpen(now) ?? false;
  const weighted = node.mode === 'loadbalance' && node.children.some((child) => child.weight > 0);
  const counted = weighted ? node.children.filter((child) => child.weight > 0) : node.children;
  return counted.length > 0 && counted.every((child) => isOpen(child, now));
}

/** The provider targets under a route node, in order. */
function leavesOf(node: RouteNode): LeafNode[] {
  return node.kind === 'target' ? [node] : node.children.flatMap(leavesOf);
}

function sleep(ms: number, signal: Cancellation): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    signal.addEventListener('abort', onAbort);
  });
}
