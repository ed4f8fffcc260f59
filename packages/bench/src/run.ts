/**
 * `pnpm bench`: Switchyard against the floors (bare proxies) and a hand-written SDK route, all on loopback.
 * The server under test runs alone on core 1 (`taskset -c 1`); wrk, the fake upstreams and this runner share core 0,
 * so a server's CPU time per request (utime + stime from /proc) is its own cost. Systems are interleaved, each
 * scenario repeated; the median of the repeats is reported with min and max. Writes BENCHMARKS.md at the repo root.
 *
 *   node packages/bench/dist/run.js [--quick] [--systems a,b] [--scenarios json32,json1,...] [--repeats N]
 *                                   [--seconds N] [--out FILE|-]
 * BENCH_NODE_ARGS adds node flags to the servers under test (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { cpuMicros, peakRssBytes, percentile, post, resetPeakRss, rssBytes, series, wrk } from './measure';
import { REQUEST_BODY, STREAM_BODY, type ChildReply, type FakeMode, type SystemName } from './shared';

const ROOT = resolve(__dirname, '../../..');
const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const opt = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
};
const QUICK = flag('quick');
const REPEATS = Number(opt('repeats') ?? (QUICK ? 1 : 3));
const SECONDS = Number(opt('seconds') ?? (QUICK ? 2 : 3));
const WARMUP_SECONDS = 1;
const SERIES_COUNT = QUICK ? 4000 : 10_000;
const SERIES_MARK = QUICK ? 1000 : 2000;
const BIG_BYTES = 50 * 1024 * 1024;
const BIG_CHUNK = 64 * 1024;
const MB = 1024 * 1024;

interface SystemInfo {
  name: SystemName;
  label: string;
  framework: 'node' | 'express' | 'koa' | 'nest' | null;
  /** The floor this system is compared with. */
  floor: SystemName | null;
}
const ALL_SYSTEMS: SystemInfo[] = [
  { name: 'direct', label: 'direct to the fake upstream', framework: null, floor: null },
  { name: 'floor-node', label: 'floor: node:http proxy', framework: 'node', floor: null },
  { name: 'floor-express', label: 'floor: proxy as an Express 5 route', framework: 'express', floor: null },
  { name: 'floor-koa', label: 'floor: proxy as a Koa 3 route', framework: 'koa', floor: null },
  { name: 'floor-nest', label: 'floor: proxy as a NestJS route', framework: 'nest', floor: null },
  { name: 'switchyard-express', label: 'Switchyard in Express', framework: 'express', floor: 'floor-express' },
  { name: 'switchyard-koa', label: 'Switchyard in Koa', framework: 'koa', floor: 'floor-koa' },
  { name: 'switchyard-nest', label: 'Switchyard in NestJS', framework: 'nest', floor: 'floor-nest' },
  { name: 'sdk-express', label: 'openai SDK route in Express (try/catch)', framework: 'express', floor: 'floor-express' },
];

type ScenarioName = 'json32' | 'json1' | 'fallback32' | 'stream8' | 'big' | 'series';
const SCENARIOS: Record<ScenarioName, string> = {
  json32: 'JSON 200, 32 connections',
  json1: 'JSON 200, 1 connection (latency)',
  fallback32: 'Fallback 429 -> Azure, 32 connections',
  stream8: 'Streaming, 20 chunks 5 ms apart, 8 connections',
  big: 'One 50 MB streamed response',
  series: `${SERIES_COUNT.toLocaleString('en')} requests in a row`,
};

interface Running {
  info: SystemInfo;
  url: string;
  pid: number;
  child: ChildProcess | null;
}

interface Run {
  rps: number;
  p50: number;
  p99: number;
  cpuUs: number;
  rssMB: number;
  errors: number;
  ttfbP50?: number;
  ttfbP99?: number;
  peakGrowthMB?: number;
  rssAtMark?: number;
  rssAtEnd?: number;
  heapAtMark?: number;
  heapAtEnd?: number;
}

