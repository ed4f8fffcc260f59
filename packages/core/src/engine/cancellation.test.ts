import { Cancellation } from './cancellation';

describe('Cancellation', () => {
  it('runs each listener once, on the first abort, and keeps the first reason', () => {
    const cancel = new Cancellation();
    const calls: unknown[] = [];
    cancel.addEventListener('abort', () => calls.push(cancel.reason));
    cancel.abort('first');
    cancel.abort('second');
    expect(cancel.aborted).toBe(true);
    expect(cancel.reason).toBe('first');
    expect(calls).toEqual(['first']);
  });

  it('never calls a listener removed before the abort, nor one added after it', () => {
    const cancel = new Cancellation();
    const removed = jest.fn();
    const kept = jest.fn();
    cancel.addEventListener('abort', removed);
    cancel.addEventListener('abort', kept);
    cancel.removeEventListener('abort', removed);
    cancel.abort(new Error('gone'));
    const late = jest.fn();
    cancel.addEventListener('abort', late);
    expect(removed).not.toHaveBeenCalled();
    expect(kept).toHaveBeenCalledTimes(1);
    expect(late).not.toHaveBeenCalled();
  });

  it('a listener that removes itself while the abort runs does not disturb the next one', () => {
    const cancel = new Cancellation();
    const second = jest.fn();
    const first: jest.Mock<void, []> = jest.fn((): void => cancel.removeEventListener('abort', first));
    cancel.addEventListener('abort', first);
    cancel.addEventListener('abort', second);
    cancel.abort('x');
    expect(first).toHaveBeenCalledTimes(1);
    expect(second).toHaveBeenCalledTimes(1);
  });
});
