import { SwitchyardError } from '../errors';
import { AZURE_DEFAULT_API_VERSION, azureOpenAIEndpoint } from './azure-openai';
import type { UpstreamPlan } from './provider';

const planOf = (options: Parameters<typeof azureOpenAIEndpoint>[0], model = 'gpt-4o') => azureOpenAIEndpoint(options).plan(model) as UpstreamPlan;

describe('Azure OpenAI URLs', () => {
  it('builds the classic URL from resource_name, with the default api-version and the api-key header', () => {
    const plan = planOf({ api_key: 'k', resource_name: 'contoso', deployment_id: 'gpt4o-prod' });
    expect(plan.origin).toBe('https://contoso.openai.azure.com');
    expect(plan.path).toBe(`/openai/deployments/gpt4o-prod/chat/completions?api-version=${AZURE_DEFAULT_API_VERSION}`);
    expect(plan.headers).toMatchObject({ 'api-key': 'k' });
    expect(plan.headers).not.toHaveProperty('authorization');
  });

  it('accepts the endpoint as the portal shows it, with or without /openai', () => {
    for (const endpoint of ['https://contoso.openai.azure.com', 'https://contoso.openai.azure.com/', 'https://contoso.openai.azure.com/openai']) {
      const plan = planOf({ api_key: 'k', endpoint, deployments: { 'gpt-4o': 'gpt4o prod' }, api_version: '2025-01-01-preview' });
      expect(plan.origin).toBe('https://contoso.openai.azure.com');
      expect(plan.path).toBe('/openai/deployments/gpt4o%20prod/chat/completions?api-version=2025-01-01-preview');
    }
  });

  it("takes Azure's v1 base URL as the endpoint without doubling its path", () => {
    for (const endpoint of ['https://contoso.openai.azure.com/openai/v1/', 'https://contoso.openai.azure.com']) {
      const plan = planOf({ api_key: 'k', endpoint, api_version: 'v1', deployments: { 'gpt-4o': 'gpt4o-prod' } });
      expect(`${plan.origin}${plan.path}`).toBe('https://contoso.openai.azure.com/openai/v1/chat/completions');
      expect(plan.bodyModel).toBe('gpt4o-prod');
    }
    // The same base URL as a custom_host (a gateway in front of Azure).
    for (const custom_host of ['https://gw.example.com/openai/v1', 'https://gw.example.com/openai/v1/', 'https://gw.example.com/openai']) {
      const plan = planOf({ api_key: 'k', custom_host, api_version: 'v1', deployments: { 'gpt-4o': 'gpt4o-prod' } });
      expect(`${plan.origin}${plan.path}`).toBe('https://gw.example.com/openai/v1/chat/completions');
    }
  });

  it("v1 form: a fixed deployment_id or the map's deployment is what is asked for, and a model the map lacks is refused", () => {
    const fixed = planOf({ api_key: 'k', resource_name: 'contoso', api_version: 'v1', deployment_id: 'gpt4o-prod' }, 'gpt-4o-mini');
    expect([fixed.path, fixed.model, fixed.bodyModel]).toEqual(['/openai/v1/chat/completions', 'gpt4o-prod', 'gpt4o-prod']);
    const mapped = azureOpenAIEndpoint({ api_key: 'k', resource_name: 'contoso', api_version: 'v1', deployments: { 'gpt-4o': 'gpt4o-prod' } });
    expect((mapped.plan('gpt-4o') as UpstreamPlan).model).toBe('gpt4o-prod'); // what the log's attempt names
    expect(mapped.plan('o3')).toMatchObject({ code: 'model_not_deployed' });
    // Only a v1 target without any deployment in its config finds the model by the name the request gives.
    expect([mapped.modelByName, azureOpenAIEndpoint({ api_key: 'k', resource_name: 'contoso', api_version: 'v1', deployment_id: 'd' }).modelByName]).toEqual([false, false]);
    expect(azureOpenAIEndpoint({ api_key: 'k', resource_name: 'contoso', api_version: 'v1' }).modelByName).toBe(true);
  });

  it("refuses a model named like an Object member (`constructor`, `toString`, `__proto__`): it is no deployment in the map", () => {
    const endpoint = azureOpenAIEndpoint({ api_key: 'k', resource_name: 'contoso', deployments: { 'gpt-4o': 'gpt4o-prod' } });
    for (const model of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      const plan = endpoint.plan(model);
      expect(plan).toBeInstanceOf(SwitchyardError);
      expect(plan).toMatchObject({ code: 'model_not_deployed' });
    }
  });
});