const log = (msg: string) => process.stderr.write(`${msg}\n`);

function sh(cmd: string): boolean {
  return spawnSync('sh', ['-c', cmd], { stdio: 'inherit' }).status === 0;
}

/** wrk from Debian, installed when missing (root, else sudo). */
function ensureWrk(): void {
  if (sh('command -v wrk >/dev/null 2>&1')) return;
  log('wrk is missing: installing it with apt-get');
  const sudo = process.getuid?.() === 0 ? '' : 'sudo ';
  if (!sh(`${sudo}apt-get install -y wrk`) && !(sh(`${sudo}apt-get update`) && sh(`${sudo}apt-get install -y wrk`))) {
    throw new Error('Could not install wrk (apt-get install -y wrk).');
  }
}

const PINNED = cpus().length >= 2 && sh('command -v taskset >/dev/null 2>&1');
const LOAD_CPU = PINNED ? '0' : null;
const SERVER_CPU = PINNED ? '1' : null;
const pinned = (cpu: string | null, argv: string[]): [string, string[]] => (cpu === null ? [argv[0]!, argv.slice(1)] : ['taskset', ['-c', cpu, ...argv]]);

function startChild(script: string, argv: string[], cpu: string | null, env: NodeJS.ProcessEnv, nodeArgs: string[] = []): Promise<{ child: ChildProcess; msg: any }> {
  const [cmd, cmdArgs] = pinned(cpu, [process.execPath, ...nodeArgs, join(__dirname, script), ...argv]);
  const child = spawn(cmd, cmdArgs, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, ...env } });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} ${argv.join(' ')} did not start in 60 s`)), 60_000);
    child.once('message', (msg) => {
      clearTimeout(timer);
      resolve({ child, msg });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} ${argv.join(' ')} exited with ${code}`));
    });
  });
}

function ask<T>(child: ChildProcess, msg: unknown, type: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (reply: any) => {
      if (reply?.type !== type) return;
      child.off('message', on);
      resolve(reply as T);
    };
    child.on('message', on);
    child.send(msg as object);
  });
}

/** A package of the repo the runner may use: its sources exist and it builds (built here if needed). */
function packageAvailable(dir: string, name: string): string | null {
  if (!existsSync(join(ROOT, 'packages', dir, 'src/index.ts'))) return `packages/${dir}/src/index.ts does not exist yet`;
  const built = () => {
    try {
      require.resolve(name);
      return existsSync(join(ROOT, 'packages', dir, 'dist/index.js'));
    } catch {
      return false;
    }
  };
  if (!built()) {
    const r = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-b', join(ROOT, 'packages', dir)], { encoding: 'utf8' });
    if (r.status !== 0 || !built()) return `${name} does not build: ${(r.stdout + r.stderr).trim().split('\n')[0]}`;
  }
  return null;
}

function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
}
const min = (v: number[]) => Math.min(...v.filter(Number.isFinite));
const max = (v: number[]) => Math.max(...v.filter(Number.isFinite));

