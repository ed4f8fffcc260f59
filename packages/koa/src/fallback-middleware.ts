import { gatewayFrom, handleNodeRequest, type Gateway, type SwitchyardOptions } from '@switchyard/core';
import type { Middleware } from 'koa';

/**
 * Koa middleware serving `POST {basePath}/chat/completions` through Switchyard's fallback engine; everything
 * else goes to `next()`. Works with or without a body parser in front. A JSON answer goes out through Koa, as any
 * route's; a stream is written straight to Node's `res` (`ctx.respond = false`), so it flows chunk by chunk. A client
 * abort reaches the upstream either way.
 * Given a `Gateway` instead, it serves through that one (shared with an in-process client; `gateway.drain()` on shutdown).
 */
export function fallbackMiddleware(options: SwitchyardOptions | Gateway): Middleware {
  const gateway = gatewayFrom(options);
  // Named for what an APM's Koa instrumentation shows ("middleware - switchyardFallback").
  const switchyardFallback: Middleware = async (ctx, next) => {
    if (ctx.method !== 'POST' || !gateway.isChatPath(ctx.path)) {
      if (ctx.method === 'POST') {
        // Run as @koa/router's route handler (`router.post('/v1/chat/completions', ...)`): that route was meant for us.
        const route = routeOf(ctx, switchyardFallback);
        if (route !== null) gateway.warnRouteMismatch(ctx.path, undefined, route);
        // Under koa-mount's `mount('/v1', ...)`, with the full path given as basePath: the mount was cut from ctx.path.
        else if (ctx.path !== ctx.originalUrl) gateway.warnIfMounted(ctx.path, ctx.originalUrl.split('?', 1)[0]!);
      }
      return next();
    }
    // Koa's own reply is given up only when a stream of ours starts: a timeout middleware in front that answers
    // through ctx.status and ctx.body before then (and stops the upstream call) is answered by Koa as the host meant.
    // The status is Koa's too, for the access log or metrics middleware in front that reads ctx.status.
    const takeOver = (status: number) => {
      ctx.status = status;
      ctx.respond = false;
    };
    // A JSON answer Koa sends, as any route's: middleware in front may still set headers and cookies after next().
    let handedOver = false;
    const respond = (status: number, headers: Record<string, string>, body: Buffer) => {
      handedOver = true;
      ctx.status = status;
      ctx.set(headers);
      ctx.body = body;
      // Koa labels a Buffer as binary: an upstream's answer that came without a content-type goes on without one.
      if (headers['content-type'] === undefined) ctx.remove('Content-Type');
    };
    // A body parser (e.g. @koa/bodyparser) leaves the parsed body on ctx.request.body.
    // A reply Koa is piping meanwhile (a timeout middleware's streamed ctx.body: a Node stream, or in Koa 3 a web
    // ReadableStream, a fetch Response or a Blob) is Koa's to finish.
    const hostFinishes = () => {
      const body: unknown = ctx.body;
      return typeof (body as { pipe?: unknown } | null)?.pipe === 'function' || body instanceof ReadableStream || body instanceof Response || body instanceof Blob;
    };
    await handleNodeRequest(gateway, ctx.req, ctx.res, { parsedBody: (ctx.request as { body?: unknown }).body, beforeWrite: takeOver, hostFinishes, respond });
    // Streamed by us, or ended for a client that left (ctx.status then reads 499): nothing for Koa to write after this.
    if (!handedOver) ctx.respond = false;
  };
  return switchyardFallback;
}

/** The path of the route @koa/router matched (`ctx.matched`, its layers) that runs `middleware`, or null. */
function routeOf(ctx: object, middleware: Middleware): string | null {
  const layers = (ctx as { matched?: unknown }).matched as Array<{ stack?: unknown[]; path?: unknown }> | undefined;
  const layer = Array.isArray(layers) ? layers.find((l) => l.stack?.includes(middleware) === true) : undefined;
  return layer === undefined ? null : String(layer.path);
}
