import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { HttpError } from './errors.js';

/**
 * The shortest status token taken without a warning (deployment/render.sh refuses a shorter one):
 * 32 characters, as `openssl rand -hex 16` gives at the least (`openssl rand -hex 32` gives 64). The
 * token crosses the site's network with every request and guards writes (readings, labels that
 * take readings out of training); a short one is guessed.
 */
export const STATUS_TOKEN_MIN_LENGTH = 32;

/** Why `token` is too short (its length and the minimum, never the token), or null. */
export function shortTokenProblem(token: string): string | null {
  if (token.length >= STATUS_TOKEN_MIN_LENGTH) return null;
  return `PUMPWATCH_STATUS_TOKEN has ${token.length} character${token.length === 1 ? '' : 's'}, fewer than ${STATUS_TOKEN_MIN_LENGTH}: a short token is guessed; make one with openssl rand -hex 32`;
}

/**
 * Why a request was refused by the access checks, for the log and the counters (auth-failures.ts):
 * - `missing-token`, `wrong-token`: a token is configured and the request had none, or another;
 * - `not-loopback`: no token is configured and the client is not on the gateway;
 * - `host-name`: no token, on the gateway, but addressed by a name (DNS rebinding);
 * - `cross-origin`: a browser page of another origin (Origin, Sec-Fetch-Site).
 */
export const AUTH_FAILURE_REASONS = ['missing-token', 'wrong-token', 'not-loopback', 'host-name', 'cross-origin'] as const;
export type AuthFailureReason = (typeof AUTH_FAILURE_REASONS)[number];

/** A refusal of the access checks (401, 403): an HttpError that says which check refused it. */
export class AuthRefusal extends HttpError {
  constructor(
    status: number,
    code: string,
    message: string,
    readonly reason: AuthFailureReason,
    extra: Record<string, unknown> = {},
  ) {
    super(status, code, message, extra);
  }
}

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);
/** Methods a cross-site page can send without a preflight, and that change nothing here. */
const SAFE_METHODS = new Set(['GET', 'HEAD']);

export function isLoopback(req: IncomingMessage): boolean {
  const addr = req.socket.remoteAddress ?? '';
  return LOOPBACK.has(addr) || addr.startsWith('127.') || addr.startsWith('::ffff:127.');
}

/** The host name of a Host header (`gw:8080` → `gw`, `[::1]:8080` → `::1`), lower case; null when unreadable. */
function hostName(host: string): string | null {
  try {
    return new URL(`http://${host}`).hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  } catch {
    return null;
  }
}

/**
 * A name a DNS-rebinding page cannot own: `localhost` or an IP address. Without a token the data
 * answers loopback clients only, and a browser on the gateway is one: a page of another site whose
 * name was re-pointed at 127.0.0.1 would otherwise read and write it as its own origin.
 */
function isLocalName(req: IncomingMessage): boolean {
  const host = req.headers.host;
  if (host === undefined) return true; // HTTP/1.0 without Host: not a browser
  const name = hostName(host);
  return name !== null && (name === 'localhost' || isIP(name) !== 0);
}

/**
 * Refuses a request that changes something (POST, DELETE: any but GET and HEAD) sent by a page of another origin: a browser
 * sends such a "simple" request (text/plain body, no preflight) to any address, even with no token
 * configured, where it would otherwise be trusted as a loopback client. Clients that are not
 * browsers (sensor modules, curl) send no Origin and are not affected.
 */
export function checkOrigin(req: IncomingMessage): void {
  const origin = req.headers.origin;
  if (origin === undefined || SAFE_METHODS.has(req.method ?? 'GET')) return;
  let sameHost = false;
  try {
    sameHost = origin !== 'null' && new URL(origin).host.toLowerCase() === (req.headers.host ?? '').toLowerCase();
  } catch {
    // not a URL: not this origin
  }
  if (!sameHost) {
    throw new AuthRefusal(403, 'PW_CROSS_ORIGIN', `${req.method} from a page of another origin (${origin.slice(0, 200)}) is refused: only the gateway's own page may change data`, 'cross-origin');
  }
}

/**
 * Refuses a request a browser made for a page of another site (`Sec-Fetch-Site: cross-site`) or of
 * another origin of the same site (`same-site`: another port on 127.0.0.1 or localhost, where other
 * local tools serve pages, or another host of the same domain), whatever the method. Such a page
 * cannot read the answers (no CORS here), but its no-cors GETs and <img> loads would still run:
 * hold every `/events` slot or fire heavy queries, even with no token on a loopback gateway. The
 * page itself is same-origin; a typed URL or bookmark is `none`; clients that are not browsers,
 * and browsers that do not send the header (it goes to https and loopback URLs only), send none.
 * For the routes that need a token or loopback: health probes and the page's static files answer.
 */
export function checkFetchSite(req: IncomingMessage): void {
  const site = req.headers['sec-fetch-site'];
  if (site !== 'cross-site' && site !== 'same-site') return;
  const from = site === 'cross-site' ? 'a page of another site' : 'a page of another origin of the same site (another port or host name)';
  throw new AuthRefusal(
    403,
    'PW_CROSS_ORIGIN',
    `${req.method} ${(req.url ?? '').split('?')[0]!.slice(0, 200)} from ${from} (Sec-Fetch-Site: ${site}) is refused: data endpoints answer the gateway's own page and clients that are not browsers; open the page at http://${(req.headers.host ?? '127.0.0.1:8080').slice(0, 200)}/`,
    'cross-origin',
  );
}

/** Constant-time comparison of two secrets (hashing first makes the lengths equal). */
export function secretsEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/**
 * With a token configured, every protected route needs `Authorization: Bearer <token>`.
 * Without one, protected routes answer loopback clients only, addressed by `localhost` or an IP.
 */
export function authorize(req: IncomingMessage, token: string | undefined): void {
  if (token === undefined) {
    if (!isLoopback(req)) {
      throw new AuthRefusal(403, 'PW_FORBIDDEN', 'no status token is configured, so data endpoints answer only on the gateway itself (loopback); set PUMPWATCH_STATUS_TOKEN to allow remote access', 'not-loopback');
    }
    if (!isLocalName(req)) {
      throw new AuthRefusal(
        403,
        'PW_FORBIDDEN',
        `no status token is configured, so data endpoints answer only when the gateway is addressed as localhost or by IP address, not as ${(req.headers.host ?? '').slice(0, 200)} (a protection against DNS rebinding); open ${'encrypted' in req.socket ? 'https' : 'http'}://127.0.0.1:<port>/ or set PUMPWATCH_STATUS_TOKEN`,
        'host-name',
      );
    }
    return;
  }
  const header = req.headers.authorization ?? '';
  const match = /^Bearer\s+(.+)$/i.exec(header);
  if (!match) throw new AuthRefusal(401, 'PW_UNAUTHORIZED', 'missing bearer token (Authorization: Bearer <status token>)', 'missing-token', { wwwAuthenticate: true });
  if (!secretsEqual(match[1]!.trim(), token)) throw new AuthRefusal(401, 'PW_UNAUTHORIZED', 'wrong status token', 'wrong-token', { wwwAuthenticate: true });
}
