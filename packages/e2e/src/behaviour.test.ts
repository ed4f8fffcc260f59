/**
 * DESIGN.md "Behaviour", rule by rule, through real HTTP: the official `openai` SDK as the client, each adapter as
 * the host app, the fakes of @switchyard/testing as OpenAI and Azure OpenAI.
 */
import { request as httpRequest } from 'node:http';
import { connect, createServer } from 'node:net';
import { gzipSync } from 'node:zlib';
import OpenAI, { APIError, BadRequestError, InternalServerError, RateLimitError } from 'openai';
import request from 'supertest';
import type { SwitchyardOptions } from '@switchyard/core';
import { replies, type FakeReply } from '@switchyard/testing';
import { adapters, type HostMiddleware } from './support/adapters';
import { AZURE_KEY, CLIENT_KEY, OPENAI_KEY, messages, nextLog, sdk, seedOptions, until, useUpstreams } from './support/fixture';

/** A loopback port with nothing listening: connection refused. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Reads a streamed completion until it ends or fails: the content of each chunk received, and the error if any. */
async function readUntilError(stream: AsyncIterable<{ choices: Array<{ delta: { content?: string | null } }> }>): Promise<{ received: string[]; err: unknown }> {
  const received: string[] = [];
  try {
    for await (const chunk of stream) received.push(chunk.choices[0]?.delta.content ?? '');
    return { received, err: undefined };
  } catch (err) {
    return { received, err };
  }
}

