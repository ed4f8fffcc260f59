import type { LogEvent, LogSink } from '@switchyard/core';

export type LoggerLevel = 'debug' | 'info' | 'warn' | 'error';

/** What pino (and bunyan, and most structured loggers) offer: `logger.info(object, message)`. */
export type StructuredLogger = { info(obj: object, msg?: string): void } & Partial<Record<LoggerLevel, (obj: object, msg?: string) => void>>;

export interface LoggerSinkOptions {
  /** The message logged with each event. Default `switchyard request`. */
  message?: string | undefined;
  /** Level of each event: a fixed level, or chosen per event. Default: `info`. */
  level?: LoggerLevel | ((event: LogEvent) => LoggerLevel) | undefined;
}

/** A sink that hands each event, as the log record's fields, to a pino-compatible logger. */
export function createLoggerSink(logger: StructuredLogger, options: LoggerSinkOptions = {}): LogSink {
  const message = options.message ?? 'switchyard request';
  const level = options.level ?? 'info';
  return {
    write(event) {
      const name = typeof level === 'function' ? level(event) : level;
      const log = logger[name] ?? logger.info;
      log.call(logger, event, message);
    },
  };
}
