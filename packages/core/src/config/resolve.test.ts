import { Gateway, SwitchyardOptionsError, type SwitchyardOptions } from '../index';
import type { UpstreamPlan } from '../providers/provider';
import type { RouteNode } from './resolve';

function issuesOf(options: unknown): string[] {
  try {
    new Gateway(options as SwitchyardOptions);
  } catch (err) {
    expect(err).toBeInstanceOf(SwitchyardOptionsError);
    expect((err as SwitchyardOptionsError).code).toBe('invalid_options');
    return (err as SwitchyardOptionsError).issues.map((i) => `${i.path}: ${i.message}`);
  }
  throw new Error('expected the options to be rejected');
}

const virtualKeys = {
  'openai-prod': { provider: 'openai' as const, api_key: 'sk-1' },
  'azure-prod': { provider: 'azure-openai' as const, api_key: 'az-1', resource_name: 'res', deployments: { 'gpt-4o': 'dep' } },
};

describe('options validation (at construction, every issue with its path)', () => {
  it('names an unknown virtual key with its path and the known ones', () => {
    expect(issuesOf({ virtualKeys, config: { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'x' }] } })).toEqual([
      'config.targets[1].virtual_key: unknown virtual key "x" (known: openai-prod, azure-prod)',
    ]);
    // A declared key with a problem of its own is reported at its path, and still listed as known beside a typo.
    const withBroken = { ...virtualKeys, 'azure-prod': { provider: 'azure-openai', resource_name: 'res', deployments: { 'gpt-4o': 'dep' } } };
    expect(issuesOf({ virtualKeys: withBroken, config: { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prd' }] } })).toEqual([
      expect.stringMatching(/^virtualKeys\["azure-prod"\]\.api_key: /),
      'config.targets[1].virtual_key: unknown virtual key "azure-prd" (known: openai-prod, azure-prod)',
    ]);
  });

  it('lists the first 20 known virtual keys beside an unknown one, and how many more there are', () => {
    const many = Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`tenant-${i}`, { provider: 'openai', api_key: `sk-${i}` }]));
    const [issue] = issuesOf({ virtualKeys: many, config: { virtual_key: 'tenant-x' } });
    expect(issue).toBe(`config.virtual_key: unknown virtual key "tenant-x" (known: ${Array.from({ length: 20 }, (_, i) => `tenant-${i}`).join(', ')} and 5 more)`);
  });

  it('suggests the virtual key a name misspells, even past the first 20 listed', () => {
    const many = Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`tenant-${i}`, { provider: 'openai', api_key: `sk-${i}` }]));
    expect(issuesOf({ virtualKeys: many, config: { virtual_key: 'tenant_24' } })).toEqual(['config.virtual_key: unknown virtual key "tenant_24" (did you mean "tenant-24"?)']);
  });

  it('refuses a key still wrapped in quotes or written as a Bearer header value, without quoting it', () => {
    const issues = issuesOf({
      virtualKeys: {
        quoted: { provider: 'openai', api_key: '"sk-proj-abcdefghijklmnop1234"' },
        single: { provider: 'azure-openai', api_key: "'0123456789abcdef0123456789abcdef'", resource_name: 'res', deployment_id: 'd' },
        bearer: { provider: 'openai', api_key: 'Bearer sk-proj-abcdefghijklmnop1234' },
      },
      config: { virtual_key: 'quoted' },
    });
    expect(issues).toEqual([
      'virtualKeys.quoted.api_key: must be the key itself, without the quotes around it (`docker run --env-file` keeps them)',
      'virtualKeys.single.api_key: must be the key itself, without the quotes around it (`docker run --env-file` keeps them)',
      'virtualKeys.bearer.api_key: must be the key itself, without `Bearer ` (Switchyard writes the header)',
    ]);
    // A key with a quote inside, or one quote only, is no quoted key: refused as no provider's key, once each.
    const inside = issuesOf({ virtualKeys: { k: { provider: 'openai', api_key: 'sk-a"b' }, j: { provider: 'openai', api_key: '"sk-ab' }, b: { provider: 'openai', api_key: 'sk-a\\b' } }, config: { virtual_key: 'k' } });
    expect(inside).toEqual(['k', 'j', 'b'].map((name) => `virtualKeys.${name}.api_key: ` + 'must not contain `"` or `\\` (no provider key has them)'));
    // Other punctuation a key may have is taken.
    expect(() => new Gateway({ virtualKeys: { k: { provider: 'openai', api_key: "sk-a'b_c.d~e+f/g=" } }, config: { virtual_key: 'k' } })).not.toThrow();
  });

  it('says that a number given as a string (from the environment) must be converted', () => {
    const issues = issuesOf({
      virtualKeys,
      deadlineMs: '60000',
      config: { strategy: { mode: 'fallback', on_status_codes: ['429'] }, targets: [{ virtual_key: 'openai-prod', retry: { attempts: '3' } }, { virtual_key: 'azure-prod' }] },
    });
    const why = (value: string) => `must be a number, not the string "${value}" (values read from the environment are strings: convert them with Number(...))`;
    expect(issues).toEqual(expect.arrayContaining([
      `deadlineMs: ${why('60000')}`,
      `config.strategy.on_status_codes[0]: ${why('429')}`,
      `config.targets[0].retry.attempts: ${why('3')}`,
    ]));
  });

  it('refuses an Azure api_version that is no API version', () => {
    const azure = (api_version: string) => ({ provider: 'azure-openai', api_key: 'az-1', resource_name: 'res', deployment_id: 'd', api_version });
    const issues = issuesOf({ virtualKeys: { a: azure('2024-1021'), b: azure('0613'), c: azure('2024-10-21-previw') }, config: { virtual_key: 'a' } });
    expect(issues).toEqual(['a', 'b', 'c'].map((k) => `virtualKeys.${k}.api_version: must be an Azure OpenAI API version such as "2024-10-21" or "2025-04-01-preview", or "v1"`));
    for (const version of ['2024-10-21', '2025-04-01-preview', 'v1']) {
      expect(() => new Gateway({ virtualKeys: { a: azure(version) as never }, config: { virtual_key: 'a' } })).not.toThrow();
    }
  });

  it("refuses a custom_host on OpenAI's or Azure's own host without the API's path", () => {
    const issues = issuesOf({
      virtualKeys: {
        openai: { provider: 'openai', api_key: 'sk-1', custom_host: 'https://api.openai.com' },
        azure: { provider: 'azure-openai', api_key: 'az-1', custom_host: 'https://my-res.openai.azure.com/', deployment_id: 'd' },
      },
      config: { virtual_key: 'openai' },
    });
    expect(issues).toEqual([
      "virtualKeys.openai.custom_host: must be OpenAI's API base URL, `https://api.openai.com/v1` (or left out: it is the default)",
      'virtualKeys.azure.custom_host: is an Azure resource endpoint: give it as `endpoint`, or add `/openai` to it (Switchyard appends the deployment path)',
    ]);
    // Written beside a virtual key, or passed down by a strategy to one: the host its requests go to.
    expect(issuesOf({
      virtualKeys,
      config: { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'openai-prod', custom_host: 'https://api.openai.com' }, { strategy: { mode: 'single' }, custom_host: 'https://api.openai.com', targets: [{ virtual_key: 'openai-prod' }] }] },
    })).toEqual([
      "config.targets[0].custom_host: must be OpenAI's API base URL, `https://api.openai.com/v1` (or left out: it is the default)",
      "config.targets[1].targets[0].custom_host: must be OpenAI's API base URL, `https://api.openai.com/v1` (or left out: it is the default) (the custom_host its strategy passes down)",
    ]);
    expect(issuesOf({
      virtualKeys: { ...virtualKeys, az: { provider: 'azure-openai', api_key: 'az-1', deployment_id: 'd', custom_host: 'http://127.0.0.1:9/openai' } },
      config: { virtual_key: 'az', custom_host: 'https://res.openai.azure.com' },
    })).toEqual(['config.custom_host: is an Azure resource endpoint: give it as `endpoint`, or add `/openai` to it (Switchyard appends the deployment path)']);
    // Other hosts' paths are their own; the providers' hosts with their paths are fine.
    const fine = {
      virtualKeys: {
        local: { provider: 'openai' as const, api_key: 'sk-1', custom_host: 'http://127.0.0.1:4000' },
        openai: { provider: 'openai' as const, api_key: 'sk-1', custom_host: 'https://api.openai.com/v1/' },
        azure: { provider: 'azure-openai' as const, api_key: 'az-1', custom_host: 'https://my-res.openai.azure.com/openai', deployment_id: 'd' },
      },
      config: { virtual_key: 'local' },
    };
    expect(() => new Gateway(fine)).not.toThrow();
  });

  it('says where a URL pasted as an Azure resource_name goes', () => {
    const issues = issuesOf({ virtualKeys: { az: { provider: 'azure-openai', api_key: 'k', resource_name: 'https://my-resource.openai.azure.com/', deployment_id: 'd' } }, config: { virtual_key: 'az' } });
    expect(issues).toEqual(['virtualKeys.az.resource_name: must be an Azure resource name (letters, digits, dashes; a URL goes in `endpoint`)']);
  });

  it('rejects unknown keys everywhere, reporting each one', () => {
    const issues = issuesOf({
      virtualKeys: { 'openai-prod': { provider: 'openai', api_key: 'k', apiKey: 'k' } },
      config: { strategy: { mode: 'fallback', on_status: [429] }, targets: [{ virtual_key: 'openai-prod' }] },
      basepath: '/v1',
    });
    expect(issues).toEqual(
      expect.arrayContaining([
        'virtualKeys["openai-prod"].apiKey: unknown option (did you mean `api_key`?)',
        'config.strategy.on_status: unknown option',
        'basepath: unknown option (did you mean `basePath`?)',
      ]),
    );
  });

  it('reports bad values and missing fields with paths', () => {
    const issues = issuesOf({
      virtualKeys: { az: { provider: 'azure-openai', resource_name: 'r' } },
      config: { strategy: { mode: 'roundrobin' }, targets: [] },
      deadlineMs: -1,
    });
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^virtualKeys\.az\.api_key: /),
        expect.stringMatching(/^config\.strategy\.mode: /),
        expect.stringMatching(/^config\.targets: must list at least one target/),
        expect.stringMatching(/^deadlineMs: /),
      ]),
    );
  });

  it('checks provider-specific fields', () => {
    expect(
      issuesOf({
        virtualKeys: {
          a: { provider: 'azure-openai', api_key: 'k' },
          o: { provider: 'openai', api_key: 'k', deployment_id: 'd' },
        },
        config: { targets: [{ virtual_key: 'a' }], strategy: { mode: 'single' } },
      }),
    ).toEqual([
      'virtualKeys.a: Azure OpenAI needs `resource_name`, `endpoint` or `custom_host`',
      'virtualKeys.a: Azure OpenAI needs `deployment_id` or a `deployments` model map (or `api_version: "v1"`)',
      'virtualKeys.o.deployment_id: not an option of provider "openai"',
    ]);
  });

  it('requires a routing config, and a provider or targets on each target', () => {
    expect(issuesOf({ virtualKeys })).toEqual(['config: a routing config is required (`config`, or named `configs`)']);
    expect(issuesOf({ config: { strategy: { mode: 'fallback' }, targets: [{ api_key: 'k' }] } })).toEqual([
      'config.targets[0]: a target needs `virtual_key`, inline `provider` + `api_key`, or `strategy` + `targets`',
    ]);
    expect(issuesOf({ virtualKeys, configs: { x: { targets: [{ virtual_key: 'openai-prod', api_key: 'k' }] } } })).toEqual([
      'configs.x.strategy: is required with `targets`',
      'configs.x.targets[0].api_key: set it on the virtual key, not beside `virtual_key`',
    ]);
  });

  it('refuses values that would fail every request later: timers over 2^31-1 ms, keys with line breaks, URLs with extras', () => {
    expect(
      issuesOf({
        virtualKeys: {
          o: { provider: 'openai', api_key: 'sk-1\n', openai_organization: 'org\u2013x', custom_host: 'https://user:pw@example.com/v1' },
          a: { provider: 'azure-openai', api_key: 'k', endpoint: 'https://r.openai.azure.com/?x=1', deployment_id: 'd' },
        },
        config: { virtual_key: 'o', request_timeout: 3e9, override_params: { seed: 1n } },
        deadlineMs: 1e10,
      }),
    ).toEqual([
      'virtualKeys.o.api_key: must not contain line breaks, control characters or characters an HTTP header cannot carry',
      'virtualKeys.o.openai_organization: must not contain line breaks, control characters or characters an HTTP header cannot carry',
      'virtualKeys.o.custom_host: must be a base URL without credentials, query or fragment',
      'virtualKeys.a.endpoint: must be a base URL without credentials, query or fragment',
      'config.override_params: must be JSON-encodable (no BigInt, no cycles)',
      'config.request_timeout: must be at most 2147483647 (about 24.8 days)',
      'deadlineMs: must be at most 2147483647 (about 24.8 days)',
    ]);
  });

  it('refuses an operation URL pasted as a base URL, which would get the path twice and a 404 on every request', () => {
    const azure = (endpoint: string) => ({ provider: 'azure-openai', api_key: 'k', endpoint, deployment_id: 'd' });
    expect(
      issuesOf({
        virtualKeys: {
          withQuery: azure('https://r.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21'),
          withoutQuery: azure('https://r.openai.azure.com/openai/deployments/gpt4o/chat/completions'),
          v1: azure('https://r.openai.azure.com/openai/v1/chat/completions'),
          basePath: azure('https://r.openai.azure.com/openai/deployments'),
          o: { provider: 'openai', api_key: 'k', custom_host: 'https://proxy.example.com/v1/chat/completions/' },
        },
        config: { virtual_key: 'o' },
      }).map((issue) => issue.replace(/^(virtualKeys\.\w+\.\w+): .*(resource endpoint|without `\/chat\/completions`).*$/, '$1: $2')),
    ).toEqual([
      'virtualKeys.withQuery.endpoint: resource endpoint',
      'virtualKeys.withoutQuery.endpoint: resource endpoint',
      'virtualKeys.v1.endpoint: resource endpoint',
      'virtualKeys.basePath.endpoint: resource endpoint',
      'virtualKeys.o.custom_host: without `/chat/completions`',
    ]);
    // What the portal and Azure's v1 docs show as a base URL is still accepted, and an API gateway's path prefix too.
    for (const endpoint of ['https://r.openai.azure.com/', 'https://r.openai.azure.com/openai/v1/', 'https://apim.example.com/team-a']) {
      expect(() => new Gateway({ virtualKeys: { a: azure(endpoint) }, config: { virtual_key: 'a' } } as SwitchyardOptions)).not.toThrow();
    }
  });

  it("reports the schema's problems and the cross-field ones together, in one error", () => {
    expect(
      issuesOf({
        virtualKeys: { a: { provider: 'openai', api_key: 'k', colour: 'blue' }, b: { provider: 'openai', api_key: 5 } },
        config: {
          strategy: { mode: 'fallback' },
          targets: [{ virtual_key: 'a' }, { virtual_key: 'missing' }, { provider: 'azure-openai', api_key: 'k' }],
        },
        maxBodyBytes: -1,
      }),
    ).toEqual([
      'virtualKeys.a.colour: unknown option',
      'virtualKeys.b.api_key: must be a string',
      'maxBodyBytes: Too small: expected number to be >0',
      // Not "unknown virtual key" for `a`: its own problem is reported above.
      'config.targets[1].virtual_key: unknown virtual key "missing" (known: a, b)',
      'config.targets[2]: Azure OpenAI needs `resource_name`, `endpoint` or `custom_host`',
      'config.targets[2]: Azure OpenAI needs `deployment_id` or a `deployments` model map (or `api_version: "v1"`)',
    ]);
    expect(issuesOf({ virtualKeys, deadlineMs: 0 })).toEqual([
      'deadlineMs: Too small: expected number to be >0',
      'config: a routing config is required (`config`, or named `configs`)',
    ]);
  });

  it('refuses configs that could never do what they say: an empty status list, a loadbalance with every weight 0, a stream override, a model that is no name', () => {
    expect(
      issuesOf({
        virtualKeys,
        config: {
          strategy: { mode: 'fallback', on_status_codes: [] },
          targets: [{ virtual_key: 'openai-prod', retry: { attempts: 2, on_status_codes: [] } }, { virtual_key: 'azure-prod', override_params: { stream: true } }],
        },
        configs: {
          lb: { strategy: { mode: 'loadbalance' }, targets: [{ virtual_key: 'openai-prod', weight: 0 }, { virtual_key: 'azure-prod', weight: 0 }] },
          huge: { strategy: { mode: 'loadbalance' }, targets: [{ virtual_key: 'openai-prod', weight: 1e308 }, { virtual_key: 'openai-prod', weight: 1e308 }, { virtual_key: 'azure-prod', weight: 0 }] },
          models: { strategy: { mode: 'fallback' }, override_params: { model: 5 }, targets: [{ virtual_key: 'openai-prod', override_params: { model: '' } }] },
        },
      }),
    ).toEqual([
      'config.strategy.on_status_codes: must list at least one status (leave it out to fall back on every status >= 400; Portkey reads [] as never falling back: for that, use mode "single")',
      'config.targets[0].retry.on_status_codes: must list at least one status (leave it out for 429 and 5xx; Portkey reads [] as retrying no status: for that, leave `retry` out)',
      'config.targets[1].override_params: cannot set `stream`: the client chooses a JSON answer or a stream',
      'configs.models.targets[0].override_params.model: must be a model name (a non-empty string)',
      'configs.models.override_params.model: must be a model name (a non-empty string)',
      'configs.lb.targets: a loadbalance strategy needs a target with a weight above 0',
      'configs.huge.targets: the weights of a loadbalance strategy must add up to a finite number',
    ]);
  });

  it('names the Portkey features it lacks, suggests the key a misspelt one meant, and says "is required"', () => {
    expect(
      issuesOf({
        virtual_keys: virtualKeys,
        virtualKeys: { entra: { provider: 'azure-openai', api_key: 'k', resource_name: 'r', deployment_id: 'd', azure_auth_mode: 'entra' } },
        configs: { catalog: { provider: '@openai-prod', api_key: 'k' } },
        config: {
          virtualKey: 'openai-prod',
          cache: { mode: 'simple' },
          retry: { use_retry_after_headers: true },
          strategy: { mode: 'fallback', onStatusCodes: [429] },
          targets: [
            { virtual_key: 'openai-prod', name: 'primary' },
            { strategy: { mode: 'conditional', conditions: [], default: 'a' }, targets: [{ virtual_key: 'openai-prod', azure_auth_mode: 'entra' }] },
          ],
        },
      }),
    ).toEqual([
      'virtualKeys.entra.azure_auth_mode: unknown option: Switchyard authenticates to Azure OpenAI with its `api_key` only (no Entra ID or managed identity)',
      'config.strategy.onStatusCodes: unknown option (did you mean `on_status_codes`?)',
      'config.targets[0].name: unknown option: Switchyard has no conditional routing; remove it, and choose the config on the server instead, by setting `x-switchyard-config` in your middleware (README: "Several routing configs")',
      'config.targets[1].strategy.mode: must be "fallback", "single" or "loadbalance" (Portkey\'s "conditional" is not supported)',
      'config.targets[1].strategy.conditions: unknown option: Switchyard has no conditional routing; remove it, and choose the config on the server instead, by setting `x-switchyard-config` in your middleware (README: "Several routing configs")',
      'config.targets[1].strategy.default: unknown option: Switchyard has no conditional routing; remove it, and choose the config on the server instead, by setting `x-switchyard-config` in your middleware (README: "Several routing configs")',
      'config.targets[1].targets[0].azure_auth_mode: unknown option: Switchyard authenticates to Azure OpenAI with its `api_key` only (no Entra ID or managed identity)',
      'config.retry.attempts: is required',
      'config.retry.use_retry_after_headers: unknown option (did you mean `use_retry_after_header`?)',
      'config.virtualKey: unknown option (did you mean `virtual_key`?)',
      'config.cache: unknown option: Switchyard caches no answers (every request reaches a provider); remove it',
      'configs.catalog.provider: must be "openai" or "azure-openai" (for Portkey\'s "@openai-prod", define a virtual key and name it in `virtual_key`)',
      'virtual_keys: unknown option (did you mean `virtualKeys`?)',
    ]);
  });

  it("points a pasted Portkey config's other forms to what Switchyard reads", () => {
    expect(
      issuesOf({
        virtualKeys,
        configs: {
          catalog: { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'openai-prod', override_params: { model: '@openai-prod/gpt-4o' } }] },
          legacy: { mode: 'fallback', options: [{ virtual_key: 'openai-prod' }] },
          shapes: { retry: 3, strategy: 'fallback', targets: [{ virtual_key: 'openai-prod', on_status_codes: [429] }] },
          extras: {
            strategy: { mode: 'loadbalance', sticky: { hash_fields: ['user'] }, sticky_session: { hash_fields: ['user'], ttl: 3600 } },
            input_mutators: [], default_input_guardrails: [], metadata: { team: 'a' },
            targets: [{ virtual_key: 'openai-prod' }],
          },
          // Portkey reads camelCase too; Azure's other ways to sign in; triggers at a config's root.
          camel: { strategy: { mode: 'fallback', cbConfig: { failure_threshold: 3 } }, on_status_codes: [429], inputGuardrails: [], forwardHeaders: ['x-user'], targets: [{ virtual_key: 'openai-prod', afterRequestHooks: [] }] },
          entra: { provider: 'azure-openai', resource_name: 'r', deployment_id: 'd', azure_ad_token: 't', azureEntraClientId: 'c', azureApiVersion: '2024-10-21' },
        },
      }),
    ).toEqual([
      'configs.catalog.targets[0].override_params.model: "@openai-prod/gpt-4o" is Portkey\'s Model Catalog form: define virtual key "openai-prod" in `virtualKeys` (an `openai` or `azure-openai` key: Switchyard reaches no other providers) and write `virtual_key: "openai-prod"` with `override_params: { model: "gpt-4o" }`',
      'configs.legacy.mode: unknown option: Portkey\'s old config format; write `strategy: { mode }` and `targets`',
      'configs.legacy.options: unknown option: Portkey\'s old config format; write `strategy: { mode }` and `targets`',
      'configs.shapes.strategy: must be an object such as { mode: "fallback" }',
      'configs.shapes.targets[0].on_status_codes: unknown option on a target: fallback triggers go in the parent\'s `strategy.on_status_codes`, retry triggers in `retry.on_status_codes`',
      'configs.shapes.retry: must be an object such as { attempts: 3 }',
      'configs.extras.strategy.sticky: unknown option: loadbalance picks a target by weight for each request (no sticky sessions); remove it',
      'configs.extras.strategy.sticky_session: unknown option: loadbalance picks a target by weight for each request (no sticky sessions); remove it',
      'configs.extras.input_mutators: unknown option: Switchyard runs no guardrails, hooks or mutators; remove it, and run the check in your own middleware or code before (or after) Switchyard',
      'configs.extras.default_input_guardrails: unknown option: Switchyard runs no guardrails, hooks or mutators; remove it, and run the check in your own middleware or code before (or after) Switchyard',
      'configs.extras.metadata: unknown option: remove it; a request is found in the logs by its trace id (`x-switchyard-trace-id`) and config id',
      'configs.camel.strategy.cbConfig: unknown option (did you mean `cb_config`?)',
      'configs.camel.targets[0].afterRequestHooks: unknown option: Switchyard runs no guardrails, hooks or mutators; remove it, and run the check in your own middleware or code before (or after) Switchyard',
      'configs.camel.on_status_codes: unknown option here: fallback triggers go in a config\'s (beside its `targets`) `strategy.on_status_codes`, retry triggers in `retry.on_status_codes`',
      'configs.camel.inputGuardrails: unknown option: Switchyard runs no guardrails, hooks or mutators; remove it, and run the check in your own middleware or code before (or after) Switchyard',
      'configs.camel.forwardHeaders: unknown option: Switchyard sends no header of the client upstream (hosts and credentials stay on the server); remove it',
      'configs.entra.azure_ad_token: unknown option: Switchyard authenticates to Azure OpenAI with its `api_key` only (no Entra ID or managed identity)',
      'configs.entra.azureEntraClientId: unknown option: Switchyard authenticates to Azure OpenAI with its `api_key` only (no Entra ID or managed identity)',
      'configs.entra.azureApiVersion: unknown option (did you mean `api_version`?)',
    ]);
  });

  it("checks a circuit breaker's cb_config where Portkey puts it, in a strategy", () => {
    const cb = (cb_config: unknown) => ({ strategy: { mode: 'fallback', cb_config }, targets: [{ virtual_key: 'openai-prod' }] });
    expect(
      issuesOf({
        virtualKeys,
        config: { ...cb({ failure_threshold: 5, cooldown_interval: 60000, failure_status_codes: [429, 503] }), targets: [{ virtual_key: 'openai-prod', cb_config: { failure_threshold: 5 } }] },
        configs: {
          none: cb({ cooldown_interval: 60000 }),
          lonely: cb({ failure_threshold: 3, minimum_requests: 10, cooldown_interval: 60000 }),
          nocool: cb({ failure_threshold: 3 }),
          bad: cb({ failure_threshold: 0, failure_threshold_percentage: 120, cooldown_interval: -1, failure_status_codes: [], minimum_requests: 2.5 }),
          typo: cb({ failure_threshold: 2, cooldownInterval: 60000, FailureStatusCodes: [500] }),
          shape: cb(5),
          rate: cb({ failure_threshold_percentage: 20, minimum_requests: 10, cooldown_interval: 60000 }),
        },
      }),
    ).toEqual([
      'config.targets[0].cb_config: unknown option here: a circuit breaker belongs to a strategy (`strategy: { mode, cb_config }`)',
      'configs.none.strategy.cb_config: needs `failure_threshold` or `failure_threshold_percentage` (what opens a circuit)',
      'configs.lonely.strategy.cb_config.minimum_requests: `minimum_requests` applies to `failure_threshold_percentage` only: give one, or leave `minimum_requests` out',
      'configs.nocool.strategy.cb_config.cooldown_interval: is required: how long, in ms, a failing target is skipped (at least 30000)',
      'configs.bad.strategy.cb_config.failure_threshold: Too small: expected number to be >=1',
      'configs.bad.strategy.cb_config.failure_threshold_percentage: must be a percentage (at most 100)',
      'configs.bad.strategy.cb_config.cooldown_interval: Too small: expected number to be >0',
      'configs.bad.strategy.cb_config.failure_status_codes: must list at least one status (leave it out for every status >= 500)',
      'configs.bad.strategy.cb_config.minimum_requests: must be a whole number of requests',
      'configs.typo.strategy.cb_config.cooldown_interval: is required: how long, in ms, a failing target is skipped (at least 30000)',
      'configs.typo.strategy.cb_config.cooldownInterval: unknown option (did you mean `cooldown_interval`?)',
      'configs.typo.strategy.cb_config.FailureStatusCodes: unknown option (did you mean `failure_status_codes`?)',
      'configs.shape.strategy.cb_config: must be an object such as { failure_threshold: 5, cooldown_interval: 60000 }',
    ]);
  });

  it("says what a Portkey SDK user's other config forms and numbers need: no saved ids, JSON parsed, whole numbers", () => {
    expect(
      issuesOf({
        virtualKeys,
        config: 'pc-fallba-1a2b3c',
        configs: {
          json: JSON.stringify({ virtual_key: 'openai-prod' }) as never,
          list: { strategy: { mode: 'fallback' }, targets: [7 as never] },
          floats: { virtual_key: 'openai-prod', request_timeout: 1500.5, retry: { attempts: 2.5 } },
          negative: { virtual_key: 'openai-prod', request_timeout: -1 },
        },
      } as unknown as SwitchyardOptions),
    ).toEqual([
      'config: must be an object, not a string: Switchyard has no saved config ids (`pc-…`), so paste the config itself (a JSON string: `JSON.parse` it first)',
      'configs.json: must be an object, not a string: Switchyard has no saved config ids (`pc-…`), so paste the config itself (a JSON string: `JSON.parse` it first)',
      'configs.list.targets[0]: must be an object such as { virtual_key: "openai-prod" } or { strategy: { mode: "fallback" }, targets: [...] }',
      'configs.floats.retry.attempts: must be a whole number of retries',
      'configs.floats.request_timeout: must be a whole number of milliseconds',
      'configs.negative.request_timeout: must be a number of milliseconds (0: not set)',
    ]);
    // 0 reads as unset, as Portkey's gateway reads it (`if (requestTimeout)`): no timeout here, under any deadline.
    expect(() => new Gateway({ virtualKeys, deadlineMs: 1_000, config: { virtual_key: 'openai-prod', request_timeout: 0 } })).not.toThrow();
  });

  it('refuses a request_timeout not shorter than the deadline, which would always cut it first', () => {
    const config = { strategy: { mode: 'fallback' }, request_timeout: 900_000, targets: [{ virtual_key: 'openai-prod', request_timeout: 2_000 }] };
    expect(issuesOf({ virtualKeys, config })).toEqual([
      'config.request_timeout: is not shorter than `deadlineMs` (590000 ms), which ends the whole request first: raise `deadlineMs` or lower it',
    ]);
    expect(issuesOf({ virtualKeys, deadlineMs: 1_000, basePath: 5, config })).toEqual([
      'basePath: Invalid input: expected string, received number',
      'config.request_timeout: is not shorter than `deadlineMs` (1000 ms), which ends the whole request first: raise `deadlineMs` or lower it',
      'config.targets[0].request_timeout: is not shorter than `deadlineMs` (1000 ms), which ends the whole request first: raise `deadlineMs` or lower it',
    ]);
    // Equal: the deadline's timer fires first, so the next target would never be tried.
    expect(issuesOf({ virtualKeys, deadlineMs: 2_000, config: { ...config, request_timeout: 1_000 } })).toEqual([
      'config.targets[0].request_timeout: is not shorter than `deadlineMs` (2000 ms), which ends the whole request first: raise `deadlineMs` or lower it',
    ]);
    expect(() => new Gateway({ virtualKeys, deadlineMs: 900_001, config: config as SwitchyardOptions['config'] })).not.toThrow();
  });

  it("names Azure's fields as Portkey's config reference spells them, and reads an empty on_status_codes as Portkey would", () => {
    expect(
      issuesOf({
        virtualKeys: { az: { provider: 'azure-openai', api_key: 'k', azure_resource_name: 'r', azure_deployment_id: 'd', azure_api_version: '2024-10-21' } },
        config: { strategy: { mode: 'fallback', on_status_codes: [] }, targets: [{ provider: 'openai', api_key: 'k', retry: { attempts: 5, on_status_codes: [] } }] },
      }),
    ).toEqual([
      'virtualKeys.az.azure_resource_name: unknown option (did you mean `resource_name`?)',
      'virtualKeys.az.azure_deployment_id: unknown option (did you mean `deployment_id`?)',
      'virtualKeys.az.azure_api_version: unknown option (did you mean `api_version`?)',
      'config.strategy.on_status_codes: must list at least one status (leave it out to fall back on every status >= 400; Portkey reads [] as never falling back: for that, use mode "single")',
      'config.targets[0].retry.on_status_codes: must list at least one status (leave it out for 429 and 5xx; Portkey reads [] as retrying no status: for that, leave `retry` out)',
    ]);
  });

  it('reads the key an unknown one sits in by its path: renamed fields, prices, a config named like a field', () => {
    expect(
      issuesOf({
        virtualKeys: { o: { provider: 'openai', api_key: 'k', organization: 'org' } },
        configs: { retry: { virtualKey: 'o' } },
        prices: { 'gpt-4o': { prompt: 1, completion: 2, cache: 0.5, Cached: 0.5 } },
      }),
    ).toEqual([
      'virtualKeys.o.organization: unknown option (did you mean `openai_organization`?)',
      'configs.retry.virtualKey: unknown option (did you mean `virtual_key`?)',
      'prices["gpt-4o"].cache: unknown option',
      'prices["gpt-4o"].Cached: unknown option (did you mean `cached`?)',
    ]);
  });

  it("passes a strategy's custom_host down to its targets that name none, as Portkey does", () => {
    const gateway = new Gateway({
      virtualKeys: { ...virtualKeys, plain: { provider: 'openai', api_key: 'sk-plain' } },
      config: {
        strategy: { mode: 'fallback' },
        custom_host: 'http://127.0.0.1:9/gw/v1',
        targets: [{ virtual_key: 'plain' }, { virtual_key: 'plain', custom_host: 'http://127.0.0.1:9/own/v1' }, { provider: 'openai', api_key: 'sk-inline' }],
      },
    });
    const root = gateway.options.defaultConfig as Extract<RouteNode, { kind: 'strategy' }>;
    const urls = root.children.map((c) => {
      const plan = (c as Extract<RouteNode, { kind: 'target' }>).endpoint.plan('gpt-4o') as UpstreamPlan;
      return `${plan.origin}${plan.path}`;
    });
    expect(urls).toEqual(['http://127.0.0.1:9/gw/v1/chat/completions', 'http://127.0.0.1:9/own/v1/chat/completions', 'http://127.0.0.1:9/gw/v1/chat/completions']);
  });

  it("keeps a target's own host over a strategy's custom_host: a virtual key's custom_host, an Azure resource or endpoint", () => {
    const gateway = new Gateway({
      virtualKeys: {
        plain: { provider: 'openai', api_key: 'sk-plain' },
        apim: { provider: 'azure-openai', api_key: 'az-apim', custom_host: 'https://apim.example.com/openai', deployment_id: 'd' },
        resource: { provider: 'azure-openai', api_key: 'az-res', resource_name: 'res', deployment_id: 'd' },
      },
      config: {
        strategy: { mode: 'fallback' },
        custom_host: 'https://egress.example.com/v1',
        targets: [
          { virtual_key: 'plain' },
          { virtual_key: 'apim' },
          { virtual_key: 'resource' },
          { provider: 'azure-openai', api_key: 'az-inline', endpoint: 'https://inline.openai.azure.com', deployment_id: 'd' },
        ],
      },
    });
    const root = gateway.options.defaultConfig as Extract<RouteNode, { kind: 'strategy' }>;
    const sent = root.children.map((c) => {
      const plan = (c as Extract<RouteNode, { kind: 'target' }>).endpoint.plan('gpt-4o') as UpstreamPlan;
      return `${plan.origin} ${plan.headers['api-key'] ?? plan.headers.authorization}`;
    });
    expect(sent).toEqual([
      'https://egress.example.com Bearer sk-plain',
      'https://apim.example.com az-apim',
      'https://res.openai.azure.com az-res',
      'https://inline.openai.azure.com az-inline',
    ]);
  });

  it("accepts Portkey's `provider` beside `virtual_key` when it is the virtual key's provider", () => {
    expect(() => new Gateway({ virtualKeys, config: { virtual_key: 'openai-prod', provider: 'openai' } })).not.toThrow();
    expect(issuesOf({ virtualKeys, config: { virtual_key: 'openai-prod', provider: 'azure-openai' } })).toEqual([
      'config.provider: virtual key "openai-prod" is provider "openai"',
    ]);
  });

  it('never puts a credential in an error message', () => {
    const issues = issuesOf({ virtualKeys: { o: { provider: 'openai', api_key: 'sk-secret-123', custom_host: 'not a url' } }, config: { virtual_key: 'o' } });
    expect(issues.join('\n')).not.toContain('sk-secret-123');
    expect(issues).toEqual([expect.stringMatching(/^virtualKeys\.o\.custom_host: /)]);
    // A provider key pasted where a virtual key's name goes is masked, not printed into boot logs.
    const pasted = issuesOf({ virtualKeys, config: { virtual_key: 'sk-proj-abcdefghijklmnopqrstuvwxyz0123' } });
    expect(pasted).toEqual([
      'config.virtual_key: unknown virtual key "sk-...0123" (it looks like an API key: `virtual_key` names an entry of `virtualKeys`, which holds the key) (known: openai-prod, azure-prod)',
    ]);
    // Other key forms: one configured as an api_key (whatever it looks like), or a long mixed-case one with digits.
    const hint = '(it looks like an API key: `virtual_key` names an entry of `virtualKeys`, which holds the key)';
    const gemini = { provider: 'openai' as const, api_key: 'plainkeyplainkey12', custom_host: 'https://generativelanguage.googleapis.com/v1beta/openai' };
    expect(issuesOf({ virtualKeys: { gemini }, configs: { a: { virtual_key: 'plainkeyplainkey12' }, b: { virtual_key: 'AIzaSyLEAKCANARY0123456789abcdefghij' }, c: { virtual_key: 'azure-prod-eastus-2' } } })).toEqual([
      `configs.a.virtual_key: unknown virtual key "***" ${hint} (known: gemini)`,
      `configs.b.virtual_key: unknown virtual key "AIz...ghij" ${hint} (known: gemini)`,
      'configs.c.virtual_key: unknown virtual key "azure-prod-eastus-2" (known: gemini)',
    ]);
    // Nor a key pasted into Portkey's `@slug` forms (a model's catalog prefix, a provider).
    const key = 'sk-proj-abcdefghijklmnopqrstuvwxyz0123';
    const catalog = issuesOf({
      virtualKeys: { o: { provider: `@${key}` as never, api_key: key } },
      config: { virtual_key: 'o', override_params: { model: `@${key}/gpt-4o` } },
    });
    expect(catalog.join('\n')).not.toContain('abcdefghij');
    expect(catalog).toEqual([
      'virtualKeys.o.provider: must be "openai" or "azure-openai" (for Portkey\'s `@provider-slug`, define a virtual key and name it in `virtual_key`)',
      "config.override_params.model: is Portkey's Model Catalog form (`@provider-slug/model`) around what looks like an API key: define a virtual key in `virtualKeys` that holds the key, and name it in `virtual_key`",
    ]);
    // A key used as a name elsewhere (a virtual key named by its key, a config id, a deployment's model, an unknown
    // option), or after the catalog's slash: masked wherever an error names it.
    const named = issuesOf({
      virtualKeys: {
        [key]: { provider: 'openai', api_key: key },
        az: { provider: 'azure-openai', api_key: 'az-key-1', resource_name: 'r', deployments: { [key]: 'dep' }, [key]: 1 } as never,
      },
      config: { virtual_key: 'x' },
      configs: { [key]: { virtual_key: 'az', override_params: { model: `@openai/${key}` } } },
    });
    expect(named.join('\n')).not.toContain('abcdefghij');
    expect(named.length).toBeGreaterThanOrEqual(3);
    // A virtual key named by its own key, otherwise valid: refused, as its name would go into every log event.
    expect(issuesOf({ virtualKeys: { [key]: { provider: 'openai', api_key: key } }, config: { virtual_key: key } })).toEqual([
      'virtualKeys["sk-...0123"]: (entry 1) is named by an API key, which would go into every log event: name the entry (e.g. "openai-prod") and give that name in `virtual_key`',
    ]);
    // A key in no provider form (a proxy's, a long mixed-case one) used as a name: masked in every issue that quotes
    // it; a test's short name equal to its key ({ test: { api_key: 'test' } }) is no key, and is accepted.
    const mixed = 'A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v2W3x4Y5z6';
    const proxied = issuesOf({ virtualKeys: { [mixed]: { provider: 'azure-openai', api_key: mixed } }, config: { virtual_key: mixed } });
    expect(proxied.length).toBeGreaterThanOrEqual(2);
    expect(proxied.join('\n')).not.toContain(mixed.slice(4, 20));
    expect(() => new Gateway({ virtualKeys: { test: { provider: 'openai', api_key: 'test' } }, config: { virtual_key: 'test' } })).not.toThrow();
    // A configured key that begins as it ends, quoted with its own tail after it: masked wholly, as `abc...` and the
    // tail would spell it again.
    const looped = 'abcd1234567890ef1234567890abcd';
    const wrapped = issuesOf({ virtualKeys: { o: { provider: 'openai', api_key: looped } }, configs: { [`my ${looped}${looped.slice(4)}`]: { virtual_key: 'nope' } } });
    expect(wrapped).toEqual([`configs["my ***${looped.slice(4)}"].virtual_key: unknown virtual key "nope" (known: o)`]);
    // Names that only look like keys (a fine-tuned model's id, a long config id) stay readable, as does the catalog's model.
    const fineTuned = 'ft:gpt-4o-mini-2024-07-18:acme-corp::9AbCdEfG';
    const readable = issuesOf({
      virtualKeys: { az: { provider: 'azure-openai', api_key: 'az-key-1', resource_name: 'r', deployments: { [fineTuned]: '' } } },
      configs: { 'customer-acme-corp-production-routing-config-v1': { virtual_key: 'az', override_params: { model: `@openai-prod/${fineTuned}` } } },
    });
    expect(readable.join('\n')).toContain(`deployments["${fineTuned}"]`);
    expect(readable.join('\n')).toContain('configs["customer-acme-corp-production-routing-config-v1"]');
    expect(readable.join('\n')).toContain('define virtual key "openai-prod"');
  });

  it('refuses a name `__proto__` in options read from JSON, which a record would drop without a word', () => {
    const options = JSON.parse(
      '{"virtualKeys":{"o":{"provider":"openai","api_key":"sk-o"},"az":{"provider":"azure-openai","api_key":"az-key","resource_name":"r","deployments":{"__proto__":"dep"}}},' +
        '"config":{"virtual_key":"o","override_params":{"__proto__":{"temperature":5}}},"configs":{"__proto__":{"virtual_key":"o"}}}',
    ) as SwitchyardOptions;
    expect(issuesOf(options)).toEqual([
      'virtualKeys.az.deployments: `__proto__` cannot be a name here: JavaScript objects drop it; choose another',
      'config.override_params: `__proto__` cannot be a name here: JavaScript objects drop it; choose another',
      'configs: `__proto__` cannot be a name here: JavaScript objects drop it; choose another',
    ]);
    // In an object of fixed fields too, once: not again as an unknown option.
    const inFields = JSON.parse('{"virtualKeys":{"o":{"provider":"openai","api_key":"sk-o"}},"config":{"virtual_key":"o","__proto__":{"a":1},"targets":[{"__proto__":{}}]}}') as SwitchyardOptions;
    expect(issuesOf(inFields)).toEqual([
      'config: `__proto__` cannot be a name here: JavaScript objects drop it; choose another',
      'config.targets[0]: `__proto__` cannot be a name here: JavaScript objects drop it; choose another',
    ]);
  });

  it('refuses an Azure target that names its host or its deployment twice, or carries OpenAI-only headers', () => {
    const both = { provider: 'azure-openai', api_key: 'az-1', resource_name: 'res', endpoint: 'https://other.openai.azure.com', deployment_id: 'd', deployments: { 'gpt-4o': 'dep' }, openai_organization: 'org-1', openai_project: 'proj-1' };
    expect(issuesOf({ virtualKeys: { both }, config: { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'both' }, both] } })).toEqual([
      'virtualKeys.both.openai_organization: not an option of provider "azure-openai"',
      'virtualKeys.both.openai_project: not an option of provider "azure-openai"',
      'virtualKeys.both.endpoint: give either `resource_name` or `endpoint`, not both',
      'virtualKeys.both.deployments: give either `deployment_id` or `deployments`, not both',
      'config.targets[1].openai_organization: not an option of provider "azure-openai"',
      'config.targets[1].openai_project: not an option of provider "azure-openai"',
      'config.targets[1].endpoint: give either `resource_name` or `endpoint`, not both',
      'config.targets[1].deployments: give either `deployment_id` or `deployments`, not both',
    ]);
  });

  it('refuses a strategy that is also a provider, a strategy without targets, and an inline provider without its key', () => {
    expect(issuesOf({
      virtualKeys,
      configs: {
        mixed: { strategy: { mode: 'fallback' }, api_key: 'sk-x', targets: [{ virtual_key: 'openai-prod' }] },
        empty: { strategy: { mode: 'single' } },
        keyless: { provider: 'openai' },
      },
    })).toEqual([
      'configs.mixed.api_key: a config with a `strategy` cannot also be a provider: move it into one of its `targets`',
      'configs.empty.targets: is required with `strategy`',
      'configs.keyless.api_key: is required for an inline provider (read it from an environment variable)',
    ]);
  });

  it('holds numbers and paths to their documented ranges: retries, weights, statuses, timers, basePath, a lowercase bearer', () => {
    expect(issuesOf({
      virtualKeys: { ...virtualKeys, lower: { provider: 'openai', api_key: 'bearer sk-proj-abcdefghijklmnop1234' } },
      basePath: 'v1',
      maxRetryDelayMs: 3e9,
      config: { strategy: { mode: 'loadbalance' }, targets: [{ virtual_key: 'openai-prod', weight: -1, retry: { attempts: 11 } }, { strategy: { mode: 'fallback', on_status_codes: [600] }, targets: [{ virtual_key: 'azure-prod' }] }] },
    })).toEqual([
      'virtualKeys.lower.api_key: must be the key itself, without `Bearer ` (Switchyard writes the header)',
      'config.targets[0].retry.attempts: Too big: expected number to be <=10',
      'config.targets[0].weight: Too small: expected number to be >=0',
      'config.targets[1].strategy.on_status_codes[0]: Too big: expected number to be <=599',
      'basePath: must be a path such as /v1 (or "" or "/")',
      'maxRetryDelayMs: must be at most 2147483647 (about 24.8 days)',
    ]);
  });

  it('masks an Azure key (32 hex digits) used as a name, and a long name given as a virtual key', () => {
    const azureKey = '0123456789abcdef0123456789abcdef';
    expect(issuesOf({ virtualKeys, configs: { [azureKey]: { virtual_key: 'nope' } } })).toEqual([
      'configs["012...cdef"].virtual_key: unknown virtual key "nope" (known: openai-prod, azure-prod)',
    ]);
    const proxyKey = 'litellmproxykeythatisquitelongandlowercase';
    expect(issuesOf({ virtualKeys, config: { virtual_key: proxyKey } })).toEqual([
      'config.virtual_key: unknown virtual key "lit...case" (it looks like an API key: `virtual_key` names an entry of `virtualKeys`, which holds the key) (known: openai-prod, azure-prod)',
    ]);
  });

  it('resolves the documented defaults: basePath /v1 (a trailing slash dropped), 10 MiB bodies, a 590 s deadline, 8 s retry waits', () => {
    const { options } = new Gateway({ virtualKeys, config: { virtual_key: 'openai-prod' } });
    expect([options.chatPath, options.maxBodyBytes, options.deadlineMs, options.maxRetryDelayMs]).toEqual(['/v1/chat/completions', 10 * 1024 * 1024, 590_000, 8_000]);
    for (const [basePath, chatPath] of [['/', '/chat/completions'], ['/api/v1/', '/api/v1/chat/completions'], ['', '/chat/completions']]) {
      expect(new Gateway({ virtualKeys, basePath, config: { virtual_key: 'openai-prod' } }).options.chatPath).toBe(chatPath);
    }
  });

  it('accepts the seed config, a single-provider config and inline targets', () => {
    expect(() => new Gateway({ virtualKeys, config: { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] } })).not.toThrow();
    expect(() => new Gateway({ virtualKeys, config: { virtual_key: 'openai-prod' } })).not.toThrow();
    expect(
      () =>
        new Gateway({
          config: {
            strategy: { mode: 'fallback' },
            targets: [
              { provider: 'openai', api_key: 'k' },
              { provider: 'azure-openai', api_key: 'k', endpoint: 'https://res.openai.azure.com', api_version: 'v1' },
            ],
          },
        }),
    ).not.toThrow();
  });
});
