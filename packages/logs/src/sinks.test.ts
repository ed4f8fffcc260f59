import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { createLoggerSink, JsonLinesSink, type LogEvent } from '@switchyard/logs';
import { until } from '../../e2e/src/support/fixture';

let seq = 0;
function event(over: Partial<LogEvent> = {}): LogEvent {
  seq++;
  return {
    traceId: `trace-${seq}`, requestId: `req-${seq}`, configId: null, startedAt: 1_700_000_000_000, durationMs: 10, status: 200, stream: false,
    fallback: false, model: 'gpt-4o', servedBy: { target: 'targets[0]', provider: 'openai', model: 'gpt-4o' },
    attempts: [{ target: 'targets[0]', provider: 'openai', model: 'gpt-4o', status: 200, durationMs: 9 }],
    usage: null, costUsd: null, ...over,
  };
}

const read = (file: string) => readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as LogEvent);

describe('JSON-lines sink', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'switchyard-jsonl-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('appends one JSON line per event, batched after the request, across reopenings', async () => {
    const path = join(dir, 'requests.jsonl');
    const first = new JsonLinesSink({ path });
    const events = [event(), event({ fallback: true }), event()];
    first.write(events[0]!);
    first.write(events[1]!);
    await first.close();
    const second = new JsonLinesSink({ path });
    second.write(events[2]!);
    await second.close();
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l) as LogEvent)).toEqual(events);
  });

  it('reopen() follows a log rotation: queued events go to the renamed file, new ones to a new file at the path', async () => {
    const path = join(dir, 'requests.jsonl');
    const sink = new JsonLinesSink({ path });
    const before = [event(), event()];
    const after = [event()];
    sink.write(before[0]!);
    await sink.flush(); // on the disk before the rename
    renameSync(path, `${path}.1`); // what logrotate does, before it signals the process
    sink.write(before[1]!); // queued before the signal: still the old file's
    await sink.reopen();
    sink.write(after[0]!);
    await sink.close();
    expect(read(`${path}.1`)).toEqual(before);
    expect(read(path)).toEqual(after);
  });

  it('follows a file renamed or deleted under it with no reopen() (logrotate without a signal): later events go to a new file at the path', async () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const path = join(dir, 'requests.jsonl');
    const sink = new JsonLinesSink({ path });
    try {
      const events = [event(), event(), event()];
      sink.write(events[0]!);
      await sink.flush();
      renameSync(path, `${path}.1`);
      await new Promise((r) => setTimeout(r, 1100)); // the path is checked at most once a second
      sink.write(events[1]!);
      await sink.flush();
      unlinkSync(path);
      await new Promise((r) => setTimeout(r, 1100));
      sink.write(events[2]!);
      await sink.close();
        expect([read(`${path}.1`), read(path), sink.dropped]).toEqual([[events[0]], [events[2]], 0]);
      expect(warn.mock.calls.map(([message]) => String(message))).toEqual([
        `Switchyard's JSON-lines log sink found ${JSON.stringify(path)} renamed or deleted (a rotation with no reopen()?): it writes to a new file at that path (said once)`,
      ]);
    } finally {
      warn.mockRestore();
    }
  });

  it('appends to a file the process may write but not read (mode 0200), as >> would', async () => {
    const path = join(dir, 'write-only.jsonl');
    writeFileSync(path, 'half a line');
    // The permission as an unprivileged process meets it (the suite may run as root, whom no mode stops).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fs = require('node:fs') as typeof import('node:fs');
    const real = fs.openSync;
    const open = jest.spyOn(fs, 'openSync').mockImplementation(((file: string, flags?: string, mode?: number) => {
      if (file === path && flags === 'a+') throw Object.assign(new Error(`EACCES: permission denied, open '${path}'`), { code: 'EACCES' });
      return real(file, flags ?? 'r', mode);
    }) as typeof fs.openSync);
    try {
      const sink = new JsonLinesSink({ path });
      sink.write(event());
      await sink.close();
      expect(open).toHaveBeenCalledWith(path, 'a');
    } finally {
      open.mockRestore();
    }
    // Its last line is not checked (it cannot be read): the event follows what was there.
    expect(readFileSync(path, 'utf8')).toMatch(/^half a line\{"traceId"/);
  });

  it('drops and counts events when the file falls behind or fails, never throwing', async () => {
    const sink = new JsonLinesSink({ path: join(dir, 'slow.jsonl'), maxPendingBytes: 1 });
    const fellBehind = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const cyclic = event() as LogEvent & { self?: unknown };
      cyclic.self = cyclic;
      sink.write(cyclic);
      sink.flush();
      sink.write(event());
      sink.flush(); // the first batch goes to the stream: it cannot reach the disk within this tick
      sink.write(event());
      sink.flush();
      sink.write(event());
      sink.flush();
      // Said once, however many are dropped, and not hidden by the warning before it (an event it could not encode).
      expect(fellBehind.mock.calls.map(([message]) => String(message))).toEqual([
        expect.stringContaining('could not encode'),
        expect.stringContaining('fell behind (more than 1 bytes waiting'),
      ]);
    } finally {
      fellBehind.mockRestore();
    }
    expect(sink.dropped).toBe(3);
    await sink.close();

    // The bound is what it says: up to maxPendingBytes may wait (one line here), no more.
    const one = event();
    const line = Buffer.byteLength(`${JSON.stringify(one)}\n`);
    const bounded = new JsonLinesSink({ path: join(dir, 'bound.jsonl'), maxPendingBytes: line });
    const quiet = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      for (let i = 0; i < 3; i++) {
        bounded.write({ ...one }); // same size each time
        bounded.flush();
      }
    } finally {
      quiet.mockRestore();
    }
    expect(bounded.dropped).toBe(1); // nothing, then one line waited: both written; two lines waiting: dropped
    await bounded.close();

    // A path that cannot be opened is a startup error, as for the SQLite store, not a sink that drops everything.
    expect(() => new JsonLinesSink({ path: join(dir, 'missing-dir', 'x.jsonl') })).toThrow(/JsonLinesSink cannot open .*missing-dir.*ENOENT/);

    // A file that fails later (rotated into a directory that is gone): dropped and counted, one warning.
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const gone = join(dir, 'gone');
    mkdirSync(gone);
    const failing = new JsonLinesSink({ path: join(gone, 'y.jsonl') });
    rmSync(gone, { recursive: true });
    void failing.reopen();
    for (let i = 0; i < 3; i++) failing.write(event());
    failing.flush(); // before the file's open fails
    await until(() => failing.dropped === 3);
    expect(() => failing.write(event())).not.toThrow();
    expect(failing.dropped).toBe(4);
    expect(warn).toHaveBeenCalledTimes(1);
    warn.mockRestore();
    await failing.close();
  });

  it('drops an event it cannot encode (a cycle another sink added), keeps the rest of its batch, never throws', async () => {
    const path = join(dir, 'cycle.jsonl');
    const sink = new JsonLinesSink({ path });
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const cyclic = event() as LogEvent & { self?: unknown };
    cyclic.self = cyclic;
    const kept = [event(), event()];
    sink.write(kept[0]!);
    sink.write(cyclic);
    sink.write(kept[1]!);
    await sink.close();
    warn.mockRestore();
    expect(sink.dropped).toBe(1);
    expect(read(path)).toEqual(kept);
  });

  // A symlink to /dev/full stands for a full disk (writes fail with ENOSPC); removing it frees the space.
  it('opens its file again by itself after a full disk, counting and saying what it dropped meanwhile', async () => {
    const path = join(dir, 'full.jsonl');
    symlinkSync('/dev/full', path);
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const sink = new JsonLinesSink({ path, recoveryDelayMs: 20 });
    try {
      sink.write(event());
      sink.flush();
      await until(() => sink.dropped === 1);
      rmSync(path);
      // Written until one lands: the ones before the sink opened the file again are dropped and counted.
      const sent: LogEvent[] = [];
      await until(() => {
        const next = event();
        sent.push(next);
        sink.write(next);
        sink.flush();
        return existsSync(path) && readFileSync(path, 'utf8') !== '';
      });
      const last = event({ traceId: 'after-recovery' });
      sink.write(last);
      await sink.close();
      const lines = read(path);
      expect(lines.at(-1)).toEqual(last);
      expect(lines.length + sink.dropped).toBe(sent.length + 2);
      expect(warn.mock.calls.map(([message]) => String(message))).toEqual([
        expect.stringContaining('failed; events are dropped until it can write again: Error: ENOSPC'),
        `Switchyard's JSON-lines log sink writes again; ${sink.dropped} events were dropped while it could not`,
      ]);
    } finally {
      warn.mockRestore();
      await sink.close();
    }
  });

  it('opens its file again once its directory is back, and not after close()', async () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const gone = join(dir, 'gone');
    mkdirSync(gone);
    const path = join(gone, 'z.jsonl');
    const sink = new JsonLinesSink({ path, recoveryDelayMs: 20 });
    const closed = new JsonLinesSink({ path: join(gone, 'closed.jsonl'), recoveryDelayMs: 20 });
    try {
      rmSync(gone, { recursive: true });
      void sink.reopen();
      void closed.reopen();
      sink.write(event());
      closed.write(event());
      sink.flush();
      closed.flush();
      await until(() => sink.dropped === 1 && closed.dropped === 1);
      await closed.close();
      closed.write(event());
      closed.write(event());
      expect(closed.dropped).toBe(3);
      // Said once: a shutdown that closed the sink before the requests in flight were logged.
      expect(warn.mock.calls.filter(([m]) => String(m).includes('got an event after close()'))).toHaveLength(1);
      await new Promise((r) => setTimeout(r, 60)); // several recovery delays: the directory is still gone
      mkdirSync(gone);
      const kept = event({ traceId: 'directory-back' });
      await until(() => {
        sink.write(kept);
        sink.flush();
        return existsSync(path) && readFileSync(path, 'utf8') !== '';
      });
      await new Promise((r) => setTimeout(r, 100));
      expect(existsSync(join(gone, 'closed.jsonl'))).toBe(false);
      expect(JSON.parse(readFileSync(path, 'utf8').split('\n')[0]!)).toEqual(kept);
    } finally {
      warn.mockRestore();
      await sink.close();
    }
  });

  it("says it writes again only when the file in use does, not when a reopen()'s old file takes its last batch", async () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const gone = join(dir, 'rotated');
    mkdirSync(gone);
    const path = join(gone, 'a.jsonl');
    const sink = new JsonLinesSink({ path, recoveryDelayMs: 50 });
    try {
      rmSync(gone, { recursive: true }); // logrotate renamed it, and the new path cannot be opened
      for (let i = 0; i < 2; i++) sink.write(event()); // queued: they go to the old file, which takes them
      await sink.reopen();
      await until(() => warn.mock.calls.length === 1);
      for (let i = 0; i < 3; i++) sink.write(event()); // dropped while the new file cannot be opened
      mkdirSync(gone);
      await until(() => {
        sink.write(event({ traceId: 'back' }));
        sink.flush();
        return existsSync(path) && readFileSync(path, 'utf8') !== '';
      });
      await until(() => warn.mock.calls.length >= 2); // said from the write's callback, just after the file has it
      expect(warn.mock.calls.map(([message]) => String(message))).toEqual([
        expect.stringContaining('failed; events are dropped until it can write again: Error: ENOENT'),
        `Switchyard's JSON-lines log sink writes again; ${sink.dropped} events were dropped while it could not`,
      ]);
      expect(sink.dropped).toBeGreaterThanOrEqual(3);
    } finally {
      warn.mockRestore();
      await sink.close();
    }
  });

  it('refuses a recoveryDelayMs that is not a number of milliseconds', () => {
    expect(() => new JsonLinesSink({ path: join(dir, 'r.jsonl'), recoveryDelayMs: 0 })).toThrow('JsonLinesSink recoveryDelayMs must be a number of milliseconds >= 1, got 0');
    expect(() => new JsonLinesSink({ path: join(dir, 'r.jsonl'), recoveryDelayMs: Number.NaN })).toThrow(/got NaN/);
  });

  it('ends a line a failed write cut short before appending, so that the next event is a line of its own', async () => {
    const path = join(dir, 'cut.jsonl');
    writeFileSync(path, `${JSON.stringify(event())}\n{"traceId":"cut-of`);
    const sink = new JsonLinesSink({ path });
    const next = event({ traceId: 'after-the-cut' });
    sink.write(next);
    await sink.close();
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(JSON.parse(lines[2]!)).toEqual(next);
  });
});

