/** Switchyard under koa-mount: no mount warning for what is not its POST. */
import { createServer } from 'node:http';
import Koa from 'koa';
import mount from 'koa-mount';
import request from 'supertest';
import { fallbackMiddleware } from '@switchyard/koa';
import { listen } from '../../e2e/src/support/adapters';
import { messages, sdk, seedOptions, useUpstreams } from '../../e2e/src/support/fixture';

const { up, logs, track } = useUpstreams();

// The koa-mount warning is for a POST it passes on, not for a GET / OPTIONS (a CORS preflight) to the chat path.
it("Koa: rightly mounted under koa-mount('/v1'), says nothing of a GET or a CORS preflight to the chat path", async () => {
  const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
  try {
    const app = new Koa();
    app.use(mount('/v1', fallbackMiddleware(seedOptions(up, logs, { basePath: '' }))));
    const url = track(await listen(createServer(app.callback())));
    // Passed on to the host, whose app has no such route.
    expect((await request(url).options('/v1/chat/completions')).status).toBe(404);
    expect((await request(url).get('/v1/chat/completions')).status).toBe(404);
    expect((await sdk(url).chat.completions.create({ model: 'gpt-4o', messages })).choices[0]!.message.content).toBe('Hello from openai');
    expect(warn).not.toHaveBeenCalled();
  } finally {
    warn.mockRestore();
  }
});
