/**
 * The options schema. The outer options object is camelCase TypeScript; routing configs and virtual keys are
 * portable JSON in Portkey's snake_case, so a Portkey config can be pasted as is. Everything is strict: an unknown
 * key is an error, not a silent no-op.
 */
import { z } from 'zod';
import type { LogEvent, LogSink } from '../log/log-event';

const statusCode = z.number().int().min(100).max(599);
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });
/** Zod runs refinements after a failed check too: a value that is no URL at all is reported by httpUrl alone. */
const urlHolds = (test: (url: URL) => boolean) => (value: string) => !URL.canParse(value) || test(new URL(value));
/** A base URL: only scheme, host, port and path are used, so anything else is refused rather than silently dropped. */
const plainUrl = urlHolds((url) => url.username === '' && url.password === '' && url.search === '' && url.hash === '');
const PLAIN_URL = 'must be a base URL without credentials, query or fragment';
// Switchyard appends the operation's path: an operation URL pasted from a provider's docs or portal would get it twice.
const baseUrl = httpUrl
  .refine(urlHolds((url) => !/\/chat\/completions\/?$/.test(url.pathname)), {
    error: 'must be the base URL, without `/chat/completions` (Switchyard appends the path)',
    abort: true,
  })
  .refine(plainUrl, PLAIN_URL);
/**
 * Azure's portal shows each deployment's "Target URI": the whole operation URL, deployment and api-version included;
 * LangChain's `azureOpenAIBasePath` ends in `/openai/deployments`.
 */
const azureEndpoint = httpUrl
  .refine(urlHolds((url) => !/\/(deployments(\/|$)|chat\/completions)/.test(url.pathname) && !url.searchParams.has('api-version')), {
    error:
      'must be the resource endpoint, e.g. `https://my-resource.openai.azure.com`: the deployment goes in `deployment_id` or `deployments`, the version in `api_version`',
    abort: true,
  })
  .refine(plainUrl, PLAIN_URL);
/** Node's timers hold at most 2^31-1 ms (~24.8 days); a longer one would fire at once. */
/** Node runs a timer with a longer delay after 1 ms: every duration option is capped here. */
export const MAX_TIMER_MS = 2_147_483_647;
const TIMER_LIMIT = 'must be at most 2147483647 (about 24.8 days)';
export const positiveMs = z.number().int().positive().max(MAX_TIMER_MS, TIMER_LIMIT);
/** Portkey's `request_timeout`: 0 reads as unset, as in its gateway (`if (requestTimeout)`). */
const requestTimeout = z
  .number()
  .int('must be a whole number of milliseconds')
  .min(0, 'must be a number of milliseconds (0: not set)')
  .max(MAX_TIMER_MS, TIMER_LIMIT);
/**
 * Sent as an HTTP header value: a line break, a control character or one beyond Latin-1 (a typographic dash or a
 * zero-width space pasted with a key) would make every request fail.
 */
const headerValue = (required?: string) =>
  // The "required" message only for a missing value: `api_key: 5` is there, just not a string.
  (required ? z.string({ error: (issue) => (issue.input === undefined ? required : 'must be a string') }) : z.string())
    .min(1, 'must not be empty')
    .regex(/^[\t\x20-\x7e\x80-\xff]*$/, 'must not contain line breaks, control characters or characters an HTTP header cannot carry');

/**
 * A key as written where an env file or a header was its source: `docker run --env-file` keeps the quotes of
 * `KEY="sk-..."`, and a value copied from an `Authorization` header starts with `Bearer `. Sent so, every request gets
 * a 401, which a fallback then hides. The messages never quote the value.
 */
