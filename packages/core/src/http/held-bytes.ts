/**
 * Bytes held in arrival order (a body being read, an event waiting for its blank line). The usual few pieces are kept
 * as they came, without a copy; past that, small pieces are copied together, so an upstream that trickles a byte per
 * packet costs memory in bytes, not in a Buffer object per byte (~100 bytes each): the byte caps then bound memory.
 */

/** Pieces kept as they came before small ones are copied together. */
const DIRECT_PIECES = 16;
/** A piece at least this large is kept as it came, whatever the count. */
const SMALL_PIECE = 1024;
/** Size of the buffer small pieces are copied into. */
const BLOCK_BYTES = 8 * 1024;

export class HeldBytes {
  private pieces: Buffer[] = [];
  /** Where small pieces are being copied to, and how much of it is used. */
  private block: Buffer | null = null;
  private used = 0;
  /** Bytes held. */
  size = 0;

  push(piece: Buffer): void {
    this.size += piece.length;
    if (this.pieces.length < DIRECT_PIECES || piece.length >= SMALL_PIECE) {
      this.seal();
      this.pieces.push(piece);
      return;
    }
    if (!this.block || this.used + piece.length > this.block.length) {
      this.seal();
      this.block = Buffer.allocUnsafe(BLOCK_BYTES);
    }
    piece.copy(this.block, this.used);
    this.used += piece.length;
  }

  /** The pieces held, in order (still held). */
  view(): Buffer[] {
    this.seal();
    return this.pieces;
  }

  /** The pieces held, in order; holds nothing after. */
  take(): Buffer[] {
    const pieces = this.view();
    this.clear();
    return pieces;
  }

  clear(): void {
    this.pieces = [];
    this.block = null;
    this.used = 0;
    this.size = 0;
  }

  /** Ends the block being filled: what it holds becomes a piece, and the next small piece starts a new block. */
  private seal(): void {
    if (this.used > 0) this.pieces.push(this.block!.subarray(0, this.used));
    this.block = null;
    this.used = 0;
  }
}
