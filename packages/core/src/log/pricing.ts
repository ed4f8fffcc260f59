/**
 * Cost of a request: USD per 1M prompt and completion tokens, by model. `costUsd` is null when the model has no
 * price, never 0: an unknown price must not look free.
 */
import type { ProviderName } from '../config/schema';
import type { TokenUsage } from './log-event';

/** USD per 1M tokens. */
export interface ModelPrice {
  prompt: number;
  completion: number;
  /** Prompt tokens read from the prompt cache (`prompt_tokens_details.cached_tokens`). Default: `prompt`. */
  cached?: number | undefined;
}

/**
 * List prices of OpenAI's API (https://openai.com/api/pricing, standard tier) as of 2025-08. Azure OpenAI's Global
 * Standard deployments list the same prices for these models
 * (https://azure.microsoft.com/pricing/details/cognitive-services/openai-service); regional and data-zone
 * deployments cost more: override them with `prices` (e.g. `'azure-openai/gpt-4o'`). Cached input is priced at
 * `cached`; batch and priority prices are not applied. Check the pages above before relying on these figures.
 */
export const DEFAULT_PRICES: Readonly<Record<string, ModelPrice>> = {
  'gpt-5': { prompt: 1.25, cached: 0.125, completion: 10 },
  'gpt-5-mini': { prompt: 0.25, cached: 0.025, completion: 2 },
  'gpt-5-nano': { prompt: 0.05, cached: 0.005, completion: 0.4 },
  'gpt-4.1': { prompt: 2, cached: 0.5, completion: 8 },
  'gpt-4.1-mini': { prompt: 0.4, cached: 0.1, completion: 1.6 },
  'gpt-4.1-nano': { prompt: 0.1, cached: 0.025, completion: 0.4 },
  'gpt-4o': { prompt: 2.5, cached: 1.25, completion: 10 },
  'gpt-4o-2024-05-13': { prompt: 5, completion: 15 },
  'gpt-4o-mini': { prompt: 0.15, cached: 0.075, completion: 0.6 },
  'o1': { prompt: 15, cached: 7.5, completion: 60 },
  'o1-mini': { prompt: 1.1, cached: 0.55, completion: 4.4 },
  'o3': { prompt: 2, cached: 0.5, completion: 8 },
  'o3-mini': { prompt: 1.1, cached: 0.55, completion: 4.4 },
  'o4-mini': { prompt: 1.1, cached: 0.275, completion: 4.4 },
  'gpt-4-turbo': { prompt: 10, completion: 30 },
  'gpt-4': { prompt: 30, completion: 60 },
  'gpt-3.5-turbo': { prompt: 0.5, completion: 1.5 },
  // The snapshots older models report (`gpt-4` answers as `gpt-4-0613`): four digits, not a date, and the same base
  // name priced differently by snapshot (`-1106` vs `-0125`), so each is listed rather than stripped.
  'gpt-4-0613': { prompt: 30, completion: 60 },
  'gpt-4-0125-preview': { prompt: 10, completion: 30 },
  'gpt-4-1106-preview': { prompt: 10, completion: 30 },
  'gpt-3.5-turbo-0125': { prompt: 0.5, completion: 1.5 },
  'gpt-3.5-turbo-1106': { prompt: 1, completion: 2 },
};

/**
 * The names Azure OpenAI reports for every version of its older models (`gpt-4` for 0613 and the 1106/0125 previews,
 * priced 30/60 and 10/30; `gpt-35-turbo` for 0613, 1106 and 0125): no list price fits them all. Such an answer is
 * priced by the deployment that gave it (see `costOf`), else by a host price for the name (`'azure-openai/gpt-4'`),
 * else its cost is unknown.
 */
const AZURE_UNVERSIONED = new Set(['gpt-4', 'gpt-4-32k', 'gpt-35-turbo', 'gpt-35-turbo-16k']);

const DATED_SNAPSHOT = /-\d{4}-\d{2}-\d{2}$/;
/** An older model's snapshot suffix: `-0613`, `-0125-preview`. */
const NUMBERED_SNAPSHOT = /-\d{4}(?:-preview)?$/;

/** Looks prices up: the host's table first, then the defaults; `provider/model` before `model`. */
export class PriceTable {
  private readonly overrides: ReadonlyMap<string, ModelPrice>;

  constructor(overrides: Readonly<Record<string, ModelPrice>> = {}) {
    this.overrides = new Map(Object.entries(overrides));
  }

  /**
   * The price of a model; null when unknown. The host's prices first, for the snapshot or its base model (`gpt-4o` for
   * `gpt-4o-2024-08-06`, `gpt-4` for `gpt-4-0613`); then the list prices, where a four-digit snapshot has its own entry
   * and a dated one is priced as its base model.
   */
  priceOf(provider: ProviderName, model: string): ModelPrice | null {
    const dated = model.replace(DATED_SNAPSHOT, '');
    const base = dated.replace(NUMBERED_SNAPSHOT, '');
    return this.fromHost(provider, model) ?? this.fromHost(provider, base) ?? listPrice(provider, model) ?? listPrice(provider, dated);
  }

  /**
   * Cost in USD of a request's usage (`cachedTokens` of its prompt tokens from the cache), or null when the model has
   * no price. `deployment`: the Azure deployment that answered, priced first when Azure reports a name it uses for
   * every version of a model (`gpt-4`): the host's price for that deployment, else the list price its name has.
   */
  costOf(provider: ProviderName, model: string, usage: TokenUsage, cachedTokens = 0, deployment?: string): number | null {
    const unversioned = provider === 'azure-openai' && AZURE_UNVERSIONED.has(model) && deployment !== undefined && deployment !== model;
    const price = (unversioned ? this.priceOf(provider, deployment) : null) ?? this.priceOf(provider, model);
    if (!price) return null;
    const prompt = (usage.prompt_tokens - cachedTokens) * price.prompt + cachedTokens * (price.cached ?? price.prompt);
    const usd = (prompt + usage.completion_tokens * price.completion) / 1_000_000;
    return roundUsd(usd);
  }

  private fromHost(provider: ProviderName, model: string): ModelPrice | null {
    return this.overrides.get(`${provider}/${model}`) ?? this.overrides.get(model) ?? null;
  }
}

/** Rounded to 1e-10 USD: enough for one token of the cheapest model, without float noise in logs and sums. */
export function roundUsd(usd: number): number {
  return Math.round(usd * 1e10) / 1e10;
}

function listPrice(provider: ProviderName, model: string): ModelPrice | null {
  if (provider === 'azure-openai' && AZURE_UNVERSIONED.has(model)) return null;
  return own(DEFAULT_PRICES, `${provider}/${model}`) ?? own(DEFAULT_PRICES, model);
}

function own(table: Readonly<Record<string, ModelPrice>>, key: string): ModelPrice | null {
  return Object.hasOwn(table, key) ? table[key]! : null;
}
