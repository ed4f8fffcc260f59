import { gatewayFrom, handleNodeRequest, handleParserError, type Gateway, type SwitchyardOptions } from '@switchyard/core';
import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express';

/**
 * What `fallbackMiddleware` returns, for `app.use` (which takes the pair as it is): the chat route, then an error
 * handler that answers in OpenAI's error format when a JSON parser in front (`express.json()`) refused the body of
 * a chat request, instead of Express's error page. Every other error goes on to the app's own error handling.
 */
export type FallbackMiddleware = [RequestHandler, ErrorRequestHandler];

/**
 * Express middleware serving `POST {basePath}/chat/completions` through Switchyard's fallback engine; every other
 * request goes to `next()`. Works with or without `express.json()` in front. Invalid options throw here, at startup.
 * Given a `Gateway` instead, it serves through that one (shared with an in-process client; `gateway.drain()` on shutdown).
 */
export function fallbackMiddleware(options: SwitchyardOptions | Gateway): FallbackMiddleware {
  const gateway = gatewayFrom(options);
  const route = gateway.options.chatPath;
  // `req.url` equal to the route (no query) saves Express's `req.path` getter, which parses the URL (issue 5).
  const isChatRequest = (req: Request): boolean => req.method === 'POST' && (req.url === route || gateway.isChatPath(req.path));
  // Named for what an APM's Express instrumentation shows ("middleware - switchyardFallback").
  const switchyardFallback: RequestHandler = (req, res, next) => {
    if (!isChatRequest(req)) {
      if (req.method === 'POST') {
        // Run as a route's own handler (a Router's `post('/chat/completions', ...)`): that route was meant for us.
        // `req.route` stays set by any route matched before (a CORS catch-all), hence the look at its handlers.
        if (isRouteOf(req, switchyardFallback)) gateway.warnRouteMismatch(req.path, undefined, (req.route as { path?: unknown }).path);
        // Under `app.use('/v1', ...)`, with the full path given as basePath: Express passed on the path past the mount.
        else if (req.baseUrl !== '') gateway.warnIfMounted(req.path, req.baseUrl + req.path);
      }
      return next();
    }
    void handleNodeRequest(gateway, req, res, { parsedBody: req.body });
  };
  return [
    switchyardFallback,
    (err: unknown, req: Request, res: Response, next: NextFunction) => {
      if (!isChatRequest(req) || !handleParserError(gateway, err, req, res)) next(err);
    },
  ];
}

/** Whether the route Express is running is one `handler` belongs to. */
function isRouteOf(req: Request, handler: RequestHandler): boolean {
  const stack = (req.route as { stack?: Array<{ handle?: unknown }> } | undefined)?.stack;
  return stack?.some((layer) => layer.handle === handler) ?? false;
}