const QUOTED = /^(["'`]).*\1$/s;
const apiKey = (required?: string) =>
  headerValue(required)
    .refine((key) => !QUOTED.test(key), 'must be the key itself, without the quotes around it (`docker run --env-file` keeps them)')
    .refine((key) => !/^bearer\s/i.test(key), 'must be the key itself, without `Bearer ` (Switchyard writes the header)')
    // No provider's key has them, and JSON writes them escaped: an error body quoting such a key could not be masked.
    // (A key in quotes is told so above, once.)
    .refine((key) => QUOTED.test(key) || !/["\\]/.test(key), 'must not contain `"` or `\\` (no provider key has them)');

/**
 * A deployment or resource name: one in a provider key's own form is a key pasted in the wrong field (an env file's
 * variables swapped), which would go into every log event, metric label and span. The message never quotes it.
 */
const azureName = <T extends z.ZodString>(schema: T) =>
  schema.refine((name) => !hasApiKeyForm(name), 'looks like an API key: the key goes in `api_key`');

/**
 * Azure's `api-version`: a date, with `-preview` for a preview version, or `v1`. Azure answers another (a typo, a model
 * version such as `0613`) with a 404 "Resource not found", and usually only when OpenAI fails and Azure is asked.
 */
const azureApiVersion = z
  .string()
  .regex(/^(?:\d{4}-\d{2}-\d{2}(?:-preview)?|v1)$/, 'must be an Azure OpenAI API version such as "2024-10-21" or "2025-04-01-preview", or "v1"');

/**
 * A name in one of the providers' own key forms: masked wherever an error or warning shows a name (a config id, a
 * path), as ordinary names that merely look like keys (a fine-tuned model's id, a long config id) stay readable.
 */
export function hasApiKeyForm(name: string): boolean {
  return /^(?:sk-|sess-)/.test(name) || /^[\da-f]{32}$/i.test(name);
}

/** A name that may be an API key pasted in its place: an error message then does not quote it into boot logs. */
export function looksLikeApiKey(name: string): boolean {
  // One of a known form, or what looks like one: long, mixed case with digits (`AIza...`).
  return (
    /^(?:sk-|sess-)/.test(name) ||
    /^[\da-f]{32}$/i.test(name) ||
    name.length > 40 ||
    (name.length >= 24 && /\d/.test(name) && /[a-z]/.test(name) && /[A-Z]/.test(name) && !/\s/.test(name))
  );
}

/** zod says "expected object, received number" for `retry: 3`: show the shape instead. */
const objectExpected = (example: string): z.core.$ZodErrorMap => (issue) =>
  issue.code === 'invalid_type' && issue.input !== undefined ? `must be an object such as ${example}` : undefined;

/** Per-target retries, with Portkey's meaning: `attempts` is the number of retries after the first try. */
export const retrySchema = z.strictObject(
  {
    attempts: z.number().int('must be a whole number of retries').min(0).max(10),
    /**
     * Statuses that are retried. Default: 429, 500, 502, 503, 504. Never a 429 `insufficient_quota` (an account out
     * of credit) nor an answer with `x-should-retry: false`: a retry would get the same.
     */
    on_status_codes: z.array(statusCode).min(1, 'must list at least one status (leave it out for 429 and 5xx; Portkey reads [] as retrying no status: for that, leave `retry` out)').optional(),
    /** Wait as long as `retry-after-ms` / `x-ms-retry-after-ms` / `retry-after` ask (up to the cap). Default: true. */
    use_retry_after_header: z.boolean().optional(),
  },
  { error: objectExpected('{ attempts: 3 }') },
);

/** Body parameters merged over the client's request body (parent first, then child: the child wins). */
export const overrideParamsSchema = z
  .record(z.string(), z.unknown())
  .refine(isJson, 'must be JSON-encodable (no BigInt, no cycles)')
  // The answer's kind (JSON or a stream) is the client's: an override would fail every request of the other kind.
  .refine((params) => !Object.hasOwn(params, 'stream'), 'cannot set `stream`: the client chooses a JSON answer or a stream')
  // Sent with every request, and what the log, the price and an Azure deployment map are read by.
  .superRefine((params, ctx) => {
    if (!Object.hasOwn(params, 'model')) return;
    const { model } = params;
    if (typeof model !== 'string' || model === '') {
      ctx.addIssue({ code: 'custom', message: 'must be a model name (a non-empty string)', path: ['model'] });
      return;
    }
    // Portkey's Model Catalog names the provider in the model (`@openai-prod/gpt-4o`); sent as it is, every request
    // would fail with the upstream's 404.
    const catalog = /^@([^/]+)\/(.+)$/.exec(model);
    if (catalog && (looksLikeApiKey(catalog[1]!) || hasApiKeyForm(catalog[2]!))) {
      ctx.addIssue({
        code: 'custom',
        message: "is Portkey's Model Catalog form (`@provider-slug/model`) around what looks like an API key: define a virtual key in `virtualKeys` that holds the key, and name it in `virtual_key`",
        path: ['model'],
      });
    } else if (catalog) {
      ctx.addIssue({
        code: 'custom',
        message: `"${model}" is Portkey's Model Catalog form: define virtual key "${catalog[1]}" in \`virtualKeys\` (an \`openai\` or \`azure-openai\` key: Switchyard reaches no other providers) and write \`virtual_key: "${catalog[1]}"\` with \`override_params: { model: "${catalog[2]}" }\``,
        path: ['model'],
      });
    }
  });

