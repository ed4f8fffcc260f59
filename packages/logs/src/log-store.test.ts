/** One contract for every store: the in-memory ring (core) and SQLite answer the same queries the same way. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogQueryError, MemoryLogStore, SqliteLogStore, type LogEvent, type LogQuery, type LogStore } from '@switchyard/logs';

let seq = 0;
/** A log event as the gateway writes it; `over` changes any field. */
function event(over: Partial<LogEvent> = {}): LogEvent {
  seq++;
  return {
    traceId: `trace-${seq}`,
    requestId: `req-${String(seq).padStart(5, '0')}`,
    configId: null,
    startedAt: 1_700_000_000_000 + seq * 1000,
    durationMs: 120,
    status: 200,
    stream: false,
    fallback: false,
    model: 'gpt-4o',
    servedBy: { target: 'targets[0]', provider: 'openai', virtualKey: 'openai-prod', model: 'gpt-4o' },
    attempts: [{ target: 'targets[0]', provider: 'openai', virtualKey: 'openai-prod', model: 'gpt-4o', status: 200, durationMs: 110 }],
    usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
    costUsd: 0.000075,
    ...over,
  };
}

const fellBack = (over: Partial<LogEvent> = {}) =>
  event({
    fallback: true,
    servedBy: { target: 'targets[1]', provider: 'azure-openai', virtualKey: 'azure-prod', model: 'gpt4o-prod' },
    attempts: [
      { target: 'targets[0]', provider: 'openai', model: 'gpt-4o', status: 429, durationMs: 5 },
      { target: 'targets[1]', provider: 'azure-openai', model: 'gpt4o-prod', status: 200, durationMs: 100 },
    ],
    ...over,
  });

const failed = (over: Partial<LogEvent> = {}) =>
  event({
    status: 502,
    servedBy: null,
    usage: null,
    costUsd: null,
    attempts: [{ target: 'targets[0]', provider: 'openai', model: 'gpt-4o', status: null, durationMs: 3, error: { code: 'upstream_unreachable', message: 'x' } }],
    ...over,
  });

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'switchyard-store-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const stores: Array<[string, () => LogStore & { close?(): void }]> = [
  ['memory', () => new MemoryLogStore()],
  // Events dated 2023, kept for good: past its retention, SQLite would not show them (the ring keeps no age).
  ['sqlite', () => new SqliteLogStore({ path: join(dir, `contract-${seq}.db`), retention: { maxAgeMs: Infinity } })],
];

