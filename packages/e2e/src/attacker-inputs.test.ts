/**
 * Security review (Z15): what a client controls never picks the upstream address or credential, and a provider key
 * reaches no client, log or warning. Raw node:http upstreams on loopback that record and echo what they get, the
 * engine behind `handleNodeRequest` (the logic is core's; the behaviour suite checks that adapters agree).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Gateway, handleNodeRequest, SwitchyardOptionsError, type SwitchyardOptions } from '@switchyard/core';
import { listen, type RunningApp } from './support/adapters';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const OPENAI_KEY = 'sk-probe-secret-key-ABCDEFGHIJKLMNOP1234';
const AZURE_KEY = '0123456789abcdef0123456789abcdef';
/** A key an operator chose for a self-hosted OpenAI-compatible server: printable ASCII, a quote and a backslash in it. */
const ODD_KEY = 'sk-probe"secret\\key-ABCDEFGHIJKL1234';
const messages = [{ role: 'user' as const, content: 'hi' }];

const completion = JSON.stringify({
  id: 'chatcmpl-x', object: 'chat.completion', created: 1, model: 'gpt-4o',
  choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop', logprobs: null }],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
});

describe('attacker-controlled inputs and provider keys', () => {
  let handler: Handler;
  let upstream: Server;
  let base: string;
  let app: RunningApp;
  const seen: Array<{ url: string; headers: IncomingMessage['headers']; body: string }> = [];

  const options = (): SwitchyardOptions => ({
    virtualKeys: {
      openai: { provider: 'openai', api_key: OPENAI_KEY, custom_host: `${base}/v1` },
      azure: { provider: 'azure-openai', api_key: AZURE_KEY, custom_host: `${base}/openai`, deployments: { 'gpt-4o': 'gpt4o-prod' } },
      'azure-fixed': { provider: 'azure-openai', api_key: AZURE_KEY, custom_host: `${base}/openai`, deployment_id: 'fixed-dep' },
      'azure-v1': { provider: 'azure-openai', api_key: AZURE_KEY, custom_host: `${base}/openai`, api_version: 'v1' },
    },
    configs: Object.fromEntries(['openai', 'azure', 'azure-fixed', 'azure-v1'].map((vk) => [vk, { strategy: { mode: 'single' as const }, targets: [{ virtual_key: vk }] }])),
  });
  const post = async (configId: string, body: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${app.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-switchyard-config': configId, ...headers },
      body: JSON.stringify(body),
    });
    return { status: res.status, headers: Object.fromEntries(res.headers), text: await res.text() };
  };

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        seen.push({ url: req.url ?? '', headers: req.headers, body });
        handler(req, res);
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    const gateway = new Gateway(options());
    app = await listen(createServer((req, res) => void handleNodeRequest(gateway, req, res)));
  });
  afterAll(async () => {
    await app.close();
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
  });
  beforeEach(() => {
    seen.length = 0;
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(completion);
    };
  });

  it("keeps a model name's path, query, fragment, encoded-slash, line-break and prototype tricks out of the upstream URL and headers", async () => {
    const models = ['a/../../x', '../x', 'x?api-version=1', 'x#f', 'x%2F..%2Fy', 'x\r\nHost: evil.example', 'ü/ñ', '__proto__', 'constructor', 'hasOwnProperty', 'gpt4o-prod'];
    const clientHeaders = { authorization: 'Bearer client-key', 'api-key': 'client-azure', 'x-forwarded-host': 'evil.example', 'openai-organization': 'org-client' };
    const expected: Record<string, (model: string) => { status: number; url?: string }> = {
      openai: () => ({ status: 200, url: '/v1/chat/completions' }),
      // The deployments map is looked up by own keys only; a deployment's name (gpt4o-prod) is no model.
      azure: () => ({ status: 400 }),
      'azure-fixed': () => ({ status: 200, url: '/openai/deployments/fixed-dep/chat/completions?api-version=2024-10-21' }),
      // v1: the model goes in the body, never in the path.
      'azure-v1': () => ({ status: 200, url: '/openai/v1/chat/completions' }),
    };
    for (const [configId, expect_] of Object.entries(expected)) {
      for (const model of models) {
        seen.length = 0;
        const res = await post(configId, { model, messages }, clientHeaders);
        const want = expect_(model);
        expect([configId, model, res.status]).toEqual([configId, model, want.status]);
        if (want.url === undefined) {
          expect(seen).toHaveLength(0);
          expect(JSON.parse(res.text).error.code).toBe('model_not_deployed');
          continue;
        }
        expect(seen.map((s) => s.url)).toEqual([want.url]);
        const sent = seen[0]!.headers;
        expect([sent.authorization, sent['api-key']]).toEqual(configId === 'openai' ? [`Bearer ${OPENAI_KEY}`, undefined] : [undefined, AZURE_KEY]);
        expect([sent['x-forwarded-host'], sent['openai-organization'], sent.host]).toEqual([undefined, undefined, base.slice('http://'.length)]);
      }
    }
    // Prototype names as config ids: unknown configs, not Object.prototype's members.
    for (const id of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      const res = await post(id, { model: 'gpt-4o', messages });
      expect([id, res.status, JSON.parse(res.text).error.code]).toEqual([id, 400, 'unknown_config']);
    }
  });

  it('refuses at startup, without quoting it, a key with a quote or a backslash: JSON writes them escaped, so an error body quoting it could not be masked', () => {
    // Any JSON encoder writes this key as sk-probe\"secret\\key-...: the client's parser would turn that back into the key.
    let thrown: unknown;
    try {
      new Gateway({ virtualKeys: { odd: { provider: 'openai', api_key: ODD_KEY } }, config: { virtual_key: 'odd' } });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(SwitchyardOptionsError);
    expect((thrown as SwitchyardOptionsError).issues).toEqual([{ path: 'virtualKeys.odd.api_key', message: 'must not contain `"` or `\\` (no provider key has them)' }]);
    expect((thrown as Error).message).not.toContain('secret');
  });

  it('refuses, without quoting it, a provider key pasted where a deployment or resource name goes: it would be in every log event, metric label and span', async () => {
    // An env file with AZURE_OPENAI_API_KEY and AZURE_OPENAI_DEPLOYMENT swapped: Azure refuses the "key", and the real
    // key becomes attempts[].model / servedBy.model (log events, the viewer, the metrics' model label) and a warning.
    const build = (fields: Record<string, unknown>) => () =>
      new Gateway({
        virtualKeys: { az: { provider: 'azure-openai', api_key: 'gpt4o-prod', custom_host: `${base}/openai`, ...fields } as never },
        config: { strategy: { mode: 'single' }, targets: [{ virtual_key: 'az' }] },
      });
    for (const fields of [{ deployment_id: AZURE_KEY }, { deployments: { 'gpt-4o': AZURE_KEY } }, { deployment_id: OPENAI_KEY }]) {
      let thrown: unknown;
      try {
        build(fields)();
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(SwitchyardOptionsError);
      expect(String((thrown as Error).message)).not.toContain(AZURE_KEY);
    }
    let thrown: unknown;
    try {
      new Gateway({
        virtualKeys: { az: { provider: 'azure-openai', api_key: 'my-resource', resource_name: AZURE_KEY, deployment_id: 'd' } },
        config: { strategy: { mode: 'single' }, targets: [{ virtual_key: 'az' }] },
      });
    } catch (err) {
      thrown = err;
    }
    // Else the key is the host's first label: in DNS queries and the attempt spans' server.address.
    expect(thrown).toBeInstanceOf(SwitchyardOptionsError);
  });
});
