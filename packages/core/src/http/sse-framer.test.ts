import { errorEventIn, unansweredEvents, MAX_EVENT_BYTES, SseFramer, wholeEventsEnd } from './sse-framer';

const text = (pieces: Buffer[]) => Buffer.concat(pieces).toString();

describe('SseFramer', () => {
  it('passes chunks that end on an event boundary through untouched', () => {
    const framer = new SseFramer();
    const chunk = Buffer.from('data: {"a":1}\n\ndata: {"b":2}\n\n');
    expect(framer.push(chunk)).toEqual([chunk]);
    expect(framer.push(chunk)[0]).toBe(chunk);
    expect(framer.end()).toEqual([]);
  });

  it('holds back the start of an event until its blank line arrives', () => {
    const framer = new SseFramer();
    expect(text(framer.push(Buffer.from('data: {"a":1}\n\ndata: {"b"')))).toBe('data: {"a":1}\n\n');
    expect(framer.push(Buffer.from(':2}'))).toEqual([]);
    expect(text(framer.push(Buffer.from('\n\n')))).toBe('data: {"b":2}\n\n');
  });

  it('knows CRLF and CR blank lines', () => {
    const framer = new SseFramer();
    expect(text(framer.push(Buffer.from('data: 1\r\n\r\ndata: 2\r\n')))).toBe('data: 1\r\n\r\n');
    expect(text(framer.push(Buffer.from('\r\ndata: 3\r\rdata')))).toBe('data: 2\r\n\r\ndata: 3\r\r');
    expect(() => framer.end()).toThrow(expect.objectContaining({ code: 'ENDED_MID_EVENT' })); // a data line cut short
  });

  it('finds a blank line split across chunks, and sends a long event as the pieces it arrived in (no copy)', () => {
    const framer = new SseFramer();
    expect(framer.push(Buffer.from('data: 1\n'))).toEqual([]);
    expect(text(framer.push(Buffer.from('\ndata: 2')))).toBe('data: 1\n\n');
    const piece = Buffer.from('x'.repeat(2048));
    for (let i = 0; i < 100; i++) expect(framer.push(piece)).toEqual([]);
    const pieces = framer.push(Buffer.from('\n\n'));
    expect(pieces).toHaveLength(102);
    expect(pieces[50]).toBe(piece);
    expect(text(pieces)).toBe(`data: 2${'x'.repeat(204_800)}\n\n`);
  });

  it('holds an event trickled a byte at a time as a few blocks, not a Buffer per byte', () => {
    const framer = new SseFramer();
    expect(framer.push(Buffer.from('data: '))).toEqual([]);
    for (let i = 0; i < 100_000; i++) framer.push(Buffer.from('x'));
    const pieces = framer.push(Buffer.from('\n\n'));
    // 16 pieces as they came, then 8 KiB blocks.
    expect(pieces.length).toBeLessThan(40);
    expect(text(pieces)).toBe(`data: ${'x'.repeat(100_000)}\n\n`);
  });

  it('finds a CRLF blank line that arrives a byte at a time: its CR already ends the event, as for a client', () => {
    const framer = new SseFramer();
    for (const byte of 'data: 1\r\n') expect(framer.push(Buffer.from(byte))).toEqual([]);
    expect(text(framer.push(Buffer.from('\r')))).toBe('data: 1\r\n\r');
    expect(text(framer.push(Buffer.from('\ndata: 2\r\n\r\n')))).toBe('\ndata: 2\r\n\r\n');
    expect(framer.end()).toEqual([]);
    // The same after [DONE], at the stream's end: its last LF goes on too, byte for byte as the upstream sent it.
    const last = new SseFramer();
    expect(text(last.push(Buffer.from('data: [DONE]\r\n\r')))).toBe('data: [DONE]\r\n\r');
    expect(last.push(Buffer.from('\n'))).toEqual([]);
    expect(text(last.end())).toBe('\n');
  });

  it('takes a CR blank line after an LF line as the end of an event (upstream gone or ended right after it)', () => {
    const framer = new SseFramer();
    expect(text(framer.push(Buffer.from('data: 1\n\r')))).toBe('data: 1\n\r');
    expect(framer.end()).toEqual([]);
  });

  it('at the end, fails an event cut short, completes a last [DONE], drops a cut comment', () => {
    const cut = new SseFramer();
    cut.push(Buffer.from('data: {"a":1}\n\ndata: {"b"'));
    expect(() => cut.end()).toThrow(expect.objectContaining({ code: 'ENDED_MID_EVENT' }));
    const done = new SseFramer();
    done.push(Buffer.from('data: {"a":1}\n\ndata: [DONE]'));
    expect(text(done.end())).toBe('data: [DONE]\n\n');
    // Without the blank after the colon, as the SDK also reads it (`data:[DONE]`): completed, not a cut event.
    const compact = new SseFramer();
    compact.push(Buffer.from('data:{"a":1}\n\ndata:[DONE]'));
    expect(text(compact.end())).toBe('data:[DONE]\n\n');
    expect(compact.done).toBe(true);
    const comment = new SseFramer();
    comment.push(Buffer.from('data: {"a":1}\n\n: keep-al'));
    expect(comment.end()).toEqual([]);
  });

  it('refuses to hold an event past MAX_EVENT_BYTES', () => {
    const framer = new SseFramer();
    const piece = Buffer.alloc(1024 * 1024, 'x');
    let pushed = 0;
    expect(() => {
      for (;;) {
        framer.push(piece);
        pushed += piece.length;
      }
    }).toThrow(expect.objectContaining({ code: 'EVENT_TOO_LARGE' }));
    expect(pushed).toBe(MAX_EVENT_BYTES);
  });
});

