/** Request intake: trace id, routing config choice and body validation, before any upstream call. */
import { randomUUID } from 'node:crypto';
import { SwitchyardError } from '../errors';

export type HeaderBag = Readonly<Record<string, string | string[] | undefined>>;

/** A chat completion request body, validated just enough to route it. */
export interface ChatRequestBody {
  model: string;
  messages: unknown[];
  stream?: boolean;
  [key: string]: unknown;
}

export interface ParsedBody {
  body: ChatRequestBody;
  /** The bytes as received, forwarded untouched when nothing changes the body (no re-encoding). */
  raw: string | Buffer | null;
}

export function header(headers: HeaderBag, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Trace and config ids are names: a longer one is refused, as it would be kept in the log event and echoed back. */
const MAX_HEADER_ID = 256;
/** Model names are short; a longer one is refused, as it would be kept in every log event and error message. */
const MAX_MODEL = 256;
/** W3C Trace Context: version-traceid-parentid-flags; a later version may append fields (`-...`), version 00 may not. */
const TRACEPARENT = /^\s?([\da-f]{2})-([\da-f]{32})-([\da-f]{16})-([\da-f]{2})(-.*)?\s?$/;
const ALL_ZEROS = /^0+$/;

/** A valid W3C `traceparent` header's ids and flags, or null (then the header is ignored, as the spec says). */
export function parseTraceparent(value: string | undefined): { traceId: string; spanId: string; flags: number } | null {
  const match = value === undefined ? null : TRACEPARENT.exec(value);
  if (!match) return null;
  const [, version, traceId, spanId, flags, rest] = match as unknown as [string, string, string, string, string, string | undefined];
  if (version === 'ff' || (version === '00' && rest !== undefined) || ALL_ZEROS.test(traceId) || ALL_ZEROS.test(spanId)) return null;
  return { traceId, spanId, flags: Number.parseInt(flags, 16) };
}

/**
 * The trace id the client named: `x-switchyard-trace-id` (or Portkey's `x-portkey-trace-id`, as a client moved over
 * from Portkey still sends it). Throws on an invalid one. Without it, the request's id is its trace context's
 * (`contextTraceId`), so that logs and traces share it.
 */
export function givenTraceId(headers: HeaderBag): string | undefined {
  return idHeader(headers, 'x-switchyard-trace-id') ?? idHeader(headers, 'x-portkey-trace-id');
}

/** The trace id of the request's W3C trace context: its `traceparent`'s, else `fallback` (the request span's). */
export function contextTraceId(headers: HeaderBag, fallback?: string): string | undefined {
  return parseTraceparent(header(headers, 'traceparent'))?.traceId ?? fallback;
}

/**
 * Portkey's headers that choose routing or credentials per request. A client moved over from Portkey may still send
 * them: served through the default config instead, it would silently get other targets than it asked for.
 */
export const PORTKEY_ROUTING_HEADERS = ['x-portkey-config', 'x-portkey-virtual-key', 'x-portkey-provider', 'x-portkey-custom-host', 'x-portkey-forward-headers', 'x-portkey-request-timeout'];

/** The routing config the request names in `x-switchyard-config`, if any. Throws on one too long to be an id. */
export function givenConfigId(headers: HeaderBag): string | undefined {
  for (const name of PORTKEY_ROUTING_HEADERS) {
    // Empty, it names nothing (as an empty x-switchyard-config): read as absent.
    if (headers[name] !== undefined && header(headers, name) !== '') {
      throw new SwitchyardError(
        'invalid_request',
        `${name} is Portkey's header, which Switchyard does not read: routing and credentials are chosen on the server. Name one of its routing configs in x-switchyard-config, or leave it out for the default config.`,
        { param: name },
      );
    }
  }
  // Portkey's header also takes a whole config as JSON: said so whatever its length (a real one is over 256).
  if (header(headers, 'x-switchyard-config')?.trimStart().startsWith('{')) {
    throw new SwitchyardError(
      'unknown_config',
      "x-switchyard-config takes the id of one of the server's routing configs; a config sent with the request (Portkey's JSON form) is not accepted: targets and credentials stay on the server.",
      { param: 'x-switchyard-config' },
    );
  }
  return idHeader(headers, 'x-switchyard-config');
}

/** An empty id header (a client that sends an unset variable) names nothing: it is read as absent. */
function idHeader(headers: HeaderBag, name: string): string | undefined {
  const value = header(headers, name);
  if (value !== undefined && value.length > MAX_HEADER_ID) {
    throw new SwitchyardError('invalid_request', `${name} is longer than ${MAX_HEADER_ID} characters.`, { param: name });
  }
  // Node refuses these in a received header, but an in-process caller's trace id is echoed as a header by hosts.
  if (value !== undefined && /[^\t\x20-\x7e\x80-\xff]/.test(value)) {
    throw new SwitchyardError('invalid_request', `${name} must hold Latin-1 characters only, no line breaks or control characters (it is echoed as an HTTP header).`, { param: name });
  }
  return value === '' ? undefined : value;
}

/** A new W3C-shaped trace id (32 hex digits). */
export function newTraceId(): string {
  return randomUUID().replaceAll('-', '');
}

/**
 * Parses and checks the body. `input` is the raw body (Buffer or string) or an object a body parser of the
 * host already produced. Only what routing needs is checked; the provider validates the rest.
 */
export function parseBody(input: unknown, maxBytes: number): ParsedBody {
  // (A parsed `null` is a body: the JSON `null`, which a host parser such as Fastify's passes on.)
  if (input === undefined || input === '' || (Buffer.isBuffer(input) && input.length === 0)) {
    throw new SwitchyardError('invalid_request', 'The request has no body: send a JSON chat completion request.');
  }
  let body: unknown = input;
  let raw: string | Buffer | null = null;
  // A UTF-8 byte order mark is not part of the JSON (RFC 8259 lets a parser ignore it, as express.json() does).
  if (Buffer.isBuffer(input) && input[0] === 0xef && input[1] === 0xbb && input[2] === 0xbf) input = input.subarray(3);
  else if (typeof input === 'string' && input.charCodeAt(0) === 0xfeff) input = input.slice(1);
  if (typeof input === 'string' || Buffer.isBuffer(input)) {
    const size = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
    if (size > maxBytes) throw tooLarge(maxBytes);
    raw = input;
    try {
      body = JSON.parse(typeof input === 'string' ? input : input.toString('utf8'));
    } catch {
      throw invalidJson();
    }
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw notJsonObject();
  }
  const b = body as Record<string, unknown>;
  if (typeof b.model !== 'string' || b.model === '') {
    throw new SwitchyardError('invalid_request', 'you must provide a model parameter', { param: 'model' });
  }
  if (b.model.length > MAX_MODEL) {
    throw new SwitchyardError('invalid_request', `'model' must be at most ${MAX_MODEL} characters`, { param: 'model' });
  }
  if (!Array.isArray(b.messages) || b.messages.length === 0) {
    throw new SwitchyardError('invalid_request', "'messages' must be a non-empty array", { param: 'messages' });
  }
  if (b.stream !== undefined && b.stream !== null && typeof b.stream !== 'boolean') {
    throw new SwitchyardError('invalid_request', "'stream' must be a boolean", { param: 'stream' });
  }
  return { body: b as ChatRequestBody, raw };
}

export function notJsonObject(): SwitchyardError {
  return new SwitchyardError('invalid_request', 'The request body must be a JSON object.');
}

export function invalidJson(): SwitchyardError {
  return new SwitchyardError('invalid_json', 'We could not parse the JSON body of your request. Send a JSON object.');
}

export function tooLarge(maxBytes: number): SwitchyardError {
  return new SwitchyardError('body_too_large', `The request body is larger than ${maxBytes} bytes.`);
}
