/**
 * The Node plumbing shared by the Express and Koa adapters (written once, as tRPC's node-http layer): read the
 * body with a size limit, turn the client's disconnect into an abort signal, and write the gateway's response,
 * piping a stream chunk by chunk with backpressure.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import type { Transform } from 'node:stream';
import { SwitchyardError } from '../errors';
import { clientClosed, hostAnswered, streamInterrupted, type Gateway, type GatewayResponse } from '../engine/gateway';
import { Cancellation } from '../engine/cancellation';
import { header, invalidJson, notJsonObject, tooLarge } from '../engine/request';
import { REST_AFTER_ANSWER } from '../log/usage';
import type { BodyStream } from './body-stream';
import { codecFor, contentCoding } from './content-coding';
import { readStream } from './read-stream';
import { errorEventIn, SseFramer, streamFault } from './sse-framer';

export interface NodeRequestOptions {
  /** A body the host's body parser already produced (`req.body`); used only if the parser read the request stream. */
  parsedBody?: unknown;
  /**
   * Called once, just before Switchyard writes its response (not when the client left or the host answered first):
   * where a framework's own reply is taken over (Fastify's `reply.hijack()`), so that until then the host's error
   * handling (a timeout interceptor's 408) still answers in the framework's way.
   */
  beforeWrite?: ((status: number) => void) | undefined;
  /**
   * Whether a response the host started before Switchyard could write is the host's to finish (Koa pipes a streamed
   * `ctx.body` of a timeout middleware after sending its headers): it is then left alone, and logged when it ends.
   * Otherwise such a response is ended, so that a host that sent headers and moved on does not leave its client waiting.
   */
  hostFinishes?: (() => boolean) | undefined;
  /**
   * A framework that writes the reply itself once its middleware has returned (Koa): a JSON answer is handed to it
   * instead of written here, so middleware in front can still set headers and cookies after `await next()`. The
   * request is logged when the response closes, with the status that went out.
   */
  respond?: ((status: number, headers: Record<string, string>, body: Buffer) => void) | undefined;
}

/** Serves one chat completion request. Resolves when the response is handed over; never rejects. */
export async function handleNodeRequest(
  gateway: Gateway,
  req: IncomingMessage,
  res: ServerResponse,
  options: NodeRequestOptions = {},
): Promise<void> {
  // In flight for drain() from now, while the body is read: handle() or reject() takes the ticket over, so the request
  // stays in the era a drain() called meanwhile waits for.
  const ticket = gateway.enter();
  const cancel = new Cancellation();
  // Until our response is written, a close means nobody waits for it: the client left, or the host answered
  // already (a timeout middleware's 503). Either way the upstream work stops.
  const onClose = () => cancel.abort(res.writableFinished || endedOffSocket(res) ? hostAnswered(res.statusCode) : clientClosed());
  res.once('close', onClose);
  // Off a network socket the host's answer shows by its 'finish' alone (@vendia/serverless-express emits no 'close';
  // its socket calls back at once, so 'finish' comes before `writableEnded` turns true).
  const onFinish = offSocket(res) ? () => cancel.abort(hostAnswered(res.statusCode)) : null;
  if (onFinish) res.once('finish', onFinish);
  // The client may have left while the host's middleware ran (auth, rate limits): 'close' will not come again.
  if (res.destroyed || endedOffSocket(res)) onClose();
  // A pipelined request's response waits for the socket: only then does Node tell it the client left.
  else if (!res.socket) closeWhenSocketCloses(req, res);

  let result: GatewayResponse;
  try {
    refuseCrossSiteForm(req.headers);
    const max = gateway.options.maxBodyBytes;
    // The declared length is checked even when a host parser already read the body.
    if (Number(req.headers['content-length']) > max) throw tooLarge(max);
    // Raw or parsed by a host's form parser alike; raw, the rest of the body is not read (the connection closes).
    if (FORM_TYPE.test(req.headers['content-type'] ?? '')) throw formBody();
    // A parser that left the stream unread did not parse it: Express 4's json() and @koa/bodyparser set `{}` for a
    // content type they skip (e.g. text/plain), so the raw body is read instead.
    const parsed = options.parsedBody !== undefined && req.readableEnded;
    const body = parsed ? hostParsed(req, options.parsedBody) : await readBody(req, max);
    // A parsed body's declared length was checked above; a compressed one's says nothing of what it inflated to.
    const bodySizeChecked = parsed && req.headers['content-length'] !== undefined && contentCoding(req.headers['content-encoding']) === null;
    // The engine runs on this cancellation itself: no second one to create and listen to.
    result = await gateway.handle({ body, headers: req.headers, cancel, bodySizeChecked, ticket });
  } catch (err) {
    // Reading the body of a client that left fails: that is the client's leaving, not a gateway error.
    const error = SwitchyardError.from(cancel.aborted ? cancel.reason : err);
    // The rest of a refused body (too large, not the gzip it claims) is not read: close the connection after answering.
    if (!req.readableEnded) res.shouldKeepAlive = false;
    result = gateway.reject(error, req.headers, ticket);
  }
  res.off('close', onClose);
  if (onFinish) res.off('finish', onFinish);
  writeResponse(result, res, options);
}

