import { Catch, Optional, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { FallbackRequestError } from '@switchyard/core';
import type { ServerResponse } from 'node:http';
import { throwError, type Observable } from 'rxjs';

/** Headers that describe the body the filter does not send: the platform sets its own. */
const BODY_HEADERS = new Set(['content-type', 'content-length', 'content-encoding', 'transfer-encoding']);

/**
 * Answers a `FallbackRequestError` that a handler let through (from `SwitchyardService`) as the OpenAI-compatible route
 * would: its status (a 429 stays a 429, with its `retry-after`), the same error body and the `x-switchyard-*`
 * headers (the trace id finds its log event), instead of Nest's bare 500. Opt in, on the Express or Fastify platform:
 * `app.useGlobalFilters(new SwitchyardExceptionFilter(app.get(HttpAdapterHost)))`, an `APP_FILTER` provider or
 * `@UseFilters(SwitchyardExceptionFilter)`. An app-wide filter applies to a microservice's message handlers and a
 * gateway's too (a hybrid app's connected microservice only with `inheritAppConfig: true`): there the caller gets
 * `{ status: 'error', message, statusCode, body }`, as Nest's own filters answer (an RPC error, a websocket
 * `exception` event). Any other context (GraphQL) gets the error rethrown.
 */
@Catch(FallbackRequestError)
export class SwitchyardExceptionFilter implements ExceptionFilter<FallbackRequestError> {
  /** `adapterHost` is injected by Nest; `new SwitchyardExceptionFilter()` without it answers through Node's response. */
  constructor(@Optional() private readonly adapterHost?: HttpAdapterHost) {}

  catch(err: FallbackRequestError, host: ArgumentsHost): void | Observable<never> {
    const type = host.getType();
    // A filter that throws here leaves an RPC caller with no answer at all (Nest's server only logs it): an RPC
    // filter answers with an Observable that fails, as Nest's BaseRpcExceptionFilter does.
    if (type === 'rpc') return throwError(() => failure(err));
    if (type === 'ws') {
      (host.switchToWs().getClient() as { emit?: (event: string, data: unknown) => unknown }).emit?.('exception', failure(err));
      return;
    }
    if (type !== 'http') throw err;
    const res: unknown = host.switchToHttp().getResponse();
    const adapter = this.adapterHost?.httpAdapter ?? nodeAdapter;
    // Part of a streamed answer went out already (the handler piped the stream): only ending it is left. Node's own
    // response is asked too: Fastify's reply counts as sent only once taken over or ended, not when a handler wrote
    // to `reply.raw` itself, and answering it then would throw outside any handler (the process would exit).
    if (adapter.isHeadersSent(res) || nodeOf(res).headersSent) {
      endCut(takeOver(res), err);
      return;
    }
    // A JSON body's type and framing are the platform's to set (a stream's `text/event-stream` would make Fastify
    // refuse the object). An upstream's error that is no JSON (a proxy's plain-text 503) keeps its type, as on the
    // route, and is not sniffed: Express would label a string text/html.
    const text = typeof err.body === 'string';
    for (const [name, value] of Object.entries(err.headers)) if (!BODY_HEADERS.has(name)) adapter.setHeader(res, name, value);
    if (text) {
      adapter.setHeader(res, 'content-type', err.headers['content-type'] ?? 'text/plain; charset=utf-8');
      adapter.setHeader(res, 'x-content-type-options', 'nosniff');
    }
    adapter.reply(res, err.body, err.status);
  }
}

/**
 * Ends an answer the handler had started when the error came, never as if it were whole: an event stream gets the
 * error as its last event, as the route ends one (the SDK throws it); any other body is cut off (a client sees it
 * incomplete, as Express's own error handler leaves one).
 */
function endCut(node: ServerResponse, err: FallbackRequestError): void {
  if (node.writableEnded) return;
  // Headers given to writeHead() alone (none set before, as on Fastify) are only in the header block Node sent.
  const sent = /^content-type:[ \t]*([^\r\n]*)/im.exec((node as { _header?: string | null })._header ?? '')?.[1];
  const type = String(node.getHeader('content-type') ?? sent ?? '');
  if (/^text\/event-stream/i.test(type) && typeof err.body !== 'string') {
    node.end(`data: ${JSON.stringify(err.body)}\n\n`);
  } else {
    node.destroy();
  }
}

/** The error as Nest's own RPC and websocket filters send one (`status: 'error'`), with the route's status and body. */
function failure(err: FallbackRequestError): { status: 'error'; message: string; statusCode: number; body: unknown } {
  return { status: 'error', message: err.message, statusCode: err.status, body: err.body };
}

/** What the filter needs of Nest's HTTP adapter, on Node's response (Express's) or Fastify's reply (its `raw`). */
const nodeAdapter = {
  isHeadersSent: (res: unknown): boolean => nodeOf(res).headersSent,
  setHeader: (res: unknown, name: string, value: string): void => void nodeOf(res).setHeader(name, value),
  reply: (res: unknown, body: unknown, status: number): void => {
    // A string is the upstream's text, its type already set; anything else is sent as JSON.
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    const node = takeOver(res);
    if (typeof body !== 'string') node.setHeader('content-type', 'application/json; charset=utf-8');
    node.writeHead(status, { 'content-length': String(Buffer.byteLength(text)) }).end(text);
  },
};

function nodeOf(res: unknown): ServerResponse {
  return (res as { raw?: ServerResponse }).raw ?? (res as ServerResponse);
}

/**
 * Node's response, to write to: Fastify's reply is taken over first, as the route does, with the headers the host's
 * hooks set on it (a request id, rate limits), which Fastify would only have written itself. Switchyard's own, set
 * already, win.
 */
function takeOver(res: unknown): ServerResponse {
  const reply = res as { hijack?: () => void; getHeaders?: () => Record<string, number | string | string[] | undefined> };
  const node = nodeOf(res);
  if (reply.hijack && reply.getHeaders && !node.headersSent) {
    for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined && !node.hasHeader(name)) node.setHeader(name, value);
  }
  reply.hijack?.();
  return node;
}
