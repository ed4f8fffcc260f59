import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { MemoryLogStore } from '@switchyard/core';
import type { LogEvent } from '@switchyard/express';
import { listenOnPort, missingProviderEnv, replies, startFakeAzureOpenAI, startFakeOpenAI, withProviderEnvNames, type FakeProvider } from '@switchyard/testing';
import { buildApp } from './app';
import { FAKE_KEYS, fallbackOptions } from './options';

export interface DemoResult {
  mode: 'fakes' | 'real providers';
  /** One line per request: who served it. */
  served: Array<{ request: string; target: string | null; fallback: boolean; text: string }>;
  logs: LogEvent[];
  /** What the logs API answers for trace id `demo-1` (the viewer's query). */
  found: LogEvent[];
  /** Requests that got an error (every provider failed). */
  failed: number;
}

/**
 * Starts the app, sends chat completions with the official `openai` SDK (the last one streamed) and reports who
 * served each. Without real keys, fake providers stand in and the OpenAI fake rate-limits all but the second request
 * (the stream too: a stream falls back until its first event).
 */
export async function runDemo(env: NodeJS.ProcessEnv = process.env, print: (line: string) => void = console.log): Promise<DemoResult> {
  const missing = missingProviderEnv(env);
  const real = missing.length === 0;
  // Some keys but not enough: say what is missing, and keep them away from the fakes.
  if (!real && missing.length < missingProviderEnv({}).length) print(`Not enough for the real providers (missing ${missing.join(', ')}): running on fake providers, with fake keys.`);
  const fakes: FakeProvider[] = [];
  let hosts = {};
  if (!real) {
    const openai = await startFakeOpenAI({ apiKey: FAKE_KEYS.openai, defaultReply: (_req, i) => (i === 1 ? replies.ok('Hello from OpenAI') : replies.rateLimited(1)) });
    const azure = await startFakeAzureOpenAI({ apiKey: FAKE_KEYS.azure, defaultReply: replies.ok('Hello from Azure OpenAI') });
    fakes.push(openai, azure);
    hosts = { openai: openai.baseURL, azure: azure.baseURL };
  }
  // Everything after the fakes started closes them, also when the options are refused: the process must exit.
  try {
    const logs: LogEvent[] = [];
    const store = new MemoryLogStore();
    const token = randomBytes(16).toString('hex');
    const app = buildApp(fallbackOptions(real ? env : { DEMO_MODEL: env.DEMO_MODEL }, hosts, (event) => logs.push(event)), { store, token });
    const server = createServer(app);
    await listenOnPort(server, env.PORT);
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    print(
      real
        ? `Switchyard demo on the real providers at ${url}/v1 (OpenAI rarely answers 429: most requests stay with it)`
        : `Switchyard demo on fake providers at ${url}/v1: OpenAI answers 429 to all but the second request`,
    );

    // Business code: the official SDK, pointed at the host app. Nothing else changes.
    const client = new OpenAI({ apiKey: 'unused-by-the-gateway', baseURL: `${url}/v1`, maxRetries: 0 });
    const model = env.DEMO_MODEL || 'gpt-4o-mini';
    const result: DemoResult = { mode: real ? 'real providers' : 'fakes', served: [], logs, found: [], failed: 0 };
    try {
      for (let i = 1; i <= 3; i++) {
        await reported(result, `demo-${i}`, print, async () => {
          const { data, response } = await client.chat.completions
            .create({ model, messages: [{ role: 'user', content: `Say hello (${i})` }], max_tokens: 20 }, { headers: { 'x-switchyard-trace-id': `demo-${i}` } })
            .withResponse();
          return { headers: response.headers, text: data.choices[0]?.message.content ?? '' };
        });
      }
      await reported(result, 'demo-stream', print, async () => {
        const { data: stream, response } = await client.chat.completions
          .create(
            { model, messages: [{ role: 'user', content: 'Count to five' }], max_tokens: 30, stream: true, stream_options: { include_usage: true } },
            { headers: { 'x-switchyard-trace-id': 'demo-stream' } },
          )
          .withResponse();
        let text = '';
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
        return { headers: response.headers, text };
      });
      await until(() => logs.length >= 4);
      print('\nAttempts per request (from the log events):');
      for (const event of logs) print(`${(event.traceId ?? '').padEnd(12)} ${attemptChain(event)}`);
      print('\nLog events (one per request, every attempt in it):');
      for (const event of logs) print(JSON.stringify(event));

      // The viewer's own query: find a request by trace id, fallbacks marked.
      const found = await fetch(`${url}/switchyard/logs/api/requests?traceId=demo-1`, { headers: { authorization: `Bearer ${token}` } });
      result.found = ((await found.json()) as { data: LogEvent[] }).data;
      print(`\nLogs API, trace id demo-1: found ${result.found.length}, fallback=${result.found[0]?.fallback}`);
      // The token is this run's: the link works while the app runs.
      const viewer = `${url}/switchyard/logs/?traceId=demo-1#token=${token}`;
      if (!serve(env)) print(`The app stops now: run with DEMO_SERVE=1 to keep it up and open the request logs viewer.`);
      else {
        print(`Request logs viewer (demo-1 selected): ${viewer}\nDEMO_SERVE is set: the app stays up for the viewer (Ctrl+C to stop).`);
        await new Promise<void>((resolve) => {
          const stop = () => {
            process.off('SIGINT', stop).off('SIGTERM', stop);
            resolve();
          };
          process.once('SIGINT', stop).once('SIGTERM', stop);
        });
      }
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
    return result;
  } catch (err) {
    // A refused option the environment filled is named by its variable: that is what the user wrote.
    throw withProviderEnvNames(err);
  } finally {
    await Promise.all(fakes.map((f) => f.close()));
  }
}

/** Sends one request and prints who served it, or in a line why it failed (a real provider unreachable, say). */
async function reported(result: DemoResult, request: string, print: (line: string) => void, send: () => Promise<{ headers: Headers; text: string }>): Promise<void> {
  try {
    const { headers, text } = await send();
    record(result, request, headers, text, print);
  } catch (err) {
    if (!(err instanceof OpenAI.APIError)) throw err;
    result.failed++;
    print(`${request.padEnd(12)} failed: ${err.message}`);
  }
}

function record(result: DemoResult, request: string, headers: Headers, text: string, print: (line: string) => void): void {
  const target = headers.get('x-switchyard-target');
  const fallback = headers.get('x-switchyard-fallback') === 'true';
  const who = target === 'targets[1]' ? 'Azure OpenAI' : target === 'targets[0]' ? 'OpenAI' : 'nobody';
  result.served.push({ request, target, fallback, text });
  print(`${request.padEnd(12)} served by ${who.padEnd(12)} (${target}${fallback ? ', fell back' : ''}): ${JSON.stringify(text)}`);
}

/** `DEMO_SERVE=1` (or `true`): `0`, `false` or empty leave it off. */
function serve(env: NodeJS.ProcessEnv): boolean {
  return /^(1|true|yes)$/i.test(env.DEMO_SERVE ?? '');
}

/**
 * `openai 429 rate_limit_exceeded (3 ms) -> azure-openai 200 (2 ms)`: each attempt's provider, status (or error), the
 * upstream's own error code (a rate limit, or `insufficient_quota`: an account out of credit) and time.
 */
function attemptChain(event: LogEvent): string {
  return event.attempts
    .map((a) => `${a.provider} ${a.status ?? a.error?.code ?? 'no answer'}${a.upstreamError?.code ? ` ${a.upstreamError.code}` : ''} (${Math.round(a.durationMs)} ms)`)
    .join(' -> ');
}

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  for (const end = Date.now() + ms; !cond() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 5));
}