async function main(): Promise<void> {
  ensureWrk();
  if (PINNED) spawnSync('taskset', ['-pc', LOAD_CPU!, String(process.pid)], { stdio: 'ignore' });
  else log('Fewer than 2 cores (or no taskset): nothing is pinned, CPU figures include the load generator.');

  const only = opt('systems')?.split(',');
  const scenarioList = (opt('scenarios')?.split(',') ?? Object.keys(SCENARIOS)) as ScenarioName[];
  const skipped: string[] = [];
  const wanted = ALL_SYSTEMS.filter((s) => !only || only.includes(s.name));
  const unavailable: Partial<Record<SystemName, string>> = {};
  if (wanted.some((s) => s.framework === 'koa' || s.name === 'switchyard-koa')) {
    const koa = packageAvailable('koa', '@switchyard/koa');
    if (koa) unavailable['switchyard-koa'] = koa;
  }
  if (wanted.some((s) => s.name === 'switchyard-nest')) {
    const nest = packageAvailable('nestjs', '@switchyard/nestjs');
    if (nest) unavailable['switchyard-nest'] = nest;
  }

  const fake = await startChild('fake.js', [], LOAD_CPU, {});
  const fakeChild = fake.child;
  const openaiUrl = `http://127.0.0.1:${fake.msg.openai}`;
  const azureUrl = `http://127.0.0.1:${fake.msg.azure}`;
  const setMode = (mode: FakeMode) => ask(fakeChild, { type: 'mode', mode }, 'mode-set');
  const normalStream = { chunks: 20, intervalMs: 5, chunkBytes: 0 };
  await setMode({ openaiStatus: 200, stream: normalStream });

  const nodeArgs = ['--expose-gc', ...(process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [])];
  const running: Running[] = [];
  for (const info of wanted) {
    const why = unavailable[info.name];
    if (why) {
      skipped.push(`${info.name}: skipped, ${why}`);
      log(`skip ${info.name}: ${why}`);
      continue;
    }
    if (info.name === 'direct') {
      running.push({ info, url: openaiUrl, pid: fakeChild.pid!, child: null });
      continue;
    }
    try {
      const { child, msg } = await startChild('server.js', [info.name], SERVER_CPU, { BENCH_OPENAI: openaiUrl, BENCH_AZURE: azureUrl }, nodeArgs);
      running.push({ info, url: `http://127.0.0.1:${(msg as ChildReply & { port: number }).port}`, pid: child.pid!, child });
    } catch (err) {
      skipped.push(`${info.name}: skipped, it did not start (${(err as Error).message})`);
      log(`skip ${info.name}: ${(err as Error).message}`);
    }
  }
  log(`systems: ${running.map((r) => r.info.name).join(', ')}`);

  const results: Partial<Record<ScenarioName, Map<SystemName, Run[]>>> = {};
  const record = (sc: ScenarioName, sys: SystemName, run: Run) => {
    const m = (results[sc] ??= new Map());
    if (!m.has(sys)) m.set(sys, []);
    m.get(sys)!.push(run);
  };
  const targetUrl = (r: Running, sc: ScenarioName) => (r.info.name === 'direct' && sc === 'fallback32' ? azureUrl : r.url);
  const rotate = <T>(list: T[], by: number) => list.map((_, i) => list[(i + by) % list.length]!);

  /** Checks that a system answers as expected before it is measured (a fast error is not a fast proxy). */
  async function check(r: Running, sc: ScenarioName): Promise<void> {
    const agent = new Agent({ keepAlive: false });
    const stream = sc === 'stream8' || sc === 'big';
    const ex = await post(agent, targetUrl(r, sc), stream ? STREAM_BODY : REQUEST_BODY, 200_000);
    const ok = ex.status === 200 && (stream ? ex.body.startsWith('data: ') : ex.body.includes('"chat.completion"')) && (sc !== 'fallback32' || ex.body.includes('(Azure)'));
    if (!ok) throw new Error(`${r.info.name} answered ${ex.status} ${ex.body.slice(0, 300)} in ${sc}`);
  }

  for (const sc of scenarioList) {
    if (!(sc in SCENARIOS)) throw new Error(`unknown scenario ${sc}`);
    log(`\n== ${SCENARIOS[sc]}`);
    await setMode({
      openaiStatus: sc === 'fallback32' ? 429 : 200,
      stream: sc === 'big' ? { chunks: Math.ceil(BIG_BYTES / BIG_CHUNK), intervalMs: 0, chunkBytes: BIG_CHUNK } : normalStream,
    });
    const active: Running[] = [];
    for (const r of running) {
      try {
        await check(r, sc);
        active.push(r);
      } catch (err) {
        skipped.push(`${r.info.name} in ${sc}: ${(err as Error).message}`);
        log(`  ${(err as Error).message}`);
      }
    }

    if (sc === 'series') {
      for (const r of active) {
        let mark = { rss: NaN, heapUsed: NaN };
        const cpu0 = cpuMicros(r.pid);
        const t0 = performance.now();
        const res = await series(r.url, REQUEST_BODY, 1, 3600, SERIES_COUNT, async (n) => {
          if (n === SERIES_MARK && r.child) mark = await ask(r.child, { type: 'mem', gc: true }, 'mem');
        });
        const seconds = (performance.now() - t0) / 1000;
        const end = r.child ? await ask<{ rss: number; heapUsed: number }>(r.child, { type: 'mem', gc: true }, 'mem') : { rss: NaN, heapUsed: NaN };
        record(sc, r.info.name, {
          rps: res.count / seconds, p50: percentile(res.total, 50), p99: percentile(res.total, 99), cpuUs: (cpuMicros(r.pid) - cpu0) / res.count,
          rssMB: rssBytes(r.pid) / MB, errors: res.errors, rssAtMark: mark.rss / MB, rssAtEnd: end.rss / MB, heapAtMark: mark.heapUsed / MB, heapAtEnd: end.heapUsed / MB,
        });
        log(`  ${r.info.name}: RSS ${(mark.rss / MB).toFixed(1)} -> ${(end.rss / MB).toFixed(1)} MB, heap ${(mark.heapUsed / MB).toFixed(1)} -> ${(end.heapUsed / MB).toFixed(1)} MB`);
      }
      continue;
    }

    for (let rep = -1; rep < REPEATS; rep++) {
      const warm = rep < 0;
      if (warm && sc === 'big') continue;
      for (const r of rotate(active, Math.max(rep, 0))) {
        const url = targetUrl(r, sc);
        const cpu0 = cpuMicros(r.pid);
        let run: Run;
        if (sc === 'json32' || sc === 'json1' || sc === 'fallback32') {
          const w = await wrk(url, REQUEST_BODY, sc === 'json1' ? 1 : 32, warm ? WARMUP_SECONDS : SECONDS, LOAD_CPU);
          run = { rps: w.rps, p50: w.p50Ms, p99: w.p99Ms, cpuUs: (cpuMicros(r.pid) - cpu0) / w.requests, rssMB: rssBytes(r.pid) / MB, errors: w.errors };
        } else if (sc === 'stream8') {
          const s = await series(url, STREAM_BODY, 8, warm ? WARMUP_SECONDS : SECONDS);
          run = {
            rps: s.count / s.seconds, p50: percentile(s.total, 50), p99: percentile(s.total, 99), cpuUs: (cpuMicros(r.pid) - cpu0) / s.count,
            rssMB: rssBytes(r.pid) / MB, errors: s.errors, ttfbP50: percentile(s.ttfb, 50), ttfbP99: percentile(s.ttfb, 99),
          };
        } else {
          // 50 MB stream: the server's peak RSS above its RSS before (VmHWM after a reset, or sampled every 5 ms).
          const before = rssBytes(r.pid);
          const hwm = r.child !== null && resetPeakRss(r.pid);
          let sampled = before;
          const sampler = setInterval(() => (sampled = Math.max(sampled, rssBytes(r.pid))), 5);
          const agent = new Agent({ keepAlive: false });
          const ex = await post(agent, url, STREAM_BODY);
          clearInterval(sampler);
          const peak = Math.max(sampled, hwm ? peakRssBytes(r.pid) : 0);
          run = {
            rps: NaN, p50: ex.totalMs, p99: NaN, cpuUs: cpuMicros(r.pid) - cpu0, rssMB: rssBytes(r.pid) / MB,
            errors: ex.status === 200 && ex.bytes >= BIG_BYTES ? 0 : 1, ttfbP50: ex.ttfbMs, peakGrowthMB: r.child ? (peak - before) / MB : NaN,
          };
        }
        if (warm) continue;
        record(sc, r.info.name, run);
        log(
          `  ${r.info.name.padEnd(20)} ${Number.isFinite(run.rps) ? `${run.rps.toFixed(0)} req/s` : ''} p50 ${run.p50.toFixed(3)} ms` +
            `${run.ttfbP50 !== undefined ? ` ttfb ${run.ttfbP50.toFixed(3)} ms` : ''} cpu ${run.cpuUs.toFixed(0)} µs${run.peakGrowthMB !== undefined ? ` peak +${run.peakGrowthMB.toFixed(1)} MB` : ''}${run.errors ? ` ERRORS ${run.errors}` : ''}`,
        );
      }
    }
  }

  for (const r of running) r.child?.disconnect();
  fakeChild.disconnect();

  const report = renderReport(results, running.map((r) => r.info), skipped);
  process.stdout.write(`\n${report}\n`);
  const out = opt('out') ?? (QUICK || only || opt('scenarios') ? '-' : join(ROOT, 'BENCHMARKS.md'));
  if (out !== '-') {
    writeFileSync(out, report);
    log(`written to ${out}`);
  } else log('quick or partial run: BENCHMARKS.md not written (pass --out FILE to write it)');
}

