/**
 * Portkey's circuit breaker (`strategy.cb_config`) through real HTTP: the openai SDK as the client, Express (and the
 * in-process client) as the host, the fakes as OpenAI and Azure OpenAI. The clock is moved by shifting
 * `performance.now()`, which the breaker reads, forward.
 */
import OpenAI from 'openai';
import { createFallbackClient, type CircuitBreakerConfig, type LogEvent, type RoutingConfig, type SwitchyardOptions } from '@switchyard/core';
import { adapters } from './support/adapters';
import { messages, nextLog, sdk, seedOptions, until, useUpstreams } from './support/fixture';

const express = adapters.find((a) => a.name === 'express')!;
/** A fallback over `targets` (default OpenAI, then Azure) with `cb_config` (cooldown_interval 30 s unless given). */
const fallback = (cb: Omit<CircuitBreakerConfig, 'cooldown_interval'> & { cooldown_interval?: number }, targets: RoutingConfig[] = [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }]): RoutingConfig => ({
  strategy: { mode: 'fallback', cb_config: { cooldown_interval: 30_000, ...cb } },
  targets,
});
/** Two OpenAI targets (gpt-4o, then gpt-4o-mini) under a nested strategy of `mode`. */
const openAIPair = (mode: 'fallback' | 'loadbalance'): RoutingConfig => ({
  strategy: { mode },
  targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'openai-prod', override_params: { model: 'gpt-4o-mini' } }],
});

