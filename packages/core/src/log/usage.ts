import { eventsData, firstErrorEventAmong, holdsDone, includesAcross } from '../http/sse-framer';
import type { TokenUsage } from './log-event';

const USAGE_KEY = '"usage"';

/**
 * Finds the last `"usage": {...}` object in a JSON body or an SSE tail without parsing the whole document:
 * OpenAI puts usage last (the final chunk of a stream), so a reverse search is enough and costs little.
 */
export function extractUsage(data: Buffer | string): TokenUsage | null {
  return readUsage(data)?.usage ?? null;
}

/** Usage, and of its prompt tokens those read from OpenAI's prompt cache (`prompt_tokens_details.cached_tokens`). */
export interface UsageRead {
  usage: TokenUsage;
  cachedTokens: number;
}

export function readUsage(data: Buffer | string): UsageRead | null {
  // Decode from the last occurrence only: a long body's content never needs to become a string.
  const last = typeof data === 'string' ? -1 : data.lastIndexOf(USAGE_KEY);
  const text = typeof data === 'string' ? data : last < 0 ? '' : data.toString('latin1', last);
  const found = usageIn(text);
  return found || typeof data === 'string' || last <= 0 ? found : usageIn(data.toString('latin1'));
}

function usageIn(text: string): UsageRead | null {
  let at = text.lastIndexOf(USAGE_KEY);
  while (at >= 0) {
    const usage = usageAt(text, at + USAGE_KEY.length);
    if (usage) return usage;
    at = at === 0 ? -1 : text.lastIndexOf(USAGE_KEY, at - 1);
  }
  return null;
}

function usageAt(text: string, from: number): UsageRead | null {
  let i = from;
  while (text[i] === ' ' || text[i] === ':') i++;
  if (text[i] !== '{') return null; // `"usage": null` in intermediate chunks
  let depth = 0;
  for (let j = i; j < text.length; j++) {
    const c = text[j];
    if (c === '{') depth++;
    else if (c === '}' && --depth === 0) {
      try {
        const u = JSON.parse(text.slice(i, j + 1)) as Partial<TokenUsage> & { prompt_tokens_details?: { cached_tokens?: unknown } | null };
        // Counts: a negative or non-finite one (an OpenAI-compatible server's bug) would be priced and counted as it
        // is, and a counter (Prometheus) cannot go down: such a usage is unknown.
        if (!isCount(u.prompt_tokens) || !isCount(u.completion_tokens)) return null;
        const total = isCount(u.total_tokens) ? u.total_tokens : u.prompt_tokens + u.completion_tokens;
        const cached = u.prompt_tokens_details?.cached_tokens;
        return {
          usage: { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: total },
          cachedTokens: isCount(cached) && cached > 0 ? Math.min(cached, u.prompt_tokens) : 0,
        };
      } catch {
        return null;
      }
    }
  }
  return null;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

const MODEL_KEY = '"model"';
/**
 * Values "model" passed over in one direction: a logprobs token "model" is one, two with its top_logprobs entry (the
 * tokens of one list differ). Bounded, as a 64 MiB body of them would hold the event loop for a second.
 */
const MAX_MODEL_VALUES = 10_000;

/**
 * The model the upstream says produced the response (`gpt-4o-2024-08-06`), unlike the model the client asked for:
 * what a price or a metric label may trust. OpenAI and Azure write `"model": "..."` at the top level of each body
 * and chunk; a `model` inside generated content is escaped (`\"model\"`) and cannot match. A JSON body is read
 * from its first such key (OpenAI's top level, before any nested object), else from its end: Azure writes keys in
 * alphabetical order, so `model` comes after `choices` and before only `object`, `prompt_filter_results`,
 * `system_fingerprint` and `usage`. A stream's tail is read from its last chunk backwards, past Azure's
 * content-filter chunks, whose model is empty.
 */
export function extractResponseModel(data: Buffer, from: 'start' | 'end'): string | null {
  return modelKey(data, from) ?? (from === 'start' ? modelKey(data, 'end') : null);
}

function modelKey(data: Buffer, from: 'start' | 'end'): string | null {
  const next = (at: number): number =>
    from === 'start' ? data.indexOf(MODEL_KEY, at + 1) : at === 0 ? -1 : data.lastIndexOf(MODEL_KEY, at - 1);
  let at = from === 'start' ? data.indexOf(MODEL_KEY) : data.lastIndexOf(MODEL_KEY);
  // Keys and values are bounded apart: with logprobs, each token "model" in `choices` is a value.
  for (let keys = 0, values = 0; at >= 0 && keys < 16 && values < MAX_MODEL_VALUES; at = next(at)) {
    let i = skipSpace(data, at + MODEL_KEY.length);
    if (data[i] !== 0x3a) {
      values++; // not ':': this "model" was a value, not a key
      continue;
    }
    keys++;
    i = skipSpace(data, i + 1);
    if (data[i] !== 0x22) continue;
    const end = data.indexOf(0x22, i + 1);
    if (end < 0 || end - i > 200) return null;
    const model = data.toString('utf8', i + 1, end);
    if (model !== '' && !model.includes('\\')) return model;
  }
  return null;
}

function skipSpace(data: Buffer, i: number): number {
  while (data[i] === 0x20 || data[i] === 0x0a || data[i] === 0x0d || data[i] === 0x09) i++;
  return i;
}

/**
 * Adds the choice indexes of the chunks in `text`, and of those with a finish_reason, to the two sets: only those
 * under `n` (an index left out is the first), so that sets kept over a whole stream stay as small as the choices asked
 * for, whatever indexes an upstream invents.
 */
function noteChoices(text: string, n: number, seen: Set<unknown>, finished: Set<unknown>): { seen: Set<unknown>; finished: Set<unknown> } {
  for (const data of eventsData(text)) {
    let chunk: { choices?: unknown } | null;
    try {
      chunk = JSON.parse(data) as { choices?: unknown } | null;
    } catch {
      continue; // [DONE], or a tail event cut short: not a chunk
    }
    for (const choice of Array.isArray(chunk?.choices) ? (chunk.choices as Array<{ index?: unknown; finish_reason?: unknown } | null>) : []) {
      const index = choice?.index ?? 0;
      if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= n) continue;
      seen.add(index);
      if (choice?.finish_reason) finished.add(index);
    }
  }
  return { seen, finished };
}

