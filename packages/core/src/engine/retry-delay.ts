/**
 * The wait rule between retries of one target, in one place (as openai-node does it):
 * the upstream's own hint first (`retry-after-ms`, Azure's `x-ms-retry-after-ms`, then `retry-after` in
 * seconds or as an HTTP date, then Azure's `x-rate-limit-reset-tokens`), else exponential backoff 0.5 s x 2^n with
 * jitter. Everything is capped.
 */

export type HeaderLookup = (name: string) => string | undefined;

const BASE_DELAY_MS = 500;

/** Milliseconds the upstream asked us to wait, or undefined when it did not say (or said nonsense). */
export function retryAfterMs(header: HeaderLookup, now = Date.now()): number | undefined {
  for (const name of ['retry-after-ms', 'x-ms-retry-after-ms']) {
    const value = given(header(name));
    if (value !== undefined && DECIMAL.test(value)) return Number(value);
  }
  const value = given(header('retry-after'));
  if (value === undefined) {
    // Azure answers a token-rate 429 with this alone at times (seconds; the body says "retry after 55 seconds").
    // OpenAI's `x-ratelimit-reset-tokens` (no dash, "6m0s") is when its bucket is full again, not a retry hint.
    const reset = given(header('x-rate-limit-reset-tokens'));
    return reset !== undefined && DECIMAL.test(reset) ? Number(reset) * 1000 : undefined;
  }
  if (DECIMAL.test(value)) return Number(value) * 1000;
  // Only an HTTP date (RFC 9110: IMF-fixdate, or the obsolete RFC 850 and asctime forms): Date.parse alone reads
  // "1, 2" or "1/2" as dates in 2001, a hint to retry at once.
  if (!HTTP_DATE.test(value)) return undefined;
  // asctime names no zone, and Date.parse would read it as the server's local time: it is GMT.
  const date = Date.parse(value.includes('GMT') ? value : `${value.trim()} GMT`);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Digits, with decimals as some gateways send them: `Number()` alone also reads hex (`0x10`), exponents and blanks. */
const DECIMAL = /^\s*\d+(?:\.\d+)?\s*$/;
const HTTP_DATE =
  /^\s*(?:[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT|[A-Z][a-z]+, \d{2}-[A-Z][a-z]{2}-\d{2} \d{2}:\d{2}:\d{2} GMT|[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4})\s*$/;

/** A header's value, or undefined when it is empty: `Number('')` is 0, which is no hint to retry at once. */
function given(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

/**
 * Delay before retry number `retry` (0 = the first retry), or `null` when the upstream asks for a wait
 * longer than `capMs`: waiting that long is pointless inside one request, so the caller moves on instead.
 */
export function retryDelayMs(
  retry: number,
  options: { capMs: number; header?: HeaderLookup | undefined; random?: (() => number) | undefined },
): number | null {
  const hinted = options.header ? retryAfterMs(options.header) : undefined;
  if (hinted !== undefined) return hinted <= options.capMs ? hinted : null;
  const backoff = Math.min(BASE_DELAY_MS * 2 ** retry, options.capMs);
  // Full jitter on the upper quarter, as openai-node does: spreads retries of many clients apart.
  const jitter = 1 - (options.random ?? Math.random)() * 0.25;
  return Math.round(backoff * jitter);
}
