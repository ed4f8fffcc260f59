import type { ProviderEndpoint, UpstreamPlan } from './provider';
import { SecretScan, splitBaseUrl } from './provider';

export const OPENAI_BASE_URL = 'https://api.openai.com/v1';

export interface OpenAIEndpointOptions {
  api_key: string;
  openai_organization?: string;
  openai_project?: string;
  custom_host?: string;
}

export function openAIEndpoint(options: OpenAIEndpointOptions): ProviderEndpoint {
  const { origin, prefix } = splitBaseUrl(options.custom_host ?? OPENAI_BASE_URL);
  const headers: Record<string, string> = {
    authorization: `Bearer ${options.api_key}`,
    'content-type': 'application/json',
    // Bodies pass through as they come (streams event by event): none should arrive compressed.
    'accept-encoding': 'identity',
  };
  if (options.openai_organization) headers['openai-organization'] = options.openai_organization;
  if (options.openai_project) headers['openai-project'] = options.openai_project;
  const path = `${prefix}/chat/completions`;
  return {
    provider: 'openai',
    secret: options.api_key,
    secretScan: SecretScan.of(options.api_key),
    modelByName: true,
    plan: (model): UpstreamPlan => ({ origin, path, headers, model }),
  };
}
