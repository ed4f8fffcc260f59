import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import type { LogEvent } from '@switchyard/koa';
import { listenOnPort, missingProviderEnv, replies, startFakeAzureOpenAI, startFakeOpenAI, withProviderEnvNames } from '@switchyard/testing';
import { buildApp, FAKE_KEYS, fallbackOptions, type Hosts } from './app';

/** Runs the Koa app; without real keys on fakes where OpenAI rate-limits every other request. Returns who served what. */
export async function main(env = process.env, print: (line: string) => void = console.log): Promise<{ targets: string[]; logs: LogEvent[] }> {
  // Real providers need both keys and where the Azure resource is; anything less runs on the fakes, with fake keys.
  const missing = missingProviderEnv(env);
  const real = missing.length === 0;
  if (!real && missing.length < missingProviderEnv({}).length) print(`Not enough for the real providers (missing ${missing.join(', ')}): running on fake providers, with fake keys.`);
  const fakes = real
    ? []
    : [await startFakeOpenAI({ apiKey: FAKE_KEYS.openai, defaultReply: (_r, i) => (i % 2 === 0 ? replies.rateLimited() : replies.ok()) }), await startFakeAzureOpenAI({ apiKey: FAKE_KEYS.azure })];
  const hosts: Hosts = fakes.length ? { openai: fakes[0]!.baseURL, azure: fakes[1]!.baseURL } : {};
  const logs: LogEvent[] = [];
  const targets: string[] = [];
  let server: Server | undefined;
  // Everything after the fakes started closes them, also when the options are refused: the process must exit.
  try {
    print(`Koa app with Switchyard on ${real ? 'real providers' : 'fake providers (OpenAI answers 429 to every other request)'}`);
    const listening = createServer(buildApp(fallbackOptions(real ? env : { DEMO_MODEL: env.DEMO_MODEL }, hosts, (e) => logs.push(e))).callback());
    server = listening;
    await listenOnPort(listening, env.PORT);
    const client = new OpenAI({ apiKey: 'unused', baseURL: `http://127.0.0.1:${(listening.address() as AddressInfo).port}/v1`, maxRetries: 0 });
    for (const stream of [false, true]) {
      const params = { model: env.DEMO_MODEL || 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'Say hello' }] };
      let response: Response;
      try {
        if (stream) {
          const res = await client.chat.completions.create({ ...params, stream: true }).withResponse();
          for await (const _chunk of res.data); // read the stream to its end
          response = res.response;
        } else {
          response = (await client.chat.completions.create(params).withResponse()).response;
        }
      } catch (err) {
        // Every provider failed (a real one unreachable, say): a line, not a stack.
        if (!(err instanceof OpenAI.APIError)) throw err;
        targets.push('failed');
        print(`${stream ? 'stream' : 'json  '} request failed: ${err.message}`);
        continue;
      }
      const target = response.headers.get('x-switchyard-target') ?? '?';
      targets.push(target);
      print(`${stream ? 'stream' : 'json  '} request served by ${target === 'targets[1]' ? 'Azure OpenAI (fell back)' : target === 'targets[0]' ? 'OpenAI' : 'nobody'}`);
    }
    // A log event is emitted once the server saw its response end, a moment after the client did.
    for (let i = 0; i < 100 && logs.length < targets.length; i++) await new Promise((r) => setTimeout(r, 10));
  } catch (err) {
    // A refused option the environment filled is named by its variable: that is what the user wrote.
    throw withProviderEnvNames(err);
  } finally {
    server?.close();
    await Promise.all(fakes.map((f) => f.close()));
  }
  for (const event of logs) print(JSON.stringify(event));
  return { targets, logs };
}

if (require.main === module) {
  main()
    .then(({ targets }) => {
      if (targets.includes('failed')) process.exitCode = 1;
    })
    .catch((err: unknown) => {
      // A refused option or a busy port is a sentence for the user, not a stack.
      console.error(err instanceof Error ? `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}` : err);
      process.exitCode = 1;
    });
}
