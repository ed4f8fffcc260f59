/// <reference types="jest" />
// The fakes' public contract as their README states it: what a user scripting them for their own tests relies on.
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI, { APIError } from 'openai';
import { listenOnPort, replies, startFakeAzureOpenAI, startFakeOpenAI, type FakeProvider } from './index';

const KEY = 'sk-test-key';
const messages = [{ role: 'user' as const, content: 'hi' }];

function post(url: string, body: unknown, headers: Record<string, string> = {}, method = 'POST', redirect: 'follow' | 'manual' = 'follow') {
  return fetch(url, {
    method,
    redirect,
    headers: { 'content-type': 'application/json', ...headers },
    ...(method === 'GET' ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
}

/** Reads a body to its end or its cut: what arrived, and the error that ended it (undefined for a clean end). */
async function readAll(res: Response): Promise<{ text: string; err: unknown }> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { text, err: undefined };
      text += decoder.decode(value, { stream: true });
    }
  } catch (err) {
    return { text, err };
  }
}

describe('fake scripting: order, defaults, reset', () => {
  let fake: FakeProvider;
  let client: OpenAI;
  beforeEach(async () => {
    fake = await startFakeOpenAI();
    client = new OpenAI({ apiKey: KEY, baseURL: fake.baseURL, maxRetries: 0 });
  });
  afterEach(() => fake.close());

  const ask = async () => (await client.chat.completions.create({ model: 'gpt-4o', messages })).choices[0]?.message.content;

  it('plays queued replies first in, first out, within one enqueue call and across calls; enqueue and setDefault chain', async () => {
    expect(fake.enqueue(replies.ok('1'), replies.ok('2')).enqueue(replies.ok('3'))).toBe(fake);
    expect(fake.setDefault(replies.ok('default'))).toBe(fake);
    expect([await ask(), await ask(), await ask(), await ask(), await ask()]).toEqual(['1', '2', '3', 'default', 'default']);
  });

  it('reset() drops what is still queued, empties the same requests array in place, and restores the defaultReply option', async () => {
    const withDefault = await startFakeOpenAI({ defaultReply: replies.ok('from the option') });
    try {
      const c = new OpenAI({ apiKey: KEY, baseURL: withDefault.baseURL, maxRetries: 0 });
      const askIt = async () => (await c.chat.completions.create({ model: 'gpt-4o', messages })).choices[0]?.message.content;
      expect(await askIt()).toBe('from the option');
      const held = withDefault.requests;
      withDefault.setDefault(replies.ok('set later')).enqueue(replies.ok('queued'), replies.ok('never played'));
      expect(await askIt()).toBe('queued');
      withDefault.reset();
      expect(await askIt()).toBe('from the option');
      expect(withDefault.requests).toBe(held);
      expect(held).toHaveLength(1);
    } finally {
      await withDefault.close();
    }
  });

  it('a defaultReply function gets the request and its index', async () => {
    const fn = await startFakeOpenAI({ defaultReply: (req, i) => replies.ok(`${i}:${(req.body as { model: string }).model}`) });
    try {
      const c = new OpenAI({ apiKey: KEY, baseURL: fn.baseURL, maxRetries: 0 });
      const out = await c.chat.completions.create({ model: 'gpt-4o', messages });
      expect(out.choices[0]?.message.content).toBe('0:gpt-4o');
    } finally {
      await fn.close();
    }
  });

  it('a reply function that throws is a 500 naming the error, and the fake keeps serving', async () => {
    fake.enqueue(() => {
      throw new Error('bad script');
    });
    const res = await post(`${fake.baseURL}/chat/completions`, { model: 'gpt-4o', messages });
    expect(res.status).toBe(500);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('bad script');
    expect(await ask()).toBe('Hello from openai');
  });

  it('reports the scripted model, not the one asked for', async () => {
    fake.enqueue({ model: 'gpt-4o-2024-08-06' });
    const out = await client.chat.completions.create({ model: 'gpt-4o', messages });
    expect(out.model).toBe('gpt-4o-2024-08-06');
  });
});

