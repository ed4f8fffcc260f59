/** Measurement tools: /proc readers, wrk, and a node:http client for streams and long request series. */
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROUTE } from './shared';

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU of a process (all its threads) in microseconds, from /proc/<pid>/stat. */
export function cpuMicros(pid: number): number {
  // Each thread's time on a CPU in ns (schedstat): /proc/<pid>/stat counts in 10 ms ticks, 7 % of a 19-stream round.
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    if (Number.isFinite(ns) && ns > 0) return ns / 1000;
  } catch {
    // no schedstat (a kernel without CONFIG_SCHED_INFO): ticks below
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces: count fields after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLK_TCK; // utime, stime (fields 14 and 15)
}

function statusKb(pid: number, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}
export const rssBytes = (pid: number): number => statusKb(pid, 'VmRSS') * 1024;
export const peakRssBytes = (pid: number): number => statusKb(pid, 'VmHWM') * 1024;
/** Resets VmHWM to the current RSS (Linux clear_refs "5"); false where the kernel refuses. */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

// --- wrk ---------------------------------------------------------------------------------------------------

export interface WrkResult {
  requests: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

let luaPath: string | undefined;
/** wrk sends GETs without a body unless a Lua script says otherwise: written once to a temp file. */
function luaScript(body: string): string {
  if (luaPath) return luaPath;
  luaPath = join(tmpdir(), `switchyard-bench-${process.pid}.lua`);
  writeFileSync(
    luaPath,
    [
      'wrk.method = "POST"',
      `wrk.body = ${JSON.stringify(body)}`,
      'wrk.headers["Content-Type"] = "application/json"',
      'wrk.headers["Authorization"] = "Bearer sk-unused"',
      '',
    ].join('\n'),
  );
  return luaPath;
}

function toMs(value: string, unit: string): number {
  const n = Number(value);
  return unit === 'us' ? n / 1000 : unit === 'ms' ? n : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : NaN;
}

export function parseWrk(out: string): WrkResult {
  const lat = (p: string) => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    return m ? toMs(m[1]!, m[2]!) : NaN;
  };
  const total = /(\d+) requests in/.exec(out);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const sockErrors = sock ? sock.slice(1).reduce((s, v) => s + Number(v), 0) : 0;
  return {
    requests: total ? Number(total[1]) : 0,
    rps: rps ? Number(rps[1]) : 0,
    p50Ms: lat('50'),
    p99Ms: lat('99'),
    errors: (non2xx ? Number(non2xx[1]) : 0) + sockErrors,
  };
}

/** Runs wrk pinned to `cpu` against `url`, POSTing the benchmark body. */
export function wrk(url: string, body: string, connections: number, seconds: number, cpu: string | null): Promise<WrkResult> {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', luaScript(body), `${url}${ROUTE}`];
  const [cmd, argv] = cpu === null ? ['wrk', args] : ['taskset', ['-c', cpu, 'wrk', ...args]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv as string[], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(parseWrk(out)) : reject(new Error(`wrk exited with ${code}: ${out}`))));
  });
}

// --- node:http client --------------------------------------------------------------------------------------

export interface Exchange {
  status: number;
  ttfbMs: number;
  totalMs: number;
  bytes: number;
  body: string;
}

/** One POST; `keep` keeps up to that many bytes of the body for checks. */
export function post(agent: Agent, url: string, body: string, keep = 0): Promise<Exchange> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(`${url}${ROUTE}`, {
      agent,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: 'Bearer sk-unused' },
    });
    req.on('response', (res) => {
      let ttfb = NaN;
      let bytes = 0;
      let text = '';
      res.on('data', (chunk: Buffer) => {
        if (bytes === 0) ttfb = performance.now() - t0;
        bytes += chunk.length;
        if (text.length < keep) text += chunk.toString('utf8', 0, Math.min(chunk.length, keep - text.length));
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ttfbMs: ttfb, totalMs: performance.now() - t0, bytes, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export interface SeriesResult {
  count: number;
  errors: number;
  seconds: number;
  ttfb: number[];
  total: number[];
}

/** `connections` loops of back-to-back POSTs for `seconds` (or until `maxCount` exchanges in all). */
export async function series(url: string, body: string, connections: number, seconds: number, maxCount = Infinity, onCount?: (n: number) => Promise<void> | void): Promise<SeriesResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const ttfb: number[] = [];
  const total: number[] = [];
  let errors = 0;
  let count = 0;
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  const loop = async () => {
    while (performance.now() < until && count < maxCount) {
      count++;
      try {
        const ex = await post(agent, url, body);
        if (ex.status !== 200) errors++;
        ttfb.push(ex.ttfbMs);
        total.push(ex.totalMs);
      } catch {
        errors++;
      }
      if (onCount) await onCount(count);
    }
  };
  await Promise.all(Array.from({ length: connections }, loop));
  agent.destroy();
  return { count, errors, seconds: (performance.now() - t0) / 1000, ttfb: ttfb.sort((a, b) => a - b), total: total.sort((a, b) => a - b) };
}