describe.each(stores)('log store contract: %s', (_name, make) => {
  let store: ReturnType<typeof make>;
  let all: LogEvent[];

  beforeEach(() => {
    store = make();
    all = [
      event({ traceId: 'alpha', configId: 'prod' }),
      fellBack({ traceId: 'beta', usage: { prompt_tokens: 1000, completion_tokens: 500, total_tokens: 1500 }, costUsd: 0.0075 }),
      event({ status: 429, usage: null, costUsd: null, model: 'gpt-4o-mini' }),
      failed({ traceId: 'alpha' }),
      event({ model: 'mystery-model', costUsd: null }),
      event({ status: 503, servedBy: { target: 'targets[1]', provider: 'azure-openai', model: 'gpt4o-prod' }, fallback: true, usage: null, costUsd: null }),
    ];
    // Written out of start order (streams end late): the store orders by startedAt anyway.
    for (const e of [...all].reverse()) store.write(e);
  });
  afterEach(() => store.close?.());

  const ids = async (q: LogQuery) => (await store.query(q)).data.map((e) => e.requestId);
  const idsOf = (events: LogEvent[]) => events.map((e) => e.requestId);

  it('lists newest first, and returns one request with every attempt', async () => {
    expect(await ids({})).toEqual(idsOf([...all].reverse()));
    expect(await store.get(all[1]!.requestId)).toEqual(all[1]);
    expect(await store.get('nope')).toBeNull();
  });

  it('hands out copies: a caller that edits a result leaves the stored record as it was', async () => {
    const one = (await store.get(all[1]!.requestId))!;
    one.attempts.length = 0;
    one.fallback = false;
    const [listed] = (await store.query({ traceId: 'beta' })).data;
    listed!.servedBy!.provider = 'openai';
    expect(await store.get(all[1]!.requestId)).toEqual(all[1]);
    expect(await ids({ fallback: true, provider: 'azure-openai', traceId: 'beta' })).toEqual([all[1]!.requestId]);
  });

  it('filters by trace id, exact status and status class, config, fallback, provider and model', async () => {
    expect(await ids({ traceId: 'alpha' })).toEqual(idsOf([all[3]!, all[0]!]));
    expect(await ids({ status: 429 })).toEqual(idsOf([all[2]!]));
    expect(await ids({ status: '5xx' })).toEqual(idsOf([all[5]!, all[3]!]));
    expect(await ids({ status: '2xx' })).toEqual(idsOf([all[4]!, all[1]!, all[0]!]));
    expect(await ids({ configId: 'prod' })).toEqual(idsOf([all[0]!]));
    expect(await ids({ configId: null })).toHaveLength(5);
    expect(await ids({ fallback: true })).toEqual(idsOf([all[5]!, all[1]!]));
    expect(await ids({ fallback: false })).toHaveLength(4);
    expect(await ids({ provider: 'azure-openai' })).toEqual(idsOf([all[5]!, all[1]!]));
    expect(await ids({ provider: 'openai', status: '5xx' })).toEqual(idsOf([all[3]!]));
    expect(await ids({ model: 'gpt-4o-mini' })).toEqual(idsOf([all[2]!]));
    expect(await ids({ model: 'gpt4o-prod' })).toEqual(idsOf([all[5]!, all[1]!]));
  });

  it('filters by a provider that failed an attempt, whoever served: a retried 429 counts, a skip or a target with no deployment does not', async () => {
    const openai = { target: 'targets[0]', provider: 'openai', model: 'gpt-4o', durationMs: 5 } as const;
    const azure = { target: 'targets[1]', provider: 'azure-openai', model: 'gpt4o-prod', durationMs: 5 } as const;
    const more = [
      event({ attempts: [{ ...openai, status: 429 }, { ...openai, status: 200 }] }),
      fellBack({ attempts: [{ ...openai, status: null, error: { code: 'circuit_open', message: 'x' } }, { ...azure, status: 200 }] }),
      fellBack({ attempts: [{ ...openai, status: null, error: { code: 'model_not_deployed', message: 'x' } }, { ...azure, status: 200 }] }),
      // A stream whose first event was an error: a 2xx status line, and a failure.
      fellBack({ attempts: [{ ...azure, target: 'targets[0]', status: 200, error: { code: 'upstream_error_event', message: 'x' } }, { ...openai, target: 'targets[1]', status: 200 }] }),
      event({ attempts: [{ ...openai, status: 302 }, { ...azure, status: 200 }] }),
      // No status and no error (an event another writer made): nothing came, a failure.
      failed({ attempts: [{ ...azure, status: null }] }),
      // An account out of credit: a 429 told from a rate limit by the upstream's own code.
      fellBack({ attempts: [{ ...openai, status: 429, upstreamError: { code: 'insufficient_quota', message: 'You exceeded your current quota' }, upstreamRequestId: 'req_1' }, { ...azure, status: 200 }] }),
    ];
    for (const e of more) store.write(e);
    expect(await ids({ failedProvider: 'openai' })).toEqual(idsOf([more[6]!, more[4]!, more[0]!, all[3]!, all[1]!]));
    expect(await ids({ failedProvider: 'azure-openai' })).toEqual(idsOf([more[5]!, more[3]!]));
    expect(await ids({ failedProvider: 'openai', fallback: false })).toEqual(idsOf([more[4]!, more[0]!, all[3]!]));
    // By the failed attempt's status too: the same attempt as failedProvider; no answer has no status.
    expect(await ids({ failedStatus: 429 })).toEqual(idsOf([more[6]!, more[0]!, all[1]!]));
    expect(await ids({ failedStatus: '3xx', failedProvider: 'openai' })).toEqual(idsOf([more[4]!]));
    expect(await ids({ failedStatus: '2xx' })).toEqual(idsOf([more[3]!])); // a 200 whose first event was an error
    expect(await ids({ failedStatus: 429, failedProvider: 'azure-openai' })).toEqual([]);
    await expect(ids({ failedStatus: '9xx' as never })).rejects.toMatchObject({ param: 'failedStatus' });
    // By the failed attempt's error code: the failures with no status (a timeout) told apart; a skip is no failure.
    expect(await ids({ failedError: 'upstream_unreachable' })).toEqual(idsOf([all[3]!]));
    expect(await ids({ failedError: 'upstream_unreachable', failedProvider: 'azure-openai' })).toEqual([]);
    expect(await ids({ failedError: 'upstream_error_event', failedStatus: '2xx', failedProvider: 'azure-openai' })).toEqual(idsOf([more[3]!]));
    expect(await ids({ failedError: 'upstream_error_event', failedStatus: 429 })).toEqual([]);
    expect(await ids({ failedError: 'circuit_open' })).toEqual([]);
    // Or by the upstream's own code.
    expect(await ids({ failedError: 'insufficient_quota', failedStatus: 429 })).toEqual(idsOf([more[6]!]));
    expect(await ids({ failedError: 'insufficient_quota', failedProvider: 'azure-openai' })).toEqual([]);
    await expect(ids({ failedError: '' })).rejects.toMatchObject({ param: 'failedError' });
    // From plain JS, a misspelt filter is refused, not ignored (which would list every request).
    await expect(ids({ traceID: 'alpha' } as LogQuery)).rejects.toMatchObject({ param: 'traceID', message: 'Unknown filter "traceID".' });
    await expect(store.summarize!({ bogus: 1 } as LogQuery)).rejects.toMatchObject({ param: 'bogus' });
    await expect(ids({ failedProvider: 'anthropic' as never })).rejects.toThrow('failedProvider must be one of openai, azure-openai.');
  });

  it('agrees with every other store on failedProvider and failedError for attempts another writer shaped oddly', async () => {
    // Status missing, null or a string, error null, an attempt that is a string: each store reads the
    // same answer as the memory ring from them (the reference: core's attemptFailed), and none throws.
    const statuses = [200, 299, 300, 199, 429, null, undefined, '200'];
    const errors = [undefined, null, { code: 'circuit_open', message: 'x' }, { code: 'upstream_timeout', message: 'x' }];
    const odd: LogEvent[] = [];
    for (const status of statuses) {
      for (const error of errors) {
        const attempt: Record<string, unknown> = { target: 'targets[0]', provider: 'azure-openai', model: 'm', durationMs: 1 };
        if (status !== undefined) attempt.status = status;
        if (error !== undefined) attempt.error = error;
        odd.push(event({ attempts: [attempt as never] }));
      }
    }
    // An attempt that is a string naming the provider: SQLite's json_extract on it would fail every such search.
    odd.push(event({ attempts: ['"provider":"azure-openai"' as never, { target: 'targets[1]', provider: 'azure-openai', model: 'm', status: 503, durationMs: 1 }] }));
    odd.push(event({ attempts: ['"provider":"azure-openai"' as never, { target: 'targets[1]', provider: 'azure-openai', model: 'm', status: 200, durationMs: 1 }] }));
    const reference = new MemoryLogStore();
    for (const e of odd) {
      store.write(e);
      reference.write(e);
    }
    const expected = (await reference.query({ failedProvider: 'azure-openai', limit: 500 })).data.map((e) => e.requestId);
    expect(await ids({ failedProvider: 'azure-openai', limit: 500 })).toEqual(expected);
    const timedOut = (await reference.query({ failedError: 'upstream_timeout', limit: 500 })).data.map((e) => e.requestId);
    expect(timedOut).toHaveLength(statuses.length);
    expect(await ids({ failedError: 'upstream_timeout', limit: 500 })).toEqual(timedOut);
    // Spot checks of the rule itself: a status that is no number (null, missing, '200') is no answer; a 2xx with an
    // error, even null, failed.
    const failedOf = (i: number) => expected.includes(odd[i]!.requestId);
    expect([failedOf(0), failedOf(errors.length * 5), failedOf(errors.length * 6), failedOf(errors.length * 7), failedOf(1)]).toEqual([false, true, true, true, true]);
    expect([failedOf(odd.length - 2), failedOf(odd.length - 1)]).toEqual([true, false]);
  });

  it('reads a field another writer left out as absent (NULL in SQLite): no cost bound matches it, configId null does', async () => {
    const bare = event({ traceId: 'bare' }) as Partial<LogEvent>;
    delete bare.costUsd;
    delete bare.configId;
    store.write(bare as LogEvent);
    const found = async (q: LogQuery) => (await ids({ traceId: 'bare', ...q })).length;
    expect(await found({})).toBe(1);
    expect([await found({ minCostUsd: 0 }), await found({ maxCostUsd: 1 })]).toEqual([0, 0]);
    expect([await found({ configId: null }), await found({ configId: 'default' })]).toEqual([1, 0]);
  });

  it('summarizes every request a filter matches: count, fallbacks, known cost and the unpriced, first and last start', async () => {
    const summarize = store.summarize!.bind(store);
    expect(await summarize()).toEqual({
      // Unpriced: only the one served without a price (mystery-model); failures answered without usage cost nothing.
      requests: 6, fallbacks: 2, costUsd: 0.007575, unpriced: 1, firstStartedAt: all[0]!.startedAt, lastStartedAt: all[5]!.startedAt,
    });
    expect(await summarize({ traceId: 'alpha' })).toEqual({ requests: 2, fallbacks: 0, costUsd: 0.000075, unpriced: 0, firstStartedAt: all[0]!.startedAt, lastStartedAt: all[3]!.startedAt });
    // A stream the client left, served and without usage: its cost is unknown, not nothing.
    const left = event({ status: 499, usage: null, costUsd: null, traceId: 'left' });
    store.write(left);
    expect(await summarize({ traceId: 'left' })).toMatchObject({ requests: 1, costUsd: 0, unpriced: 1 });
    expect(await summarize({ failedProvider: 'azure-openai' })).toEqual({ requests: 0, fallbacks: 0, costUsd: 0, unpriced: 0, firstStartedAt: null, lastStartedAt: null });
    // A summary covers every match: what pages a list is refused, not ignored.
    await expect(summarize({ limit: 10 })).rejects.toThrow('limit pages a list');
    await expect(summarize({ cursor: 'x' })).rejects.toMatchObject({ param: 'cursor' });
    // A real cursor too (it would total only what is older), while null (a last page's nextCursor) is no cursor.
    const { nextCursor } = await store.query({ limit: 1 });
    await expect(summarize({ cursor: nextCursor })).rejects.toThrow('cursor pages a list');
    expect((await summarize({ cursor: null, traceId: 'alpha' })).requests).toBe(2);
    // Sums carry no float noise (0.1 + 0.2), as each event's cost carries none.
    for (const costUsd of [0.1, 0.2]) store.write(event({ traceId: 'sum', costUsd }));
    expect((await summarize({ traceId: 'sum' })).costUsd).toBe(0.3);
    // Another writer's events without a cost field, or without usage's total: unpriced, and the sum stays a number.
    store.write(event({ traceId: 'sum', costUsd: undefined as never }));
    store.write(event({ traceId: 'sum', status: 502, costUsd: null, usage: { prompt_tokens: 1, completion_tokens: 1 } as never }));
    expect(await summarize({ traceId: 'sum' })).toMatchObject({ requests: 4, costUsd: 0.3, unpriced: 2 });
  });

  it('filters by time range, cost and tokens (unknown cost or usage never matches a bound)', async () => {
    expect(await ids({ from: all[2]!.startedAt, to: all[4]!.startedAt })).toEqual(idsOf([all[4]!, all[3]!, all[2]!]));
    // The JS API also takes a Date and an ISO 8601 string, as its error message says.
    expect(await ids({ from: new Date(all[2]!.startedAt), to: new Date(all[4]!.startedAt).toISOString() })).toEqual(idsOf([all[4]!, all[3]!, all[2]!]));
    await expect(ids({ from: 'yesterday' })).rejects.toThrow('from must be epoch milliseconds or an ISO 8601 date');
    expect(await ids({ minCostUsd: 0.001 })).toEqual(idsOf([all[1]!]));
    expect(await ids({ maxCostUsd: 0.001 })).toEqual(idsOf([all[0]!]));
    expect(await ids({ minTokens: 100 })).toEqual(idsOf([all[1]!]));
    expect(await ids({ maxTokens: 15, minTokens: 15 })).toEqual(idsOf([all[4]!, all[0]!]));
    // A range of one instant (a link to one request's start) holds it; a bound of 0 still leaves unknown cost out.
    expect(await ids({ from: all[2]!.startedAt, to: all[2]!.startedAt })).toEqual(idsOf([all[2]!]));
    expect(await ids({ minCostUsd: 0 })).toEqual(idsOf([all[1]!, all[0]!]));
  });

  it('pages with a cursor without skipping or repeating, including events that started in the same millisecond', async () => {
    const same = all[5]!.startedAt + 1;
    const twins = [event({ startedAt: same, requestId: 'req-twin-a' }), event({ startedAt: same, requestId: 'req-twin-b' })];
    for (const e of twins) store.write(e);
    const seen: string[] = [];
    // The loop a user writes: the first page with a null cursor, then each page's nextCursor until it is null.
    let cursor: string | null = null;
    let pages = 0;
    do {
      // One per page: the twins fall on either side of a page break, where a cursor without the tie-break fails.
      const page = await store.query({ limit: 1, cursor });
      seen.push(...page.data.map((e) => e.requestId));
      cursor = page.nextCursor;
      pages++;
    } while (cursor !== null && pages <= all.length + 2); // a cursor that repeats a page fails here, not in a hang
    expect(pages).toBe(all.length + 2);
    expect(seen).toEqual(['req-twin-b', 'req-twin-a', ...idsOf([...all].reverse())]);
  });

  it('orders ids that started together by their UTF-8 bytes, in every store (ids from other writers need not be UUIDs)', async () => {
    const same = all[5]!.startedAt + 1;
    // U+FF01 sorts before U+1F600 by code point (and UTF-8 bytes, as SQLite compares), after it by UTF-16 code units.
    for (const requestId of ['req-\uff01', 'req-\u{1f600}', 'req-z']) store.write(event({ startedAt: same, requestId }));
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await store.query({ limit: 1, cursor, from: same });
      seen.push(...page.data.map((e) => e.requestId));
      cursor = page.nextCursor;
    } while (cursor !== null && seen.length <= 3);
    expect(seen).toEqual(['req-\u{1f600}', 'req-\uff01', 'req-z']);
  });

  it('rejects invalid queries with a typed error naming the field', async () => {
    const bad: Array<[LogQuery, string]> = [
      [{ status: '6xx' as never }, 'status'],
      [{ status: 42 }, 'status'],
      [{ status: 600 }, 'status'],
      [{ failedStatus: 600 }, 'failedStatus'],
      [{ limit: 0 }, 'limit'],
      [{ limit: 501 }, 'limit'],
      [{ from: 10, to: 5 }, 'from'],
      [{ minCostUsd: Number.NaN }, 'minCostUsd'],
      [{ provider: 'anthropic' as never }, 'provider'],
      [{ cursor: 'not-a-cursor' }, 'cursor'],
    ];
    for (const [query, param] of bad) {
      const err = await store.query(query).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LogQueryError);
      expect((err as LogQueryError).param).toBe(param);
    }
  });
});

