/**
 * Passes on only whole server-sent events. If an upstream dies in the middle of an event, the bytes of that event
 * must not reach the client: the SSE error event we then write would be glued to them, and the client's parser
 * would fail on broken JSON instead of reading our error. Upstreams nearly always end a chunk on an event
 * boundary, so the usual chunk is passed through untouched after a two-byte check.
 */
const LF = 0x0a;
const CR = 0x0d;

export class SseFramer {
  private partial: Buffer | null = null;

  /** The chunk's whole events (with any held-back start), or null when it completes none. */
  push(chunk: Buffer): Buffer | null {
    const data = this.partial ? Buffer.concat([this.partial, chunk]) : chunk;
    this.partial = null;
    const end = wholeEventsEnd(data);
    if (end === data.length) return data;
    this.partial = data.subarray(end);
    return end === 0 ? null : data.subarray(0, end);
  }

  /** What is held back when the upstream ended cleanly (a last event without its blank line), or null. */
  rest(): Buffer | null {
    const rest = this.partial;
    this.partial = null;
    return rest;
  }
}

/** The offset just past the last blank line (`\n\n`, `\r\n\r\n` or `\r\r`), 0 if there is none. */
function wholeEventsEnd(buf: Buffer): number {
  const n = buf.length;
  if (n >= 2 && buf[n - 1] === LF && (buf[n - 2] === LF || (buf[n - 2] === CR && buf[n - 3] === LF))) return n;
  for (let i = n - 1; i > 0; i--) {
    const c = buf[i];
    if (c === LF && (buf[i - 1] === LF || (buf[i - 1] === CR && buf[i - 2] === LF))) return i + 1;
    if (c === CR && buf[i - 1] === CR) return i + 1;
  }
  return 0;
}
