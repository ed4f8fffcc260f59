import { HeldBytes } from './held-bytes';

describe('HeldBytes', () => {
  it('keeps arrival order when a large piece follows small ones being copied together (a trickle, then a full read)', () => {
    const held = new HeldBytes();
    const input: Buffer[] = [];
    // 16 pieces kept as they came, then small ones copied into a block, then a piece large enough to be kept as is.
    for (let i = 0; i < 20; i++) input.push(Buffer.from(`<${String(i).padStart(2, '0')}>`));
    input.push(Buffer.alloc(2048, 'L'));
    input.push(Buffer.from('<end>'));
    for (const piece of input) held.push(piece);
    const expected = Buffer.concat(input);
    expect(held.size).toBe(expected.length);
    expect(Buffer.concat(held.view()).equals(expected)).toBe(true);
    expect(Buffer.concat(held.take()).equals(expected)).toBe(true);
    expect(held.size).toBe(0);
  });
});