/** The README's Query section, its snippet as written, on every store (events dated now, inside SQLite's retention). */
describe.each(stores)("the README's query snippet: %s", (_name, make) => {
  it('finds a trace, filters, pages to a null nextCursor, gets one with every attempt, and sums what failed at OpenAI', async () => {
    const store = make();
    try {
      const now = Date.now();
      const trace = Array.from({ length: 51 }, (_, i) => event({ traceId: 'checkout-42', startedAt: now - 60_000 + i }));
      const outage = fellBack({ traceId: 'other', startedAt: now - 1000, status: 503, costUsd: 0.02 });
      const since = Date.parse('2026-11-27T09:00:00Z');
      for (const e of [...trace, outage]) store.write(e);

      const { data, nextCursor } = await store.query({ traceId: 'checkout-42' });
      expect([data.length, data[0]!.requestId, typeof nextCursor]).toEqual([50, trace[50]!.requestId, 'string']);
      const failed = await store.query({ status: '5xx', fallback: true, provider: 'azure-openai', from: Date.now() - 3_600_000, limit: 100 });
      expect(failed.data.map((e) => e.requestId)).toEqual([outage.requestId]);
      const next = await store.query({ traceId: 'checkout-42', cursor: nextCursor }); // the next page; nextCursor is null after the last
      expect([next.data.map((e) => e.requestId), next.nextCursor]).toEqual([[trace[0]!.requestId], null]);
      const requestId = outage.requestId;
      const one = await store.get(requestId); // with every attempt
      expect(one?.attempts.map((a) => [a.provider, a.status])).toEqual([['openai', 429], ['azure-openai', 200]]);
      const totals = await store.summarize!({ failedProvider: 'openai', from: '2026-11-27T09:00:00Z' });
      // The README's shape: { requests, fallbacks, costUsd, unpriced, firstStartedAt, lastStartedAt }.
      expect(totals).toEqual(now >= since
        ? { requests: 1, fallbacks: 1, costUsd: 0.02, unpriced: 0, firstStartedAt: outage.startedAt, lastStartedAt: outage.startedAt }
        : { requests: 0, fallbacks: 0, costUsd: 0, unpriced: 0, firstStartedAt: null, lastStartedAt: null });
      // A Date is a bound too, as is an ISO string with an offset.
      expect((await store.query({ from: new Date(now - 1000), to: new Date(now - 1000) })).data.map((e) => e.requestId)).toEqual([outage.requestId]);
      expect((await store.summarize!({ from: new Date(now - 60_000 + 50).toISOString().replace('Z', '+00:00') })).requests).toBe(2);
    } finally {
      await store.close?.();
    }
  });
});

