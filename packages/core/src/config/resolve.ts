/**
 * Target resolver: validates options once, at construction, and turns each routing config into a tree of
 * ready-to-run nodes (virtual keys resolved to provider endpoints, override params merged parent -> child,
 * retry and timeout inherited from the nearest ancestor that sets them).
 */
import type { z } from 'zod';
import { SwitchyardOptionsError, type OptionsIssue } from '../errors';
import type { LogSink } from '../log/log-event';
import { PriceTable } from '../log/pricing';
import { azureOpenAIEndpoint } from '../providers/azure-openai';
import { openAIEndpoint } from '../providers/openai';
import { isProviderHost, maskedKey, redact, type ProviderEndpoint } from '../providers/provider';
import { Circuit, MIN_COOLDOWN_MS, type CircuitPolicy } from '../engine/circuit-breaker';
import {
  circuitBreakerSchema,
  hasApiKeyForm,
  looksLikeApiKey,
  optionsSchema,
  retrySchema,
  routingConfigSchema,
  strategySchema,
  PRICE_KEYS,
  TARGET_KEYS,
  virtualKeySchema,
  type CircuitBreakerConfig,
  type ProviderName,
  type RetryConfig,
  type SwitchyardOptions,
  type TargetConfig,
  type VirtualKeyConfig,
} from './schema';

/** Portkey's default retry statuses. */
export const DEFAULT_RETRY_STATUS_CODES: readonly number[] = [429, 500, 502, 503, 504];

export interface RetryPolicy {
  attempts: number;
  onStatusCodes: ReadonlySet<number>;
  useRetryAfterHeader: boolean;
}

export interface LeafNode {
  kind: 'target';
  /** Path in the routing config, e.g. `targets[1]`; `config` for a config that is a single provider. */
  path: string;
  provider: ProviderName;
  virtualKey?: string;
  endpoint: ProviderEndpoint;
  /** Merged override params (parent first, child wins), or null when there are none. */
  overrideParams: Readonly<Record<string, unknown>> | null;
  retry: RetryPolicy | null;
  requestTimeoutMs: number | null;
  weight: number;
  /** Its circuit (`cb_config` of a strategy above it), or null. */
  circuit: Circuit | null;
}

export interface StrategyNode {
  kind: 'strategy';
  path: string;
  mode: 'fallback' | 'single' | 'loadbalance';
  /** Statuses that trigger a fallback; null means every status >= 400. */
  onStatusCodes: ReadonlySet<number> | null;
  children: RouteNode[];
  weight: number;
  /** Whether a target below it has a circuit: only then may a child be skipped. */
  guarded: boolean;
}

export type RouteNode = LeafNode | StrategyNode;

export interface ResolvedOptions {
  defaultConfig: RouteNode | null;
  configs: ReadonlyMap<string, RouteNode>;
  basePath: string;
  /** `{basePath}/chat/completions`: the one route the adapters serve. */
  chatPath: string;
  sinks: LogSink[];
  maxBodyBytes: number;
  deadlineMs: number;
  maxRetryDelayMs: number;
  prices: PriceTable;
}

const PROVIDER_FIELDS = [
  'provider', 'api_key', 'openai_organization', 'openai_project', 'resource_name', 'endpoint', 'deployment_id', 'deployments', 'api_version',
] as const;
const AZURE_ONLY = ['resource_name', 'endpoint', 'deployment_id', 'deployments', 'api_version'] as const;
const OPENAI_ONLY = ['openai_organization', 'openai_project'] as const;

/**
 * Own `__proto__` keys in the options' data (a config file read with JSON.parse may have one): a record drops them as
 * it is parsed, so a config, virtual key, deployment or price named so would vanish without a word.
 */
function protoNames(input: unknown): OptionsIssue[] {
  const issues: OptionsIssue[] = [];
  const walk = (value: unknown, at: PropertyKey[]): void => {
    if (typeof value !== 'object' || value === null || at.length > 32) return;
    const proto = Object.getPrototypeOf(value) as unknown;
    if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) return; // a class instance: a sink, a Date
    if (Object.hasOwn(value, '__proto__')) issues.push({ path: formatPath(at), message: '`__proto__` cannot be a name here: JavaScript objects drop it; choose another' });
    for (const [key, child] of Object.entries(value)) walk(child, [...at, Array.isArray(value) ? Number(key) : key]);
  };
  if (typeof input === 'object' && input !== null) {
    for (const section of ['virtualKeys', 'config', 'configs', 'prices'] as const) walk((input as Record<string, unknown>)[section], [section]);
  }
  return issues;
}

