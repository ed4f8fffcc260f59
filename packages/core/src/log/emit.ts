import type { LogEvent, LogSink } from './log-event';

const warned = new WeakSet<LogSink>();

/** Hands the event to every sink. A sink that throws is reported once, as a process warning, and never breaks a request. */
export function emitLog(sinks: readonly LogSink[], event: LogEvent): void {
  for (const sink of sinks) {
    try {
      sink.write(event);
    } catch (err) {
      if (!warned.has(sink)) {
        warned.add(sink);
        process.emitWarning(`A Switchyard log sink threw; its errors are ignored from now on: ${String(err)}`, 'SwitchyardLogSinkWarning');
      }
    }
  }
}
