/**
 * Items collected on the request path and handed over in one batch after the response went out: the sinks and
 * stores pay their encoding and I/O once per batch, never inside a request. By default a batch is what one tick
 * collected (`setImmediate`); with `delayMs` it is what that window collected, for a sink whose cost is mostly per
 * batch (a SQLite transaction: ~350 µs for one event, 70-110 µs per event in a batch of 100 or more).
 */
export interface BatchQueueOptions {
  /** How long the first queued item waits for others (ms). 0: to the end of the tick. */
  delayMs?: number;
  /** A batch this large goes at the end of the tick whatever `delayMs` says: one batch's work stays short. */
  maxBatch?: number;
}

export class BatchQueue<T> {
  private items: T[] = [];
  private immediate: NodeJS.Immediate | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly delayMs: number;
  private readonly maxBatch: number;

  constructor(
    private readonly onBatch: (batch: T[]) => void,
    options: BatchQueueOptions = {},
  ) {
    this.delayMs = options.delayMs ?? 0;
    this.maxBatch = options.maxBatch ?? Infinity;
  }

  get size(): number {
    return this.items.length;
  }

  push(item: T): void {
    this.items.push(item);
    if (this.immediate) return;
    if (this.delayMs <= 0 || this.items.length >= this.maxBatch) this.immediate = setImmediate(() => this.handOver());
    // Referenced: a script that logs and ends still writes its last batch before the process exits.
    else this.timer ??= setTimeout(() => this.handOver(), this.delayMs);
  }

  /** Hands everything queued to `onBatch` now, in batches of at most `maxBatch`; nothing when the queue is empty. */
  flush(): void {
    this.cancelTimers();
    while (this.items.length > 0) this.onBatch(this.take());
  }

  /** The scheduled hand-over: one batch, and what a burst queued beyond it in a later turn, after other work. */
  private handOver(): void {
    this.cancelTimers();
    if (this.items.length === 0) return;
    this.onBatch(this.take());
    if (this.items.length > 0) this.immediate = setImmediate(() => this.handOver());
  }

  private take(): T[] {
    if (this.items.length <= this.maxBatch) {
      const batch = this.items;
      this.items = [];
      return batch;
    }
    return this.items.splice(0, this.maxBatch);
  }

  private cancelTimers(): void {
    if (this.immediate) clearImmediate(this.immediate);
    if (this.timer) clearTimeout(this.timer);
    this.immediate = null;
    this.timer = null;
  }
}