describe('memory store', () => {
  it('is a bounded ring: the oldest events are evicted and counted', async () => {
    const store = new MemoryLogStore({ capacity: 3 });
    const events = [event(), event(), event(), event(), event()];
    for (const e of events) store.write(e);
    expect(store.size).toBe(3);
    expect(store.evicted).toBe(2);
    expect((await store.query()).data.map((e) => e.requestId)).toEqual(idsOfReverse(events.slice(2)));
    expect(await store.get(events[0]!.requestId)).toBeNull();
  });

  it('keeps the newer record of an id written twice when its older copy leaves the ring', async () => {
    const store = new MemoryLogStore({ capacity: 2 });
    store.write(event({ requestId: 'dup' }));
    store.write(event({ requestId: 'dup', status: 502 }));
    store.write(event()); // evicts the older `dup`
    expect((await store.get('dup'))?.status).toBe(502);
  });

  it("hands out copies down to an attempt's error and the upstream's", async () => {
    const store = new MemoryLogStore();
    const e = failed();
    e.attempts[0]!.upstreamError = { code: 'insufficient_quota', message: 'quota' };
    store.write(e);
    (await store.get(e.requestId))!.attempts[0]!.error!.message = 'edited';
    (await store.query()).data[0]!.attempts[0]!.error!.code = 'edited';
    (await store.get(e.requestId))!.attempts[0]!.upstreamError!.code = 'edited';
    expect((await store.get(e.requestId))!.attempts[0]!.error).toEqual({ code: 'upstream_unreachable', message: 'x' });
    expect((await store.query({ failedError: 'insufficient_quota' })).data.map((x) => x.requestId)).toEqual([e.requestId]);
  });

  it('keeps 10000 events by default: the next one evicts the oldest', async () => {
    const store = new MemoryLogStore();
    const events = Array.from({ length: 10_001 }, () => event());
    for (const e of events.slice(0, 10_000)) store.write(e);
    expect([store.size, store.evicted]).toEqual([10_000, 0]);
    store.write(events[10_000]!);
    expect([store.size, store.evicted]).toEqual([10_000, 1]);
    expect(await store.get(events[0]!.requestId)).toBeNull();
    expect((await store.get(events[1]!.requestId))?.requestId).toBe(events[1]!.requestId);
  });

  it('refuses a capacity that could hold nothing', () => {
    for (const capacity of [0, -1, 1.5]) expect(() => new MemoryLogStore({ capacity })).toThrow(RangeError);
    expect(new MemoryLogStore({ capacity: 1 }).capacity).toBe(1);
  });
});

