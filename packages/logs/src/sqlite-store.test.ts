import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { encodeCursor, normalizeLogQuery, type LogQuery } from '@switchyard/core';
import { SqliteLogStore, type LogEvent } from '@switchyard/logs';
import { assertWritable } from './sqlite-ops';
import { querySql } from './sqlite-store';

let seq = 0;
function event(over: Partial<LogEvent> = {}): LogEvent {
  seq++;
  return {
    traceId: `trace-${seq}`, requestId: `req-${seq}`, configId: null, startedAt: Date.now(), durationMs: 10, status: 200, stream: false,
    fallback: false, model: 'gpt-4o', servedBy: { target: 'targets[0]', provider: 'openai', model: 'gpt-4o' },
    attempts: [{ target: 'targets[0]', provider: 'openai', model: 'gpt-4o', status: 200, durationMs: 9 }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }, costUsd: 0.0000125, ...over,
  };
}

const DAY = 86_400_000;
const nextTick = () => new Promise((r) => setImmediate(r));
async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  for (const t0 = Date.now(); !check(); await new Promise((r) => setTimeout(r, 5))) {
    if (Date.now() - t0 > timeoutMs) throw new Error('timed out');
  }
}

/** Runs a script against the built package in its own process, as a host app would; resolves when it exits. */
function runScript(body: string): Promise<{ stdout: string; stderr: string }> {
  const script = `const { SqliteLogStore } = require(${JSON.stringify(join(__dirname, '..', 'dist', 'index.js'))});\n${body}`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', script], { timeout: 20_000 }, (err, stdout, stderr) => (err ? reject(err) : resolve({ stdout, stderr })));
  });
}
/** A log event as plain JavaScript, for those scripts. */
const scriptEvent = (traceId: string, requestId: string) =>
  `{ traceId: '${traceId}', requestId: '${requestId}', configId: null, startedAt: Date.now(), durationMs: 1, status: 200, stream: false, ` +
  `fallback: false, model: 'gpt-4o', servedBy: null, attempts: [], usage: null, costUsd: null }`;

