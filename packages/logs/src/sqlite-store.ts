/**
 * The durable store: SQLite through better-sqlite3. `write` only queues the event; a flush `flushIntervalMs` later
 * hands the whole queue, as one transaction, to the store's writing thread (see SqliteWorker), which also runs
 * retention; queries run on a second, reading thread. The host's event loop pays for encoding the rows, not for SQLite.
 * A queue that is full drops events and counts them: the store falls behind, the process and the request do not.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import Database from 'better-sqlite3';
import {
  MAX_TIMER_MS, encodeCursor, normalizeLogFilter, normalizeLogQuery, providerOf, roundUsd, type LogEvent, type LogPage, type LogQuery, type LogStore, type LogSummary,
  type NormalizedLogQuery,
} from '@switchyard/core';
import { BatchQueue } from './batch-queue';
import { closedWarning } from './closed-warning';
import { assertWritable, sqliteOps, type EventRow, type SqliteOps, type WriteResult } from './sqlite-ops';
import { SqliteWorker, runLocal, type DatabaseFile, type DatabaseOp } from './sqlite-worker';

export interface SqliteRetention {
  /** Delete requests that started longer ago than this (ms). Default 30 days. `Infinity` keeps them. */
  maxAgeMs?: number | undefined;
  /** Keep at most this many requests (the oldest written go first). Default 1,000,000. `Infinity` keeps all. */
  maxRows?: number | undefined;
}

export interface SqliteLogStoreOptions {
  /** Database file (created if missing), or `':memory:'`. */
  path: string;
  retention?: SqliteRetention | undefined;
  /** Events waiting to be written before new ones are dropped (and counted in `dropped`). Default 10000. */
  maxQueue?: number | undefined;
  /**
   * How long an event waits for others to share its transaction, in ms (0: to the end of the tick; at most 10000).
   * Default 100. On the worker thread a transaction costs ~350 µs for one event against 70-110 µs per event for 100
   * or more (WAL checkpoints included), and 200 queued events are handed over at once. A crash loses what is queued.
   */
  flushIntervalMs?: number | undefined;
  /** How often retention runs, in ms (also once at open). Default 60000. */
  pruneIntervalMs?: number | undefined;
  /**
   * How long a write waits for another process's lock on the file, in ms (on the worker thread; on the event loop
   * for `':memory:'` or when that thread cannot run). Default 20. A batch that still finds the file locked is counted
   * in `failed`: give each process its own file.
   */
  busyTimeoutMs?: number | undefined;
}

const TABLE = 'switchyard_requests';
const SCHEMA = `
CREATE TABLE IF NOT EXISTS ${TABLE} (
  request_id TEXT NOT NULL UNIQUE,
  trace_id TEXT NOT NULL,
  config_id TEXT,
  started_at INTEGER NOT NULL,
  status INTEGER NOT NULL,
  fallback INTEGER NOT NULL,
  provider TEXT,
  model TEXT,
  served_model TEXT,
  total_tokens INTEGER,
  cost_usd REAL,
  event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ${TABLE}_started ON ${TABLE} (started_at, request_id);
CREATE INDEX IF NOT EXISTS ${TABLE}_trace ON ${TABLE} (trace_id, started_at, request_id);
CREATE INDEX IF NOT EXISTS ${TABLE}_status ON ${TABLE} (status, started_at, request_id);
CREATE INDEX IF NOT EXISTS ${TABLE}_config ON ${TABLE} (config_id, started_at, request_id);
CREATE INDEX IF NOT EXISTS ${TABLE}_fallback ON ${TABLE} (started_at, request_id) WHERE fallback = 1;
`;

const DAY_MS = 86_400_000;
const MAX_CACHED_STATEMENTS = 256;
/** Written at once, whatever flushIntervalMs says: past ~100 events a batch costs no less per event, only longer. */
const MAX_BATCH = 200;

export class SqliteLogStore implements LogStore {
  /** Events dropped because the queue was full or the store closed. */
  dropped = 0;
  /** Events lost because a write to the database failed (disk full, locked...) or the event could not be stored. */
  failed = 0;
  /** Events written to the database. */
  written = 0;

