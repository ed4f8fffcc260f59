/** Request intake through real HTTP: the limits on ids, model names and messages, W3C trace context, Portkey's headers. */
import request from 'supertest';
import type { SwitchyardOptions } from '@switchyard/core';
import { expressAdapter } from './support/adapters';
import { messages, nextLog, sdk, seedOptions, useUpstreams } from './support/fixture';

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
});
