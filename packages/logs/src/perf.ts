/**
 * Figures for the README (issue 4): what a log write costs on the request's path, what the SQLite store's batched
 * insert costs per event (on its worker thread, and on the event loop), and how long a query by trace id takes over
 * 100k stored events.
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

    // SQLite: write() only queues; a flush hands the batch to the store's worker thread, which inserts it in one
    // transaction. The event loop pays for the queue and for handing rows over (JSON and a message), not for SQLite.
    const sqlite = new SqliteLogStore({ path: join(dir, 'perf.db'), maxQueue: N, retention: { maxAgeMs: Infinity, maxRows: Infinity } });
    const BATCH = 200; // the store hands over at most this many at once
    let queued = 0;
    let handed = 0;
    const filling = process.hrtime.bigint();
    for (let i = 0; i < N; i += BATCH) {
      const batch = events.slice(i, i + BATCH);
      queued += time(() => {
        for (const e of batch) sqlite.write(e);
      });
      handed += time(() => void sqlite.flush());
      if (i % (BATCH * 50) === 0) await new Promise((r) => setImmediate(r)); // let the loop turn, as a server's would
    }
    await sqlite.flush();
    const filled = Number(process.hrtime.bigint() - filling) / N;
    rows.push(['SQLite store: write(event), on the request path (queue push)', fmt(queued / N)]);
    rows.push([`SQLite store: handing a batch of ${BATCH} to the writer thread, per event (event loop)`, fmt(handed / N)]);
    rows.push([`SQLite store: 100k events stored in batches of ${BATCH}, per event (wall, both threads)`, fmt(filled)]);
    // What a transaction costs per event by its size (the window, flushIntervalMs, sets that size), as a round trip
    // to the writer thread, and what the event loop pays of it. Twice, the first pass unreported (WAL warm-up).
    const recent = makeEvents(5000, Date.now());
    let next = 0;
    for (const reported of [false, true]) {
      for (const size of [1, 10, 100, 200]) {
        const written = 5000; // several WAL checkpoints (every ~1000 pages) in each figure
        let onLoop = 0;
        const t = process.hrtime.bigint();
        for (let done = 0; done < written; done += size) {
          onLoop += time(() => {
            for (let k = 0; k < size; k++) sqlite.write({ ...recent[next % recent.length]!, requestId: `${next++}-b` });
            void sqlite.flush();
          });
          await sqlite.flush();
        }
        const perEvent = Number(process.hrtime.bigint() - t) / written;
        if (reported) rows.push([`SQLite store: ${size} per transaction, per event: round trip / event loop`, `${fmt(perEvent)} / ${fmt(onLoop / written)}`]);
      }
    }

    const total = await sqlite.count();
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
    // worker thread; what the host's event loop feels is its longest stall meanwhile.
    const stalls = monitorEventLoopDelay({ resolution: 1 });
    stalls.enable();
    const noMatch = await timeAsync(20, () => sqlite.query({ minCostUsd: 1, limit: 50 }));
    stalls.disable();
    rows.push([`SQLite store: a cost filter matching none of ${total.toLocaleString('en')} events (full scan)`, fmt(noMatch)]);
    rows.push(['  longest event-loop stall meanwhile (the scan runs on the worker thread)', fmt(stalls.max)]);
    // failedProvider reads each row's attempts from its JSON: one in seven fell back here after an OpenAI 429.
    const failedAt = await timeAsync(200, () => sqlite.query({ failedProvider: 'openai', limit: 50 }));
    rows.push(['SQLite store: newest 50 with a failed OpenAI attempt (failedProvider)', fmt(failedAt)]);
    const failedNone = await timeAsync(5, () => sqlite.query({ failedProvider: 'azure-openai', limit: 50 }));
    rows.push([`SQLite store: failedProvider matching none of ${total.toLocaleString('en')} events (full scan)`, fmt(failedNone)]);
    // Totals read every match: the whole table unfiltered, the fallbacks through their partial index.
    const summaryAll = await timeAsync(5, () => sqlite.summarize({}));
    rows.push([`SQLite store: summarize() over all ${total.toLocaleString('en')} events`, fmt(summaryAll)]);
    const summaryFallbacks = await timeAsync(5, () => sqlite.summarize({ fallback: true }));
    rows.push(['SQLite store: summarize({ fallback: true }) (one event in seven)', fmt(summaryFallbacks)]);
    const memTrace = await timeAsync(200, (i) => memory.query({ traceId: events[(i * 7919) % N]!.traceId }));
    rows.push([`memory store: query by trace id over ${memory.size.toLocaleString('en')} events (scan)`, fmt(memTrace)]);
    await sqlite.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log(`Node ${process.version}, ${process.platform}/${process.arch}`);
  for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
}

void main();
