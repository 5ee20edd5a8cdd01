/**
 * Request bodies as raw bytes, with the size limit enforced while reading. An
 * oversized body is still read to its end (up to a bound) before the 413 goes out:
 * clients such as the AWS SDK upload the whole body before reading the response, and
 * closing on them mid-upload turns a clear 413 into a broken-pipe error.
 */
import type { FastifyInstance } from 'fastify';

/** Past this many times the limit, stop draining and drop the connection. */
const DRAIN_FACTOR = 16;

export class BodyTooLargeError extends Error {
  readonly code = 'FST_ERR_CTP_BODY_TOO_LARGE';
  readonly statusCode = 413;

  constructor(readonly limit: number) {
    super(`body larger than ${limit} bytes`);
  }
}

/** The limit is the route's `bodyLimit` (the server's default unless a route sets its own). */
export function registerRawBodyParser(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (request, payload, done) => {
    const limit = request.routeOptions.bodyLimit;
    const chunks: Buffer[] = [];
    let size = 0;
    payload.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else if (size > limit * DRAIN_FACTOR) request.raw.destroy();
    });
    payload.on('end', () => {
      if (size > limit) done(new BodyTooLargeError(limit), undefined);
      else done(null, Buffer.concat(chunks, size));
    });
    payload.on('error', (err) => done(err, undefined));
  });
}
