/**
 * Instructions per request of one server under test, counted by valgrind's callgrind: unlike CPU time, the count
 * does not move when other processes share the machine, so it can justify (or refute) a hot-path change.
 * Instrumentation is switched on only after a warm-up, for a fixed number of requests on 4 connections.
 *
 *   node packages/bench/dist/instructions.js <system> [json|fallback|stream] [requests=2000] [warmup=3000]
 */
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { series } from './measure';
import { REQUEST_BODY, STREAM_BODY, type FakeMode } from './shared';

async function main(): Promise<void> {
  const [system = 'switchyard-express', scenario = 'json', requestsArg, warmupArg] = process.argv.slice(2);
  const requests = Number(requestsArg ?? 2000);
  const warmup = Number(warmupArg ?? 3000);
  const fake = spawn(process.execPath, [join(__dirname, 'fake.js')], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ports = await new Promise<{ openai: number; azure: number }>((resolve) => fake.once('message', resolve as never));
  const mode: FakeMode = { openaiStatus: scenario === 'fallback' ? 429 : 200, stream: { chunks: 20, intervalMs: 0, chunkBytes: 0 } };
  fake.send({ type: 'mode', mode });

  const dir = mkdtempSync(join(tmpdir(), 'callgrind-'));
  const server = spawn(
    'valgrind',
    ['--tool=callgrind', '--instr-atstart=no', '--smc-check=all-non-file', `--callgrind-out-file=${dir}/out.%p`, process.execPath, join(__dirname, 'server.js'), system],
    {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: { ...process.env, BENCH_OPENAI: `http://127.0.0.1:${ports.openai}`, BENCH_AZURE: `http://127.0.0.1:${ports.azure}` },
    },
  );
  server.stderr!.resume();
  const { port } = await new Promise<{ port: number }>((resolve) => server.once('message', resolve as never));
  const url = `http://127.0.0.1:${port}`;
  const body = scenario === 'stream' ? STREAM_BODY : REQUEST_BODY;
  await series(url, body, 4, 3600, warmup);
  spawnSync('callgrind_control', ['-i', 'on', String(server.pid)], { stdio: 'ignore' });
  const res = await series(url, body, 4, 3600, requests);
  spawnSync('callgrind_control', ['-i', 'off', String(server.pid)], { stdio: 'ignore' });
  server.disconnect();
  await new Promise((resolve) => server.once('exit', resolve));
  fake.disconnect();
  let ir = 0;
  for (const f of readdirSync(dir)) {
    const text = readFileSync(join(dir, f), 'utf8');
    const m = /^totals:\s+(\d+)/m.exec(text) ?? /^summary:\s+(\d+)/m.exec(text);
    if (m) ir += Number(m[1]);
  }
  console.log(`${system} ${scenario}: ${(ir / res.count / 1000).toFixed(1)} k instructions/request (${res.count} requests, ${res.errors} errors)`);
}

void main();