/** Override params are sent as JSON with every request: one that cannot be encoded fails at startup, not per request. */
function isJson(value: unknown): boolean {
  try {
    JSON.stringify(value);
    return true;
  } catch {
    return false;
  }
}

export const providerSchema = z.enum(['openai', 'azure-openai'], {
  error: (issue) =>
    typeof issue.input === 'string' && issue.input.startsWith('@')
      ? // Portkey's Model Catalog names a provider integration so; here a named credential is a virtual key.
        `must be "openai" or "azure-openai" (for Portkey's ${looksLikeApiKey(issue.input.slice(1)) ? '`@provider-slug`' : `"${issue.input}"`}, define a virtual key and name it in \`virtual_key\`)`
      : issue.input === undefined
        ? 'is required'
        : 'must be "openai" or "azure-openai"',
});

/** Fields that describe where and how to reach a provider. Used by virtual keys and by inline targets. */
const providerFields = {
  provider: providerSchema.optional(),
  api_key: apiKey().optional(),
  /** OpenAI: `OpenAI-Organization` header (Portkey's name). */
  openai_organization: headerValue().optional(),
  /** OpenAI: `OpenAI-Project` header (Portkey's name). */
  openai_project: headerValue().optional(),
  /** Azure: `https://{resource_name}.openai.azure.com`. */
  resource_name: azureName(
    z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9-]*$/, 'must be an Azure resource name (letters, digits, dashes; a URL goes in `endpoint`)'),
  ).optional(),
  /** Azure: the resource endpoint, e.g. `https://my-resource.openai.azure.com` (instead of `resource_name`). */
  endpoint: azureEndpoint.optional(),
  /** Azure: one fixed deployment for every model. */
  deployment_id: azureName(z.string().min(1)).optional(),
  /** Azure: requested model -> deployment name. A model with no entry is an error for this target. */
  deployments: z.record(z.string(), azureName(z.string().min(1))).optional(),
  /** Azure: `api-version` query parameter, or `v1` for Azure's v1 API (`/openai/v1/chat/completions`). */
  api_version: azureApiVersion.optional(),
  /** Replaces the provider's base URL (`https://api.openai.com/v1`, `https://{resource}.openai.azure.com/openai`). */
  custom_host: baseUrl.optional(),
};

export const virtualKeySchema = z.strictObject({
  ...providerFields,
  provider: providerSchema,
  api_key: apiKey('is required (read it from an environment variable)'),
});

/**
 * Portkey's circuit breaker: a target that keeps failing is skipped for `cooldown_interval` (see
 * `engine/circuit-breaker.ts`).
 */
