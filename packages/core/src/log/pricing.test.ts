import { createServer } from 'node:http';
import express from 'express';
import { DEFAULT_PRICES, PriceTable, SwitchyardOptionsError, type SwitchyardOptions } from '@switchyard/core';
import { fallbackMiddleware } from '@switchyard/express';
import { replies } from '@switchyard/testing';
import { listen } from '../../../e2e/src/support/adapters';
import { messages, nextLog, sdk, seedOptions, useUpstreams } from '../../../e2e/src/support/fixture';

describe('price table', () => {
  const usage = { prompt_tokens: 1_000_000, completion_tokens: 2_000_000, total_tokens: 3_000_000 };

  it('prices per 1M prompt and completion tokens, with dated snapshots under their base model', () => {
    const table = new PriceTable();
    expect(table.costOf('openai', 'gpt-4o', usage)).toBe(2.5 + 2 * 10);
    expect(table.costOf('openai', 'gpt-4o-mini-2024-07-18', usage)).toBe(1.35);
    // A snapshot with a price of its own keeps it.
    expect(table.costOf('openai', 'gpt-4o-2024-05-13', usage)).toBe(5 + 2 * 15);
    expect(table.costOf('azure-openai', 'gpt-4.1', usage)).toBe(2 + 2 * 8);
    // Older models answer with a four-digit snapshot: each is listed, at its own price.
    expect(table.costOf('openai', 'gpt-3.5-turbo-0125', usage)).toBe(0.5 + 2 * 1.5);
    expect(table.costOf('openai', 'gpt-3.5-turbo-1106', usage)).toBe(1 + 2 * 2);
    expect(table.costOf('openai', 'gpt-4-0613', usage)).toBe(30 + 2 * 60);
    // A host's price for a base model covers its numbered preview snapshots too.
    expect(new PriceTable({ 'gpt-4': { prompt: 1, completion: 1 } }).costOf('openai', 'gpt-4-0125-preview', usage)).toBe(3);
    // Rounded finely enough for one cached prompt token of the cheapest model ($0.005 per 1M).
    expect(table.costOf('openai', 'gpt-5-nano', { prompt_tokens: 1, completion_tokens: 0, total_tokens: 1 }, 1)).toBe(5e-9);
  });

  it('prices prompt tokens read from the cache at the cached rate, or the full one where none is listed', () => {
    const table = new PriceTable({ mine: { prompt: 1, completion: 1 } });
    // 200k uncached at 2.50, 800k cached at 1.25, 2M completion at 10.
    expect(table.costOf('openai', 'gpt-4o', usage, 800_000)).toBe(0.5 + 1 + 20);
    expect(table.costOf('openai', 'gpt-4o-2024-05-13', usage, 800_000)).toBe(5 + 2 * 15);
    expect(table.costOf('openai', 'mine', usage, 800_000)).toBe(3);
  });

  it("prices Azure's version-less gpt-4 by the deployment that answered: the host's price for it, else its name's list price", () => {
    const table = new PriceTable({ 'azure-openai/gpt4-0613-eu': { prompt: 30, completion: 60 }, 'azure-openai/gpt4-turbo-eu': { prompt: 10, completion: 30 } });
    expect(table.costOf('azure-openai', 'gpt-4', usage, 0, 'gpt4-0613-eu')).toBe(30 + 2 * 60);
    expect(table.costOf('azure-openai', 'gpt-4', usage, 0, 'gpt4-turbo-eu')).toBe(10 + 2 * 30);
    expect(table.costOf('azure-openai', 'gpt-4', usage, 0, 'gpt-4-turbo')).toBe(10 + 2 * 30); // named after its model
    expect(table.costOf('azure-openai', 'gpt-4', usage, 0, 'prod-chat')).toBeNull();
    expect(table.costOf('azure-openai', 'gpt-4', usage)).toBeNull();
    // The deployment's price before one given the name itself; every version-less name; a versioned answer is
    // priced by what it reports, whatever its deployment is called.
    const both = new PriceTable({ 'azure-openai/gpt-4': { prompt: 1, completion: 1 }, 'azure-openai/gpt4-turbo-eu': { prompt: 10, completion: 30 } });
    expect([both.costOf('azure-openai', 'gpt-4', usage, 0, 'gpt4-turbo-eu'), both.costOf('azure-openai', 'gpt-4', usage, 0, 'prod-chat')]).toEqual([70, 3]);
    const chat = new PriceTable({ 'azure-openai/chat-prod': { prompt: 1, completion: 1 } });
    for (const model of ['gpt-35-turbo', 'gpt-35-turbo-16k', 'gpt-4-32k']) expect(chat.costOf('azure-openai', model, usage, 0, 'chat-prod')).toBe(3);
    expect(table.costOf('azure-openai', 'gpt-4o-2024-08-06', usage, 0, 'gpt-4o-mini')).toBe(2.5 + 2 * 10);
    // Only Azure's answer is version-less: OpenAI's `gpt-4` (an OpenAI-compatible server's, asked for another model) is priced by its name.
    expect(table.costOf('openai', 'gpt-4', usage, 0, 'gpt-4o')).toBe(30 + 2 * 60);
  });

  it('is null, never 0, for a model without a price', () => {
    expect(new PriceTable().costOf('openai', 'ft:gpt-4o:acme::abc', usage)).toBeNull();
    expect(new PriceTable().costOf('openai', 'gpt-4o-audio-preview', usage)).toBeNull();
  });

  it("applies a host's price for a base model to its snapshots, before any list price of a snapshot", () => {
    const table = new PriceTable({ 'azure-openai/gpt-4': { prompt: 1, completion: 1 }, 'gpt-4o': { prompt: 2, completion: 2 } });
    expect(table.costOf('azure-openai', 'gpt-4-0613', usage)).toBe(3);
    expect(table.costOf('openai', 'gpt-4-0613', usage)).toBe(30 + 2 * 60); // not the host's: its price is Azure's
    expect(table.costOf('openai', 'gpt-4o-2024-05-13', usage)).toBe(6);
    // A host's price for the snapshot itself comes before its price for the base model, and before the list price.
    const snapshot = new PriceTable({ 'gpt-4o': { prompt: 2, completion: 2 }, 'gpt-4o-2024-08-06': { prompt: 4, completion: 4 }, 'gpt-4o-2024-05-13': { prompt: 1, completion: 1 } });
    expect([snapshot.costOf('openai', 'gpt-4o-2024-08-06', usage), snapshot.costOf('openai', 'gpt-4o-2024-05-13', usage)]).toEqual([12, 3]);
  });

  it('uses the host prices first, provider-scoped before model-wide', () => {
    const table = new PriceTable({ 'gpt-4o': { prompt: 1, completion: 1 }, 'azure-openai/gpt-4o': { prompt: 3, completion: 3 }, mine: { prompt: 0, completion: 0 } });
    expect(table.costOf('openai', 'gpt-4o', usage)).toBe(3);
    expect(table.costOf('azure-openai', 'gpt-4o', usage)).toBe(9);
    expect(table.costOf('openai', 'mine', usage)).toBe(0);
    expect(table.priceOf('openai', 'toString')).toBeNull();
  });

  it('lists every default price as a positive number pair', () => {
    expect(Object.keys(DEFAULT_PRICES).length).toBeGreaterThan(10);
    for (const [model, price] of Object.entries(DEFAULT_PRICES)) {
      expect([model, price.prompt > 0 && price.completion >= price.prompt && (price.cached ?? price.prompt) <= price.prompt]).toEqual([model, true]);
    }
  });
});

