/**
 * The query API shared by every store: validation (typed errors naming the bad field), the HTTP query-string form,
 * the newest-first order, cursors, and the matching rule stores without an index of their own use.
 */
import type { ProviderName } from '../config/schema';
import type { OpenAIErrorBody } from '../errors';
import { attemptFailed, calledUpstream, type AttemptLog, type LogEvent } from '../log/log-event';
import { roundUsd } from '../log/pricing';
import type { LogQuery, LogSummary, StatusClass } from './log-store';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;

/** An invalid query; `param` names the field. Reaches HTTP clients as a 400 in OpenAI's envelope. */
export class LogQueryError extends Error {
  override readonly name = 'LogQueryError';
  readonly code = 'invalid_query';
  readonly status = 400;

  constructor(
    readonly param: string,
    message: string,
  ) {
    super(message);
  }

  toBody(): OpenAIErrorBody {
    return { error: { message: this.message, type: 'invalid_request_error', param: this.param, code: this.code } };
  }
}

/** Position after which the next page starts. */
export interface LogCursor {
  startedAt: number;
  requestId: string;
}

/** A query after validation: defaults applied, the cursor decoded, a status class split into a range. */
export interface NormalizedLogQuery extends Omit<LogQuery, 'status' | 'failedStatus' | 'cursor' | 'limit' | 'from' | 'to'> {
  /** Epoch ms. */
  from?: number;
  /** Epoch ms. */
  to?: number;
  /** Inclusive status range: an exact status is [s, s]. */
  status?: { min: number; max: number };
  /** The same, for a failed attempt's status. */
  failedStatus?: { min: number; max: number };
  limit: number;
  cursor?: LogCursor;
}

const STATUS_CLASS = /^([1-5])xx$/i;
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?$/;

/**
 * Epoch ms of an ISO 8601 date or date-time, NaN for anything else: Date.parse alone reads "foo 2024" as a date and
 * rolls February 30 over into March. A date-time without an offset is UTC (as a date alone is), not the server's time.
 * `end`: the last millisecond of the day, minute or second the value names, for an inclusive upper bound
 * (`to=2026-11-26` means the whole of that day, as the viewer's minute inputs mean the whole minute).
 */
function isoDateMs(value: string, end = false): number {
  const m = ISO_DATE.exec(value);
  if (!m) return NaN;
  const [, year, month, day, hour, minute, second, fraction, offset] = m;
  const daysInMonth = new Date(Date.UTC(Number(year), Number(month), 0)).getUTCDate();
  if (Number(month) < 1 || Number(month) > 12 || Number(day) < 1 || Number(day) > daysInMonth) return NaN;
  if (Number(hour ?? 0) > 23 || Number(minute ?? 0) > 59 || Number(second ?? 0) > 59) return NaN;
  const ms = Date.parse(hour !== undefined && offset === undefined ? `${value}Z` : value);
  if (!end || fraction !== undefined) return ms;
  return ms + (hour === undefined ? 86_400_000 : second === undefined ? 60_000 : 1000) - 1;
}
/** A time as the JS API takes it (epoch ms, a Date, an ISO 8601 string) in epoch ms; what is none stays for the error. */
function epochMs(value: unknown, end: boolean): unknown {
  if (value instanceof Date) return value.getTime();
  return typeof value === 'string' ? isoDateMs(value, end) : value;
}
const PROVIDERS: readonly ProviderName[] = ['openai', 'azure-openai'];

/** `value` as a finite number >= `min`; else the error names the parameter and says what it takes (`what`). */
function finite(param: string, value: unknown, min = -Infinity, what = 'a number'): number {
  if (value === Infinity) throw new LogQueryError(param, `${param} is too large.`);
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new LogQueryError(param, `${param} must be ${what}${min > -Infinity ? ` >= ${min}` : ''}.`);
  }
  return value;
}
const A_TIME = 'epoch milliseconds or an ISO 8601 date (a + in an offset sent as %2B)';

/** A decimal number as a person writes it (`12`, `0.5`, `.5`): `Number()` alone also reads `0x10`, `1e2` and padded blanks. */
const DECIMAL = /^(?:\d+(?:\.\d*)?|\.\d+)$/;