/** Responses queued behind another on their socket (pipelined requests), by socket: one 'close' listener each. */
const queuedResponses = new WeakMap<Socket, Set<ServerResponse>>();

/**
 * Node 20 emits no 'close' on a response still queued behind another when the connection closes: only the response
 * holding the socket gets one. Emitted here as Node does, so that the client's leaving aborts the upstream call and is
 * logged (and drain() resolves); a response that gets the socket first is left to Node.
 */
function closeWhenSocketCloses(req: IncomingMessage, res: ServerResponse): void {
  const close = (queued: ServerResponse): void => {
    if (queued.socket || queued.destroyed) return;
    queued.destroyed = true;
    queued.emit('close');
  };
  const socket = req.socket;
  if (socket.destroyed) {
    queueMicrotask(() => close(res));
    return;
  }
  let queued = queuedResponses.get(socket);
  if (!queued) {
    const waiting = new Set<ServerResponse>();
    socket.once('close', () => waiting.forEach(close));
    queuedResponses.set(socket, (queued = waiting));
  }
  queued.add(res);
  res.once('close', () => queued.delete(res));
}

/**
 * Answers a chat request that a JSON body parser in front refused (body-parser's errors, as `express.json()` passes
 * them to `next(err)`): OpenAI's error envelope and a log event, as if Switchyard had read the body, instead of the
 * host's error page. Returns false for any other error, which stays the host's to handle.
 */
export function handleParserError(gateway: Gateway, err: unknown, req: IncomingMessage, res: ServerResponse): boolean {
  const error = parserRefusal(err);
  if (!error || res.headersSent) return false;
  // body-parser reads off the rest of a refused body before calling next(err): the connection stays usable.
  writeResponse(gateway.reject(error, req.headers), res, {});
  return true;
}

/** body-parser's own refusals of a request body; anything else (a `verify` hook's error) stays the host's. */
const PARSER_REFUSALS = new Set(['entity.parse.failed', 'entity.too.large', 'charset.unsupported', 'encoding.unsupported', 'request.size.invalid', 'request.aborted']);

function parserRefusal(err: unknown): SwitchyardError | null {
  // body-parser passes a body that does not inflate on as zlib's own error (a status, no type).
  if (isZlibError(err)) return notDecompressed();
  const { type, limit, expose, message } = (err ?? {}) as { type?: unknown; limit?: unknown; expose?: unknown; message?: unknown };
  if (typeof type !== 'string' || !PARSER_REFUSALS.has(type)) return null;
  if (type === 'entity.parse.failed') return notAnObject((err as { body?: unknown }).body) ?? invalidJson();
  if (type === 'entity.too.large') {
    const what = typeof limit === 'number' ? `the ${limit}-byte limit` : 'the size limit';
    return new SwitchyardError('body_too_large', `The request body is larger than ${what} of the body parser in front of Switchyard.`);
  }
  // An unsupported charset or content-encoding (415), a body shorter than its content-length or cut off (400).
  const detail = expose === true && typeof message === 'string' ? `: ${message}` : '';
  const text = `The body parser in front of Switchyard refused the request body${detail}.`;
  return new SwitchyardError(type.endsWith('.unsupported') ? 'unsupported_media_type' : 'invalid_request', text);
}

