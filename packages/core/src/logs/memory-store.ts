import type { LogEvent } from '../log/log-event';
import { encodeCursor, matchesLogQuery, newestFirst, normalizeLogFilter, normalizeLogQuery, summarizeEvents } from './log-query';
import type { LogPage, LogQuery, LogStore, LogSummary } from './log-store';

export interface MemoryLogStoreOptions {
  /** Events kept; the oldest is evicted first. Default 10000. */
  capacity?: number | undefined;
}

/**
 * The default store: a bounded ring in memory. A write is an array slot and a map entry, nothing else; a query
 * scans the ring once. Lost on restart: use the SQLite store of @switchyard/logs to keep events.
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
    // The newest limit + 1 matches, kept in order as the ring is scanned: a page costs a scan, not a sort of every
    // match (a large ring answered a live viewer's refresh in a third of a second of the host's event loop). Newest
    // written first: most later matches are older than the page and cost one comparison.
    const keep = q.limit + 1;
    const top: LogEvent[] = [];
    for (let n = 0, i = this.next; n < this.capacity; n++) {
      i = i === 0 ? this.capacity - 1 : i - 1;
      const event = this.ring[i];
      if (!event || !matchesLogQuery(event, q)) continue;
      if (top.length === keep && newestFirst(event, top[keep - 1]!) >= 0) continue;
      let lo = 0;
      let hi = top.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (newestFirst(top[mid]!, event) <= 0) lo = mid + 1;
        else hi = mid;
      }
      top.splice(lo, 0, event);
      if (top.length > keep) top.pop();
    }
    const page = top.slice(0, q.limit);
    // Copies, as the SQLite store's rows are: a caller that edits a result must not edit the stored record.
    return { data: page.map(copyEvent), nextCursor: top.length > q.limit ? encodeCursor(page[page.length - 1]!) : null };
  }

  async summarize(query?: LogQuery): Promise<LogSummary> {
    return summarizeEvents(this.ring, normalizeLogFilter(query));
  }

  async get(requestId: string): Promise<LogEvent | null> {
    const event = this.byId.get(requestId);
    return event ? copyEvent(event) : null;
  }
}

/**
 * A copy of an event down to its nested objects (attempts and their errors, ours and the upstream's, served-by,
 * usage): a tenth of structuredClone's cost, which made a live viewer's 500-row page take milliseconds of the host's
 * event loop.
 */
function copyEvent(event: LogEvent): LogEvent {
  return {
    ...event,
    servedBy: event.servedBy && { ...event.servedBy },
    usage: event.usage && { ...event.usage },
    attempts: event.attempts.map((attempt) => ({
      ...attempt,
      ...(attempt.error && { error: { ...attempt.error } }),
      ...(attempt.upstreamError && { upstreamError: { ...attempt.upstreamError } }),
    })),
  };
}
