import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { LogsHandlerOptions, SwitchyardOptions } from '@switchyard/core';

/** Switchyard's options plus what only the Nest module needs. */
export type SwitchyardModuleOptions = Omit<SwitchyardOptions, 'basePath'> & {
  /** Mounts an OpenAI-compatible route, e.g. `{ path: 'v1/chat/completions' }` (POST). Off when absent. */
  route?: { path: string };
  /**
   * Mounts the request-logs endpoint (query API, and the viewer page with `viewer: true`) under `path`, e.g.
   * `{ path: 'switchyard/logs', store, token }`. Off when absent; the store should also be in `logSinks`.
   */
  logs?: Omit<LogsHandlerOptions, 'path'> & { path: string };
};

// Nest's own builder generates forRoot / forRootAsync (useFactory | useClass | useExisting, inject, imports).
export const {
  ConfigurableModuleClass: SwitchyardConfigurableModule,
  MODULE_OPTIONS_TOKEN: SWITCHYARD_OPTIONS,
} = new ConfigurableModuleBuilder<SwitchyardModuleOptions>({ moduleName: 'Switchyard' })
  .setClassMethodName('forRoot')
  .setExtras({ isGlobal: false }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
  .build();

/** Injection token of the module's fallback engine (shared by the service and the route). */
export const SWITCHYARD_GATEWAY = Symbol('SWITCHYARD_GATEWAY');