describe('fake recording', () => {
  let fake: FakeProvider;
  beforeEach(async () => {
    fake = await startFakeOpenAI();
  });
  afterEach(() => fake.close());

  it('records a body that is not JSON as rawBody only (body undefined), and still answers', async () => {
    const res = await post(`${fake.baseURL}/chat/completions`, 'not json{');
    expect(res.status).toBe(200);
    expect(fake.requests[0]).toMatchObject({ rawBody: 'not json{', body: undefined });
  });

  it("records the client's port: the local port of the connection the request came on", async () => {
    const { port, hostname } = new URL(fake.url);
    const localPort = await new Promise<number>((resolve, reject) => {
      const req = request({ host: hostname, port, method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(req.socket?.localPort ?? -1));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ model: 'm', messages }));
    });
    expect(localPort).toBeGreaterThan(0);
    expect(fake.requests[0]?.remotePort).toBe(localPort);
  });
});

describe('fake routing: only POST to the provider paths', () => {
  let openai: FakeProvider;
  let azure: FakeProvider;
  beforeEach(async () => {
    [openai, azure] = await Promise.all([startFakeOpenAI({ deployments: ['only-this'] }), startFakeAzureOpenAI()]);
  });
  afterEach(() => Promise.all([openai.close(), azure.close()]));

  it('OpenAI: a GET, a path without /v1 or Azure’s v1 path is a 404, recorded, and takes no queued reply', async () => {
    openai.enqueue(replies.ok('scripted'));
    expect((await post(`${openai.baseURL}/chat/completions`, undefined, {}, 'GET')).status).toBe(404);
    expect((await post(`${openai.url}/chat/completions`, { model: 'm', messages })).status).toBe(404);
    expect((await post(`${openai.url}/openai/v1/chat/completions`, { model: 'm', messages })).status).toBe(404);
    expect(openai.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /v1/chat/completions', 'POST /chat/completions', 'POST /openai/v1/chat/completions']);
    const ok = (await (await post(`${openai.baseURL}/chat/completions`, { model: 'gpt-4o', messages })).json()) as { choices: Array<{ message: { content: string } }> };
    expect(ok.choices[0]?.message.content).toBe('scripted'); // and `deployments` is Azure's: it does not gate OpenAI's models
  });

  it("Azure: an unknown path is a 404 in Azure's envelope, not OpenAI's", async () => {
    const res = await post(`${azure.url}/openai/embeddings`, { input: 'x' });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: '404', message: 'Resource not found' } });
  });
});

describe('fake auth', () => {
  it('Azure takes the key as a Bearer token on its v1 path (what the plain OpenAI SDK sends); OpenAI wants exactly `Bearer <key>`', async () => {
    const [azure, openai] = await Promise.all([startFakeAzureOpenAI({ apiKey: KEY }), startFakeOpenAI({ apiKey: KEY })]);
    try {
      const v1 = new OpenAI({ apiKey: KEY, baseURL: `${azure.baseURL}/v1`, maxRetries: 0 });
      expect((await v1.chat.completions.create({ model: 'gpt-4o', messages })).choices[0]?.message.content).toBe('Hello from azure-openai');
      const wrong = new OpenAI({ apiKey: 'sk-other', baseURL: `${azure.baseURL}/v1`, maxRetries: 0 });
      expect(((await wrong.chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)) as APIError).status).toBe(401);
      expect((await post(`${openai.baseURL}/chat/completions`, { model: 'm', messages }, { authorization: KEY })).status).toBe(401);
      expect((await post(`${openai.baseURL}/chat/completions`, { model: 'm', messages }, { authorization: `Bearer x${KEY}` })).status).toBe(401);
    } finally {
      await Promise.all([azure.close(), openai.close()]);
    }
  });
});

describe('fake host', () => {
  it('binds ::1 when asked, with the address in brackets in url and baseURL', async () => {
    const fake = await startFakeOpenAI({ host: '::1' });
    try {
      expect(fake.url).toMatch(/^http:\/\/\[::1\]:\d+$/);
      const out = await new OpenAI({ apiKey: KEY, baseURL: fake.baseURL, maxRetries: 0 }).chat.completions.create({ model: 'gpt-4o', messages });
      expect(out.choices[0]?.message.content).toBe('Hello from openai');
    } finally {
      await fake.close();
    }
  });
});