// --- report ------------------------------------------------------------------------------------------------

type Stat = { med: number; lo: number; hi: number };
function stat(runs: Run[] | undefined, pick: (r: Run) => number | undefined): Stat {
  const v = (runs ?? []).map((r) => pick(r) ?? NaN);
  return { med: median(v), lo: min(v), hi: max(v) };
}
const f = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '—');
const range = (s: Stat, digits = 0) => (Number.isFinite(s.med) ? (s.lo === s.hi ? f(s.med, digits) : `${f(s.med, digits)} (${f(s.lo, digits)}–${f(s.hi, digits)})`) : '—');
const signed = (n: number, digits = 3) => (Number.isFinite(n) ? `${n >= 0 ? '+' : ''}${n.toFixed(digits)}` : '—');

function machine(): string {
  const model = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
  const mem = /MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1];
  return `${model}, ${cpus().length} cores, ${mem ? Math.round(Number(mem) / 1024 / 1024) : '?'} GB RAM; Linux ${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}; Node ${process.version}; ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

function renderReport(results: Partial<Record<ScenarioName, Map<SystemName, Run[]>>>, systems: SystemInfo[], skipped: string[]): string {
  const lines: string[] = [];
  const get = (sc: ScenarioName, sys: SystemName) => results[sc]?.get(sys);
  lines.push('# Benchmarks', '');
  lines.push(`Generated by \`npx -y pnpm@12.4.2 bench\`${QUICK ? ' --quick' : ''} (packages/bench). Machine: ${machine()}.`, '');
  lines.push(
    `Method: everything on loopback. The server under test runs alone on core ${SERVER_CPU ?? '(unpinned)'} (\`taskset\`); wrk 1 thread, the fake upstreams ` +
      `(OpenAI and Azure OpenAI shapes, keep-alive, precomputed replies) and the stream client share core ${LOAD_CPU ?? '(unpinned)'}. ` +
      `CPU µs/req is the server process's utime + stime (all threads, /proc/<pid>/stat) over the run divided by the requests served; ` +
      `"direct" shows the fake's own figures. Systems interleaved, ${REPEATS} repeat(s) of ${SECONDS} s after a ${WARMUP_SECONDS} s warm-up; ` +
      `median (min–max). "vs floor" divides by the same framework's floor in the same run.`,
    '',
  );
  const label = (s: SystemInfo) => `${s.name}`;

  for (const sc of ['json32', 'json1', 'fallback32'] as const) {
    if (!results[sc]) continue;
    const direct = stat(get(sc, 'direct'), (r) => r.p50).med;
    lines.push(`## ${SCENARIOS[sc]}`, '', '| system | req/s | p50 ms | p99 ms | added p50 vs direct | CPU µs/req | CPU vs floor | RSS MB |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const s of systems) {
      const runs = get(sc, s.name);
      if (!runs) continue;
      const cpu = stat(runs, (r) => r.cpuUs);
      const floorCpu = s.floor ? stat(get(sc, s.floor), (r) => r.cpuUs).med : NaN;
      const p50 = stat(runs, (r) => r.p50);
      const errors = runs.reduce((n, r) => n + r.errors, 0);
      lines.push(
        `| ${label(s)}${errors ? ` (${errors} errors)` : ''} | ${range(stat(runs, (r) => r.rps))} | ${range(p50, 3)} | ${f(stat(runs, (r) => r.p99).med, 3)} | ${s.name === 'direct' ? '—' : signed(p50.med - direct)} | ${range(cpu)} | ${s.floor ? `${f(cpu.med / floorCpu, 2)}x` : '—'} | ${f(stat(runs, (r) => r.rssMB).med)} |`,
      );
    }
    lines.push('');
  }

  if (results.stream8) {
    const directTotal = stat(get('stream8', 'direct'), (r) => r.p50).med;
    lines.push(`## ${SCENARIOS.stream8}`, '', 'Measured with a node:http client: time to the first body byte and to the end of the stream.', '');
    lines.push('| system | streams/s | TTFB p50 ms | TTFB p99 ms | TTFB vs floor | total p50 ms | total vs direct | CPU µs/stream | CPU vs floor |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const s of systems) {
      const runs = get('stream8', s.name);
      if (!runs) continue;
      const ttfb = stat(runs, (r) => r.ttfbP50);
      const floorTtfb = s.floor ? stat(get('stream8', s.floor), (r) => r.ttfbP50).med : NaN;
      const total = stat(runs, (r) => r.p50);
      const cpu = stat(runs, (r) => r.cpuUs);
      const floorCpu = s.floor ? stat(get('stream8', s.floor), (r) => r.cpuUs).med : NaN;
      lines.push(
        `| ${label(s)} | ${range(stat(runs, (r) => r.rps))} | ${range(ttfb, 3)} | ${f(stat(runs, (r) => r.ttfbP99).med, 3)} | ${s.floor ? signed(ttfb.med - floorTtfb) : '—'} | ${range(total, 2)} | ${s.name === 'direct' ? '—' : `${signed(((total.med - directTotal) / directTotal) * 100, 1)}%`} | ${range(cpu)} | ${s.floor ? `${f(cpu.med / floorCpu, 2)}x` : '—'} |`,
      );
    }
    lines.push('');
  }

  if (results.big) {
    lines.push(`## ${SCENARIOS.big}`, '', `${Math.ceil(BIG_BYTES / BIG_CHUNK)} SSE events of 64 KiB, sent as fast as the reader takes them. Peak RSS growth: the server's peak RSS during the response minus its RSS before.`, '');
    lines.push('| system | total ms | MB/s | peak RSS growth MB (max) | server CPU ms |', '| --- | ---: | ---: | ---: | ---: |');
    for (const s of systems) {
      const runs = get('big', s.name);
      if (!runs) continue;
      const total = stat(runs, (r) => r.p50);
      lines.push(`| ${label(s)} | ${range(total)} | ${f(BIG_BYTES / MB / (total.med / 1000))} | ${s.name === 'direct' ? '—' : f(stat(runs, (r) => r.peakGrowthMB).hi, 1)} | ${f(stat(runs, (r) => r.cpuUs).med / 1000)} |`);
    }
    lines.push('');
  }

  if (results.series) {
    lines.push(`## ${SCENARIOS.series}`, '', `One connection, back to back. Memory after a forced GC at request ${SERIES_MARK.toLocaleString('en')} and at the end.`, '');
    lines.push(`| system | req/s | p50 ms | CPU µs/req | RSS at ${SERIES_MARK / 1000}k MB | RSS at end MB | heap at ${SERIES_MARK / 1000}k MB | heap at end MB |`, '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const s of systems) {
      const r = get('series', s.name)?.[0];
      if (!r) continue;
      lines.push(`| ${label(s)} | ${f(r.rps)} | ${f(r.p50, 3)} | ${f(r.cpuUs)} | ${f(r.rssAtMark!, 1)} | ${f(r.rssAtEnd!, 1)} | ${f(r.heapAtMark!, 1)} | ${f(r.heapAtEnd!, 1)} |`);
    }
    lines.push('');
  }

  lines.push('## Targets', '', '| system | target | measured | met |', '| --- | --- | --- | --- |');
  const yes = (ok: boolean) => (ok ? 'met' : '**not met**');
  for (const s of systems.filter((x) => x.name.startsWith('switchyard-'))) {
    const floor = s.floor!;
    const cpuRatio = (sc: ScenarioName) => stat(get(sc, s.name), (r) => r.cpuUs).med / stat(get(sc, floor), (r) => r.cpuUs).med;
    if (results.json32) {
      const r = cpuRatio('json32');
      lines.push(`| ${s.name} | JSON 200 CPU/req ≤ 1.10x ${floor} | ${f(r, 2)}x | ${yes(r <= 1.1)} |`);
    }
    if (results.fallback32) {
      const r = cpuRatio('fallback32');
      lines.push(`| ${s.name} | fallback CPU/req ≤ 1.15x ${floor} | ${f(r, 2)}x | ${yes(r <= 1.15)} |`);
    }
    if (results.json1) {
      const d = stat(get('json1', s.name), (r) => r.p50).med - stat(get('json1', floor), (r) => r.p50).med;
      lines.push(`| ${s.name} | 1-connection p50 ≤ ${floor} + 0.05 ms | ${signed(d)} ms | ${yes(d <= 0.05)} |`);
    }
    if (results.stream8) {
      const d = stat(get('stream8', s.name), (r) => r.ttfbP50).med - stat(get('stream8', floor), (r) => r.ttfbP50).med;
      lines.push(`| ${s.name} | stream TTFB p50 ≤ ${floor} + 0.2 ms | ${signed(d)} ms | ${yes(d <= 0.2)} |`);
      const direct = stat(get('stream8', 'direct'), (r) => r.p50).med;
      const t = (stat(get('stream8', s.name), (r) => r.p50).med - direct) / direct;
      if (Number.isFinite(direct)) lines.push(`| ${s.name} | stream total p50 within 2% of direct | ${signed(t * 100, 1)}% | ${yes(t <= 0.02)} |`);
    }
    if (results.big) {
      const g = stat(get('big', s.name), (r) => r.peakGrowthMB).hi;
      lines.push(`| ${s.name} | 50 MB stream: peak RSS growth < 20 MB | ${f(g, 1)} MB | ${yes(g < 20)} |`);
    }
    if (results.series) {
      const r = get('series', s.name)?.[0];
      const fl = get('series', floor)?.[0];
      if (r) {
        // After a forced GC the heap shows a leak; RSS also moves with V8's and malloc's page retention, which the
        // floors show too: it is compared with the floor's own growth.
        const heap = r.heapAtEnd! - r.heapAtMark!;
        const rss = r.rssAtEnd! - r.rssAtMark!;
        const floorRss = fl ? fl.rssAtEnd! - fl.rssAtMark! : 0;
        lines.push(
          `| ${s.name} | no growth from ${SERIES_MARK / 1000}k to ${SERIES_COUNT / 1000}k requests (heap after GC < +1 MB, RSS < floor's growth + 5 MB) | heap ${signed(heap, 2)} MB, RSS ${signed(rss, 1)} MB (floor ${signed(floorRss, 1)} MB) | ${yes(heap < 1 && rss < floorRss + 5)} |`,
        );
      }
    }
  }
  lines.push('');
  if (skipped.length) lines.push('## Not measured', '', ...skipped.map((s) => `- ${s}`), '');
  return lines.join('\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
