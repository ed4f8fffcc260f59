/**
 * The durable store: SQLite through better-sqlite3. `write` only queues the event; a flush `flushIntervalMs` later
 * writes the whole queue in one transaction, after the request's response went out. A queue that is full drops
 * events and counts them: the store falls behind, the process and the request do not. `query` on a database file
 * runs on a worker thread (see SqliteReader); `get`, a lookup by a unique index, stays on this one.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import Database from 'better-sqlite3';
import {
  MAX_TIMER_MS, encodeCursor, normalizeLogQuery, providerOf, type LogEvent, type LogPage, type LogQuery, type LogStore, type NormalizedLogQuery,
} from '@switchyard/core';
import { BatchQueue } from './batch-queue';
import { SqliteReader, type ReaderFile } from './sqlite-reader';

export interface SqliteRetention {
  /** Delete requests that started longer ago than this (ms). Default 30 days. `Infinity` keeps them. */
  maxAgeMs?: number;
  /** Keep at most this many requests (the oldest written go first). Default 1,000,000. `Infinity` keeps all. */
  maxRows?: number;
}

export interface SqliteLogStoreOptions {
  /** Database file (created if missing), or `':memory:'`. */
  path: string;
  retention?: SqliteRetention;
  /** Events waiting to be written before new ones are dropped (and counted in `dropped`). Default 10000. */
  maxQueue?: number;
  /**
   * How long an event waits for others to share its transaction, in ms (0: to the end of the tick; at most 10000).
   * Default 100. A transaction costs the event loop ~270 µs for one event against ~70 µs per event for 100 or more
   * (WAL checkpoints included), and 200 queued events are written at once. A crash loses what is queued.
   */
  flushIntervalMs?: number;
  /** How often retention runs, in ms (also once at open). Default 60000. */
  pruneIntervalMs?: number;
  /**
   * How long a write waits for another process's lock on the file, in ms, blocking the event loop meanwhile.
   * Default 20. A batch that still finds the file locked is counted in `failed`: give each process its own file.
   */
  busyTimeoutMs?: number;
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
  /** Events lost because a write to the database failed (disk full, locked...). */
  failed = 0;
  /** Events written to the database. */
  written = 0;

