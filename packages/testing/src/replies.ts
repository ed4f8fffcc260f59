import type { FakeReply, FakeStreamOptions } from './types';

/** Small builders for common scripted replies. */
export const replies = {
  /** 429 with OpenAI rate-limit headers; `retry-after` only when a value is given. */
  rateLimited(retryAfterSeconds?: number): FakeReply {
    const headers: Record<string, string> = {
      'x-ratelimit-limit-requests': '60',
      'x-ratelimit-remaining-requests': '0',
      'x-ratelimit-reset-requests': `${retryAfterSeconds ?? 1}s`,
    };
    if (retryAfterSeconds !== undefined) headers['retry-after'] = String(retryAfterSeconds);
    return { status: 429, headers };
  },
  /**
   * Azure OpenAI's 429 for a deployment over its tokens-per-minute quota: its own body (`code: '429'`, no `type`) and
   * headers (`retry-after` and `retry-after-ms`, remaining requests and tokens), as Azure sends them (checked 2026-11
   * against the errors users report). Switchyard waits `retry-after-ms` before a retry.
   */
  azureRateLimited(retryAfterSeconds = 6): FakeReply {
    return {
      status: 429,
      headers: {
        'retry-after': String(retryAfterSeconds),
        'retry-after-ms': String(retryAfterSeconds * 1000),
        'x-ratelimit-remaining-requests': '79',
        'x-ratelimit-remaining-tokens': '0',
      },
      body: {
        error: {
          code: '429',
          message: `Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after ${retryAfterSeconds} seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.`,
        },
      },
    };
  },
  /**
   * OpenAI's 429 for an account out of credit or over its spending limit (`insufficient_quota`), as OpenAI sends it:
   * no retry-after, since no wait cures it. Switchyard does not retry it and tells the SDK not to either.
   */
  insufficientQuota(): FakeReply {
    return {
      status: 429,
      body: {
        error: {
          message: 'You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.',
          type: 'insufficient_quota',
          param: null,
          code: 'insufficient_quota',
        },
      },
    };
  },
  serverError(status = 500): FakeReply {
    return { status };
  },
  ok(content?: string): FakeReply {
    return content === undefined ? { status: 200 } : { status: 200, content };
  },
  stream(opts: FakeStreamOptions = {}): FakeReply {
    return { stream: opts };
  },
  /**
   * Azure's 400 for a prompt its content filters block (`code: 'content_filter'`, in OpenAI's envelope with
   * `innererror`): a client error, which a 429-only config must not fall back on.
   */
  contentFilter(): FakeReply {
    return { status: 400, body: CONTENT_FILTER_ERROR };
  },
};

/** As Azure's content-filtering documentation shows it (learn.microsoft.com, "Content filtering", checked 2026-11). */
const CONTENT_FILTER_ERROR = {
  error: {
    message:
      "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
    type: null,
    param: 'prompt',
    code: 'content_filter',
    status: 400,
    innererror: {
      code: 'ResponsibleAIPolicyViolation',
      content_filter_result: {
        hate: { filtered: true, severity: 'high' },
        self_harm: { filtered: false, severity: 'safe' },
        sexual: { filtered: false, severity: 'safe' },
        violence: { filtered: false, severity: 'safe' },
      },
    },
  },
};

const ERRORS: Record<number, [type: string, code: string | null, message: string]> = {
  400: ['invalid_request_error', null, 'Bad request.'],
  401: ['invalid_request_error', 'invalid_api_key', 'Incorrect API key provided.'],
  403: ['invalid_request_error', 'unsupported_country_region_territory', 'Country, region, or territory not supported.'],
  404: ['invalid_request_error', 'model_not_found', 'The model does not exist or you do not have access to it.'],
  408: ['invalid_request_error', null, 'Request timed out.'],
  409: ['invalid_request_error', null, 'Conflict.'],
  413: ['invalid_request_error', null, 'Request too large.'],
  422: ['invalid_request_error', null, 'Unprocessable entity.'],
  429: ['requests', 'rate_limit_exceeded', 'Rate limit reached for requests. Please try again later.'],
  500: ['server_error', null, 'The server had an error while processing your request. Sorry about that!'],
  502: ['server_error', null, 'Bad gateway.'],
  503: ['server_error', null, 'The server is overloaded or not ready yet.'],
  504: ['server_error', null, 'Gateway timeout.'],
};

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: null; code: string | null };
}