/**
 * body-parser's strict mode refuses JSON that is no object or array (`"hi"`, `42`, `null`) as a parse failure: the
 * same refusal as when Switchyard reads the body itself, that it must be a JSON object, not that it is no JSON.
 */
function notAnObject(body: unknown): SwitchyardError | null {
  if (typeof body !== 'string') return null;
  try {
    const value: unknown = JSON.parse(body);
    return typeof value === 'object' && value !== null ? null : notJsonObject();
  } catch {
    return null;
  }
}

/**
 * An empty body a JSON parser turned into `{}` is read as an empty body (not as a request without a model). Its size
 * is the engine's to check when its length was not (see `bodySizeChecked`).
 */
function hostParsed(req: IncomingMessage, parsed: unknown): unknown {
  return req.headers['content-length'] === '0' ? '' : parsed;
}
const FORM_TYPE = /^\s*(?:application\/x-www-form-urlencoded|multipart\/form-data)\b/i;

/** A form, or JSON labelled as one (curl -d without a content-type): refused alike, raw or parsed by the host. */
function formBody(): SwitchyardError {
  return new SwitchyardError('invalid_json', 'The request body was sent as a form: send a JSON object with content-type: application/json.');
}

/** Content types a page on any site may send without a CORS preflight, as an HTML form does. */
const NO_PREFLIGHT_TYPE = /^\s*(?:text\/plain|application\/x-www-form-urlencoded|multipart\/form-data)\b/i;

/**
 * A JSON body is read whatever its content type (`fetch` with a string body sends `text/plain`), except from a page
 * of another site: there a `text/plain` form (`enctype="text/plain"`) can carry JSON with the user's cookies and no
 * CORS preflight, and run prompts on a host that authenticates by cookie. Browsers say where a request comes from
 * (`Sec-Fetch-Site`, else `Origin`); other clients send neither and are not affected.
 */
function refuseCrossSiteForm(headers: IncomingMessage['headers']): void {
  const type = headers['content-type'];
  if (type !== undefined && !NO_PREFLIGHT_TYPE.test(type)) return;
  const site = headers['sec-fetch-site'];
  const crossSite = site !== undefined ? site === 'cross-site' || site === 'same-site' : foreignOrigin(headers);
  if (crossSite) {
    throw new SwitchyardError('unsupported_media_type', 'A request from a page of another site must send its JSON body as application/json.');
  }
}

/**
 * Whether an `Origin` names another site than the one asked: its host is compared with `Host` and with what a proxy in
 * front says it was (`X-Forwarded-Host`, `Forwarded: host=`; a page cannot set these on a form or a simple request),
 * each read as a URL of the Origin's scheme reads it (case, default port).
 */
function foreignOrigin(headers: IncomingMessage['headers']): boolean {
  const { origin } = headers;
  if (origin === undefined) return false;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return true; // `null` (a sandboxed or file page): not this site
  }
  const forwarded = /(?:^|[;,\s])host="?([^";,\s]+)/i.exec(header(headers, 'forwarded') ?? '')?.[1];
  const named = [headers.host, header(headers, 'x-forwarded-host')?.split(',')[0]?.trim(), forwarded];
  return !named.some((host) => host !== undefined && host !== '' && sameHost(url, host));
}

function sameHost(origin: URL, host: string): boolean {
  try {
    return new URL(`${origin.protocol}//${host}`).host === origin.host;
  } catch {
    return false;
  }
}