/**
 * A virtual key named by its own API key (Portkey's "the virtual key is the key"): its name goes into every log event
 * (`servedBy.virtualKey`, each attempt's), the viewer and warnings, so it is refused rather than masked everywhere.
 */
function keysAsNames(input: unknown): OptionsIssue[] {
  const virtualKeys = virtualKeysOf(input);
  const apiKeys = configuredKeys(virtualKeys);
  // A name under 8 characters is no real key (a test's `{ test: { api_key: 'test' } }`), and is not masked either.
  return Object.keys(virtualKeys)
    .map((name, index) => ({ name, index }))
    .filter(({ name }) => name.length >= MIN_KEY_NAME && apiKeys.has(name))
    .map(({ name, index }) => ({
      path: `virtualKeys[${JSON.stringify(maskedKey(name))}]`,
      message: `(entry ${index + 1}) is named by an API key, which would go into every log event: name the entry (e.g. "openai-prod") and give that name in \`virtual_key\``,
    }));
}
/** As short a key as maskSecret masks. */
const MIN_KEY_NAME = 8;

function virtualKeysOf(input: unknown): Record<string, unknown> {
  const virtualKeys = typeof input === 'object' && input !== null ? (input as { virtualKeys?: unknown }).virtualKeys : undefined;
  return typeof virtualKeys === 'object' && virtualKeys !== null ? (virtualKeys as Record<string, unknown>) : {};
}

function configuredKeys(virtualKeys: Record<string, unknown>): Set<string> {
  const keys = new Set<string>();
  for (const vk of Object.values(virtualKeys)) {
    const key = typeof vk === 'object' && vk !== null ? (vk as { api_key?: unknown }).api_key : undefined;
    if (typeof key === 'string' && key.length >= MIN_KEY_NAME) keys.add(key);
  }
  return keys;
}

/**
 * The issues with every configured key, and every virtual key's name that looks like one, masked wherever they are
 * quoted (a path, a message): what formatPath's own check (a provider's key forms) cannot know.
 */
function withKeysMasked(issues: OptionsIssue[], input: unknown): OptionsIssue[] {
  const virtualKeys = virtualKeysOf(input);
  const secrets = configuredKeys(virtualKeys);
  for (const name of Object.keys(virtualKeys)) if (name.length >= MIN_KEY_NAME && looksLikeApiKey(name)) secrets.add(name);
  if (secrets.size === 0) return issues;
  // redact, not a bare replace: a key that begins as it ends would come back whole across its own mask.
  const mask = (text: string): string => {
    for (const secret of secrets) text = redact(text, secret);
    return text;
  };
  return issues.map((issue) => ({ path: mask(issue.path), message: mask(issue.message) }));
}

/** `config.targets[1].virtual_key`, `virtualKeys["azure-prod"].api_key`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) {
    // A provider key used as a name (a config id, a deployment's model) is masked, not printed into boot logs.
    const name = typeof key === 'number' ? '' : hasApiKeyForm(String(key)) ? maskedKey(String(key)) : String(key);
    if (typeof key === 'number') out += `[${key}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(name)) out += out ? `.${name}` : name;
    else out += `[${JSON.stringify(name)}]`;
  }
  return out || '(options)';
}

function zodIssues(error: z.ZodError): OptionsIssue[] {
  return error.issues.flatMap((issue) => {
    // zod reports unknown keys once for their object; name each key in the path instead.
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ path: formatPath([...issue.path, key]), message: unknownKeyMessage(key, issue.path) }));
    }
    return [{ path: formatPath(issue.path), message: issue.message }];
  });
}

/** zod's message for a missing field is "expected number, received undefined": say it plainly. */
const parseErrors: z.core.$ZodErrorMap = (issue) => {
  if (issue.code !== 'invalid_type') return undefined;
  if (issue.input === undefined) return 'is required';
  // A value from an environment variable or a config service is a string: `"3"` where 3 was meant.
  const { input } = issue;
  if (issue.expected === 'number' && typeof input === 'string' && input.trim() !== '' && Number.isFinite(Number(input))) {
    return `must be a number, not the string "${input}" (values read from the environment are strings: convert them with Number(...))`;
  }
  return undefined;
};

