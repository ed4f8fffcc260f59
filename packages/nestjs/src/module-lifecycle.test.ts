/** The Nest module's async forms, logs under a global prefix, the exception filter made with new, and app.close(). */
import 'reflect-metadata';
import { Controller, Get, Inject, Injectable, Module, Post, Res } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { ServerResponse } from 'node:http';
import { Test } from '@nestjs/testing';
import { MemoryLogStore } from '@switchyard/core';
import { replies, startFakeAzureOpenAI, startFakeOpenAI, type FakeProvider } from '@switchyard/testing';
import { listenNest, nestPlatforms, type RunningApp } from '../../e2e/src/support/adapters';
import { SwitchyardExceptionFilter, SwitchyardModule, SwitchyardService, type SwitchyardModuleOptions } from './index';

const hosts = { openai: '', azure: '' };
const options = (): SwitchyardModuleOptions => ({
  virtualKeys: {
    'openai-prod': { provider: 'openai', api_key: 'sk-o', custom_host: hosts.openai },
    'azure-prod': { provider: 'azure-openai', api_key: 'az', custom_host: hosts.azure, deployments: { 'gpt-4o': 'gpt4o-prod' } },
  },
  config: { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] },
});

let openai: FakeProvider;
let azure: FakeProvider;
beforeAll(async () => {
  [openai, azure] = await Promise.all([startFakeOpenAI({ name: 'openai' }), startFakeAzureOpenAI({ name: 'azure' })]);
  hosts.openai = openai.baseURL;
  hosts.azure = azure.baseURL;
});
afterAll(() => Promise.all([openai.close(), azure.close()]));
beforeEach(() => {
  openai.reset();
  azure.reset();
});

