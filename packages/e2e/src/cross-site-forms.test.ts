/** The cross-site form check by Origin and by a request with no content-type. */
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
});
