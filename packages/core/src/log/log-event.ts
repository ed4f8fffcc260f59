/** The log event (README "Log event"): one per request, emitted after the response ended. */
import type { ProviderName } from '../config/schema';

export interface TokenUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface AttemptLog {
  /** Path of the target in the routing config, e.g. `targets[1]` or `targets[0].targets[1]`. */
  target: string;
  provider: ProviderName;
  virtualKey?: string;
  /** Model (Azure: deployment) the attempt asked for. */
  model: string;
  /**
   * The upstream's HTTP status line, or null when none came (connection failure, timeout, abort before it). With
   * `error`, the status came but what followed failed (its body timed out or was cut, a stream had no event).
   */
  status: number | null;
  durationMs: number;
  /**
   * Switchyard's code for how the attempt failed or was not made: no answer, a body or stream cut, an error as a
   * stream's first event, a 2xx of the wrong kind, a skip (`circuit_open`, `model_not_deployed`).
   */
  error?: { code: string; message: string };
  /**
   * What the upstream said with an error answer (a status >= 400, or an error as a stream's first event), from
   * OpenAI's envelope: its `code`, else its `type` (Azure's code may be a status, "429"), and its message (cut to 500
   * characters). A rate limit is told from an account out of credit (`insufficient_quota`) by it.
   */
  upstreamError?: { code: string | null; message: string };
  /** The failed attempt's request id at its upstream (`x-request-id`, else Azure's `apim-request-id`): what the provider's support asks for. */
  upstreamRequestId?: string;
}

/**
 * Whether an attempt called its upstream: a target with no deployment for the model (`model_not_deployed`), or one
 * skipped as its circuit was open (`circuit_open`), did not. Only those count as upstream attempts (the
 * `x-switchyard-attempts` header, spans, metrics).
 */
export function calledUpstream(attempt: AttemptLog): boolean {
  const code = attempt.error?.code;
  return code !== 'model_not_deployed' && code !== 'circuit_open';
}

/**
 * Whether a final status is the service failing rather than the caller's own mistake: a 5xx; a 429 (every target
 * rate-limited); a 408 (a timeout, the host's own included); a 401 or 403 (clients' keys never go upstream, so a
 * provider refusing one refuses the operator's). Other 4xx (a bad request, an unknown model) are the caller's.
 */
export function serverFailure(status: number): boolean {
  return status >= 500 || status === 429 || status === 408 || status === 401 || status === 403;
}

/**
 * Whether an attempt called its upstream and failed there: no answer, an answer other than 2xx (a 429 retried and then
 * served counts), or a 2xx whose body failed (cut, timed out, an error as a stream's first event).
 */
export function attemptFailed(attempt: AttemptLog): boolean {
  const { status } = attempt;
  // Not a number (null, or an event another writer made without one): no answer came.
  return calledUpstream(attempt) && (attempt.error !== undefined || typeof status !== 'number' || status < 200 || status > 299);
}

/**
 * The index of the attempt that served: usually the last, but a later target that could not be tried (no deployment
 * for the model) leaves an earlier answer served. -1 when no upstream answered.
 */
export function servedAttemptIndex(event: LogEvent): number {
  const served = event.servedBy;
  if (!served) return -1;
  for (let i = event.attempts.length - 1; i >= 0; i--) {
    const attempt = event.attempts[i]!;
    if (attempt.target === served.target && attempt.status !== null) return i;
  }
  return -1;
}

export interface ServedBy {
  target: string;
  provider: ProviderName;
  virtualKey?: string;
  model: string;
}

export interface LogEvent {
  traceId: string;
  requestId: string;
  /** Id of the named routing config used, or null for the default config. */
  configId: string | null;
  /** Epoch milliseconds when the request arrived. */
  startedAt: number;
  durationMs: number;
  /** Status sent to the client (499 when the client went away first). */
  status: number;
  stream: boolean;
  /** True when a target other than the first one served the request. */
  fallback: boolean;
  /** Model the client asked for; null for a request refused before its body was read (an unknown config id, invalid JSON). */
  model: string | null;
  /**
   * The target whose response the client got; when every target failed, the last one (its error is `status`). Null
   * when no upstream answered (Switchyard's own error).
   */
  servedBy: ServedBy | null;
  attempts: AttemptLog[];
  usage: TokenUsage | null;
  costUsd: number | null;
}

/**
 * Where log events go. `write` must not block; what it throws, or a promise it returns that rejects (an `async`
 * write is accepted: `void` admits it), is reported once as a warning and never fails a request.
 */
export interface LogSink {
  write(event: LogEvent): void;
}
