/**
 * The built packages' types as a strict consumer compiles them (`exactOptionalPropertyTypes`,
 * `noUncheckedIndexedAccess`), by `tsc -p packages/e2e/tsconfig.consumer.json` in `pnpm test`: code written against
 * the openai SDK's types passes its values on unchanged, and an optional value may be `undefined`.
 */
import type OpenAI from 'openai';
import { createFallbackClient, MemoryLogStore, PriceTable, type RoutingConfig } from '@switchyard/core';
import { logsMiddleware } from '@switchyard/express';
import { logsMiddleware as koaLogsMiddleware } from '@switchyard/koa';
import { createLoggerSink, createMetricsSink, JsonLinesSink, SqliteLogStore } from '@switchyard/logs';
import { SwitchyardModule } from '@switchyard/nestjs';
import { startFakeOpenAI } from '@switchyard/testing';

declare const maybeMs: number | undefined;
declare const maybeTraceId: string | undefined;
declare const sdkOptions: OpenAI.RequestOptions;

const config = {
  strategy: { mode: 'fallback', on_status_codes: [429] },
  request_timeout: maybeMs,
  targets: [{ virtual_key: 'openai-prod', override_params: undefined }, { virtual_key: 'azure-prod' }],
} satisfies RoutingConfig;

const client = createFallbackClient({
  virtualKeys: {
    'openai-prod': { provider: 'openai', api_key: 'sk-x' },
    'azure-prod': { provider: 'azure-openai', api_key: 'az-x', resource_name: 'res', deployment_id: 'dep' },
  },
  config,
  deadlineMs: maybeMs,
});
const params = { model: 'gpt-4o', messages: [{ role: 'user' as const, content: 'hi' }] };

export const withOptionalSignal = (signal?: AbortSignal): Promise<OpenAI.ChatCompletion> =>
  client.chat.completions.create(params, { signal, traceId: maybeTraceId, timeout: maybeMs });
export const withSdkOptions = (): Promise<OpenAI.ChatCompletion> =>
  client.chat.completions.create(params, { signal: sdkOptions.signal, headers: sdkOptions.headers, timeout: sdkOptions.timeout });
export const streamed = async (): Promise<string> => {
  let text = '';
  for await (const chunk of await client.chat.completions.create({ ...params, stream: true }, { signal: null })) {
    text += chunk.choices[0]?.delta.content ?? '';
  }
  return text;
};

// The README's logs endpoint: a token read from the environment may be undefined (refused at startup, by name).
export const logs = () => logsMiddleware({ store: new MemoryLogStore(), token: process.env.SWITCHYARD_LOGS_TOKEN, viewer: true });

// Every package's optional options take an undefined value (a setting read from the environment), as core's do.
declare const maybeString: string | undefined;
declare const maybeFlag: boolean | undefined;
export const sqlite = () =>
  new SqliteLogStore({ path: 'logs.db', retention: { maxAgeMs: maybeMs, maxRows: maybeMs }, maxQueue: maybeMs, flushIntervalMs: maybeMs, pruneIntervalMs: maybeMs, busyTimeoutMs: maybeMs });
export const sinks = () => [
  new JsonLinesSink({ path: 'logs.jsonl', maxPendingBytes: maybeMs, recoveryDelayMs: maybeMs }),
  createLoggerSink({ info: () => undefined }, { message: maybeString, level: undefined }),
  createMetricsSink({ registry: undefined, prefix: maybeString, buckets: undefined, maxModels: maybeMs }),
];
// The logs README's lost-events counter reads these as numbers.
export const lostEvents = (store: SqliteLogStore, jsonl: JsonLinesSink): number => store.dropped + store.failed + jsonl.dropped;
export const koaLogs = () => koaLogsMiddleware({ path: '/logs', store: new MemoryLogStore(), token: maybeString, auth: undefined, viewer: maybeFlag });
export const expressLogs = () => logsMiddleware({ store: new MemoryLogStore({ capacity: maybeMs }), auth: undefined, allowUnauthenticated: true });
// A query built from a request's query string: each filter may be absent.
export const found = (store: MemoryLogStore) => store.query({ traceId: maybeTraceId, model: maybeString, fallback: maybeFlag, maxCostUsd: maybeMs, cursor: undefined });
export const prices = () => new PriceTable({ 'gpt-4o': { prompt: 2.5, completion: 10, cached: maybeMs } });
export const nest = () =>
  SwitchyardModule.forRoot({ config, virtualKeys: {}, isGlobal: maybeFlag, route: { path: 'v1/chat/completions', version: undefined, decorators: undefined }, logs: undefined, upstreamClient: undefined });
export const fakes = () =>
  startFakeOpenAI({ name: maybeString, apiKey: maybeString, host: undefined, defaultReply: { status: maybeMs, delayMs: maybeMs, stream: { chunks: maybeMs, usage: maybeFlag } } });