/**
 * Portkey config options Switchyard does not implement, with what to do instead. Refused like any unknown key
 * (silently skipping a cache or a guardrail would change behaviour unnoticed), but by name, so that the problem of a
 * pasted Portkey config is plain, and its fix.
 */
const GUARDRAILS = 'unknown option: Switchyard runs no guardrails, hooks or mutators; remove it, and run the check in your own middleware or code before (or after) Switchyard';
const CONDITIONAL = 'unknown option: Switchyard has no conditional routing; remove it, and choose the config on the server instead, by setting `x-switchyard-config` in your middleware (README: "Several routing configs")';
const STICKY = 'unknown option: loadbalance picks a target by weight for each request (no sticky sessions); remove it';
const ENTRA = 'unknown option: Switchyard authenticates to Azure OpenAI with its `api_key` only (no Entra ID or managed identity)';
const PORTKEY_ONLY: Readonly<Record<string, string>> = {
  cache: 'unknown option: Switchyard caches no answers (every request reaches a provider); remove it',
  input_guardrails: GUARDRAILS, output_guardrails: GUARDRAILS, default_input_guardrails: GUARDRAILS, default_output_guardrails: GUARDRAILS,
  before_request_hooks: GUARDRAILS, after_request_hooks: GUARDRAILS, input_mutators: GUARDRAILS, output_mutators: GUARDRAILS,
  strict_open_ai_compliance: "unknown option: Switchyard passes a provider's answer on as it came (nothing of Portkey's to strip); remove it",
  forward_headers: 'unknown option: Switchyard sends no header of the client upstream (hosts and credentials stay on the server); remove it',
  conditions: CONDITIONAL, default: CONDITIONAL, name: CONDITIONAL,
  openai_beta: 'unknown option: chat completions need no OpenAI-Beta header; remove it',
  azure_model_name: 'unknown option: the cost is priced by the model the answer names (or your `prices` option); remove it',
  sticky: STICKY, sticky_session: STICKY,
  metadata: 'unknown option: remove it; a request is found in the logs by its trace id (`x-switchyard-trace-id`) and config id',
  azure_auth_mode: ENTRA, azure_ad_token: ENTRA, azure_entra_client_id: ENTRA, azure_entra_client_secret: ENTRA, azure_entra_tenant_id: ENTRA,
  azure_managed_client_id: ENTRA,
  cb_config: 'unknown option here: a circuit breaker belongs to a strategy (`strategy: { mode, cb_config }`)',
  mode: "unknown option: Portkey's old config format; write `strategy: { mode }` and `targets`",
  options: "unknown option: Portkey's old config format; write `strategy: { mode }` and `targets`",
};

/** Provider fields under the names Portkey gives them (Switchyard's first versions used the short ones). */
const RENAMED: Readonly<Record<string, string>> = {
  organization: 'openai_organization', project: 'openai_project',
  // As Portkey's config reference spells Azure's fields; its gateway, and Switchyard, read the short names.
  azure_resource_name: 'resource_name', azure_deployment_id: 'deployment_id', azure_api_version: 'api_version',
};

function unknownKeyMessage(key: string, at: ReadonlyArray<PropertyKey>): string {
  const known = knownKeys(at);
  const provider = known === TARGET_KEYS || at[0] === 'virtualKeys';
  // Portkey also reads its keys in camelCase (`inputGuardrails`, `azureResourceName`).
  const portkeyName = key.replace(/([a-z\d])([A-Z])/g, '$1_$2').toLowerCase();
  if (provider && Object.hasOwn(RENAMED, portkeyName)) return `unknown option (did you mean \`${RENAMED[portkeyName]}\`?)`;
  // A misspelling of what is read here first: `cbConfig` on a strategy is its `cb_config`, not a Portkey-only field.
  const near = known.find((name) => loose(name) === loose(key));
  if (near) return `unknown option (did you mean \`${near}\`?)`;
  // Where a pasted Portkey config puts them: a target, the credentials of a virtual key, a strategy (conditional routing).
  if (provider || known === STRATEGY_KEYS) {
    // Portkey's schema accepts it on a target (its gateway never reads it there); users put it there expecting a trigger.
    if (portkeyName === 'on_status_codes' && provider) {
      const where = typeof at[at.length - 1] === 'number' ? "on a target: fallback triggers go in the parent's" : "here: fallback triggers go in a config's (beside its `targets`)";
      return `unknown option ${where} \`strategy.on_status_codes\`, retry triggers in \`retry.on_status_codes\``;
    }
    if (Object.hasOwn(PORTKEY_ONLY, portkeyName)) return PORTKEY_ONLY[portkeyName]!;
  }
  return 'unknown option';
}