/** The JSON-lines sink's documented defaults: maxPendingBytes 8 MiB, recoveryDelayMs 5 s, doubled up to 60 s. */
describe('JSON-lines sink defaults', () => {
  let dir: string;
  let warn: jest.SpyInstance;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'switchyard-jsonl-defaults-'));
    warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
  });
  afterEach(() => {
    jest.useRealTimers();
    warn.mockRestore();
    rmSync(dir, { recursive: true, force: true });
  });

  it('drops a batch once more than 8 MiB wait for the disk, not at 8 MiB exactly', async () => {
    const MiB8 = 8 * 1024 * 1024;
    /** An event whose line (with its newline) is `bytes` long. */
    const sized = (bytes: number) => {
      const e = event({ traceId: 'big' }) as LogEvent & { pad: string };
      e.pad = '';
      e.pad = 'x'.repeat(bytes - (JSON.stringify(e).length + 1));
      return e;
    };
    for (const [bytes, dropped] of [[MiB8, 0], [MiB8 + 1, 1]] as const) {
      const sink = new JsonLinesSink({ path: join(dir, `pending-${bytes}.jsonl`) });
      sink.write(sized(bytes));
      sink.flush(); // with the stream: it cannot reach the disk within this tick
      sink.write(event());
      sink.flush();
      expect(sink.dropped).toBe(dropped);
      await sink.close();
    }
  });

  it('opens a failed file again after 5 s by default, doubling the wait while it keeps failing, up to 60 s', async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'clearImmediate', 'nextTick', 'queueMicrotask', 'Date', 'performance', 'hrtime'] });
    // Once the stream's error is out (after the write's callback counted the event): the retry is then scheduled.
    const failures = () => warn.mock.calls.filter(([message]) => String(message).includes('failed; events are dropped')).length;
    const failedOnce = async (sink: JsonLinesSink) => {
      const before = failures();
      sink.write(event());
      sink.flush();
      for (const t0 = Date.now(); failures() === before; await new Promise((r) => setImmediate(r))) {
        if (Date.now() - t0 > 5000) throw new Error('the write to /dev/full did not fail');
      }
    };
    // The disk is full (a symlink to /dev/full); freed, the sink opens the path again 5 s after the failure.
    const full = join(dir, 'full.jsonl');
    symlinkSync('/dev/full', full);
    const first = new JsonLinesSink({ path: full });
    await failedOnce(first);
    rmSync(full);
    jest.advanceTimersByTime(4999);
    expect(existsSync(full)).toBe(false);
    jest.advanceTimersByTime(1);
    expect(existsSync(full)).toBe(true);
    await first.close();
    // Its directory gone: tried again after 5, 10, 20 and 40 s, then every 60 s (not 80).
    const sub = join(dir, 'sub');
    mkdirSync(sub);
    const gone = join(sub, 'gone.jsonl');
    symlinkSync('/dev/full', gone);
    const second = new JsonLinesSink({ path: gone });
    await failedOnce(second);
    rmSync(sub, { recursive: true });
    for (const wait of [5000, 10_000, 20_000, 40_000]) jest.advanceTimersByTime(wait);
    mkdirSync(sub);
    jest.advanceTimersByTime(59_999);
    expect(existsSync(gone)).toBe(false);
    jest.advanceTimersByTime(1);
    expect(existsSync(gone)).toBe(true);
    await second.close();
  });
});