/** Edges every store keeps alike: a status class's upper bound, the provider a request none served is filed under,
 * bounds on unknown usage, values plain JS may pass. */
const openai = { target: 'targets[0]', provider: 'openai', model: 'gpt-4o', durationMs: 5 } as const;
const azure = { target: 'targets[1]', provider: 'azure-openai', model: 'gpt4o-prod', durationMs: 5 } as const;

describe.each(stores)('log store edges: %s', (_name, make) => {
  let store: ReturnType<typeof make>;
  beforeEach(() => {
    store = make();
  });
  afterEach(() => store.close?.());
  const ids = async (q: LogQuery) => (await store.query(q)).data.map((e) => e.requestId);

  it('ends a status class at x99: a 500 is no 4xx, a 300 no 2xx, for the request and for a failed attempt', async () => {
    const ok = event();
    const limited = event({ status: 429, servedBy: null, usage: null, costUsd: null, attempts: [{ ...openai, status: 429 }] });
    const serverError = event({ status: 500, servedBy: null, usage: null, costUsd: null, attempts: [{ ...openai, status: 500 }] });
    const redirect = event({ status: 300, usage: null, costUsd: null, attempts: [{ ...openai, status: 300 }] });
    // 499: the client left (a stream it closed): the class's last status is in it.
    const left = event({ status: 499, usage: null, costUsd: null });
    for (const e of [ok, limited, serverError, redirect, left]) store.write(e);
    expect(await ids({ status: '4xx' })).toEqual([left.requestId, limited.requestId]);
    expect(await ids({ status: '2xx' })).toEqual([ok.requestId]);
    expect(await ids({ failedStatus: '4xx' })).toEqual([limited.requestId]);
    expect(await ids({ failedStatus: '3xx' })).toEqual([redirect.requestId]);
    expect((await store.summarize!({ status: '4xx' })).requests).toBe(2);
  });

  it('files a request none served under the provider it last called, not under a target that called nobody', async () => {
    // OpenAI answered 503, then Azure had no deployment for the model: an OpenAI failure, not Azure's.
    const outage = event({
      status: 503, servedBy: null, usage: null, costUsd: null,
      attempts: [{ ...openai, status: 503 }, { ...azure, status: null, error: { code: 'model_not_deployed', message: 'x' } }],
    });
    // Azure's circuit was open after OpenAI's 429.
    const skipped = event({
      status: 429, servedBy: null, usage: null, costUsd: null,
      attempts: [{ ...openai, status: 429 }, { ...azure, status: null, error: { code: 'circuit_open', message: 'x' } }],
    });
    for (const e of [outage, skipped]) store.write(e);
    expect(await ids({ provider: 'openai' })).toEqual([skipped.requestId, outage.requestId]);
    expect(await ids({ provider: 'azure-openai' })).toEqual([]);
  });

  it('leaves requests without usage out of a maxTokens bound given alone, and holds a request at either bound', async () => {
    const small = event();
    const unknown = event({ status: 429, servedBy: null, usage: null, costUsd: null, attempts: [{ ...openai, status: 429 }] });
    for (const e of [small, unknown]) store.write(e);
    expect(await ids({ maxTokens: 100 })).toEqual([small.requestId]);
    expect(await ids({ maxCostUsd: 1 })).toEqual([small.requestId]);
    // Inclusive: a bound equal to the request's own cost or tokens holds it.
    expect(await ids({ minCostUsd: small.costUsd!, maxCostUsd: small.costUsd! })).toEqual([small.requestId]);
    expect(await ids({ minTokens: 15, maxTokens: 15 })).toEqual([small.requestId]);
  });

  it('refuses values plain JS may pass that no filter means', async () => {
    const bad: Array<[LogQuery, string]> = [
      [{ traceId: '' }, 'traceId'],
      [{ configId: 5 as never }, 'configId'],
      [{ fallback: 'true' as never }, 'fallback'],
      [{ status: 99 }, 'status'],
      [{ failedStatus: 99 }, 'failedStatus'],
      [{ limit: 2.5 }, 'limit'],
    ];
    for (const [query, param] of bad) {
      const err = await store.query(query).catch((e: unknown) => e);
      expect([query, err]).toEqual([query, expect.any(LogQueryError)]);
      expect((err as LogQueryError).param).toBe(param);
    }
    // The lowest and highest statuses there are still pass.
    expect(await ids({ status: 100 })).toEqual([]);
    expect(await ids({ status: 599 })).toEqual([]);
  });

  it('hands out copies down to usage: editing a result leaves the stored record and what it matches', async () => {
    const e = event();
    store.write(e);
    const [listed] = (await store.query({})).data;
    listed!.usage!.total_tokens = 1_000_000;
    const stored = await store.get(e.requestId);
    expect(stored).toEqual(e);
    expect(await ids({ minTokens: 1000 })).toEqual([]);
  });
});

function idsOfReverse(events: LogEvent[]): string[] {
  return events.map((e) => e.requestId).reverse();
}