/** A name with the same letters but for case, dashes, underscores or a plural: `apiKey`, `virtual_keys`, `tenant_25`. */
const loose = (name: string): string => name.toLowerCase().replace(/[-_]/g, '').replace(/s$/, '');

const STRATEGY_KEYS: readonly string[] = Object.keys(strategySchema.shape);
const CB_KEYS: readonly string[] = Object.keys(circuitBreakerSchema.shape);

/** The keys of the object at `at` in the options (an object zod refused a key of: its path has one of these shapes). */
function knownKeys(at: ReadonlyArray<PropertyKey>): readonly string[] {
  if (at.length === 0) return Object.keys(optionsSchema.shape);
  if (at[0] === 'virtualKeys') return Object.keys(virtualKeySchema.shape);
  if (at[0] === 'prices') return PRICE_KEYS;
  // A routing config (`config`, `configs.<id>`), then `targets[i]` pairs down to a target, then maybe its retry or strategy.
  let rest = at.slice(at[0] === 'config' ? 1 : 2);
  while (rest[0] === 'targets' && typeof rest[1] === 'number') rest = rest.slice(2);
  if (rest[0] === 'retry') return Object.keys(retrySchema.shape);
  if (rest[0] === 'strategy' && rest[1] === 'cb_config') return CB_KEYS;
  if (rest[0] === 'strategy') return STRATEGY_KEYS;
  return TARGET_KEYS;
}

type ParsedOptions = z.infer<typeof optionsSchema>;
const NO_CONFIG: OptionsIssue = { path: 'config', message: 'a routing config is required (`config`, or named `configs`)' };
type RoutingSections = Pick<ParsedOptions, 'virtualKeys' | 'config' | 'configs' | 'deadlineMs'>;
// Under the openai SDK's default timeout (600000 ms, its clock started earlier): the SDK gets Switchyard's 504 with
// `x-should-retry: false` instead of timing out itself and sending the whole request, fallbacks and all, again.
const DEFAULT_DEADLINE_MS = 590_000;

/** Parses and resolves options; throws SwitchyardOptionsError listing every problem with its path. */
/** Virtual key names an unknown-key error lists. */
const MAX_KNOWN_SHOWN = 20;

export function resolveOptions(input: SwitchyardOptions): ResolvedOptions {
  const parsed = optionsSchema.safeParse(input, { error: parseErrors });
  const protoIssues = [...protoNames(input), ...keysAsNames(input)];
  if (!parsed.success) {
    // The cross-field problems of the sections that are valid on their own (an unknown virtual key, an Azure
    // target without a deployment) go into the same error: a user fixes their options in one round, not two.
    const { sections, invalidKeys, configGiven } = validSections(input);
    // An object's own `__proto__` is reported once, by protoNames, not again as an unknown option.
    const protoAt = new Set(protoIssues.map(({ path }) => `${path}.__proto__`));
    const issues = [...protoIssues, ...zodIssues(parsed.error).filter(({ path }) => !protoAt.has(path))];
    resolveRouting(sections, issues, invalidKeys);
    if (!configGiven) issues.push(NO_CONFIG);
    throw new SwitchyardOptionsError(withKeysMasked(issues, input));
  }
  const options = parsed.data;
  const issues: OptionsIssue[] = [...protoIssues];
  const { defaultConfig, configs } = resolveRouting(options, issues);
  if (!defaultConfig && configs.size === 0) issues.push(NO_CONFIG);
  if (issues.length > 0) throw new SwitchyardOptionsError(withKeysMasked(issues, input));

  const basePath = (options.basePath ?? '/v1').replace(/\/+$/, '');
  const sinks: LogSink[] = [...(options.logSinks ?? [])];
  if (options.onLog) sinks.unshift({ write: options.onLog });
  return {
    defaultConfig,
    configs,
    basePath,
    chatPath: `${basePath}/chat/completions`,
    sinks,
    maxBodyBytes: options.maxBodyBytes ?? 10 * 1024 * 1024,
    deadlineMs: options.deadlineMs ?? DEFAULT_DEADLINE_MS,
    maxRetryDelayMs: options.maxRetryDelayMs ?? 8_000,
    prices: new PriceTable(options.prices),
  };
}

