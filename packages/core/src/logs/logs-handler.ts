/**
 * The logs endpoint: a Node `(req, res, next?)` handler that serves, relative to where it is mounted, the viewer page
 * (`GET /`), the query API (`GET /api/requests?...`), one request's record (`GET /api/requests/:requestId`) and the
 * totals over a search's every match (`GET /api/summary?...`).
 * Framework adapters wrap it (Express `logsMiddleware`, Koa `logsMiddleware`). The host decides who may see the
 * logs: an `auth` hook, a bearer `token`, or an explicit `allowUnauthenticated: true`.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SwitchyardOptionsError, type OpenAIErrorBody, type OptionsIssue } from '../errors';
import { LogQueryError, normalizeLogFilter, normalizeLogQuery, parseLogQuery } from './log-query';
import type { LogStore } from './log-store';
import { viewerPage } from './viewer-page';

export interface LogsHandlerOptions {
  /** Where the logs are read from: the store also given to the gateway in `logSinks`. */
  store: LogStore;
  /**
   * Decides whether a request may see the logs, e.g. from the host's session cookie. Protects the viewer page and
   * the API. A hook that throws denies (500).
   */
  auth?: ((req: IncomingMessage) => boolean | Promise<boolean>) | undefined;
  /**
   * A shared secret accepted as `Authorization: Bearer <token>` or `x-switchyard-logs-token: <token>` on the API (the
   * viewer sends the latter, leaving Authorization to a proxy in front that asks for its own login). With a token
   * only, the viewer page (which holds no data) is served to anyone and asks for the token (or reads it from the
   * URL's `#token=` fragment, which browsers never send to servers, though their history keeps the link).
   */
  token?: string | undefined;
  /** Serve without any check. Only for a host that protects the mount path itself. Default false. */
  allowUnauthenticated?: boolean | undefined;
  /** Serve the viewer page at `GET /`. Default false: off unless the host enables it. */
  viewer?: boolean | undefined;
  /**
   * Path prefix to serve under, for hosts that do not strip a mount path (Koa, plain `node:http`), e.g.
   * `/switchyard/logs`. Requests outside it go to `next()`. Default: none (Express's `app.use(path, ...)` strips it).
   */
  path?: string | undefined;
}

/**
 * How an adapter sends the handler's answer through its framework instead (Koa: `ctx.status`, `ctx.set`,
 * `ctx.body`, so that middleware in front still sets headers and cookies after `await next()`).
 */
export type LogsRespond = (status: number, headers: Record<string, string>, body: Buffer) => void;

/**
 * A Node request handler; requests it does not serve go to `next` (or get a 404 without one), at once, before the
 * handler returns: Koa's middleware relies on that to tell whether the response is the handler's. The promise
 * resolves once the response is written, or handed to `respond` (it never rejects), so a framework can wait for it.
 */
export type LogsHandler = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void, respond?: LogsRespond) => Promise<void>;

const REQUEST_PATH = /^\/api\/requests\/([^/]+)\/?$/;
const LIST_PATH = /^\/api\/requests\/?$/;
const SUMMARY_PATH = /^\/api\/summary\/?$/;

/** Whether a path below the mount (`''`, `/`, `/api/...`) is one the handler serves (the page whether or not it is on). */
export function isLogsPath(path: string): boolean {
  return path === '' || path === '/' || LIST_PATH.test(path) || REQUEST_PATH.test(path) || SUMMARY_PATH.test(path);
}

const LOGS_KEYS: ReadonlySet<string> = new Set(['path', 'store', 'auth', 'token', 'allowUnauthenticated', 'viewer'] satisfies Array<keyof LogsHandlerOptions>);

