import type { LogEvent, LogSink } from './log-event';

const warned = new WeakSet<LogSink>();

function warnOnce(sink: LogSink, err: unknown): void {
  if (warned.has(sink)) return;
  warned.add(sink);
  process.emitWarning(`A Switchyard log sink failed; its errors are ignored from now on: ${String(err)}`, 'SwitchyardLogSinkWarning');
}

/**
 * Hands the event to every sink. A sink that throws, or returns a promise that rejects (an `async` onLog), is
 * reported once as a process warning: it never breaks a request nor becomes an unhandled rejection. Returns what
 * the async sinks are still doing (it never rejects), or null when every sink is done: `drain()` waits for it.
 */
export function emitLog(sinks: readonly LogSink[], event: LogEvent): Promise<unknown> | null {
  let pending: Array<Promise<unknown>> | null = null;
  for (const sink of sinks) {
    try {
      const result: unknown = sink.write(event);
      if (result instanceof Promise) (pending ??= []).push(result.catch((err: unknown) => warnOnce(sink, err)));
    } catch (err) {
      warnOnce(sink, err);
    }
  }
  return pending && (pending.length === 1 ? pending[0]! : Promise.all(pending));
}
