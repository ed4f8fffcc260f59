import { openAIEndpoint } from './openai';
import type { UpstreamPlan } from './provider';

describe('OpenAI URLs and headers', () => {
  it("sends the key as a bearer token and Portkey's openai_organization / openai_project as OpenAI's headers", () => {
    const plan = openAIEndpoint({ api_key: 'sk-1', openai_organization: 'org-1', openai_project: 'proj-1' }).plan('gpt-4o') as UpstreamPlan;
    expect(plan.origin).toBe('https://api.openai.com');
    expect(plan.path).toBe('/v1/chat/completions');
    expect(plan.headers).toMatchObject({ authorization: 'Bearer sk-1', 'openai-organization': 'org-1', 'openai-project': 'proj-1' });
  });

  it('sends neither header when they are not set, and keeps the path of a custom host', () => {
    const plan = openAIEndpoint({ api_key: 'sk-1', custom_host: 'http://127.0.0.1:8080/proxy/v1' }).plan('gpt-4o') as UpstreamPlan;
    expect(plan.origin).toBe('http://127.0.0.1:8080');
    expect(plan.path).toBe('/proxy/v1/chat/completions');
    expect(plan.headers).not.toHaveProperty('openai-organization');
    expect(plan.headers).not.toHaveProperty('openai-project');
  });
});
