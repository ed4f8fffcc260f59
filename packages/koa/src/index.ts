export { fallbackMiddleware } from './fallback-middleware';
export { logsMiddleware } from './logs-middleware';
export type { KoaLogsOptions } from './logs-middleware';
export type { SwitchyardOptions, RoutingConfig, VirtualKeyConfig, LogEvent, LogSink } from '@switchyard/core';
