/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, e.g. BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" on a run):
 * self time by package (switchyard core, express, koa, undici, node internals, GC...) and the top functions.
 *
 *   node packages/bench/dist/profile.js FILE.cpuprofile [top=25]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function area(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)' || fn === '(program)') return fn;
  if (!url) return 'native/V8';
  const pkg = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (/packages\/core\//.test(url)) return 'switchyard core';
  if (/packages\/(express|koa|nestjs)\//.test(url)) return `switchyard ${/packages\/(express|koa|nestjs)\//.exec(url)![1]}`;
  if (/packages\/bench\//.test(url)) return 'bench server';
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:internal/')) return `node:internal/${url.slice(14).split('/').slice(0, 2).join('/')}`;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  return url;
}

const STOP_GAP_US = 50_000;

function main(): void {
  const [file, topArg] = process.argv.slice(2);
  if (!file) throw new Error('usage: profile.js FILE.cpuprofile [top]');
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  // A sample's time is the gap since the one before (about 1 ms). The bench stops a server (SIGSTOP) while another
  // is measured, the sampler with it: the first sample after a stop carries the whole stop, which would be charged
  // to whatever function happened to run then (close, processTimers: seconds each). Such gaps are left out.
  let stopped = 0;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    if (delta > STOP_GAP_US) stopped += delta;
    else self.set(id, (self.get(id) ?? 0) + delta);
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const idle = [...self.entries()].filter(([id]) => byId.get(id)!.callFrame.functionName === '(idle)').reduce((a, [, t]) => a + t, 0);
  const busy = total - idle;

  const areas = new Map<string, number>();
  const fns = new Map<string, number>();
  for (const [id, t] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    if (functionName === '(idle)') continue;
    const a = area(url, functionName);
    areas.set(a, (areas.get(a) ?? 0) + t);
    const key = `${functionName || '(anonymous)'} ${url.replace(/^.*node_modules\//, '').replace(/^.*packages\//, '')}:${lineNumber + 1}`;
    fns.set(key, (fns.get(key) ?? 0) + t);
  }
  const pct = (t: number) => `${((t / busy) * 100).toFixed(1).padStart(5)}%`;
  console.log(`busy ${(busy / 1000).toFixed(0)} ms of ${(total / 1000).toFixed(0)} ms sampled (${(stopped / 1000).toFixed(0)} ms stopped, left out)\n\nself time by area:`);
  for (const [a, t] of [...areas].sort((x, y) => y[1] - x[1])) console.log(`  ${pct(t)}  ${a}`);
  console.log('\ntop functions (self):');
  for (const [k, t] of [...fns].sort((x, y) => y[1] - x[1]).slice(0, Number(topArg ?? 25))) console.log(`  ${pct(t)}  ${k}`);
}

main();
