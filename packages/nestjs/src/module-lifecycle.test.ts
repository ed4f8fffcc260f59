/** The Nest module's async forms, logs under a global prefix, the exception filter after a handler's own stream, and app.close(). */
import 'reflect-metadata';
import { Controller, Get, Inject, Injectable, Module, Post, Res } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { ServerResponse } from 'node:http';
import { Test } from '@nestjs/testing';
import { MemoryLogStore } from '@switchyard/core';
import { replies } from '@switchyard/testing';
import { listenNest, nestPlatforms, type RunningApp } from '../../e2e/src/support/adapters';
import { seedOptions, useUpstreams } from '../../e2e/src/support/fixture';
import { SwitchyardExceptionFilter, SwitchyardModule, SwitchyardService, type SwitchyardModuleOptions } from './index';

const { up } = useUpstreams();
const options = (): SwitchyardModuleOptions => seedOptions(up, []);

// forRootAsync's useExisting / useClass (Nest's builder takes them) are not refused as unknown keys.
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
    up.openai.enqueue(replies.rateLimited());
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

describe.each(nestPlatforms)("SwitchyardExceptionFilter after a handler that ends its own stream, on Nest's %s platform", (_platform, create) => {
  @Controller()
  class Relay {
    constructor(@Inject(SwitchyardService) private readonly switchyard: SwitchyardService) {}
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
    @Module({ imports: [SwitchyardModule.forRoot(options())], controllers: [Relay] })
    class AppModule {}
    const nest = await create(AppModule);
    nest.useGlobalFilters(new SwitchyardExceptionFilter());
    app = await listenNest(nest);
  });
  afterAll(() => app.close());

  // A response the handler already ended is left alone: the app stays up and answers the next request.
  it('leaves alone a stream the handler ended itself (in finally) before the error reached it; the app stays up', async () => {
    up.openai.enqueue(replies.stream({ chunks: ['Hel', 'lo', ' there'], cutAfter: 1, intervalMs: 20 }));
    const cut = await fetch(`${app.url}/relayed-finally`, { method: 'POST' });
    expect(await cut.text()).toContain('"content":"Hel"');
    await new Promise((r) => setTimeout(r, 100));
    up.openai.enqueue(replies.stream({ chunks: ['Hel', 'lo'] }));
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
    up.openai.enqueue({ delayMs: 300 });
    const call = app.get(SwitchyardService).createChatCompletion({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
    while (up.openai.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
    await app.close();
    expect(logged).toHaveLength(1);
    expect(warn).not.toHaveBeenCalled();
    await call;
  } finally {
    warn.mockRestore();
  }
});

// app.close() returns once the sinks' flush has finished (SQLite's writes go through a worker: flush takes a while).
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
