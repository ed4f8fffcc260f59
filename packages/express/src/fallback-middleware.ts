import { Gateway, handleNodeRequest, type SwitchyardOptions } from '@switchyard/core';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

/**
 * Express middleware serving `POST {basePath}/chat/completions` through Switchyard's fallback engine; every other
 * request goes to `next()`. Works with or without `express.json()` in front. Invalid options throw here, at startup.
 */
export function fallbackMiddleware(options: SwitchyardOptions): RequestHandler {
  const gateway = new Gateway(options);
  const route = gateway.options.chatPath;
  const routeSlash = `${route}/`;
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.method !== 'POST') return next();
    // `req.url` equal to the route (no query) saves Express's `req.path` getter, which parses the URL (issue 5).
    if (req.url !== route) {
      const path = req.path;
      if (path !== route && path !== routeSlash) return next();
    }
    void handleNodeRequest(gateway, req, res, { parsedBody: req.body });
  };
}