describe('logger sink', () => {
  it('logs each event as the record\'s fields through pino', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = pino({ base: null }, destination);
    const sink = createLoggerSink(logger, { level: (e) => (e.status >= 500 ? 'error' : 'info') });
    sink.write(event({ traceId: 'pino-1' }));
    sink.write(event({ traceId: 'pino-2', status: 502 }));
    const records = lines.map((l) => JSON.parse(l) as { level: number; msg: string; traceId: string; attempts: unknown[] });
    expect(records.map((r) => [r.level, r.msg, r.traceId])).toEqual([[30, 'switchyard request', 'pino-1'], [50, 'switchyard request', 'pino-2']]);
    expect(records[0]!.attempts).toHaveLength(1);
  });

  it("takes each of debug, info, warn and error, fixed or per event, and a message of the host's", () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = pino({ base: null, level: 'debug' }, destination);
    for (const level of ['debug', 'info', 'warn', 'error'] as const) createLoggerSink(logger, { level, message: `llm ${level}` }).write(event());
    createLoggerSink(logger, { level: (e) => (e.status === 429 ? 'warn' : 'debug') }).write(event({ status: 429 }));
    const records = lines.map((l) => JSON.parse(l) as { level: number; msg: string });
    expect(records.map((r) => [r.level, r.msg])).toEqual([[20, 'llm debug'], [30, 'llm info'], [40, 'llm warn'], [50, 'llm error'], [40, 'switchyard request']]);
  });

  it('falls back to info for a logger without the chosen level', () => {
    const calls: Array<[object, string | undefined]> = [];
    const sink = createLoggerSink({ info: (obj, msg) => calls.push([obj, msg]) }, { level: 'warn', message: 'llm' });
    sink.write(event({ traceId: 'plain' }));
    expect(calls).toEqual([[expect.objectContaining({ traceId: 'plain' }), 'llm']]);
  });
});

