import { Body, Controller, Inject, Module, Post } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { SwitchyardExceptionFilter, SwitchyardModule, SwitchyardService, type SwitchyardForRootOptions } from '@switchyard/nestjs';

/** The keys used on the fakes, which check them as the real providers would: a key sent to the wrong one is refused. */
export const FAKE_KEYS = { openai: 'sk-fake', azure: 'fake-azure-key' };

export interface Hosts {
  openai?: string;
  azure?: string;
}

/** The seed's config from the environment: only rate-limited requests (429) move from OpenAI to Azure OpenAI. */
export function switchyardOptions(env: NodeJS.ProcessEnv, hosts: Hosts): SwitchyardForRootOptions {
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
    // The OpenAI-compatible route, for clients that use the SDK against this app (a controller: guards apply).
    route: { path: 'v1/chat/completions' },
    onLog: (event) => console.log(JSON.stringify(event)),
  };
}

/** The model the business code asks for: the one the Azure deployment map was built for (`DEMO_MODEL`). */
export const SUMMARY_MODEL = Symbol('SUMMARY_MODEL');

/** Business code: it asks for a summary and never hears about providers or fallbacks. */
@Controller('summaries')
export class SummariesController {
  constructor(
    private readonly switchyard: SwitchyardService,
    @Inject(SUMMARY_MODEL) private readonly model: string,
  ) {}

  @Post()
  async create(@Body() body: { text?: string }): Promise<{ summary: string }> {
    const completion = await this.switchyard.createChatCompletion({
      model: this.model,
      messages: [
        { role: 'system', content: 'Summarise the text in one sentence.' },
        { role: 'user', content: body.text ?? '' },
      ],
    });
    return { summary: completion.choices[0]?.message.content ?? '' };
  }
}

export function appModule(options: SwitchyardForRootOptions, model = 'gpt-4o-mini'): new () => unknown {
  @Module({
    imports: [SwitchyardModule.forRoot(options)],
    controllers: [SummariesController],
    providers: [
      { provide: SUMMARY_MODEL, useValue: model },
      // When every provider fails, /summaries answers as the route would (a 429 with its retry-after), not a bare 500.
      { provide: APP_FILTER, useClass: SwitchyardExceptionFilter },
    ],
  })
  class AppModule {}
  return AppModule;
}
