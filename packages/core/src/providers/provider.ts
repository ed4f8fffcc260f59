/** A provider adapter turns a requested model into the upstream URL, headers and body model of one attempt. */
import type { ProviderName } from '../config/schema';
import { SwitchyardError } from '../errors';
import { includesAcross } from '../http/sse-framer';

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
  /** The search for it in stream events (null when too short to mask). */
  readonly secretScan: SecretScan | null;
  /**
   * Whether the upstream finds the model by the name the request gives (OpenAI and compatible servers; Azure's v1 API
   * with no deployment in the config): a 404 there may be the client's unknown model, not this target's address.
   */
  readonly modelByName: boolean;
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
    // Not JSON (cut, or a proxy's own text): its escapes read as a JSON reader would, in case a client does.
    const text = masked.toString('utf8').replace(/\\(?:u([\da-fA-F]{4})|(["\\/]))/g, (_, hex: string | undefined, char: string | undefined) => (hex ? String.fromCharCode(Number.parseInt(hex, 16)) : char!));
    return text.includes(secret) ? Buffer.from(redact(text, secret)) : masked;
  }
}

/**
 * Whole SSE events passed on with `secret` masked where an upstream quotes it (an error event after content: a proxy
 * that echoes the request). Runs on every event of every stream, so it searches for the key's rarest byte (see
 * SecretScan) rather than the whole key: about one memchr per event. A key the upstream writes with JSON escapes is
 * not found here (a real encoder never escapes a key's characters); the first event and JSON bodies handle those.
 */
export function maskSecretInEvents(pieces: readonly Buffer[], scan: SecretScan | null): readonly Buffer[] {
  // An event split across the upstream's reads comes as held bytes and the rest: searched across their boundaries,
  // and joined only when the key is there (joining every 64 KiB event cost 35 ms of CPU per 50 MB stream).
  if (scan === null || pieces.length === 0 || !scan.foundAcross(pieces)) return pieces;
  const joined = pieces.length > 1 ? Buffer.concat(pieces) : pieces[0]!;
  return [Buffer.from(redact(joined.toString('utf8'), scan.secret))];
}

/**
 * The search for one credential in stream events: a memchr for the key's byte least common in OpenAI chunks (a
 * capital letter, usually), then a compare where it hits. A `"error"`-style search costs ~4x more per event, as the
 * pattern's first byte is everywhere in JSON.
 */
export class SecretScan {
  private readonly key: Buffer;
  private readonly anchor: number;

  private constructor(readonly secret: string) {
    this.key = Buffer.from(secret);
    let best = 0;
    for (let i = 1; i < this.key.length; i++) if (commonness(this.key[i]!) < commonness(this.key[best]!)) best = i;
    this.anchor = best;
  }

  /** Null for a key too short to mask (see maskSecret). */
  static of(secret: string): SecretScan | null {
    return secret.length < MIN_MASKED ? null : new SecretScan(secret);
  }

  /** Whether the key is in the pieces taken together, also across their boundaries, without joining them. */
  foundAcross(pieces: readonly Buffer[]): boolean {
    return includesAcross(pieces, this.key, this.search);
  }

  /** foundIn, bound once (it is handed over for every chunk of a stream). */
  private readonly search = (buf: Buffer): boolean => this.foundIn(buf);

  foundIn(buf: Buffer): boolean {
    const { key, anchor } = this;
    const last = buf.length - key.length + anchor;
    for (let at = buf.indexOf(key[anchor]!, anchor); at >= 0 && at <= last; at = buf.indexOf(key[anchor]!, at + 1)) {
      const start = at - anchor;
      let i = 0;
      while (i < key.length && buf[start + i] === key[i]) i++;
      if (i === key.length) return true;
    }
    return false;
  }
}

/**
 * Bytes in a typical streamed chunk, most common first: its JSON keys (`chatcmpl-`, `completion`, `fingerprint`), the
 * digits of its timestamps and model dates, then English content. Capitals are rarest: only ids and sentences have them.
 */
const COMMON_IN_CHUNKS = Buffer.from('" :,{}etaoinscrhlmdpu-_0123456789fgbkyw.jxvqz[]TAISOWCBPHMFDRLNEGUYVKJXQZ');

function commonness(byte: number): number {
  const at = COMMON_IN_CHUNKS.indexOf(byte);
  return at < 0 ? 0 : COMMON_IN_CHUNKS.length - at;
}

/** `text` with `secret` masked (see maskSecret): for an upstream's error message in a log event or an error. */
export function redact(text: string, secret: string): string {
  if (secret.length < MIN_MASKED || !text.includes(secret)) return text;
  const masked = text.replaceAll(secret, maskedKey(secret));
  // A key that ends with its first four characters, quoted with its own tail after it, comes back whole across the
  // mask's `...` (`abc...` + `abcd...`): masked wholly then.
  return masked.includes(secret) ? text.replaceAll(secret, '***') : masked;
}

/** A key as OpenAI shows one it refuses: its first three and last four characters (a short key: none). */
export function maskedKey(key: string): string {
  return key.length >= 20 ? `${key.slice(0, 3)}...${key.slice(-4)}` : '***';
}

const PROVIDER_HOST = /^https:\/\/(?:api\.openai\.com|[a-z0-9-]+\.(?:openai\.azure\.com|cognitiveservices\.azure\.com|services\.ai\.azure\.com))(?::443)?$/i;

/** Whether an origin is OpenAI's or Azure OpenAI's own host (not a proxy, a compatible server or another Switchyard). */
export function isProviderHost(origin: string): boolean {
  return PROVIDER_HOST.test(origin);
}

/** Splits a base URL into the pool origin and a path prefix without a trailing slash. */
export function splitBaseUrl(base: string): { origin: string; prefix: string } {
  const url = new URL(base);
  return { origin: url.origin, prefix: url.pathname.replace(/\/+$/, '') };
}