function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  // A body something else consumed already (and did not leave in req.body) cannot be read again.
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0));
  checkCharset(req.headers['content-type']);
  const inflate = decoderFor(req.headers['content-encoding']);
  if (!inflate) return readStream(req, maxBytes, () => tooLarge(maxBytes));
  // As express.json() does: a compressed body is inflated, and the size limit applies to what it inflates to.
  req.pipe(inflate);
  req.once('close', () => {
    if (!req.readableEnded) inflate.destroy();
  });
  return readStream(inflate, maxBytes, () => tooLarge(maxBytes)).catch((err: unknown) => {
    inflate.destroy();
    req.unpipe(inflate);
    // zlib gives up at the first bad bytes, often before the body has all arrived; the size limit, or the client
    // leaving mid-body, is what it is.
    if (!isZlibError(err)) throw err;
    throw notDecompressed();
  });
}

function notDecompressed(): SwitchyardError {
  return new SwitchyardError('invalid_request', 'The request body could not be decompressed as its content-encoding says.');
}

/** zlib's refusal of bad bytes: `Z_DATA_ERROR` and kin, or the brotli decoder's `ERR__ERROR_FORMAT_…`. */
function isZlibError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('Z_') || code.startsWith('ERR__ERROR_'));
}

/** JSON is UTF-8 (RFC 8259): another declared charset would be decoded wrongly, so it is refused, as express.json() does. */
function checkCharset(contentType: string | undefined): void {
  const charset = contentType ? /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType)?.[1]?.toLowerCase() : undefined;
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    throw new SwitchyardError('unsupported_media_type', `Unsupported charset "${charset}": send the JSON body as UTF-8.`);
  }
}

function decoderFor(encoding: string | undefined): Transform | null {
  const coding = contentCoding(encoding);
  if (coding === null) return null;
  const codec = codecFor(coding);
  if (!codec) throw new SwitchyardError('unsupported_media_type', `Unsupported content-encoding "${encoding}": send the body as gzip, deflate, br or uncompressed.`);
  return codec.stream();
}

function endsWithErrorEvent(framer: SseFramer): boolean {
  return errorEventIn(framer.lastPieces, 'last') !== null;
}

/** Why a stream's attempt stopped when the host app ended the response before the upstream ended the stream. */
function hostEnded(): SwitchyardError {
  return new SwitchyardError('host_answered', 'The host app ended the response before the upstream stream ended.');
}

/** An SSE event the official SDKs raise as an APIError: a broken stream never looks like a clean end. */
function sseErrorEvent(err: unknown): string {
  return `data: ${JSON.stringify(streamInterrupted(err).toBody())}\n\n`;
}

/**
 * Logs a response when it closes, with the status that went out, or as a client that left. By `writableFinished`
 * (off a network socket, where that never turns true, by `endedOffSocket`), not by a 'finish' listener, which cost
 * Koa's JSON answers 4 % more instructions per request (callgrind: 613k -> 640k).
 */
function endWhenClosed(result: GatewayResponse, res: ServerResponse): void {
  whenClosed(res, () => result.end(res.writableFinished || endedOffSocket(res) ? { status: res.statusCode } : { clientClosed: true }));
}

/** A socket a serverless adapter gives the response in place of a network socket (serverless-http's, vendia's). */
function offSocket(res: ServerResponse): boolean {
  const socket = res.socket;
  return socket !== null && !(socket instanceof Socket);
}

/**
 * An ended response on a socket that is no network socket: serverless-http's (AWS Lambda) is a plain object, on which
 * `writableFinished` never turns true, and its host reads the answer from the response itself. (A real socket is
 * detached once the response finished, and is there while a client that left never got it.)
 */
function endedOffSocket(res: ServerResponse): boolean {
  return res.writableEnded && offSocket(res);
}

/**
 * Calls `closed` once when the response closes; off a network socket, also once it finished, on the next tick:
 * @vendia/serverless-express never emits 'close' (serverless-http does, after its own hooks).
 */
