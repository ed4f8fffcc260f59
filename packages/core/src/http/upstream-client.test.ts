import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { replies, startFakeOpenAI, type FakeProvider } from '@switchyard/testing';
import { Agent } from 'undici';
import { createUpstreamClient, type UpstreamClient, type UpstreamRequest } from './upstream-client';
import { toReadable, type BodyStream } from './body-stream';
import { readStream } from './read-stream';
import { FirstEventScanner } from './sse-framer';

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

  /**
   * Consumes a body stream to its end (`text` rejects on a failure; `received()` is what came before it); `pauseAt`
   * makes the consumer answer false at that chunk.
   */
  const collect = (stream: BodyStream, pauseAt = -1): { text: Promise<string>; count: () => number; received: () => string } => {
    let text = '';
    let count = 0;
    const done = new Promise<string>((resolve, reject) => {
      stream.consume({
        data: (chunk) => {
          text += chunk.toString();
          return count++ !== pauseAt;
        },
        end: () => resolve(text),
        error: reject,
      });
    });
    return { text: done, count: () => count, received: () => text };
  };
  const contentsOf = (text: string): string[] =>
    text
      .split('\n\n')
      .filter((e) => e.startsWith('data: {'))
      .map((e) => JSON.parse(e.slice('data: '.length)).choices[0]?.delta?.content)
      .filter(Boolean);

  it('reads a JSON answer whole, with its status and lower-case headers', async () => {
    fake.enqueue({ headers: { 'X-Request-Id': 'req-1' } });
    const res = await client.request(call());
    expect(res.status).toBe(200);
    expect(res.headers['x-request-id']).toBe('req-1');
    expect(JSON.parse((await res.read())!.toString())).toMatchObject({ object: 'chat.completion' });
    expect(fake.requests[0]!.body).toEqual({ model: 'gpt-4o', messages: [] });
  });

  it('hands over an SSE answer once its first bytes arrived, every event intact', async () => {
    fake.enqueue(replies.stream({ chunks: 4, intervalMs: 5 }));
    const res = await client.request(call({ model: 'gpt-4o', messages: [], stream: true }));
    const text = await collect(await res.stream()).text;
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(contentsOf(text)).toHaveLength(4);
  });

  it('a consumer that answers false gets no chunk until resume(), then the rest', async () => {
    fake.enqueue(replies.stream({ chunks: 6, intervalMs: 5 }));
    const res = await client.request(call({ model: 'gpt-4o', messages: [], stream: true }));
    const stream = await res.stream();
    const { text, count } = collect(stream, 0);
    // Chunks that arrived before consume() are all delivered at once; after the false, at most the one chunk undici
    // has already read (its pause takes effect at the next chunk), however late the upstream's chunks come.
    const held = count();
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(held).toBeGreaterThanOrEqual(1);
    expect(count()).toBeLessThanOrEqual(held + 1);
    expect(count()).toBeLessThan(6);
    stream.resume();
    expect(contentsOf(await text)).toHaveLength(6);
  });

  it('a consumer that starts late gets the chunks held for it, then the failure that came meanwhile', async () => {
    fake.enqueue(replies.stream({ chunks: 10, intervalMs: 5, cutAfter: 2 }));
    const res = await client.request(call({ model: 'gpt-4o', messages: [], stream: true }));
    const stream = await res.stream();
    await new Promise((resolve) => setTimeout(resolve, 150)); // the cut comes ~5 ms in
    const late = collect(stream);
    await expect(late.text).rejects.toBeInstanceOf(Error);
    expect(late.received().startsWith('data: {')).toBe(true);
  });

  it('toReadable gives the body as a Readable', async () => {
    fake.enqueue(replies.stream({ chunks: 3, intervalMs: 5 }));
    const res = await client.request(call({ model: 'gpt-4o', messages: [], stream: true }));
    const text = (await readStream(toReadable(await res.stream()))).toString();
    expect(contentsOf(text)).toHaveLength(3);
  });

  it.each([
    ['no byte', ''],
    ['only a keep-alive comment', ': keep-alive\n\n'],
    ['a data line without its blank line', 'data: {"choices":[]}\n'],
    ['only a retry field', 'retry: 3000\n\n'],
  ])('rejects stream() when the body ends before its first event: %s', async (_name, body) => {
    fake.enqueue({ headers: { 'content-type': 'text/event-stream' }, body });
    const res = await client.request(call());
    await expect(res.stream()).rejects.toThrow('ended its stream before sending any event');
  });

  it.each([
    ['a comment block first', [': keep-alive\n\n', 'data: {"a":1}\n\n']],
    ['an event split over chunks', ['data: {"a"', ':1}\n', '\n']],
    ['CRLF line ends split between CR and LF', ['data: {"a":1}\r', '\n', '\r\n']],
    ['stray blank lines first', ['\n\n', 'event: x\ndata: {"a":1}\n\n']],
    ['blocks a client dispatches nothing for', ['retry: 3000\n\nid: 1\n\nevent: ping\n\nx-foo: bar\n\n', 'data: {"a":1}\n\n']],
    ['a BOM before a comment', ['\uFEFF: keep-alive\n\n', 'data: {"a":1}\n\n']],
    ['the data field split, and a bare data line', ['da', 'ta', '\n', '\n']],
    ['a CR-ended event before a later LF', [': c\n', 'data: {"a":1}\r\r: d\n']],
    ['a BOM split across reads', [Buffer.from([0xef]), Buffer.from([0xbb]), Buffer.from([0xbf, 0x64]), 'ata: {"a":1}\n', '\n']],
    ['a BOM and the event one byte at a time', [...Buffer.from('\uFEFFdata: {"a":1}\n\n')].map((byte) => Buffer.from([byte]))],
  ])('the first-event scanner (what stream() waits for) counts an event only once one with data is whole: %s', (_name, pieces: Array<string | Buffer>) => {
    // Fed chunk by chunk: false until the last piece. stream()'s use of it is the rejections above.
    const scanner = new FirstEventScanner();
    const seen = pieces.map((piece) => scanner.push(Buffer.from(piece)) > 0);
    expect(seen).toEqual([...pieces.slice(1).map(() => false), true]);
  });

  it('the first-event scanner reads a start that only looked like a BOM as part of the first line, as a client does', () => {
    const scanner = new FirstEventScanner();
    expect([scanner.push(Buffer.from([0xef, 0xbb])), scanner.push(Buffer.from('data: {"a":1}\n\n'))]).toEqual([0, 0]);
    expect(scanner.push(Buffer.from('data: {"b":2}\n\n'))).toBe(1);
  });

  it.each([
    ['the body stream', (stream: BodyStream) => stream.destroy()],
    ['its Readable', (stream: BodyStream) => toReadable(stream).destroy()],
  ])('destroying %s mid-body aborts the upstream request', async (_name, destroy) => {
    fake.enqueue(replies.stream({ chunks: 50, intervalMs: 20 }));
    const res = await client.request(call({ model: 'gpt-4o', messages: [], stream: true }));
    const stream = await res.stream();
    destroy(stream);
    await until(() => fake.requests[0]!.aborted);
    expect(fake.requests[0]!.aborted).toBe(true);
    expect(stream.destroyed).toBe(true);
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

  it("drops an idle connection to an upstream that does not say how long it keeps one after 4 s, before such a server closes it (uvicorn's 5 s)", async () => {
    // Reusing a socket the server is closing fails the request that was written on it: the target looks down.
    let connections = 0;
    const server = createServer((_req, res) => res.end('{}'));
    server.keepAliveTimeout = 0; // no Keep-Alive header, as uvicorn and gunicorn send none
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const shared = createUpstreamClient();
    try {
      const send = async () => (await shared.request({ ...call(), origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })).read();
      await send();
      await new Promise((resolve) => setTimeout(resolve, 4_500));
      await send();
      expect(connections).toBe(2);
    } finally {
      await shared.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  }, 15_000);

  it("closing a client on the shared pool leaves that pool to the process's other clients", async () => {
    const first = createUpstreamClient();
    const second = createUpstreamClient();
    await first.close();
    const res = await second.request(call());
    expect(res.status).toBe(200);
    await res.read();
  });
});

async function until(check: () => boolean, timeoutMs = 2_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
