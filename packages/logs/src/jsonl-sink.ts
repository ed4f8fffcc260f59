import { createWriteStream, fstatSync, openSync, readSync, statSync, type WriteStream } from 'node:fs';
import type { LogEvent, LogSink } from '@switchyard/core';
import { BatchQueue } from './batch-queue';
import { closedWarning } from './closed-warning';

export interface JsonLinesSinkOptions {
  /** File to append to (created if missing). */
  path: string;
  /** Bytes waiting for the disk before new events are dropped (and counted in `dropped`). Default 8 MiB. */
  maxPendingBytes?: number | undefined;
  /**
   * After the file fails (a full disk, its directory gone), how long until the sink opens it again by itself; doubled
   * while it keeps failing, up to 60 s (or this, if longer). Default 5000.
   */
  recoveryDelayMs?: number | undefined;
}

const MAX_RECOVERY_DELAY_MS = 60_000;

/**
 * Appends one JSON line per event to a file. Events are encoded and written in batches on `setImmediate`, after the
 * response went out; when the disk falls behind, events are dropped and counted rather than buffered without end.
 * A path that cannot be opened (no such directory, no permission) throws here, at startup. A file that fails later
 * is opened again after `recoveryDelayMs`; what arrives in between is dropped and counted. A file renamed or deleted
 * under it (a rotation with no `reopen()`) is noticed within a second, and the path opened again.
 */
export class JsonLinesSink implements LogSink {
  /** Events dropped: the disk fell behind, the file failed, or the sink was closed. */
  dropped = 0;
  private stream: WriteStream;
  /** The file descriptor the stream writes to, when it was opened here (not by a stream still opening the path). */
  private fd: number | undefined;
  private readonly path: string;
  private readonly maxPendingBytes: number;
  private readonly queue = new BatchQueue<LogEvent>((batch) => this.writeBatch(batch));
  private broken = false;
  private closed = false;
  private readonly recoveryDelayMs: number;
  /** The wait before the next recovery: doubles while the file keeps failing, back to the start once a write lands. */
  private recoveryDelay: number;
  private recoveryTimer: NodeJS.Timeout | undefined;
  /** Events dropped since the file failed, for the warning that says it writes again. */
  private droppedAtFailure = -1;

  constructor(options: JsonLinesSinkOptions) {
    this.maxPendingBytes = options.maxPendingBytes ?? 8 * 1024 * 1024;
    this.recoveryDelayMs = options.recoveryDelayMs ?? 5000;
    // 0 would try the file again in a loop, never backing off.
    if (!(Number.isFinite(this.recoveryDelayMs) && this.recoveryDelayMs >= 1)) {
      throw new Error(`JsonLinesSink recoveryDelayMs must be a number of milliseconds >= 1, got ${String(options.recoveryDelayMs)}`);
    }
    this.recoveryDelay = this.recoveryDelayMs;
    this.path = options.path;
    let fd: number;
    try {
      fd = openForAppend(this.path);
    } catch (err) {
      throw new Error(`JsonLinesSink cannot open ${JSON.stringify(this.path)} for appending: ${(err as Error).message}`, { cause: err });
    }
    this.stream = this.open(fd);
  }

  /** A stream appending to the file (opened now unless `fd` is given), after ending a line a failed write cut short. */
  private open(fd?: number): WriteStream {
    let stream: WriteStream;
    this.fd = undefined;
    try {
      fd ??= openForAppend(this.path);
      const cut = endsMidLine(fd);
      stream = createWriteStream(this.path, { fd });
      this.fd = fd;
      // The next event would be glued to the fragment, and a line-by-line reader would lose it.
      if (cut) stream.write('\n');
    } catch {
      // Reopening after a rotation, the path's directory gone for now: this stream's own open fails the same way
      // (below: a warning, events dropped until it is opened again).
      stream = createWriteStream(this.path, { flags: 'a' });
    }
    stream.on('error', (err) => {
      if (stream !== this.stream) return; // a file already rotated away
      this.warn(`Switchyard's JSON-lines log sink failed; events are dropped until it can write again: ${String(err)}`);
      this.markFailed();
      this.broken = true;
      this.scheduleRecovery();
    });
    return stream;
  }

  /** A full disk gets space again, a directory comes back: the sink tries the file again rather than stay broken. */
  private scheduleRecovery(): void {
    if (this.closed || this.recoveryTimer) return;
    const delay = this.recoveryDelay;
    this.recoveryDelay = Math.min(delay * 2, Math.max(MAX_RECOVERY_DELAY_MS, this.recoveryDelayMs));
    this.recoveryTimer = setTimeout(() => {
      this.recoveryTimer = undefined;
      if (this.closed || !this.broken) return;
      let fd: number;
      try {
        fd = openForAppend(this.path);
      } catch {
        this.scheduleRecovery();
        return;
      }
      this.stream = this.open(fd); // the failed stream destroyed itself (and closed its file) on its error
      this.broken = false;
    }, delay);
    // A timer must not keep a process alive that has nothing else left to do.
    this.recoveryTimer.unref();
  }

  private markFailed(): void {
    if (this.droppedAtFailure < 0) this.droppedAtFailure = this.dropped;
  }

  /** A write reached the file: a failure before it is over. */
  private wrote(): void {
    this.recoveryDelay = this.recoveryDelayMs;
    if (this.droppedAtFailure < 0) return;
    const lost = this.dropped - this.droppedAtFailure;
    this.droppedAtFailure = -1;
    this.warned = false; // a later failure is said again
    process.emitWarning(`Switchyard's JSON-lines log sink writes again; ${lost} events were dropped while it could not`, 'SwitchyardLogSinkWarning');
  }

