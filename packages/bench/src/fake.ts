/**
 * Lean fake upstreams (OpenAI and Azure OpenAI shapes) for the benchmark, run as their own process on the load
 * generator's core. @switchyard/testing's fakes parse URLs and JSON and record every request, which is right for
 * tests but would make the rig's own ceiling ("direct") lower than a bare proxy: here every reply is precomputed.
 * Replies: the OpenAI port answers 200 or 429 (set by the runner over IPC); the Azure port always answers 200.
 * A request body containing `"stream":true` gets SSE: `chunks` events `intervalMs` apart, padded to `chunkBytes`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FakeMode } from './shared';

let mode: FakeMode = { openaiStatus: 200, stream: { chunks: 20, intervalMs: 5, chunkBytes: 0 } };
let seq = 0;

const created = Math.floor(Date.now() / 1000);
function completion(model: string, content: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      id: 'chatcmpl-bench',
      object: 'chat.completion',
      created,
      model,
      choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, logprobs: null, finish_reason: 'stop' }],
      usage: { prompt_tokens: 38, completion_tokens: 12, total_tokens: 50 },
      system_fingerprint: 'fp_bench',
    }),
  );
}
const OPENAI_OK = completion('gpt-4o-mini-2024-07-18', 'Paris, famous for the Pont Neuf and thirty-six other bridges.');
const AZURE_OK = completion('gpt-4o-mini', 'Paris, famous for the Pont Neuf and thirty-six other bridges (Azure).');
const RATE_LIMITED = Buffer.from(
  JSON.stringify({ error: { message: 'Rate limit reached for requests. Please try again later.', type: 'requests', param: null, code: 'rate_limit_exceeded' } }),
);

function jsonHeaders(body: Buffer, extra: Record<string, string> = {}): Record<string, string> {
  return {
    'content-type': 'application/json',
    'content-length': String(body.length),
    'openai-processing-ms': '312',
    'openai-version': '2020-10-01',
    'x-ratelimit-limit-requests': '10000',
    'x-ratelimit-remaining-requests': '9999',
    ...extra,
  };
}
const OK_HEADERS = jsonHeaders(OPENAI_OK);
const AZURE_HEADERS = jsonHeaders(AZURE_OK);
const LIMITED_HEADERS = jsonHeaders(RATE_LIMITED, { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '1s' });

const FILLER = 'lorem ipsum dolor sit amet consectetur adipiscing elit ';
let streamKey = '';
let events: Buffer[] = [];
/** The SSE events of one stream, built once per stream shape. */
function streamEvents(): Buffer[] {
  const { chunks, chunkBytes } = mode.stream;
  const key = `${chunks}/${chunkBytes}`;
  if (key === streamKey) return events;
  const head = { id: 'chatcmpl-bench', object: 'chat.completion.chunk', created, model: 'gpt-4o-mini-2024-07-18' };
  events = [];
  for (let i = 0; i < chunks; i++) {
    let content = `word${i} `;
    if (chunkBytes > content.length) content += FILLER.repeat(Math.ceil(chunkBytes / FILLER.length)).slice(0, chunkBytes - content.length);
    const delta = i === 0 ? { role: 'assistant', content } : { content };
    events.push(Buffer.from(`data: ${JSON.stringify({ ...head, choices: [{ index: 0, delta, logprobs: null, finish_reason: i === chunks - 1 ? 'stop' : null }] })}\n\n`));
  }
  events.push(Buffer.from('data: [DONE]\n\n'));
  streamKey = key;
  return events;
}

function stream(res: ServerResponse): void {
  const list = streamEvents();
  const interval = mode.stream.intervalMs;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-request-id': `req_${++seq}` });
  let i = 0;
  const next = (): void => {
    while (i < list.length) {
      if (res.destroyed) return;
      const last = i === list.length - 1;
      const ok = last ? (res.end(list[i++]), true) : res.write(list[i++]);
      if (last) return;
      if (!ok) return void res.once('drain', next);
      if (interval > 0) return void setTimeout(next, interval);
    }
  };
  next();
}

function handler(azure: boolean) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    let streamed = false;
    // Only the start of the body is looked at: `"stream":true` is enough to choose the shape.
    req.on('data', (chunk: Buffer) => {
      if (!streamed && chunk.includes('"stream":true')) streamed = true;
    });
    req.on('end', () => {
      if (!azure && mode.openaiStatus === 429) {
        res.writeHead(429, LIMITED_HEADERS);
        res.end(RATE_LIMITED);
        return;
      }
      if (streamed) return stream(res);
      res.writeHead(200, azure ? AZURE_HEADERS : OK_HEADERS);
      res.end(azure ? AZURE_OK : OPENAI_OK);
    });
  };
}

function listen(azure: boolean): Promise<number> {
  const server = createServer({ keepAlive: true }, handler(azure));
  // Longer than any system is held stopped (SIGSTOP) while another is measured: a connection closed meanwhile
  // would fail that system's next request when it resumes.
  server.keepAliveTimeout = 600_000;
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

async function main(): Promise<void> {
  const [openai, azure] = await Promise.all([listen(false), listen(true)]);
  process.on('message', (msg: { type: 'mode'; mode: FakeMode }) => {
    if (msg.type === 'mode') {
      mode = msg.mode;
      process.send!({ type: 'mode-set' });
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send!({ type: 'ready', openai, azure });
}

void main();