export const circuitBreakerSchema = z
  .strictObject(
    {
      /** Failures that open a target's circuit. */
      failure_threshold: z.number().int('must be a whole number of failures').min(1).optional(),
      /** Failure rate in percent that opens a target's circuit (once `minimum_requests` were counted). */
      failure_threshold_percentage: z.number().gt(0, 'must be a percentage above 0').max(100, 'must be a percentage (at most 100)').optional(),
      /** ms a circuit stays open, and over which failures are counted; as in Portkey, at least 30000 (a shorter one counts as 30000). */
      cooldown_interval: z
        .number({ error: (issue) => (issue.input === undefined ? 'is required: how long, in ms, a failing target is skipped (at least 30000)' : undefined) })
        .int()
        .positive()
        .max(MAX_TIMER_MS, TIMER_LIMIT),
      /** Statuses that count as failures. Default: every status >= 500. A request with no answer always counts. */
      failure_status_codes: z.array(statusCode).min(1, 'must list at least one status (leave it out for every status >= 500)').optional(),
      /** Requests counted (within `cooldown_interval`) before `failure_threshold_percentage` is read. Default 5, as in Portkey. */
      minimum_requests: z.number().int('must be a whole number of requests').min(1).optional(),
    },
    { error: objectExpected('{ failure_threshold: 5, cooldown_interval: 60000 }') },
  )
  .refine((cb) => cb.failure_threshold !== undefined || cb.failure_threshold_percentage !== undefined, {
    error: 'needs `failure_threshold` or `failure_threshold_percentage` (what opens a circuit)',
  })
  .refine((cb) => cb.minimum_requests === undefined || cb.failure_threshold_percentage !== undefined, {
    error: '`minimum_requests` applies to `failure_threshold_percentage` only: give one, or leave `minimum_requests` out',
    path: ['minimum_requests'],
  });

/** Strategy of a routing config. `single` uses its first target only; `loadbalance` picks one by `weight`. */
export const strategySchema = z.strictObject(
  {
    mode: z.enum(['fallback', 'single', 'loadbalance'], {
      error: (issue) => (issue.input === undefined ? 'is required' : 'must be "fallback", "single" or "loadbalance" (Portkey\'s "conditional" is not supported)'),
    }),
    /** Statuses that move a request to the next target (fallback mode only). Default: every status >= 400. */
    on_status_codes: z.array(statusCode).min(1, 'must list at least one status (leave it out to fall back on every status >= 400; Portkey reads [] as never falling back: for that, use mode "single")').optional(),
    /** Skip a target that keeps failing for a while. Inherited by nested strategies that set none. */
    cb_config: circuitBreakerSchema.optional(),
  },
  { error: objectExpected('{ mode: "fallback" }') },
);

/**
 * A target, and also a routing config: a provider (by `virtual_key` or inline fields) or a nested
 * `{ strategy, targets }`. Which fields may be combined is checked when targets are resolved.
 */
interface TargetShape<Strategy, Retry> {
  strategy?: Strategy | undefined;
  targets?: Array<TargetShape<Strategy, Retry>> | undefined;
  virtual_key?: string | undefined;
  provider?: z.infer<typeof providerSchema> | undefined;
  api_key?: string | undefined;
  openai_organization?: string | undefined;
  openai_project?: string | undefined;
  resource_name?: string | undefined;
  endpoint?: string | undefined;
  deployment_id?: string | undefined;
  deployments?: Record<string, string> | undefined;
  api_version?: string | undefined;
  custom_host?: string | undefined;
  override_params?: Record<string, unknown> | undefined;
  retry?: Retry | undefined;
  /** Timeout of one attempt in ms: until the whole JSON body, or a stream's first whole event, arrived. 0: not set. */
  request_timeout?: number | undefined;
  weight?: number | undefined;
}

/** A target as validated (what the resolver reads). */
export type TargetConfig = TargetShape<z.infer<typeof strategySchema>, z.infer<typeof retrySchema>>;
/** A target as written in options: typed, so that an editor checks a config written apart from the options object. */
export type TargetConfigInput = TargetShape<z.input<typeof strategySchema>, z.input<typeof retrySchema>>;

/**
 * Portkey's SDK also takes a saved config's id (`pc-…`) or the config as a JSON string; zod alone would say only
 * "expected object, received string".
 */
const targetExpected: z.core.$ZodErrorMap = (issue) => {
  if (issue.code !== 'invalid_type' || issue.input === undefined) return undefined;
  if (typeof issue.input === 'string') {
    return 'must be an object, not a string: Switchyard has no saved config ids (`pc-…`), so paste the config itself (a JSON string: `JSON.parse` it first)';
  }
  return 'must be an object such as { virtual_key: "openai-prod" } or { strategy: { mode: "fallback" }, targets: [...] }';
};