const TAIL_BYTES = 4096;
/** A finish_reason that is set (`"finish_reason":null` is not), as JSON writers space it or not. */
const FINISHED = [Buffer.from('"finish_reason":"'), Buffer.from('"finish_reason": "')];

/**
 * What follows a stream's last finish_reason (a usage chunk and [DONE], a few hundred bytes, at once), read for the
 * log after a client that stopped there: at most this much, for at most this long.
 */
export const REST_AFTER_ANSWER = { bytes: 64 * 1024, ms: 1000 };

/** Up to this, the bytes a tail searches are joined first (about the tail's cut, for OpenAI's small events). */
const JOIN_MAX_BYTES = 4 * TAIL_BYTES;

/** A copy of the last `n` bytes of the pieces taken together (a copy: the pieces are not kept alive by it). */
function lastBytes(pieces: readonly Buffer[], n: number): Buffer {
  const tail: Buffer[] = [];
  let size = 0;
  for (let i = pieces.length - 1; i >= 0 && size < n; i--) {
    const piece = pieces[i]!;
    const take = Math.min(piece.length, n - size);
    tail.unshift(piece.subarray(piece.length - take));
    size += take;
  }
  return Buffer.concat(tail, size);
}

/** Keeps the last few KiB of a stream (references, no copies) to read the final usage chunk at the end. */
export class StreamTail {
  private chunks: Buffer[] = [];
  private bytes = 0;
  /** The message of the first error event passed on ('' for one without a message): what the client's SDK threw. */
  private firstError: string | null = null;
  /**
   * For a request with `n` > 1: every choice index seen, and those finished, over the whole stream. One choice's burst
   * (logprobs make a chunk 2 KB) can push another's chunks out of the tail, which then looks complete without it.
   */
  private readonly choices: { seen: Set<unknown>; finished: Set<unknown> } | null;
  /** One choice: its finish_reason (a string) was in chunks that left the tail. */
  private finishedBefore = false;
  /** The last bytes dropped from the tail (a finish_reason's key may start there). */
  private droppedEnd: Buffer = Buffer.alloc(0);

  /** `n`: the choices the request asked for (1 when absent). */
  constructor(private readonly n = 1) {
    this.choices = n > 1 ? { seen: new Set(), finished: new Set() } : null;
  }