  private readonly db: Database.Database;
  /** This connection's operations: an in-memory database's, and the fallback when the worker cannot run. */
  private readonly local: SqliteOps;
  /**
   * The writing and the reading threads, each with its own connection. Null for an in-memory database (only this
   * connection sees it) or a file not in WAL mode.
   */
  private readonly writer: SqliteWorker | null;
  private readonly reader: SqliteWorker | null;
  private readonly maxQueue: number;
  private readonly maxAgeMs: number;
  private readonly maxRows: number;
  private readonly queue: BatchQueue<LogEvent>;
  /** Events handed to the database and not yet stored or failed: they count against `maxQueue` too. */
  private inFlight = 0;
  /** Settles when the last batch handed over is stored or failed (they are written in order). */
  private lastWrite: Promise<void> = Promise.resolve();
  private closing: Promise<void> | null = null;
  private warned = false;
  private dropWarned = false;
  private pruneWarned = false;
  private closedWarned = false;
  private readonly pruneTimer: NodeJS.Timeout;
  /** The file's identity in OPEN_FILES, null for a database in memory. */
  private fileKey: string | null = null;

  constructor(options: SqliteLogStoreOptions) {
    this.maxQueue = options.maxQueue ?? 10_000;
    this.maxAgeMs = options.retention?.maxAgeMs ?? 30 * DAY_MS;
    this.maxRows = options.retention?.maxRows ?? 1_000_000;
    for (const [name, value] of [['maxQueue', this.maxQueue], ['retention.maxAgeMs', this.maxAgeMs], ['retention.maxRows', this.maxRows]] as const) {
      if (!(value > 0)) throw new RangeError(`SqliteLogStore ${name} must be a positive number.`);
    }
    const pruneIntervalMs = options.pruneIntervalMs ?? 60_000;
    const flushIntervalMs = options.flushIntervalMs ?? 100;
    if (!(Number.isFinite(flushIntervalMs) && flushIntervalMs >= 0 && flushIntervalMs <= 10_000)) {
      throw new RangeError('SqliteLogStore flushIntervalMs must be between 0 and 10000.');
    }
    this.queue = new BatchQueue<LogEvent>((batch) => this.insert(batch), { delayMs: flushIntervalMs, maxBatch: MAX_BATCH });
    const busyTimeoutMs = options.busyTimeoutMs ?? 20;
    // Retention in a tight loop, or a lock wait that freezes every request for seconds, is never what a host meant.
    if (!(pruneIntervalMs >= 10 && pruneIntervalMs <= MAX_TIMER_MS)) throw new RangeError(`SqliteLogStore pruneIntervalMs must be between 10 and ${MAX_TIMER_MS}.`);
    if (!(Number.isFinite(busyTimeoutMs) && busyTimeoutMs >= 0 && busyTimeoutMs <= 1000)) {
      throw new RangeError('SqliteLogStore busyTimeoutMs must be between 0 and 1000 (in this thread, the wait blocks the event loop).');
    }
    // better-sqlite3 opens a temporary database for an empty path: `process.env.LOG_DB` unset would lose every event.
    if (typeof options.path !== 'string' || options.path.trim() === '') {
      throw new TypeError('SqliteLogStore path must be a file path (or ":memory:" for a store that does not survive a restart).');
    }
    // better-sqlite3 waits for a lock synchronously (5 s by default): that would freeze every request of the process.
    let wal: boolean;
    try {
      this.db = new Database(options.path, { timeout: busyTimeoutMs });
    } catch (err) {
      // A package manager that skips dependencies' build scripts (pnpm 10+ unless allowed) leaves no binary.
      const hint = /bindings file/.test(reason(err)) ? ' (better-sqlite3 was not built: allow its install script, e.g. pnpm\'s `allowBuilds: { better-sqlite3: true }`, then reinstall)' : '';
      throw new Error(`SqliteLogStore cannot open ${options.path}: ${reason(err)}${hint}`, { cause: err });
    }
    try {
      // WAL: readers (the viewer) do not block the writer; NORMAL sync is durable across a process crash.
      wal = this.db.pragma('journal_mode = WAL', { simple: true }) === 'wal';
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('journal_size_limit = 67108864');
      this.db.exec(SCHEMA);
      assertWritable(this.db, TABLE);
    } catch (err) {
      // A file, or a directory, this process may not write (WAL needs its -wal and -shm files beside the database).
      this.db.close();
      throw new Error(`SqliteLogStore cannot open ${options.path} for writing: ${reason(err)}`, { cause: err });
    }
    this.local = sqliteOps(this.db, TABLE, MAX_CACHED_STATEMENTS);
    const file = this.db.memory ? null : databaseFile(this.db.name);
    // Two stores writing one file take turns at its lock and fail batches: one process shares one store.
    const key = file && `${file.dev}:${file.ino}`;
    if (key !== null) {
      if (OPEN_FILES.has(key)) {
        this.db.close();
        throw new Error(`SqliteLogStore: ${file!.path} is already open in another SqliteLogStore of this process; share that instance.`);
      }
      OPEN_FILES.add(key);
      this.fileKey = key;
    }
    // Another connection sees this one's writes only in a file, and works beside another only in WAL mode (a file
    // system without it would fail writes during a long read): else everything stays on this connection. Queries have
    // their own thread: a viewer's filter that no index serves (a second or more at a million rows) must not hold the
    // writes back until the queue drops events; in WAL mode a reader never blocks the writer.
    const thread = (queryOnly: boolean) =>
      file === null || !wal ? null : new SqliteWorker(file, { timeoutMs: busyTimeoutMs, table: TABLE, maxStatements: MAX_CACHED_STATEMENTS, queryOnly }, this.local);
    this.writer = thread(false);
    this.reader = thread(true);
    // At open, on the worker and in chunks, not on the host's startup path (a million expired rows take seconds). A
    // file another process holds locked (its store writing) is no reason to fail: retention runs again at the next tick.
    this.prune().catch((err: unknown) => this.pruneFailed(err));
    this.pruneTimer = setInterval(() => {
      this.prune().catch((err: unknown) => this.pruneFailed(err));
    }, pruneIntervalMs);
    this.pruneTimer.unref();
  }

