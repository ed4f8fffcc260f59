export { SqliteLogStore } from './sqlite-store';
export type { SqliteLogStoreOptions, SqliteRetention } from './sqlite-store';
export { JsonLinesSink } from './jsonl-sink';
export type { JsonLinesSinkOptions } from './jsonl-sink';
export { createLoggerSink } from './logger-sink';
export type { LoggerSinkOptions, LoggerLevel, StructuredLogger } from './logger-sink';
export { createMetricsSink } from './metrics-sink';
export type { MetricsRegistry, MetricsSink, MetricsSinkOptions } from './metrics-sink';
// The store interface, the in-memory store, the query API and the HTTP endpoint live in core (no dependencies,
// used by every adapter); they are re-exported so one import serves a host.
export {
  MemoryLogStore, LogQueryError, createLogsHandler, normalizeLogQuery, parseLogQuery, matchesLogQuery, newestFirst, encodeCursor,
  providerOf, PriceTable, DEFAULT_PRICES,
} from '@switchyard/core';
export type {
  LogStore, LogQuery, LogPage, StatusClass, MemoryLogStoreOptions, LogsHandler, LogsHandlerOptions, LogEvent, LogSink, ModelPrice,
} from '@switchyard/core';
