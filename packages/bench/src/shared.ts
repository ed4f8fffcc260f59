/** What the runner, the fake upstreams and the servers under test agree on. */

/** Every chat request of the benchmark: what a small real request looks like (~300 bytes). */
export const REQUEST_BODY = JSON.stringify({
  model: 'gpt-4o-mini',
  messages: [
    { role: 'system', content: 'You are a helpful assistant. Answer in one short sentence.' },
    { role: 'user', content: 'What is the capital of France, and why is it famous for its bridges over the Seine?' },
  ],
  temperature: 0.2,
  max_tokens: 64,
});
export const STREAM_BODY = REQUEST_BODY.replace(/}$/, ',"stream":true}');

export const ROUTE = '/v1/chat/completions';
export const AZURE_DEPLOYMENT = 'gpt-4o-mini-prod';
export const AZURE_API_VERSION = '2024-10-21';

/** Where a server under test finds its upstreams (passed in the environment). */
export interface Upstreams {
  /** `http://127.0.0.1:PORT` of the fake OpenAI. */
  openai: string;
  /** `http://127.0.0.1:PORT` of the fake Azure OpenAI. */
  azure: string;
}

/** What the fake OpenAI does for the next requests (set by the runner over IPC). */
export interface FakeMode {
  /** Status of the fake OpenAI for JSON and stream requests: 200, or 429 to make every request fall back. */
  openaiStatus: 200 | 429;
  /** Shape of SSE replies (requests whose body has `"stream":true`). */
  stream: { chunks: number; intervalMs: number; chunkBytes: number };
}

export const SYSTEM_NAMES = [
  'direct',
  'floor-node',
  'floor-express',
  'floor-koa',
  'floor-nest',
  'switchyard-express',
  'switchyard-koa',
  'switchyard-nest',
  'sdk-express',
] as const;
export type SystemName = (typeof SYSTEM_NAMES)[number];

/** Messages a server child answers on its IPC channel (never on the HTTP path). */
export type ChildRequest = { type: 'mem'; gc: boolean };
export type ChildReply = { type: 'ready'; port: number } | { type: 'mem'; rss: number; heapUsed: number; heapTotal: number };