describe('SQLite log store', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'switchyard-sqlite-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  // The store reports what it cannot do as process warnings: recorded here, for the tests that expect one.
  let warn: jest.SpyInstance;
  beforeEach(() => {
    warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
  });
  afterEach(() => warn.mockRestore());

  it('keeps events across a restart', async () => {
    const path = join(dir, 'logs.db');
    const first = new SqliteLogStore({ path });
    const kept = event({ traceId: 'survives-restart', fallback: true });
    first.write(kept);
    await first.close(); // writes what is queued

    const second = new SqliteLogStore({ path });
    expect(await second.get(kept.requestId)).toEqual(kept);
    expect((await second.query({ traceId: 'survives-restart' })).data).toEqual([kept]);
    await second.close();
  });

  it('writes off the request path: write only queues, a flush after flushIntervalMs hands the window to the database', async () => {
    const path = join(dir, 'batch.db');
    const store = new SqliteLogStore({ path, flushIntervalMs: 300 });
    const file = new Database(path, { readonly: true });
    const stored = () => (file.prepare('SELECT count(*) AS n FROM switchyard_requests').get() as { n: number }).n;
    try {
      for (let i = 0; i < 100; i++) store.write(event());
      await new Promise((r) => setTimeout(r, 100));
      expect({ queued: store.queued, written: store.written, stored: stored() }).toEqual({ queued: 100, written: 0, stored: 0 }); // the window is open
      await until(() => store.written === 100);
      expect({ queued: store.queued, stored: stored() }).toEqual({ queued: 0, stored: 100 });
    } finally {
      file.close();
      await store.close();
    }
  });

  it('hands over at the end of the tick with flushIntervalMs 0, or once 200 events are queued', async () => {
    const perTick = new SqliteLogStore({ path: join(dir, 'tick.db'), flushIntervalMs: 0 });
    perTick.write(event());
    expect(perTick.queued).toBe(1);
    await nextTick();
    expect(perTick.queued).toBe(0);
    await perTick.flush(); // resolves once what was handed over is stored
    expect(perTick.written).toBe(1);
    await perTick.close();

    const full = new SqliteLogStore({ path: join(dir, 'full.db'), flushIntervalMs: 10_000 });
    for (let i = 0; i < 199; i++) full.write(event());
    await nextTick();
    expect(full.queued).toBe(199);
    full.write(event());
    await nextTick();
    expect(full.queued).toBe(0);
    await full.flush();
    expect(full.written).toBe(200);
    await full.close();
  });

  it('writes what is queued before a script that never closes it exits', async () => {
    const path = join(dir, 'exit.db');
    await runScript(`
      const store = new SqliteLogStore({ path: ${JSON.stringify(path)}, flushIntervalMs: 200 });
      store.write(${scriptEvent('last-words', 'r-exit')});
    `);
    const store = new SqliteLogStore({ path });
    expect((await store.get('r-exit'))?.traceId).toBe('last-words');
    await store.close();
  });

  it('drops and counts events when its queue is full, and after close, without throwing', async () => {
    const store = new SqliteLogStore({ path: join(dir, 'drop.db'), maxQueue: 5 });
    for (let i = 0; i < 8; i++) store.write(event());
    // Said once, however many are dropped.
    expect(warn.mock.calls.map(([message]) => String(message))).toEqual([expect.stringContaining('fell behind (5 events waiting, maxQueue)')]);
    warn.mockClear();
    expect(store.dropped).toBe(3);
    expect(await store.count()).toBe(5); // count() writes what is queued first
    await store.close();
    expect(() => store.write(event())).not.toThrow();
    store.write(event());
    expect(store.dropped).toBe(5);
    // A shutdown that closed the store too early, said once: the counter alone is read by nobody at that point.
    expect(warn.mock.calls.map(([message]) => String(message))).toEqual([expect.stringContaining('SQLite log store got an event after close(); it is dropped')]);
  });

  it('counts events handed to the database and not yet written against maxQueue', async () => {
    const store = new SqliteLogStore({ path: join(dir, 'inflight.db'), maxQueue: 2 });
    store.write(event());
    store.write(event());
    const handed = store.flush(); // both now with the worker
    store.write(event());
    expect(store.dropped).toBe(1);
    await handed;
    await store.close();
  });

  it('keeps 30 days by default', async () => {
    const now = Date.now();
    const store = new SqliteLogStore({ path: join(dir, 'default-retention.db') });
    for (const days of [31, 29, 0]) store.write(event({ startedAt: now - days * DAY }));
    expect(await store.prune(now)).toBe(1);
    expect(await store.count()).toBe(2);
    await store.close();
  });

  it('writes while a long query runs, on its own thread; a query still sees every write asked before it', async () => {
    const path = join(dir, 'reader.db');
    // Rows started in 1970: kept for good, or reads would not look at them (past the retention).
    const store = new SqliteLogStore({ path, retention: { maxAgeMs: Infinity } });
    await store.count(); // the threads are up
    // 300,000 rows put there directly (the store's own writes would take a minute): a filter no index serves walks them all.
    const db = new Database(path);
    db.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000)
      INSERT INTO switchyard_requests (request_id, trace_id, started_at, status, fallback, total_tokens, event)
      SELECT 'bulk-' || i, 'bulk', i, 200, 0, 10, '{}' FROM n`);
    db.close();
    const order: string[] = [];
    const scan = store.query({ minTokens: 1_000_000 }).then((page) => order.push(`scan (${page.data.length} events)`));
    store.write(event({ traceId: 'during-the-scan' }));
    const written = store.flush().then(() => order.push('write'));
    await Promise.all([scan, written]);
    expect(order).toEqual(['write', 'scan (0 events)']);
    // Asked before the flush: the query waits for the write and sees it.
    store.write(event({ traceId: 'read-your-writes' }));
    expect((await store.query({ traceId: 'read-your-writes' })).data).toHaveLength(1);
    await store.close();
  });

  it('plans a trace id with other filters on the trace index, and a page after a cursor as a seek, not a walk from the newest', async () => {
    const path = join(dir, 'plans.db');
    const store = new SqliteLogStore({ path });
    store.write(event());
    await store.close();
    const db = new Database(path, { readonly: true });
    const plan = (query: LogQuery) => {
      const { sql, params } = querySql(normalizeLogQuery(query));
      return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>).map((r) => r.detail).join('; ');
    };
    try {
      const trace = 'SEARCH switchyard_requests USING INDEX switchyard_requests_trace (trace_id=?)';
      expect(plan({ traceId: 't', status: 200 })).toBe(trace);
      expect(plan({ traceId: 't', configId: 'prod', fallback: true })).toBe(trace);
      expect(plan({ traceId: 't', configId: null })).toBe(trace);
      const cursor = encodeCursor({ startedAt: 1, requestId: 'r' });
      expect(plan({ cursor })).toMatch(/^SEARCH switchyard_requests USING INDEX switchyard_requests_started \(\(started_at,request_id\)<\(\?,\?\)\)/);
      expect(plan({ status: 200, cursor })).toMatch(/^SEARCH switchyard_requests USING INDEX switchyard_requests_status \(status=\? AND \(started_at,request_id\)<\(\?,\?\)\)/);
    } finally {
      db.close();
    }
  });

  it('applies retention by age and by rows', async () => {
    const now = Date.now();
    const store = new SqliteLogStore({ path: join(dir, 'retention.db'), retention: { maxAgeMs: 60_000, maxRows: 3 } });
    const old = event({ startedAt: now - 120_000 });
    const recent = [event(), event(), event(), event()];
    for (const e of [old, ...recent]) store.write(e);
    expect(await store.prune(now)).toBe(2); // the old one by age, then the oldest written beyond 3 rows
    expect(await store.get(old.requestId)).toBeNull();
    expect(await store.get(recent[0]!.requestId)).toBeNull();
    expect((await store.query()).data.map((e) => e.requestId).sort()).toEqual(recent.slice(1).map((e) => e.requestId).sort());
    await store.close();
  });

  it('never shows a request past its age in a query, a summary or a get, before the prune has deleted it', async () => {
    const store = new SqliteLogStore({ path: join(dir, 'retention-reads.db'), retention: { maxAgeMs: 60_000 } });
    // Written after the prune at open ran, and the next one a minute away: both rows are in the file.
    const old = event({ startedAt: Date.now() - 120_000, traceId: 'kept-trace' });
    const recent = event({ traceId: 'kept-trace' });
    store.write(old);
    store.write(recent);
    await store.flush();
    expect(await store.count()).toBe(2);
    expect((await store.query()).data.map((e) => e.requestId)).toEqual([recent.requestId]);
    expect((await store.query({ traceId: 'kept-trace', from: 0 })).data.map((e) => e.requestId)).toEqual([recent.requestId]);
    expect((await store.summarize()).requests).toBe(1);
    expect(await store.get(old.requestId)).toBeNull();
    expect((await store.get(recent.requestId))?.requestId).toBe(recent.requestId);
    await store.close();
    // Kept for good with Infinity: an old request is still found.
    const forever = new SqliteLogStore({ path: join(dir, 'retention-reads.db'), retention: { maxAgeMs: Infinity } });
    expect((await forever.summarize()).requests).toBe(2);
    expect((await forever.get(old.requestId))?.requestId).toBe(old.requestId);
    await forever.close();
  });

  it('skips an event it cannot store without losing the rest of its batch', async () => {
    const store = new SqliteLogStore({ path: join(dir, 'skip.db') });
    const good = [event(), event()];
    store.write(good[0]!);
    store.write({ ...event(), costUsd: { usd: 1 } as unknown as number }); // not a value SQLite can bind
    store.write({ ...event(), traceId: null as unknown as string }); // breaks a NOT NULL constraint
    store.write({ ...event(), servedBy: null, attempts: undefined as unknown as [] }); // another writer's, without attempts
    store.write(good[1]!);
    await store.flush();
    expect({ written: store.written, failed: store.failed }).toEqual({ written: 2, failed: 3 });
    expect((await store.query()).data.map((e) => e.requestId).sort()).toEqual(good.map((e) => e.requestId).sort());
    expect(warn).toHaveBeenCalledTimes(1);
    await store.close();
  });

  it('answers a query from its worker thread, which never keeps the process alive', async () => {
    // A script that awaits a query and never closes the store: it must print the answer (the worker is referenced
    // while an operation waits) and then exit by itself (an idle worker and the retention timer are not).
    const path = join(dir, 'script.db');
    const { stdout, stderr } = await runScript(`
      const store = new SqliteLogStore({ path: ${JSON.stringify(path)} });
      store.write(${scriptEvent('from-a-script', 'r1')});
      // The second query finds the worker up and idle (unreferenced): only the query itself keeps the process up.
      const print = (page) => console.log(page.data.map((e) => e.requestId).join());
      store.query().then(() => setTimeout(() => store.query({ traceId: 'from-a-script' }).then(print), 50));
    `);
    expect(stdout.trim()).toBe('r1');
    expect(stderr).not.toContain('in the main thread'); // answered by the worker, not by the fallback
  });

  it('finishes what was asked before close (writes and queries), and refuses queries after it', async () => {
    const path = join(dir, 'closing.db');
    const store = new SqliteLogStore({ path });
    const first = event();
    store.write(first);
    expect((await store.query()).data).toHaveLength(1); // the threads are up
    const running = store.query();
    store.write(event({ traceId: 'at-close' }));
    const closed = store.close();
    // Answered, not refused by the close; it may see the write asked after it too (another thread writes that).
    expect((await running).data.map((e) => e.requestId)).toContain(first.requestId);
    await closed;
    expect(store.written).toBe(2);
    await expect(store.query()).rejects.toThrow(/closed/);
    expect(warn).not.toHaveBeenCalled(); // the worker did it all, not the fallback in this thread
    const again = new SqliteLogStore({ path });
    expect((await again.query({ traceId: 'at-close' })).data).toHaveLength(1);
    await again.close();
  });

  it('ends its idle worker thread, so a store nobody closes does not hold one for good; the next operation starts another', async () => {
    const store = new SqliteLogStore({ path: join(dir, 'idle.db') });
    // The idle time (30 s by default), shortened for the test.
    type Thread = { idleThreadMs: number; readonly threadRunning: boolean };
    const { writer, reader } = store as unknown as { writer: Thread; reader: Thread };
    const running = () => [writer.threadRunning, reader.threadRunning];
    writer.idleThreadMs = reader.idleThreadMs = 50;
    store.write(event({ traceId: 'before' }));
    await store.flush();
    expect(writer.threadRunning).toBe(true);
    expect((await store.query()).data).toHaveLength(1);
    expect(reader.threadRunning).toBe(true);
    const end = Date.now() + 3000;
    while (running().some(Boolean) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(running()).toEqual([false, false]);
    store.write(event({ traceId: 'after' }));
    await store.flush();
    expect(writer.threadRunning).toBe(true);
    expect((await store.query()).data.map((e) => e.traceId).sort()).toEqual(['after', 'before']);
    expect(reader.threadRunning).toBe(true);
    expect(warn).not.toHaveBeenCalled(); // a retired thread is not a failure to fall back from
    await store.close();
  });

  it('fails an operation with a value no thread can receive (from untyped code) alone: close still completes', async () => {
    const store = new SqliteLogStore({ path: join(dir, 'uncloneable.db') });
    await store.count(); // the worker is up
    await expect(store.get((() => 'x') as unknown as string)).rejects.toThrow();
    // Asked beside other queries, the failed one does not hold them up.
    const running = store.count();
    const failed = store.get((() => 'x') as unknown as string);
    const after = store.count();
    await expect(failed).rejects.toThrow();
    expect([await running, await after]).toEqual([0, 0]);
    await store.close(); // would wait forever for the failed operation, keeping the process alive
  });

  it('writes and reads in the main thread when its worker cannot open the file, losing nothing', async () => {
    const path = join(dir, 'unlinked.db');
    const store = new SqliteLogStore({ path });
    try {
      const kept = event({ traceId: 'after-unlink' });
      store.write(kept);
      // The file is gone (a cleanup job, say): the store's own connection still has it open, a new one cannot.
      rmSync(path);
      expect((await store.query({ traceId: 'after-unlink' })).data).toEqual([kept]);
      expect((await store.query({ traceId: 'after-unlink' })).data).toEqual([kept]);
      expect(store.written).toBe(1);
      const said = warn.mock.calls.map(([message]) => String(message)).filter((m) => m.includes('in the main thread from now on'));
      // One per thread, in whichever order they started.
      expect(said.sort().reverse()).toEqual([
        "Switchyard's SQLite log store writes in the main thread from now on (its writing thread could not run: SQLITE_CANTOPEN, the database file cannot be opened: if it was deleted, restart or create the store again, as what is written to it now is lost).",
        "Switchyard's SQLite log store reads in the main thread from now on (its reading thread could not run: SQLITE_CANTOPEN, the database file cannot be opened: if it was deleted, restart or create the store again, as what is written to it now is lost).",
      ]);
    } finally {
      await store.close();
    }
  });

  it('reads its own file, not one that replaced it at the same path', async () => {
    const path = join(dir, 'replaced.db');
    const mine = new SqliteLogStore({ path });
    try {
      mine.write(event({ traceId: 'mine' })); // queued: the worker starts with the first flush, after the swap
      for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
      const theirs = new SqliteLogStore({ path }); // open: another process's store, say
      theirs.write(event({ traceId: 'theirs' }));
      await theirs.flush();
      // The worker would open the new file: it sees that and leaves the work to the store's own connection.
      expect((await mine.query()).data.map((e) => e.traceId)).toEqual(['mine']);
      await theirs.close();
      expect(warn).toHaveBeenCalledWith(expect.stringMatching(/no longer the one the store writes/), 'SwitchyardLogStoreWarning');
    } finally {
      await mine.close();
    }
  });

  it('refuses at startup a database it may read but not write, or cannot open, naming the path', () => {
    const path = join(dir, 'read-only.db');
    const setup = new Database(path);
    setup.exec('CREATE TABLE t (x)');
    setup.close();
    // What a file the process's user may only read opens as (root could write it: the test opens it read-only).
    const readOnly = new Database(path, { readonly: true });
    expect(() => assertWritable(readOnly, 't')).toThrow('attempt to write a readonly database');
    readOnly.close();
    const writable = new Database(path);
    expect(() => assertWritable(writable, 't')).not.toThrow();
    writable.close();
    const missing = join(dir, 'no-such-dir', 'logs.db');
    expect(() => new SqliteLogStore({ path: missing })).toThrow(`SqliteLogStore cannot open ${missing}: `);
  });

  it('refuses a path that would open a temporary database, and a second store on a file this process has open', async () => {
    for (const path of [undefined, '', '  ']) {
      expect(() => new SqliteLogStore({ path } as unknown as { path: string })).toThrow('SqliteLogStore path must be a file path');
    }
    const path = join(dir, 'shared.db');
    const first = new SqliteLogStore({ path });
    expect(() => new SqliteLogStore({ path: join(dir, '.', 'shared.db') })).toThrow(`SqliteLogStore: ${path} is already open in another SqliteLogStore of this process; share that instance.`);
    await first.close();
    const again = new SqliteLogStore({ path }); // closed: the file is free again
    await again.close();
  });

  it('applies retention at open off the constructor and in chunks, writes going on in between', async () => {
    const path = join(dir, 'expired.db');
    const setup = new SqliteLogStore({ path, retention: { maxAgeMs: 10 * DAY }, maxQueue: 20_000 });
    const old = Date.now() - 2 * DAY;
    for (let i = 0; i < 3_000; i++) setup.write(event({ startedAt: old }));
    await setup.flush();
    await setup.close();
    // Reopened with a shorter retention: every row expired, more than two chunks of them.
    const store = new SqliteLogStore({ path, retention: { maxAgeMs: DAY }, maxQueue: 20_000 });
    const order: string[] = [];
    // Behind the first chunk of the prune started at open: this one's chunks and the write take turns with the rest.
    const pruned = store.prune().then(() => order.push('prune'));
    store.write(event({ traceId: 'during-the-prune' }));
    const written = store.flush().then(() => order.push('write'));
    await Promise.all([pruned, written]);
    // Operations run in order on the writing thread: the write went in after two chunks of 1,000, before the last.
    expect(order).toEqual(['write', 'prune']);
    expect(await store.count()).toBe(1);
    expect((await store.query({ traceId: 'during-the-prune' })).data).toHaveLength(1);
    expect(store.dropped).toBe(0);
    await store.close();
  });

  it('refuses a retention interval or a lock wait that would stall the process', () => {
    const path = join(dir, 'options.db');
    expect(() => new SqliteLogStore({ path, pruneIntervalMs: 0 })).toThrow(/pruneIntervalMs/);
    expect(() => new SqliteLogStore({ path, pruneIntervalMs: Number.NaN })).toThrow(/pruneIntervalMs/);
    expect(() => new SqliteLogStore({ path, pruneIntervalMs: 2 ** 31 })).toThrow(/pruneIntervalMs/); // Node would run it every 1 ms
    expect(() => new SqliteLogStore({ path, flushIntervalMs: -1 })).toThrow(/flushIntervalMs/);
    expect(() => new SqliteLogStore({ path, flushIntervalMs: 60_000 })).toThrow(/flushIntervalMs/);
    expect(() => new SqliteLogStore({ path, busyTimeoutMs: 5000 })).toThrow(/busyTimeoutMs/);
    expect(() => new SqliteLogStore({ path, busyTimeoutMs: -1 })).toThrow(/busyTimeoutMs/);
  });

  it('opens a file another process holds locked: retention at open warns and retries, the host still starts', async () => {
    const path = join(dir, 'locked-at-open.db');
    await new SqliteLogStore({ path }).close(); // the file exists, in WAL mode
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    let store: SqliteLogStore | undefined;
    try {
      store = new SqliteLogStore({ path });
      // Retention at open runs on the worker, after the constructor returned: its failure is a warning.
      await until(() => warn.mock.calls.some(([message]) => /could not apply retention.*locked/.test(String(message))));
      other.exec('ROLLBACK');
      store.write(event({ traceId: 'after-the-lock' }));
      expect((await store.query({ traceId: 'after-the-lock' })).data).toHaveLength(1);
    } finally {
      if (other.inTransaction) other.exec('ROLLBACK');
      other.close();
      await store?.close();
    }
  });

  it('does not freeze or crash the process when another process holds the file locked', async () => {
    const path = join(dir, 'locked.db');
    const store = new SqliteLogStore({ path, pruneIntervalMs: 20 });
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE'); // another process's write lock, held
    try {
      const t0 = performance.now();
      store.write(event());
      store.write(event());
      await store.flush();
      // The write waited the short busy timeout (not better-sqlite3's default 5 s), then counted the batch as lost:
      // a database error fails the whole batch, with its reason, where a bad event would be skipped alone.
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(store.failed).toBe(2);
      expect(warn).toHaveBeenCalledWith(expect.stringMatching(/could not write.*locked/), 'SwitchyardLogStoreWarning');
      // Retention ran on its timer against the locked file: a warning, not an uncaught exception.
      await new Promise((r) => setTimeout(r, 100));
      expect(warn).toHaveBeenCalledWith(expect.stringMatching(/could not apply retention.*locked/), 'SwitchyardLogStoreWarning');
    } finally {
      other.exec('ROLLBACK');
      other.close();
      await store.close();
    }
  });

  it('stores a request id written twice once, and counts it as written, not as a failure (a batch written again after its thread died)', async () => {
    const store = new SqliteLogStore({ path: join(dir, 'twice.db'), retention: { maxAgeMs: Infinity } });
    try {
      const e = event();
      store.write(e);
      await store.flush();
      store.write(e);
      await store.flush();
      expect({ written: store.written, failed: store.failed, rows: await store.count() }).toEqual({ written: 2, failed: 0, rows: 1 });
      expect(warn).not.toHaveBeenCalled();
    } finally {
      await store.close();
    }
  });

  it('frees its queue once a batch is stored: maxQueue bounds what waits, not what was ever written', async () => {
    const store = new SqliteLogStore({ path: join(dir, 'queue.db'), maxQueue: 2, retention: { maxAgeMs: Infinity } });
    try {
      for (let round = 0; round < 3; round++) {
        store.write(event());
        store.write(event());
        await store.flush();
      }
      expect({ dropped: store.dropped, written: store.written, rows: await store.count() }).toEqual({ dropped: 0, written: 6, rows: 6 });
    } finally {
      await store.close();
    }
  });

  it('refuses a maxQueue, maxAgeMs or maxRows that would keep nothing', () => {
    const path = join(dir, 'bad-options.db');
    expect(() => new SqliteLogStore({ path, maxQueue: 0 })).toThrow(/maxQueue must be a positive number/);
    expect(() => new SqliteLogStore({ path, maxQueue: Number.NaN })).toThrow(/maxQueue/);
    expect(() => new SqliteLogStore({ path, retention: { maxAgeMs: 0 } })).toThrow(/retention.maxAgeMs/);
    expect(() => new SqliteLogStore({ path, retention: { maxRows: 0 } })).toThrow(/retention.maxRows/);
  });

  it('applies a from later than the retention start as given (the retention only bounds it from below)', async () => {
    const now = Date.now();
    const store = new SqliteLogStore({ path: join(dir, 'from.db'), retention: { maxAgeMs: 3_600_000 } });
    try {
      const older = event({ startedAt: now - 600_000 });
      const newer = event({ startedAt: now - 60_000 });
      for (const e of [older, newer]) store.write(e);
      expect((await store.query({ from: now - 300_000 })).data.map((e) => e.requestId)).toEqual([newer.requestId]);
      expect((await store.summarize({ from: now - 300_000 })).requests).toBe(1);
      expect((await store.query()).data.map((e) => e.requestId)).toEqual([newer.requestId, older.requestId]);
    } finally {
      await store.close();
    }
  });

  it('keeps a request exactly maxAgeMs old (the reads still show it), and prunes nothing once closed', async () => {
    const now = Date.now();
    const store = new SqliteLogStore({ path: join(dir, 'edge-age.db'), retention: { maxAgeMs: 60_000 } });
    store.write(event({ startedAt: now - 60_000 }));
    store.write(event({ startedAt: now - 60_001 }));
    expect(await store.prune(now)).toBe(1);
    expect(await store.count()).toBe(1);
    await store.close();
    await expect(store.prune()).resolves.toBe(0);
  });

  it('queues at most 10000 events by default (maxQueue): the next one is dropped and counted', async () => {
    const store = new SqliteLogStore({ path: join(dir, 'default-queue.db') });
    try {
      // In one turn of the event loop nothing is handed over: all of them wait in the queue.
      for (let i = 0; i < 10_000; i++) store.write(event());
      expect([store.queued, store.dropped]).toEqual([10_000, 0]);
      store.write(event());
      expect(store.dropped).toBe(1);
      expect(await store.count()).toBe(10_000);
    } finally {
      await store.close();
    }
  });

  it('waits 100 ms by default for events to share a transaction, and prunes every 60 s by default', async () => {
    const prune = jest.spyOn(SqliteLogStore.prototype, 'prune').mockResolvedValue(0);
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'clearImmediate', 'nextTick', 'queueMicrotask', 'Date', 'performance', 'hrtime'] });
    const store = new SqliteLogStore({ path: join(dir, 'default-timers.db') });
    try {
      expect(prune).toHaveBeenCalledTimes(1); // at open
      store.write(event());
      jest.advanceTimersByTime(99);
      expect(store.queued).toBe(1);
      jest.advanceTimersByTime(1);
      expect(store.queued).toBe(0);
      jest.advanceTimersByTime(60_000 - 101);
      expect(prune).toHaveBeenCalledTimes(1);
      jest.advanceTimersByTime(1);
      expect(prune).toHaveBeenCalledTimes(2);
    } finally {
      jest.useRealTimers();
      prune.mockRestore();
      await store.close();
    }
  });

  it('accepts the bounds its options are documented with: pruneIntervalMs 10 to 2147483647, busyTimeoutMs up to 1000 (default 20)', async () => {
    const path = join(dir, 'bounds.db');
    expect(() => new SqliteLogStore({ path, pruneIntervalMs: 9 })).toThrow(/pruneIntervalMs must be between 10 and 2147483647/);
    await new SqliteLogStore({ path, pruneIntervalMs: 10 }).close();
    await new SqliteLogStore({ path, pruneIntervalMs: 2_147_483_647 }).close();
    await new SqliteLogStore({ path, flushIntervalMs: 10_000 }).close();
    expect(() => new SqliteLogStore({ path, busyTimeoutMs: 1001 })).toThrow(/busyTimeoutMs/);
    const waits = new SqliteLogStore({ path, busyTimeoutMs: 1000 });
    const byDefault = new SqliteLogStore({ path: join(dir, 'bounds-default.db') });
    try {
      // The connection's own lock wait (better-sqlite3's timeout is SQLite's busy_timeout).
      const busy = (s: SqliteLogStore) => (s as unknown as { db: Database.Database }).db.pragma('busy_timeout', { simple: true });
      expect([busy(waits), busy(byDefault)]).toEqual([1000, 20]);
    } finally {
      await Promise.all([waits.close(), byDefault.close()]);
    }
  });
});
