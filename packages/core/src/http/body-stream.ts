/**
 * A streamed upstream body handed to one consumer by callbacks. Each chunk goes from undici's parser straight to
 * the consumer (the Node bridge writes it to the client in the same call): no Readable in between, whose buffer,
 * state machine and events cost several per cent of a stream's CPU (issue 5). `toReadable` makes one where a
 * Readable is wanted (the in-process client's async iteration).
 */
import { Readable } from 'node:stream';

export interface BodyConsumer {
  /** One chunk. Returning false pauses the upstream until `BodyStream.resume()` (backpressure). */
  data(chunk: Buffer): boolean;
  /** The body ended cleanly. */
  end(): void;
  /** The upstream failed mid-body. */
  error(err: Error): void;
}

export interface BodyStream {
  /** Starts delivery, once: chunks that already arrived are delivered at once, the rest as they come. */
  consume(consumer: BodyConsumer): void;
  /** Resumes a delivery paused by the consumer's `false`. */
  resume(): void;
  /** Stops delivery for good; aborts the upstream request unless the body already ended. */
  destroy(err?: Error): void;
  readonly destroyed: boolean;
}

/** The body as a Readable with backpressure; destroying the Readable destroys the body (aborting the upstream). */
export function toReadable(body: BodyStream): Readable {
  const readable = new Readable({
    read: () => body.resume(),
    destroy: (err, callback) => {
      body.destroy(err ?? undefined);
      callback(err);
    },
  });
  body.consume({
    data: (chunk) => readable.push(chunk),
    end: () => readable.push(null),
    error: (err) => readable.destroy(err),
  });
  return readable;
}
