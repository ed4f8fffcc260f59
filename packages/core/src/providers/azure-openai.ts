import { SwitchyardError } from '../errors';
import type { ProviderEndpoint, UpstreamPlan } from './provider';
import { SecretScan, splitBaseUrl } from './provider';

/** Default `api-version`: the latest GA data-plane version when this was written (Azure OpenAI REST reference). */
export const AZURE_DEFAULT_API_VERSION = '2024-10-21';

export interface AzureEndpointOptions {
  api_key: string;
  resource_name?: string;
  endpoint?: string;
  custom_host?: string;
  deployment_id?: string;
  deployments?: Record<string, string>;
  api_version?: string;
}

/** Base URL ending in `/openai`, from `custom_host`, `endpoint` or `resource_name` (checked at resolution). */
function azureBaseUrl(options: AzureEndpointOptions): string {
  // Up to `/openai`: a host given as Azure's v1 base URL (`.../openai/v1`) would otherwise get `/v1` twice.
  if (options.custom_host) return options.custom_host.replace(/\/+$/, '').replace(/\/openai\/v1$/, '/openai');
  // The portal shows the resource endpoint; Azure's v1 docs give `.../openai/v1/` as the base URL. Both mean the resource.
  if (options.endpoint) return `${options.endpoint.replace(/\/+$/, '').replace(/\/openai(\/v1)?$/, '')}/openai`;
  return `https://${options.resource_name}.openai.azure.com/openai`;
}

/**
 * Azure OpenAI. Classic form: `/openai/deployments/{deployment}/chat/completions?api-version=...`, the model
 * being chosen by the deployment in the URL. `api_version: 'v1'`: Azure's v1 API, `/openai/v1/chat/completions`,
 * with the deployment name as the body's `model`.
 */
export function azureOpenAIEndpoint(options: AzureEndpointOptions): ProviderEndpoint {
  const { origin, prefix } = splitBaseUrl(azureBaseUrl(options));
  // Bodies pass through as they come (streams event by event): none should arrive compressed.
  const headers: Record<string, string> = { 'api-key': options.api_key, 'content-type': 'application/json', 'accept-encoding': 'identity' };
  const v1 = options.api_version === 'v1';
  const apiVersion = encodeURIComponent(options.api_version ?? AZURE_DEFAULT_API_VERSION);
  const { deployments, deployment_id } = options;

  const deploymentFor = (model: string): string | undefined =>
    deployments ? (Object.hasOwn(deployments, model) ? deployments[model] : undefined) : (deployment_id ?? (v1 ? model : undefined));

  const v1Path = `${prefix}/v1/chat/completions`;
  const paths = new Map<string, string>();
  return {
    provider: 'azure-openai',
    secret: options.api_key,
    secretScan: SecretScan.of(options.api_key),
    modelByName: v1 && deployments === undefined && deployment_id === undefined,
    plan(model): UpstreamPlan | SwitchyardError {
      const deployment = deploymentFor(model);
      if (deployment === undefined) {
        // `{ deployment: model }` is the map written the wrong way round: said, as the fix is a swap.
        const reversed = deployments && Object.values(deployments).includes(model) ? ` It is one of the map's deployment names: "deployments" is keyed by model, { "<model>": "<deployment>" }.` : '';
        return new SwitchyardError('model_not_deployed', `Model "${model}" has no Azure OpenAI deployment in this target's "deployments".${reversed}`, {
          param: 'model',
        });
      }
      if (v1) return { origin, path: v1Path, headers, model: deployment, bodyModel: deployment === model ? undefined : deployment };
      let path = paths.get(deployment);
      if (path === undefined) {
        path = `${prefix}/deployments/${encodeURIComponent(deployment)}/chat/completions?api-version=${apiVersion}`;
        paths.set(deployment, path);
      }
      return { origin, path, headers, model: deployment };
    },
  };
}