/** Virtual keys checked, routing configs resolved; every problem goes into `issues`. */
function resolveRouting(
  options: RoutingSections,
  issues: OptionsIssue[],
  invalidKeys: ReadonlySet<string> = new Set(),
): { defaultConfig: RouteNode | null; configs: Map<string, RouteNode> } {
  const virtualKeys = options.virtualKeys ?? {};
  for (const [name, vk] of Object.entries(virtualKeys)) {
    checkProviderFields(vk, vk.provider, ['virtualKeys', name], issues);
  }
  const resolver = new Resolver(virtualKeys, issues, invalidKeys, options.deadlineMs ?? DEFAULT_DEADLINE_MS);
  const defaultConfig = options.config ? resolver.resolve(options.config, ['config'], ROOT_SCOPE) : null;
  const configs = new Map<string, RouteNode>();
  for (const [id, config] of Object.entries(options.configs ?? {})) {
    configs.set(id, resolver.resolve(config, ['configs', id], ROOT_SCOPE));
  }
  return { defaultConfig, configs };
}

/**
 * Of options the schema refused: the virtual keys and routing configs that are valid on their own, the names of
 * the virtual keys that are not (a target naming one is not "unknown"), and whether a routing config was given.
 */
function validSections(input: unknown): { sections: RoutingSections; invalidKeys: Set<string>; configGiven: boolean } {
  const sections: RoutingSections = {};
  const invalidKeys = new Set<string>();
  const raw = isRecord(input) ? input : {};
  const noConfigs = raw.configs === undefined || (isRecord(raw.configs) && Object.keys(raw.configs).length === 0);
  const configGiven = raw.config !== undefined || !noConfigs;
  // Virtual keys that are no map at all: every target naming one would be reported as unknown.
  if (raw.virtualKeys !== undefined && !isRecord(raw.virtualKeys)) return { sections, invalidKeys, configGiven };
  if (isRecord(raw.virtualKeys)) {
    sections.virtualKeys = {};
    for (const [name, value] of Object.entries(raw.virtualKeys)) {
      const vk = virtualKeySchema.safeParse(value);
      if (vk.success) sections.virtualKeys[name] = vk.data;
      else invalidKeys.add(name);
    }
  }
  const deadline = optionsSchema.shape.deadlineMs.safeParse(raw.deadlineMs);
  if (deadline.success) sections.deadlineMs = deadline.data;
  const config = routingConfigSchema.safeParse(raw.config);
  if (raw.config !== undefined && config.success) sections.config = config.data;
  if (isRecord(raw.configs)) {
    sections.configs = {};
    for (const [id, value] of Object.entries(raw.configs)) {
      const parsed = routingConfigSchema.safeParse(value);
      if (parsed.success) sections.configs[id] = parsed.data;
    }
  }
  return { sections, invalidKeys, configGiven };
}

/** A JSON object (not null, not an array). */
export const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

type ProviderFields = Pick<TargetConfig, (typeof PROVIDER_FIELDS)[number] | 'custom_host'>;