describe.each(adapters)('behaviour: $name', (adapter) => {
  const { up, logs, track } = useUpstreams();
  const start = async (extra: Partial<SwitchyardOptions> = {}, host?: HostMiddleware) => track(await adapter.start(seedOptions(up, logs, extra), host));

  describe('fallback', () => {
    it('serves a request OpenAI refuses with 429 from Azure, for the same model, with no client change', async () => {
      const url = await start({ config: { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] } });
      up.openai.enqueue(replies.rateLimited());
      up.azure.enqueue({ headers: { 'apim-request-id': 'apim-1', 'x-ms-region': 'Sweden Central', 'set-cookie': 'affinity=1' } });
      const { data, response } = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages }).withResponse();

      expect(data.choices[0]!.message.content).toBe('Hello from azure');
      // What Azure's support asks for reaches the client; the upstream's cookies stay behind.
      expect([response.headers.get('apim-request-id'), response.headers.get('x-ms-region'), response.headers.get('set-cookie')]).toEqual(['apim-1', 'Sweden Central', null]);
      expect(response.headers.get('x-switchyard-fallback')).toBe('true');
      expect(response.headers.get('x-switchyard-target')).toBe('targets[1]');
      expect(response.headers.get('x-switchyard-attempts')).toBe('2');
      expect(up.openai.requests).toHaveLength(1);
      expect(up.azure.requests).toHaveLength(1);
      expect(up.azure.requests[0]!.deployment).toBe('gpt4o-prod');
      expect(up.azure.requests[0]!.query['api-version']).toBe('2024-10-21');

      const event = await nextLog(logs);
      expect(event).toMatchObject({
        status: 200, fallback: true, stream: false, model: 'gpt-4o', configId: null,
        servedBy: { target: 'targets[1]', provider: 'azure-openai', virtualKey: 'azure-prod', model: 'gpt4o-prod' },
        attempts: [
          { target: 'targets[0]', provider: 'openai', virtualKey: 'openai-prod', model: 'gpt-4o', status: 429 },
          { target: 'targets[1]', provider: 'azure-openai', virtualKey: 'azure-prod', model: 'gpt4o-prod', status: 200 },
        ],
        usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
      });
      expect(event.traceId).toBe(response.headers.get('x-switchyard-trace-id'));
      expect(event.durationMs).toBeGreaterThan(0);
    });

    it('returns a status that is not in on_status_codes as it is, without trying Azure', async () => {
      const url = await start({ config: { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] } });
      up.openai.enqueue({ status: 503, headers: { 'x-request-id': 'req_upstream_503' } });
      const err = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e);

      expect(err).toBeInstanceOf(InternalServerError);
      expect((err as APIError).status).toBe(503);
      expect((err as APIError).error).toMatchObject({ message: 'The server is overloaded or not ready yet.' });
      expect((err as APIError).requestID).toBe('req_upstream_503');
      expect(up.azure.requests).toHaveLength(0);
      expect((await nextLog(logs)).fallback).toBe(false);
    });

    it('without on_status_codes, falls back on any status >= 400 but not on a 2xx', async () => {
      const url = await start();
      up.openai.enqueue({ status: 400, body: { error: { message: 'bad', type: 'invalid_request_error', param: null, code: null } } });
      const first = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
      expect(first.choices[0]!.message.content).toBe('Hello from azure');

      const second = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
      expect(second.choices[0]!.message.content).toBe('Hello from openai');
      expect(up.azure.requests).toHaveLength(1);
    });

    it('falls back when the connection is reset, and when it is refused', async () => {
      const port = await closedPort();
      const url = await start({
        virtualKeys: {
          dead: { provider: 'openai', api_key: OPENAI_KEY, custom_host: `http://127.0.0.1:${port}/v1` },
          'openai-prod': { provider: 'openai', api_key: OPENAI_KEY, custom_host: up.openai.baseURL },
          'azure-prod': { provider: 'azure-openai', api_key: AZURE_KEY, custom_host: up.azure.baseURL, deployment_id: 'gpt4o-prod' },
        },
        config: { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'dead' }, { virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] },
      });
      up.openai.enqueue({ reset: true });
      const res = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages }).withResponse();

      expect(res.data.choices[0]!.message.content).toBe('Hello from azure');
      expect(res.response.headers.get('x-switchyard-target')).toBe('targets[2]');
      const event = await nextLog(logs);
      expect(event.attempts.map((a) => [a.status, a.error?.code])).toEqual([
        [null, 'upstream_unreachable'],
        [null, 'upstream_unreachable'],
        [200, undefined],
      ]);
    });

    it('falls back when an attempt exceeds request_timeout, and answers 504 when the last one does', async () => {
      // The timeout on the target that hangs only: the one that serves is not raced against it on a busy machine.
      const url = await start({
        config: { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'openai-prod', request_timeout: 150 }, { virtual_key: 'azure-prod' }] },
      });
      up.openai.enqueue({ hang: true });
      const ok = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
      expect(ok.choices[0]!.message.content).toBe('Hello from azure');
      await until(() => up.openai.requests[0]!.aborted);
      await nextLog(logs);
      logs.length = 0;

      const both = await start({
        config: { strategy: { mode: 'fallback' }, request_timeout: 150, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] },
      });
      up.openai.enqueue({ hang: true });
      up.azure.enqueue({ delayMs: 1000 });
      const err = (await sdk(both).chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)) as APIError;
      expect(err.status).toBe(504);
      // Which target's upstream failed, without its host.
      expect(err.error).toMatchObject({ type: 'timeout_error', code: 'upstream_timeout', message: 'The upstream of targets[1] (azure-openai) did not answer within 150 ms.' });
      expect((await nextLog(logs)).attempts.map((a) => a.error?.code)).toEqual(['upstream_timeout', 'upstream_timeout']);
    });

    it('when every target answers with an error, returns the last upstream response', async () => {
      const url = await start();
      up.openai.enqueue(replies.rateLimited());
      up.azure.enqueue({ status: 503, headers: { 'retry-after': '3' } });
      const res = await request(url).post('/v1/chat/completions').send({ model: 'gpt-4o', messages });

      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBe('3');
      expect(res.headers['x-switchyard-target']).toBe('targets[1]');
      expect(res.body).toEqual({ error: { code: '503', message: 'The server had an error processing your request.' } }); // Azure's own envelope, untouched
    });

    it('when the last attempt got no response, answers 502 in the OpenAI envelope', async () => {
      const url = await start();
      up.openai.enqueue(replies.rateLimited());
      up.azure.enqueue({ reset: true });
      const err = (await sdk(url).chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)) as APIError;

      expect(err.status).toBe(502);
      expect(err.error).toEqual({ message: expect.stringMatching(/^The upstream of targets\[1\] \(azure-openai\) could not be reached \(/), type: 'api_error', param: null, code: 'upstream_unreachable' });
      expect(JSON.stringify(err.error)).not.toMatch(/127\.0\.0\.1/);
    });

    it('stops at the overall deadline, retries and fallbacks included (504)', async () => {
      const url = await start({ deadlineMs: 300 });
      up.openai.enqueue({ hang: true });
      const err = (await sdk(url).chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)) as APIError;
      expect(err.status).toBe(504);
      expect(err.error).toMatchObject({ code: 'deadline_exceeded' });
      expect(up.azure.requests).toHaveLength(0);
      // The whole request's time is spent, after one attempt too: the SDK must not send it all again (it retries a 504).
      expect([err.headers?.get('x-switchyard-attempts'), err.headers?.get('x-should-retry')]).toEqual(['1', 'false']);
    });

    it('ends the deadline when the response starts: a stream may run longer than deadlineMs', async () => {
      const url = await start({ deadlineMs: 400 });
      up.openai.enqueue(replies.stream({ chunks: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'], intervalMs: 120 }));
      const stream = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages, stream: true });
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      expect(text).toBe('abcdefgh');
      expect((await nextLog(logs)).attempts[0]!.error).toBeUndefined();
    });

    it('passes request_timeout down through a nested strategy to its targets', async () => {
      const url = await start({
        config: {
          strategy: { mode: 'fallback' },
          request_timeout: 150,
          targets: [{ strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'openai-prod' }] }, { virtual_key: 'azure-prod', request_timeout: 5000 }],
        },
      });
      up.openai.enqueue({ hang: true });
      const res = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
      expect(res.choices[0]!.message.content).toBe('Hello from azure');
      expect((await nextLog(logs)).attempts.map((a) => a.error?.code ?? a.status)).toEqual(['upstream_timeout', 200]);
    });

    it("reads request_timeout 0 as not set, as Portkey does: no timeout at the top, the parent's below it", async () => {
      const url = await start({
        config: { strategy: { mode: 'fallback' }, request_timeout: 0, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] },
      });
      up.openai.enqueue({ delayMs: 300 });
      const res = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
      expect(res.choices[0]!.message.content).toBe('Hello from openai');
      expect((await nextLog(logs)).attempts.map((a) => a.error?.code ?? a.status)).toEqual([200]);

      const nested = await start({
        config: { strategy: { mode: 'fallback' }, request_timeout: 100, targets: [{ virtual_key: 'openai-prod', request_timeout: 0 }, { virtual_key: 'azure-prod' }] },
      });
      up.openai.enqueue({ hang: true });
      const fell = await sdk(nested).chat.completions.create({ model: 'gpt-4o', messages });
      expect(fell.choices[0]!.message.content).toBe('Hello from azure');
      expect((await nextLog(logs, 2)).attempts.map((a) => a.error?.code ?? a.status)).toEqual(['upstream_timeout', 200]);
    });

    it('walks nested targets: a nested fallback that fails moves the parent on', async () => {
      const url = await start({
        config: {
          strategy: { mode: 'fallback', on_status_codes: [429, 503] },
          targets: [
            { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'openai-prod', override_params: { model: 'gpt-4o-mini' } }] },
            { virtual_key: 'azure-prod' },
          ],
        },
      });
      up.openai.enqueue(replies.rateLimited(), replies.serverError(503));
      const res = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
      expect(res.data.choices[0]!.message.content).toBe('Hello from azure');
      expect(res.response.headers.get('x-switchyard-target')).toBe('targets[1]');
      expect((up.openai.requests[1]!.body as { model: string }).model).toBe('gpt-4o-mini');
      const event = await nextLog(logs);
      expect(event.attempts.map((a) => a.target)).toEqual(['targets[0].targets[0]', 'targets[0].targets[1]', 'targets[1]']);
    });

    it('single mode uses only its first target', async () => {
      const url = await start({ config: { strategy: { mode: 'single' }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] } });
      up.openai.enqueue(replies.rateLimited());
      const err = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RateLimitError);
      expect(up.azure.requests).toHaveLength(0);
    });
  });

  describe('retries', () => {
    it('retries a target before falling back, honouring retry-after-ms', async () => {
      const url = await start({
        config: {
          strategy: { mode: 'fallback' },
          targets: [{ virtual_key: 'openai-prod', retry: { attempts: 2 } }, { virtual_key: 'azure-prod' }],
        },
      });
      const limited = { status: 429, headers: { 'retry-after-ms': '20' } };
      up.openai.enqueue(limited, limited, limited);
      const res = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages }).withResponse();

      expect(res.data.choices[0]!.message.content).toBe('Hello from azure');
      expect(up.openai.requests).toHaveLength(3);
      expect(res.response.headers.get('x-switchyard-attempts')).toBe('4');
      const gaps = up.openai.requests.slice(1).map((r, i) => r.receivedAt - up.openai.requests[i]!.receivedAt);
      // The 20 ms hint, not the 0.5 s exponential backoff used without one.
      for (const gap of gaps) {
        expect(gap).toBeGreaterThanOrEqual(15);
        expect(gap).toBeLessThan(300);
      }
    });

    it('with use_retry_after_header: false, backs off by its own rule: a hint past maxRetryDelayMs does not end the retries', async () => {
      const url = await start({ config: { virtual_key: 'openai-prod', retry: { attempts: 1, use_retry_after_header: false } } });
      up.openai.enqueue({ status: 429, headers: { 'retry-after': '120' } });
      const res = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
      expect(res.choices[0]!.message.content).toBe('Hello from openai');
      expect(up.openai.requests).toHaveLength(2);
    });

    it('a retry that succeeds serves the request from the same target (no fallback)', async () => {
      const url = await start({ config: { strategy: { mode: 'fallback' }, retry: { attempts: 1 }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] } });
      up.openai.enqueue({ status: 503, headers: { 'retry-after-ms': '1' } });
      const res = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
      expect(res.data.choices[0]!.message.content).toBe('Hello from openai');
      expect(res.response.headers.get('x-switchyard-fallback')).toBe('false');
      expect((await nextLog(logs)).attempts.map((a) => a.status)).toEqual([503, 200]);
    });

    it("tells the SDK not to retry what Switchyard already retried or fell back from; one attempt stays the SDK's to retry", async () => {
      const url = await start({ config: { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] } });
      const limited = { status: 429, headers: { 'retry-after-ms': '1' } };
      up.openai.enqueue(limited);
      up.azure.enqueue(limited);
      // The SDK's default of two retries would run the whole chain three times.
      const sdkRetrying = (base: string) => new OpenAI({ apiKey: CLIENT_KEY, baseURL: `${base}/v1`, maxRetries: 2 });
      const err = (await sdkRetrying(url).chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)) as APIError;
      expect(err).toBeInstanceOf(RateLimitError);
      expect(err.headers?.get('x-should-retry')).toBe('false');
      expect([up.openai.requests.length, up.azure.requests.length]).toEqual([1, 1]);
      await nextLog(logs);

      const single = await start({ config: { virtual_key: 'openai-prod' } });
      up.openai.enqueue(limited);
      const served = await sdkRetrying(single).chat.completions.create({ model: 'gpt-4o', messages });
      expect(served.choices[0]!.message.content).toBe('Hello from openai');
      expect(up.openai.requests).toHaveLength(3);
    });

    it('does not retry an answer whose upstream says not to (x-should-retry: false, e.g. a Switchyard that ran its own chain)', async () => {
      const url = await start({ config: { virtual_key: 'openai-prod', retry: { attempts: 2 } } });
      up.openai.enqueue({ status: 503, headers: { 'x-should-retry': 'false', 'retry-after-ms': '1' } });
      const err = (await sdk(url).chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)) as APIError;
      expect([err.status, err.headers?.get('x-should-retry'), up.openai.requests.length]).toEqual([503, 'false', 1]);
      await nextLog(logs);
    });

    it('does not retry a status outside retry.on_status_codes', async () => {
      const url = await start({ config: { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'openai-prod', retry: { attempts: 3, on_status_codes: [503] } }, { virtual_key: 'azure-prod' }] } });
      up.openai.enqueue(replies.rateLimited());
      await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
      expect(up.openai.requests).toHaveLength(1);
      expect(up.azure.requests).toHaveLength(1);
    });

    it('with request_timeout, retries leave no abort listener behind on the request', async () => {
      const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
      try {
        const url = await start({
          config: { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'openai-prod', request_timeout: 5000, retry: { attempts: 10 } }, { virtual_key: 'azure-prod' }] },
        });
        const limited = { status: 429, headers: { 'retry-after-ms': '1' } };
        up.openai.enqueue(...Array.from({ length: 11 }, () => limited));
        const res = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
        expect(res.choices[0]!.message.content).toBe('Hello from azure');
        expect(up.openai.requests).toHaveLength(11);
        // One listener per attempt would pass the default limit of 10 on the request's AbortSignal.
        const names = warn.mock.calls.map(([w]) => (w instanceof Error ? w.name : String(w)));
        expect(names).not.toContain('MaxListenersExceededWarning');
      } finally {
        warn.mockRestore();
      }
    });

    it('retries a timed-out attempt only when 408 is listed (as Portkey counts a timeout)', async () => {
      const target = (codes?: number[], timeout = 100) => ({ virtual_key: 'openai-prod', request_timeout: timeout, retry: { attempts: 2, ...(codes && { on_status_codes: codes }) } });
      const url = await start({ config: { strategy: { mode: 'fallback' }, targets: [target(), { virtual_key: 'azure-prod' }] } });
      up.openai.enqueue({ hang: true });
      const moved = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
      expect(moved.choices[0]!.message.content).toBe('Hello from azure');
      expect(up.openai.requests).toHaveLength(1); // the default codes do not list 408: no second timeout to wait for
      await nextLog(logs);

      // The retry that serves must answer within the timeout too: a second, not a tenth, on a busy machine.
      const url408 = await start({ config: { strategy: { mode: 'fallback' }, targets: [target([408, 429], 1000), { virtual_key: 'azure-prod' }] } });
      up.openai.enqueue({ hang: true });
      const retried = await sdk(url408).chat.completions.create({ model: 'gpt-4o', messages });
      expect(retried.choices[0]!.message.content).toBe('Hello from openai');
      expect((await nextLog(logs, 2)).attempts.map((a) => a.status ?? a.error?.code)).toEqual(['upstream_timeout', 200]);
    });

    it('moves on at once when retry-after asks for longer than the cap', async () => {
      const url = await start({
        maxRetryDelayMs: 1000,
        config: { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'openai-prod', retry: { attempts: 3 } }, { virtual_key: 'azure-prod' }] },
      });
      up.openai.enqueue(replies.rateLimited(30));
      const startedAt = Date.now();
      await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
      expect(up.openai.requests).toHaveLength(1);
      expect(Date.now() - startedAt).toBeLessThan(1000);
    });

    it('moves on at once when the wait asked for would outlast the deadline, instead of waiting into a 504', async () => {
      const url = await start({
        deadlineMs: 1500,
        config: { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'openai-prod', retry: { attempts: 2 } }, { virtual_key: 'azure-prod' }] },
      });
      up.openai.enqueue({ status: 429, headers: { 'retry-after-ms': '3000' } });
      const res = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
      expect(res.choices[0]!.message.content).toBe('Hello from azure');
      expect(up.openai.requests).toHaveLength(1);
    });

    // Azure answers a token-rate 429 with only this header at times (openai/openai-python#937).
    it("reads Azure's x-rate-limit-reset-tokens as the wait a 429 asks for: past the cap, it moves on at once", async () => {
      const rateLimited = { status: 429, headers: { 'x-rate-limit-reset-tokens': '55' } };
      const url = await start({
        config: { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'azure-prod', retry: { attempts: 3 } }, { virtual_key: 'openai-prod' }] },
      });
      up.azure.enqueue(rateLimited);
      const res = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
      expect(res.choices[0]!.message.content).toBe('Hello from openai');
      expect(up.azure.requests).toHaveLength(1);

      // The last target's 429 reaches the client with it, as with OpenAI's x-ratelimit-* headers.
      const single = await start({ config: { strategy: { mode: 'single' }, targets: [{ virtual_key: 'azure-prod' }] } });
      up.azure.enqueue(rateLimited);
      const err = await sdk(single).chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RateLimitError);
      expect((err as RateLimitError).headers.get('x-rate-limit-reset-tokens')).toBe('55');
    });

    // express-rate-limit, koa-ratelimit and @nestjs/throttler set these three on the app's answers: an upstream's (an
    // OpenAI-compatible server behind its own limiter, another Switchyard app) would replace the app's counter.
    it("passes on OpenAI's x-ratelimit-*-requests/-tokens headers, not the bare ones a host's own limiter sets", async () => {
      const url = await start({ config: { virtual_key: 'openai-prod' } });
      const limits = { 'x-ratelimit-limit': '1000', 'x-ratelimit-remaining': '999', 'x-ratelimit-reset': '5', 'x-ratelimit-limit-requests': '5000', 'x-ratelimit-remaining-tokens': '79000' };
      up.openai.enqueue({ headers: limits });
      const { response } = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
      expect(Object.keys(limits).map((name) => response.headers.get(name))).toEqual([null, null, null, '5000', '79000']);
    });

    it("waits as Azure's x-ms-retry-after-ms asks before retrying it", async () => {
      const url = await start({ config: { strategy: { mode: 'single' }, targets: [{ virtual_key: 'azure-prod', retry: { attempts: 1 } }] } });
      up.azure.enqueue({ status: 429, headers: { 'x-ms-retry-after-ms': '900' } });
      const res = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
      expect(res.choices[0]!.message.content).toBe('Hello from azure');
      const [first, second] = up.azure.requests;
      // The retry came after the wait asked for, not after the default backoff (500 ms at most).
      expect(second!.receivedAt - first!.receivedAt).toBeGreaterThanOrEqual(880);
    });
  });

  describe('streaming', () => {
    const streamTwoTargets = { strategy: { mode: 'fallback' as const, on_status_codes: [429] }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] };

    it('streams chunk by chunk, and logs usage from the final usage chunk', async () => {
      const url = await start();
      up.openai.enqueue(replies.stream({ chunks: ['Hel', 'lo ', 'world'], intervalMs: 5 }));
      const stream = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages, stream: true, stream_options: { include_usage: true } });
      let text = '';
      let usage: unknown = null;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? '';
        if (chunk.usage) usage = chunk.usage;
      }
      expect(text).toBe('Hello world');
      expect(usage).toMatchObject({ completion_tokens: 3 });
      const event = await nextLog(logs);
      expect(event).toMatchObject({ stream: true, status: 200, fallback: false, usage: { completion_tokens: 3 } });
    });

    it('falls back before the first byte: a 429 on a stream request is served by Azure', async () => {
      const url = await start({ config: streamTwoTargets });
      up.openai.enqueue(replies.rateLimited());
      const { data: stream, response } = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages, stream: true }).withResponse();
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      expect(text).toBe('Hello from azure');
      expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
      // no-transform: a compression middleware in the host app must not buffer the stream.
      expect(response.headers.get('cache-control')).toBe('no-cache, no-transform');
      // README: nginx in front passes the stream on unbuffered (x-accel-buffering: no).
      expect(response.headers.get('x-accel-buffering')).toBe('no');
      expect(response.headers.get('x-switchyard-fallback')).toBe('true');
    });

    it.each<[string, FakeReply]>([
      ['breaks before its first byte', replies.stream({ cutAfter: 0 })],
      ['breaks in the middle of its first event', replies.stream({ cutAfter: 1, cutMidEvent: true })],
      ['sends only a keep-alive comment and ends', { headers: { 'content-type': 'text/event-stream' }, body: ': keep-alive\n\n' }],
    ])('falls back when the upstream stream %s: no event had reached the client', async (_name, reply) => {
      const url = await start();
      up.openai.enqueue(reply);
      const stream = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages, stream: true });
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      expect(text).toBe('Hello from azure');
      expect((await nextLog(logs)).attempts.map((a) => a.provider)).toEqual(['openai', 'azure-openai']);
    });

    it('after the first byte, an upstream failure ends the stream with an SSE error event', async () => {
      const url = await start();
      up.openai.enqueue(replies.stream({ chunks: 5, cutAfter: 2, intervalMs: 5 }));
      const { received, err } = await readUntilError(await sdk(url).chat.completions.create({ model: 'gpt-4o', messages, stream: true }));

      expect(received).toHaveLength(2);
      expect(err).toBeInstanceOf(APIError);
      expect((err as APIError).error).toMatchObject({ code: 'stream_interrupted', type: 'api_error' });
      expect(up.azure.requests).toHaveLength(0);
      const event = await nextLog(logs);
      expect(event.attempts[0]!.error).toEqual({ code: 'stream_interrupted', message: expect.stringContaining('failed after the response had started') });
    });

    it('a failure in the middle of an event drops that event, so the SDK reads our error event', async () => {
      const url = await start();
      up.openai.enqueue(replies.stream({ chunks: 5, cutAfter: 3, cutMidEvent: true, intervalMs: 5 }));
      const { received, err } = await readUntilError(await sdk(url).chat.completions.create({ model: 'gpt-4o', messages, stream: true }));

      expect(received).toHaveLength(2);
      expect(err).toBeInstanceOf(APIError);
      expect((err as APIError).error).toMatchObject({ code: 'stream_interrupted' });
      expect((await nextLog(logs)).attempts[0]!.error?.code).toBe('stream_interrupted');
    });

    it('a stream that ends without [DONE] was cut: the SDK gets our error event, not a clean end', async () => {
      const url = await start();
      up.openai.enqueue(replies.stream({ chunks: 3, omitDone: true }));
      const { received, err } = await readUntilError(await sdk(url).chat.completions.create({ model: 'gpt-4o', messages, stream: true }));

      expect(received).toEqual(['Hello', ' from ', 'openai', '']); // the last: the finish chunk
      expect(err).toBeInstanceOf(APIError);
      expect((err as APIError).error).toMatchObject({ code: 'stream_interrupted', message: expect.stringContaining('ENDED_WITHOUT_DONE') });
      expect((await nextLog(logs)).attempts[0]!.error?.code).toBe('stream_interrupted');
    });

    it('a connection lost after [DONE] lost nothing: the stream ends cleanly, and is logged so', async () => {
      const url = await start();
      up.openai.enqueue(replies.stream({ chunks: 3, cutAfterDone: true }));
      const { received, err } = await readUntilError(await sdk(url).chat.completions.create({ model: 'gpt-4o', messages, stream: true }));

      expect([received.join(''), received.length, err]).toEqual(['Hello from openai', 4, undefined]);
      const event = await nextLog(logs);
      expect([event.status, event.attempts[0]!.error]).toEqual([200, undefined]);
    });

    it('delivers each chunk as the upstream sends it, not at the end', async () => {
      const url = await start();
      up.openai.enqueue(replies.stream({ chunks: 6, intervalMs: 100 }));
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-4o', messages, stream: true }),
      });
      let first = NaN;
      for await (const _ of res.body!) if (Number.isNaN(first)) first = performance.now();
      // The upstream spends ~500 ms between its first and last chunk: a buffering proxy would deliver all at once.
      expect(performance.now() - first).toBeGreaterThan(300);
    });

    // That it streams (an event arrives while the upstream holds the rest) is upstream-faults.test.ts's; that memory
    // stays flat under a 50 MB stream is the benchmark's (peak RSS).
    it('passes a large stream through byte for byte, as the upstream sends it', async () => {
      const url = await start();
      const body = JSON.stringify({ model: 'gpt-4o', messages, stream: true });
      const read = async (base: string, headers: Record<string, string>) => {
        up.openai.enqueue(replies.stream({ chunks: 400, chunkBytes: 8 * 1024 }));
        const res = await fetch(`${base}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
        // The fake numbers its completions and stamps the second: the rest is compared as it came.
        return (await res.text()).replace(/"id":"chatcmpl-fake-\d+"/g, '"id":""').replace(/"created":\d+/g, '"created":0');
      };
      const direct = await read(up.openai.baseURL, { authorization: `Bearer ${OPENAI_KEY}` });
      const proxied = await read(`${url}/v1`, {});
      expect(direct.length).toBeGreaterThan(400 * 8 * 1024);
      expect(proxied === direct).toBe(true);
    });
  });

  describe('client disconnect', () => {
    it.each([
      ['a JSON request', false],
      ['a stream before its first byte', true],
    ])('aborts the upstream when the client leaves %s, and logs 499', async (_, stream) => {
      const url = await start();
      up.openai.enqueue({ hang: true });
      const controller = new AbortController();
      const pending = sdk(url).chat.completions.create({ model: 'gpt-4o', messages, stream }, { signal: controller.signal }).catch((e: unknown) => e);
      await until(() => up.openai.requests.length === 1);
      controller.abort();
      expect(await pending).toBeInstanceOf(Error);

      await until(() => up.openai.requests[0]!.aborted);
      expect((await nextLog(logs)).status).toBe(499);
      expect(up.azure.requests).toHaveLength(0);
    });

    it.each([
      ['a JSON request', false],
      ['a stream', true],
    ])('makes no upstream call for %s whose client left while host middleware in front ran, and logs 499', async (_, stream) => {
      let entered = false;
      let closed = false;
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const url = await start({}, {
        before: async (res) => {
          entered = true;
          res.once('close', () => (closed = true));
          await gate; // e.g. a session lookup; the client leaves meanwhile
        },
      });
      const controller = new AbortController();
      const pending = sdk(url).chat.completions.create({ model: 'gpt-4o', messages, stream }, { signal: controller.signal }).catch((e: unknown) => e);
      await until(() => entered);
      controller.abort();
      expect(await pending).toBeInstanceOf(Error);
      await until(() => closed);
      release();

      expect(await nextLog(logs)).toMatchObject({ status: 499, attempts: [] });
      expect(up.openai.requests).toHaveLength(0);
      expect(up.azure.requests).toHaveLength(0);
    });

    it("stops the upstream call when the host answers first (a timeout middleware's 503)", async () => {
      const url = await start({}, {
        before: async (res) => {
          setTimeout(() => {
            if (!res.headersSent) res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":{"message":"timeout"}}');
          }, 150);
        },
      });
      up.openai.enqueue({ hang: true });
      const res = await request(url).post('/v1/chat/completions').send({ model: 'gpt-4o', messages });
      expect(res.status).toBe(503);
      await until(() => up.openai.requests[0]?.aborted === true);
      // Logged as what the client got, the host's 503, with why the attempt stopped.
      expect(await nextLog(logs)).toMatchObject({ status: 503, attempts: [{ status: null, error: { code: 'host_answered' } }] });
      expect(up.azure.requests).toHaveLength(0);
    });

    it('stops the upstream stream when the host ends the response mid-stream (its own response timeout)', async () => {
      const url = await start({}, {
        before: async (res) => {
          setTimeout(() => res.writableEnded || res.end(), 300);
        },
      });
      up.openai.enqueue(replies.stream({ chunks: 200, intervalMs: 20 }));
      const stream = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages, stream: true });
      let chunks = 0;
      for await (const _ of stream) chunks++;
      expect(chunks).toBeGreaterThan(0);
      expect(chunks).toBeLessThan(100);
      await until(() => up.openai.requests[0]?.aborted === true);
      // What the client got (a 200 cut short), with why the attempt stopped.
      expect(await nextLog(logs)).toMatchObject({ status: 200, attempts: [{ status: 200, error: { code: 'host_answered' } }] });
    });

    it('survives a host that already sent headers: ends that response, logs it as undelivered, serves the next', async () => {
      let once = true;
      const url = await start({}, {
        before: async (res) => {
          if (!once) return;
          once = false;
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.flushHeaders();
        },
      });
      const first = await request(url).post('/v1/chat/completions').send({ model: 'gpt-4o', messages });
      expect([first.status, first.text]).toEqual([200, '']);
      expect((await nextLog(logs)).status).toBe(499);
      const next = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
      expect(next.choices[0]!.message.content).toBe('Hello from openai');
    });

    it('aborts both upstream streams and logs both as 499 when a client that pipelined two requests leaves', async () => {
      const url = await start();
      up.openai.enqueue(replies.stream({ chunks: 200, intervalMs: 20 }), replies.stream({ chunks: 200, intervalMs: 20 }));
      // HTTP/1.1 pipelining: the second response waits in Node's queue until the first is done.
      const body = JSON.stringify({ model: 'gpt-4o', messages, stream: true });
      const post = `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
      const socket = connect(Number(new URL(url).port), '127.0.0.1');
      socket.on('error', () => undefined).resume();
      try {
        socket.write(post + post);
        await until(() => up.openai.requests.length === 2);
      } finally {
        socket.destroy();
      }
      await until(() => up.openai.requests.every((r) => r.aborted));
      const [first, second] = [await nextLog(logs), await nextLog(logs, 2)];
      expect([first.status, second.status]).toEqual([499, 499]);
    });

    it('logs as 499 a pipelined stream that ended upstream but never left its queue behind a hanging response, when the client leaves', async () => {
      const url = await start();
      up.openai.enqueue({ hang: true }, replies.stream({ chunks: 3 }));
      const json = JSON.stringify({ model: 'gpt-4o', messages });
      const stream = JSON.stringify({ model: 'gpt-4o', messages, stream: true, stream_options: { include_usage: true } });
      const post = (body: string) => `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
      const socket = connect(Number(new URL(url).port), '127.0.0.1');
      let received = 0;
      socket.on('error', () => undefined).on('data', (d: Buffer) => (received += d.length));
      try {
        socket.write(post(json) + post(stream));
        await until(() => up.openai.requests.length === 2);
        // The whole stream, [DONE] included, is written into the second response, which Node holds queued.
        await new Promise((resolve) => setTimeout(resolve, 200));
      } finally {
        socket.destroy();
      }
      const events = [await nextLog(logs), await nextLog(logs, 2)];
      expect(received).toBe(0);
      expect(events.map((e) => [e.stream, e.status])).toEqual([
        [true, 499],
        [false, 499],
      ]);
    });

    it('aborts the upstream stream when the client leaves mid-stream', async () => {
      const url = await start();
      up.openai.enqueue(replies.stream({ chunks: 50, intervalMs: 20 }));
      const controller = new AbortController();
      const stream = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages, stream: true }, { signal: controller.signal });
      let n = 0;
      await (async () => {
        for await (const _ of stream) if (++n === 2) controller.abort();
      })().catch(() => undefined);
      await until(() => up.openai.requests[0]!.aborted);
      const left = await nextLog(logs);
      // The stream was cut where the client left: its attempt did not complete (not a successful call, nor its latency).
      expect([left.status, left.attempts.map((a) => [a.status, a.error?.code])]).toEqual([499, [[200, 'client_closed']]]);
    });
  });

  it('keeps provider connections alive: requests in a row share one upstream connection', async () => {
    const url = await start();
    for (let i = 0; i < 5; i++) await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
    expect(up.openai.requests).toHaveLength(5);
    expect(new Set(up.openai.requests.map((r) => r.remotePort)).size).toBe(1);
  });

  it('reads a JSON body sent as text/plain, which the host parser in front leaves unread', async () => {
    const url = await start();
    const res = await request(url).post('/v1/chat/completions').set('content-type', 'text/plain').send(JSON.stringify({ model: 'gpt-4o', messages }));
    expect(res.status).toBe(200);
    expect(res.body.object).toBe('chat.completion');
    expect(up.openai.requests).toHaveLength(1);
  });

  it('refuses a JSON body sent without a CORS preflight by a page of another site (an HTML form\'s text/plain), with 415', async () => {
    const url = await start();
    const body = JSON.stringify({ model: 'gpt-4o', messages });
    const post = (headers: Record<string, string>) => request(url).post('/v1/chat/completions').set(headers).send(body);
    const forged = await post({ 'content-type': 'text/plain', 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' });
    expect([forged.status, forged.body.error?.code]).toEqual([415, 'unsupported_media_type']);
    // Without Sec-Fetch-Site (an older browser), by its Origin.
    expect((await post({ 'content-type': 'text/plain', origin: 'https://evil.example' })).status).toBe(415);
    // A sibling subdomain's page is same-site, not same-origin: its form carries the user's cookies too.
    expect((await post({ 'content-type': 'text/plain', 'sec-fetch-site': 'same-site', origin: 'https://other.example.com' })).status).toBe(415);
    expect(up.openai.requests).toHaveLength(0);
    // The same page's own fetch, a preflighted cross-site JSON request (CORS is the host's to allow), or no browser at all.
    const host = new URL(url).host;
    expect((await post({ 'content-type': 'text/plain', 'sec-fetch-site': 'same-origin', origin: `http://${host}` })).status).toBe(200);
    expect((await post({ 'content-type': 'text/plain', origin: `http://${host}` })).status).toBe(200);
    // Behind a proxy that rewrote Host, as it says in X-Forwarded-Host or Forwarded; the Host in capitals.
    expect((await post({ 'content-type': 'text/plain', origin: 'http://app.example', 'x-forwarded-host': 'app.example' })).status).toBe(200);
    expect((await post({ 'content-type': 'text/plain', origin: 'http://app.example', forwarded: 'for=1.2.3.4;host=app.example;proto=http' })).status).toBe(200);
    expect((await post({ 'content-type': 'text/plain', origin: `http://localhost:${new URL(url).port}`, host: `LOCALHOST:${new URL(url).port}` })).status).toBe(200);
    expect((await post({ 'content-type': 'text/plain', origin: 'null' })).status).toBe(415);
    expect((await post({ 'content-type': 'application/json', 'sec-fetch-site': 'cross-site', origin: 'https://app.example' })).status).toBe(200);
    expect(up.openai.requests).toHaveLength(6);
  });

  it('ignores a UTF-8 byte order mark before the JSON, as express.json() does, and sends the JSON without it', async () => {
    const url = await start();
    const json = JSON.stringify({ model: 'gpt-4o', messages });
    const res = await request(url).post('/v1/chat/completions').set('content-type', 'application/json').send(`\ufeff${json}`);
    expect([res.status, res.body.error]).toEqual([200, undefined]);
    expect(up.openai.requests[0]!.rawBody.charCodeAt(0)).toBe('{'.charCodeAt(0));
  });

  describe('bad input gets an OpenAI-style 4xx and causes no upstream call', () => {
    /** Name, request, status, code and, where it matters, what the message must say. */
    type Case = [string, (r: request.Test) => request.Test, number, string, RegExp?];
    const invalidJson: Case = ['invalid JSON', (r) => r.set('content-type', 'application/json').send('{"model": "gpt-4o", messages: ['), 400, 'invalid_json'];
    // The same answer whether the raw form reaches Switchyard or a form parser in front (Nest's, @koa/bodyparser) read it.
    const form: Case = ['a form-encoded body', (r) => r.type('form').send({ model: 'gpt-4o', messages: 'hi' }), 400, 'invalid_json', /sent as a form/];
    // curl -d without a content-type: refused alike with or without a parser in front, saying what to send.
    const jsonAsForm: Case = ['JSON labelled as a form', (r) => r.type('form').send(JSON.stringify({ model: 'gpt-4o', messages })), 400, 'invalid_json', /content-type: application\/json/];
    // JSON that is no object: the same code and words whether Switchyard reads it or express.json()'s strict mode refused it.
    const notObjects: Case[] = ['"hi"', '42', 'null'].map((json) => [`the JSON ${json}, no object`, (r) => r.set('content-type', 'application/json').send(json), 400, 'invalid_request', /must be a JSON object/]);
    const portkeyConfigHeader = JSON.stringify({ provider: 'azure-openai', api_key: '0123456789abcdef0123456789abcdef', resource_name: 'r' });
    const portkeyLongConfig = JSON.stringify({
      strategy: { mode: 'fallback', on_status_codes: [429] },
      targets: [{ provider: 'openai', api_key: 'sk-proj-0123456789abcdef0123456789abcdef', openai_project: 'proj_0123456789' }, JSON.parse(portkeyConfigHeader)],
    });
    const cases: Case[] = [
      // express.json()'s refusal reaches Switchyard through next(err); @koa/bodyparser's and Nest's never do.
      ...(adapter.hostAnswersParserErrors ? [] : [invalidJson, ...notObjects]),
      ...(adapter.hostRefusesForms ? [] : [form, jsonAsForm]),
      ['no messages', (r) => r.send({ model: 'gpt-4o' }), 400, 'invalid_request'],
      ['no model', (r) => r.send({ messages }), 400, 'invalid_request'],
      // It would be kept whole in log events (and the metrics' labels) otherwise.
      ['a model name over 256 characters', (r) => r.send({ model: 'm'.repeat(257), messages }), 400, 'invalid_request'],
      // Refused as empty, also behind a JSON parser that makes it {} (not as a request without a model).
      ...(adapter.hostRefusesEmptyJson ? [] : [['empty body', (r) => r.set('content-type', 'application/json'), 400, 'invalid_request', /has no body/] as Case]),
      ['unknown config id', (r) => r.set('x-switchyard-config', 'nope').send({ model: 'gpt-4o', messages }), 400, 'unknown_config'],
      ['a config id over 256 characters', (r) => r.set('x-switchyard-config', 'c'.repeat(257)).send({ model: 'gpt-4o', messages }), 400, 'invalid_request'],
      // Portkey's header also takes a whole config: its key is neither quoted back nor logged.
      ['a Portkey JSON config in x-switchyard-config', (r) => r.set('x-switchyard-config', portkeyConfigHeader).send({ model: 'gpt-4o', messages }), 400, 'unknown_config', /Portkey's JSON form\) is not accepted/],
      // A real one is longer than an id may be: still told why, not only that it is too long.
      ['a Portkey JSON config over 256 characters', (r) => r.set('x-switchyard-config', portkeyLongConfig).send({ model: 'gpt-4o', messages }), 400, 'unknown_config', /Portkey's JSON form\) is not accepted/],
      ['an API key in x-switchyard-config', (r) => r.set('x-switchyard-config', 'sk-proj-abcdef0123456789').send({ model: 'gpt-4o', messages }), 400, 'unknown_config', /^Unknown routing config "sk-\.\.\.6789" in x-switchyard-config\.$/],
      // A client moved over from Portkey: routing it asks for in Portkey's headers is refused, not silently replaced by the default config.
      ['a Portkey routing header (x-portkey-config)', (r) => r.set('x-portkey-config', 'azure-only').send({ model: 'gpt-4o', messages }), 400, 'invalid_request', /^x-portkey-config is Portkey's header, which Switchyard does not read/],
      ['a Portkey routing header (x-portkey-virtual-key)', (r) => r.set('x-portkey-virtual-key', 'azure-prod').send({ model: 'gpt-4o', messages }), 400, 'invalid_request', /in x-switchyard-config, or leave it out for the default config\.$/],
    ];
    it.each(cases)('%s', async (_name, build, status, code, message = /./) => {
      const url = await start();
      const res = await build(request(url).post('/v1/chat/completions'));
      expect(res.status).toBe(status);
      expect(Object.keys(res.body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
      expect(res.body.error).toMatchObject({ message: expect.stringMatching(message), type: 'invalid_request_error', code });
      expect(up.openai.requests).toHaveLength(0);
      expect(up.azure.requests).toHaveLength(0);
      const log = await nextLog(logs);
      expect(log.status).toBe(status);
      // An unknown config's 400 is found under the id the client sent; an overlong one, or one that may hold a key, is not kept.
      expect(log.configId).toBe(_name === 'unknown config id' ? 'nope' : null);
      expect(JSON.stringify([res.body, log])).not.toMatch(/0123456789abcdef/);
    });

    if (adapter.hostAnswersParserErrors) {
      it('invalid JSON (on Fastify, an empty JSON body too) is refused by the host parser in front, with a 4xx and no upstream call', async () => {
        const url = await start();
        const res = await request(url).post('/v1/chat/completions').set('content-type', 'application/json').send('{"model": "gpt-4o", messages: [');
        expect(res.status).toBe(400);
        if (adapter.hostRefusesEmptyJson) expect((await request(url).post('/v1/chat/completions').set('content-type', 'application/json')).status).toBe(400);
        expect(up.openai.requests).toHaveLength(0);
        expect(up.azure.requests).toHaveLength(0);
      });
    }

    if (!adapter.hostCannotInflate) {
      it('a gzip-compressed body is inflated (as express.json() does) and forwarded as JSON', async () => {
        const url = await start();
        const json = JSON.stringify({ model: 'gpt-4o', messages });
        // fetch, not supertest: superagent would encode a Buffer body as JSON itself.
        const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gzipSync(json) });
        expect(res.status).toBe(200);
        expect(up.openai.requests[0]!.body).toEqual(JSON.parse(json));
      });
    }

    if (!adapter.hostParsesJson) {
      // With a parser in front, these are its refusals (tested with express.json() in the Express package).
      it.each([
        ['a charset other than UTF-8', { 'content-encoding': 'identity', 'content-type': 'application/json; charset=latin1' }, JSON.stringify({ model: 'gpt-4o', messages }), 415, 'unsupported_media_type'],
        ['an unknown content-encoding', { 'content-encoding': 'compress', 'content-type': 'application/json' }, JSON.stringify({ model: 'gpt-4o', messages }), 415, 'unsupported_media_type'],
        ['a body that is not the gzip it claims', { 'content-encoding': 'gzip', 'content-type': 'application/json' }, JSON.stringify({ model: 'gpt-4o', messages }), 400, 'invalid_request'],
        ['a body that is not the brotli it claims', { 'content-encoding': 'br', 'content-type': 'application/json' }, JSON.stringify({ model: 'gpt-4o', messages }), 400, 'invalid_request'],
        ['a gzip body inflating past maxBodyBytes', { 'content-encoding': 'gzip', 'content-type': 'application/json' }, gzipSync(JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x'.repeat(100_000) }] })), 413, 'body_too_large'],
      ])('%s gets an OpenAI-style 4xx, no upstream call', async (_what, headers, body, status, code) => {
        const url = await start({ maxBodyBytes: 50_000 });
        const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers, body });
        expect([res.status, ((await res.json()) as { error?: { code?: string } }).error?.code]).toEqual([status, code]);
        expect(up.openai.requests).toHaveLength(0);
        expect((await nextLog(logs)).status).toBe(status);
      });

      it('reads a body whose charset is UTF-8 by any of its names (utf8, UTF-8)', async () => {
        const url = await start();
        for (const charset of ['utf8', 'UTF-8']) {
          const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': `application/json; charset=${charset}` }, body: JSON.stringify({ model: 'gpt-4o', messages }) });
          expect(res.status).toBe(200);
        }
        expect(up.openai.requests).toHaveLength(2);
      });

      it('a body that is not the gzip it claims, still arriving when zlib gives up, gets 400 and a closed connection', async () => {
        const url = new URL(await start());
        const res = await new Promise<{ status: number; code?: string; connection?: string }>((resolve, reject) => {
          // The rest of the body only long after the answer is due (not a gap a busy machine could outlast).
          let rest: NodeJS.Timeout | undefined;
          const req = httpRequest({ host: url.hostname, port: url.port, method: 'POST', path: '/v1/chat/completions', headers: { 'content-encoding': 'gzip', 'content-type': 'application/json' } }, (r) => {
            let text = '';
            r.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => {
              clearTimeout(rest);
              req.destroy();
              resolve({ status: r.statusCode!, code: (JSON.parse(text) as { error?: { code?: string } }).error?.code, connection: r.headers.connection });
            });
          });
          req.on('error', reject);
          req.write('this is not gzip'); // zlib refuses these bytes while the rest of the body has not come
          rest = setTimeout(() => req.end('{"model": "gpt-4o"}'), 5_000);
        });
        expect(res).toEqual({ status: 400, code: 'invalid_request', connection: 'close' });
        expect(up.openai.requests).toHaveLength(0);
      });
    }

    it('an oversized body gets 413', async () => {
      const url = await start({ maxBodyBytes: 1024 });
      const res = await request(url).post('/v1/chat/completions').send({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x'.repeat(5000) }] });
      expect(res.status).toBe(413);
      expect(res.body.error).toMatchObject({ code: 'body_too_large', type: 'invalid_request_error' });
      expect(up.openai.requests).toHaveLength(0);
      // Refused with an unusable trace id too: it carries its trace context's, as any refusal.
      const id = '4bf92f3577b34da6a3ce929d0e0e4736';
      const traced = await request(url).post('/v1/chat/completions').set('x-switchyard-trace-id', 'x'.repeat(257)).set('traceparent', `00-${id}-00f067aa0ba902b7-01`).send({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x'.repeat(5000) }] });
      expect([traced.status, traced.headers['x-switchyard-trace-id']]).toEqual([413, id]);
    });

    it('accepts a body of exactly maxBodyBytes, and refuses one byte more with 413', async () => {
      const url = await start({ maxBodyBytes: 1024 });
      const sized = (bytes: number) => {
        const empty = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: '' }] });
        return JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x'.repeat(bytes - empty.length) }] });
      };
      expect(Buffer.byteLength(sized(1024))).toBe(1024);
      const exact = await request(url).post('/v1/chat/completions').set('content-type', 'application/json').send(sized(1024));
      expect(exact.status).toBe(200);
      const over = await request(url).post('/v1/chat/completions').set('content-type', 'application/json').send(sized(1025));
      expect([over.status, over.body.error?.code]).toEqual([413, 'body_too_large']);
      expect(up.openai.requests).toHaveLength(1);
    });

    it("holds the client's body to the limit, not what a fallback target's override_params add to it", async () => {
      const url = await start({
        maxBodyBytes: 1024,
        config: { strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod', override_params: { max_tokens: 256, temperature: 0.2 } }] },
      });
      const body = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: '' }] });
      const content = 'x'.repeat(1024 - body.length - 4); // 4 bytes under the limit
      up.openai.enqueue(replies.rateLimited());
      const res = await request(url).post('/v1/chat/completions').set('content-type', 'application/json').send(JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content }] }));
      expect([res.status, res.body.choices?.[0]?.message.content]).toEqual([200, 'Hello from azure']);
      expect((up.azure.requests[0]!.body as { max_tokens: number }).max_tokens).toBe(256);
    });
  });

  describe('headers, configs and secrets', () => {
    it("passes on the upstream's retry hints and processing headers with its answer", async () => {
      const url = await start({ config: { virtual_key: 'openai-prod' } });
      const sent = { 'retry-after-ms': '1500', 'x-ms-retry-after-ms': '1400', 'openai-processing-ms': '37', 'openai-version': '2020-10-01' };
      up.openai.enqueue({ status: 429, headers: sent });
      const err = (await sdk(url).chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e)) as APIError;
      expect(err.status).toBe(429);
      expect(Object.keys(sent).map((name) => err.headers?.get(name))).toEqual(Object.values(sent));
    });

    it('echoes x-switchyard-trace-id, takes the trace id from traceparent, or generates one', async () => {
      const url = await start();
      const given = await sdk(url, { 'x-switchyard-trace-id': 'my-trace-id' }).chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
      expect(given.response.headers.get('x-switchyard-trace-id')).toBe('my-trace-id');
      expect((await nextLog(logs, 1)).traceId).toBe('my-trace-id');

      // Portkey's trace header, from a client moved over from Portkey; Switchyard's own wins over it.
      const portkey = await sdk(url, { 'x-portkey-trace-id': 'portkey-trace' }).chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
      expect(portkey.response.headers.get('x-switchyard-trace-id')).toBe('portkey-trace');
      const both = await sdk(url, { 'x-portkey-trace-id': 'portkey-trace', 'x-switchyard-trace-id': 'own' }).chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
      expect(both.response.headers.get('x-switchyard-trace-id')).toBe('own');

      const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
      const w3c = await sdk(url, { traceparent }).chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
      expect(w3c.response.headers.get('x-switchyard-trace-id')).toBe('4bf92f3577b34da6a3ce929d0e0e4736');

      const generated = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
      expect(generated.response.headers.get('x-switchyard-trace-id')).toMatch(/^[\da-f]{32}$/);

      // What W3C Trace Context rules out is ignored, as the spec says: a fresh id, not the header's.
      const id = '4bf92f3577b34da6a3ce929d0e0e4736';
      for (const invalid of [`ff-${id}-00f067aa0ba902b7-01`, `00-${id}-0000000000000000-01`, `00-${id}-00f067aa0ba902b7-01-extra`]) {
        const res = await sdk(url, { traceparent: invalid }).chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
        expect(res.response.headers.get('x-switchyard-trace-id')).not.toBe(id);
      }
      // A later version may carry more fields.
      const v1 = await sdk(url, { traceparent: `01-${id}-00f067aa0ba902b7-01-more` }).chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
      expect(v1.response.headers.get('x-switchyard-trace-id')).toBe(id);
    });

    it('refuses a trace id longer than 256 characters before any upstream call', async () => {
      const url = await start();
      const res = await request(url).post('/v1/chat/completions').set('x-switchyard-trace-id', 'x'.repeat(257)).send({ model: 'gpt-4o', messages });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'invalid_request', param: 'x-switchyard-trace-id' });
      expect(up.openai.requests).toHaveLength(0);
      // Not echoed, but not lost: a fresh trace id names the refusal in its header and its log event.
      expect(res.headers['x-switchyard-trace-id']).toMatch(/^[\da-f]{32}$/);
      expect((await nextLog(logs)).traceId).toBe(res.headers['x-switchyard-trace-id']);
      // With a W3C trace context, the refusal carries its trace id: the 400's log event leads to the caller's trace.
      const id = '4bf92f3577b34da6a3ce929d0e0e4736';
      const traced = await request(url).post('/v1/chat/completions').set('x-switchyard-trace-id', 'x'.repeat(257)).set('traceparent', `00-${id}-00f067aa0ba902b7-01`).send({ model: 'gpt-4o', messages });
      expect([traced.status, traced.headers['x-switchyard-trace-id'], (await nextLog(logs, 2)).traceId]).toEqual([400, id, id]);
    });

    it('loadbalance sends each request to one target picked by weight', async () => {
      const url = await start({ config: { strategy: { mode: 'loadbalance' }, targets: [{ virtual_key: 'openai-prod', weight: 0 }, { virtual_key: 'azure-prod', weight: 1 }] } });
      for (let i = 0; i < 3; i++) await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
      expect(up.openai.requests).toHaveLength(0);
      expect(up.azure.requests).toHaveLength(3);
    });

    it('x-switchyard-config picks a named routing config', async () => {
      const url = await start({ configs: { 'azure-only': { strategy: { mode: 'single' }, targets: [{ virtual_key: 'azure-prod' }] } } });
      const res = await sdk(url, { 'x-switchyard-config': 'azure-only' }).chat.completions.create({ model: 'gpt-4o', messages });
      expect(res.choices[0]!.message.content).toBe('Hello from azure');
      expect(up.openai.requests).toHaveLength(0);
      expect((await nextLog(logs)).configId).toBe('azure-only');
      // An empty header (an unset variable in the client) names no config: the default one serves.
      const unset = await sdk(url, { 'x-switchyard-config': '' }).chat.completions.create({ model: 'gpt-4o', messages });
      expect(unset.choices[0]!.message.content).toBe('Hello from openai');
      expect((await nextLog(logs, 2)).configId).toBeNull();
    });

    it('sends each provider only its own key, never the client\'s, and leaks no key anywhere', async () => {
      const url = await start({ config: { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] } });
      up.openai.enqueue(replies.rateLimited());
      const res = await request(url)
        .post('/v1/chat/completions')
        .set('authorization', `Bearer ${CLIENT_KEY}`)
        .set('api-key', 'client-azure-key')
        .set('host', 'evil.example')
        .send({ model: 'gpt-4o', messages });
      expect(res.status).toBe(200);

      const [toOpenAI] = up.openai.requests;
      const [toAzure] = up.azure.requests;
      expect(toOpenAI!.headers.authorization).toBe(`Bearer ${OPENAI_KEY}`);
      expect(toOpenAI!.headers['api-key']).toBeUndefined();
      expect(toAzure!.headers['api-key']).toBe(AZURE_KEY);
      expect(toAzure!.headers.authorization).toBeUndefined();
      const everything = JSON.stringify([res.headers, res.body, await nextLog(logs)]);
      for (const secret of [OPENAI_KEY, AZURE_KEY, CLIENT_KEY]) expect(everything).not.toContain(secret);
    });

    it('merges override_params parent then child (child wins) and forwards the body untouched otherwise', async () => {
      const url = await start({
        config: {
          strategy: { mode: 'fallback' },
          override_params: { temperature: 0.1, max_tokens: 50 },
          targets: [{ virtual_key: 'openai-prod', override_params: { temperature: 0.9 } }, { virtual_key: 'azure-prod' }],
        },
      });
      up.openai.enqueue(replies.rateLimited());
      await sdk(url).chat.completions.create({ model: 'gpt-4o', messages, temperature: 0.5 });
      expect(up.openai.requests[0]!.body).toMatchObject({ temperature: 0.9, max_tokens: 50 });
      expect(up.azure.requests[0]!.body).toMatchObject({ temperature: 0.1, max_tokens: 50 });

      const plain = await start();
      const raw = '{"model":"gpt-4o",  "messages":[{"role":"user","content":"hi"}]}';
      expect((await request(plain).post('/v1/chat/completions').set('content-type', 'application/json').send(raw)).status).toBe(200);
      // A host parser already decoded the body: it is encoded once, unchanged in content; otherwise the bytes pass as sent.
      if (adapter.hostParsesJson) expect(up.openai.requests[1]!.body).toEqual(JSON.parse(raw));
      else expect(up.openai.requests[1]!.rawBody).toBe(raw);

      // An override changes the members it sets and nothing else: a 64-bit seed, 1e400 and -0 go as the client wrote
      // them (a host parser that decoded them first has already rounded them).
      const exact = '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"seed":9007199254740993,"top_p":1e400,"presence_penalty":-0}';
      expect((await request(url).post('/v1/chat/completions').set('content-type', 'application/json').send(exact)).status).toBe(200);
      if (!adapter.hostParsesJson) {
        expect(up.openai.requests[2]!.rawBody).toBe(
          '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"seed":9007199254740993,"top_p":1e400,"presence_penalty":-0,"temperature":0.9,"max_tokens":50}',
        );
      }
    });

    it('refuses a body nested too deeply to encode again as the client\'s error (400), not as an upstream failure to fall back from', async () => {
      const url = await start({
        config: { strategy: { mode: 'fallback' }, override_params: { temperature: 0.1 }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] },
      });
      const depth = 10_000;
      const body = `{"model":"gpt-4o","messages":[{"role":"user","content":"hi","x":${'['.repeat(depth)}${']'.repeat(depth)}}]}`;
      const res = await request(url).post('/v1/chat/completions').set('content-type', 'application/json').send(body);
      if (!adapter.hostParsesJson) {
        // The bytes as read are merged as text, never encoded again: the body goes as it does without an override.
        expect(res.status).toBe(200);
        expect(up.openai.requests[0]!.rawBody).toBe(`${body.slice(0, -1)},"temperature":0.1}`);
        return;
      }
      expect([res.status, res.body.error?.code]).toEqual([400, 'invalid_request']);
      expect(up.openai.requests.length + up.azure.requests.length).toBe(0);
      expect(await nextLog(logs)).toMatchObject({ status: 400, attempts: [] });
    });

    it('maps the model to its Azure deployment; a model with no deployment is a clear error', async () => {
      const url = await start({ config: { strategy: { mode: 'single' }, targets: [{ virtual_key: 'azure-prod' }] } });
      await sdk(url).chat.completions.create({ model: 'gpt-4o-mini', messages });
      expect(up.azure.requests[0]!.deployment).toBe('gpt4o-mini-prod');

      const err = (await sdk(url).chat.completions.create({ model: 'o3', messages }).catch((e: unknown) => e)) as APIError;
      expect(err).toBeInstanceOf(BadRequestError);
      expect(err.error).toMatchObject({ code: 'model_not_deployed', param: 'model', message: expect.stringContaining('"o3"') });
      expect(up.azure.requests).toHaveLength(1);
    });

    it("OpenAI's 429 reaches the client when the Azure fallback has no deployment for the model", async () => {
      const url = await start({ config: { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] } });
      up.openai.enqueue(replies.rateLimited(7));
      const err = (await sdk(url).chat.completions.create({ model: 'o3', messages }).catch((e: unknown) => e)) as APIError;
      expect(err.status).toBe(429);
      expect(err.headers?.get('retry-after')).toBe('7');
      expect(err.headers?.get('x-switchyard-attempts')).toBe('1'); // only OpenAI was called
      expect(up.azure.requests).toHaveLength(0);
      const event = await nextLog(logs);
      expect(event.attempts.map((a) => a.status ?? a.error?.code)).toEqual([429, 'model_not_deployed']);
    });

    it('a connection failure is not hidden by a fallback that has no deployment for the model: 502, not 400', async () => {
      const url = await start({ config: { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] } });
      up.openai.enqueue({ reset: true });
      const err = (await sdk(url).chat.completions.create({ model: 'o3', messages }).catch((e: unknown) => e)) as APIError;
      expect(err.status).toBe(502);
      expect(err.error).toMatchObject({ code: 'upstream_unreachable' });
      expect(up.azure.requests).toHaveLength(0);
      const event = await nextLog(logs);
      expect(event.attempts.map((a) => a.error?.code)).toEqual(['upstream_unreachable', 'model_not_deployed']);
    });

    it("speaks Azure's v1 API form, with the deployment as the body's model", async () => {
      const url = await start({
        virtualKeys: {
          'azure-v1': { provider: 'azure-openai', api_key: AZURE_KEY, custom_host: up.azure.baseURL, api_version: 'v1', deployments: { 'gpt-4o': 'gpt4o-prod' } },
        },
        config: { strategy: { mode: 'single' }, targets: [{ virtual_key: 'azure-v1' }] },
      });
      await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
      expect(up.azure.requests[0]!.path).toBe('/openai/v1/chat/completions');
      expect((up.azure.requests[0]!.body as { model: string }).model).toBe('gpt4o-prod');
    });

    it('accepts inline provider targets without virtual keys', async () => {
      const url = await start({
        virtualKeys: {},
        config: {
          strategy: { mode: 'fallback', on_status_codes: [429] },
          targets: [
            { provider: 'openai', api_key: OPENAI_KEY, custom_host: up.openai.baseURL },
            { provider: 'azure-openai', api_key: AZURE_KEY, custom_host: up.azure.baseURL, deployment_id: 'gpt4o-prod' },
          ],
        },
      });
      up.openai.enqueue(replies.rateLimited());
      const res = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
      expect(res.choices[0]!.message.content).toBe('Hello from azure');
      const event = await nextLog(logs);
      expect(event.servedBy).toEqual({ target: 'targets[1]', provider: 'azure-openai', model: 'gpt4o-prod' });
    });

    it('serves the chat route with a trailing slash or a query string', async () => {
      const url = await start();
      for (const path of ['/v1/chat/completions/', '/v1/chat/completions?x=1']) {
        const res = await request(url).post(path).send({ model: 'gpt-4o', messages });
        expect(res.status).toBe(200);
        expect(res.body.choices[0].message.content).toBe('Hello from openai');
      }
      expect(up.openai.requests).toHaveLength(2);
    });

    it('leaves every other route to the host app', async () => {
      const url = await start();
      expect((await request(url).get('/health')).body).toEqual({ ok: true });
      expect((await request(url).get('/v1/chat/completions')).status).toBe(404);
      expect((await request(url).post('/v1/embeddings').send({})).status).toBe(404);
      expect(up.openai.requests).toHaveLength(0);
    });

    it("matches basePath exactly, case included (README): another case, the Responses API and the stored-completions calls reach the host's 404", async () => {
      const url = await start();
      // A NestJS route is the platform's: Express matches it in any case (Nest has no basePath; Fastify, exactly).
      const paths = adapter.name === 'nestjs route' ? ['/v1/chat/completions/x'] : ['/V1/chat/completions', '/v1/Chat/Completions', '/v1/chat/completions/x'];
      for (const path of paths) {
        expect([path, (await request(url).post(path).send({ model: 'gpt-4o', messages })).status]).toEqual([path, 404]);
      }
      const client = sdk(url);
      await expect(client.responses.create({ model: 'gpt-4o', input: 'Say hello' })).rejects.toMatchObject({ status: 404 });
      await expect(client.chat.completions.retrieve('chatcmpl-1')).rejects.toMatchObject({ status: 404 });
      await expect(client.chat.completions.list()).rejects.toMatchObject({ status: 404 });
      expect(up.openai.requests).toHaveLength(0);
      expect(logs).toHaveLength(0);
    });

    it('a log sink that throws never breaks a request', async () => {
      const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
      const url = await start({ onLog: () => { throw new Error('sink down'); }, logSinks: [{ write: (e) => logs.push(e) }] });
      const res = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
      expect(res.choices[0]!.message.content).toBe('Hello from openai');
      expect(await nextLog(logs)).toMatchObject({ status: 200 });
      // Said once per sink, not on every request after it.
      await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
      expect(await nextLog(logs, 2)).toMatchObject({ status: 200 });
      expect(warn).toHaveBeenCalledTimes(1);
      warn.mockRestore();
    });

    it('an async log sink that rejects is reported, not an unhandled rejection', async () => {
      const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
      try {
        const url = await start({ onLog: async () => { throw new Error('database down'); }, logSinks: [{ write: (e) => logs.push(e) }] });
        await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
        expect(await nextLog(logs)).toMatchObject({ status: 200 });
        await new Promise((resolve) => setImmediate(resolve));
        // Only a handler attached to the returned promise can see its rejection reason.
        expect(warn).toHaveBeenCalledWith(expect.stringContaining('database down'), 'SwitchyardLogSinkWarning');
      } finally {
        warn.mockRestore();
      }
    });
  });
});