  private readonly db: Database.Database;
  /** Inserts a batch in one transaction; returns how many of its events could not be stored (and were skipped). */
  private readonly insertBatch: (events: LogEvent[]) => number;
  private readonly getStatement: Database.Statement<[string], { event: string }>;
  private readonly statements = new Map<string, Database.Statement<unknown[], { event: string }>>();
  private readonly maxQueue: number;
  private readonly maxAgeMs: number;
  private readonly maxRows: number;
  private readonly queue: BatchQueue<LogEvent>;
  private open = true;
  private warned = false;
  private pruneWarned = false;
  private readonly pruneTimer: NodeJS.Timeout;
  /** Null for an in-memory database (only this connection sees it) or a file not in WAL mode. */
  private readonly reader: SqliteReader | null;

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
      throw new RangeError('SqliteLogStore busyTimeoutMs must be between 0 and 1000 (the wait blocks the event loop).');
    }
    // better-sqlite3 waits for a lock synchronously (5 s by default): that would freeze every request of the process.
    this.db = new Database(options.path, { timeout: busyTimeoutMs });
    // WAL: readers (the viewer) do not block the writer; NORMAL sync is durable across a process crash.
    const wal = this.db.pragma('journal_mode = WAL', { simple: true }) === 'wal';
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(SCHEMA);
    const insert = this.db.prepare(
      `INSERT INTO ${TABLE} (request_id, trace_id, config_id, started_at, status, fallback, provider, model, served_model, total_tokens, cost_usd, event)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING`,
    );
    this.insertBatch = this.db.transaction((events: LogEvent[]) => {
      let skipped = 0;
      for (const e of events) {
        try {
          insert.run(
            e.requestId, e.traceId, e.configId, e.startedAt, e.status, e.fallback ? 1 : 0, providerOf(e), e.model, e.servedBy?.model ?? null,
            e.usage?.total_tokens ?? null, e.costUsd, JSON.stringify(e),
          );
        } catch (err) {
          // A database error (disk full, lock) fails the batch; an event that cannot be stored (a store fed by other
          // code with a missing field, or a value SQLite cannot bind or JSON cannot encode) is skipped alone.
          // By its code, not instanceof: the native addon keeps the first SqliteError class it was given, so a
          // second copy of better-sqlite3's JavaScript (jest's module registries, a duplicated install) throws another.
          const code = (err as { code?: unknown }).code;
          if (typeof code === 'string' && code.startsWith('SQLITE_') && !code.startsWith('SQLITE_CONSTRAINT')) throw err;
          skipped++;
        }
      }
      return skipped;
    });
    this.getStatement = this.db.prepare(`SELECT event FROM ${TABLE} WHERE request_id = ?`);
    // Another connection sees this one's writes only in a file, and reads beside the writer only in WAL mode (a file
    // system without it would fail writes during a long read): else queries stay on this connection.
    this.reader = this.db.memory || !wal ? null : new SqliteReader(readerFile(this.db.name), busyTimeoutMs, MAX_CACHED_STATEMENTS, (sql, params) => this.readInThread(sql, params));
    this.prune();
    this.pruneTimer = setInterval(() => {
      try {
        this.prune();
      } catch (err) {
        // A locked or full database: retention runs again at the next tick, the process goes on.
        if (this.pruneWarned) return;
        this.pruneWarned = true;
        process.emitWarning(`Switchyard's SQLite log store could not apply retention (it will retry): ${String(err)}`, 'SwitchyardLogStoreWarning');
      }
    }, pruneIntervalMs);
    this.pruneTimer.unref();
  }

  /** Queues the event; never blocks and never throws. */
  write(event: LogEvent): void {
    if (!this.open || this.queue.size >= this.maxQueue) {
      this.dropped++;
      return;
    }
    this.queue.push(event);
  }

  /** Writes the queued events now, in one transaction. */
  flush(): void {
    if (this.open) this.queue.flush();
  }

  private insert(batch: LogEvent[]): void {
    try {
      const skipped = this.insertBatch(batch);
      this.written += batch.length - skipped;
      this.failed += skipped;
      if (skipped > 0) this.warnOnce(`${skipped} event(s) could not be stored`);
    } catch (err) {
      this.failed += batch.length;
      this.warnOnce(String(err));
    }
  }

  private warnOnce(reason: string): void {
    if (this.warned) return;
    this.warned = true;
    process.emitWarning(`Switchyard's SQLite log store could not write; failed events are counted in \`failed\`: ${reason}`, 'SwitchyardLogStoreWarning');
  }

  /** Applies retention; returns the number of requests deleted. */
  prune(now = Date.now()): number {
    if (!this.open) return 0;
    this.flush();
    let deleted = 0;
    if (Number.isFinite(this.maxAgeMs)) {
      deleted += this.db.prepare(`DELETE FROM ${TABLE} WHERE started_at < ?`).run(now - this.maxAgeMs).changes;
    }
    if (Number.isFinite(this.maxRows)) {
      // Rowids grow by one per insert and only the oldest rows are deleted, so this keeps the newest maxRows rows
      // without the O(maxRows) scan an OFFSET would cost every prune.
      deleted += this.db.prepare(`DELETE FROM ${TABLE} WHERE rowid <= (SELECT max(rowid) FROM ${TABLE}) - ?`).run(this.maxRows).changes;
    }
    return deleted;
  }

  async query(query?: LogQuery): Promise<LogPage> {
    const q = normalizeLogQuery(query);
    this.assertOpen();
    this.flush(); // read your own writes: the viewer right after a request sees it
    const { where, params } = whereClause(q);
    const sql = `SELECT event FROM ${TABLE}${where} ORDER BY started_at DESC, request_id DESC LIMIT ?`;
    params.push(q.limit + 1);
    const rows = this.reader ? await this.reader.all(sql, params) : this.readInThread(sql, params);
    const data = rows.slice(0, q.limit).map((r) => JSON.parse(r) as LogEvent);
    return { data, nextCursor: rows.length > q.limit ? encodeCursor(data[data.length - 1]!) : null };
  }

  async get(requestId: string): Promise<LogEvent | null> {
    this.assertOpen();
    this.flush();
    const row = this.getStatement.get(requestId);
    return row ? (JSON.parse(row.event) as LogEvent) : null;
  }

  /** Number of requests stored. */
  count(): number {
    this.assertOpen();
    this.flush();
    return (this.db.prepare(`SELECT count(*) AS n FROM ${TABLE}`).get() as { n: number }).n;
  }

  /** Writes what is queued and closes the database. Events written after this are dropped. */
  close(): void {
    if (!this.open) return;
    this.flush();
    this.open = false;
    clearInterval(this.pruneTimer);
    // This connection closes last: only the last connection to a file folds the WAL back into it, and a scan still
    // running in the reader thread (a worker cannot be stopped inside native code) keeps its connection open.
    const readerGone = this.reader?.close();
    if (readerGone) void readerGone.then(() => this.db.close());
    else this.db.close();
  }

  private assertOpen(): void {
    if (!this.open) throw new Error('The SQLite log store is closed.');
  }

  private readInThread(sql: string, params: unknown[]): string[] {
    return this.statement(sql).all(...params).map((r) => r.event);
  }

  private statement(sql: string): Database.Statement<unknown[], { event: string }> {
    let statement = this.statements.get(sql);
    if (!statement) {
      if (this.statements.size >= MAX_CACHED_STATEMENTS) this.statements.clear();
      statement = this.db.prepare<unknown[], { event: string }>(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }
}

/** The file the reader opens, with the identity it must find there: a file replaced at that path is not this store's. */
function readerFile(name: string): ReaderFile {
  const path = resolve(name);
  const { dev, ino } = statSync(path, { bigint: true });
  return { path, dev: String(dev), ino: String(ino) };
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
  if (q.status) {
    if (q.status.min === q.status.max) add('status = ?', q.status.min);
    else add('+status BETWEEN ? AND ?', q.status.min, q.status.max);
  }
  if (q.configId === null) add('config_id IS NULL');
  else if (q.configId !== undefined) add('config_id = ?', q.configId);
  // A literal, not a parameter: SQLite only uses the partial index on fallback = 1 for a literal.
  if (q.fallback !== undefined) add(q.fallback ? 'fallback = 1' : 'fallback = 0');
  if (q.provider !== undefined) add('provider = ?', q.provider);
  if (q.model !== undefined) add('(+model = ? OR +served_model = ?)', q.model, q.model);
  if (q.from !== undefined) add('started_at >= ?', q.from);
  if (q.to !== undefined) add('started_at <= ?', q.to);
  if (q.minCostUsd !== undefined) add('cost_usd >= ?', q.minCostUsd);
  if (q.maxCostUsd !== undefined) add('cost_usd <= ?', q.maxCostUsd);
  if (q.minTokens !== undefined) add('total_tokens >= ?', q.minTokens);
  if (q.maxTokens !== undefined) add('total_tokens <= ?', q.maxTokens);
  if (q.cursor) add('(started_at < ? OR (started_at = ? AND request_id < ?))', q.cursor.startedAt, q.cursor.startedAt, q.cursor.requestId);
  return { where: conditions.length ? ` WHERE ${conditions.join(' AND ')}` : '', params };
}
