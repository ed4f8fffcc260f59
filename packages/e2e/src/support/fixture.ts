/** Shared set-up: fake OpenAI + Azure upstreams, options pointing at them, and log capture. */
import OpenAI from 'openai';
import type { LogEvent, SwitchyardOptions } from '@switchyard/core';
import { startFakeAzureOpenAI, startFakeOpenAI, type FakeProvider } from '@switchyard/testing';
import type { RunningApp } from './adapters';

export const OPENAI_KEY = 'sk-openai-secret-0001';
export const AZURE_KEY = 'azure-secret-0002';
export const CLIENT_KEY = 'sk-client-never-forwarded';

export interface Upstreams {
  openai: FakeProvider;
  azure: FakeProvider;
  close(): Promise<void>;
  reset(): void;
}

export async function startUpstreams(): Promise<Upstreams> {
  const [openai, azure] = await Promise.all([
    startFakeOpenAI({ apiKey: OPENAI_KEY, name: 'openai' }),
    startFakeAzureOpenAI({ apiKey: AZURE_KEY, name: 'azure' }),
  ]);
  return {
    openai,
    azure,
    close: async () => {
      await Promise.all([openai.close(), azure.close()]);
    },
    reset: () => {
      openai.reset();
      azure.reset();
    },
  };
}

/** The seed's set-up: two virtual keys, OpenAI first then Azure, with `gpt-4o` deployed on Azure as `gpt4o-prod`. */
export function seedOptions(up: Upstreams, logs: LogEvent[], extra: Partial<SwitchyardOptions> = {}): SwitchyardOptions {
  return {
    virtualKeys: {
      'openai-prod': { provider: 'openai', api_key: OPENAI_KEY, custom_host: up.openai.baseURL },
      'azure-prod': {
        provider: 'azure-openai',
        api_key: AZURE_KEY,
        custom_host: up.azure.baseURL,
        deployments: { 'gpt-4o': 'gpt4o-prod', 'gpt-4o-mini': 'gpt4o-mini-prod' },
      },
    },
    config: {
      strategy: { mode: 'fallback' },
      targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }],
    },
    onLog: (event) => logs.push(event),
    ...extra,
  };
}

export function sdk(baseUrl: string, headers: Record<string, string> = {}): OpenAI {
  return new OpenAI({ apiKey: CLIENT_KEY, baseURL: `${baseUrl}/v1`, maxRetries: 0, defaultHeaders: headers });
}

export const messages = [{ role: 'user' as const, content: 'Say hello' }];

/** Log events are emitted after the response ended: wait for the n-th one. */
export async function nextLog(logs: LogEvent[], count = 1, ms = 3000): Promise<LogEvent> {
  const end = Date.now() + ms;
  while (logs.length < count) {
    if (Date.now() > end) throw new Error(`expected ${count} log event(s), got ${logs.length}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return logs[count - 1]!;
}

export async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface UpstreamsFixture {
  /** Filled in `beforeAll`; the same object for the whole file, so it can be destructured at describe time. */
  up: Upstreams;
  /** Log events of the current test (emptied before each test). */
  logs: LogEvent[];
  /** Closes the app after the current test; returns its URL. */
  track(app: RunningApp): string;
}

/**
 * The usual lifecycle of a file that drives a host app against the fakes: upstreams for the file, reset with fresh
 * logs before each test, every started app closed after it.
 */
export function useUpstreams(): UpstreamsFixture {
  const up = {} as Upstreams;
  const logs: LogEvent[] = [];
  const apps: RunningApp[] = [];
  beforeAll(async () => {
    Object.assign(up, await startUpstreams());
  });
  afterAll(() => up.close());
  beforeEach(() => {
    up.reset();
    logs.length = 0;
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });
  return {
    up,
    logs,
    track: (app) => {
      apps.push(app);
      return app.url;
    },
  };
}

/**
 * Switchyard rightly mounted (a path prefix the framework strips, `basePath: ''`): a CORS preflight and a GET to the
 * chat path go on to the host (its own 404), a POST is served, and no mount warning is given for any of them.
 */
export async function expectServedWithoutMountWarning(url: string): Promise<void> {
  const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
  try {
    for (const method of ['OPTIONS', 'GET']) expect((await fetch(`${url}/v1/chat/completions`, { method })).status).toBe(404);
    expect((await sdk(url).chat.completions.create({ model: 'gpt-4o', messages })).choices[0]!.message.content).toBe('Hello from openai');
    expect(warn).not.toHaveBeenCalled();
  } finally {
    warn.mockRestore();
  }
}