// ForRootAsync's useExisting / useClass (Nest's builder takes them) are not refused as unknown keys.
it('forRootAsync takes useExisting and useClass, as Nest documents them', async () => {
  @Injectable()
  class SwitchyardConfig {
    create(): SwitchyardModuleOptions {
      return options();
    }
  }
  @Module({ providers: [SwitchyardConfig], exports: [SwitchyardConfig] })
  class ConfigModule {}
  for (const asyncOptions of [{ imports: [ConfigModule], useExisting: SwitchyardConfig }, { useClass: SwitchyardConfig }]) {
    const moduleRef = await Test.createTestingModule({ imports: [SwitchyardModule.forRootAsync(asyncOptions)] }).compile();
    openai.enqueue(replies.rateLimited());
    const completion = await moduleRef.get(SwitchyardService).createChatCompletion({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
    expect(completion.choices[0]!.message.content).toBe('Hello from azure');
    await moduleRef.close();
  }
});

const TOKEN = 'a-long-enough-viewer-token';

// The logs middleware on Nest's Express platform, under a global prefix.
it("leaves the app's own route below the logs path to the app under a global prefix, and looks up an id as it was given", async () => {
  @Controller('switchyard/logs')
  class Extra {
    @Get('extra')
    extra(): { host: boolean } {
      return { host: true };
    }
  }
  const store = new MemoryLogStore();
  @Module({ imports: [SwitchyardModule.forRoot({ ...options(), logSinks: [store], logs: { path: 'switchyard/logs', store, token: TOKEN } })], controllers: [Extra] })
  class AppModule {}
  const nest = await NestFactory.create(AppModule, { logger: false, forceCloseConnections: true });
  nest.setGlobalPrefix('api');
  const app = await listenNest(nest);
  try {
    const extra = await fetch(`${app.url}/api/switchyard/logs/extra`);
    expect([extra.status, await extra.json()]).toEqual([200, { host: true }]);
    const odd = await fetch(`${app.url}/api/switchyard/logs/api/requests/${encodeURIComponent('a?b')}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(odd.status).toBe(404);
  } finally {
    await app.close();
  }
});

describe.each(nestPlatforms)("SwitchyardExceptionFilter on Nest's %s platform", (_platform, create) => {
  @Controller()
  class Summaries {
    constructor(@Inject(SwitchyardService) private readonly switchyard: SwitchyardService) {}
    @Post('summaries')
    async summarise(): Promise<unknown> {
      return this.switchyard.createChatCompletion({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
    }
    /** Relays SSE itself and ends the response in `finally`, as much relay code does, before the error reaches the filter. */
    @Post('relayed-finally')
    async relayed(@Res() res: ServerResponse | { raw: ServerResponse }): Promise<void> {
      const raw = 'raw' in res ? res.raw : res;
      const stream = await this.switchyard.createChatCompletion({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], stream: true });
      raw.writeHead(200, { 'content-type': 'text/event-stream' });
      try {
        for await (const chunk of stream) raw.write(`data: ${JSON.stringify(chunk)}\n\n`);
        raw.write('data: [DONE]\n\n');
      } finally {
        raw.end();
      }
    }
  }
  let app: RunningApp;
  beforeAll(async () => {
    @Module({ imports: [SwitchyardModule.forRoot(options())], controllers: [Summaries] })
    class AppModule {}
    const nest = await create(AppModule);
    nest.useGlobalFilters(new SwitchyardExceptionFilter());
    app = await listenNest(nest);
  });
  afterAll(() => app.close());

  // Made with new (no HttpAdapterHost), its JSON answer is labelled JSON, so the SDK reads the error.
  it('labels the JSON error it answers as application/json when made with new', async () => {
    openai.enqueue(replies.rateLimited());
    azure.enqueue(replies.rateLimited());
    const res = await fetch(`${app.url}/summaries`, { method: 'POST' });
    expect([res.status, res.headers.get('content-type')]).toEqual([429, expect.stringMatching(/^application\/json/)]);
  });

  // A response the handler already ended is left alone: the app stays up and answers the next request.
  it('leaves alone a stream the handler ended itself (in finally) before the error reached it; the app stays up', async () => {
    openai.enqueue(replies.stream({ chunks: ['Hel', 'lo', ' there'], cutAfter: 1, intervalMs: 20 }));
    const cut = await fetch(`${app.url}/relayed-finally`, { method: 'POST' });
    expect(await cut.text()).toContain('"content":"Hel"');
    await new Promise((r) => setTimeout(r, 100));
    openai.enqueue(replies.stream({ chunks: ['Hel', 'lo'] }));
    const next = await fetch(`${app.url}/relayed-finally`, { method: 'POST' });
    expect(await next.text()).toContain('[DONE]');
  });
});

// By default (shutdownDrainMs absent: 10 s), app.close() waits for a request in flight and logs it first.
it('waits by default at app.close() for a request in flight, which logs before the close returns, with no warning', async () => {
  const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
  const logged: unknown[] = [];
  try {
    const app = await NestFactory.create(SwitchyardModule.forRoot({ ...options(), onLog: (e) => void logged.push(e) }), { logger: false });
    await app.init();
    openai.enqueue({ delayMs: 300 });
    const call = app.get(SwitchyardService).createChatCompletion({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
    while (openai.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
    await app.close();
    expect(logged).toHaveLength(1);
    expect(warn).not.toHaveBeenCalled();
    await call;
  } finally {
    warn.mockRestore();
  }
});

// App.close() returns once the sinks' flush has finished (SQLite's writes go through a worker: flush takes a while).
it('resolves app.close() only after a sink whose flush takes a while has written out its queue', async () => {
  const written: unknown[] = [];
  const queued: unknown[] = [];
  const sink = {
    write: (e: unknown) => void queued.push(e),
    flush: async () => {
      await new Promise((r) => setTimeout(r, 30));
      written.push(...queued.splice(0));
    },
  };
  const app = await NestFactory.create(SwitchyardModule.forRoot({ ...options(), logSinks: [sink] }), { logger: false });
  await app.init();
  await app.get(SwitchyardService).createChatCompletion({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
  await new Promise((r) => setTimeout(r, 20));
  await app.close();
  expect([queued.length, written.length]).toEqual([0, 1]);
});