export function createLogsHandler(options: LogsHandlerOptions): LogsHandler {
  const { store, auth, token, allowUnauthenticated = false, viewer = false } = options;
  // As the engine's options: a misspelt key (`veiwer`, `tokne`) from plain JS would otherwise leave a check or the page off.
  const issues: OptionsIssue[] = Object.keys(options)
    .filter((key) => !LOGS_KEYS.has(key))
    .map((key) => ({ path: key, message: 'unknown option' }));
  if (!store || typeof store.query !== 'function' || typeof store.get !== 'function') {
    issues.push({ path: 'store', message: 'must be a log store (query, get, write)' });
  }
  if (token !== undefined && (typeof token !== 'string' || token.length < 16)) {
    issues.push({ path: 'token', message: 'must be a string of at least 16 characters' });
  } else if (token !== undefined && token.trim() !== token) {
    // HTTP drops the blanks around a header value: such a token could never be sent (a newline read from a file?).
    issues.push({ path: 'token', message: 'must not start or end with whitespace' });
  } else if (token !== undefined && !/^[\x20-\x7e]+$/.test(token)) {
    // Browsers refuse to send a header beyond Latin-1, and curl sends UTF-8 that Node reads as Latin-1: never equal.
    issues.push({ path: 'token', message: 'must be printable ASCII (an Authorization header cannot carry other characters)' });
  }
  if (auth !== undefined && typeof auth !== 'function') issues.push({ path: 'auth', message: 'must be a function (req) => boolean' });
  // A string from the environment ("false", "0") would read as true: only a boolean says it.
  for (const [name, value] of [['allowUnauthenticated', options.allowUnauthenticated], ['viewer', options.viewer]] as const) {
    if (value !== undefined && typeof value !== 'boolean') issues.push({ path: name, message: 'must be true or false (a boolean)' });
  }
  if (allowUnauthenticated === true && (auth !== undefined || token !== undefined)) {
    // Serving without a check would silently skip the check the host also gave: refuse the contradiction.
    issues.push({ path: 'allowUnauthenticated', message: 'cannot be combined with `auth` or `token`, which it would skip' });
  }
  if (auth === undefined && token === undefined && allowUnauthenticated !== true) {
    issues.push({ path: 'auth', message: 'the logs are private: give `auth` or `token` (or `allowUnauthenticated: true` if the host protects this path)' });
  }
  const prefix = typeof options.path === 'string' ? options.path.replace(/\/+$/, '') : '';
  if (options.path !== undefined && (typeof options.path !== 'string' || (prefix !== '' && !prefix.startsWith('/')))) {
    issues.push({ path: 'path', message: 'must be a path starting with /' });
  }
  if (issues.length > 0) throw new SwitchyardOptionsError(issues);
  const tokenDigest = token === undefined ? null : digest(token);

  /** 200 when the request may see the logs, else the status to refuse with. */
  const check = async (req: IncomingMessage, page: boolean): Promise<200 | 401 | 403> => {
    if (allowUnauthenticated === true) return 200;
    if (tokenDigest && tokenMatches(req, tokenDigest)) return 200;
    if (auth) return (await auth(req)) === true ? 200 : 403;
    // Token only: the page is a data-free shell that asks for the token; the API needs it.
    return page ? 200 : 401;
  };

  const serve = async (req: IncomingMessage, out: Send, path: string, search: string, next?: (err?: unknown) => void) => {
    const page = path === '' || path === '/';
    const one = REQUEST_PATH.exec(path);
    const list = LIST_PATH.test(path);
    const summary = SUMMARY_PATH.test(path);
    // Before any await: a request that is not ours goes to `next` while the handler is still running (see LogsHandler).
    if (!page && !one && !list && !summary) return notFound(out, next);
    if (page && !viewer) return notFound(out, next);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return sendError(out, 405, 'method_not_allowed', `${req.method ?? ''} is not allowed here: use GET.`, null, { allow: 'GET, HEAD' });
    }
    const verdict = await check(req, page);
    if (verdict === 401) {
      const challenge = { 'www-authenticate': 'Bearer realm="switchyard-logs"' };
      return sendError(out, 401, 'unauthorized', 'Send the logs token as Authorization: Bearer <token> (or in x-switchyard-logs-token).', null, challenge);
    }
    if (verdict === 403) {
      // A Bearer may be the host's own (a JWT its hook reads): still a 403, with a hint for a mistyped logs token.
      const hint = tokenDigest && (bearerOf(req) !== null || req.headers['x-switchyard-logs-token'] !== undefined) ? ' (The token sent is not the logs token either.)' : '';
      return sendError(out, 403, 'forbidden', `You may not see these logs.${hint}`);
    }
    if (page) return sendPage(out);
    if (one) {
      // As on the list: a parameter this route does not take is refused, not ignored.
      const stray = new URLSearchParams(search).keys().next();
      if (!stray.done) throw new LogQueryError(stray.value, `Unknown query parameter "${stray.value}": one request's record takes none.`);
      let requestId: string;
      try {
        requestId = decodeURIComponent(one[1]!);
      } catch {
        return sendError(out, 400, 'invalid_query', 'The request id is not valid.', 'requestId');
      }
      const event = await store.get(requestId);
      if (!event) return sendError(out, 404, 'not_found', `No request ${JSON.stringify(requestId)} in the log store.`, 'requestId');
      return sendJson(out, 200, event);
    }
    const query = parseLogQuery(new URLSearchParams(search));
    // Checked here too, so a bad query is this copy's LogQueryError (a 400) even when the store has another core copy.
    if (summary) {
      normalizeLogFilter(query);
      if (typeof store.summarize !== 'function') return sendError(out, 501, 'not_implemented', 'This log store cannot summarize (it has no summarize method).');
      return sendJson(out, 200, await store.summarize(query));
    }
    normalizeLogQuery(query);
    const result = await store.query(query);
    return sendJson(out, 200, result);
  };

  // `respond` has a default so that the function's length stays 3: Express takes a 4-argument function for an error
  // handler, and would skip this one for every request.
  return (req, res, next, respond = undefined) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    let path = q < 0 ? url : url.slice(0, q);
    const search = q < 0 ? '' : url.slice(q + 1);
    if (prefix) {
      if (path !== prefix && !path.startsWith(`${prefix}/`)) {
        if (next) next();
        else notFound(writeTo(res));
        return Promise.resolve();
      }
      path = path.slice(prefix.length);
    }
    let sent = false;
    const out: Send = (status, headers, body) => {
      sent = true;
      if (respond) respond(status, headers, body);
      else writeTo(res)(status, headers, body);
    };
    return serve(req, out, path, search, next).catch((err: unknown) => {
      if (err instanceof LogQueryError) return sendJson(out, 400, err.toBody());
      // Store or hook failures: details stay on the server.
      process.emitWarning(`Switchyard logs endpoint failed: ${String(err)}`, 'SwitchyardLogsWarning');
      if (!sent) sendError(out, 500, 'internal_error', 'The logs could not be read.');
    });
  };
}

