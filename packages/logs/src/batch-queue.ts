/**
 * Items collected on the request path and handed over in one batch on `setImmediate`, after the response went
 * out: the sinks and stores pay their encoding and I/O once per batch, never inside a request.
 */
export class BatchQueue<T> {
  private items: T[] = [];
  private scheduled = false;

  constructor(private readonly onBatch: (batch: T[]) => void) {}

  get size(): number {
    return this.items.length;
  }

  push(item: T): void {
    this.items.push(item);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Hands what is queued to `onBatch` now; nothing when the queue is empty. */
  flush(): void {
    this.scheduled = false;
    if (this.items.length === 0) return;
    const batch = this.items;
    this.items = [];
    this.onBatch(batch);
  }
}
