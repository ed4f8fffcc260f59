export type FakeFlavor = 'openai' | 'azure-openai';

export interface FakeProviderOptions {
  flavor: FakeFlavor;
  /** Shown in the default reply content (`Hello from <name>`). Defaults to the flavor. */
  name?: string | undefined;
  /** When set, requests without this key get 401 (OpenAI: `Authorization: Bearer`; Azure: `api-key`). */
  apiKey?: string | undefined;
  /**
   * Azure: the deployments that exist. Another name (in the URL, or as the v1 form's body `model`) gets Azure's 404
   * `DeploymentNotFound`, so a wrong `deployment_id` or `deployments` map fails in tests too. Default: any name.
   */
  deployments?: readonly string[] | undefined;
  /** Loopback interface to bind. The port is always random. */
  host?: '127.0.0.1' | '::1' | undefined;
  /** Reply used when the script queue is empty. Defaults to a successful completion. */
  defaultReply?: FakeReply | FakeReplyFn | undefined;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  /** Lowercased header names. */
  headers: Record<string, string>;
  /** Parsed JSON body, or undefined when the body is empty or not JSON. */
  body: unknown;
  rawBody: string;
  /** Azure `/openai/deployments/{deployment}/...` form only. */
  deployment?: string | undefined;
  receivedAt: number;
  /** The client's port: requests sent over one keep-alive connection share it. */
  remotePort: number;
  /** True if the client closed the connection before the reply finished. */
  aborted: boolean;
}

export interface FakeStreamOptions {
  /** Number of content chunks (default 3), or the exact content pieces. */
  chunks?: number | string[] | undefined;
  /** Delay between content chunks. 0 (default) writes them back to back. */
  intervalMs?: number | undefined;
  /** Destroy the socket after this many content chunks (mid-stream failure). */
  cutAfter?: number | undefined;
  /** With `cutAfter`: send only the first half of the last chunk's event before cutting (a failure mid-event). */
  cutMidEvent?: boolean | undefined;
  /** End the stream cleanly but without its `data: [DONE]`: a stream cut at an event boundary (by a proxy, say). */
  omitDone?: boolean | undefined;
  /** Close the connection right after `data: [DONE]`, before the body's end: the answer itself is complete. */
  cutAfterDone?: boolean | undefined;
  /** Send a final usage chunk. Default: when the request had `stream_options.include_usage`. */
  usage?: boolean | undefined;
  /** Pad each content piece to about this many bytes (large-stream benchmarks). */
  chunkBytes?: number | undefined;
}

export interface FakeReply {
  /** Default 200. */
  status?: number | undefined;
  headers?: Record<string, string> | undefined;
  /**
   * JSON body (a string is sent verbatim, so malformed JSON can be scripted). When absent:
   * 2xx → a chat.completion (or an SSE stream), 3xx → an empty body (set `location` in `headers` for a redirect),
   * >= 400 → an OpenAI error envelope for the status.
   */
  body?: unknown;
  /** Assistant content of the generated completion / stream. Default `Hello from <name>`. */
  content?: string | undefined;
  /** The `model` the response reports, as a real provider names its snapshot. Default: the requested model. */
  model?: string | undefined;
  /** Wait this long before sending headers. */
  delayMs?: number | undefined;
  /** Never answer (until the client aborts or the server closes). */
  hang?: boolean | undefined;
  /** Reset the connection (TCP RST) without any response. */
  reset?: boolean | undefined;
  /** Reply as SSE even if the request did not ask for `stream: true`. */
  stream?: FakeStreamOptions | undefined;
}

/** `index` is the request's position in `provider.requests` (0-based). */
export type FakeReplyFn = (req: RecordedRequest, index: number) => FakeReply;

export interface FakeProvider {
  readonly flavor: FakeFlavor;
  /** `http://127.0.0.1:PORT` (IPv6 in brackets). */
  readonly url: string;
  /** OpenAI: `${url}/v1`; Azure: `${url}/openai`. What a gateway's `custom_host` should be. */
  readonly baseURL: string;
  readonly requests: RecordedRequest[];
  /** FIFO, one reply per request that passes routing and auth. */
  enqueue(...replies: Array<FakeReply | FakeReplyFn>): this;
  setDefault(reply: FakeReply | FakeReplyFn): this;
  /** Clear the queue and the recorded requests, restore the default reply. */
  reset(): void;
  /** Close the server and every socket, including hanging ones. */
  close(): Promise<void>;
}
