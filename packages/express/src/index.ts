export { fallbackMiddleware, type FallbackMiddleware } from './fallback-middleware';
export { logsMiddleware, type ExpressLogsOptions } from './logs-middleware';
export type { SwitchyardOptions, RoutingConfig, VirtualKeyConfig, LogEvent, LogSink } from '@switchyard/core';
export type { LogStore, LogsHandlerOptions } from '@switchyard/core';