  /** A locked or full database: retention runs again at the next tick, the process goes on. */
  private pruneFailed(err: unknown): void {
    if (this.pruneWarned) return;
    this.pruneWarned = true;
    process.emitWarning(`Switchyard's SQLite log store could not apply retention (it will retry): ${reason(err)}`, 'SwitchyardLogStoreWarning');
  }

  /** Events waiting for their flush, not yet handed to the database. */
  get queued(): number {
    return this.queue.size;
  }

  /** Queues the event; never blocks and never throws. */
  write(event: LogEvent): void {
    if (this.closing !== null) {
      this.dropped++;
      if (!this.closedWarned) {
        this.closedWarned = true;
        process.emitWarning(closedWarning('SQLite log store'), 'SwitchyardLogStoreWarning');
      }
      return;
    }
    if (this.queue.size + this.inFlight >= this.maxQueue) {
      this.dropped++;
      // The likeliest loss in production, said once: a counter alone is found only by whoever polls it.
      if (!this.dropWarned) {
        this.dropWarned = true;
        process.emitWarning(`Switchyard's SQLite log store fell behind (${this.maxQueue} events waiting, maxQueue); new events are dropped and counted in \`dropped\``, 'SwitchyardLogStoreWarning');
      }
      return;
    }
    this.queue.push(event);
  }

  /** Hands the queued events to the database now; resolves when every event handed over is stored or failed. */
  flush(): Promise<void> {
    if (this.closing === null) this.queue.flush();
    return this.lastWrite;
  }

