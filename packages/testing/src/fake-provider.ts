import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { azureErrorBody, completionBody, CONTENT_FILTER_RESULTS, DEPLOYMENT_NOT_FOUND, errorBody, PROMPT_FILTER_RESULTS, streamPieces } from './replies';
import type {
  FakeFlavor,
  FakeProvider,
  FakeProviderOptions,
  FakeReply,
  FakeReplyFn,
  FakeStreamOptions,
  RecordedRequest,
} from './types';

const DEPLOYMENT_PATH = /^\/openai\/deployments\/([^/]+)\/chat\/completions$/;
const SUCCESS: FakeReply = {};

/** One request/response in flight: owns its timers and knows whether the socket went away. */
class Exchange {
  private ended = false;
  /** Set when we cut the connection ourselves, so it does not count as a client abort. */
  private selfClosed = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    readonly res: ServerResponse,
    readonly rec: RecordedRequest,
    isShuttingDown: () => boolean,
  ) {
    res.once('close', () => {
      this.ended = true;
      for (const t of this.timers) clearTimeout(t);
      this.timers.clear();
      if (!res.writableFinished && !this.selfClosed && !isShuttingDown()) rec.aborted = true;
    });
  }

  get closed(): boolean {
    return this.ended || this.res.destroyed;
  }

  /** Resolves after `ms`; never resolves if the exchange closes first. */
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  drain(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.res.off('drain', done);
        this.res.off('close', done);
        resolve();
      };
      this.res.on('drain', done);
      this.res.on('close', done);
    });
  }

  /** FIN after whatever was already written (mid-stream cut). */
  cut(): void {
    this.selfClosed = true;
    this.res.socket?.destroy();
  }

  /** TCP RST, no response at all. */
  reset(): void {
    this.selfClosed = true;
    const socket = this.res.socket;
    if (socket) socket.resetAndDestroy();
  }

  json(status: number, body: unknown, headers: Record<string, string>): void {
    const payload = typeof body === 'string' ? body : JSON.stringify(body);
    this.res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(payload)),
      ...headers,
    });
    this.res.end(payload);
  }
}

