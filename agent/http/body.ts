import type { IncomingMessage } from 'node:http';
import { HttpError } from './errors.js';

/**
 * A body that stops arriving for this long is refused (408): a client whose link dropped in the
 * middle of a request would otherwise hold its share of the body budget, and with it every other
 * client's readings, until the server's request timeout (two minutes).
 */
export const BODY_IDLE_MS = 15_000;

/** Reads a request body up to `limit` bytes; answers 413 past it (without reading the rest), 408 when it stalls. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    throw new HttpError(413, 'PW_BODY_TOO_LARGE', `body of ${declared} bytes is over the limit of ${limit} bytes`);
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (err: Error): void => {
      done();
      req.pause();
      reject(err);
    };
    const timer = setTimeout(
      () => fail(new HttpError(408, 'PW_BODY_TIMEOUT', `no byte of the body arrived for ${BODY_IDLE_MS / 1000} s after ${size} bytes; send the body without pausing`)),
      BODY_IDLE_MS,
    );
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) return fail(new HttpError(413, 'PW_BODY_TOO_LARGE', `body is over the limit of ${limit} bytes`));
      chunks.push(chunk);
      timer.refresh();
    };
    const onEnd = (): void => {
      done();
      resolve(Buffer.concat(chunks, size));
    };
    const onClose = (): void => {
      if (!req.complete) fail(new Error('the client closed the connection before the end of the body'));
    };
    function done(): void {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', fail).off('close', onClose);
    }
    req.on('data', onData).on('end', onEnd).on('error', fail).on('close', onClose);
  });
}
