import type { LogEvent } from '../log/log-event';
import { encodeCursor, matchesLogQuery, newestFirst, normalizeLogQuery } from './log-query';
import type { LogPage, LogQuery, LogStore } from './log-store';

export interface MemoryLogStoreOptions {
  /** Events kept; the oldest is evicted first. Default 10000. */
  capacity?: number;
}

/**
 * The default store: a bounded ring in memory. A write is an array slot and a map entry, nothing else; queries scan
 * (fine for the ring's size). Lost on restart: use the SQLite store of @switchyard/logs to keep events.
 */
export class MemoryLogStore implements LogStore {
  readonly capacity: number;
  private readonly ring: Array<LogEvent | undefined>;
  private readonly byId = new Map<string, LogEvent>();
  private next = 0;
  /** Events pushed out of the ring by newer ones. */
  evicted = 0;

  constructor(options: MemoryLogStoreOptions = {}) {
    const capacity = options.capacity ?? 10_000;
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('MemoryLogStore capacity must be a positive integer.');
    this.capacity = capacity;
    this.ring = new Array<LogEvent | undefined>(capacity);
  }

  get size(): number {
    return this.byId.size;
  }

  write(event: LogEvent): void {
    const old = this.ring[this.next];
    if (old) {
      // Only if the id still points at the evicted event (an id written twice keeps its newer event).
      if (this.byId.get(old.requestId) === old) this.byId.delete(old.requestId);
      this.evicted++;
    }
    this.ring[this.next] = event;
    this.byId.set(event.requestId, event);
    this.next = (this.next + 1) % this.capacity;
  }

  async query(query?: LogQuery): Promise<LogPage> {
    const q = normalizeLogQuery(query);
    const matches: LogEvent[] = [];
    for (const event of this.ring) if (event && matchesLogQuery(event, q)) matches.push(event);
    matches.sort(newestFirst);
    const data = matches.slice(0, q.limit);
    return { data, nextCursor: matches.length > q.limit ? encodeCursor(data[data.length - 1]!) : null };
  }

  async get(requestId: string): Promise<LogEvent | null> {
    return this.byId.get(requestId) ?? null;
  }
}