/** Sends one whole answer. */
type Send = (status: number, headers: Record<string, string>, body: Buffer) => void;

/** Straight to Node's response. */
function writeTo(res: ServerResponse): Send {
  return (status, headers, body) => {
    res.writeHead(status, headers);
    res.end(body);
  };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

function bearerOf(req: IncomingMessage): string | null {
  const header = req.headers.authorization;
  return typeof header === 'string' && /^bearer /i.test(header) ? header.slice(7).trim() : null;
}

function tokenMatches(req: IncomingMessage, expected: Buffer): boolean {
  const own = req.headers['x-switchyard-logs-token'];
  const given = [bearerOf(req), typeof own === 'string' ? own.trim() : null];
  // Compare digests in constant time: the token's length and content do not leak through timing.
  return given.some((token) => token !== null && timingSafeEqual(digest(token), expected));
}

const COMMON_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

// Node (and Koa) send no body for HEAD: the handlers need not check for it.
function sendJson(out: Send, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = Buffer.from(JSON.stringify(value));
  out(status, { ...COMMON_HEADERS, ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': String(body.length) }, body);
}

function sendError(out: Send, status: number, code: string, message: string, param: string | null = null, headers: Record<string, string> = {}): void {
  const type = status >= 500 ? 'api_error' : status === 401 ? 'authentication_error' : status === 403 ? 'permission_error' : 'invalid_request_error';
  sendJson(out, status, { error: { message, type, param, code } } satisfies OpenAIErrorBody, headers);
}

function notFound(out: Send, next?: (err?: unknown) => void): void {
  if (next) next();
  else sendError(out, 404, 'not_found', 'Not found.');
}

function sendPage(out: Send): void {
  // A fresh nonce per response: only the page's own inline script and style run, whatever a log event contains.
  const nonce = randomBytes(16).toString('base64');
  const body = Buffer.from(viewerPage(nonce));
  out(200, {
    ...COMMON_HEADERS,
    'content-type': 'text/html; charset=utf-8',
    'content-length': String(body.length),
    'content-security-policy': `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    'x-frame-options': 'DENY',
  }, body);
}
