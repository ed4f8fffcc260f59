/**
 * The SQLite store's database work on a worker thread with its own connection: inserts (70-110 µs per event in a
 * batch, ~350 µs for a batch of one), retention's deletes and queries (a filter that no index serves walks every row:
 * ~100 ms over 100k) would otherwise stall every request of the host app. A store has two: one writes (inserts and
 * retention), the other only reads, so a query that walks a million rows never holds the writes back. Each thread
 * handles its operations one at a time, in the order they were posted.
 */
import { Worker } from 'node:worker_threads';
import { sqliteOps, type EventRow, type SqliteOps } from './sqlite-ops';

export interface DatabaseFile {
  path: string;
  /** The file's identity (device and inode) when the store opened it. */
  dev: string;
  ino: string;
}

export type DatabaseOp =
  | { op: 'write'; rows: EventRow[] }
  | { op: 'all'; sql: string; params: unknown[] }
  | { op: 'prune'; now: number; maxAgeMs: number; maxRows: number; limit: number };

interface Pending {
  op: DatabaseOp;
  resolve: (result: unknown) => void;
  reject: (err: Error) => void;
}

type Reply = { id: number; result: unknown } | { id: number; error: string };

/** An operation on a connection, in whichever thread runs it. */
export function runOp(ops: SqliteOps, op: DatabaseOp): unknown {
  if (op.op === 'write') return ops.write(op.rows);
  if (op.op === 'all') return ops.all(op.sql, op.params);
  return ops.prune(op.now, op.maxAgeMs, op.maxRows, op.limit);
}

/** An operation on this thread's connection, settled like one on the worker (a throw becomes a rejection). */
export function runLocal<T>(ops: SqliteOps, op: DatabaseOp): Promise<T> {
  return new Promise((resolve) => resolve(runOp(ops, op) as T));
}