describe('fake reply shapes', () => {
  let fake: FakeProvider;
  beforeEach(async () => {
    fake = await startFakeOpenAI();
  });
  afterEach(() => fake.close());

  const chat = (body: unknown = { model: 'gpt-4o', messages }) => post(`${fake.baseURL}/chat/completions`, body);

  it('a scripted content-type wins over the stock one, for a JSON reply and for a stream', async () => {
    fake.enqueue({ status: 502, headers: { 'Content-Type': 'text/html' }, body: '<html>Bad gateway</html>' });
    const html = await chat();
    expect([html.status, html.headers.get('content-type'), await html.text()]).toEqual([502, 'text/html', '<html>Bad gateway</html>']);

    fake.enqueue({ headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store' }, stream: { chunks: ['a'] } });
    const sse = await chat();
    expect([sse.headers.get('content-type'), sse.headers.get('cache-control')]).toEqual(['text/event-stream; charset=utf-8', 'no-store']);
    await sse.text();
  });

  it('a 3xx with no body is sent with an empty body (a redirect scripted by its location header), not a completion', async () => {
    fake.enqueue({ status: 307, headers: { location: 'http://127.0.0.1:1/v1/chat/completions' } });
    const res = await post(`${fake.baseURL}/chat/completions`, { model: 'gpt-4o', messages }, {}, 'POST', 'manual');
    expect([res.status, res.headers.get('location'), await res.text()]).toEqual([307, 'http://127.0.0.1:1/v1/chat/completions', '']);
  });

  it('stock envelopes: serverError() is a 500, an unlisted 5xx is a server_error with the stock 500 text', async () => {
    fake.enqueue(replies.serverError(), { status: 520 });
    const first = await chat();
    expect(first.status).toBe(500);
    const second = await chat();
    expect(second.status).toBe(520);
    expect(await second.json()).toEqual({
      error: { message: 'The server had an error while processing your request. Sorry about that!', type: 'server_error', param: null, code: null },
    });
  });

  it("Azure: an unlisted 5xx gets Azure's stock server-error text", async () => {
    const azure = await startFakeAzureOpenAI();
    try {
      azure.enqueue({ status: 503 });
      const res = await post(`${azure.baseURL}/v1/chat/completions`, { model: 'gpt-4o', messages });
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ error: { code: '503', message: 'The server had an error processing your request.' } });
    } finally {
      await azure.close();
    }
  });

  it('rateLimited() without a value sends no retry-after; with one it does', async () => {
    fake.enqueue(replies.rateLimited(), replies.rateLimited(3));
    const bare = await chat();
    expect([bare.status, bare.headers.get('retry-after'), bare.headers.get('x-ratelimit-remaining-requests')]).toEqual([429, null, '0']);
    expect((await chat()).headers.get('retry-after')).toBe('3');
  });

  it("azureRateLimited() waits 6 s by default, and reports no tokens left; insufficientQuota() is OpenAI's insufficient_quota 429 without retry-after", async () => {
    fake.enqueue(replies.azureRateLimited(), replies.insufficientQuota());
    const azure = await chat();
    expect([azure.status, azure.headers.get('retry-after'), azure.headers.get('retry-after-ms'), azure.headers.get('x-ratelimit-remaining-tokens')]).toEqual([
      429,
      '6',
      '6000',
      '0',
    ]);
    const quota = await chat();
    expect([quota.status, quota.headers.get('retry-after')]).toEqual([429, null]);
    expect(((await quota.json()) as { error: object }).error).toMatchObject({ type: 'insufficient_quota', code: 'insufficient_quota' });
  });
});

