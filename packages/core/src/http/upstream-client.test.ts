import type { Readable } from 'node:stream';
import { replies, startFakeOpenAI, type FakeProvider } from '@switchyard/testing';
import { Agent } from 'undici';
import { createUpstreamClient, type UpstreamClient, type UpstreamRequest } from './upstream-client';

describe('upstream client (undici dispatch)', () => {
  let fake: FakeProvider;
  let client: UpstreamClient;

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    client = createUpstreamClient(new Agent({ keepAliveTimeout: 10_000 }));
  });
  afterAll(async () => {
    await client.close();
    await fake.close();
  });
  beforeEach(() => fake.reset());

  const call = (body: object = { model: 'gpt-4o', messages: [] }, signal = new AbortController().signal): UpstreamRequest => ({
    origin: fake.url,
    path: '/v1/chat/completions',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test' },
    body: JSON.stringify(body),
    signal,
  });

  const collect = (stream: Readable): Promise<string> =>
    new Promise((resolve, reject) => {
      let text = '';
      stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
      stream.once('end', () => resolve(text));
      stream.once('error', reject);
    });

  it('reads a JSON answer whole, with its status and lower-case headers', async () => {
    fake.enqueue({ headers: { 'X-Request-Id': 'req-1' } });
    const res = await client.request(call());
    expect(res.status).toBe(200);
    expect(res.headers['x-request-id']).toBe('req-1');
    expect(JSON.parse((await res.read()).toString())).toMatchObject({ object: 'chat.completion' });
    expect(fake.requests[0]!.body).toEqual({ model: 'gpt-4o', messages: [] });
  });

  it('hands over an SSE answer as a Readable once its first bytes arrived, every event intact', async () => {
    fake.enqueue(replies.stream({ chunks: 4, intervalMs: 5 }));
    const res = await client.request(call({ model: 'gpt-4o', messages: [], stream: true }));
    const events = (await collect(await res.stream())).split('\n\n').filter(Boolean);
    expect(events.pop()).toBe('data: [DONE]');
    const contents = events.map((e) => JSON.parse(e.slice('data: '.length)).choices[0]?.delta?.content).filter(Boolean);
    expect(contents).toHaveLength(4);
  });

  it('rejects stream() when the body ends before any byte', async () => {
    fake.enqueue({ headers: { 'content-type': 'text/event-stream' }, body: '' });
    const res = await client.request(call());
    await expect(res.stream()).rejects.toThrow('ended before sending any data');
  });

  it('destroying a stream mid-body aborts the upstream request', async () => {
    fake.enqueue(replies.stream({ chunks: 50, intervalMs: 20 }));
    const res = await client.request(call({ model: 'gpt-4o', messages: [], stream: true }));
    const stream = await res.stream();
    stream.destroy();
    await until(() => fake.requests[0]!.aborted);
    expect(fake.requests[0]!.aborted).toBe(true);
  });

  it('an abort while waiting for headers rejects at once with the reason and reaches the upstream', async () => {
    fake.enqueue({ hang: true });
    const controller = new AbortController();
    const pending = client.request(call(undefined, controller.signal));
    await until(() => fake.requests.length === 1);
    const reason = new Error('deadline');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await until(() => fake.requests[0]!.aborted);
    expect(fake.requests[0]!.aborted).toBe(true);
  });

  it('a discarded short answer keeps its connection; a long one is cut rather than read', async () => {
    // A client of its own: its pool holds only this test's connections.
    const agent = new Agent({ keepAliveTimeout: 10_000 });
    const client = createUpstreamClient(agent);
    // An Agent keeps a Pool per origin (stats with `free`) and drops it once it has no connection left.
    const pool = () => (agent.stats[fake.url] as { connected: number; free: number } | undefined) ?? { connected: 0, free: 0 };
    fake.enqueue(replies.rateLimited(), { status: 429, body: 'x'.repeat(512 * 1024) }, {});
    (await client.request(call())).discard();
    await until(() => pool().free === 1 || pool().connected === 0);
    expect(pool().connected).toBe(1);
    (await client.request(call())).discard();
    await until(() => pool().free === 1 || pool().connected === 0);
    expect(pool().connected).toBe(0);
    await (await client.request(call())).read();
    const ports = fake.requests.map((r) => r.remotePort);
    expect(ports[1]).toBe(ports[0]);
    expect(ports[2]).not.toBe(ports[1]);
    await client.close();
  });
});

async function until(check: () => boolean, timeoutMs = 2_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
