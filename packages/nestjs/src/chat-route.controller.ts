import { Controller, HttpCode, Inject, Post, Req, Res, VERSION_NEUTRAL, type Type } from '@nestjs/common';
import { handleNodeRequest, type Gateway } from '@switchyard/core';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RouteVersion } from './switchyard.module-definition';

/** Injection token of the module's fallback engine (here, not in the module definition, which imports this file). */
export const SWITCHYARD_GATEWAY = Symbol('SWITCHYARD_GATEWAY');

/** What `@Req()` / `@Res()` give: Node's objects on Express, wrappers holding them in `raw` on Fastify. */
type PlatformRequest = IncomingMessage & { body?: unknown; raw?: IncomingMessage };
type FastifyReplyLike = { raw: ServerResponse; hijack(): void; getHeaders(): Record<string, number | string | string[] | undefined> };
type PlatformResponse = ServerResponse | FastifyReplyLike;

/**
 * Node's response to write to. On Fastify, the reply is taken over only when Switchyard writes (keeping the headers
 * its hooks set): until then, an exception the app raises (a timeout interceptor's) is answered by Nest as usual.
 */
function nodeResponse(res: PlatformResponse): { raw: ServerResponse; beforeWrite?: () => void } {
  if (!('raw' in res) || !res.raw) return { raw: res as ServerResponse };
  const reply = res;
  const beforeWrite = () => {
    for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) reply.raw.setHeader(name, value);
    reply.hijack();
  };
  return { raw: reply.raw, beforeWrite };
}

/**
 * The OpenAI-compatible route as a controller made for its path: a controller, not a middleware, so that the app's
 * guards (auth, throttling), exception filters and global prefix apply to it. It writes the response itself
 * (`@Res()`), so interceptors run around it but see no return value; they resume once the response is handed over
 * (a JSON answer sent, a stream started), so a timing interceptor measures the request, not the handler's call.
 */
export function chatRouteController(path: string, version: RouteVersion = VERSION_NEUTRAL, decorators: readonly ClassDecorator[] = []): Type<unknown> {
  // Version-neutral unless told: an OpenAI-compatible path (`v1/chat/completions`) is what SDK clients call, and the
  // app's versioning (a URI prefix, a required header) would move or hide it.
  @Controller({ version })
  class SwitchyardChatController {
    constructor(@Inject(SWITCHYARD_GATEWAY) private readonly gateway: Gateway) {}

    @Post(path)
    // What a success answers, for what reads the route's metadata (an OpenAPI document): the handler writes its own.
    @HttpCode(200)
    chat(@Req() req: PlatformRequest, @Res() res: PlatformResponse): Promise<void> {
      // Never rejects: every failure is answered in the response.
      const { raw, beforeWrite } = nodeResponse(res);
      return handleNodeRequest(this.gateway, req.raw ?? req, raw, { parsedBody: req.body, beforeWrite });
    }
  }
  // One name per path: Nest's deep-hash module ids serialise controllers by name, and two routes must not collide. An
  // identifier, as an OpenAPI document's tag and operationId (and the client methods generated from them) use it.
  Object.defineProperty(SwitchyardChatController, 'name', { value: controllerName(path) });
  // The host's own metadata and guards for this route (`Public()`, `UseGuards(...)`), as on a controller of its own.
  for (const decorate of decorators) decorate(SwitchyardChatController);
  return SwitchyardChatController;
}

/** Controller names given, by path: two paths that read alike as identifiers (`v1/chat`, `v1-chat`) get two. */
const CONTROLLER_NAMES = new Map<string, string>();

function controllerName(given: string): string {
  // As Nest reads a path: `/v1/chat/completions` and `v1/chat/completions/` are the same route.
  const path = given.replace(/^\/+|\/+$/g, '');
  let name = CONTROLLER_NAMES.get(path);
  if (name) return name;
  const base = `SwitchyardChat_${path.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_|_$/g, '')}`;
  const taken = new Set(CONTROLLER_NAMES.values());
  name = base;
  for (let n = 2; taken.has(name); n++) name = `${base}_${n}`;
  CONTROLLER_NAMES.set(path, name);
  return name;
}