  private warned = false;
  private closedWarned = false;
  /** An event after close(): a shutdown that closed the sink before the requests in flight were logged, said once. */
  private warnClosed(): void {
    if (this.closedWarned) return;
    this.closedWarned = true;
    process.emitWarning(closedWarning('JSON-lines log sink'), 'SwitchyardLogSinkWarning');
  }

  /** Falling behind is said once of its own: an earlier warning (an event it could not encode) must not hide it. */
  private dropWarned = false;
  private warn(message: string): void {
    if (this.warned) return;
    this.warned = true;
    process.emitWarning(message, 'SwitchyardLogSinkWarning');
  }

  write(event: LogEvent): void {
    if (this.broken || this.closed) {
      this.dropped++;
      if (this.closed) this.warnClosed();
      return;
    }
    this.queue.push(event);
  }

  /** Hands the queued events to the file stream now; resolves when what was written so far reached the file. */
  flush(): Promise<void> {
    this.queue.flush();
    if (this.closed || this.broken) return Promise.resolve();
    return new Promise((resolve) => this.stream.write('', () => resolve()));
  }

  /** When the path was last checked to still name the open file. */
  private checkedAt = Date.now();
  private movedWarned = false;

  /**
   * A file renamed (logrotate's `create` without a signal to the process) or deleted under the sink would take every
   * later event with it, unseen: once a second, a write checks that the path still names the open file, and opens the
   * path again if not, as `reopen()` does.
   */
  private followPath(): void {
    const now = Date.now();
    if (now - this.checkedAt < 1000) return;
    this.checkedAt = now;
    const fd = this.fd;
    if (fd === undefined) return;
    let moved: boolean;
    try {
      const open = fstatSync(fd);
      const named = statSync(this.path);
      moved = open.ino !== named.ino || open.dev !== named.dev;
    } catch {
      moved = true; // nothing at the path (deleted, its directory gone): opening it again says why if it cannot
    }
    if (!moved) return;
    if (!this.movedWarned) {
      this.movedWarned = true;
      process.emitWarning(`Switchyard's JSON-lines log sink found ${JSON.stringify(this.path)} renamed or deleted (a rotation with no reopen()?): it writes to a new file at that path (said once)`, 'SwitchyardLogSinkWarning');
    }
    const old = this.stream;
    this.stream = this.open();
    old.end();
  }

  private writeBatch(batch: LogEvent[]): void {
    if (!this.broken) this.followPath();
    if (this.broken || this.stream.writableLength > this.maxPendingBytes) {
      this.dropped += batch.length;
      if (!this.broken && !this.dropWarned) {
        this.dropWarned = true;
        process.emitWarning(`Switchyard's JSON-lines log sink fell behind (more than ${this.maxPendingBytes} bytes waiting for the disk, maxPendingBytes); events are dropped and counted in \`dropped\``, 'SwitchyardLogSinkWarning');
      }
      return;
    }
    let lines = '';
    let written = 0;
    for (const event of batch) {
      try {
        lines += `${JSON.stringify(event)}\n`;
        written++;
      } catch (err) {
        // An event another sink or onLog decorated with a cycle or a BigInt: dropped, never thrown at the host.
        this.dropped++;
        this.warn(`Switchyard's JSON-lines log sink dropped an event it could not encode: ${String(err)}`);
      }
    }
    if (written === 0) return;
    // A file that fails later (the disk is full) fails this write too: its events count.
    const stream = this.stream;
    stream.write(lines, (err) => {
      if (!err) {
        // The file a reopen() rotated away taking its last batch says nothing of the file now in use.
        if (stream === this.stream) this.wrote();
        return;
      }
      if (stream === this.stream) this.markFailed(); // before its error event, which comes after this callback
      this.dropped += written;
    });
  }

  /**
   * For log rotation (logrotate without copytruncate renames the file, then signals the process): what is queued
   * goes to the old file, new events to a new file at `path`. Also recovers a sink whose file failed.
   * Resolves when the old file has everything written to it.
   */
  reopen(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.queue.flush();
    const old = this.stream;
    this.broken = false;
    this.warned = false;
    this.droppedAtFailure = -1;
    this.stream = this.open();
    return new Promise((resolve) => old.end(() => resolve()));
  }

  /** Flushes and closes the file; resolves when everything written reached it. */
  close(): Promise<void> {
    this.queue.flush();
    this.closed = true;
    clearTimeout(this.recoveryTimer);
    return new Promise((resolve) => this.stream.end(() => resolve()));
  }
}

/**
 * Opened to append and to read its last byte; a file the process may append to but not read (mode 0200, a log
 * directory's policy) is opened to append only, as `>>` would.
 */
function openForAppend(path: string): number {
  try {
    return openSync(path, 'a+');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EACCES') throw err;
    return openSync(path, 'a');
  }
}

/** Whether the file's last byte is no line break: a write that failed part way (a full disk) left half a line. */
function endsMidLine(fd: number): boolean {
  const { size } = fstatSync(fd);
  if (size === 0) return false;
  const last = Buffer.alloc(1);
  try {
    readSync(fd, last, 0, 1, size - 1);
  } catch {
    return false; // not readable (opened to append only): nothing to check
  }
  return last[0] !== 0x0a;
}

