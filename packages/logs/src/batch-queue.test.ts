import { BatchQueue } from './batch-queue';

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('BatchQueue', () => {
  it('hands a burst over in batches of at most maxBatch, one per turn of the event loop, other work between them', async () => {
    const seen: Array<number | string> = [];
    const queue = new BatchQueue<number>((batch) => seen.push(batch.length), { delayMs: 100, maxBatch: 200 });
    for (let i = 0; i < 500; i++) queue.push(i);
    setImmediate(() => seen.push('other work'));
    for (let i = 0; i < 5; i++) await tick();
    expect(seen).toEqual([200, 'other work', 200, 100]);
    expect(queue.size).toBe(0);
  });

  it('flush() hands everything queued over at once, still in batches of at most maxBatch, in order', () => {
    const batches: number[][] = [];
    const queue = new BatchQueue<number>((batch) => batches.push(batch), { delayMs: 100, maxBatch: 200 });
    for (let i = 0; i < 450; i++) queue.push(i);
    queue.flush();
    expect(batches.map((b) => b.length)).toEqual([200, 200, 50]);
    expect(batches.flat()).toEqual(Array.from({ length: 450 }, (_, i) => i));
  });
});
