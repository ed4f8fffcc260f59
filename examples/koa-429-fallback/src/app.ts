import Koa from 'koa';
import { fallbackMiddleware, type LogEvent, type SwitchyardOptions } from '@switchyard/koa';

/** The keys used on the fakes, which check them as the real providers would: a key sent to the wrong one is refused. */
export const FAKE_KEYS = { openai: 'sk-fake', azure: 'fake-azure-key' };

export interface Hosts {
  openai?: string;
  azure?: string;
}

/**
 * The seed's set-up for Koa: virtual keys from the environment, and only rate-limited requests (429) move from
 * OpenAI to Azure OpenAI. `hosts` points at fake providers when there are no real keys.
 */
export function fallbackOptions(env: NodeJS.ProcessEnv, hosts: Hosts, onLog: (event: LogEvent) => void): SwitchyardOptions {
  const model = env.DEMO_MODEL || 'gpt-4o-mini';
  return {
    virtualKeys: {
      'openai-prod': { provider: 'openai', api_key: env.OPENAI_API_KEY || FAKE_KEYS.openai, ...(hosts.openai && { custom_host: hosts.openai }) },
      'azure-prod': {
        provider: 'azure-openai',
        api_key: env.AZURE_OPENAI_API_KEY || FAKE_KEYS.azure,
        ...(hosts.azure ? { custom_host: hosts.azure } : env.AZURE_OPENAI_ENDPOINT ? { endpoint: env.AZURE_OPENAI_ENDPOINT } : { resource_name: env.AZURE_OPENAI_RESOURCE || 'my-resource' }),
        ...(env.AZURE_OPENAI_API_VERSION ? { api_version: env.AZURE_OPENAI_API_VERSION } : {}),
        deployments: { [model]: env.AZURE_OPENAI_DEPLOYMENT || `${model}-prod` },
      },
    },
    config: { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] },
    onLog,
  };
}

/** The host app: Switchyard serves `POST /v1/chat/completions`, the app's own routes stay as they are. */
export function buildApp(options: SwitchyardOptions): Koa {
  const app = new Koa();
  app.use(fallbackMiddleware(options));
  app.use(async (ctx, next) => {
    if (ctx.path === '/health') ctx.body = { ok: true };
    else await next();
  });
  return app;
}
