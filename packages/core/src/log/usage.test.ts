import { extractResponseModel, extractUsage, readUsage, StreamTail } from './usage';

describe('usage extraction', () => {
  it('reads usage from a JSON body', () => {
    const body = Buffer.from(JSON.stringify({ choices: [{ message: { content: 'usage "usage" {' } }], usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7, prompt_tokens_details: { cached_tokens: 0 } } }));
    expect(extractUsage(body)).toEqual({ prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 });
  });

  it('reads the final usage chunk of a stream, skipping `"usage": null` chunks', () => {
    const tail = new StreamTail();
    tail.push(Buffer.from('data: {"choices":[{"delta":{"content":"x"}}],"usage":null}\n\n'));
    tail.push(Buffer.from('data: {"choices":[],"usage":{"prompt_tokens":1,'));
    tail.push(Buffer.from('"completion_tokens":2,"total_tokens":3}}\n\ndata: [DONE]\n\n'));
    expect(tail.read().usage).toEqual({ usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 }, cachedTokens: 0 });
  });

  it("prices no more cached tokens than the prompt had, and takes the upstream's own total", () => {
    const tail = new StreamTail();
    tail.push(Buffer.from('data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":9,"prompt_tokens_details":{"cached_tokens":8}}}\n\n'));
    expect(tail.read().usage).toEqual({ usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 9 }, cachedTokens: 5 });
  });

  it('reads usage from a pretty-printed JSON body, as OpenAI sends its completions (`"usage": {`)', () => {
    const body = Buffer.from(JSON.stringify({ id: 'c', choices: [], usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7, prompt_tokens_details: { cached_tokens: 2 } } }, null, 2));
    expect(readUsage(body)).toEqual({ usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 }, cachedTokens: 2 });
  });

  it('takes a count of zero as a count, and adds up a total the upstream left out', () => {
    expect(extractUsage(Buffer.from('{"usage":{"prompt_tokens":5,"completion_tokens":0,"total_tokens":5}}'))).toEqual({ prompt_tokens: 5, completion_tokens: 0, total_tokens: 5 });
    expect(extractUsage(Buffer.from('{"usage":{"prompt_tokens":5,"completion_tokens":2}}'))).toEqual({ prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 });
  });

  it('reads the usage object when a later "usage" key is none (an extension field after it, a null usage)', () => {
    const body = Buffer.from(JSON.stringify({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 }, x_proxy: { usage: null } }));
    expect(extractUsage(body)).toEqual({ prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 });
  });

  it('is null when there is no usage', () => {
    expect(extractUsage(Buffer.from('{"usage":null}'))).toBeNull();
    expect(new StreamTail().read()).toEqual({ usage: null, model: null, errorEvent: null, bytes: null });
  });

  it('reads the model the upstream reports, compact or pretty-printed, never one inside the content', () => {
    const pretty = JSON.stringify({ id: 'c', model: 'gpt-4o-2024-08-06', choices: [{ message: { role: 'model', content: '{"model":"cheap"}' } }], extra: { model: 'router-v2' } }, null, 2);
    expect(extractResponseModel(Buffer.from(pretty), 'start')).toBe('gpt-4o-2024-08-06');
    expect(extractResponseModel(Buffer.from('data: {"id":"c","model":"gpt-4o-mini-2024-07-18","choices":[]}\n\n'), 'end')).toBe('gpt-4o-mini-2024-07-18');
    expect(extractResponseModel(Buffer.from('{"error":{"message":"no"}}'), 'start')).toBeNull();
    // Azure's keys in alphabetical order, `model` after `choices`, whose logprobs hold many tokens "model" as values.
    const token = { token: 'model', logprob: -0.1, bytes: [109], top_logprobs: [{ token: 'model', logprob: -0.1, bytes: [109] }] };
    const azure = JSON.stringify({ choices: [{ index: 0, logprobs: { content: Array(40).fill(token) }, message: { content: 'model', role: 'assistant' } }], created: 1, id: 'c', model: 'gpt-4o-2024-11-20', object: 'chat.completion' });
    expect(extractResponseModel(Buffer.from(azure), 'start')).toBe('gpt-4o-2024-11-20');
    // A long answer, more such values than the search passes over from the start: found from the end.
    const long = JSON.stringify({ choices: [{ index: 0, logprobs: { content: Array(6000).fill(token) } }], created: 1, id: 'c', model: 'gpt-4o-2024-11-20', object: 'chat.completion' });
    expect(extractResponseModel(Buffer.from(long), 'start')).toBe('gpt-4o-2024-11-20');
  });

  it("reads a stream's model from its last chunk's key, past the tokens \"model\" its logprobs hold as values", () => {
    const token = { token: 'model', logprob: -0.1, bytes: [109], top_logprobs: [{ token: 'model', logprob: -0.1, bytes: [109] }] };
    const chunk = { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-2024-08-06', choices: [{ index: 0, delta: { content: 'model' }, logprobs: { content: [token] }, finish_reason: null }] };
    expect(extractResponseModel(Buffer.from(`data: ${JSON.stringify(chunk)}\n\n`), 'end')).toBe('gpt-4o-2024-08-06');
  });

  it('reads the usage chunk when the tail is cut back at [DONE] itself, and one whose usage object spans data lines', () => {
    const usage = { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 };
    // The tail cut back at [DONE] itself (the stream's bytes crossed the cut there): it keeps the last 4 KiB, usage too.
    const usageEvent = Buffer.from(`data: ${JSON.stringify({ id: 'c', choices: [], usage })}\n\n`);
    const done = Buffer.from('data: [DONE]\n\n');
    const fill = 8192 - usageEvent.length - done.length + 1 - 'data: {"c":""}\n\n'.length;
    const atDone = new StreamTail();
    atDone.pushEvents([Buffer.from(`data: {"c":"${'x'.repeat(fill)}"}\n\n`)]);
    atDone.pushEvents([usageEvent]);
    atDone.pushEvents([done]);
    expect(atDone.read().usage?.usage).toEqual(usage);
    // An OpenAI-compatible proxy that wraps the usage object itself over two data lines: read as a client joins them.
    const wrapped = new StreamTail();
    wrapped.pushEvents([Buffer.from('data: {"id":"c","choices":[],"usage":{"prompt_tokens":3,\ndata: "completion_tokens":4,"total_tokens":7}}\n\ndata: [DONE]\n\n')]);
    expect(wrapped.read().usage?.usage).toEqual(usage);
  });

  it("reads a stream's model past Azure's content-filter chunks, whose model is empty", () => {
    const tail = new StreamTail();
    tail.push(Buffer.from('data: {"id":"c","model":"gpt-4o-2024-11-20","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}\n\n'));
    tail.push(Buffer.from('data: {"id":"","model":"","choices":[{"index":0,"content_filter_results":{}}]}\n\ndata: [DONE]\n\n'));
    expect(tail.read().model).toBe('gpt-4o-2024-11-20');
  });
});

