export { fallbackMiddleware } from './fallback-middleware';
// The engine, for a route that shares it (an in-process client) or drains it on shutdown.
export { Gateway } from '@switchyard/core';
export { logsMiddleware } from './logs-middleware';
export type { KoaLogsOptions } from './logs-middleware';
export type { SwitchyardOptions, RoutingConfig, VirtualKeyConfig, LogEvent, LogSink } from '@switchyard/core';
export type { LogStore, LogsHandlerOptions } from '@switchyard/core';
