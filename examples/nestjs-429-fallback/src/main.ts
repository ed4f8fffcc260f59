import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import OpenAI from 'openai';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenOnPort, missingProviderEnv, replies, startFakeAzureOpenAI, startFakeOpenAI, withProviderEnvNames } from '@switchyard/testing';
import { appModule, FAKE_KEYS, switchyardOptions, type Hosts } from './app.module';

/** Starts the Nest app (on fakes without real keys: OpenAI rate-limits every other request) and calls it twice. */
export async function main(env = process.env, print: (line: string) => void = console.log): Promise<{ summary: string; routeTarget: string | null }> {
  // Real providers need both keys and where the Azure resource is; anything less runs on the fakes, with fake keys.
  const missing = missingProviderEnv(env);
  const real = missing.length === 0;
  if (!real && missing.length < missingProviderEnv({}).length) print(`Not enough for the real providers (missing ${missing.join(', ')}): running on fake providers, with fake keys.`);
  const fakes = real
    ? []
    : [await startFakeOpenAI({ apiKey: FAKE_KEYS.openai, defaultReply: (_r, i) => (i % 2 === 0 ? replies.rateLimited() : replies.ok()) }), await startFakeAzureOpenAI({ apiKey: FAKE_KEYS.azure })];
  const hosts: Hosts = fakes.length ? { openai: fakes[0]!.baseURL, azure: fakes[1]!.baseURL } : {};
  let app: NestExpressApplication | undefined;
  // Everything after the fakes started closes them, also when the options are refused: the process must exit.
  try {
    print(`NestJS app with Switchyard on ${real ? 'real providers' : 'fake providers (OpenAI answers 429 to every other request)'}`);
    // abortOnError off: refused options reject here (and the fakes close) instead of aborting the process. Nest's
    // logger off: this script prints what happens, and a refused option once, as a sentence (below), not with a stack
    // (even with only warnings on, Nest's ExceptionHandler prints it). An app of your own keeps its logger.
    const options = switchyardOptions(real ? env : { DEMO_MODEL: env.DEMO_MODEL }, hosts);
    const model = env.DEMO_MODEL || 'gpt-4o-mini';
    app = await NestFactory.create<NestExpressApplication>(appModule(options, model), { logger: false, abortOnError: false });
    // Nest's JSON parser runs before the route and stops at 100 kB by default: long chat histories are larger.
    app.useBodyParser('json', { limit: '10mb' });
    await app.init();
    // As the other examples: a PORT that is no port, or one in use, is a sentence.
    const server = app.getHttpServer() as Server;
    await listenOnPort(server, env.PORT);
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // 1. The business endpoint, which injects SwitchyardService.
    const res = await fetch(`${url}/summaries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'Switchyard moves failing requests to the next provider.' }) });
    const answer = (await res.json()) as { summary?: string; error?: { message?: string } };
    const summary = answer.summary ?? '';
    // Every provider failed (a real one unreachable, say): the error's message, not `undefined`.
    print(`POST /summaries -> ${res.status} ${answer.summary !== undefined ? JSON.stringify(summary) : (answer.error?.message ?? JSON.stringify(answer))}`);
    // 2. The OpenAI-compatible route, with the official SDK.
    const client = new OpenAI({ apiKey: 'unused', baseURL: `${url}/v1`, maxRetries: 0 });
    let routeTarget: string | null = null;
    try {
      const { data, response } = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Say hello' }] }).withResponse();
      routeTarget = response.headers.get('x-switchyard-target');
      const who = routeTarget === 'targets[1]' ? 'Azure OpenAI (fell back)' : routeTarget === 'targets[0]' ? 'OpenAI' : 'nobody';
      print(`POST /v1/chat/completions -> served by ${who}: ${JSON.stringify(data.choices[0]?.message.content)}`);
    } catch (err) {
      if (!(err instanceof OpenAI.APIError)) throw err;
      print(`POST /v1/chat/completions -> failed: ${err.message}`);
    }
    return { summary, routeTarget };
  } catch (err) {
    // A refused option the environment filled is named by its variable: that is what the user wrote.
    throw withProviderEnvNames(err);
  } finally {
    await app?.close();
    await Promise.all(fakes.map((f) => f.close()));
  }
}

if (require.main === module) {
  main()
    .then(({ summary, routeTarget }) => {
      if (!summary || !routeTarget) process.exitCode = 1;
    })
    .catch((err: unknown) => {
      // A refused option or a busy port is a sentence for the user, not a stack.
      console.error(err instanceof Error ? `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}` : err);
      process.exitCode = 1;
    });
}
