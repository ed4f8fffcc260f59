/**
 * Typed errors with stable codes. Every error the gateway itself produces reaches the client in
 * OpenAI's envelope (`{ error: { message, type, param, code } }`), so the official SDKs raise the
 * matching `APIError` subclass.
 */

/** Stable codes of errors Switchyard produces. Users may switch on them; never rename one. */
export type SwitchyardErrorCode =
  | 'invalid_options'
  | 'invalid_json'
  | 'invalid_request'
  | 'body_too_large'
  | 'unsupported_media_type'
  | 'unknown_config'
  | 'model_not_deployed'
  | 'upstream_unreachable'
  | 'upstream_timeout'
  | 'upstream_error_too_large'
  | 'upstream_invalid_response'
  | 'upstream_error_event'
  | 'deadline_exceeded'
  | 'stream_interrupted'
  | 'client_closed'
  | 'host_answered'
  | 'loop_detected'
  | 'circuit_open'
  | 'internal_error';

/** OpenAI's error envelope, as the OpenAI API and its SDKs use it. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

const STATUS_BY_CODE: Record<SwitchyardErrorCode, number> = {
  invalid_options: 500,
  invalid_json: 400,
  invalid_request: 400,
  body_too_large: 413,
  unsupported_media_type: 415,
  unknown_config: 400,
  model_not_deployed: 400,
  upstream_unreachable: 502,
  upstream_timeout: 504,
  upstream_error_too_large: 502,
  upstream_invalid_response: 502,
  upstream_error_event: 502,
  deadline_exceeded: 504,
  stream_interrupted: 502,
  client_closed: 499,
  // Like client_closed, only ever in log events: the host app's own answer is what the client got.
  host_answered: 499,
  // RFC 5842's: a target's address leads back to the Switchyard that sent the request.
  loop_detected: 508,
  // Only on a log event's attempt: a target skipped, its circuit open (cb_config); never a response (when every
  // target's circuit is open, the breaker is bypassed).
  circuit_open: 503,
  internal_error: 500,
};

export class SwitchyardError extends Error {
  override readonly name: string = 'SwitchyardError';
  readonly code: SwitchyardErrorCode;
  /** HTTP status the gateway answers with for this error. */
  readonly status: number;
  /** The request field at fault, when there is one (OpenAI's `param`). */
  readonly param: string | null;

  constructor(code: SwitchyardErrorCode, message: string, options: { param?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = STATUS_BY_CODE[code];
    this.param = options.param ?? null;
  }

  /** Normalises anything thrown into a SwitchyardError (unknown errors become `internal_error`). */
  static from(err: unknown): SwitchyardError {
    if (err instanceof SwitchyardError) return err;
    // The message of an unknown error may carry details of the host; do not leak it to clients.
    return new SwitchyardError('internal_error', 'Internal gateway error.', { cause: err });
  }

  /** OpenAI's envelope. `type` follows OpenAI: client mistakes are `invalid_request_error`. */
  toBody(): OpenAIErrorBody {
    const type = this.status < 500 ? 'invalid_request_error' : this.status === 504 ? 'timeout_error' : 'api_error';
    return { error: { message: this.message, type, param: this.param, code: this.code } };
  }
}

/** One problem in the options, with the path of the field at fault. */
export interface OptionsIssue {
  path: string;
  message: string;
}

/** Thrown at construction when options are invalid; lists every problem with its path. */
export class SwitchyardOptionsError extends SwitchyardError {
  override readonly name = 'SwitchyardOptionsError';
  readonly issues: readonly OptionsIssue[];

  constructor(issues: OptionsIssue[]) {
    super('invalid_options', `Invalid Switchyard options:\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')}`);
    this.issues = issues;
  }
}
