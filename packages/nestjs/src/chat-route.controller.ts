import { Controller, Inject, Post, Req, Res, type Type } from '@nestjs/common';
import { handleNodeRequest, type Gateway } from '@switchyard/core';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Injection token of the module's fallback engine (here, not in the module definition, which imports this file). */
export const SWITCHYARD_GATEWAY = Symbol('SWITCHYARD_GATEWAY');

/** What `@Req()` / `@Res()` give: Node's objects on Express, wrappers holding them in `raw` on Fastify. */
type PlatformRequest = IncomingMessage & { body?: unknown; raw?: IncomingMessage };
type FastifyReplyLike = { raw: ServerResponse; hijack(): void; getHeaders(): Record<string, number | string | string[] | undefined> };
type PlatformResponse = ServerResponse | FastifyReplyLike;

/** Node's response to write to. On Fastify, the reply is taken over, keeping the headers its hooks already set. */
function nodeResponse(res: PlatformResponse): ServerResponse {
  if (!('raw' in res) || !res.raw) return res as ServerResponse;
  for (const [name, value] of Object.entries(res.getHeaders())) if (value !== undefined) res.raw.setHeader(name, value);
  res.hijack();
  return res.raw;
}

/**
 * The OpenAI-compatible route as a controller made for its path: a controller, not a middleware, so that the app's
 * guards (auth, throttling), exception filters and global prefix apply to it. It writes the response itself
 * (`@Res()`), so interceptors run around it but see no return value; they resume once the response is handed over
 * (a JSON answer sent, a stream started), so a timing interceptor measures the request, not the handler's call.
 */
export function chatRouteController(path: string): Type<unknown> {
  @Controller()
  class SwitchyardChatController {
    constructor(@Inject(SWITCHYARD_GATEWAY) private readonly gateway: Gateway) {}

    @Post(path)
    chat(@Req() req: PlatformRequest, @Res() res: PlatformResponse): Promise<void> {
      // Never rejects: every failure is answered in the response.
      return handleNodeRequest(this.gateway, req.raw ?? req, nodeResponse(res), { parsedBody: req.body });
    }
  }
  // One name per path: Nest's deep-hash module ids serialise controllers by name, and two routes must not collide.
  Object.defineProperty(SwitchyardChatController, 'name', { value: `SwitchyardChatController(${path})` });
  return SwitchyardChatController;
}
