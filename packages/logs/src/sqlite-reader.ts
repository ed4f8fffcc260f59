/**
 * Read queries of the SQLite store on a worker thread, with its own read-only connection (WAL lets it read while the
 * store writes). A filter that no index serves walks every row: ~100 ms over 100k rows, which on the main thread
 * would stall every request of the host app while someone uses the viewer.
 */
import { Worker } from 'node:worker_threads';

export interface ReaderFile {
  path: string;
  dev: string;
  ino: string;
}

/** Runs a query in the calling thread: what the reader falls back to if its worker cannot run. */
export type ReadInThread = (sql: string, params: unknown[]) => string[];

interface Pending {
  sql: string;
  params: unknown[];
  resolve: (rows: string[]) => void;
  reject: (err: Error) => void;
}

type Reply = { id: number; rows: string[] } | { id: number; error: string };

// Plain JavaScript evaluated in the worker: a file next to this module would not exist when tests run the TypeScript
// sources. The driver comes by its resolved path, so that the host's working directory does not matter.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file.path, { readonly: true, fileMustExist: true, timeout: workerData.timeoutMs });
const { dev, ino } = require('node:fs').statSync(workerData.file.path, { bigint: true });
if (String(dev) !== workerData.file.dev || String(ino) !== workerData.file.ino) {
  throw new Error('the file at ' + workerData.file.path + ' is no longer the one the store writes');
}
const statements = new Map();
parentPort.on('message', ({ id, sql, params }) => {
  try {
    let statement = statements.get(sql);
    if (!statement) {
      if (statements.size >= workerData.maxStatements) statements.clear();
      statement = db.prepare(sql).pluck();
      statements.set(sql, statement);
    }
    parentPort.postMessage({ id, rows: statement.all(...params) });
  } catch (err) {
    parentPort.postMessage({ id, error: String((err && err.message) || err) });
  }
});
`;

export class SqliteReader {
  private worker: Worker | null = null;
  /** The worker could not start or died: queries run in the calling thread from then on. */
  private inThread = false;
  private closed = false;
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();

  constructor(
    /** The database file and its identity (device and inode when the store opened it). */
    private readonly file: ReaderFile,
    private readonly timeoutMs: number,
    private readonly maxStatements: number,
    private readonly readInThread: ReadInThread,
  ) {}

  /** The query's single column for every row (the store selects the event's JSON). */
  all(sql: string, params: unknown[]): Promise<string[]> {
    if (this.closed) return Promise.reject(new Error('The SQLite log store is closed.'));
    const worker = this.inThread ? null : (this.worker ?? this.start());
    if (!worker) return new Promise((resolve) => resolve(this.readInThread(sql, params)));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { sql, params, resolve, reject });
      // Referenced only while a query waits: an idle reader never keeps the host process alive, a script awaiting
      // a query is not left without its answer.
      if (this.pending.size === 1) worker.ref();
      worker.postMessage({ id, sql, params });
    });
  }

  /** Stops the worker; resolves when its connection is closed (null when there was none). */
  close(): Promise<void> | null {
    this.closed = true;
    for (const p of this.pending.values()) p.reject(new Error('The SQLite log store was closed before the query finished.'));
    this.pending.clear();
    const gone = this.worker?.terminate().then(() => undefined, () => undefined) ?? null;
    this.worker = null;
    return gone;
  }

  /** The worker, or null (and queries in this thread from now on) if one cannot be created here, e.g. in a bundle. */
  private start(): Worker | null {
    let worker: Worker;
    try {
      worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { driver: require.resolve('better-sqlite3'), file: this.file, timeoutMs: this.timeoutMs, maxStatements: this.maxStatements },
      });
    } catch (err) {
      this.readInThreadFromNowOn(err as Error);
      return null;
    }
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      if ('rows' in reply) p.resolve(reply.rows);
      else p.reject(new Error(reply.error));
    });
    worker.on('error', (err) => this.fallBack(worker, err));
    worker.on('exit', (code) => this.fallBack(worker, new Error(`exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  /** The worker failed (it could not load the driver or open the file, or it died): nothing asked is lost. */
  private fallBack(worker: Worker, err: Error): void {
    if (this.worker !== worker || this.closed) return;
    this.worker = null;
    this.readInThreadFromNowOn(err);
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const p of waiting) {
      try {
        p.resolve(this.readInThread(p.sql, p.params));
      } catch (e) {
        p.reject(e as Error);
      }
    }
  }

  private readInThreadFromNowOn(err: Error): void {
    this.inThread = true;
    process.emitWarning(`Switchyard's SQLite log store reads in the main thread from now on (its reader thread could not run: ${err.message}).`, 'SwitchyardLogStoreWarning');
  }
}