describe('fake streams', () => {
  let fake: FakeProvider;
  beforeEach(async () => {
    fake = await startFakeOpenAI();
  });
  afterEach(() => fake.close());

  const events = (text: string) => text.split('\n\n').filter(Boolean);
  const stream = (extra: object = {}) => post(`${fake.baseURL}/chat/completions`, { model: 'gpt-4o', messages, stream: true, ...extra });

  it('only the first content chunk carries the role; with include_usage every chunk has usage: null until the usage chunk', async () => {
    const res = await stream({ stream_options: { include_usage: true } });
    const evs = events(await res.text());
    const chunks = evs.slice(0, -1).map((e) => JSON.parse(e.slice('data: '.length)) as { choices: Array<{ delta: { role?: string } }>; usage: unknown });
    expect(chunks.map((c) => c.choices[0]?.delta.role ?? null)).toEqual(['assistant', null, null, null, null]);
    expect(chunks.map((c) => c.usage)).toEqual([null, null, null, null, { prompt_tokens: 10, completion_tokens: 3, total_tokens: 13 }]);
  });

  it('cutAfter equal to the chunk count plays every content chunk, then cuts before the finish chunk', async () => {
    fake.enqueue(replies.stream({ chunks: ['a', 'b', 'c'], cutAfter: 3 }));
    const res = await stream();
    expect(res.status).toBe(200);
    const { text, err } = await readAll(res);
    expect(err).toMatchObject({ message: 'terminated' });
    expect(events(text).map((e) => (JSON.parse(e.slice(6)) as { choices: Array<{ delta: { content: string } }> }).choices[0]?.delta.content)).toEqual(['a', 'b', 'c']);
  });

  it('cutAfter: 0 sends the 200 and its SSE headers, then cuts before any event', async () => {
    fake.enqueue(replies.stream({ chunks: ['a', 'b'], cutAfter: 0 }));
    const res = await stream();
    expect([res.status, res.headers.get('content-type')]).toEqual([200, 'text/event-stream']);
    const { text, err } = await readAll(res);
    expect(err).toMatchObject({ message: 'terminated' });
    expect(text).toBe('');
  });

  it('omitDone ends the body cleanly after the finish chunk, without data: [DONE]', async () => {
    fake.enqueue(replies.stream({ chunks: ['a'], omitDone: true }));
    const { text, err } = await readAll(await stream());
    expect(err).toBeUndefined();
    const evs = events(text);
    expect(evs).toHaveLength(2);
    expect(evs.some((e) => e.includes('[DONE]'))).toBe(false);
    expect(JSON.parse(evs[1]!.slice(6))).toMatchObject({ choices: [{ finish_reason: 'stop' }] });
  });

  it('chunks: 0 still plays the content, as one chunk', async () => {
    fake.enqueue(replies.stream({ chunks: 0 }));
    const evs = events(await (await stream()).text());
    expect(evs).toHaveLength(3); // the content, the finish chunk, [DONE]
    expect(JSON.parse(evs[0]!.slice(6))).toMatchObject({ choices: [{ delta: { content: 'Hello from openai' } }] });
  });
});

describe('listenOnPort', () => {
  const servers: Server[] = [];
  const server = () => {
    const s = createServer((_req, res) => res.end());
    servers.push(s);
    return s;
  };
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => (s.listening ? new Promise((r) => s.close(r)) : undefined)));
  });

  it('listens on loopback only, on any free port when PORT is unset', async () => {
    const s = server();
    await listenOnPort(s, undefined);
    const addr = s.address() as AddressInfo;
    expect(addr.address).toBe('127.0.0.1');
    expect(addr.port).toBeGreaterThan(0);
  });

  it('refuses a PORT that is not a port number with a sentence, and accepts 65535 as one', async () => {
    for (const bad of ['abc', '1.5', '-1', '65536']) {
      await expect(listenOnPort(server(), bad)).rejects.toThrow(`PORT must be a port number (0-65535), not "${bad}".`);
    }
    // 65535 may be taken on this machine: whatever happens, it is not refused as "not a port number".
    const err = await listenOnPort(server(), '65535').catch((e: unknown) => e);
    expect(String(err)).not.toContain('PORT must be');
  });

  it('says which port is in use, and what to do', async () => {
    const taken = server();
    await listenOnPort(taken, undefined);
    const { port } = taken.address() as AddressInfo;
    const second = server();
    await expect(listenOnPort(second, String(port))).rejects.toThrow(`Port ${port} is in use: set PORT to a free port, or leave it unset for any free one.`);
  });
});
