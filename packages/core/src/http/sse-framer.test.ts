import { SseFramer } from './sse-framer';

const text = (b: Buffer | null) => (b === null ? null : b.toString());

describe('SseFramer', () => {
  it('passes chunks that end on an event boundary through untouched', () => {
    const framer = new SseFramer();
    const chunk = Buffer.from('data: {"a":1}\n\ndata: {"b":2}\n\n');
    expect(framer.push(chunk)).toBe(chunk);
    expect(framer.rest()).toBeNull();
  });

  it('holds back the start of an event until its blank line arrives', () => {
    const framer = new SseFramer();
    expect(text(framer.push(Buffer.from('data: {"a":1}\n\ndata: {"b"')))).toBe('data: {"a":1}\n\n');
    expect(framer.push(Buffer.from(':2}'))).toBeNull();
    expect(text(framer.push(Buffer.from('\n\n')))).toBe('data: {"b":2}\n\n');
  });

  it('knows CRLF and CR blank lines', () => {
    const framer = new SseFramer();
    expect(text(framer.push(Buffer.from('data: 1\r\n\r\ndata: 2\r\n')))).toBe('data: 1\r\n\r\n');
    expect(text(framer.push(Buffer.from('\r\ndata: 3\r\rdata')))).toBe('data: 2\r\n\r\ndata: 3\r\r');
    expect(text(framer.rest())).toBe('data');
  });
});