function whenClosed(res: ServerResponse, closed: () => void): void {
  if (!offSocket(res)) {
    res.once('close', closed);
    return;
  }
  let called = false;
  const once = () => {
    if (called) return;
    called = true;
    closed();
  };
  res.once('close', once);
  res.once('finish', () => process.nextTick(once));
}


interface RestReader {
  /** A chunk of the upstream's rest; false once reading stopped. */
  data(chunk: Buffer): boolean;
  /** The upstream's body ended or failed. */
  end(): void;
}

/**
 * After a client left at the answer's end: the rest of the stream, a usage chunk and [DONE], is read for the log only
 * (whole events, until [DONE], within REST_AFTER_ANSWER), and the request is logged as the whole answer it was.
 * Made only then, so a stream that runs its course pays nothing for it.
 */
function readRestForLog(result: GatewayResponse, stream: BodyStream, framer: SseFramer): RestReader {
  let bytes = 0;
  let open = true;
  const stop = (upstreamEnded: boolean): void => {
    if (!open) return;
    open = false;
    clearTimeout(timer);
    if (!upstreamEnded) stream.destroy();
    result.end({ clientClosed: !framer.done });
  };
  const timer = setTimeout(() => stop(false), REST_AFTER_ANSWER.ms).unref();
  return {
    data(chunk) {
      if (!open) return false;
      bytes += chunk.length;
      try {
        result.observe(framer.push(chunk));
      } catch {
        stop(false); // an event too large to hold: no usage chunk
        return false;
      }
      if (framer.done || bytes > REST_AFTER_ANSWER.bytes) stop(false);
      return true;
    },
    end() {
      try {
        if (open && !framer.done) result.observe(framer.end());
      } catch {
        // Ended mid-event: nothing more to read usage from.
      }
      stop(true);
    },
  };
}

