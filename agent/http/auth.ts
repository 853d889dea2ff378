import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { HttpError } from './errors.js';

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

export function isLoopback(req: IncomingMessage): boolean {
  const addr = req.socket.remoteAddress ?? '';
  return LOOPBACK.has(addr) || addr.startsWith('127.') || addr.startsWith('::ffff:127.');
}

/** Constant-time comparison of two secrets (hashing first makes the lengths equal). */
export function secretsEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/**
 * With a token configured, every protected route needs `Authorization: Bearer <token>`.
 * Without one, protected routes answer loopback clients only.
 */
export function authorize(req: IncomingMessage, token: string | undefined): void {
  if (token === undefined) {
    if (isLoopback(req)) return;
    throw new HttpError(403, 'PW_FORBIDDEN', 'no status token is configured, so data endpoints answer only on the gateway itself (loopback); set PUMPWATCH_STATUS_TOKEN to allow remote access');
  }
  const header = req.headers.authorization ?? '';
  const match = /^Bearer\s+(.+)$/i.exec(header);
  if (!match) throw new HttpError(401, 'PW_UNAUTHORIZED', 'missing bearer token (Authorization: Bearer <status token>)', { wwwAuthenticate: true });
  if (!secretsEqual(match[1]!.trim(), token)) throw new HttpError(401, 'PW_UNAUTHORIZED', 'wrong status token', { wwwAuthenticate: true });
}
