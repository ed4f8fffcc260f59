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
import type { ProviderEndpoint } from '../providers/provider';
import {
  optionsSchema,
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
  /** Path in the routing config, e.g. `targets[1]`; `` for a config that is a single provider. */
  path: string;
  provider: ProviderName;
  virtualKey?: string;
  endpoint: ProviderEndpoint;
  /** Merged override params (parent first, child wins), or null when there are none. */
  overrideParams: Readonly<Record<string, unknown>> | null;
  retry: RetryPolicy | null;
  requestTimeoutMs: number | null;
  weight: number;
}

export interface StrategyNode {
  kind: 'strategy';
  path: string;
  mode: 'fallback' | 'single' | 'loadbalance';
  /** Statuses that trigger a fallback; null means every status >= 400. */
  onStatusCodes: ReadonlySet<number> | null;
  children: RouteNode[];
  weight: number;
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
  'provider', 'api_key', 'organization', 'project', 'resource_name', 'endpoint', 'deployment_id', 'deployments', 'api_version',
] as const;
const AZURE_ONLY = ['resource_name', 'endpoint', 'deployment_id', 'deployments', 'api_version'] as const;
const OPENAI_ONLY = ['organization', 'project'] as const;

/** `config.targets[1].virtual_key`, `virtualKeys["azure-prod"].api_key`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(String(key))) out += out ? `.${String(key)}` : String(key);
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out || '(options)';
}

function zodIssues(error: z.ZodError): OptionsIssue[] {
  return error.issues.flatMap((issue) => {
    // zod reports unknown keys once for their object; name each key in the path instead.
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ path: formatPath([...issue.path, key]), message: 'unknown option' }));
    }
    return [{ path: formatPath(issue.path), message: issue.message }];
  });
}

/** Parses and resolves options; throws SwitchyardOptionsError listing every problem with its path. */
export function resolveOptions(input: SwitchyardOptions): ResolvedOptions {
  const parsed = optionsSchema.safeParse(input);
  if (!parsed.success) throw new SwitchyardOptionsError(zodIssues(parsed.error));
  const options = parsed.data;
  const issues: OptionsIssue[] = [];
  const virtualKeys = options.virtualKeys ?? {};

  for (const [name, vk] of Object.entries(virtualKeys)) {
    checkProviderFields(vk, vk.provider, ['virtualKeys', name], issues);
  }

  const resolver = new Resolver(virtualKeys, issues);
  const defaultConfig = options.config ? resolver.resolve(options.config, ['config'], ROOT_SCOPE) : null;
  const configs = new Map<string, RouteNode>();
  for (const [id, config] of Object.entries(options.configs ?? {})) {
    configs.set(id, resolver.resolve(config, ['configs', id], ROOT_SCOPE));
  }
  if (!options.config && configs.size === 0) {
    issues.push({ path: 'config', message: 'a routing config is required (`config`, or named `configs`)' });
  }
  if (issues.length > 0) throw new SwitchyardOptionsError(issues);

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
    deadlineMs: options.deadlineMs ?? 600_000,
    maxRetryDelayMs: options.maxRetryDelayMs ?? 8_000,
    prices: new PriceTable(options.prices),
  };
}

type ProviderFields = Pick<TargetConfig, (typeof PROVIDER_FIELDS)[number] | 'custom_host'>;