function writeResponse(result: GatewayResponse, res: ServerResponse, { beforeWrite, hostFinishes, respond }: NodeRequestOptions): void {
  // Gone, or answered by the host meanwhile (headers already sent by middleware in front): nothing of ours can go out.
  if (res.destroyed || res.writableEnded || res.headersSent) {
    result.stream?.destroy();
    // A response the host ended is what the client got, and what is logged; one it only started is not delivered.
    if (res.writableEnded) result.end({ status: res.statusCode });
    else if (hostFinishes?.() && !res.destroyed) endWhenClosed(result, res);
    else {
      // The client left before any answer: code that reads the status after Switchyard returned (Koa middleware in
      // front reading ctx.status, a Nest interceptor) reads what the log says, 499, not a default. (Express's
      // on-finished listeners, as morgan's, ran at the close already.)
      if (!res.headersSent) res.statusCode = 499;
      res.end();
      result.end({ clientClosed: true });
    }
    return;
  }
  const { stream, body } = result;
  if (!stream && respond) {
    endWhenClosed(result, res);
    respond(result.status, result.headers, body!);
    return;
  }
  beforeWrite?.(result.status);
  if (!stream) {
    endWhenClosed(result, res);
    res.writeHead(result.status, { ...result.headers, 'content-length': String(body!.length) });
    res.end(body);
    return;
  }

  let streamError: unknown;
  // A length the host set before we answered (Koa sets one with a string ctx.body) would cut the stream short.
  res.removeHeader('content-length');
  res.writeHead(result.status, { ...result.headers, 'cache-control': streamCacheControl(res.getHeader('cache-control')), 'x-accel-buffering': 'no' });
  // Whole events only: a failure mid-event drops that event's start, so our error event is parsed cleanly.
  const framer = new SseFramer();
  // Writes in one tick leave in one packet (Node corks the response until the next tick).
  const send = (pieces: Buffer[]): boolean => {
    let ok = true;
    // Only `false` asks to wait for 'drain' (as `Readable.pipe` reads it): a serverless adapter's stand-in socket
    // (@vendia/serverless-express's) returns nothing, and emits no 'drain'.
    for (const piece of result.observe(pieces)) ok = res.write(piece) !== false && ok;
    return ok;
  };
  // Set once the upstream's stream ended or failed while the response was still ours to end.
  let upstreamDone = false;
  // The client left at the answer's end (`if (chunk.choices[0]?.finish_reason) break`): what follows is read for the log.
  let rest: RestReader | null = null;
  const onDrain = () => stream.resume();
  res.on('drain', onDrain);
  whenClosed(res, () => {
    res.off('drain', onDrain);
    const clientClosed = !res.writableFinished && !endedOffSocket(res);
    // A pipelined response still queued behind another (it never had the socket) sent nothing of what it was given.
    const sent = res.socket !== null;
    if (clientClosed && sent && !upstreamDone && !framer.done && result.answered()) {
      rest = readRestForLog(result, stream, framer);
      stream.resume(); // after `rest` is set: chunks held while paused may come at once
      return;
    }
    // Whoever ended the response, nobody reads the rest: the client left, or the host ended it (its own timeout).
    if (!upstreamDone) {
      stream.destroy();
      if (!clientClosed) streamError ??= hostEnded();
    }
    // [DONE] went out before the close was noticed (the usage chunk a few ms after the finish_reason the client
    // stopped at): the whole answer was sent, as the in-process client counts a stop after [DONE].
    result.end({ clientClosed: clientClosed && !(framer.done && sent), streamError });
  });
  const fail = (err: unknown): void => {
    upstreamDone = true;
    if (res.writableEnded || res.destroyed) return;
    streamError = err;
    res.end(sseErrorEvent(err));
  };
  // Each upstream chunk is written from undici's data callback: a full socket buffer pauses the upstream.
  stream.consume({
    data: (chunk) => {
      if (rest !== null) return rest.data(chunk);
      // The host ended the response: a write after its end would throw on the response.
      if (res.writableEnded) {
        stream.destroy();
        return false;
      }
      let pieces: Buffer[];
      try {
        pieces = framer.push(chunk);
      } catch (err) {
        stream.destroy(err as Error); // an event too large to hold: the upstream stops too
        fail(err);
        return false;
      }
      return send(pieces);
    },
    end: () => {
      if (rest !== null) return rest.end();
      if (res.writableEnded) return; // the host ended the response first: logged as such on close
      upstreamDone = true;
      let pieces: Buffer[];
      try {
        pieces = framer.end();
      } catch (err) {
        fail(err); // ended mid-event: an error event, never a clean end that lost the last event
        return;
      }
      send(pieces);
      // Ended without [DONE]: cut at an event boundary, unless its last event was the upstream's own error.
      if (!framer.done && !endsWithErrorEvent(framer)) return fail(streamFault('ENDED_WITHOUT_DONE', 'The upstream ended its stream without data: [DONE].'));
      res.end();
    },
    // A connection that fails after [DONE] lost nothing the client needed: the answer is complete.
    error: (err) => {
      if (rest !== null) return rest.end();
      if (res.writableEnded) return;
      upstreamDone = true;
      if (framer.done) res.end();
      else fail(err);
    },
  });
}

/**
 * A stream's cache-control: no-transform, so that compression middleware (Express's `compression`) leaves the stream
 * alone instead of buffering it, and no-cache; added to what the host set on every answer (`private, no-store`), which
 * a JSON answer keeps as well.
 */
function streamCacheControl(host: number | string | string[] | undefined): string {
  const given = host === undefined ? '' : Array.isArray(host) ? host.join(', ') : String(host);
  if (given.trim() === '') return 'no-cache, no-transform';
  const directives = given.toLowerCase().split(',').map((d) => d.split('=')[0]!.trim());
  let value = given;
  if (!directives.includes('no-cache') && !directives.includes('no-store')) value += ', no-cache';
  if (!directives.includes('no-transform')) value += ', no-transform';
  return value;
}