describe('wholeEventsEnd', () => {
  /** The rule read byte by byte: just past the last LF or CR that ends a blank line (the bytes before `buf` count). */
  function byTheRule(buf: Buffer, prev1: number | undefined, prev2: number | undefined): number {
    const bytes = [prev2, prev1, ...buf];
    for (let i = bytes.length - 1; i >= 2; i--) {
      const [a, b, c] = [bytes[i - 2], bytes[i - 1], bytes[i]];
      if (c === 0x0a && (b === 0x0a || (b === 0x0d && a === 0x0a))) return i - 1;
      if (c === 0x0d && (b === 0x0d || b === 0x0a)) return i - 1;
    }
    return 0;
  }

  it('finds the end of the last whole event in every mix of LF, CR and text up to 7 bytes, after any two bytes held', () => {
    const alphabet = [0x61, 0x0a, 0x0d];
    const before = [undefined, 0x61, 0x0a, 0x0d];
    const wrong: unknown[] = [];
    let checked = 0;
    let found = 0;
    const all = (length: number): number[][] => (length === 0 ? [[]] : all(length - 1).flatMap((rest) => alphabet.map((b) => [...rest, b])));
    for (let length = 0; length <= 7; length++) {
      for (const bytes of all(length)) {
        const buf = Buffer.from(bytes);
        for (const prev1 of before) for (const prev2 of prev1 === undefined ? [undefined] : before) {
          const expected = byTheRule(buf, prev1, prev2);
          const got = wholeEventsEnd(buf, prev1, prev2);
          if (got !== expected) wrong.push({ bytes, prev1, prev2, got, expected });
          checked++;
          if (expected > 0) found++;
        }
      }
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    expect(checked).toBeGreaterThan(30_000);
    expect(found).toBeGreaterThan(checked / 3); // the walk saw both answers, many times
  });
});

describe('errorEventIn', () => {
  const pieces = (...texts: string[]) => texts.map((t) => Buffer.from(t));
  const messageOf = (found: ReturnType<typeof errorEventIn>) => found?.message ?? null;
  const chunk = 'data: {"choices":[{"delta":{"content":"say \\"error\\""}}]}\n\n';

  it("finds OpenAI's error event first or last, with its message, across line endings, split data lines and pieces", () => {
    const error = 'data: {"error": {"message": "The server had an error", "type": "server_error"}}\n\n';
    expect(errorEventIn(pieces(`: keep-alive\n\n${error}`), 'first')).toEqual({ error: { message: 'The server had an error', type: 'server_error' }, message: 'The server had an error' });
    expect(messageOf(errorEventIn(pieces(`${chunk}${error}data: [DONE]\n\n`), 'last'))).toBe('The server had an error');
    expect(messageOf(errorEventIn(pieces('data: {"error":\r\ndata: {"code":"x"}}\r\n\r\n'), 'first'))).toBe('');
    expect(messageOf(errorEventIn(pieces(`data:{"error":"${'m'.repeat(600)}"}\r\r`), 'first'))).toBe(`${'m'.repeat(500)}...`);
    // `"error"` cut across pieces, even a byte at a time; a BOM before the first line.
    expect(messageOf(errorEventIn(pieces('data: {"er', 'r', 'o', 'r":{"message":"split"}}\n\n'), 'first'))).toBe('split');
    expect(messageOf(errorEventIn(pieces('\ufeffdata: {"error":{"message":"bom"}}\n\n'), 'first'))).toBe('bom');
  });

  it('finds none in an ordinary stream, a quoted word, an error after the first event, or an event not yet whole', () => {
    expect(errorEventIn(pieces(chunk), 'first')).toBeNull();
    expect(errorEventIn(pieces(`${chunk}data: {"error":{"message":"late"}}\n\n`), 'first')).toBeNull();
    expect(errorEventIn(pieces(`${chunk}data: {"error":{"message":"cut"}}`), 'last')).toBeNull();
    expect(errorEventIn(pieces('data: {"error": null, "choices": []}\n\n'), 'first')).toBeNull();
  });
});

describe('unansweredEvents', () => {
  const pieces = (...texts: string[]) => texts.map((t) => Buffer.from(t));
  const verdict = 'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0}]}\n\n';
  const chunk = 'data: {"id":"c","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n';

  it("counts the whole events that answer nothing before the first that does: Azure's prompt-filter verdict, a leading [DONE]", () => {
    expect(unansweredEvents(pieces(verdict))).toBe(1);
    expect(unansweredEvents(pieces(verdict.slice(0, 40), verdict.slice(40), chunk))).toBe(1);
    expect(unansweredEvents(pieces(verdict.slice(0, -1)))).toBe(0); // not whole yet
    expect(unansweredEvents(pieces(chunk, verdict))).toBe(0); // not leading
    // Content, usage or an error beside the verdict answer something: not a preamble.
    expect(unansweredEvents(pieces('data: {"choices":[{"index":0,"delta":{}}],"prompt_filter_results":[]}\n\n'))).toBe(0);
    expect(unansweredEvents(pieces('data: {"choices":[],"prompt_filter_results":[],"usage":{"total_tokens":1}}\n\n'))).toBe(0);
    expect(unansweredEvents(pieces('data: {"choices":[],"prompt_filter_results":[],"error":{"message":"x"}}\n\n'))).toBe(0);
    expect(unansweredEvents(pieces(chunk))).toBe(0);
    // [DONE] before any answer: nothing will be answered (a client reads an empty stream).
    expect(unansweredEvents(pieces('data: [DONE]\n\n'))).toBe(Infinity);
    expect(unansweredEvents(pieces(verdict, 'data: [DONE]\n\n'))).toBe(Infinity);
    expect(unansweredEvents(pieces(chunk, 'data: [DONE]\n\n'))).toBe(0);
  });

  it('an error event after the verdict is the first event errorEventIn reads', () => {
    expect(errorEventIn(pieces(verdict, 'data: {"error":{"message":"late"}}\n\n'), 'first')?.message).toBe('late');
  });
});
