/**
 * The floor: the least any gateway can do. A node:http client with a keep-alive agent, a hard-coded
 * OpenAI -> Azure OpenAI fallback on 429/5xx, the response piped. No validation, no logging, no timeouts.
 */
import { Agent, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { AZURE_API_VERSION, AZURE_DEPLOYMENT, type Upstreams } from './shared';

export interface FloorProxy {
  /** Sends `body` to OpenAI, falls back to Azure on 429/5xx; resolves with the upstream response to pipe. */
  forward(body: Buffer): Promise<IncomingMessage>;
}

export function createFloorProxy(upstreams: Upstreams): FloorProxy {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const openai = new URL(upstreams.openai);
  const azure = new URL(upstreams.azure);
  const azurePath = `/openai/deployments/${AZURE_DEPLOYMENT}/chat/completions?api-version=${AZURE_API_VERSION}`;

  const send = (url: URL, path: string, auth: Record<string, string>, body: Buffer): Promise<IncomingMessage> =>
    new Promise((resolve, reject) => {
      const req = request(
        {
          agent,
          host: url.hostname,
          port: url.port,
          method: 'POST',
          path,
          headers: { ...auth, 'content-type': 'application/json', 'content-length': body.length },
        },
        resolve,
      );
      req.on('error', reject);
      req.end(body);
    });

  return {
    async forward(body) {
      const res = await send(openai, '/v1/chat/completions', { authorization: 'Bearer sk-bench-openai' }, body);
      const status = res.statusCode ?? 502;
      if (status !== 429 && status < 500) return res;
      res.resume();
      return send(azure, azurePath, { 'api-key': 'bench-azure-key' }, body);
    },
  };
}

/** Headers of the upstream response worth passing on (the length avoids chunked encoding for JSON). */
export function passHeaders(res: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': res.headers['content-type'] ?? 'application/json' };
  const length = res.headers['content-length'];
  if (length !== undefined) headers['content-length'] = length;
  return headers;
}

/** Pipes an upstream response to the client. */
export function pipeTo(up: IncomingMessage, res: ServerResponse): void {
  res.writeHead(up.statusCode ?? 502, passHeaders(up));
  up.pipe(res);
}

export function readRaw(req: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function badGateway(res: ServerResponse): void {
  if (res.headersSent) return void res.destroy();
  res.writeHead(502, { 'content-type': 'application/json' });
  res.end('{"error":{"message":"upstream failed","type":"server_error","param":null,"code":null}}');
}
