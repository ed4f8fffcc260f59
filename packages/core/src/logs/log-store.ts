/**
 * Log stores (issue 4): a store is a log sink that can also be searched. The interface is async so a store backed
 * by a database or a remote service fits it; the in-memory ring is the default.
 */
import type { ProviderName } from '../config/schema';
import type { LogEvent, LogSink } from '../log/log-event';

export type StatusClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx';

/** A search over stored log events. Every field is optional; fields combine with AND. */
export interface LogQuery {
  traceId?: string | undefined;
  /** An exact status (`429`) or a class (`'5xx'`). */
  status?: number | StatusClass | undefined;
  /** A named routing config's id; `null` selects requests that used the default config. */
  configId?: string | null | undefined;
  /** True: only requests served by a target other than the first; false: only the others. */
  fallback?: boolean | undefined;
  /** The provider that served the request (for a request none served: the provider it called last). */
  provider?: ProviderName | undefined;
  /**
   * Requests with an attempt at this provider that failed (no answer, an answer other than 2xx, a body cut short),
   * whoever served them: during an OpenAI outage, `failedProvider: 'openai'` finds every request that paid for it.
   */
  failedProvider?: ProviderName | undefined;
  /**
   * Requests with a failed attempt that got this status (`503`) or class (`'5xx'`), at `failedProvider` when both are
   * given (the same attempt): a 429 storm told from a 503 burst. An attempt that got no answer has no status; one
   * whose stream opened with an error event keeps its 200 status line (see `failedError`).
   */
  failedStatus?: number | StatusClass | undefined;
  /**
   * Requests with a failed attempt that ended with this error code, Switchyard's (`'upstream_timeout'`,
   * `'upstream_unreachable'`, `'stream_interrupted'`, `'upstream_error_event'`...: the failures that have no status,
   * such as timeouts) or the upstream's own (`'insufficient_quota'`, `'rate_limit_exceeded'`), the same attempt as
   * `failedProvider` and `failedStatus` when given.
   */
  failedError?: string | undefined;
  /** The model the client asked for, or the model (Azure: deployment) that served it. */
  model?: string | undefined;
  /** Requests that started at or after this time: epoch ms, a Date or an ISO 8601 string (UTC unless it names an offset). */
  from?: number | Date | string | undefined;
  /**
   * Requests that started at or before this time: epoch ms, a Date or an ISO 8601 string (UTC unless it names an
   * offset). A string to the day, minute or second covers all of it (`'2026-11-26'`: up to 23:59:59.999).
   */
  to?: number | Date | string | undefined;
  /** Cost bounds in USD, inclusive. Requests of unknown cost never match a cost bound. */
  minCostUsd?: number | undefined;
  maxCostUsd?: number | undefined;
  /** Total token bounds, inclusive. Requests without usage never match a token bound. */
  minTokens?: number | undefined;
  maxTokens?: number | undefined;
  /** Page size. Default 50, at most 500. */
  limit?: number | undefined;
  /** `nextCursor` of the previous page (null or absent: the first page). */
  cursor?: string | null | undefined;
}

/** One page of results, newest first (by `startedAt`, then `requestId`). */
export interface LogPage {
  data: LogEvent[];
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

/** Totals over every request a filter matches (not one page): what an incident cost, and since when. */
export interface LogSummary {
  requests: number;
  /** Of them, served by a target other than the first (`fallback: true`). */
  fallbacks: number;
  /** The sum of their known costs, in USD. */
  costUsd: number;
  /**
   * Of them, requests that used tokens or were served but whose cost is unknown (no usage, or no price): not in
   * `costUsd`. A failure answered without usage (a 429, a 5xx) cost nothing and is not counted here.
   */
  unpriced: number;
  /** When the oldest and the newest of them started (epoch ms); null when none matched. */
  firstStartedAt: number | null;
  lastStartedAt: number | null;
}

/** A searchable log sink. `write` must return at once and never throw on the request's path. */
export interface LogStore extends LogSink {
  write(event: LogEvent): void;
  /** Throws LogQueryError when the query is invalid. */
  query(query?: LogQuery): Promise<LogPage>;
  /** One request's full record, with every attempt; null when it is unknown (or no longer kept). */
  get(requestId: string): Promise<LogEvent | null>;
  /**
   * Totals over every request the filters match (`limit` and `cursor` are refused: they page). Optional, for stores
   * written before it; the built-in stores have it.
   */
  summarize?(query?: LogQuery): Promise<LogSummary>;
}
