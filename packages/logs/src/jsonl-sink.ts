import { createWriteStream, type WriteStream } from 'node:fs';
import type { LogEvent, LogSink } from '@switchyard/core';
import { BatchQueue } from './batch-queue';

export interface JsonLinesSinkOptions {
  /** File to append to (created if missing). */
  path: string;
  /** Bytes waiting for the disk before new events are dropped (and counted in `dropped`). Default 8 MiB. */
  maxPendingBytes?: number;
}

/**
 * Appends one JSON line per event to a file. Events are encoded and written in batches on `setImmediate`, after the
 * response went out; when the disk falls behind, events are dropped and counted rather than buffered without end.
 */
export class JsonLinesSink implements LogSink {
  /** Events dropped: the disk fell behind, the file failed, or the sink was closed. */
  dropped = 0;
  private stream: WriteStream;
  private readonly path: string;
  private readonly maxPendingBytes: number;
  private readonly queue = new BatchQueue<LogEvent>((batch) => this.writeBatch(batch));
  private broken = false;
  private closed = false;

  constructor(options: JsonLinesSinkOptions) {
    this.maxPendingBytes = options.maxPendingBytes ?? 8 * 1024 * 1024;
    this.path = options.path;
    this.stream = this.open();
  }

  private open(): WriteStream {
    const stream = createWriteStream(this.path, { flags: 'a' });
    stream.on('error', (err) => {
      if (stream !== this.stream) return; // a file already rotated away
      if (!this.broken) process.emitWarning(`Switchyard's JSON-lines log sink failed; events are dropped: ${String(err)}`, 'SwitchyardLogSinkWarning');
      this.broken = true;
    });
    return stream;
  }

  write(event: LogEvent): void {
    if (this.broken || this.closed) {
      this.dropped++;
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

  private writeBatch(batch: LogEvent[]): void {
    if (this.broken || this.stream.writableLength > this.maxPendingBytes) {
      this.dropped += batch.length;
      return;
    }
    let lines = '';
    for (const event of batch) lines += `${JSON.stringify(event)}\n`;
    // A file that fails later (it could not be opened, the disk is full) fails this write too: its events count.
    this.stream.write(lines, (err) => {
      if (err) this.dropped += batch.length;
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
    this.stream = this.open();
    this.broken = false;
    return new Promise((resolve) => old.end(() => resolve()));
  }

  /** Flushes and closes the file; resolves when everything written reached it. */
  close(): Promise<void> {
    this.queue.flush();
    this.closed = true;
    return new Promise((resolve) => this.stream.end(() => resolve()));
  }
}
