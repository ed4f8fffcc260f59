import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { LogEvent } from '@switchyard/core';
import { expressAdapter, type RunningApp } from './adapters';
import { seedOptions, startUpstreams, type Upstreams } from './fixture';

export interface UndiciParentsRun<T> {
  up: Upstreams;
  logs: LogEvent[];
  app: RunningApp;
  /** `parentOf()` at each request undici created, in order (the test process's own SDK calls included). */
  parents: T[];
}

/**
 * Runs `body` against an Express app with Switchyard on fresh fakes, recording at each request undici creates what an
 * HTTP client instrumentation (OpenTelemetry's undici one, on the `undici:request:create` channel) would read as its
 * span's parent; then closes the app and the fakes.
 */
export async function withUndiciParents<T>(parentOf: () => T, body: (run: UndiciParentsRun<T>) => Promise<void>): Promise<void> {
  const parents: T[] = [];
  const onCreate = () => parents.push(parentOf());
  subscribe('undici:request:create', onCreate);
  const up = await startUpstreams();
  try {
    const logs: LogEvent[] = [];
    const app = await expressAdapter.start(seedOptions(up, logs));
    try {
      await body({ up, logs, app, parents });
    } finally {
      await app.close();
    }
  } finally {
    unsubscribe('undici:request:create', onCreate);
    await up.close();
  }
}