class FakeProviderImpl implements FakeProvider {
  readonly requests: RecordedRequest[] = [];
  url = '';
  baseURL = '';
  private readonly server: Server;
  private readonly name: string;
  private queue: Array<FakeReply | FakeReplyFn> = [];
  private fallback: FakeReply | FakeReplyFn;
  private shuttingDown = false;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: FakeProviderOptions) {
    this.name = options.name ?? options.flavor;
    this.fallback = options.defaultReply ?? SUCCESS;
    this.server = createServer({ keepAlive: true }, (req, res) => this.onRequest(req, res));
    this.server.keepAliveTimeout = 30_000;
    this.server.headersTimeout = 31_000;
  }

  get flavor(): FakeFlavor {
    return this.options.flavor;
  }

  async listen(): Promise<this> {
    const host = this.options.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.baseURL = `${this.url}${this.flavor === 'openai' ? '/v1' : '/openai'}`;
    return this;
  }

  enqueue(...replies: Array<FakeReply | FakeReplyFn>): this {
    this.queue.push(...replies);
    return this;
  }

  setDefault(reply: FakeReply | FakeReplyFn): this {
    this.fallback = reply;
    return this;
  }

  reset(): void {
    this.queue = [];
    this.requests.length = 0; // in place, so held references stay live
    this.fallback = this.options.defaultReply ?? SUCCESS;
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.shuttingDown = true;
      this.server.close(() => resolve());
      this.server.closeAllConnections(); // also destroys sockets with hanging responses
    });
    return this.closing;
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => this.handle(req, res, Buffer.concat(chunks).toString('utf8')));
  }

  private handle(req: IncomingMessage, res: ServerResponse, rawBody: string): void {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://fake.invalid');
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    }
    let body: unknown;
    if (rawBody) {
      try {
        body = JSON.parse(rawBody);
      } catch {
        body = undefined;
      }
    }
    const rec: RecordedRequest = {
      method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers,
      body,
      rawBody,
      receivedAt: Date.now(),
      remotePort: req.socket.remotePort ?? 0,
      aborted: false,
    };

    let routed = false;
    let needsApiVersion = false;
    if (this.flavor === 'openai') routed = rec.path === '/v1/chat/completions';
    else if (rec.path === '/openai/v1/chat/completions') routed = true;
    else {
      const m = DEPLOYMENT_PATH.exec(rec.path);
      if (m?.[1] !== undefined) {
        try {
          rec.deployment = decodeURIComponent(m[1]);
          routed = needsApiVersion = true;
        } catch {
          // A malformed escape: an unknown route (404), not an exception in the test process.
        }
      }
    }

    const index = this.requests.length;
    this.requests.push(rec); // recorded before any check, so "no upstream call" is observable
    const ex = new Exchange(res, rec, () => this.shuttingDown);
    const id = `${index + 1}`;
    const base = { 'x-request-id': `req_fake_${id}` };

    if (!routed || method !== 'POST') {
      return ex.json(404, this.flavor === 'openai' ? errorBody(404, `Invalid URL (${method} ${rec.path})`, null) : azureErrorBody(404), base);
    }
    // Azure answers a deployment URL without api-version as an unknown resource.
    if (needsApiVersion && !rec.query['api-version']) return ex.json(404, azureErrorBody(404), base);
    if (!this.authorized(headers, needsApiVersion)) {
      return ex.json(401, this.envelope(401), base);
    }
    const { deployments } = this.options;
    if (deployments && this.flavor === 'azure-openai') {
      const name = rec.deployment ?? (rec.body as { model?: unknown } | undefined)?.model;
      if (typeof name !== 'string' || !deployments.includes(name)) return ex.json(404, DEPLOYMENT_NOT_FOUND, base);
    }

    const next = this.queue.shift() ?? this.fallback;
    let reply: FakeReply;
    try {
      reply = typeof next === 'function' ? next(rec, index) : next;
    } catch (err) {
      return ex.json(500, this.envelope(500, `FakeReplyFn threw: ${String(err)}`), base);
    }
    // A bad scripted reply (e.g. an invalid header value) must not crash the test process.
    this.play(ex, reply, id, base).catch((err: unknown) => {
      if (!res.headersSent && !ex.closed) ex.json(500, this.envelope(500, `Fake reply failed: ${String(err)}`), base);
      else ex.cut(); // our own failure, not a client abort
    });
  }

  /** The error envelope of this flavor: OpenAI's (`message`, `type`, `param`, `code`) or Azure's (`code`, `message`). */
  private envelope(status: number, message?: string): object {
    return this.flavor === 'openai' ? errorBody(status, message) : azureErrorBody(status, message);
  }

  private authorized(headers: Record<string, string>, deploymentsForm: boolean): boolean {
    const key = this.options.apiKey;
    if (key === undefined) return true;
    const bearer = headers['authorization'] === `Bearer ${key}`;
    if (this.flavor === 'openai') return bearer;
    // Azure's v1 surface also accepts the key as a bearer token (what the plain OpenAI SDK sends).
    return headers['api-key'] === key || (!deploymentsForm && bearer);
  }

  private async play(ex: Exchange, reply: FakeReply, id: string, base: Record<string, string>): Promise<void> {
    if (reply.delayMs !== undefined && reply.delayMs > 0) await ex.wait(reply.delayMs);
    if (ex.closed || reply.hang) return;
    if (reply.reset) return ex.reset();

    const status = reply.status ?? 200;
    const headers: Record<string, string> = { ...base };
    for (const [k, v] of Object.entries(reply.headers ?? {})) headers[k.toLowerCase()] = v;

    if (reply.body !== undefined) return ex.json(status, reply.body, headers);
    if (status >= 400) return ex.json(status, this.envelope(status), headers);
    if (status >= 300) return ex.json(status, '', headers);

    const req = (ex.rec.body ?? {}) as { model?: unknown; stream?: unknown; stream_options?: { include_usage?: unknown } };
    const model = reply.model ?? (typeof req.model === 'string' && req.model !== '' ? req.model : (ex.rec.deployment ?? 'gpt-4o-mini'));
    const content = reply.content ?? `Hello from ${this.name}`;
    const created = Math.floor(Date.now() / 1000);
    const completionId = `chatcmpl-fake-${id}`;

    if (reply.stream === undefined && req.stream !== true) {
      return ex.json(status, completionBody(completionId, model, content, created, this.flavor === 'azure-openai'), headers);
    }
    const opts: FakeStreamOptions = reply.stream ?? {};
    const usage = opts.usage ?? req.stream_options?.include_usage === true;
    await this.stream(ex, status, headers, opts, usage, { id: completionId, object: 'chat.completion.chunk', created, model }, content);
  }

  private async stream(
    ex: Exchange,
    status: number,
    headers: Record<string, string>,
    opts: FakeStreamOptions,
    usage: boolean,
    head: { id: string; object: string; created: number; model: string },
    content: string,
  ): Promise<void> {
    const pieces = streamPieces(opts, content);
    const cutAfter = opts.cutAfter;
    // A cut the stream never reaches would end it cleanly: the test would pass for the wrong reason.
    if (cutAfter !== undefined && cutAfter > pieces.length) throw new RangeError(`cutAfter ${cutAfter} is past the stream's ${pieces.length} content chunks.`);
    const res = ex.res;
    res.writeHead(status, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      ...headers,
    });
    res.flushHeaders();
    const interval = opts.intervalMs ?? 0;
    const azure = this.flavor === 'azure-openai';
    // OpenAI sends `usage: null` on every chunk when include_usage is on.
    const usageField = usage ? { usage: null } : {};

    if (cutAfter !== undefined && cutAfter <= 0) {
      const socket = res.socket;
      if (!socket || socket.writableLength === 0) ex.cut();
      else socket.once('drain', () => ex.cut());
      return;
    }
    // Azure opens a stream with its prompt filters' verdict: no id, no model, no choices.
    if (azure) res.write(`data: ${JSON.stringify({ choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: PROMPT_FILTER_RESULTS })}\n\n`);
    for (let i = 0; i < pieces.length; i++) {
      if (i > 0 && interval > 0) await ex.wait(interval);
      if (ex.closed) return;
      const delta = i === 0 ? { role: 'assistant', content: pieces[i] } : { content: pieces[i] };
      const choice = { index: 0, delta, logprobs: null, finish_reason: null, ...(azure && { content_filter_results: CONTENT_FILTER_RESULTS }) };
      const event = `data: ${JSON.stringify({ ...head, choices: [choice], ...usageField })}\n\n`;
      if (cutAfter !== undefined && i + 1 >= cutAfter) {
        const sent = opts.cutMidEvent ? event.slice(0, Math.floor(event.length / 2)) : event;
        res.write(sent, () => ex.cut()); // cut once this chunk is on the wire
        return;
      }
      if (!res.write(event)) {
        await ex.drain();
        if (ex.closed) return;
      }
    }
    // As both providers end the choice: a chunk of its own with an empty delta and the finish reason, so code that
    // reads `delta.content` unguarded, or stops at the finish reason, meets here what it meets there.
    const finish = { index: 0, delta: {}, logprobs: null, finish_reason: 'stop', ...(azure && { content_filter_results: {} }) };
    if (!res.write(`data: ${JSON.stringify({ ...head, choices: [finish], ...usageField })}\n\n`)) {
      await ex.drain();
      if (ex.closed) return;
    }
    if (usage) {
      const n = pieces.length;
      const u = { prompt_tokens: 10, completion_tokens: n, total_tokens: 10 + n };
      res.write(`data: ${JSON.stringify({ ...head, choices: [], usage: u })}\n\n`);
    }
    if (opts.omitDone) res.end();
    else if (opts.cutAfterDone) res.write('data: [DONE]\n\n', () => ex.cut());
    else res.end('data: [DONE]\n\n');
  }
}

export function startFakeProvider(options: FakeProviderOptions): Promise<FakeProvider> {
  return new FakeProviderImpl(options).listen();
}

export function startFakeOpenAI(options: Omit<FakeProviderOptions, 'flavor'> = {}): Promise<FakeProvider> {
  return startFakeProvider({ ...options, flavor: 'openai' });
}

export function startFakeAzureOpenAI(options: Omit<FakeProviderOptions, 'flavor'> = {}): Promise<FakeProvider> {
  return startFakeProvider({ ...options, flavor: 'azure-openai' });
}