// Every field of LogQuery (the type checks that none is missing): a filter added there is known here.
const QUERY_KEYS: ReadonlySet<string> = new Set(
  Object.keys({
    traceId: true, status: true, configId: true, fallback: true, provider: true, failedProvider: true, failedStatus: true, failedError: true,
    model: true, from: true, to: true, minCostUsd: true, maxCostUsd: true, minTokens: true, maxTokens: true, limit: true, cursor: true,
  } satisfies Record<keyof LogQuery, true>),
);

/** Checks a query and applies defaults. Throws LogQueryError naming the first bad field. */
export function normalizeLogQuery(query: LogQuery = {}): NormalizedLogQuery {
  // From plain JS, a misspelt filter (`traceID`) would silently widen the search to every request: refused, as the
  // HTTP form refuses an unknown parameter.
  for (const key of Object.keys(query)) if (!QUERY_KEYS.has(key)) throw new LogQueryError(key, `Unknown filter "${key}".`);
  const out: NormalizedLogQuery = { limit: DEFAULT_PAGE_SIZE };
  if (query.traceId !== undefined) {
    if (typeof query.traceId !== 'string' || query.traceId === '') throw new LogQueryError('traceId', 'traceId must be a non-empty string.');
    out.traceId = query.traceId;
  }
  if (query.status !== undefined) out.status = statusRange(query.status);
  if (query.failedStatus !== undefined) out.failedStatus = statusRange(query.failedStatus, 'failedStatus');
  if (query.configId !== undefined) {
    if (query.configId !== null && typeof query.configId !== 'string') throw new LogQueryError('configId', 'configId must be a string or null.');
    out.configId = query.configId;
  }
  if (query.fallback !== undefined) {
    if (typeof query.fallback !== 'boolean') throw new LogQueryError('fallback', 'fallback must be true or false.');
    out.fallback = query.fallback;
  }
  for (const key of ['provider', 'failedProvider'] as const) {
    const provider = query[key];
    if (provider === undefined) continue;
    if (!PROVIDERS.includes(provider)) throw new LogQueryError(key, `${key} must be one of ${PROVIDERS.join(', ')}.`);
    out[key] = provider;
  }
  for (const key of ['model', 'failedError'] as const) {
    const value = query[key];
    if (value === undefined) continue;
    if (typeof value !== 'string' || value === '') throw new LogQueryError(key, `${key} must be a non-empty string.`);
    out[key] = value;
  }
  for (const key of ['from', 'to'] as const) if (query[key] !== undefined) out[key] = finite(key, epochMs(query[key], key === 'to'), -Infinity, A_TIME);
  for (const key of ['minCostUsd', 'maxCostUsd', 'minTokens', 'maxTokens'] as const) if (query[key] !== undefined) out[key] = finite(key, query[key], 0);
  if (out.from !== undefined && out.to !== undefined && out.from > out.to) throw new LogQueryError('from', 'from must not be after to.');
  // An empty range is a mistake in the query, as from after to is: said, not answered with nothing.
  for (const [min, max] of [['minCostUsd', 'maxCostUsd'], ['minTokens', 'maxTokens']] as const) {
    if (out[min] !== undefined && out[max] !== undefined && out[min] > out[max]) throw new LogQueryError(min, `${min} must not be more than ${max}.`);
  }
  if (query.limit !== undefined) {
    const limit = finite('limit', query.limit, 1);
    if (!Number.isInteger(limit) || limit > MAX_PAGE_SIZE) throw new LogQueryError('limit', `limit must be an integer from 1 to ${MAX_PAGE_SIZE}.`);
    out.limit = limit;
  }
  if (query.cursor !== undefined && query.cursor !== null) out.cursor = decodeCursor(query.cursor);
  return out;
}

function statusRange(status: number | StatusClass, param = 'status'): { min: number; max: number } {
  const refused = () => new LogQueryError(param, `${param} must be an HTTP status (100-599) or a class such as 5xx.`);
  if (typeof status === 'number') {
    if (!Number.isInteger(status) || status < 100 || status > 599) throw refused();
    return { min: status, max: status };
  }
  const match = typeof status === 'string' ? STATUS_CLASS.exec(status) : null;
  if (!match) throw refused();
  const base = Number(match[1]) * 100;
  return { min: base, max: base + 99 };
}