describe('circuit breaker (cb_config)', () => {
  const { up, logs, track } = useUpstreams();
  let warnings: string[];
  let later = 0;
  beforeEach(() => {
    warnings = [];
    later = 0;
    const now = performance.now.bind(performance);
    jest.spyOn(performance, 'now').mockImplementation(() => now() + later);
    jest.spyOn(process, 'emitWarning').mockImplementation((w: string | Error, type?: unknown) => {
      if (type === 'SwitchyardCircuitWarning') warnings.push(String(w));
    });
  });
  afterEach(() => jest.restoreAllMocks());

  const start = async (config: RoutingConfig, extra: Partial<SwitchyardOptions> = {}) => track(await express.start(seedOptions(up, logs, { config, ...extra })));
  /** Sends `count` requests one after the other; the answers' x-switchyard-* headers. */
  const send = async (client: OpenAI, count: number) => {
    const answers: Array<{ target: string | null; attempts: string | null; fallback: string | null; status: number }> = [];
    for (let i = 0; i < count; i++) {
      const res = await client.chat.completions.create({ model: 'gpt-4o', messages }).asResponse();
      answers.push({ target: res.headers.get('x-switchyard-target'), attempts: res.headers.get('x-switchyard-attempts'), fallback: res.headers.get('x-switchyard-fallback'), status: res.status });
    }
    return answers;
  };
  const skips = (event: LogEvent) => event.attempts.filter((a) => a.error?.code === 'circuit_open').map((a) => a.target);

  it('skips a target after failure_threshold failures, for cooldown_interval, then tries it again', async () => {
    const url = await start(fallback({ failure_threshold: 3, cooldown_interval: 60_000 }));
    up.openai.enqueue(...Array.from({ length: 3 }, () => ({ status: 503 })));
    const client = sdk(url);

    const first = await send(client, 5);
    // Three 503s open it: the next requests go straight to Azure, with no OpenAI attempt first.
    expect(up.openai.requests).toHaveLength(3);
    expect(up.azure.requests).toHaveLength(5);
    expect(first.map((a) => a.attempts)).toEqual(['2', '2', '2', '1', '1']);
    // Still a fallback: the first target did not serve.
    expect(first.every((a) => a.target === 'targets[1]' && a.fallback === 'true' && a.status === 200)).toBe(true);
    const event = await nextLog(logs, 5);
    expect(event.fallback).toBe(true);
    expect(event.attempts).toEqual([
      {
        target: 'targets[0]', provider: 'openai', virtualKey: 'openai-prod', model: 'gpt-4o', status: null, durationMs: 0,
        error: { code: 'circuit_open', message: 'Skipped: its circuit is open after repeated failures (cb_config); it is tried again in 60 s.' },
      },
      expect.objectContaining({ target: 'targets[1]', status: 200 }),
    ]);
    expect(warnings).toEqual([
      'config.targets[0] (openai, virtual key "openai-prod") failed 3 of its last 3 requests (within 60 s; the last: 503): its circuit is open (cb_config), and requests skip it for 60 s.',
    ]);

    // Just before the cooldown ends, still skipped; after it, OpenAI is tried again (and serves: closed).
    later = 59_000;
    expect((await send(client, 1))[0]!.attempts).toBe('1');
    later = 60_000;
    expect(await send(client, 2)).toEqual(Array.from({ length: 2 }, () => ({ target: 'targets[0]', attempts: '1', fallback: 'false', status: 200 })));
    expect(up.openai.requests).toHaveLength(5);
    expect(warnings[1]).toBe('config.targets[0] (openai, virtual key "openai-prod") answers again: its circuit is closed.');
  });

  it('after the cooldown lets one request test a hanging target while the others still skip it, and opens again when it fails', async () => {
    const url = await start(fallback({ failure_threshold: 1 }, [{ virtual_key: 'openai-prod', request_timeout: 300 }, { virtual_key: 'azure-prod' }]));
    up.openai.setDefault({ hang: true });
    const client = sdk(url);
    await send(client, 1); // times out: open
    later = 30_000;
    // Five at once: one tests OpenAI (and waits out its timeout), four go straight to Azure.
    const answers = await Promise.all(Array.from({ length: 5 }, () => send(client, 1).then((a) => a[0]!)));
    expect(up.openai.requests).toHaveLength(2);
    expect(answers.map((a) => a.attempts).sort()).toEqual(['1', '1', '1', '1', '2']);
    expect(warnings[1]).toBe('config.targets[0] (openai, virtual key "openai-prod") still fails (the request let through after the cooldown: upstream_timeout): requests skip it for another 30 s.');
    const skipped = logs.find((e) => e.attempts.length === 2 && e.attempts[0]!.error?.code === 'circuit_open')!;
    expect(skipped.attempts[0]!.error!.message).toBe('Skipped: its circuit is open after repeated failures (cb_config); another request is testing it.');
    // Open again for a whole cooldown.
    later = 59_000;
    await send(client, 1);
    expect(up.openai.requests).toHaveLength(2);
  });

  it('after a test request closes the circuit, counts afresh: one failure does not reopen it, and "closed" is said once', async () => {
    const url = await start(fallback({ failure_threshold: 2 }));
    up.openai.enqueue({ status: 503 }, { status: 503 });
    const client = sdk(url);
    await send(client, 3); // two 503s: open
    expect(up.openai.requests).toHaveLength(2);
    later = 30_000;
    await send(client, 2); // the test request succeeds: closed; the next one is an ordinary request
    up.openai.enqueue({ status: 503 });
    const answers = await send(client, 2);
    // One 503 of a threshold of 2: still closed, so the request after it goes to OpenAI (and it serves).
    expect(answers.map((a) => [a.target, a.attempts])).toEqual([['targets[1]', '2'], ['targets[0]', '1']]);
    expect(up.openai.requests).toHaveLength(6);
    expect(warnings.map((w) => w.replace(/^config\.targets\[0\] \(openai, virtual key "openai-prod"\) /, '').split(' ')[0])).toEqual(['failed', 'answers']);
  });

  it('a last resort asked while another request tests it is not a test request: its answer neither closes nor reopens the circuit', async () => {
    const url = await start(fallback({ failure_threshold: 1 }));
    // OpenAI always answers 400 (falls back, no failure): Azure, the last target, is asked every time.
    up.openai.setDefault({ status: 400 });
    up.azure.enqueue({ status: 503 }, { hang: true });
    await sdk(url).chat.completions.create({ model: 'gpt-4o', messages }).catch(() => undefined); // Azure's 503: open
    later = 30_000;
    const controller = new AbortController();
    const testing = sdk(url).chat.completions.create({ model: 'gpt-4o', messages }, { signal: controller.signal }).catch(() => undefined);
    await until(() => up.azure.requests.length === 2); // the test request, hanging at Azure
    // Another request meanwhile: Azure is skipped in principle, but as the last resort it is asked, and serves.
    expect(await send(sdk(url), 1)).toEqual([{ target: 'targets[1]', attempts: '2', fallback: 'true', status: 200 }]);
    controller.abort();
    await testing;
    await nextLog(logs, 3);
    // Only the test request could close it; it was abandoned, so nothing changed.
    expect(warnings).toEqual([expect.stringContaining('its circuit is open')]);
  });

  it('says a skipped target is tried again in 1 s while under a millisecond of its cooldown is left, not that a request is testing it', async () => {
    // A clock that stands still, at a fraction of a millisecond.
    let clock = 1000.25;
    jest.mocked(performance.now).mockImplementation(() => clock);
    const url = await start(fallback({ failure_threshold: 1 }));
    up.openai.enqueue({ status: 503 });
    await send(sdk(url), 1); // open until 31000.25
    clock = 30_999.75;
    expect((await send(sdk(url), 1))[0]!.attempts).toBe('1');
    expect((await nextLog(logs, 2)).attempts[0]!.error!.message).toBe('Skipped: its circuit is open after repeated failures (cb_config); it is tried again in 1 s.');
  });

  it('a test request that the client abandons lets the next one test the target', async () => {
    const url = await start(fallback({ failure_threshold: 1 }));
    up.openai.enqueue({ status: 503 }, { hang: true });
    await send(sdk(url), 1); // open
    later = 30_000;
    const controller = new AbortController();
    const abandoned = sdk(url).chat.completions.create({ model: 'gpt-4o', messages }, { signal: controller.signal }).catch(() => undefined);
    await until(() => up.openai.requests.length === 2);
    controller.abort();
    await abandoned;
    await nextLog(logs, 2);
    // Neither closed nor opened again by the abandoned one: the next request tests it, and it answers.
    expect(await send(sdk(url), 1)).toEqual([{ target: 'targets[0]', attempts: '1', fallback: 'false', status: 200 }]);
    expect(warnings.slice(1)).toEqual(['config.targets[0] (openai, virtual key "openai-prod") answers again: its circuit is closed.']);
  });

  it('counts only 5xx and no answer by default, and failure_status_codes when given', async () => {
    const url = await start(fallback({ failure_threshold: 2 }));
    up.openai.enqueue({ status: 429 }, { status: 429 }, { status: 429 });
    await send(sdk(url), 4);
    // Three 429s fell back, but are no failures by default: nothing skipped.
    expect(up.openai.requests).toHaveLength(4);
    expect(warnings).toEqual([]);

    const counting429 = await start(fallback({ failure_threshold: 2, failure_status_codes: [429] }));
    up.reset();
    up.openai.enqueue({ status: 429 }, { status: 429 });
    await send(sdk(counting429), 3);
    expect(up.openai.requests).toHaveLength(2);
  });

  it('counts a connection failure whatever failure_status_codes lists, and a timeout as a 408 (by default, or when listed)', async () => {
    const url = await start(fallback({ failure_threshold: 2, failure_status_codes: [429, 408] }, [{ virtual_key: 'openai-prod', request_timeout: 200 }, { virtual_key: 'azure-prod' }]));
    up.openai.enqueue({ reset: true }, { hang: true });
    const answers = await send(sdk(url), 3);
    expect(answers.map((a) => a.attempts)).toEqual(['2', '2', '1']);
    expect(up.openai.requests).toHaveLength(2);
  });

  it("does not count a timeout when failure_status_codes leaves 408 out: a caller's long answer is not the target's outage", async () => {
    const url = await start(fallback({ failure_threshold: 2, failure_status_codes: [429] }, [{ virtual_key: 'openai-prod', request_timeout: 200 }, { virtual_key: 'azure-prod' }]));
    up.openai.enqueue({ hang: true }, { hang: true }, { hang: true });
    const answers = await send(sdk(url), 4);
    expect(answers.map((a) => a.attempts)).toEqual(['2', '2', '2', '1']);
    expect(up.openai.requests).toHaveLength(4);
    expect(warnings).toEqual([]);
  });

  it('counts a timeout when failure_status_codes is not given (a hung target is an outage)', async () => {
    const url = await start(fallback({ failure_threshold: 2 }, [{ virtual_key: 'openai-prod', request_timeout: 200 }, { virtual_key: 'azure-prod' }]));
    up.openai.enqueue({ hang: true }, { hang: true });
    const answers = await send(sdk(url), 3);
    expect(answers.map((a) => a.attempts)).toEqual(['2', '2', '1']);
    expect(warnings).toEqual([expect.stringContaining('the last: upstream_timeout')]);
  });

  it('opens by failure rate over the requests of the last cooldown_interval, once minimum_requests were counted', async () => {
    const url = await start(fallback({ failure_threshold_percentage: 50, minimum_requests: 4 }));
    // ok, ok, fail (1 of 3: too few counted), ok (1 of 4: 25 %), fail (2 of 5), fail (3 of 6: 50 %): open.
    up.openai.enqueue({}, {}, { status: 500 }, {}, { status: 500 }, { status: 500 });
    await send(sdk(url), 8);
    expect(up.openai.requests).toHaveLength(6);
    expect(warnings).toEqual([expect.stringContaining('failed 3 of its last 6 requests')]);
  });

  it('opens by rate as soon as minimum_requests were counted, not one request later', async () => {
    const url = await start(fallback({ failure_threshold_percentage: 50, minimum_requests: 2 }));
    // ok, then a 500: 1 of 2 counted, 50 %: open, and the third request skips OpenAI.
    up.openai.enqueue({}, { status: 500 });
    await send(sdk(url), 3);
    expect([up.openai.requests.length, up.azure.requests.length]).toEqual([2, 2]);
  });

  it('counts the successes before a failure in the rate: one 500 after 20 answers is 5 %, not 100 %', async () => {
    const url = await start(fallback({ failure_threshold_percentage: 50 }));
    const client = sdk(url);
    await send(client, 20);
    up.openai.enqueue({ status: 500 });
    await send(client, 2);
    expect(up.openai.requests).toHaveLength(22);
    expect(warnings).toEqual([]);
  });

  it('reads no rate before minimum_requests (default 5, as in Portkey): a first request that fails after a quiet spell does not open it', async () => {
    const url = await start(fallback({ failure_threshold_percentage: 50 }));
    up.openai.enqueue({ status: 500 });
    await send(sdk(url), 2);
    expect(up.openai.requests).toHaveLength(2);
    expect(warnings).toEqual([]);
  });

  it('does not add up failures further apart than cooldown_interval', async () => {
    const url = await start(fallback({ failure_threshold: 2, cooldown_interval: 30_000 }));
    const client = sdk(url);
    up.openai.enqueue({ status: 503 });
    await send(client, 1);
    later = 30_000;
    up.openai.enqueue({ status: 503 });
    await send(client, 2);
    // The second failure starts a new run: two failures, but never two within 30 s.
    expect(up.openai.requests).toHaveLength(3);
    expect(warnings).toEqual([]);
  });

  it('a cooldown under 30 s counts as 30 s, as in Portkey', async () => {
    const url = await start(fallback({ failure_threshold: 1, cooldown_interval: 1000 }));
    up.openai.enqueue({ status: 503 });
    const client = sdk(url);
    await send(client, 1);
    later = 29_000;
    await send(client, 1);
    expect(up.openai.requests).toHaveLength(1);
    expect(warnings).toEqual([expect.stringContaining('requests skip it for 30 s')]);
  });

  it('asks only the last target when every circuit is open (the last resort), not each in turn', async () => {
    const url = await start(fallback({ failure_threshold: 1 }));
    up.openai.enqueue({ status: 503 }, { status: 503 });
    up.azure.enqueue({ status: 503 });
    const err = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 503 });
    expect(warnings).toHaveLength(2);
    // Both open: OpenAI is skipped, and Azure, the last target, is asked anyway (it serves now).
    const answers = await send(sdk(url), 1);
    expect(answers).toEqual([{ target: 'targets[1]', attempts: '1', fallback: 'true', status: 200 }]);
    expect(skips(await nextLog(logs, 2))).toEqual(['targets[0]']);
  });

  it('asks the last target even open, rather than answer with a failure; open targets before it are skipped', async () => {
    const three = fallback({ failure_threshold: 1 }, [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }, { virtual_key: 'openai-prod', override_params: { model: 'gpt-4o-mini' } }]);
    const url = await start(three);
    // targets[0] answers 400 (no failure, but it falls back); targets[1] and targets[2] fail: their circuits open.
    up.openai.enqueue({ status: 400 }, { status: 503 });
    up.azure.enqueue({ status: 503 });
    const err = await sdk(url).chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 503 });
    // targets[0] fails now: targets[1] is open and skipped; targets[2], open too but the last, is asked (and serves).
    up.openai.enqueue({ status: 503 });
    expect(await send(sdk(url), 1)).toEqual([{ target: 'targets[2]', attempts: '2', fallback: 'true', status: 200 }]);
    const event = await nextLog(logs, 2);
    expect(event.attempts.map((a) => [a.target, a.status, a.error?.code ?? null])).toEqual([
      ['targets[0]', 503, null],
      ['targets[1]', null, 'circuit_open'],
      ['targets[2]', 200, null],
    ]);
  });

  it('does not skip to a target that cannot take the model: the upstream failure stays the answer, not a 400', async () => {
    const url = await start(fallback({ failure_threshold: 1 }));
    up.openai.setDefault({ status: 503 });
    const status = () => sdk(url).chat.completions.create({ model: 'o1', messages }).catch((e: { status?: number; code?: string | null }) => `${e.status} ${e.code ?? ''}`.trim());
    expect(await status()).toBe('503'); // opens targets[0]; Azure has no deployment for o1
    // targets[1] cannot serve o1: skipping targets[0] would leave no upstream to ask, so it is not skipped.
    expect(await status()).toBe('503');
    expect(up.openai.requests).toHaveLength(2);
    // A model Azure serves still skips it.
    await send(sdk(url), 1);
    expect(up.openai.requests).toHaveLength(2);
  });

  it('single mode uses its first target not skipped, as Portkey does; a strategy of one target has no circuit', async () => {
    const url = await start({ strategy: { mode: 'single', cb_config: { failure_threshold: 1, cooldown_interval: 30_000 } }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] });
    up.openai.setDefault({ status: 503 });
    expect(await send(sdk(url), 1).catch(() => 'failed')).toBe('failed'); // opens targets[0]
    const answers = await send(sdk(url), 1);
    expect(answers).toEqual([{ target: 'targets[1]', attempts: '1', fallback: 'true', status: 200 }]);
    expect(up.openai.requests).toHaveLength(1);

    const alone = await start({ strategy: { mode: 'fallback', cb_config: { failure_threshold: 1, cooldown_interval: 30_000 } }, targets: [{ virtual_key: 'openai-prod' }] });
    await sdk(alone).chat.completions.create({ model: 'gpt-4o', messages }).catch(() => undefined);
    await sdk(alone).chat.completions.create({ model: 'gpt-4o', messages }).catch(() => undefined);
    expect(up.openai.requests).toHaveLength(3);
    // One warning, for the two-target config: the one-target strategy never said it would skip.
    expect(warnings).toHaveLength(1);
  });

  it('single mode does not skip to a first target that cannot take the model', async () => {
    const options = seedOptions(up, logs, {
      config: { strategy: { mode: 'single', cb_config: { failure_threshold: 1, cooldown_interval: 30_000 } }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-mini' }, { virtual_key: 'azure-prod' }] },
    });
    options.virtualKeys!['azure-mini'] = { ...options.virtualKeys!['azure-prod']!, deployments: { 'gpt-4o-mini': 'gpt4o-mini-prod' } };
    const url = track(await express.start(options));
    up.openai.setDefault({ status: 503 });
    const status = (model: string) => sdk(url).chat.completions.create({ model, messages }).then(() => 200, (e: { status?: number }) => e.status);
    expect(await status('gpt-4o')).toBe(503); // opens targets[0]
    // targets[1], single's next, has no deployment for gpt-4o: OpenAI's answer stays the client's, not a 400.
    expect(await status('gpt-4o')).toBe(503);
    expect(up.openai.requests).toHaveLength(2);
    // For gpt-4o-mini it has one: single uses it.
    expect(await status('gpt-4o-mini')).toBe(200);
    expect([up.openai.requests.length, up.azure.requests.length]).toEqual([2, 1]);
  });

  it('single mode uses its last target when every target is open', async () => {
    const url = await start({ strategy: { mode: 'single', cb_config: { failure_threshold: 1, cooldown_interval: 30_000 } }, targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod' }] });
    up.openai.setDefault({ status: 503 });
    up.azure.setDefault({ status: 503 });
    const status = () => sdk(url).chat.completions.create({ model: 'gpt-4o', messages }).then(() => 200, (e: { status?: number }) => e.status);
    // OpenAI fails (open), then Azure, single's next (open): with both open, the last is asked, not each in turn.
    expect([await status(), await status(), await status()]).toEqual([503, 503, 503]);
    expect([up.openai.requests.length, up.azure.requests.length]).toEqual([1, 2]);
    expect(warnings).toHaveLength(2);
  });

  it('asks a skipped target again as the walk reaches it: one whose cooldown ended meanwhile is tried', async () => {
    const url = await start(fallback({ failure_threshold: 1 }));
    up.openai.enqueue({ status: 400 });
    up.azure.enqueue({ status: 503 }); // opens targets[1] for 30 s
    await send(sdk(url), 1).catch(() => undefined);
    up.openai.enqueue({ status: 503, delayMs: 300 });
    const pending = sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
    setTimeout(() => (later = 31_000), 100); // targets[1]'s cooldown ends while targets[0] answers
    expect((await pending).choices[0]!.message.content).toBe('Hello from azure');
    expect(skips(await nextLog(logs, 2))).toEqual([]);
  });

  it('streams from the next target while the first is skipped', async () => {
    const url = await start(fallback({ failure_threshold: 1 }));
    up.openai.enqueue({ status: 503 });
    const client = sdk(url);
    await send(client, 1);
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('Hello from azure');
    expect(up.openai.requests).toHaveLength(1);
    expect(skips(await nextLog(logs, 2))).toEqual(['targets[0]']);
  });

  it('gives each target under a nested strategy its own circuit, and skips the nested strategy when all of them are open', async () => {
    const url = await start(fallback({ failure_threshold: 2 }, [openAIPair('fallback'), { virtual_key: 'azure-prod' }]));
    // Both OpenAI targets fail twice: their circuits open, so the nested strategy is open and skipped whole.
    up.openai.enqueue(...Array.from({ length: 4 }, () => ({ status: 503 })));
    await send(sdk(url), 3);
    expect(up.openai.requests).toHaveLength(4);
    expect(warnings.map((w) => w.split(' failed')[0])).toEqual([
      'config.targets[0].targets[0] (openai, virtual key "openai-prod")',
      'config.targets[0].targets[1] (openai, virtual key "openai-prod")',
    ]);
    expect(skips(await nextLog(logs, 3))).toEqual(['targets[0].targets[0]', 'targets[0].targets[1]']);
  });

  it("keeps a load-balanced cluster serving when one of its targets fails (Portkey's whole-cluster fallback)", async () => {
    const url = await start(fallback({ failure_threshold: 3, cooldown_interval: 60_000 }, [openAIPair('loadbalance'), { virtual_key: 'azure-prod' }]));
    // The cluster's first target (gpt-4o) always fails; its second (gpt-4o-mini) is healthy.
    up.openai.setDefault((req) => ((req.body as { model: string }).model === 'gpt-4o' ? { status: 500 } : {}));
    const answers = await send(sdk(url), 40);
    // Only the failing target's circuit opens: the cluster keeps serving, Azure only stands in for its failures.
    expect(warnings).toEqual([expect.stringMatching(/^config\.targets\[0\]\.targets\[0\] /)]);
    const served = answers.slice(-20).map((a) => a.target);
    expect(served.every((t) => t === 'targets[0].targets[1]')).toBe(true);
  });

  it('under loadbalance, logs an open pick as skipped and picks among the rest', async () => {
    const config: RoutingConfig = {
      strategy: { mode: 'fallback' },
      targets: [{ strategy: { mode: 'loadbalance', cb_config: { failure_threshold: 1, cooldown_interval: 30_000 } }, targets: [{ virtual_key: 'openai-prod', weight: 1 }, { virtual_key: 'azure-prod', weight: 0.001 }] }, { virtual_key: 'azure-prod' }],
    };
    const url = await start(config);
    up.openai.enqueue({ status: 503 });
    const answers = await send(sdk(url), 6);
    expect(up.openai.requests).toHaveLength(1);
    // After the one failure, the loadbalance picks its healthy target every time, at weight 0.001 against 1.
    expect(answers.slice(1).map((a) => a.target)).toEqual(Array.from({ length: 5 }, () => 'targets[0].targets[1]'));
    // Its weight picked targets[0] (0.999 of the time): the log says it was skipped, so the request fell back.
    const event = await nextLog(logs, 6);
    expect([event.fallback, skips(event)]).toEqual([true, ['targets[0].targets[0]']]);
  });

  it('under loadbalance, skips nothing when the targets left have no weight', async () => {
    const url = await start({
      strategy: { mode: 'loadbalance', cb_config: { failure_threshold: 1, cooldown_interval: 30_000 } },
      targets: [{ virtual_key: 'openai-prod', weight: 1 }, { virtual_key: 'azure-prod', weight: 0 }],
    });
    up.openai.setDefault({ status: 503 });
    const status = () => sdk(url).chat.completions.create({ model: 'gpt-4o', messages }).then(() => 200, (e: { status?: number }) => e.status);
    expect([await status(), await status()]).toEqual([503, 503]);
    // The open target is still the only one to pick: called, and not logged as skipped.
    expect(up.openai.requests).toHaveLength(2);
    expect(skips(await nextLog(logs, 2))).toEqual([]);
  });

  it("as the README's recipe, a breaker on the first target alone: the last resort's errors never open a circuit", async () => {
    const codes = [429, 500, 502, 503, 504];
    const url = await start({
      strategy: { mode: 'fallback', on_status_codes: codes },
      targets: [
        { strategy: { mode: 'single', cb_config: { failure_threshold: 1, cooldown_interval: 30_000, failure_status_codes: [408, ...codes] } }, targets: [{ virtual_key: 'openai-prod', request_timeout: 60_000 }] },
        { virtual_key: 'azure-prod' },
      ],
    });
    up.openai.setDefault({ status: 429 });
    up.azure.enqueue({ status: 503 }, { status: 503 }, { status: 503 });
    const status = () => sdk(url).chat.completions.create({ model: 'gpt-4o', messages }).then(() => 200, (e: { status?: number }) => e.status);
    // OpenAI is rate-limited once (open); Azure then fails three times and serves: OpenAI stays skipped throughout.
    expect([await status(), await status(), await status(), await status()]).toEqual([503, 503, 503, 200]);
    expect(up.openai.requests).toHaveLength(1);
    expect(warnings).toEqual([expect.stringMatching(/^config\.targets\[0\]\.targets\[0\] \(openai.*the last: 429\)/)]);
  });

  it('skips a nested loadbalance whose targets it can pick are all open (a weight-0 standby does not count)', async () => {
    const url = await start({
      strategy: { mode: 'fallback', cb_config: { failure_threshold: 1, cooldown_interval: 30_000 } },
      targets: [{ strategy: { mode: 'loadbalance' }, targets: [{ virtual_key: 'openai-prod', weight: 1 }, { virtual_key: 'openai-prod', weight: 0 }] }, { virtual_key: 'azure-prod' }],
    });
    up.openai.setDefault({ status: 503 });
    await send(sdk(url), 4);
    expect(up.openai.requests).toHaveLength(1);
    const event = await nextLog(logs, 4);
    expect(skips(event)).toEqual(['targets[0].targets[0]', 'targets[0].targets[1]']);
    // The standby's own circuit never opened: skipped with its strategy.
    expect(event.attempts[1]!.error!.message).toBe('Skipped with targets[0], whose targets are open (cb_config).');
  });

  it('lets one request test a half-open target that is not first, while the others skip it', async () => {
    const url = await start(fallback({ failure_threshold: 1 }, [{ virtual_key: 'openai-prod' }, { virtual_key: 'azure-prod', request_timeout: 300 }, { virtual_key: 'openai-prod', override_params: { model: 'gpt-4o-mini' } }]));
    // targets[0] answers 400 (no failure, but it falls back) after 200 ms, so that the requests reach targets[1] together.
    up.openai.setDefault((req) => ((req.body as { model: string }).model === 'gpt-4o' ? { status: 400, delayMs: 200 } : {}));
    up.azure.setDefault({ hang: true });
    await send(sdk(url), 1); // targets[1] times out: open
    later = 30_000;
    await Promise.all(Array.from({ length: 5 }, () => send(sdk(url), 1)));
    // One test request at Azure (which times out again), not five.
    expect(up.azure.requests).toHaveLength(2);
  });

  it('a body that cannot be encoded again, sent while a circuit is half-open, does not keep it from being tested', async () => {
    const parsing = adapters.find((a) => a.name === 'express + express.json()')!;
    const url = track(await parsing.start(seedOptions(up, logs, { config: fallback({ failure_threshold: 1 }) })));
    up.openai.enqueue({ status: 503 });
    await send(sdk(url), 1); // open
    later = 30_000;
    // Parsed by express.json(), too deep for JSON.stringify: refused (400) as the engine encodes it for OpenAI.
    const deep = `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"metadata":${'['.repeat(40_000)}${']'.repeat(40_000)}}`;
    const refused = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: deep });
    expect(refused.status).toBe(400);
    // The next request tests OpenAI, and it answers: closed.
    expect(await send(sdk(url), 1)).toEqual([{ target: 'targets[0]', attempts: '1', fallback: 'false', status: 200 }]);
    expect(warnings.at(-1)).toBe('config.targets[0] (openai, virtual key "openai-prod") answers again: its circuit is closed.');
  });



  it('skips the last open target of a nested strategy when the walk out there can move on', async () => {
    const url = await start({
      strategy: { mode: 'fallback' },
      targets: [
        {
          strategy: { mode: 'fallback', cb_config: { failure_threshold: 1, cooldown_interval: 30_000 } },
          targets: [{ virtual_key: 'openai-prod' }, { virtual_key: 'openai-prod', request_timeout: 300, override_params: { model: 'gpt-4o-mini' } }],
        },
        { virtual_key: 'azure-prod' },
      ],
    });
    // The nested strategy's first target is rate-limited (no failure); its second hangs until its timeout (open).
    up.openai.setDefault((req) => ((req.body as { model: string }).model === 'gpt-4o' ? { status: 429 } : { hang: true }));
    await send(sdk(url), 1);
    const answers = await send(sdk(url), 2);
    // Azure, after the nested strategy, serves: the open target is skipped, not waited out on every request.
    expect(answers.map((a) => [a.target, a.attempts])).toEqual([['targets[1]', '2'], ['targets[1]', '2']]);
    expect(up.openai.requests.filter((r) => (r.body as { model: string }).model === 'gpt-4o-mini')).toHaveLength(1);
    expect(skips(await nextLog(logs, 3))).toEqual(['targets[0].targets[1]']);
  });

  it('keeps circuits per routing config, and the in-process client has them too', async () => {
    const options = seedOptions(up, logs, { configs: { a: fallback({ failure_threshold: 1 }), b: fallback({ failure_threshold: 1 }) } });
    delete options.config;
    const client = createFallbackClient(options);
    up.openai.enqueue({ status: 503 });
    await client.chat.completions.create({ model: 'gpt-4o', messages }, { configId: 'a' });
    await client.chat.completions.create({ model: 'gpt-4o', messages }, { configId: 'a' });
    await client.chat.completions.create({ model: 'gpt-4o', messages }, { configId: 'b' });
    // Config a skipped OpenAI on its second request; config b, with circuits of its own, still tried it.
    expect(up.openai.requests).toHaveLength(2);
    expect(warnings).toEqual([expect.stringMatching(/^configs\.a\.targets\[0\] /)]);
  });

  it('does not count a request the client left', async () => {
    const url = await start(fallback({ failure_threshold: 1 }));
    up.openai.enqueue({ hang: true });
    const controller = new AbortController();
    const pending = sdk(url).chat.completions.create({ model: 'gpt-4o', messages }, { signal: controller.signal }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 100));
    controller.abort();
    await pending;
    expect((await nextLog(logs)).status).toBe(499);
    await send(sdk(url), 1);
    expect(up.openai.requests).toHaveLength(2);
    expect(warnings).toEqual([]);
  });
});
