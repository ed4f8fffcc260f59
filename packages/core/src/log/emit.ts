import type { LogEvent, LogSink } from './log-event';

const warned = new WeakSet<LogSink>();

function warnOnce(sink: LogSink, err: unknown): void {
  if (warned.has(sink)) return;
  warned.add(sink);
  process.emitWarning(`A Switchyard log sink failed; its errors are ignored from now on: ${String(err)}`, 'SwitchyardLogSinkWarning');
}

/**
 * Hands the event to every sink. A sink that throws, or returns a promise that rejects (an `async` onLog), is
 * reported once as a process warning: it never breaks a request nor becomes an unhandled rejection.
 */
export function emitLog(sinks: readonly LogSink[], event: LogEvent): void {
  for (const sink of sinks) {
    try {
      const result: unknown = sink.write(event);
      if (result instanceof Promise) result.catch((err: unknown) => warnOnce(sink, err));
    } catch (err) {
      warnOnce(sink, err);
    }
  }
}