/** OpenAI error envelope for a status; `message` overrides the stock message, `code` the stock code. */
export function errorBody(status: number, message?: string, code?: string | null): OpenAIErrorBody {
  const [type, stockCode, stock] =
    ERRORS[status] ?? (status >= 500 ? ERRORS[500]! : ['invalid_request_error', null, `Error ${status}.`]);
  return { error: { message: message ?? stock, type, param: null, code: code === undefined ? stockCode : code } };
}

/** Azure OpenAI's error envelope: only `code` (for most statuses, the status itself) and `message`. */
export interface AzureErrorBody {
  error: { code: string; message: string };
}

const AZURE_ERRORS: Record<number, string> = {
  401: 'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.',
  404: 'Resource not found',
  429: 'Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 1 second.',
  500: 'The server had an error processing your request.',
};

/** Azure's answer for a deployment name the resource does not have. */
export const DEPLOYMENT_NOT_FOUND: AzureErrorBody = {
  error: {
    code: 'DeploymentNotFound',
    message: 'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.',
  },
};

export function azureErrorBody(status: number, message?: string): AzureErrorBody {
  // A status without a stock text of its own: a client error is not described as a server error.
  const stock = AZURE_ERRORS[status] ?? (status >= 500 ? AZURE_ERRORS[500]! : `The request was refused (status ${status}).`);
  return { error: { code: String(status), message: message ?? stock } };
}

/** What Azure's content filters report on a prompt or a choice that passed them. */
export const CONTENT_FILTER_RESULTS = {
  hate: { filtered: false, severity: 'safe' },
  self_harm: { filtered: false, severity: 'safe' },
  sexual: { filtered: false, severity: 'safe' },
  violence: { filtered: false, severity: 'safe' },
};
export const PROMPT_FILTER_RESULTS = [{ prompt_index: 0, content_filter_results: CONTENT_FILTER_RESULTS }];

export function completionBody(id: string, model: string, content: string, created: number, azure = false) {
  const choice = { index: 0, message: { role: 'assistant', content, refusal: null }, logprobs: null, finish_reason: 'stop' };
  return {
    id,
    object: 'chat.completion',
    created,
    model,
    // Azure adds its content filters' verdicts on the prompt and on each choice.
    ...(azure && { prompt_filter_results: PROMPT_FILTER_RESULTS }),
    choices: [azure ? { ...choice, content_filter_results: CONTENT_FILTER_RESULTS } : choice],
    usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
  };
}

const FILLER = 'lorem ipsum dolor sit amet consectetur adipiscing elit ';

/** Content pieces of a stream: explicit pieces, or `content` cut into N near-equal slices. */
export function streamPieces(opts: FakeStreamOptions, content: string): string[] {
  let pieces: string[];
  if (Array.isArray(opts.chunks)) pieces = opts.chunks.slice();
  else {
    const n = Math.max(1, Math.floor(opts.chunks ?? 3));
    pieces = [];
    for (let i = 0; i < n; i++) {
      pieces.push(content.slice(Math.floor((i * content.length) / n), Math.floor(((i + 1) * content.length) / n)));
    }
  }
  const target = opts.chunkBytes;
  if (target !== undefined && target > 0) {
    pieces = pieces.map((p) => {
      const missing = target - Buffer.byteLength(p);
      if (missing <= 0) return p;
      return p + FILLER.repeat(Math.ceil(missing / FILLER.length)).slice(0, missing);
    });
  }
  return pieces;
}
