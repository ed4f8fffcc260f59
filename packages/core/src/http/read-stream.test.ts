import { Readable } from 'node:stream';
import { readStream } from './read-stream';

describe('readStream', () => {
  it('joins a body sent in thousands of 1-byte chunks (copied together as they come) in order', async () => {
    const text = JSON.stringify({ messages: [{ role: 'user', content: 'é'.repeat(3000) }] });
    const bytes = Buffer.from(text);
    const pieces = Array.from(bytes, (b) => Buffer.from([b]));
    await expect(readStream(Readable.from(pieces, { objectMode: false })).then((b) => b.toString())).resolves.toBe(text);
  });

  it('rejects past maxBytes with the given error', async () => {
    const pieces = Array.from({ length: 100 }, () => Buffer.from('x'));
    await expect(readStream(Readable.from(pieces), 50, () => new Error('too large'))).rejects.toThrow('too large');
  });
});
