/** A provider adapter turns a requested model into the upstream URL, headers and body model of one attempt. */
import type { ProviderName } from '../config/schema';
import { SwitchyardError } from '../errors';

/**
 * Sent on upstream calls, naming the Switchyard engines (Gateways) a request passed through, this one last: a
 * target's `custom_host` that leads back to one of them (an `OPENAI_BASE_URL` pointing at the app itself) is refused
 * there (508) instead of calling itself without end. Not sent to the providers' own hosts, where no loop can be.
 */
export const HOP_HEADER = 'x-switchyard-hop';

export interface UpstreamPlan {
  /** `scheme://host:port`: the connection pool key. */
  origin: string;
  /** Path and query. */
  path: string;
  /** Complete upstream headers: credentials come from here only, never from the client. */
  headers: Record<string, string>;
  /** The model this attempt asks for (Azure: the deployment). */
  model: string;
  /** Set when the body's `model` must be replaced (Azure v1 API: the deployment name goes in the body). */
  bodyModel?: string;
}

export interface ProviderEndpoint {
  readonly provider: ProviderName;
  /** The credential this endpoint sends: masked in an upstream error body that quotes it. */
  readonly secret: string;
  /** Plans one attempt for the requested model; a SwitchyardError when this target cannot serve it. */
  plan(model: string): UpstreamPlan | SwitchyardError;
}

/** A shorter credential is not masked: it would match ordinary text. */
const MIN_MASKED = 8;

/**
 * An upstream error body that quotes the credential it was sent (a proxy, a misconfigured endpoint) gets it masked,
 * as OpenAI masks a wrong key itself (`sk-...wxyz`; a short key wholly): secrets never reach a client or a log.
 */
export function maskSecret(body: Buffer, secret: string): Buffer {
  if (secret.length < MIN_MASKED) return body;
  const masked = body.includes(secret) ? Buffer.from(redact(body.toString('utf8'), secret)) : body;
  // JSON may quote it with escapes (`\u0061` for `a`, `\/` for `/`), which the client's parser turns back into the
  // key: a body with any escape is read as the client will read it, and re-encoded if it holds the key.
  if (!masked.includes(0x5c)) return masked;
  try {
    const text = JSON.stringify(JSON.parse(masked.toString('utf8')));
    return text.includes(secret) ? Buffer.from(redact(text, secret)) : masked;
  } catch {
    return masked;
  }
}

/** `text` with `secret` masked (see maskSecret): for an upstream's error message in a log event or an error. */
export function redact(text: string, secret: string): string {
  if (secret.length < MIN_MASKED || !text.includes(secret)) return text;
  return text.replaceAll(secret, maskedKey(secret));
}

/** A key as OpenAI shows one it refuses: its first three and last four characters (a short key: none). */
export function maskedKey(key: string): string {
  return key.length >= 20 ? `${key.slice(0, 3)}...${key.slice(-4)}` : '***';
}

/** Splits a base URL into the pool origin and a path prefix without a trailing slash. */
export function splitBaseUrl(base: string): { origin: string; prefix: string } {
  const url = new URL(base);
  return { origin: url.origin, prefix: url.pathname.replace(/\/+$/, '') };
}