  private insert(batch: LogEvent[]): void {
    const rows: EventRow[] = [];
    for (const event of batch) {
      const row = toRow(event);
      if (row) rows.push(row);
    }
    const bad = batch.length - rows.length;
    if (bad > 0) this.lost(bad, `${bad} event(s) could not be stored`);
    if (rows.length === 0) return;
    this.inFlight += rows.length;
    this.lastWrite = this.run<WriteResult>(this.writer, { op: 'write', rows }).then(
      ({ written, skipped }) => {
        this.inFlight -= rows.length;
        this.written += written;
        if (skipped > 0) this.lost(skipped, `${skipped} event(s) could not be stored`);
      },
      (err: unknown) => {
        this.inFlight -= rows.length;
        this.lost(rows.length, reason(err));
      },
    );
  }

  private lost(count: number, why: string): void {
    this.failed += count;
    if (this.warned) return;
    this.warned = true;
    process.emitWarning(`Switchyard's SQLite log store could not write; failed events are counted in \`failed\`: ${why}`, 'SwitchyardLogStoreWarning');
  }

  /** On the given thread, or on this connection when there is none. */
  private run<T>(thread: SqliteWorker | null, op: DatabaseOp): Promise<T> {
    return thread ? thread.run<T>(op) : runLocal<T>(this.local, op);
  }

  /**
   * Applies retention now (after what is queued is written); resolves with the number of requests deleted. In
   * chunks, each its own transaction: writes queued meanwhile go in between, none waits for the whole prune.
   */
  async prune(now = Date.now()): Promise<number> {
    let deleted = 0;
    for (;;) {
      if (this.closing !== null) return deleted;
      this.queue.flush();
      const n = await this.run<number>(this.writer, { op: 'prune', now, maxAgeMs: this.maxAgeMs, maxRows: this.maxRows, limit: PRUNE_CHUNK });
      deleted += n;
      if (n < PRUNE_CHUNK) return deleted;
    }
  }

  async query(query?: LogQuery): Promise<LogPage> {
    const q = this.retained(normalizeLogQuery(query));
    const { sql, params } = querySql(q);
    const rows = await this.read(sql, params);
    const data = rows.slice(0, q.limit).map((r) => JSON.parse(r as string) as LogEvent);
    return { data, nextCursor: rows.length > q.limit ? encodeCursor(data[data.length - 1]!) : null };
  }

  async summarize(query?: LogQuery): Promise<LogSummary> {
    const { where, params } = whereClause(this.retained(normalizeLogFilter(query)));
    // One column (the statements pluck their first): the totals as a JSON array. Unpriced as core's costUnknown.
    const [row] = await this.read(
      `SELECT json_array(count(*), coalesce(sum(fallback), 0), coalesce(sum(cost_usd), 0), coalesce(sum(${COST_UNKNOWN}), 0), min(started_at), max(started_at)) FROM ${TABLE}${where}`,
      params,
    );
    const [requests, fallbacks, costUsd, unpriced, firstStartedAt, lastStartedAt] = JSON.parse(row as string) as [number, number, number, number, number | null, number | null];
    return { requests, fallbacks, costUsd: roundUsd(costUsd), unpriced, firstStartedAt, lastStartedAt };
  }

  async get(requestId: string): Promise<LogEvent | null> {
    const oldest = this.oldestRetained();
    const [row] = await this.read(`SELECT event FROM ${TABLE} WHERE request_id = ?${oldest === null ? '' : ' AND started_at >= ?'}`, oldest === null ? [requestId] : [requestId, oldest]);
    return row === undefined ? null : (JSON.parse(row as string) as LogEvent);
  }

  /**
   * The start of the retained time, null when age is unlimited. Reads stop there: rows past it that the prune has not
   * deleted yet (between runs, or right after opening a file with many expired rows, which takes seconds) stay unseen.
   */
  private oldestRetained(): number | null {
    return Number.isFinite(this.maxAgeMs) ? Date.now() - this.maxAgeMs : null;
  }

  private retained<Q extends { from?: number }>(q: Q): Q {
    const oldest = this.oldestRetained();
    return oldest === null || (q.from !== undefined && q.from >= oldest) ? q : { ...q, from: oldest };
  }