describe('costUsd on log events (official SDK -> Express -> fakes)', () => {
  const { up, logs, track } = useUpstreams();

  async function start(extra: Partial<SwitchyardOptions> = {}): Promise<string> {
    const host = express();
    host.use(fallbackMiddleware(seedOptions(up, logs, extra)));
    return track(await listen(createServer(host)));
  }

  it('prices an OpenAI request from its usage (10 prompt + 5 completion tokens of gpt-4o)', async () => {
    const url = await start();
    await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
    const event = await nextLog(logs);
    expect(event.usage).toEqual({ prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 });
    expect(event.costUsd).toBeCloseTo((10 * 2.5 + 5 * 10) / 1e6, 12);
  });

  it('prices the cached part of the prompt at the cached rate (prompt_tokens_details.cached_tokens)', async () => {
    const url = await start();
    const usage = { prompt_tokens: 10_000, completion_tokens: 1_000, total_tokens: 11_000, prompt_tokens_details: { cached_tokens: 8_000 } };
    up.openai.enqueue({ body: { id: 'c', object: 'chat.completion', created: 1, model: 'gpt-4o-2024-08-06', choices: [], usage } });
    await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
    const event = await nextLog(logs);
    expect(event.usage).toEqual({ prompt_tokens: 10_000, completion_tokens: 1_000, total_tokens: 11_000 });
    expect(event.costUsd).toBeCloseTo((2_000 * 2.5 + 8_000 * 1.25 + 1_000 * 10) / 1e6, 12);
  });

  it('prices an Azure fallback by the requested model, not the deployment name, and honours prices overrides', async () => {
    const url = await start({ prices: { 'azure-openai/gpt-4o': { prompt: 5, completion: 20 } } });
    up.openai.enqueue(replies.rateLimited());
    await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
    const event = await nextLog(logs);
    expect(event.servedBy).toMatchObject({ provider: 'azure-openai', model: 'gpt4o-prod' });
    expect(event.costUsd).toBeCloseTo((10 * 5 + 5 * 20) / 1e6, 12);
  });

  it("prices Azure's version-less answer by the host's price for the deployment that gave it", async () => {
    const url = await start({ prices: { 'azure-openai/gpt4o-prod': { prompt: 10, completion: 30 } } });
    up.openai.enqueue(replies.rateLimited());
    up.azure.enqueue({ model: 'gpt-4' }); // a GPT-4 Turbo deployment answers so
    await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
    expect((await nextLog(logs)).costUsd).toBeCloseTo((10 * 10 + 5 * 30) / 1e6, 12);
  });

  it('prices by the model the upstream reports, whatever model string the client sent to a deployment', async () => {
    const url = await start();
    up.openai.enqueue(replies.rateLimited());
    up.azure.enqueue({ model: 'gpt-4o-2024-08-06' }); // the gpt4o-prod deployment runs gpt-4o
    await sdk(url).chat.completions.create({ model: 'gpt-4o-mini', messages });
    expect((await nextLog(logs)).costUsd).toBeCloseTo((10 * 2.5 + 5 * 10) / 1e6, 12);

    // A stream: the model comes from its last chunks.
    up.openai.enqueue(replies.rateLimited());
    up.azure.enqueue({ model: 'gpt-4o-2024-08-06', stream: { chunks: 2, usage: true } });
    const stream = await sdk(url).chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
    for await (const _ of stream);
    expect((await nextLog(logs, 2)).costUsd).toBeCloseTo((10 * 2.5 + 2 * 10) / 1e6, 12);

    // Azure writes keys in alphabetical order, `model` after `choices`: an answer with logprobs, many of its tokens
    // "model", is still priced by the model the deployment reports.
    const token = { bytes: [109], logprob: -0.1, token: 'model', top_logprobs: [{ bytes: [109], logprob: -0.1, token: 'model' }] };
    up.openai.enqueue(replies.rateLimited());
    up.azure.enqueue({
      body: {
        choices: [{ finish_reason: 'stop', index: 0, logprobs: { content: Array(20).fill(token) }, message: { content: 'model '.repeat(20), role: 'assistant' } }],
        created: 1, id: 'chatcmpl-az', model: 'gpt-4o-2024-08-06', object: 'chat.completion', usage: { completion_tokens: 20, prompt_tokens: 10, total_tokens: 30 },
      },
    });
    await sdk(url).chat.completions.create({ model: 'gpt-4o-mini', messages, logprobs: true, top_logprobs: 1 });
    expect((await nextLog(logs, 3)).costUsd).toBeCloseTo((10 * 2.5 + 20 * 10) / 1e6, 12);
  });

  it('logs null for a model without a price and for a request without usage', async () => {
    const url = await start();
    await sdk(url).chat.completions.create({ model: 'my-own-model', messages });
    expect((await nextLog(logs)).costUsd).toBeNull();
    // The deployment runs a model with no price: unknown, not the price of the model asked for.
    up.openai.enqueue(replies.rateLimited());
    up.azure.enqueue({ model: 'gpt-4-32k' });
    await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
    expect((await nextLog(logs, 2)).costUsd).toBeNull();
    // Azure reports `gpt-35-turbo` and `gpt-4` for every version, each priced differently: unknown, not a guess.
    for (const [i, model] of ['gpt-35-turbo', 'gpt-4'].entries()) {
      up.azure.enqueue({ model });
      up.openai.enqueue(replies.rateLimited());
      await sdk(url).chat.completions.create({ model: 'gpt-4o', messages });
      expect((await nextLog(logs, 3 + i)).costUsd).toBeNull();
    }
    up.openai.enqueue({ status: 400 });
    up.azure.enqueue({ status: 400 });
    await sdk(url).chat.completions.create({ model: 'gpt-4o', messages }).catch(() => undefined);
    const failed = await nextLog(logs, 5);
    expect([failed.status, failed.usage, failed.costUsd]).toEqual([400, null, null]);
  });

  it('rejects malformed prices at construction, naming the path', () => {
    expect(() => fallbackMiddleware(seedOptions(up, logs, { prices: { 'gpt-4o': { prompt: -1, completion: 1 } } }))).toThrow(SwitchyardOptionsError);
    expect(() => fallbackMiddleware(seedOptions(up, logs, { prices: { 'gpt-4o': { prompt: -1, completion: 1 } } }))).toThrow(/prices\["gpt-4o"\]\.prompt/);
  });
});
