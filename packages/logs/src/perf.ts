/**
 * Figures for the README (issue 4): what a log write costs on the request's path, what the SQLite store's batched
 * flush costs per event, and how long a query by trace id takes over 100k stored events.
 * Run after the build: `node packages/logs/dist/perf.js` (or `pnpm --filter @switchyard/logs perf`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { MemoryLogStore, type LogEvent } from '@switchyard/core';
import { SqliteLogStore } from './sqlite-store';

function makeEvents(n: number, start = Date.now() - n * 10): LogEvent[] {
  const events: LogEvent[] = [];
  for (let i = 0; i < n; i++) {
    const fallback = i % 7 === 0;
    events.push({
      traceId: `trace-${i.toString(36)}-${(i * 2654435761) % 1_000_003}`,
      requestId: `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
      configId: i % 3 === 0 ? 'fallback-429' : null,
      startedAt: start + i * 10,
      durationMs: 100 + (i % 900),
      status: i % 50 === 0 ? 503 : 200,
      stream: i % 4 === 0,
      fallback,
      model: i % 2 ? 'gpt-4o' : 'gpt-4o-mini',
      servedBy: fallback
        ? { target: 'targets[1]', provider: 'azure-openai', virtualKey: 'azure-prod', model: 'gpt4o-prod' }
        : { target: 'targets[0]', provider: 'openai', virtualKey: 'openai-prod', model: 'gpt-4o' },
      attempts: fallback
        ? [
            { target: 'targets[0]', provider: 'openai', virtualKey: 'openai-prod', model: 'gpt-4o', status: 429, durationMs: 12.5 },
            { target: 'targets[1]', provider: 'azure-openai', virtualKey: 'azure-prod', model: 'gpt4o-prod', status: 200, durationMs: 480.25 },
          ]
        : [{ target: 'targets[0]', provider: 'openai', virtualKey: 'openai-prod', model: 'gpt-4o', status: 200, durationMs: 455.5 }],
      usage: { prompt_tokens: 120 + (i % 50), completion_tokens: 40 + (i % 30), total_tokens: 160 + (i % 50) + (i % 30) },
      costUsd: 0.0007,
    });
  }
  return events;
}

const fmt = (ns: number) => (ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : ns >= 1e3 ? `${(ns / 1e3).toFixed(2)} µs` : `${ns.toFixed(0)} ns`);

function time(fn: () => void): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t);
}

async function timeAsync(runs: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) await fn(i);
  return Number(process.hrtime.bigint() - t) / runs;
}

async function main(): Promise<void> {
  const N = 100_000;
  const events = makeEvents(N);
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-perf-'));
  const rows: Array<[string, string]> = [];
  try {
    // Memory: a write is an array slot and a map entry.
    const ring = new MemoryLogStore(); // the default: 10,000 events, so most writes also evict
    for (const e of makeEvents(20_000)) ring.write(e); // warm-up
    const ringWrite = time(() => {
      for (const e of events) ring.write(e);
    }) / N;
    rows.push(['memory store (10k ring): write(event), on the request path', fmt(ringWrite)]);
    const memory = new MemoryLogStore({ capacity: N });
    for (const e of events) memory.write(e);

    // SQLite: write() only queues; the flush (same thread, after the response) does the inserts in one transaction.
    const sqlite = new SqliteLogStore({ path: join(dir, 'perf.db'), maxQueue: N, retention: { maxAgeMs: Infinity, maxRows: Infinity } });
    const queued = time(() => {
      for (const e of events) sqlite.write(e);
    }) / N;
    const flushed = time(() => sqlite.flush()) / N;
    rows.push(['SQLite store: write(event), on the request path (queue push)', fmt(queued)]);
    rows.push(['SQLite store: batched insert per event, after the response (100k in one transaction)', fmt(flushed)]);
    // What a flush costs per event by the size of its transaction: the window (flushIntervalMs) sets that size.
    // Twice, the first pass unreported: its first commits fold the 100k-event transaction's WAL into the file.
    const recent = makeEvents(5000, Date.now());
    let next = 0;
    for (const reported of [false, true]) {
      for (const size of [1, 10, 100, 500]) {
        const written = 5000; // several WAL checkpoints (every ~1000 pages) in each figure
        const perEvent = time(() => {
          for (let done = 0; done < written; done += size) {
            for (let k = 0; k < size; k++) sqlite.write({ ...recent[next % recent.length]!, requestId: `${next++}-b` });
            sqlite.flush();
          }
        }) / written;
        if (reported) rows.push([`SQLite store: insert per event, ${size} per transaction`, fmt(perEvent)]);
      }
    }

    const total = sqlite.count();
    const lookups = 2000;
    const byTrace = await timeAsync(lookups, (i) => sqlite.query({ traceId: events[(i * 7919) % N]!.traceId }));
    rows.push([`SQLite store: query by trace id over ${total.toLocaleString('en')} events`, fmt(byTrace)]);
    const byId = await timeAsync(lookups, (i) => sqlite.get(events[(i * 7919) % N]!.requestId));
    rows.push([`SQLite store: get(requestId) over ${total.toLocaleString('en')} events`, fmt(byId)]);
    const page = await timeAsync(200, () => sqlite.query({ limit: 50 }));
    rows.push(['SQLite store: newest 50, no filter', fmt(page)]);
    const fallback5xx = await timeAsync(200, () => sqlite.query({ fallback: true, status: '2xx', limit: 50 }));
    rows.push(['SQLite store: newest 50 fallbacks with status 2xx', fmt(fallback5xx)]);
    // The worst case: a filter that no index serves and nothing matches walks every row. It runs on the store's
    // reader thread; what the host's event loop feels is its longest stall meanwhile.
    const stalls = monitorEventLoopDelay({ resolution: 1 });
    stalls.enable();
    const noMatch = await timeAsync(20, () => sqlite.query({ minCostUsd: 1, limit: 50 }));
    stalls.disable();
    rows.push([`SQLite store: a cost filter matching none of ${total.toLocaleString('en')} events (full scan)`, fmt(noMatch)]);
    rows.push(['  longest event-loop stall meanwhile (the scan runs on the reader thread)', fmt(stalls.max)]);
    const memTrace = await timeAsync(200, (i) => memory.query({ traceId: events[(i * 7919) % N]!.traceId }));
    rows.push([`memory store: query by trace id over ${memory.size.toLocaleString('en')} events (scan)`, fmt(memTrace)]);
    sqlite.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log(`Node ${process.version}, ${process.platform}/${process.arch}`);
  for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
}

void main();