/** Cross-field rules zod's per-field schema cannot express. */
function checkProviderFields(fields: ProviderFields, provider: ProviderName, path: PropertyKey[], issues: OptionsIssue[]): void {
  const misplaced = provider === 'openai' ? AZURE_ONLY : OPENAI_ONLY;
  for (const key of misplaced) {
    if (fields[key] !== undefined) issues.push({ path: formatPath([...path, key]), message: `not an option of provider "${provider}"` });
  }
  checkProviderHostPath(fields.custom_host, provider, [...path, 'custom_host'], issues);
  if (provider !== 'azure-openai') return;
  const hosts = [fields.resource_name, fields.endpoint, fields.custom_host].filter((h) => h !== undefined).length;
  if (hosts === 0) issues.push({ path: formatPath(path), message: 'Azure OpenAI needs `resource_name`, `endpoint` or `custom_host`' });
  if (fields.resource_name !== undefined && fields.endpoint !== undefined) {
    issues.push({ path: formatPath([...path, 'endpoint']), message: 'give either `resource_name` or `endpoint`, not both' });
  }
  if (fields.deployment_id !== undefined && fields.deployments !== undefined) {
    issues.push({ path: formatPath([...path, 'deployments']), message: 'give either `deployment_id` or `deployments`, not both' });
  }
  if (fields.api_version !== 'v1' && fields.deployment_id === undefined && fields.deployments === undefined) {
    issues.push({ path: formatPath(path), message: 'Azure OpenAI needs `deployment_id` or a `deployments` model map (or `api_version: "v1"`)' });
  }
}

/**
 * A `custom_host` on OpenAI's or Azure's own host without the API's path: every request would get a 404, which a
 * fallback hides (and on Azure, usually the fallback, only shows in an outage). Another host's path is its own
 * (LiteLLM serves at the root too), so only the providers' hosts are checked.
 */
function checkProviderHostPath(host: string | undefined, provider: ProviderName, path: PropertyKey[], issues: OptionsIssue[], from = ''): void {
  if (host === undefined || !URL.canParse(host)) return;
  const url = new URL(host);
  const base = url.pathname.replace(/\/+$/, '');
  if (provider === 'openai' && url.hostname.toLowerCase() === 'api.openai.com' && base !== '/v1') {
    issues.push({ path: formatPath(path), message: `must be OpenAI's API base URL, \`https://api.openai.com/v1\` (or left out: it is the default)${from}` });
  } else if (provider === 'azure-openai' && isProviderHost(url.origin) && base === '') {
    issues.push({ path: formatPath(path), message: `is an Azure resource endpoint: give it as \`endpoint\`, or add \`/openai\` to it (Switchyard appends the deployment path)${from}` });
  }
}

interface Scope {
  overrideParams: Readonly<Record<string, unknown>> | null;
  retry: RetryPolicy | null;
  requestTimeoutMs: number | null;
  /** A strategy's `custom_host`, for the targets below it that name none (as Portkey passes it down). */
  customHost?: string;
  /** The nearest strategy's `cb_config`, for the targets below it (as Portkey passes it down). */
  circuit?: CircuitPolicy;
  /** A strategy above has more than one target: a circuit of a target below may then be skipped. */
  branching?: boolean;
}
const ROOT_SCOPE: Scope = { overrideParams: null, retry: null, requestTimeoutMs: null };

function circuitPolicy(cb: CircuitBreakerConfig): CircuitPolicy {
  return {
    failureThreshold: cb.failure_threshold ?? null,
    failurePercentage: cb.failure_threshold_percentage ?? null,
    // Portkey's default: one failure among the first few requests of a quiet spell is no failure rate.
    minimumRequests: cb.minimum_requests ?? 5,
    cooldownMs: Math.max(cb.cooldown_interval, MIN_COOLDOWN_MS),
    failureStatusCodes: cb.failure_status_codes ? new Set(cb.failure_status_codes) : null,
  };
}

function retryPolicy(retry: RetryConfig): RetryPolicy {
  return {
    attempts: retry.attempts,
    onStatusCodes: new Set(retry.on_status_codes ?? DEFAULT_RETRY_STATUS_CODES),
    useRetryAfterHeader: retry.use_retry_after_header ?? true,
  };
}

/**
 * A strategy's `custom_host` for a target that names no host of its own: a virtual key's `custom_host`, or an Azure
 * `resource_name` or `endpoint`, is the target's own, and one provider's key never goes to a host meant for another.
 */
function inheritedHost(fields: ProviderFields, scope: Scope): string | undefined {
  return fields.resource_name !== undefined || fields.endpoint !== undefined ? undefined : scope.customHost;
}

/**
 * A virtual key's name as an error message quotes it, unless it looks like a credential (`virtual_key:
 * process.env.OPENAI_API_KEY`, as Portkey's own virtual keys read): that is masked, never printed into boot logs.
 */