/** Cross-field rules zod's per-field schema cannot express. */
function checkProviderFields(fields: ProviderFields, provider: ProviderName, path: PropertyKey[], issues: OptionsIssue[]): void {
  const misplaced = provider === 'openai' ? AZURE_ONLY : OPENAI_ONLY;
  for (const key of misplaced) {
    if (fields[key] !== undefined) issues.push({ path: formatPath([...path, key]), message: `not an option of provider "${provider}"` });
  }
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

interface Scope {
  overrideParams: Readonly<Record<string, unknown>> | null;
  retry: RetryPolicy | null;
  requestTimeoutMs: number | null;
}
const ROOT_SCOPE: Scope = { overrideParams: null, retry: null, requestTimeoutMs: null };

function retryPolicy(retry: RetryConfig): RetryPolicy {
  return {
    attempts: retry.attempts,
    onStatusCodes: new Set(retry.on_status_codes ?? DEFAULT_RETRY_STATUS_CODES),
    useRetryAfterHeader: retry.use_retry_after_header ?? true,
  };
}

class Resolver {
  constructor(
    private readonly virtualKeys: Record<string, VirtualKeyConfig>,
    private readonly issues: OptionsIssue[],
  ) {}

  resolve(config: TargetConfig, at: PropertyKey[], parent: Scope, targetPath = ''): RouteNode {
    const scope: Scope = {
      overrideParams: config.override_params ? { ...parent.overrideParams, ...config.override_params } : parent.overrideParams,
      retry: config.retry ? retryPolicy(config.retry) : parent.retry,
      requestTimeoutMs: config.request_timeout ?? parent.requestTimeoutMs,
    };
    const weight = config.weight ?? 1;
    if (config.targets || config.strategy) return this.strategy(config, at, scope, targetPath, weight);
    return this.leaf(config, at, scope, targetPath, weight);
  }

  private strategy(config: TargetConfig, at: PropertyKey[], scope: Scope, targetPath: string, weight: number): RouteNode {
    if (!config.strategy) this.issues.push({ path: formatPath([...at, 'strategy']), message: 'is required with `targets`' });
    if (!config.targets) this.issues.push({ path: formatPath([...at, 'targets']), message: 'is required with `strategy`' });
    for (const key of ['virtual_key', ...PROVIDER_FIELDS, 'custom_host'] as const) {
      if (config[key] !== undefined) {
        this.issues.push({ path: formatPath([...at, key]), message: 'a config with `targets` cannot also be a provider: move it into a target' });
      }
    }
    const children = (config.targets ?? []).map((child, i) =>
      this.resolve(child, [...at, 'targets', i], scope, `${targetPath ? `${targetPath}.` : ''}targets[${i}]`),
    );
    const codes = config.strategy?.on_status_codes;
    return {
      kind: 'strategy',
      path: targetPath,
      mode: config.strategy?.mode ?? 'fallback',
      onStatusCodes: codes ? new Set(codes) : null,
      children,
      weight,
    };
  }

  private leaf(config: TargetConfig, at: PropertyKey[], scope: Scope, targetPath: string, weight: number): RouteNode {
    let fields: ProviderFields & { api_key?: string; provider?: ProviderName };
    let virtualKey: string | undefined;
    if (config.virtual_key !== undefined) {
      const vk = this.virtualKeys[config.virtual_key];
      if (!Object.hasOwn(this.virtualKeys, config.virtual_key) || !vk) {
        const known = Object.keys(this.virtualKeys);
        this.issues.push({
          path: formatPath([...at, 'virtual_key']),
          message: `unknown virtual key "${config.virtual_key}"${known.length ? ` (known: ${known.join(', ')})` : ''}`,
        });
        return this.placeholder(targetPath, weight);
      }
      for (const key of PROVIDER_FIELDS) {
        if (config[key] !== undefined) {
          this.issues.push({ path: formatPath([...at, key]), message: 'set it on the virtual key, not beside `virtual_key`' });
        }
      }
      virtualKey = config.virtual_key;
      fields = { ...vk, custom_host: config.custom_host ?? vk.custom_host };
    } else {
      fields = config;
      if (!config.provider) {
        this.issues.push({ path: formatPath(at), message: 'a target needs `virtual_key`, inline `provider` + `api_key`, or `strategy` + `targets`' });
        return this.placeholder(targetPath, weight);
      }
      if (!config.api_key) {
        this.issues.push({ path: formatPath([...at, 'api_key']), message: 'is required for an inline provider (read it from an environment variable)' });
      }
      checkProviderFields(config, config.provider, at, this.issues);
    }
    const provider = fields.provider ?? 'openai';
    const api_key = fields.api_key ?? '';
    const endpoint = provider === 'openai' ? openAIEndpoint({ ...fields, api_key }) : azureOpenAIEndpoint({ ...fields, api_key });
    return { kind: 'target', path: targetPath || 'config', provider, virtualKey, endpoint, weight, ...scope };
  }

  /** Stands in for a target whose problem was already reported; never runs (construction throws). */
  private placeholder(path: string, weight: number): RouteNode {
    return { kind: 'strategy', path, mode: 'single', onStatusCodes: null, children: [], weight };
  }
}
