/** Switchyard under koa-mount: no mount warning for what is not its POST. */
import { createServer } from 'node:http';
import Koa from 'koa';
import mount from 'koa-mount';
import { fallbackMiddleware } from '@switchyard/koa';
import { listen } from '../../e2e/src/support/adapters';
import { expectServedWithoutMountWarning, seedOptions, useUpstreams } from '../../e2e/src/support/fixture';

const { up, logs, track } = useUpstreams();

// The koa-mount warning is for a POST it passes on, not for a GET / OPTIONS (a CORS preflight) to the chat path.
it("Koa: rightly mounted under koa-mount('/v1'), says nothing of a GET or a CORS preflight to the chat path", async () => {
  const app = new Koa();
  app.use(mount('/v1', fallbackMiddleware(seedOptions(up, logs, { basePath: '' }))));
  const url = track(await listen(createServer(app.callback())));
  await expectServedWithoutMountWarning(url);
});
