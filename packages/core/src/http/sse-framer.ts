/**
 * Passes on only whole server-sent events. If an upstream dies in the middle of an event, the bytes of that event
 * must not reach the client: the SSE error event we then write would be glued to them, and the client's parser
 * would fail on broken JSON instead of reading our error. Upstreams nearly always end a chunk on an event
 * boundary, so the usual chunk is passed through untouched after a two-byte check. Held bytes are not copied: a
 * 64 KiB event split over two reads leaves as two writes, not as a concatenated third buffer (only a trickle of many
 * tiny pieces is copied together, see HeldBytes).
 */
import { HeldBytes } from './held-bytes';

const LF = 0x0a;
const CR = 0x0d;

/**
 * An event held longer than this without its blank line is a broken upstream, not an answer (OpenAI's and Azure's
 * events are a few KiB): the stream fails, instead of holding it all in memory with backpressure off.
 */
export const MAX_EVENT_BYTES = 4 * 1024 * 1024;

/** Why a stream that started cannot go on; its `code` names the cause in the SSE error event. */
export function streamFault(code: 'EVENT_TOO_LARGE' | 'ENDED_MID_EVENT' | 'ENDED_WITHOUT_DONE', message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** A data line at the start of the held bytes or of any line in them. */
const DATA_LINE = /(?:^|[\r\n])data(?:[:\r\n]|$)/;
/** As the SDK reads it: a data line starting with `[DONE]` ends the stream. */
const DONE = /^data: ?\[DONE\]/;

export class SseFramer {
  /** Bytes of an event whose blank line has not arrived yet. */
  private readonly held = new HeldBytes();
  /** The last two held bytes (a blank line may start in them, across pieces), last first. */
  private prev1: number | undefined;
  private prev2: number | undefined;
  /**
   * The pieces of the last push that passed something on: they start and end on event boundaries, so they hold the
   * last event whole, even when it began in held bytes (kept as they are, not copied). Read when the stream ends.
   */
  private last: Buffer[] | null = null;
  /** A `data: [DONE]` event was passed on: the answer is complete, whatever follows it. */
  private doneSeen = false;

  /**
   * The pieces to send now, in order: held bytes and the chunk up to its last blank line (empty when none). Throws
   * (`EVENT_TOO_LARGE`) when an event grows past MAX_EVENT_BYTES without its blank line.
   */
  push(chunk: Buffer): Buffer[] {
    const end = wholeEventsEnd(chunk, this.prev1, this.prev2);
    if (end === 0) {
      if (chunk.length > 0) this.hold(chunk);
      return [];
    }
    const out = this.held.take();
    out.push(end === chunk.length ? chunk : chunk.subarray(0, end));
    this.last = out;
    if (!this.doneSeen && endsWithDone(out)) this.doneSeen = true;
    this.prev1 = this.prev2 = undefined;
    if (end < chunk.length) this.hold(chunk.subarray(end));
    return out;
  }

  /**
   * At the upstream's clean end: what is left to send. An event with data cut before its blank line (a connection
   * that closed mid-event, a body that ended there) throws `ENDED_MID_EVENT`: a client's parser would drop it
   * silently, and the answer would look complete. A last `data: [DONE]` without its blank line is completed; a cut
   * comment is dropped (a client dispatches nothing for it).
   */
  end(): Buffer[] {
    const held = this.held.take();
    this.prev1 = this.prev2 = undefined;
    if (held.length === 0) return [];
    // After [DONE] a client reads nothing more: what is cut there broke nothing. The LF of its CRLF, come in a read of
    // its own, goes on as sent (a recording proxy compares bytes).
    if (this.done) return held.every(onlyLineEnds) ? held : [];
    const text = Buffer.concat(held).toString('utf8').trim();
    if (DONE.test(text)) {
      this.doneSeen = true;
      return [...held, Buffer.from('\n\n')];
    }
    if (DATA_LINE.test(text)) throw streamFault('ENDED_MID_EVENT', 'The upstream stream ended in the middle of an event.');
    return [];
  }

  /**
   * Whether the last event passed on is `data: [DONE]`, the end OpenAI and Azure always send: a stream that stops
   * without it was cut at an event boundary (the connection closed, a proxy gave up), and looks complete otherwise.
   */
  get done(): boolean {
    // Per push only the last line is looked at (the usual end, cheap on every chunk); at the end, a [DONE] that other
    // lines followed in the same read (a keep-alive comment, `data: [DONE] ` with a blank) is found in the last pieces.
    if (!this.doneSeen && this.last !== null) this.doneSeen = holdsDone(this.last);
    return this.doneSeen;
  }

  /** The pieces that hold the last event passed on, whole: the stream's last (an upstream's error event, say). */
  get lastPieces(): readonly Buffer[] {
    return this.last ?? [];
  }

  private hold(bytes: Buffer): void {
    if (this.held.size + bytes.length > MAX_EVENT_BYTES) throw streamFault('EVENT_TOO_LARGE', `An upstream event grew past ${MAX_EVENT_BYTES} bytes.`);
    this.held.push(bytes);
    const n = bytes.length;
    this.prev2 = n >= 2 ? bytes[n - 2] : this.prev1;
    this.prev1 = bytes[n - 1];
  }
}

/**
 * Whether the last line passed on is `data: [DONE]`, also when it came in two reads (`[DO`, `NE]`). Per push: a look at
 * the last bytes before the line breaks (a `]`?), then at most a few bytes joined.
 */
function endsWithDone(pieces: readonly Buffer[]): boolean {
  const piece = pieces[pieces.length - 1]!;
  let k = piece.length - 1;
  while (k >= 0 && (piece[k] === LF || piece[k] === CR)) k--;
  if (k >= 0 && piece[k] !== 0x5d) return false;
  return DONE.test(lastLine(pieces));
}

/** Longer than `data: [DONE]` with its line breaks: a last line is read only this far back. */
const SHORT_LINE = 32;

/**
 * The last non-blank line of the pieces taken together (their last event's last line), as text, when it is short
 * (`data: [DONE]` is); '' for a longer one. Only the last few bytes are joined, never whole pieces.
 */
function lastLine(pieces: readonly Buffer[]): string {
  const tail: Buffer[] = [];
  let size = 0;
  let i = pieces.length - 1;
  for (; i >= 0 && size < SHORT_LINE; i--) {
    const piece = pieces[i]!;
    const room = SHORT_LINE - size;
    tail.unshift(piece.length > room ? piece.subarray(piece.length - room) : piece);
    size += Math.min(piece.length, room);
  }
  const buf = tail.length === 1 ? tail[0]! : Buffer.concat(tail, size);
  // All of the pieces' bytes are here (none left before, none cut off): their first line starts at 0.
  const whole = i < 0 && size < SHORT_LINE;
  let end = buf.length;
  while (end > 0 && (buf[end - 1] === LF || buf[end - 1] === CR)) end--;
  let start = end;
  while (start > 0 && buf[start - 1] !== LF && buf[start - 1] !== CR) start--;
  return start > 0 || whole ? buf.toString('utf8', start, end) : '';
}

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/**
 * Counts the whole events with data over a body's chunks in order: the first one that answers something (see
 * `unansweredEvents`) is the point where a stream can be committed. Blocks without a `data` line
 * (`: keep-alive` comments, `retry:`, `id:`, a lone `event:`) and stray blank lines do not count: a client's SSE parser
 * (the SDK's, a browser's) dispatches nothing for them, so nothing has been delivered yet and a failure may still fall
 * back.
 */
export class FirstEventScanner {
  /** Whole events with data seen so far. */
  events = 0;
  /** At the body's start: a UTF-8 BOM there is not part of the first line (its bytes may come in separate reads). */
  private atStart = true;
  /** The BOM's bytes matched so far at the start. */
  private bom = 0;
  /** The first bytes of the current line, until it is known whether it is a `data` line (at most 5). */
  private head = '';
  /** Inside a line already classified, whose end has not been seen yet. */
  private midLine = false;
  /** The last byte was a CR: an LF right after it ends the same line. */
  private afterCr = false;
  /** The current block has a `data` line. */
  private hasData = false;

  /** Feeds the next chunk; returns the whole events with data seen so far. */
  push(chunk: Buffer): number {
    const n = chunk.length;
    let i = 0;
    if (this.atStart) {
      while (i < n && this.bom < 3 && chunk[i] === BOM[this.bom]) {
        this.bom++;
        i++;
      }
      if (i === n && this.bom < 3) return this.events;
      this.atStart = false;
      // A start that only looked like a BOM: its bytes begin the first line.
      if (this.bom < 3) this.head = String.fromCharCode(...BOM.subarray(0, this.bom));
    }
    while (i < n) {
      if (this.midLine) {
        // The line ends at its first CR or LF (a CRLF's LF is skipped as the next line's start).
        let end = chunk.indexOf(LF, i);
        const cr = chunk.indexOf(CR, i);
        if (cr >= 0 && (end < 0 || cr < end)) {
          end = cr;
          this.afterCr = true;
        }
        if (end < 0) return this.events;
        this.midLine = false;
        i = end + 1;
        continue;
      }
      const c = chunk[i]!;
      if (this.afterCr) {
        this.afterCr = false;
        if (c === LF) {
          i++;
          continue;
        }
      }
      if (this.head === '' && (c === LF || c === CR)) {
        // A blank line ends the block: an event if it had data, else nothing a client acts on.
        if (this.hasData) {
          this.events++;
          this.hasData = false;
        }
        this.afterCr = c === CR;
        i++;
        continue;
      }
      // Collect the line's first bytes: "data:" or a bare "data" line is a data line (the field may be split).
      while (i < n && this.head.length < 5 && chunk[i] !== LF && chunk[i] !== CR) this.head += String.fromCharCode(chunk[i++]!);
      if (i === n && this.head.length < 5) return this.events;
      if (this.head === 'data:' || (this.head === 'data' && i < n)) this.hasData = true;
      this.head = '';
      this.midLine = true;
    }
    return this.events;
  }
}

/**
 * The offset in `buf` just past its last blank line (`\n\n`, `\r\n\r\n` or `\r\r`), 0 if it has none. A blank line
 * may begin in the held bytes before it: `prev1` is the byte just before `buf`, `prev2` the one before that.
 * Exported for its test only.
 */
export function wholeEventsEnd(buf: Buffer, prev1: number | undefined, prev2: number | undefined): number {
  const at = (k: number): number | undefined => (k >= 0 ? buf[k] : k === -1 ? prev1 : k === -2 ? prev2 : undefined);
  // From the end: a chunk that ends on a boundary (the usual case) is settled by its last bytes. Line ends are found
  // by the native search: walking a 64 KiB event's bytes in JavaScript cost 70 ms of CPU per 50 MB stream.
  let lf = buf.lastIndexOf(LF);
  let cr = buf.lastIndexOf(CR);
  while (lf >= 0 || cr >= 0) {
    const i = Math.max(lf, cr);
    if (i === lf) {
      if (at(i - 1) === LF || (at(i - 1) === CR && at(i - 2) === LF)) return i + 1;
      lf = i > 0 ? buf.lastIndexOf(LF, i - 1) : -1; // a negative offset would count from the end
    } else {
      // A CR right after a line's end is a blank line already (`\n\r`, `\r\n\r`): the event is whole, as for
      // FirstEventScanner and a client's parser, whether or not an LF follows.
      if (at(i - 1) === CR || at(i - 1) === LF) return i + 1;
      cr = i > 0 ? buf.lastIndexOf(CR, i - 1) : -1;
    }
  }
  return 0;
}

const ERROR_KEY = Buffer.from('"error"');
/** An upstream's error message is quoted up to this length (it goes into a log event and an error's message). */
const MAX_ERROR_MESSAGE = 500;

/** The upstream's error event: its `error` member as sent (an object, or a string), and its message. */
export interface UpstreamErrorEvent {
  error: unknown;
  /** The error's message, cut at 500 characters; '' when it has none. */
  message: string;
}

/**
 * The upstream's error event (`data: {"error": {...}}`), which OpenAI may send inside a 200 stream, when the first
 * (or last) whole event with data in `pieces` is one, else null. Only bytes that hold `"error"` are parsed (a word in
 * generated text is escaped, `\"error\"`): the usual stream costs one search per piece, no copy.
 */
export function errorEventIn(pieces: readonly Buffer[], which: 'first' | 'last'): UpstreamErrorEvent | null {
  if (!includesAcross(pieces, ERROR_KEY)) return null;
  const data = eventData(textOf(pieces), which);
  return data === null ? null : errorOf(data);
}

/**
 * The first of the upstream's error events among the whole events in `pieces`, before any `[DONE]`: a stream may go
 * on after one, but the SDK throws at it. Only bytes that hold `"error"` are parsed.
 */
export function firstErrorEventAmong(pieces: readonly Buffer[]): UpstreamErrorEvent | null {
  if (!includesAcross(pieces, ERROR_KEY)) return null;
  for (const data of eventsData(textOf(pieces))) {
    if (isDone(data)) return null;
    const event = errorOf(data);
    if (event) return event;
  }
  return null;
}

/** Whether the whole events in `pieces` include `data: [DONE]`. */
export function holdsDone(pieces: readonly Buffer[]): boolean {
  return includesAcross(pieces, DONE_KEY) && eventsData(textOf(pieces)).some(isDone);
}

/** An event's data as the upstream's error event, or null. */
function errorOf(data: string): UpstreamErrorEvent | null {
  if (!/^\s*\{/.test(data)) return null;
  try {
    const error = (JSON.parse(data) as { error?: unknown }).error;
    // As the SDK reads it (`if (data.error)`): an empty or zero `error` is none.
    if (!error) return null;
    return { error, message: errorMessage(error) };
  } catch {
    return null;
  }
}

/** The message of an upstream's `error` member (an object with `message`, or a string), cut at 500 characters. */
export function errorMessage(error: unknown): string {
  const message = typeof error === 'string' ? error : (error as { message?: unknown } | null)?.message;
  if (typeof message !== 'string') return '';
  return message.length > MAX_ERROR_MESSAGE ? `${message.slice(0, MAX_ERROR_MESSAGE)}...` : message;
}

/** The pieces taken together as UTF-8 text (a single piece is not copied first). */
function textOf(pieces: readonly Buffer[]): string {
  return (pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces)).toString('utf8');
}

/**
 * Whether `key` is in the pieces taken together, also across their boundaries, without joining them. `found` is the
 * search within one buffer (a faster one for a given key, e.g. SecretScan's).
 */
export function includesAcross(pieces: readonly Buffer[], key: Buffer, found?: (buf: Buffer) => boolean): boolean {
  const keep = key.length - 1;
  // The last `keep` bytes before the current piece, when they hold the key's first byte (a key split across pieces
  // starts there): only then is a boundary joined and searched.
  let carry: Buffer | null = null;
  for (const piece of pieces) {
    // No closure per call for the plain search: this runs on every chunk of a stream.
    if (found ? found(piece) : piece.includes(key)) return true;
    if (carry !== null) {
      const across = Buffer.concat([carry, piece.subarray(0, keep)]);
      if (found ? found(across) : across.includes(key)) return true;
    }
    if (pieces.length === 1) return false;
    const tail: Buffer = piece.length >= keep ? piece.subarray(piece.length - keep) : Buffer.concat(carry ? [carry, piece] : [piece]).subarray(-keep);
    carry = tail.includes(key[0]!) ? tail : null;
  }
  return false;
}

/**
 * The data of the first whole event with data that is no prompt-filter verdict (or of the last one before `[DONE]`):
 * its data lines joined, as a client reads them.
 */
function eventData(text: string, which: 'first' | 'last'): string | null {
  const events = eventsData(text);
  if (which === 'first') return events.find((data) => !isPreamble(data)) ?? null;
  // A client stops reading at [DONE] (the SDK does): what follows it was never read.
  const end = events.findIndex(isDone);
  return (end < 0 ? events : events.slice(0, end)).pop() ?? null;
}

const isDone = (data: string): boolean => data.startsWith('[DONE]');

/** The data of every whole event with data in `text`, in order. */
export function eventsData(text: string): string[] {
  const events: string[] = [];
  let lines: string[] | null = null;
  // A BOM before the first line is not part of it (FirstEventScanner skips it too).
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const all = text.split(/\r\n|\r|\n/);
  all.pop(); // what follows the last line break: a line not ended yet, or nothing
  for (const line of all) {
    if (line === '') {
      if (lines !== null) events.push(lines.join('\n'));
      lines = null;
    } else if (line.startsWith('data:') || line === 'data') {
      (lines ??= []).push(line.length <= 5 ? '' : line.slice(line[5] === ' ' ? 6 : 5));
    }
  }
  return events;
}

const PROMPT_FILTER_KEY = Buffer.from('"prompt_filter_results"');
const DONE_KEY = Buffer.from('[DONE]');

/**
 * How many of the whole events with data in `pieces` answer nothing before the first that does: Azure's
 * prompt-filter verdict (an event with `prompt_filter_results`, no choices, no usage and no error, sent before anything
 * is generated); Infinity when `data: [DONE]` comes first (a client would read an empty, successful stream). The
 * stream is not committed on them: a stream that stalls, fails or ends after them may still fall back. Only bytes
 * that hold `"prompt_filter_results"` or `[DONE]` are parsed (OpenAI's first events cost two searches).
 */
export function unansweredEvents(pieces: readonly Buffer[]): number {
  if (!includesAcross(pieces, PROMPT_FILTER_KEY) && !includesAcross(pieces, DONE_KEY)) return 0;
  const events = eventsData(textOf(pieces));
  let n = 0;
  for (const data of events) {
    if (isDone(data)) return Infinity;
    if (!isPreamble(data)) break;
    n++;
  }
  return n;
}

function isPreamble(data: string): boolean {
  if (!data.includes('"prompt_filter_results"')) return false;
  try {
    const event = JSON.parse(data) as { choices?: unknown; prompt_filter_results?: unknown; usage?: unknown; error?: unknown };
    return Array.isArray(event.choices) && event.choices.length === 0 && event.prompt_filter_results !== undefined && event.usage == null && event.error == null;
  } catch {
    return false;
  }
}

/** Bytes that are all CR or LF. */
function onlyLineEnds(piece: Buffer): boolean {
  for (const byte of piece) if (byte !== 0x0d && byte !== 0x0a) return false;
  return true;
}