  /** Number of requests stored (after what is queued is written). */
  async count(): Promise<number> {
    const [n] = await this.read(`SELECT count(*) FROM ${TABLE}`, []);
    return n as number;
  }

  /**
   * Reads once what is queued is written (batches are written in order, so after the last): the viewer right after a
   * request sees it.
   */
  private read(sql: string, params: unknown[]): Promise<unknown[]> {
    if (this.closing !== null) return Promise.reject(new Error('The SQLite log store is closed.'));
    this.queue.flush();
    return this.lastWrite.then(() => this.run<unknown[]>(this.reader, { op: 'all', sql, params }));
  }

  /**
   * Writes what is queued and closes the database; resolves when that is done (await it before the process exits, or
   * before opening the file again). Events written after this are dropped.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.queue.flush();
    clearInterval(this.pruneTimer);
    if (this.fileKey !== null) OPEN_FILES.delete(this.fileKey);
    // This connection closes last: only the last connection to a file folds the WAL back into it.
    // Queries asked before this wait for the last write (see read): they go to the reading thread before it closes.
    const closing = Promise.all([this.writer?.close(), this.lastWrite.then(() => this.reader?.close())]).then(() => {
      this.db.close();
    });
    this.closing = closing;
    return closing;
  }
}

/**
 * The event as the table's columns, or null if it cannot be stored: a value SQLite could not bind, a cycle or a
 * BigInt JSON cannot encode, a missing field (events another writer made): it is skipped alone, never thrown.
 */
function toRow(e: LogEvent): EventRow | null {
  try {
    const row = [
      e.requestId, e.traceId, e.configId, e.startedAt, e.status, e.fallback ? 1 : 0, providerOf(e), e.model, e.servedBy?.model ?? null,
      e.usage?.total_tokens ?? null, e.costUsd, JSON.stringify(e),
    ];
    return row.every(bindable) ? row : null;
  } catch {
    return null;
  }
}

/** What SQLite binds (and a thread can receive); anything else fails the row. */
function bindable(value: unknown): boolean {
  return value === null || value === undefined || typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint';
}

/** Files (device:inode) a store of this process has open. */
const OPEN_FILES = new Set<string>();
/** Rows deleted per retention transaction. */
const PRUNE_CHUNK = 1000;

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The file the worker opens, with the identity it must find there: a file replaced at that path is not this store's. */
function databaseFile(name: string): DatabaseFile {
  const path = resolve(name);
  const { dev, ino } = statSync(path, { bigint: true });
  return { path, dev: String(dev), ino: String(ino) };
}

// As core's attemptFailed, for every shape a stored event may have (another writer's): an attempt that is not an object
// is passed over (json_extract on a string one would fail the whole query), a status that is not a number is none.
const FAILED_ATTEMPT = `type = 'object'
  AND coalesce(json_extract(value, '$.error.code'), '') NOT IN ('model_not_deployed', 'circuit_open')
  AND (json_type(value, '$.error') IS NOT NULL
    OR NOT coalesce(json_type(value, '$.status') IN ('integer', 'real') AND json_extract(value, '$.status') BETWEEN 200 AND 299, 0))`;

/** core's costUnknown for a row: no cost, and tokens used or an upstream's answer served (the JSON read only then). */
const COST_UNKNOWN = `CASE WHEN cost_usd IS NOT NULL THEN 0 WHEN total_tokens IS NOT NULL OR json_type(event, '$.usage') = 'object' THEN 1
  WHEN status < 300 OR status = 499 THEN coalesce(json_type(event, '$.servedBy') = 'object', 0) ELSE 0 END`;

/** A page of the query, newest first, one row past the limit (whether there is a next page), as SQL. */
export function querySql(q: NormalizedLogQuery): { sql: string; params: unknown[] } {
  const { where, params } = whereClause(q);
  params.push(q.limit + 1);
  return { sql: `SELECT event FROM ${TABLE}${where} ORDER BY started_at DESC, request_id DESC LIMIT ?`, params };
}

/**
 * The query as SQL, every value a bound parameter. Indexes end in (started_at, request_id), the page order, so an
 * equality filter reads its newest rows and stops at the page size. A range or an OR cannot keep that order: it is
 * written with a unary `+`, which keeps SQLite off its index and on the newest-first scan (else a common class such as
 * 2xx would read and sort most of the table for 50 rows).
 */
function whereClause(q: NormalizedLogQuery): { where: string; params: unknown[] } {
  const conditions: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, ...values: unknown[]) => {
    conditions.push(sql);
    params.push(...values);
  };
  if (q.traceId !== undefined) add('trace_id = ?', q.traceId);
  // A trace holds a few rows: beside it, the other indexed filters are kept off their indexes, or SQLite (which has no
  // statistics to tell them apart) may walk every 200 for the one trace.
  const other = q.traceId === undefined ? '' : '+';
  if (q.status) {
    if (q.status.min === q.status.max) add(`${other}status = ?`, q.status.min);
    else add('+status BETWEEN ? AND ?', q.status.min, q.status.max);
  }
  if (q.configId === null) add(`${other}config_id IS NULL`);
  else if (q.configId !== undefined) add(`${other}config_id = ?`, q.configId);
  // A literal, not a parameter: SQLite only uses the partial index on fallback = 1 for a literal.
  if (q.fallback !== undefined) add(q.fallback ? `${other}fallback = 1` : 'fallback = 0');
  if (q.provider !== undefined) add('provider = ?', q.provider);
  if (q.model !== undefined) add('(+model = ? OR +served_model = ?)', q.model, q.model);
  // core's attemptFailed in SQL, over the stored event's attempts: no column to migrate, and rows written before it match.
  // The event's text (JSON.stringify's, in toRow) is searched for the provider and the error code first: a row that
  // never names them is passed over without parsing its JSON.
  if (q.failedProvider !== undefined || q.failedStatus !== undefined || q.failedError !== undefined) {
    // The same attempt must match each that is given.
    const attempt = [FAILED_ATTEMPT];
    const values: unknown[] = [];
    if (q.failedProvider !== undefined) {
      attempt.push(`json_extract(value, '$.provider') = ?`);
      values.push(q.failedProvider);
    }
    if (q.failedStatus !== undefined) {
      attempt.push(`json_type(value, '$.status') = 'integer' AND json_extract(value, '$.status') BETWEEN ? AND ?`);
      values.push(q.failedStatus.min, q.failedStatus.max);
    }
    if (q.failedError !== undefined) {
      attempt.push(`(json_extract(value, '$.error.code') = ? OR json_extract(value, '$.upstreamError.code') = ?)`);
      values.push(q.failedError, q.failedError);
    }
    const named: string[] = [];
    if (q.failedProvider !== undefined) named.push(`"provider":${JSON.stringify(q.failedProvider)}`);
    if (q.failedError !== undefined) named.push(`"code":${JSON.stringify(q.failedError)}`);
    const prefilter = named.map(() => 'instr(event, ?) > 0 AND ').join('');
    add(`${prefilter}EXISTS (SELECT 1 FROM json_each(event, '$.attempts') WHERE ${attempt.join(' AND ')})`, ...named, ...values);
  }
  if (q.from !== undefined) add('started_at >= ?', q.from);
  if (q.to !== undefined) add('started_at <= ?', q.to);
  if (q.minCostUsd !== undefined) add('cost_usd >= ?', q.minCostUsd);
  if (q.maxCostUsd !== undefined) add('cost_usd <= ?', q.maxCostUsd);
  if (q.minTokens !== undefined) add('total_tokens >= ?', q.minTokens);
  if (q.maxTokens !== undefined) add('total_tokens <= ?', q.maxTokens);
  // A row value, which SQLite starts the index walk at: the OR form read every row before the cursor (page N, N pages).
  if (q.cursor) add('(started_at, request_id) < (?, ?)', q.cursor.startedAt, q.cursor.requestId);
  return { where: conditions.length ? ` WHERE ${conditions.join(' AND ')}` : '', params };
}
