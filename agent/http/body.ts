import type { IncomingMessage } from 'node:http';
import { HttpError } from './errors.js';

/**
 * A body that stops arriving for this long is refused (408): a client whose link dropped in the
 * middle of a request would otherwise hold its share of the body budget, and with it every other
 * client's readings, until the server's request timeout (two minutes).
 */
export const BODY_IDLE_MS = 15_000;

/**
 * And a body must keep coming at this average pace (after the first BODY_IDLE_MS, the body has
 * one more second for every this many bytes, as Apache's mod_reqtimeout MinRate): a client dripping
 * a byte every few seconds would otherwise never stall long enough for BODY_IDLE_MS, and hold its
 * share of the budget until the request timeout. 500 B/s is far below any link that can send a
 * useful batch of readings within the request timeout.
 */
export const BODY_MIN_BYTES_PER_SECOND = 500;

/**
 * Reads a request body up to `limit` bytes; answers 413 past it (without reading the rest), 408 when it stalls or crawls.
 * `take`, when given, is called with each piece's size before it is kept; what it throws refuses the body.
 * `limitName`, when the limit is a setting, names it in the 413 (an operator who raised it must see which one counts).
 */
export async function readBody(req: IncomingMessage, limit: number, take?: (bytes: number) => void, limitName?: string): Promise<Buffer> {
  const over = `over the limit of ${limit} bytes${limitName === undefined ? '' : ` (${limitName}); send it in smaller requests, or raise the limit`}`;
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    throw new HttpError(413, 'PW_BODY_TOO_LARGE', `body of ${declared} bytes is ${over}`);
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (err: Error): void => {
      done();
      req.pause();
      reject(err);
    };
    const started = performance.now();
    let lastByte = started;
    // Due at whichever comes first: BODY_IDLE_MS without a byte, or the pace falling under the
    // minimum. Both only move later as bytes come, so one timer armed for the deadline it saw is
    // armed again, when it fires early, for the deadline then: not a new timer at every chunk.
    const deadline = (): { at: number; idle: boolean } => {
      const idleAt = lastByte + BODY_IDLE_MS;
      const paceAt = started + BODY_IDLE_MS + (size / BODY_MIN_BYTES_PER_SECOND) * 1000;
      return { at: Math.min(idleAt, paceAt), idle: idleAt <= paceAt };
    };
    const arm = (): NodeJS.Timeout => setTimeout(check, Math.max(0, deadline().at - performance.now()));
    function check(): void {
      const { at, idle } = deadline();
      if (at > performance.now()) {
        timer = arm();
        return;
      }
      const got = `${size} bytes in ${((performance.now() - started) / 1000).toFixed(1)} s`;
      fail(
        new HttpError(
          408,
          'PW_BODY_TIMEOUT',
          idle
            ? `no byte of the body arrived for ${BODY_IDLE_MS / 1000} s (${got}); send the body without pausing`
            : `the body came too slowly (${got}, under ${BODY_MIN_BYTES_PER_SECOND} bytes/s); send it without pausing`,
        ),
      );
    }
    let timer = arm();
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) return fail(new HttpError(413, 'PW_BODY_TOO_LARGE', `body is ${over}`));
      try {
        take?.(chunk.length);
      } catch (err) {
        return fail(err as Error);
      }
      chunks.push(chunk);
      lastByte = performance.now();
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
