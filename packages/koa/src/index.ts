export { fallbackMiddleware } from './fallback-middleware';
export type { SwitchyardOptions, LogEvent, LogSink } from '@switchyard/core';
