export { SwitchyardModule } from './switchyard.module';
export { SwitchyardService } from './switchyard.service';
export { SwitchyardExceptionFilter } from './switchyard-exception.filter';
export { SWITCHYARD_GATEWAY, SWITCHYARD_OPTIONS } from './switchyard.module-definition';
export type { RouteVersion, SwitchyardForRootOptions, SwitchyardModuleExtras, SwitchyardModuleOptions } from './switchyard.module-definition';
export { FallbackRequestError } from '@switchyard/core';
export type { SwitchyardOptions, RoutingConfig, VirtualKeyConfig, LogEvent, LogSink, FallbackRequestOptions } from '@switchyard/core';
