/** Request intake through real HTTP: the limits on ids, model names and messages, W3C trace context, Portkey's headers. */
import request from 'supertest';
import type { SwitchyardOptions } from '@switchyard/core';
import { expressAdapter } from './support/adapters';
import { replies } from '@switchyard/testing';
import { AZURE_KEY, messages, nextLog, sdk, seedOptions, useUpstreams } from './support/fixture';

describe('request intake', () => {
  const { up, logs, track } = useUpstreams();
  const start = async (extra: Partial<SwitchyardOptions> = {}) => track(await expressAdapter.start(seedOptions(up, logs, extra)));

  it('takes a trace id, a config id and a model name of exactly 256 characters (only longer ones are refused)', async () => {
    const configId = 'c'.repeat(256);
    const url = await start({ configs: { [configId]: { virtual_key: 'openai-prod' } } });
    const traceId = 't'.repeat(256);
    const model = 'm'.repeat(256);
    const res = await sdk(url, { 'x-switchyard-trace-id': traceId, 'x-switchyard-config': configId }).chat.completions.create({ model, messages }).withResponse();
    expect(res.response.status).toBe(200);
    expect(res.response.headers.get('x-switchyard-trace-id')).toBe(traceId);
    expect((up.openai.requests[0]!.body as { model: string }).model).toBe(model);
    expect((await nextLog(logs)).configId).toBe(configId);
  });

  it('ignores a traceparent whose trace id is all zeros (W3C: invalid), generating a trace id instead', async () => {
    const url = await start();
    const zeros = '0'.repeat(32);
    const res = await sdk(url, { traceparent: `00-${zeros}-00f067aa0ba902b7-01` }).chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
    const traceId = res.response.headers.get('x-switchyard-trace-id');
    expect(traceId).toMatch(/^[\da-f]{32}$/);
    expect(traceId).not.toBe(zeros);
  });

  it('reads an empty Portkey routing header as absent (as an empty x-switchyard-config): served by the default config', async () => {
    const url = await start();
    const res = await request(url).post('/v1/chat/completions').set('x-portkey-config', '').set('x-portkey-virtual-key', '').send({ model: 'gpt-4o', messages });
    expect([res.status, res.headers['x-switchyard-target']]).toEqual([200, 'targets[0]']);
  });

  it('refuses an empty model name, an empty messages array and a stream flag that is no boolean before any upstream call, naming the parameter', async () => {
    const url = await start();
    const post = (body: object) => request(url).post('/v1/chat/completions').send(body);
    const noModel = await post({ model: '', messages });
    expect([noModel.status, noModel.body.error?.code, noModel.body.error?.param]).toEqual([400, 'invalid_request', 'model']);
    const noMessages = await post({ model: 'gpt-4o', messages: [] });
    expect([noMessages.status, noMessages.body.error?.code, noMessages.body.error?.param]).toEqual([400, 'invalid_request', 'messages']);
    // A stream flag that is no boolean (a string from a form-minded client) is refused too, not passed on to guess.
    const streamText = await post({ model: 'gpt-4o', messages, stream: 'true' });
    expect([streamText.status, streamText.body.error?.code, streamText.body.error?.param]).toEqual([400, 'invalid_request', 'stream']);
    // A JSON array is no request: said so, not that its model is missing.
    const array = await request(url).post('/v1/chat/completions').set('content-type', 'application/json').send(JSON.stringify([{ model: 'gpt-4o', messages }]));
    expect([array.status, array.body.error?.code, array.body.error?.message]).toEqual([400, 'invalid_request', 'The request body must be a JSON object.']);
    expect(up.openai.requests).toHaveLength(0);
  });

  it("refuses each of Portkey's routing headers by name, and ignores its other headers, which reach no provider (README: Headers)", async () => {
    const url = await start();
    for (const name of ['x-portkey-config', 'x-portkey-virtual-key', 'x-portkey-provider', 'x-portkey-custom-host', 'x-portkey-forward-headers', 'x-portkey-request-timeout']) {
      const res = await request(url).post('/v1/chat/completions').set(name, 'something').send({ model: 'gpt-4o', messages });
      expect([name, res.status, res.body.error?.code, res.body.error?.param]).toEqual([name, 400, 'invalid_request', name]);
      expect(res.body.error?.message).toMatch(new RegExp(`^${name} is Portkey's header, which Switchyard does not read`));
    }
    expect(up.openai.requests).toHaveLength(0);
    const ignored = { 'x-portkey-api-key': 'pk-portkey-key', 'x-portkey-metadata': '{"user":"u1"}', 'x-portkey-azure-resource-name': 'other', 'x-portkey-azure-deployment-id': 'other-dep' };
    const res = await sdk(url, ignored).chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
    expect([res.response.status, res.response.headers.get('x-switchyard-target')]).toEqual([200, 'targets[0]']);
    for (const name of Object.keys(ignored)) expect(up.openai.requests[0]!.headers[name]).toBeUndefined();
  });

  it("forwards no OpenAI-Organization or OpenAI-Project the client sends: the virtual key's openai_organization and openai_project say which (README: Secrets)", async () => {
    const fromClient = { 'OpenAI-Organization': 'org-client', 'OpenAI-Project': 'proj_client' };
    const bare = await start();
    await sdk(bare, fromClient).chat.completions.create({ model: 'gpt-4o', messages });
    expect([up.openai.requests[0]!.headers['openai-organization'], up.openai.requests[0]!.headers['openai-project']]).toEqual([undefined, undefined]);
    const base = seedOptions(up, logs);
    const keyed = await start({
      virtualKeys: { ...base.virtualKeys, 'openai-prod': { ...base.virtualKeys!['openai-prod']!, openai_organization: 'org-server', openai_project: 'proj_server' } as never },
    });
    await sdk(keyed, fromClient).chat.completions.create({ model: 'gpt-4o', messages });
    expect([up.openai.requests[1]!.headers['openai-organization'], up.openai.requests[1]!.headers['openai-project']]).toEqual(['org-server', 'proj_server']);
  });

  it("asks Azure with api_version 2024-10-21 when none is given, the key in its api-key header (README: Azure OpenAI)", async () => {
    const url = await start({ config: { strategy: { mode: 'single' }, targets: [{ virtual_key: 'azure-prod' }] } });
    await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
    const [sent] = up.azure.requests;
    expect([sent!.query, sent!.headers['api-key'], sent!.headers.authorization]).toEqual([{ 'api-version': '2024-10-21' }, AZURE_KEY, undefined]);
  });

  it("gives the client the serving upstream's x-request-id in place of one the app set on the response (README: Streaming)", async () => {
    const url = track(await expressAdapter.start(seedOptions(up, logs), { before: async (res) => void res.setHeader('x-request-id', 'host-request-id') }));
    up.openai.enqueue(replies.rateLimited());
    up.azure.enqueue({ headers: { 'x-request-id': 'azure-request-id' } });
    const res = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
    expect([res.response.headers.get('x-request-id'), res.request_id]).toEqual(['azure-request-id', 'azure-request-id']);
  });

  it("logs model null for a request refused before its body was read, and the model for one refused after (README: Log event)", async () => {
    const url = await start();
    const broken = await request(url).post('/v1/chat/completions').set('content-type', 'application/json').send('{"model": "gpt-4o", messages: [');
    expect(broken.status).toBe(400);
    expect(await nextLog(logs)).toMatchObject({ status: 400, model: null, servedBy: null, attempts: [] });
    // The config id is read first: a valid body under an unknown one is not read.
    const unknown = await request(url).post('/v1/chat/completions').set('x-switchyard-config', 'nope').send({ model: 'gpt-4o', messages });
    expect([unknown.status, unknown.body.error?.code]).toEqual([400, 'unknown_config']);
    expect(await nextLog(logs, 2)).toMatchObject({ status: 400, model: null, configId: 'nope' });
    const azureOnly = await start({ config: { strategy: { mode: 'single' }, targets: [{ virtual_key: 'azure-prod' }] } });
    const undeployed = await request(azureOnly).post('/v1/chat/completions').send({ model: 'o3', messages });
    expect([undeployed.status, undeployed.body.error?.code]).toEqual([400, 'model_not_deployed']);
    expect(await nextLog(logs, 3)).toMatchObject({ status: 400, model: 'o3', servedBy: null });
  });

  it("reads an empty x-switchyard-trace-id as absent: the trace id of Portkey's header, else of traceparent, is used (README: Headers)", async () => {
    const url = await start();
    const id = '4bf92f3577b34da6a3ce929d0e0e4736';
    const traced = await request(url).post('/v1/chat/completions').set('x-switchyard-trace-id', '').set('traceparent', `00-${id}-00f067aa0ba902b7-01`).send({ model: 'gpt-4o', messages });
    expect([traced.status, traced.headers['x-switchyard-trace-id']]).toEqual([200, id]);
    const portkey = await request(url).post('/v1/chat/completions').set('x-switchyard-trace-id', '').set('x-portkey-trace-id', 'portkey-trace').send({ model: 'gpt-4o', messages });
    expect([portkey.status, portkey.headers['x-switchyard-trace-id']]).toEqual([200, 'portkey-trace']);
    expect((await nextLog(logs, 2)).traceId).toBe('portkey-trace');
  });
});