/** The filters of a query for a summary: `limit` and `cursor` page a list, and are refused here rather than ignored. */
export function normalizeLogFilter(query: LogQuery = {}): NormalizedLogQuery {
  for (const key of ['limit', 'cursor'] as const) {
    if (query[key] !== undefined && query[key] !== null) throw new LogQueryError(key, `${key} pages a list: a summary covers every request the filters match.`);
  }
  return normalizeLogQuery(query);
}

/**
 * Whether a request without a cost had one nobody knows: it used tokens, or an upstream served it (a 2xx, or a stream
 * the client left). A failure answered without usage (a 429, a 5xx) cost nothing, and is not counted as unpriced.
 */
export function costUnknown(event: LogEvent): boolean {
  // `!= null`, typeof: an event another writer made may lack a field; missing reads as absent, as in SQLite.
  return typeof event.costUsd !== 'number' && (event.usage != null || (event.servedBy != null && (event.status < 300 || event.status === 499)));
}

/** Totals of the events that match (the memory store's summary, and the reference for the others). */
export function summarizeEvents(events: Iterable<LogEvent | undefined>, q: NormalizedLogQuery): LogSummary {
  const summary: LogSummary = { requests: 0, fallbacks: 0, costUsd: 0, unpriced: 0, firstStartedAt: null, lastStartedAt: null };
  for (const event of events) {
    if (!event || !matchesLogQuery(event, q)) continue;
    summary.requests++;
    if (event.fallback) summary.fallbacks++;
    if (typeof event.costUsd === 'number') summary.costUsd += event.costUsd;
    else if (costUnknown(event)) summary.unpriced++;
    if (summary.firstStartedAt === null || event.startedAt < summary.firstStartedAt) summary.firstStartedAt = event.startedAt;
    if (summary.lastStartedAt === null || event.startedAt > summary.lastStartedAt) summary.lastStartedAt = event.startedAt;
  }
  // As an event's cost is rounded: no float noise from adding thousands of them.
  summary.costUsd = roundUsd(summary.costUsd);
  return summary;
}

/**
 * The query-string form used by the HTTP endpoint: `traceId`, `status` (`429` or `5xx`), `configId` (empty: the
 * default config), `fallback` (`true`/`false`), `provider`, `failedProvider`, `failedStatus`, `failedError`, `model`, `from`/`to` (epoch ms or an
 * ISO date), `minCostUsd`, `maxCostUsd`, `minTokens`, `maxTokens`, `limit`, `cursor`. Unknown parameters are errors,
 * so a typo never silently widens a search.
 */
export function parseLogQuery(params: URLSearchParams): LogQuery {
  const query: LogQuery = {};
  for (const [key, value] of params) {
    // A repeated parameter is ambiguous (one filter or both?): refused rather than guessed.
    if (Object.hasOwn(query, key)) throw new LogQueryError(key, `${key} is given more than once.`);
    switch (key) {
      case 'traceId':
      case 'model':
      case 'failedError':
      case 'cursor':
        query[key] = value;
        break;
      case 'provider':
      case 'failedProvider':
        query[key] = value as ProviderName;
        break;
      case 'configId':
        query.configId = value === '' ? null : value;
        break;
      case 'status':
      case 'failedStatus':
        query[key] = /^\d+$/.test(value) ? Number(value) : (value as StatusClass);
        break;
      case 'fallback':
        if (value !== 'true' && value !== 'false') throw new LogQueryError('fallback', 'fallback must be true or false.');
        query.fallback = value === 'true';
        break;
      case 'from':
      case 'to':
        query[key] = /^-?\d+$/.test(value) ? Number(value) : value;
        break;
      case 'minCostUsd':
      case 'maxCostUsd':
      case 'minTokens':
      case 'maxTokens':
      case 'limit':
        // Refused here with what is wrong: past this point `1e-3` would only be "not a number >= 0".
        if (!DECIMAL.test(value)) {
          throw new LogQueryError(key, key === 'limit' ? `limit must be an integer from 1 to ${MAX_PAGE_SIZE}.` : `${key} must be a number >= 0 in plain digits, such as 0.05 (no sign or exponent).`);
        }
        query[key] = Number(value);
        break;
      default:
        throw new LogQueryError(key, `Unknown query parameter "${key}".`);
    }
  }
  return query;
}

export function encodeCursor(event: Pick<LogEvent, 'startedAt' | 'requestId'>): string {
  return Buffer.from(`${event.startedAt}|${event.requestId}`).toString('base64url');
}