function shownKeyName(name: string, apiKeys: ReadonlySet<string>): string {
  // A key configured here, or one of a known form or what looks like one.
  if (!apiKeys.has(name) && !looksLikeApiKey(name)) return `"${name}"`;
  return `"${maskedKey(name)}" (it looks like an API key: \`virtual_key\` names an entry of \`virtualKeys\`, which holds the key)`;
}

class Resolver {
  constructor(
    private readonly virtualKeys: Record<string, VirtualKeyConfig>,
    private readonly issues: OptionsIssue[],
    /** Virtual keys the schema refused (already reported): a target naming one is not reported again. */
    private readonly invalidKeys: ReadonlySet<string>,
    private readonly deadlineMs: number,
  ) {}

  resolve(config: TargetConfig, at: PropertyKey[], parent: Scope, targetPath = ''): RouteNode {
    const isStrategy = config.targets !== undefined || config.strategy !== undefined;
    const scope: Scope = {
      // A copy to the bottom (JSON, as the schema checked): a caller editing its options object in place, to build the
      // next config, must not change the running one's requests.
      overrideParams: config.override_params ? { ...parent.overrideParams, ...(JSON.parse(JSON.stringify(config.override_params)) as Record<string, unknown>) } : parent.overrideParams,
      retry: config.retry ? retryPolicy(config.retry) : parent.retry,
      // 0 reads as unset, as in Portkey's gateway (`if (requestTimeout)`): the parent's, else none.
      requestTimeoutMs: config.request_timeout || parent.requestTimeoutMs,
      customHost: (isStrategy ? config.custom_host : undefined) ?? parent.customHost,
      circuit: (config.strategy?.cb_config && circuitPolicy(config.strategy.cb_config)) ?? parent.circuit,
      branching: parent.branching || (config.targets?.length ?? 0) > 1,
    };
    // The overall deadline would cut such an attempt first: a pasted Portkey timeout (it has no deadline) says so at startup.
    // Equal is refused too: the deadline's timer, armed first, fires first, and the next target is never tried.
    if (config.request_timeout && config.request_timeout >= this.deadlineMs) {
      this.issues.push({
        path: formatPath([...at, 'request_timeout']),
        message: `is not shorter than \`deadlineMs\` (${this.deadlineMs} ms), which ends the whole request first: raise \`deadlineMs\` or lower it`,
      });
    }
    const weight = config.weight ?? 1;
    if (isStrategy) return this.strategy(config, at, scope, targetPath, weight);
    return this.leaf(config, at, scope, targetPath, weight);
  }

  private strategy(config: TargetConfig, at: PropertyKey[], scope: Scope, targetPath: string, weight: number): RouteNode {
    if (!config.strategy) this.issues.push({ path: formatPath([...at, 'strategy']), message: 'is required with `targets`' });
    if (!config.targets) this.issues.push({ path: formatPath([...at, 'targets']), message: 'is required with `strategy`' });
    for (const key of ['virtual_key', ...PROVIDER_FIELDS] as const) {
      if (config[key] !== undefined) {
        this.issues.push({ path: formatPath([...at, key]), message: 'a config with a `strategy` cannot also be a provider: move it into one of its `targets`' });
      }
    }
    const children = (config.targets ?? []).map((child, i) =>
      this.resolve(child, [...at, 'targets', i], scope, `${targetPath ? `${targetPath}.` : ''}targets[${i}]`),
    );
    if (config.strategy?.mode === 'loadbalance' && children.length > 0 && children.every((child) => child.weight === 0)) {
      this.issues.push({ path: formatPath([...at, 'targets']), message: 'a loadbalance strategy needs a target with a weight above 0' });
    } else if (config.strategy?.mode === 'loadbalance' && !Number.isFinite(children.reduce((sum, child) => sum + child.weight, 0))) {
      // An infinite total picks by no weight at all: every request would go to the last target.
      this.issues.push({ path: formatPath([...at, 'targets']), message: 'the weights of a loadbalance strategy must add up to a finite number' });
    }
    const codes = config.strategy?.on_status_codes;
    return {
      kind: 'strategy',
      path: targetPath,
      mode: config.strategy?.mode ?? 'fallback',
      onStatusCodes: codes ? new Set(codes) : null,
      children,
      weight,
      guarded: children.some((child) => (child.kind === 'target' ? child.circuit !== null : child.guarded)),
    };
  }