const targetObject = z.strictObject({
  strategy: strategySchema.optional(),
  get targets() {
    return z.array(targetSchema).min(1, 'must list at least one target').optional();
  },
  virtual_key: z.string().min(1).optional(),
  ...providerFields,
  override_params: overrideParamsSchema.optional(),
  retry: retrySchema.optional(),
  request_timeout: requestTimeout.optional(),
  weight: z.number().min(0).optional(),
}, { error: targetExpected });
export const targetSchema: z.ZodType<TargetConfig, TargetConfigInput> = targetObject;
/** The keys of a target, for the "did you mean" hint of an unknown option. */
export const TARGET_KEYS: readonly string[] = Object.keys(targetObject.shape);

/** A routing config has the shape of a target: usually `{ strategy, targets }`. */
export const routingConfigSchema = targetSchema;

const fn = <T>(what: string) =>
  z.custom<T>((v) => typeof v === 'function', { error: `must be a function (${what})` });

const logSinkSchema = z.custom<LogSink>(
  (v) => typeof v === 'object' && v !== null && typeof (v as { write?: unknown }).write === 'function',
  { error: 'must be a log sink: an object with write(event)' },
);

const priceSchema = z.strictObject({ prompt: z.number().min(0), completion: z.number().min(0), cached: z.number().min(0).optional() });
/** The keys of a price, for the "did you mean" hint of an unknown option. */
export const PRICE_KEYS: readonly string[] = Object.keys(priceSchema.shape);

export const optionsSchema = z.strictObject({
  /** Named server-side credentials; the provider is inferred from them. */
  virtualKeys: z.record(z.string().min(1), virtualKeySchema).optional(),
  /** The default routing config. Without it, every request must name a config in `x-switchyard-config`. */
  config: routingConfigSchema.optional(),
  /** Named routing configs, chosen per request with the `x-switchyard-config` header. */
  configs: z.record(z.string().min(1), routingConfigSchema).optional(),
  /** Route prefix: the gateway serves `POST {basePath}/chat/completions`. Default `/v1`. */
  basePath: z
    .string()
    .regex(/^(\/[^/?#\s]+)*\/?$/, 'must be a path such as /v1 (or "" or "/")')
    .optional(),
  /** The simplest log sink: called once per request, after the response ended. May be async (drain() waits for it, up to 30 s); its errors are ignored. */
  onLog: fn<(event: LogEvent) => void>('event => void').optional(),
  /** More log sinks (stores, files, loggers); each gets every event. */
  logSinks: z.array(logSinkSchema).optional(),
  /** Largest accepted request body in bytes. Default 10 MiB. */
  maxBodyBytes: z.number().int().positive().optional(),
  /** Deadline for the whole request (every retry and fallback) until the response starts, in ms. Default 590000: under the openai SDK's default timeout. */
  deadlineMs: positiveMs.optional(),
  /** Upper bound of one wait between retries, in ms. A `retry-after` longer than this skips to the next target. Default 8000. */
  maxRetryDelayMs: z.number().int().min(0).max(MAX_TIMER_MS, TIMER_LIMIT).optional(),
  /**
   * Prices in USD per 1M tokens, by model (`'gpt-4o'`) or by provider and model (`'azure-openai/gpt-4o'`), used for
   * `costUsd` before the built-in table (OpenAI's list prices); `cached` prices prompt tokens read from the prompt cache
   * (default: `prompt`). A model with no price logs `costUsd: null`.
   */
  prices: z.record(z.string().min(1), priceSchema).optional(),
});

/** Options as a user writes them. */
export type SwitchyardOptions = z.input<typeof optionsSchema>;
export type VirtualKeyConfig = z.infer<typeof virtualKeySchema>;
export type RoutingConfig = TargetConfigInput;
export type RetryConfig = z.infer<typeof retrySchema>;
export type CircuitBreakerConfig = z.infer<typeof circuitBreakerSchema>;
export type ProviderName = z.infer<typeof providerSchema>;
