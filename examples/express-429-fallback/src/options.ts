import type { LogEvent, SwitchyardOptions } from '@switchyard/express';

/** The keys used on the fakes, which check them as the real providers would: a key sent to the wrong one is refused. */
export const FAKE_KEYS = { openai: 'sk-fake-openai', azure: 'fake-azure-key' };

export interface Hosts {
  /** Fake or real base URLs; undefined means the providers' real hosts. */
  openai?: string;
  azure?: string;
}

/**
 * The seed's config: two virtual keys (credentials from the environment, never from code) and a fallback
 * that moves only rate-limited requests (429) from OpenAI to Azure OpenAI; other errors are returned as they are.
 */
export function fallbackOptions(env: NodeJS.ProcessEnv, hosts: Hosts, onLog: (event: LogEvent) => void): SwitchyardOptions {
  const model = env.DEMO_MODEL || 'gpt-4o-mini';
  const azureEndpoint = env.AZURE_OPENAI_ENDPOINT;
  return {
    virtualKeys: {
      'openai-prod': { provider: 'openai', api_key: env.OPENAI_API_KEY || FAKE_KEYS.openai, ...(hosts.openai ? { custom_host: hosts.openai } : {}) },
      'azure-prod': {
        provider: 'azure-openai',
        api_key: env.AZURE_OPENAI_API_KEY || FAKE_KEYS.azure,
        ...(hosts.azure ? { custom_host: hosts.azure } : azureEndpoint ? { endpoint: azureEndpoint } : { resource_name: env.AZURE_OPENAI_RESOURCE || 'my-resource' }),
        ...(env.AZURE_OPENAI_API_VERSION ? { api_version: env.AZURE_OPENAI_API_VERSION } : {}),
        deployments: { [model]: env.AZURE_OPENAI_DEPLOYMENT || `${model}-prod` },
      },
    },
    config: {
      strategy: { mode: 'fallback', on_status_codes: [429] },
      targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }],
    },
    onLog,
  };
}