// Plain JavaScript evaluated in the worker: a file next to this module would not exist when tests run the TypeScript
// sources. The driver comes by its resolved path, so that the host's working directory does not matter.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const { path, dev, ino } = workerData.file;
const db = new Database(path, { fileMustExist: true, timeout: workerData.timeoutMs });
const id = require('node:fs').statSync(path, { bigint: true });
if (String(id.dev) !== dev || String(id.ino) !== ino) {
  throw new Error('the file at ' + path + ' is no longer the one the store writes');
}
db.pragma('synchronous = NORMAL');
// The reading connection: a query string that tried to write would fail here rather than race the writer.
if (workerData.queryOnly) db.pragma('query_only = ON');
// A WAL grown by a large prune goes back to this size after its next checkpoint, not at close.
db.pragma('journal_size_limit = 67108864');
const ops = (${sqliteOps.toString()})(db, workerData.table, workerData.maxStatements);
const runOp = ${runOp.toString()};
parentPort.on('message', (m) => {
  let reply;
  try {
    reply = { id: m.id, result: runOp(ops, m.op) };
  } catch (err) {
    reply = { id: m.id, error: String((err && err.message) || err) };
  }
  parentPort.postMessage(reply);
});
`;

/**
 * An idle worker thread ends after this long (the next operation starts another, in ~30 ms): a store nobody closes (one
 * made in a NestJS `useFactory`, a test's) does not keep a thread and its memory for the life of the process.
 */
const IDLE_THREAD_MS = 30_000;

export class SqliteWorker {
  private worker: Worker | null = null;
  private retireTimer: NodeJS.Timeout | undefined;
  /** The worker could not start or died: operations run in the calling thread from then on. */
  private inThread = false;
  private closed = false;
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  private drained: Array<() => void> = [];

  constructor(
    private readonly file: DatabaseFile,
    private readonly options: { timeoutMs: number; table: string; maxStatements: number; queryOnly: boolean },
    /** The store's own connection: what runs an operation when the worker cannot. */
    private readonly local: SqliteOps,
    private readonly idleThreadMs = IDLE_THREAD_MS,
  ) {}

  /** Whether a worker thread runs now (it ends when idle, and starts again with the next operation). */
  get threadRunning(): boolean {
    return this.worker !== null;
  }

  run<T>(op: DatabaseOp): Promise<T> {
    if (this.closed) return Promise.reject(new Error('The SQLite log store is closed.'));
    clearTimeout(this.retireTimer);
    const worker = this.inThread ? null : (this.worker ?? this.start());
    if (!worker) return runLocal<T>(this.local, op);
    const id = this.nextId++;
    try {
      worker.postMessage({ id, op }); // throws for a value a thread cannot receive (a function from untyped code)
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return new Promise((resolve, reject) => {
      this.pending.set(id, { op, resolve: resolve as (result: unknown) => void, reject });
      // Referenced only while an operation waits: an idle worker never keeps the host process alive, and a process
      // that just ends still finishes its writes.
      if (this.pending.size === 1) worker.ref();
    });
  }

  /** Lets what was asked finish (writes included), then stops the thread. Later operations are refused. */
  close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retireTimer);
    const worker = this.worker;
    if (!worker) return Promise.resolve();
    const idle = this.pending.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => this.drained.push(resolve));
    return idle.then(() => {
      this.worker = null;
      return worker.terminate().then(() => undefined, () => undefined);
    });
  }

  /** The worker, or null (and operations in this thread from now on) if one cannot be created here, e.g. in a bundle. */
  private start(): Worker | null {
    let worker: Worker;
    try {
      worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { driver: require.resolve('better-sqlite3'), file: this.file, ...this.options },
      });
    } catch (err) {
      this.inThreadFromNowOn(err);
      return null;
    }
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if ('error' in reply) p.reject(new Error(reply.error));
      else p.resolve(reply.result);
      if (this.pending.size === 0) this.idle(worker);
    });
    worker.on('error', (err) => this.fallBack(worker, err));
    worker.on('exit', (code) => this.fallBack(worker, new Error(`exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  private idle(worker: Worker): void {
    worker.unref();
    const waiting = this.drained;
    this.drained = [];
    for (const resolve of waiting) resolve();
    if (this.closed || this.worker !== worker) return;
    clearTimeout(this.retireTimer);
    this.retireTimer = setTimeout(() => this.retire(worker), this.idleThreadMs);
    this.retireTimer.unref();
  }

  /** Ends an idle worker's thread; the next operation starts a new one. */
  private retire(worker: Worker): void {
    if (this.worker !== worker || this.pending.size > 0) return;
    this.worker = null; // before it exits: its exit is not a failure to fall back from
    void worker.terminate().catch(() => undefined);
  }

  /** The worker failed (it could not load the driver or open the file, or it died): nothing asked is lost. */
  private fallBack(worker: Worker, err: Error): void {
    if (this.worker !== worker) return;
    this.worker = null;
    this.inThreadFromNowOn(err);
    // In the order asked: a write the worker did not confirm is written again (its request ids make that harmless).
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const p of waiting) {
      try {
        p.resolve(runOp(this.local, p.op));
      } catch (e) {
        p.reject(e as Error);
      }
    }
    this.idle(worker);
  }

  private inThreadFromNowOn(err: unknown): void {
    this.inThread = true;
    process.emitWarning(
      `Switchyard's SQLite log store ${this.options.queryOnly ? 'reads' : 'writes'} in the main thread from now on (its ${this.options.queryOnly ? 'reading' : 'writing'} thread could not run: ${reasonOf(err)}).`,
      'SwitchyardLogStoreWarning',
    );
  }
}

/**
 * What an error from the worker says: one thrown there (a SqliteError) reaches its 'error' event as a plain object,
 * not an Error, and its message may be missing.
 */
function reasonOf(err: unknown): string {
  const { message, code } = (typeof err === 'object' && err !== null ? err : {}) as { message?: unknown; code?: unknown };
  if (typeof message === 'string' && message !== '') return typeof code === 'string' ? `${code}: ${message}` : message;
  // The store's own connection still holds a file deleted since: what it writes now is lost at the next start.
  if (code === 'SQLITE_CANTOPEN') return 'SQLITE_CANTOPEN, the database file cannot be opened: if it was deleted, restart or create the store again, as what is written to it now is lost';
  return typeof code === 'string' ? code : String(err);
}