function decodeCursor(cursor: string): LogCursor {
  const text = typeof cursor === 'string' ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  const bar = text.indexOf('|');
  const startedAt = /^\d+$/.test(text.slice(0, bar)) ? Number(text.slice(0, bar)) : NaN;
  if (bar <= 0 || !Number.isFinite(startedAt) || bar === text.length - 1) throw new LogQueryError('cursor', 'cursor is not a cursor this API returned.');
  return { startedAt, requestId: text.slice(bar + 1) };
}

/** Newest first: by `startedAt`, then `requestId` (so pages never skip or repeat events that started together). */
export function newestFirst(a: LogEvent, b: LogEvent): number {
  if (a.startedAt !== b.startedAt) return b.startedAt - a.startedAt;
  return -compareIds(a.requestId, b.requestId);
}

const SURROGATE = /[\ud800-\udfff]/;
/**
 * Ids in UTF-8 byte order, as SQLite compares them: JavaScript's `<` compares UTF-16 code units, which puts a
 * character beyond U+FFFF (a surrogate pair) before U+E000-U+FFFF. Ids without one (UUIDs) take the plain compare.
 */
export function compareIds(a: string, b: string): number {
  if (SURROGATE.test(a) || SURROGATE.test(b)) return Buffer.compare(Buffer.from(a), Buffer.from(b));
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The provider a request is filed under: who served it, else who was called last (a target with no deployment for
 * the model called nobody: an OpenAI outage is not filed under Azure), else none.
 */
export function providerOf(event: LogEvent): ProviderName | null {
  if (event.servedBy) return event.servedBy.provider;
  for (let i = event.attempts.length - 1; i >= 0; i--) if (calledUpstream(event.attempts[i]!)) return event.attempts[i]!.provider;
  return null;
}

/** Whether an attempt failed as the query's failedProvider, failedStatus and failedError say (each when given). */
function failedAs(attempt: AttemptLog, q: NormalizedLogQuery): boolean {
  if (q.failedProvider !== undefined && attempt.provider !== q.failedProvider) return false;
  if (q.failedError !== undefined && attempt.error?.code !== q.failedError && attempt.upstreamError?.code !== q.failedError) return false;
  const range = q.failedStatus;
  if (range && !(Number.isInteger(attempt.status) && attempt.status! >= range.min && attempt.status! <= range.max)) return false;
  return attemptFailed(attempt);
}

/** Whether the query asks for requests with a failed attempt of some kind. */
function failedFilter(q: NormalizedLogQuery): boolean {
  return q.failedProvider !== undefined || q.failedStatus !== undefined || q.failedError !== undefined;
}

/** Whether an event matches a normalized query (cursor included). */
export function matchesLogQuery(event: LogEvent, q: NormalizedLogQuery): boolean {
  if (q.traceId !== undefined && event.traceId !== q.traceId) return false;
  if (q.status && (event.status < q.status.min || event.status > q.status.max)) return false;
  // `?? null` and `typeof`: an event another writer left a field out of reads as SQLite reads it (NULL).
  if (q.configId !== undefined && (event.configId ?? null) !== q.configId) return false;
  if (q.fallback !== undefined && event.fallback !== q.fallback) return false;
  if (q.provider !== undefined && providerOf(event) !== q.provider) return false;
  if (failedFilter(q) && !event.attempts.some((a) => failedAs(a, q))) return false;
  if (q.model !== undefined && event.model !== q.model && event.servedBy?.model !== q.model) return false;
  if (q.from !== undefined && event.startedAt < q.from) return false;
  if (q.to !== undefined && event.startedAt > q.to) return false;
  const cost = event.costUsd;
  if (q.minCostUsd !== undefined && (typeof cost !== 'number' || cost < q.minCostUsd)) return false;
  if (q.maxCostUsd !== undefined && (typeof cost !== 'number' || cost > q.maxCostUsd)) return false;
  const tokens = event.usage?.total_tokens;
  if (q.minTokens !== undefined && (typeof tokens !== 'number' || tokens < q.minTokens)) return false;
  if (q.maxTokens !== undefined && (typeof tokens !== 'number' || tokens > q.maxTokens)) return false;
  if (q.cursor) {
    const { startedAt, requestId } = q.cursor;
    if (event.startedAt > startedAt || (event.startedAt === startedAt && compareIds(event.requestId, requestId) >= 0)) return false;
  }
  return true;
}
