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
  private readonly stream: WriteStream;
  private readonly maxPendingBytes: number;
  private readonly queue = new BatchQueue<LogEvent>((batch) => this.writeBatch(batch));
  private broken = false;
  private closed = false;

  constructor(options: JsonLinesSinkOptions) {
    this.maxPendingBytes = options.maxPendingBytes ?? 8 * 1024 * 1024;
    this.stream = createWriteStream(options.path, { flags: 'a' });
    this.stream.on('error', (err) => {
      if (!this.broken) process.emitWarning(`Switchyard's JSON-lines log sink failed; events are dropped: ${String(err)}`, 'SwitchyardLogSinkWarning');
      this.broken = true;
    });
  }

  write(event: LogEvent): void {
    if (this.broken || this.closed) {
      this.dropped++;
      return;
    }
    this.queue.push(event);
  }

  /** Hands the queued events to the file stream now. */
  flush(): void {
    this.queue.flush();
  }

  private writeBatch(batch: LogEvent[]): void {
    if (this.broken || this.stream.writableLength > this.maxPendingBytes) {
      this.dropped += batch.length;
      return;
    }
    let lines = '';
    for (const event of batch) lines += `${JSON.stringify(event)}\n`;
    this.stream.write(lines);
  }

  /** Flushes and closes the file; resolves when everything written reached it. */
  close(): Promise<void> {
    this.flush();
    this.closed = true;
    return new Promise((resolve) => this.stream.end(() => resolve()));
  }
}