describe('StreamTail.answerComplete: whether a client that stops now had the whole answer', () => {
  const event = (choices: object[]) => Buffer.from(`data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', choices })}\n\n`);
  const tailOf = (...events: Buffer[]) => {
    const tail = new StreamTail();
    tail.pushEvents(events);
    return tail;
  };

  it('is true once every choice seen has its finish_reason, in any order', () => {
    expect(tailOf(event([{ index: 0, delta: { content: 'a' }, finish_reason: null }]), event([{ index: 0, delta: {}, finish_reason: 'stop' }])).answerComplete()).toBe(true);
    // n = 2, interleaved: choice 1 ends first.
    const both = tailOf(
      event([{ index: 0, delta: { content: 'a' }, finish_reason: null }, { index: 1, delta: { content: 'b' }, finish_reason: null }]),
      event([{ index: 1, delta: {}, finish_reason: 'length' }]),
      event([{ index: 0, delta: {}, finish_reason: 'tool_calls' }]),
    );
    expect(both.answerComplete()).toBe(true);
  });

  it('takes a choice without an index (an OpenAI-compatible server may leave it out) as the first one', () => {
    const tail = tailOf(Buffer.from('data: {"id":"c","choices":[{"delta":{"content":"a"},"finish_reason":null}]}\n\n'), Buffer.from('data: {"id":"c","choices":[{"delta":{},"finish_reason":"stop"}]}\n\n'));
    expect(tail.answerComplete()).toBe(true);
  });

  it('is false mid-answer: no finish_reason yet, or one choice of two still going (a loop that stops at choices[0])', () => {
    expect(tailOf(event([{ index: 0, delta: { content: 'a' }, finish_reason: null }])).answerComplete()).toBe(false);
    const oneOfTwo = tailOf(
      event([{ index: 0, delta: { content: 'a' }, finish_reason: null }, { index: 1, delta: { content: 'b' }, finish_reason: null }]),
      event([{ index: 0, delta: {}, finish_reason: 'stop' }]),
    );
    expect(oneOfTwo.answerComplete()).toBe(false);
  });

  it('with n > 1, is false until all n choices finished, though one has not started when another finished', () => {
    const tail = new StreamTail(2);
    tail.pushEvents([event([{ index: 1, delta: { role: 'assistant', content: 'b' }, finish_reason: null }])]);
    tail.pushEvents([event([{ index: 1, delta: {}, finish_reason: 'stop' }])]);
    expect(tail.answerComplete()).toBe(false);
    tail.pushEvents([event([{ index: 0, delta: { content: 'a' }, finish_reason: null }]), event([{ index: 0, delta: {}, finish_reason: 'stop' }])]);
    expect(tail.answerComplete()).toBe(true);
  });

  it('with n > 1, reads a finish event that came in two reads (held bytes, then the rest, passed on together)', () => {
    const tail = new StreamTail(2);
    tail.pushEvents([event([{ index: 0, delta: { content: 'a' }, finish_reason: null }, { index: 1, delta: { content: 'b' }, finish_reason: null }])]);
    tail.pushEvents([event([{ index: 0, delta: {}, finish_reason: 'stop' }])]);
    const last = event([{ index: 1, delta: {}, finish_reason: 'stop' }]);
    tail.pushEvents([last.subarray(0, 20), last.subarray(20)]);
    expect(tail.answerComplete()).toBe(true);
  });

  it('with n > 1, is true when a choice finished long before the other ended (its finish_reason kilobytes back)', () => {
    const tail = new StreamTail(2);
    tail.pushEvents([event([{ index: 0, delta: { content: 'a' }, finish_reason: null }, { index: 1, delta: { content: 'b' }, finish_reason: null }])]);
    tail.pushEvents([event([{ index: 0, delta: {}, finish_reason: 'stop' }])]);
    for (let i = 0; i < 20; i++) tail.pushEvents([event([{ index: 1, delta: { content: 'x'.repeat(400) }, finish_reason: null }])]);
    tail.pushEvents([event([{ index: 1, delta: {}, finish_reason: 'stop' }])]);
    expect(tail.answerComplete()).toBe(true);
    // n = 3: two finished is not the answer.
    const three = new StreamTail(3);
    three.pushEvents([event([{ index: 0, delta: {}, finish_reason: 'stop' }]), event([{ index: 1, delta: {}, finish_reason: 'stop' }])]);
    expect(three.answerComplete()).toBe(false);
  });

  it('is false with no choices at all (Azure\'s prompt-filter event alone) and after an error event', () => {
    expect(new StreamTail().answerComplete()).toBe(false);
    expect(tailOf(event([])).answerComplete()).toBe(false);
    const failed = tailOf(event([{ index: 0, delta: {}, finish_reason: 'stop' }]), Buffer.from('data: {"error":{"message":"overloaded"}}\n\n'));
    expect(failed.answerComplete()).toBe(false);
  });

  it("sees a finish_reason that filter annotations pushed out of the tail, also one split across the upstream's reads", () => {
    const annotation = Buffer.from(`data: ${JSON.stringify({ id: '', choices: [{ index: 0, finish_reason: null, content_filter_offsets: { check_offset: 0, start_offset: 0, end_offset: 40 }, content_filter_results: { hate: { filtered: false, severity: 'safe' } } }] })}\n\n`);
    const finish = event([{ index: 0, delta: {}, finish_reason: 'stop' }]);
    for (const at of [0, finish.indexOf('"finish_reason"') + 5]) {
      const tail = new StreamTail();
      tail.pushEvents(at === 0 ? [finish] : [finish.subarray(0, at), finish.subarray(at)]);
      for (let i = 0; i < 100; i++) tail.pushEvents([annotation]);
      expect([at, tail.answerComplete()]).toEqual([at, true]);
    }
  });

  it("sees a finish_reason whose key the upstream's reads split right where the tail was cut back, in two or three pieces", () => {
    const annotation = Buffer.from(`data: ${JSON.stringify({ id: '', choices: [{ index: 0, finish_reason: null, content_filter_offsets: { check_offset: 0, start_offset: 0, end_offset: 40 }, content_filter_results: { hate: { filtered: false, severity: 'safe' } } }] })}\n\n`);
    const finish = Buffer.from(`data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`);
    const at = finish.indexOf('"finish_reason"');
    // Content and padding sized so that the tail is cut back inside the key (4 bytes of it in a read of their own).
    const complete = (cuts: number[], filler: number, pad: number): boolean => {
      const tail = new StreamTail();
      tail.pushEvents([event([{ index: 0, delta: { content: 'x'.repeat(filler) }, finish_reason: null }])]);
      const bounds = [0, ...cuts, finish.length];
      tail.pushEvents(bounds.slice(1).map((end, i) => finish.subarray(bounds[i], end)));
      tail.pushEvents([Buffer.from(`data: ${JSON.stringify({ pad: 'p'.repeat(pad) })}\n\n`)]);
      for (let i = 0; i < 100; i++) tail.pushEvents([annotation]);
      return tail.answerComplete();
    };
    expect([complete([at + 4], 3955, 85), complete([at + 7, at + 11], 3970, 70)]).toEqual([true, true]);
    // Split just before the key, with the cut between the two reads: the tail starts inside the finish event.
    for (const cut of [at - 3, at - 1]) {
      for (let x = 4096 - finish.length - 2; x < 4096 + 3; x++) {
        const tail = new StreamTail();
        tail.pushEvents([event([{ index: 0, delta: { content: 'x'.repeat(8192 - finish.length - x - 65) }, finish_reason: null }])]);
        tail.pushEvents([finish.subarray(0, cut), finish.subarray(cut)]);
        tail.pushEvents([Buffer.from(`data: ${JSON.stringify({ pad: 'p'.repeat(x - 10 * annotation.length - 13) })}\n\n`)]);
        for (let i = 0; i < 40; i++) {
          tail.pushEvents([annotation]);
          expect([cut - at, x, i, tail.answerComplete()]).toEqual([cut - at, x, i, true]);
        }
      }
    }
  });

  it('sees a finish_reason split across reads among 64 KiB events, searched without joining them', () => {
    const big = (content: string) => event([{ index: 0, delta: { content }, finish_reason: null }]);
    const finish = Buffer.from(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: 'y'.repeat(30_000) }, finish_reason: 'stop' }] })}\n\n`);
    const at = finish.indexOf('"finish_reason"');
    const missed: number[] = [];
    for (let cut = at - 2; cut <= at + 18; cut++) {
      const tail = new StreamTail();
      tail.pushEvents([big('x'.repeat(65_000))]);
      tail.pushEvents([finish.subarray(0, cut), finish.subarray(cut)]);
      // Large events after it (no choices: Azure's filter results), which push it out of the tail.
      for (let i = 0; i < 4; i++) tail.pushEvents([Buffer.from(`data: ${JSON.stringify({ pad: 'p'.repeat(40_000) })}\n\n`)]);
      if (!tail.answerComplete()) missed.push(cut - at);
    }
    expect(missed).toEqual([]);
  });

  it('with n > 1, counts only the choices asked for: an upstream inventing indexes neither holds them all nor blocks the answer', () => {
    const tail = new StreamTail(2);
    tail.pushEvents([event([{ index: 0, delta: {}, finish_reason: 'stop' }, { index: 1, delta: {}, finish_reason: 'stop' }])]);
    for (let i = 2; i < 20_000; i++) tail.pushEvents([event([{ index: i, delta: { content: 'x' }, finish_reason: null }]), event([{ index: `${i}` }])]);
    expect(tail.answerComplete()).toBe(true);
    const sets = (tail as unknown as { choices: { seen: Set<unknown>; finished: Set<unknown> } }).choices;
    expect([sets.seen.size, sets.finished.size]).toEqual([2, 2]);
  });
});
