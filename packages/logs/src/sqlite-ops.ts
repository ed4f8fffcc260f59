/**
 * The SQLite store's work on one connection: batched inserts, reads, retention. It runs on the store's worker thread
 * (whose source is built from this function's text) or, for an in-memory database or when that thread cannot run,
 * in the calling thread. So it uses nothing but its arguments: no imports, no module constants.
 */
import type Database from 'better-sqlite3';

/** One event as the table's columns (see `toRow` in the store), its JSON last. */
export type EventRow = unknown[];

export interface WriteResult {
  /** Events stored (one whose request id is stored already counts: it is there). */
  written: number;
  /** Events that could not be stored, each skipped alone. */
  skipped: number;
}

export interface SqliteOps {
  /** Inserts the rows in one transaction. Throws on a database error (locked, disk full): the batch is lost. */
  write(rows: EventRow[]): WriteResult;
  /** The first column of every row the query returns. */
  all(sql: string, params: unknown[]): unknown[];
  /** Applies retention; returns the number of requests deleted. */
  /** Deletes at most `limit` rows past retention; fewer than `limit` means none is left. */
  prune(now: number, maxAgeMs: number, maxRows: number, limit: number): number;
}

/**
 * Throws when the process may read the database but not write it (a read-only file opens without complaint, and
 * every write would fail later, one warning and a counter): a no-op write says so at startup. A lock held by
 * another process (SQLITE_BUSY) is no such failure: that passes.
 */
export function assertWritable(db: Database.Database, table: string): void {
  try {
    db.exec(`DELETE FROM ${table} WHERE 0`);
  } catch (err) {
    if (String((err as { code?: unknown }).code).startsWith('SQLITE_READONLY')) throw err;
  }
}

export function sqliteOps(db: Database.Database, table: string, maxStatements: number): SqliteOps {
  const insert = db.prepare(
    `INSERT INTO ${table} (request_id, trace_id, config_id, started_at, status, fallback, provider, model, served_model, total_tokens, cost_usd, event)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING`,
  );
  const insertBatch = db.transaction((rows: EventRow[]) => {
    let skipped = 0;
    for (const row of rows) {
      try {
        insert.run(...row);
      } catch (err) {
        // A database error (disk full, lock) fails the batch; an event that cannot be stored (a missing field, a
        // value SQLite cannot bind) is skipped alone. By its code, not instanceof: the native addon keeps the first
        // SqliteError class it was given, so a second copy of better-sqlite3's JavaScript (jest's module registries,
        // a duplicated install) throws another.
        const code = (err as { code?: unknown }).code;
        if (typeof code === 'string' && code.startsWith('SQLITE_') && !code.startsWith('SQLITE_CONSTRAINT')) throw err;
        skipped++;
      }
    }
    return skipped;
  });
  // In chunks of `limit` rows, each its own transaction: a million expired rows (a restart after long downtime, a
  // lowered retention) must not hold the database, and the writes queued behind it, for seconds.
  const deleteOlder = db.prepare(`DELETE FROM ${table} WHERE rowid IN (SELECT rowid FROM ${table} WHERE started_at < ? LIMIT ?)`);
  // Rowids grow by one per insert and only the oldest rows are deleted, so this keeps the newest N rows without the
  // O(N) scan an OFFSET would cost every prune.
  const deleteBeyond = db.prepare(
    `DELETE FROM ${table} WHERE rowid IN (SELECT rowid FROM ${table} WHERE rowid <= (SELECT max(rowid) FROM ${table}) - ? ORDER BY rowid LIMIT ?)`,
  );
  const statements = new Map<string, Database.Statement<unknown[], unknown>>();
  const statement = (sql: string): Database.Statement<unknown[], unknown> => {
    let prepared = statements.get(sql);
    if (!prepared) {
      if (statements.size >= maxStatements) statements.clear();
      prepared = db.prepare<unknown[], unknown>(sql).pluck();
      statements.set(sql, prepared);
    }
    return prepared;
  };
  return {
    write(rows) {
      const skipped = insertBatch(rows);
      return { written: rows.length - skipped, skipped };
    },
    all: (sql, params) => statement(sql).all(...params),
    prune(now, maxAgeMs, maxRows, limit) {
      let deleted = 0;
      if (Number.isFinite(maxAgeMs)) deleted += deleteOlder.run(now - maxAgeMs, limit).changes;
      if (deleted < limit && Number.isFinite(maxRows)) deleted += deleteBeyond.run(maxRows, limit - deleted).changes;
      return deleted;
    },
  };
}
