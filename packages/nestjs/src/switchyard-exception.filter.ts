import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { FallbackRequestError } from '@switchyard/core';

/** Headers that describe the body the filter does not send: the platform sets its own. */
const BODY_HEADERS = new Set(['content-type', 'content-length', 'content-encoding', 'transfer-encoding']);

/**
 * Answers a `FallbackRequestError` that a handler let through (from `SwitchyardService`) as the OpenAI-compatible route
 * would: its status (a 429 stays a 429, with its `retry-after`), the same error body and the `x-switchyard-*`
 * headers (the trace id finds its log event), instead of Nest's bare 500. Opt in, on the Express or Fastify platform:
 * `app.useGlobalFilters(new SwitchyardExceptionFilter(app.get(HttpAdapterHost)))`, an `APP_FILTER` provider or
 * `@UseFilters(SwitchyardExceptionFilter)`. Outside HTTP (microservices, websockets) it rethrows the error.
 */
@Catch(FallbackRequestError)
export class SwitchyardExceptionFilter implements ExceptionFilter<FallbackRequestError> {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(err: FallbackRequestError, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw err;
    const adapter = this.adapterHost.httpAdapter;
    const res: unknown = host.switchToHttp().getResponse();
    // Part of a streamed answer went out already (the handler piped the stream): only ending it is left.
    if (adapter.isHeadersSent(res)) {
      adapter.end(res);
      return;
    }
    // The body is the error's, not the upstream's: its type and framing are the platform's to set (a stream's
    // `text/event-stream` would make Fastify refuse the object).
    for (const [name, value] of Object.entries(err.headers)) if (!BODY_HEADERS.has(name)) adapter.setHeader(res, name, value);
    adapter.reply(res, err.body, err.status);
  }
}
