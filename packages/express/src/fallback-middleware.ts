import { Gateway, handleNodeRequest, type SwitchyardOptions } from '@switchyard/core';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

/**
 * Express middleware serving `POST {basePath}/chat/completions` through Switchyard's fallback engine; every other
 * request goes to `next()`. Works with or without `express.json()` in front. Invalid options throw here, at startup.
 */
export function fallbackMiddleware(options: SwitchyardOptions): RequestHandler {
  const gateway = new Gateway(options);
  const route = `${gateway.options.basePath}/chat/completions`;
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.method !== 'POST' || (req.path !== route && req.path !== `${route}/`)) return next();
    void handleNodeRequest(gateway, req, res, { parsedBody: req.body });
  };
}
