/**
 * HTTP content codings Switchyard can undo, for request bodies (streamed, as express.json() inflates them) and for
 * the body of an upstream that compressed despite `accept-encoding: identity` (whole).
 */
import type { Transform } from 'node:stream';
import {
  brotliDecompressSync, createBrotliDecompress, createGunzip, createInflate, gunzipSync, inflateSync, type ZlibOptions,
} from 'node:zlib';

export interface Codec {
  stream(): Transform;
  whole(body: Buffer, options: ZlibOptions): Buffer;
}

const gzip: Codec = { stream: () => createGunzip(), whole: (body, options) => gunzipSync(body, options) };
const CODECS: Readonly<Record<string, Codec>> = {
  gzip,
  'x-gzip': gzip,
  deflate: { stream: () => createInflate(), whole: (body, options) => inflateSync(body, options) },
  br: { stream: () => createBrotliDecompress(), whole: (body, options) => brotliDecompressSync(body, options) },
};

/** A `content-encoding` value, trimmed and lower-case; null for none or `identity`. */
export function contentCoding(value: string | string[] | undefined): string | null {
  const coding = typeof value === 'string' ? value.trim().toLowerCase() : '';
  return coding === '' || coding === 'identity' ? null : coding;
}

/** The codec of a coding from `contentCoding`, or undefined for one Switchyard cannot undo. */
export function codecFor(coding: string): Codec | undefined {
  return Object.hasOwn(CODECS, coding) ? CODECS[coding] : undefined;
}
