/**
 * Type-level checks of the public options, compiled (not run) by `tsc -p packages/e2e` in `pnpm test`: each
 * `@ts-expect-error` line must be an error, so a config type that widened to `unknown` fails the build.
 */
import { Gateway, type RoutingConfig, type SwitchyardOptions } from '@switchyard/core';

// Options written apart from the call, as the README shows: annotated, they keep their literal types.
const virtualKeys: SwitchyardOptions['virtualKeys'] = { 'openai-prod': { provider: 'openai', api_key: 'sk-x' } };
const config = { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'openai-prod' }] } satisfies RoutingConfig;
export const gateway = (): Gateway => new Gateway({ virtualKeys, config });

// @ts-expect-error a misspelt strategy mode in a routing config
export const badMode: RoutingConfig = { strategy: { mode: 'fallbak' }, targets: [] };
// @ts-expect-error an unknown key in the options' config (it is typed there too, not `unknown`)
export const badKey: SwitchyardOptions = { config: { targetz: [] } };
// @ts-expect-error a retry policy's attempts is a number
export const badRetry: RoutingConfig = { retry: { attempts: 'three' } };
