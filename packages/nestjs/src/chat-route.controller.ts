import { Controller, Inject, Post, Req, Res, type Type } from '@nestjs/common';
import { handleNodeRequest, type Gateway } from '@switchyard/core';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Injection token of the module's fallback engine (here, not in the module definition, which imports this file). */
export const SWITCHYARD_GATEWAY = Symbol('SWITCHYARD_GATEWAY');

/**
 * The OpenAI-compatible route as a controller made for its path: a controller, not a middleware, so that the app's
 * guards (auth, throttling), interceptors and global prefix apply to it. It writes the response itself (`@Res()`).
 */
export function chatRouteController(path: string): Type<unknown> {
  @Controller()
  class SwitchyardChatController {
    constructor(@Inject(SWITCHYARD_GATEWAY) private readonly gateway: Gateway) {}

    @Post(path)
    chat(@Req() req: IncomingMessage & { body?: unknown }, @Res() res: ServerResponse): void {
      void handleNodeRequest(this.gateway, req, res, { parsedBody: req.body });
    }
  }
  return SwitchyardChatController;
}
