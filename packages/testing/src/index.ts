export { startFakeProvider, startFakeOpenAI, startFakeAzureOpenAI } from './fake-provider';
export { listenOnPort } from './listen-port';
export { missingProviderEnv, withProviderEnvNames } from './provider-env';
export { replies } from './replies';
export type {
  FakeFlavor,
  FakeProvider,
  FakeProviderOptions,
  FakeReply,
  FakeReplyFn,
  FakeStreamOptions,
  RecordedRequest,
} from './types';
