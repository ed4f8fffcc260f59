/**
 * What cancelling an upstream request needs of a signal: the part of AbortSignal the engine and the upstream client
 * use. A Node AbortSignal fits it, and so does the engine's lighter `Cancellation`.
 */
export interface CancelSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * One request's cancellation, as an AbortController and its signal in one object but without EventTarget: in a CPU
 * profile of JSON requests through Koa, creating an AbortController and adding and removing its listeners took about
 * 5 % of the server's time (issue 5); this is a flag, a reason and an array. Listeners run once, on the first abort.
 */
export class Cancellation implements CancelSignal {
  aborted = false;
  reason: unknown = undefined;
  private listeners: Array<() => void> | null = null;

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners;
    this.listeners = null;
    if (listeners) for (const listener of listeners) listener();
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    // Like AbortSignal: a listener added after the abort is never called.
    if (!this.aborted) (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const index = this.listeners?.indexOf(listener) ?? -1;
    if (index >= 0) this.listeners!.splice(index, 1);
  }
}