  /** Feeds whole events as they are passed on: an error event is noted wherever it is (more may follow it). */
  pushEvents(pieces: readonly Buffer[]): void {
    const event = this.firstError === null ? firstErrorEventAmong(pieces) : null;
    // Not one after [DONE], where a client stops reading (the tail still holds it: little follows a [DONE]).
    if (event && !holdsDone(this.chunks)) this.firstError = event.message;
    // Read as one text: together the pieces are whole events, alone they may not be (bytes held from the last read,
    // then the rest of an event).
    if (this.choices) noteChoices((pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces)).toString('utf8'), this.n, this.choices.seen, this.choices.finished);
    for (const piece of pieces) this.push(piece);
  }

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    // Cut back to TAIL_BYTES once it holds twice that: the chunks dropped are searched in one go, not one by one.
    if (this.bytes < 2 * TAIL_BYTES) return;
    const dropped: Buffer[] = [];
    while (this.chunks.length > 1 && this.bytes - this.chunks[0]!.length >= TAIL_BYTES) {
      const first = this.chunks.shift()!;
      this.bytes -= first.length;
      dropped.push(first);
    }
    // One choice's finish_reason may be followed by more than the tail holds: Azure's asynchronous content filter
    // sends a chunk of filter offsets per window after it. (JSON text escapes a quote, so none is in content.)
    if (this.choices === null && !this.finishedBefore && dropped.length > 0) {
      // With the end of the last batch dropped and the start of the first piece kept: a finish_reason split across
      // the upstream's reads, however small, is seen whole.
      const gone = [this.droppedEnd, ...dropped];
      // The kept tail may start inside the event the cut went through: that event, up to its end, is searched too
      // (the tail's own reading parses whole events only). Small events are joined (one search each, not one per
      // boundary); large ones are searched piece by piece and across their boundaries: joining 64 KiB events copied
      // the whole stream twice.
      const searched = [...gone, ...this.untilFirstEventEnd()];
      const size = searched.reduce((n, piece) => n + piece.length, 0);
      const text = size <= JOIN_MAX_BYTES ? [Buffer.concat(searched, size)] : searched;
      this.finishedBefore = FINISHED.some((key) => includesAcross(text, key));
      this.droppedEnd = lastBytes(gone, FINISHED[1]!.length - 1);
    }
  }

  /** The kept chunks up to the end of their first event (a blank line), at most the whole tail. */
  private untilFirstEventEnd(): Buffer[] {
    const out: Buffer[] = [];
    for (const chunk of this.chunks) {
      const end = chunk.indexOf('\n\n');
      if (end >= 0) {
        out.push(chunk.subarray(0, end));
        break;
      }
      out.push(chunk);
    }
    return out;
  }

  /**
   * Whether the events passed on so far end the answer: every choice in the last chunks has its finish_reason (and no
   * error event came). A client that stops there (`if (chunk.choices[0]?.finish_reason) break`) had all of it.
   */
  answerComplete(): boolean {
    if (this.firstError !== null || this.chunks.length === 0) return false;
    if (this.finishedBefore) return true;
    // One choice: its finish_reason is in the last events (or was, before filter annotations pushed it out of the
    // tail), as nothing of it follows; read from the tail, any index counts (a second choice where one was asked for
    // is one more to finish). Several: seen over the whole stream, and all `n` of them (one may not have started when
    // another finished).
    const { seen, finished } = this.choices ?? noteChoices(Buffer.concat(this.chunks, this.bytes).toString('utf8'), Infinity, new Set(), new Set());
    return seen.size > 0 && finished.size === seen.size && finished.size >= this.n;
  }

  /** The usage and the reporting model of the stream's last chunks, the message of its first error event, and those chunks. */
  read(): { usage: UsageRead | null; model: string | null; errorEvent: string | null; bytes: Buffer | null } {
    if (this.chunks.length === 0) return { usage: null, model: null, errorEvent: null, bytes: null };
    const tail = Buffer.concat(this.chunks, this.bytes);
    // A usage chunk written over several `data:` lines (OpenAI-compatible proxies do) is read from the events' data.
    const usage = readUsage(tail) ?? (tail.includes(USAGE_KEY) ? readUsage(eventsData(tail.toString('utf8')).join('\n')) : null);
    return { usage, model: extractResponseModel(tail, 'end'), errorEvent: this.firstError, bytes: tail };
  }
}