/** Recoveries a host drives: reopen() after a failure, and logrotate's `create` without a signal. */
describe('JSON-lines sink recoveries', () => {
  let dir: string;
  let warn: jest.SpyInstance;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'switchyard-jsonl-edges-'));
    warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
  });
  afterEach(() => {
    warn.mockRestore();
    rmSync(dir, { recursive: true, force: true });
  });

  // A symlink to /dev/full stands for a full disk (writes fail with ENOSPC); removing it frees the space.
  it('writes again after reopen() once its file failed, without waiting for its own recovery', async () => {
    const path = join(dir, 'full.jsonl');
    symlinkSync('/dev/full', path);
    const sink = new JsonLinesSink({ path, recoveryDelayMs: 3_600_000 }); // its own recovery would come in an hour
    try {
      sink.write(event());
      sink.flush();
      await until(() => sink.dropped === 1);
      rmSync(path);
      await sink.reopen();
      const kept = event({ traceId: 'after-reopen' });
      sink.write(kept);
      await sink.flush();
      expect([read(path), sink.dropped]).toEqual([[kept], 1]);
    } finally {
      await sink.close();
    }
  });

  it('follows a rotation that created a new file at the path (logrotate `create`, no signal): later events go to the new file', async () => {
    const path = join(dir, 'requests.jsonl');
    const sink = new JsonLinesSink({ path });
    try {
      const events = [event(), event()];
      sink.write(events[0]!);
      await sink.flush();
      renameSync(path, `${path}.1`);
      writeFileSync(path, ''); // what `create` leaves at the path: an empty file, another inode
      await new Promise((r) => setTimeout(r, 1100)); // the path is checked at most once a second
      sink.write(events[1]!);
      await sink.flush();
      expect([read(`${path}.1`), read(path)]).toEqual([[events[0]], [events[1]]]);
    } finally {
      await sink.close();
    }
  });
});
