export { fallbackMiddleware, type FallbackMiddleware } from './fallback-middleware';
export { logsMiddleware } from './logs-middleware';
export type { SwitchyardOptions, LogEvent, LogSink } from '@switchyard/core';
export type { LogStore, LogsHandlerOptions } from '@switchyard/core';
