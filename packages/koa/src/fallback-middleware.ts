import { Gateway, handleNodeRequest, type SwitchyardOptions } from '@switchyard/core';
import type { Middleware } from 'koa';

/**
 * Koa middleware serving `POST {basePath}/chat/completions` through Switchyard's fallback engine; everything
 * else goes to `next()`. Works with or without a body parser in front. The response is written straight to
 * Node's `res` (`ctx.respond = false`), so SSE streams flow chunk by chunk and a client abort reaches the upstream.
 */
export function fallbackMiddleware(options: SwitchyardOptions): Middleware {
  const gateway = new Gateway(options);
  return async (ctx, next) => {
    if (ctx.method !== 'POST' || !gateway.isChatPath(ctx.path)) return next();
    ctx.respond = false;
    // A body parser (e.g. @koa/bodyparser) leaves the parsed body on ctx.request.body.
    await handleNodeRequest(gateway, ctx.req, ctx.res, { parsedBody: (ctx.request as { body?: unknown }).body });
  };
}
