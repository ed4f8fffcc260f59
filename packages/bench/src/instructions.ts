/**
 * Instructions per request of one server under test, counted by valgrind's callgrind: unlike CPU time, the count
 * does not move when the machine is busy or its speed drifts, so it can confirm (or refute) a small ratio that CPU
 * time on a shared VM cannot resolve. Instrumentation is switched on only after a warm-up, for a fixed number of
 * requests on 4 connections. Each count starts its own fake upstreams, so two counts can run side by side.
 *
 *   node packages/bench/dist/instructions.js <system> [json|fallback|stream] [requests=2000] [warmup=3000]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { series } from './measure';
import { REQUEST_BODY, STREAM_BODY, SYSTEM_NAMES, type FakeMode, type SystemName } from './shared';

export type CountScenario = 'json' | 'fallback' | 'stream';

export interface InstructionCount {
  /** Thousands of instructions per request, all threads of the server. */
  kPerRequest: number;
  requests: number;
  errors: number;
}

export const valgrindAvailable = (): boolean => spawnSync('sh', ['-c', 'command -v valgrind >/dev/null 2>&1']).status === 0;

/** `cpu` pins the server (valgrind) to one core, so that two counts side by side do not share one. */
export async function countInstructions(system: SystemName, scenario: CountScenario, requests = 2000, warmup = 3000, cpu?: string): Promise<InstructionCount> {
  const fake = spawn(process.execPath, [join(__dirname, 'fake.js')], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ports = await new Promise<{ openai: number; azure: number }>((resolve) => fake.once('message', resolve as never));
  const mode: FakeMode = { openaiStatus: scenario === 'fallback' ? 429 : 200, stream: { chunks: 20, intervalMs: 0, chunkBytes: 0 } };
  fake.send({ type: 'mode', mode });

  const dir = mkdtempSync(join(tmpdir(), 'callgrind-'));
  const server = spawn(
    cpu === undefined ? 'valgrind' : 'taskset',
    [...(cpu === undefined ? [] : ['-c', cpu, 'valgrind']), '--tool=callgrind', '--instr-atstart=no', '--smc-check=all-non-file', `--callgrind-out-file=${dir}/out.%p`, process.execPath, join(__dirname, 'server.js'), system],
    {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: { ...process.env, BENCH_OPENAI: `http://127.0.0.1:${ports.openai}`, BENCH_AZURE: `http://127.0.0.1:${ports.azure}` },
    },
  );
  server.stderr!.resume();
  try {
    const { port } = await new Promise<{ port: number }>((resolve, reject) => {
      server.once('message', resolve as never);
      server.once('exit', (code) => reject(new Error(`${system} under valgrind exited with ${code}`)));
    });
    const url = `http://127.0.0.1:${port}`;
    const body = scenario === 'stream' ? STREAM_BODY : REQUEST_BODY;
    await series(url, body, 4, 3600, warmup);
    spawnSync('callgrind_control', ['-i', 'on', String(server.pid)], { stdio: 'ignore' });
    const res = await series(url, body, 4, 3600, requests);
    spawnSync('callgrind_control', ['-i', 'off', String(server.pid)], { stdio: 'ignore' });
    server.disconnect();
    await new Promise((resolve) => server.once('exit', resolve));
    let ir = 0;
    for (const f of readdirSync(dir)) {
      const text = readFileSync(join(dir, f), 'utf8');
      const m = /^totals:\s+(\d+)/m.exec(text) ?? /^summary:\s+(\d+)/m.exec(text);
      if (m) ir += Number(m[1]);
    }
    return { kPerRequest: ir / res.count / 1000, requests: res.count, errors: res.errors };
  } finally {
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    fake.disconnect();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const [system = 'switchyard-express', scenario = 'json', requestsArg, warmupArg] = process.argv.slice(2);
  // Checked here: a wrong name would otherwise count the JSON scenario, or fail under valgrind with no reason given.
  // `direct` is the fake upstream itself: no server process to count.
  const systems: readonly string[] = SYSTEM_NAMES.filter((name) => name !== 'direct');
  if (!systems.includes(system) || !['json', 'fallback', 'stream'].includes(scenario)) {
    console.error(`usage: node packages/bench/dist/instructions.js <${systems.join('|')}> <json|fallback|stream> [requests] [warm-up requests]`);
    process.exit(2);
  }
  countInstructions(system as SystemName, scenario as CountScenario, Number(requestsArg ?? 2000), Number(warmupArg ?? 3000)).then(
    (r) => console.log(`${system} ${scenario}: ${r.kPerRequest.toFixed(1)} k instructions/request (${r.requests} requests, ${r.errors} errors)`),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
