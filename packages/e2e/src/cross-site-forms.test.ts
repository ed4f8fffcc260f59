/** The cross-site form check by Origin and by a request with no content-type; a multipart form refused as a form. */
import request from 'supertest';
import type { SwitchyardOptions } from '@switchyard/core';
import { expressAdapter, koaAdapter } from './support/adapters';
import { messages, seedOptions, useUpstreams } from './support/fixture';

describe.each([expressAdapter, koaAdapter])('cross-site requests: $name', (adapter) => {
  const { up, logs, track } = useUpstreams();
  const start = async (extra: Partial<SwitchyardOptions> = {}) => track(await adapter.start(seedOptions(up, logs, extra)));

  it('refuses a page on another port of the same host, and one sent with no content-type (fetch of a Blob), by its Origin or Sec-Fetch-Site', async () => {
    const url = await start();
    const { host, hostname } = new URL(url);
    const body = new TextEncoder().encode(JSON.stringify({ model: 'gpt-4o', messages }));
    // fetch sends a Uint8Array with no content-type: what a page's no-cors fetch of a Blob sends too.
    const post = (headers: Record<string, string>) => fetch(`${url}/v1/chat/completions`, { method: 'POST', headers, body }).then((r) => r.status);
    // Another origin on the same host (another port): a page there is another site's as far as its forms go.
    expect(await post({ 'content-type': 'text/plain', origin: `http://${hostname}:1` })).toBe(415);
    // No content-type at all: a simple request too.
    expect(await post({ 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' })).toBe(415);
    expect(await post({ origin: 'https://evil.example' })).toBe(415);
    expect(up.openai.requests).toHaveLength(0);
    // The client-facing host is the first of a chain of X-Forwarded-Host values.
    expect(await post({ 'content-type': 'text/plain', origin: 'http://app.example', 'x-forwarded-host': 'app.example, internal.local' })).toBe(200);
    expect(await post({ origin: `http://${host}` })).toBe(200);
  });
  it("compares an Origin with the host a proxy names as URLs do (case, the scheme's default port), and reads Forwarded's host= parameter only", async () => {
    const url = await start();
    const body = JSON.stringify({ model: 'gpt-4o', messages });
    const post = (headers: Record<string, string>) => fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'text/plain', ...headers }, body }).then((r) => r.status);
    expect(await post({ origin: 'https://app.example', 'x-forwarded-host': 'App.Example' })).toBe(200);
    expect(await post({ origin: 'https://app.example', 'x-forwarded-host': 'app.example:443' })).toBe(200);
    expect(await post({ origin: 'https://app.example', forwarded: 'for=192.0.2.60;proto=https;host=APP.example' })).toBe(200);
    // Another port is another site; a parameter whose name only ends in "host" names no host.
    expect(await post({ origin: 'https://app.example', 'x-forwarded-host': 'app.example:8443' })).toBe(415);
    expect(await post({ origin: 'https://app.example', forwarded: 'for=192.0.2.60;xhost=app.example' })).toBe(415);
    expect(up.openai.requests).toHaveLength(3);
  });

  it('refuses a multipart/form-data body as a form (invalid_json, saying to send application/json), as an urlencoded one', async () => {
    const url = await start();
    const res = await request(url).post('/v1/chat/completions').field('model', 'gpt-4o').field('messages', JSON.stringify(messages));
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect([res.status, res.body.error?.code]).toEqual([400, 'invalid_json']);
    expect(res.body.error.message).toMatch(/sent as a form/);
    expect(up.openai.requests).toHaveLength(0);
  });
});
