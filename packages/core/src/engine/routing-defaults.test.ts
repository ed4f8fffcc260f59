import { replies, startFakeAzureOpenAI, startFakeOpenAI, type FakeProvider } from '@switchyard/testing';
import { createFallbackClient, FallbackRequestError, type LogEvent, type SwitchyardOptions } from '../index';

/** Defaults and less common forms the README documents, each pinned by what a caller sees (found unpinned by mutation). */
describe('routing: documented defaults and forms', () => {
  let openai: FakeProvider;
  let azure: FakeProvider;
  let logs: LogEvent[];
  beforeAll(async () => {
    [openai, azure] = await Promise.all([startFakeOpenAI({ name: 'openai' }), startFakeAzureOpenAI({ name: 'azure' })]);
  });
  afterAll(() => Promise.all([openai.close(), azure.close()]));
  beforeEach(() => {
    openai.reset();
    azure.reset();
    logs = [];
  });

  const messages = [{ role: 'user' as const, content: 'hi' }];
  const client = (over: Partial<SwitchyardOptions> & Pick<SwitchyardOptions, 'config'>) =>
    createFallbackClient({
      virtualKeys: {
        o: { provider: 'openai', api_key: 'sk-o', custom_host: openai.baseURL },
        a: { provider: 'azure-openai', api_key: 'az', custom_host: azure.baseURL, deployments: { 'gpt-4o': 'gpt4o-prod' } },
        west: { provider: 'azure-openai', api_key: 'az', custom_host: azure.baseURL, deployments: { 'gpt-4o': 'gpt4o-west' } },
        v1: { provider: 'azure-openai', api_key: 'az', custom_host: azure.baseURL, api_version: 'v1' },
        v1map: { provider: 'azure-openai', api_key: 'az', custom_host: azure.baseURL, api_version: 'v1', deployments: { 'gpt-4o': 'gpt4o-prod', 'gpt-4o-mini': 'gpt4o-mini-prod' } },
      },
      onLog: (e) => logs.push(e),
      ...over,
    });
  const failure = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a failure'); }, (e: FallbackRequestError) => e);

  it('retries the default codes (429, 500, 502, 503, 504) when retry names none', async () => {
    const c = client({ maxRetryDelayMs: 0, config: { targets: [{ virtual_key: 'o', retry: { attempts: 5 } }], strategy: { mode: 'single' } } });
    openai.enqueue(...[429, 500, 502, 503, 504].map((status) => ({ status, headers: { 'retry-after-ms': '0' } })));
    expect((await c.chat.completions.create({ model: 'gpt-4o', messages })).choices[0]!.message.content).toBe('Hello from openai');
    expect(logs[0]!.attempts.map((a) => a.status)).toEqual([429, 500, 502, 503, 504, 200]);
  });

  it('gives loadbalance targets weight 1 when they name none', async () => {
    const c = client({ config: { strategy: { mode: 'loadbalance' }, targets: [{ virtual_key: 'o' }, { virtual_key: 'a' }] } });
    const served = new Set<string>();
    for (let i = 0; i < 40 && served.size < 2; i++) served.add((await c.chat.completions.create({ model: 'gpt-4o', messages })).choices[0]!.message.content ?? '');
    expect([...served].sort()).toEqual(['Hello from azure', 'Hello from openai']);
  });

  it("keeps OpenAI's 429 for the client when every fallback after it has no deployment for the model", async () => {
    const c = client({ config: { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'o' }, { virtual_key: 'a' }, { virtual_key: 'west' }] } });
    openai.enqueue(replies.rateLimited(7));
    const err = await failure(c.chat.completions.create({ model: 'o3', messages }));
    expect([err.status, err.headers['retry-after']]).toEqual([429, '7']);
    expect(logs[0]!.attempts.map((a) => a.error?.code ?? a.status)).toEqual([429, 'model_not_deployed', 'model_not_deployed']);
  });

  it("Azure v1: with no deployments, the model goes as it is; with a map, a target's override model goes as its deployment", async () => {
    await client({ config: { virtual_key: 'v1' } }).chat.completions.create({ model: 'gpt-4o', messages });
    await client({ config: { targets: [{ virtual_key: 'v1map', override_params: { model: 'gpt-4o-mini' } }], strategy: { mode: 'single' } } }).chat.completions.create({ model: 'gpt-4o', messages });
    expect(azure.requests.map((r) => [r.path, (r.body as { model: string }).model])).toEqual([
      ['/openai/v1/chat/completions', 'gpt-4o'],
      ['/openai/v1/chat/completions', 'gpt4o-mini-prod'],
    ]);
  });

  it('lets a stream run past request_timeout once its first event came', async () => {
    const c = client({ config: { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'o', request_timeout: 150 }, { virtual_key: 'a' }] } });
    openai.enqueue(replies.stream({ chunks: ['a', 'b', 'c', 'd', 'e', 'f'], intervalMs: 60 }));
    let text = '';
    for await (const chunk of await c.chat.completions.create({ model: 'gpt-4o', messages, stream: true })) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('abcdef');
    expect(logs[0]!.attempts.map((a) => [a.status, a.error?.code])).toEqual([[200, undefined]]);
  });

  it('falls back from a 300, as from any redirect', async () => {
    const c = client({ config: { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'o' }, { virtual_key: 'a' }] } });
    openai.enqueue({ status: 300, body: {} });
    expect((await c.chat.completions.create({ model: 'gpt-4o', messages })).choices[0]!.message.content).toBe('Hello from azure');
  });
});
