import { Controller, Inject, Post, Req, Res, type Type } from '@nestjs/common';
import { handleNodeRequest, type Gateway } from '@switchyard/core';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Injection token of the module's fallback engine (here, not in the module definition, which imports this file). */
export const SWITCHYARD_GATEWAY = Symbol('SWITCHYARD_GATEWAY');

/** What `@Req()` / `@Res()` give: Node's objects on Express, wrappers holding them in `raw` on Fastify. */
type PlatformRequest = IncomingMessage & { body?: unknown; raw?: IncomingMessage };
type PlatformResponse = ServerResponse & { raw?: ServerResponse; hijack?: () => void };

/**
 * The OpenAI-compatible route as a controller made for its path: a controller, not a middleware, so that the app's
 * guards (auth, throttling), exception filters and global prefix apply to it. It writes the response itself
 * (`@Res()`), so interceptors run around it but see no return value.
 */
export function chatRouteController(path: string): Type<unknown> {
  @Controller()
  class SwitchyardChatController {
    constructor(@Inject(SWITCHYARD_GATEWAY) private readonly gateway: Gateway) {}

    @Post(path)
    chat(@Req() req: PlatformRequest, @Res() res: PlatformResponse): void {
      // Fastify: the Node objects are in `raw`, and the reply is told it is answered outside of it.
      res.hijack?.();
      void handleNodeRequest(this.gateway, req.raw ?? req, res.raw ?? res, { parsedBody: req.body });
    }
  }
  // One name per path: Nest's deep-hash module ids serialise controllers by name, and two routes must not collide.
  Object.defineProperty(SwitchyardChatController, 'name', { value: `SwitchyardChatController(${path})` });
  return SwitchyardChatController;
}