  private leaf(config: TargetConfig, at: PropertyKey[], scope: Scope, targetPath: string, weight: number): RouteNode {
    let fields: ProviderFields & { api_key?: string; provider?: ProviderName };
    let virtualKey: string | undefined;
    if (config.virtual_key !== undefined) {
      const vk = this.virtualKeys[config.virtual_key];
      if (!Object.hasOwn(this.virtualKeys, config.virtual_key) || !vk) {
        if (this.invalidKeys.has(config.virtual_key)) return this.placeholder(targetPath, weight);
        // Declared ones with a problem of their own (reported at their path) are known too: not hidden from the list.
        // A name that is a key is masked in the list by withKeysMasked, as everywhere in the issues.
        const known = [...Object.keys(this.virtualKeys), ...this.invalidKeys];
        // A thousand tenants' keys would make one typo a 25,000-character error: the first few say enough, and the
        // name it misspells comes first, wherever it is in the list.
        const near = known.find((name) => loose(name) === loose(config.virtual_key!));
        const shown = known.length > MAX_KNOWN_SHOWN ? `${known.slice(0, MAX_KNOWN_SHOWN).join(', ')} and ${known.length - MAX_KNOWN_SHOWN} more` : known.join(', ');
        const hint = near !== undefined ? ` (did you mean "${near}"?)` : known.length ? ` (known: ${shown})` : '';
        this.issues.push({
          path: formatPath([...at, 'virtual_key']),
          message: `unknown virtual key ${shownKeyName(config.virtual_key, new Set(Object.values(this.virtualKeys).map((vk) => vk.api_key)))}${hint}`,
        });
        return this.placeholder(targetPath, weight);
      }
      for (const key of PROVIDER_FIELDS) {
        // Portkey's own config API writes `provider` beside `virtual_key`: harmless when it agrees.
        if (config[key] === undefined || (key === 'provider' && config.provider === vk.provider)) continue;
        const message =
          key === 'provider'
            ? `virtual key "${config.virtual_key}" is provider "${vk.provider}"`
            : 'set it on the virtual key, not beside `virtual_key`';
        this.issues.push({ path: formatPath([...at, key]), message });
      }
      virtualKey = config.virtual_key;
      fields = { ...vk, custom_host: config.custom_host ?? vk.custom_host ?? inheritedHost(vk, scope) };
      // A host written beside the virtual key or passed down by a strategy (the key's own was checked with the key).
      if (fields.custom_host !== vk.custom_host) {
        const passedDown = config.custom_host === undefined ? ' (the custom_host its strategy passes down)' : '';
        checkProviderHostPath(fields.custom_host, vk.provider, [...at, 'custom_host'], this.issues, passedDown);
      }
    } else {
      fields = { ...config, custom_host: config.custom_host ?? inheritedHost(config, scope) };
      if (!config.provider) {
        this.issues.push({ path: formatPath(at), message: 'a target needs `virtual_key`, inline `provider` + `api_key`, or `strategy` + `targets`' });
        return this.placeholder(targetPath, weight);
      }
      if (!config.api_key) {
        this.issues.push({ path: formatPath([...at, 'api_key']), message: 'is required for an inline provider (read it from an environment variable)' });
      }
      checkProviderFields(fields, config.provider, at, this.issues);
    }
    const provider = fields.provider ?? 'openai';
    const api_key = fields.api_key ?? '';
    const endpoint = provider === 'openai' ? openAIEndpoint({ ...fields, api_key }) : azureOpenAIEndpoint({ ...fields, api_key });
    const { customHost: _host, circuit: policy, branching, ...inherited } = scope;
    // None where nothing could skip it (no strategy above with another target: when every target is open, none is).
    const circuit = policy && branching ? new Circuit(policy, formatPath(at)) : null;
    return { kind: 'target', path: targetPath || 'config', provider, virtualKey, endpoint, weight, ...inherited, circuit };
  }

  /** Stands in for a target whose problem was already reported; never runs (construction throws). */
  private placeholder(path: string, weight: number): RouteNode {
    return { kind: 'strategy', path, mode: 'single', onStatusCodes: null, children: [], weight, guarded: false };
  }
}
