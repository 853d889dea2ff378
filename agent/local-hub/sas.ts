/**
 * Shared access signatures exactly as the Azure IoT SDKs make them:
 * `SharedAccessSignature sr=<resource>&sig=<url-encoded base64 HMAC-SHA256>&se=<expiry seconds>[&skn=<key name>]`,
 * signed over `<sr as written in the token>\n<se>` with the base64-decoded key.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export interface SasToken {
  sr: string;
  sig: string;
  se: number;
  skn?: string;
}

export type SasCheck = { ok: true } | { ok: false; reason: string };

/** A fresh random 32-byte key, base64, as IoT Hub generates for a module identity. */
export function randomKey(): string {
  return randomBytes(32).toString('base64');
}

export function sign(keyBase64: string, resource: string, expiry: number): string {
  return createHmac('sha256', Buffer.from(keyBase64, 'base64')).update(`${resource}\n${expiry}`).digest('base64');
}

/** Parses a token; null when it is not a SharedAccessSignature with sr, sig and a numeric se. */
export function parseSas(token: string): SasToken | null {
  const match = /^SharedAccessSignature\s+(\S+)$/.exec(token.trim());
  if (!match?.[1]) return null;
  const fields = new Map<string, string>();
  for (const pair of match[1].split('&')) {
    const eq = pair.indexOf('=');
    if (eq > 0) fields.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  const sr = fields.get('sr');
  const sig = fields.get('sig');
  const se = Number(fields.get('se'));
  if (!sr || !sig || !Number.isInteger(se)) return null;
  const skn = fields.get('skn');
  return skn === undefined ? { sr, sig, se } : { sr, sig, se, skn };
}

function safeDecode(value: string): string | null {
  try {
    return decodeURIComponent(value);
  } catch {
    return null;
  }
}

/** Same resource: the host part compares case-insensitively (DNS), the path exactly (ids are case-sensitive). */
function sameResource(a: string, b: string): boolean {
  const split = (r: string): [string, string] => {
    const slash = r.indexOf('/');
    return slash < 0 ? [r.toLowerCase(), ''] : [r.slice(0, slash).toLowerCase(), r.slice(slash)];
  };
  const [hostA, pathA] = split(a);
  const [hostB, pathB] = split(b);
  return hostA === hostB && pathA === pathB;
}

/**
 * Verifies a token for one resource (URL-decoded `sr`, see sameResource) and, when given, one key
 * name. `nowSeconds` is injectable for tests.
 */
export function verifySas(
  token: string,
  expect: { keyBase64: string; resource: string; keyName?: string; nowSeconds?: number },
): SasCheck {
  const parsed = parseSas(token);
  if (!parsed) return { ok: false, reason: 'malformed shared access signature' };
  const resource = safeDecode(parsed.sr);
  if (resource === null || !sameResource(resource, expect.resource)) {
    return { ok: false, reason: 'token is for another resource' };
  }
  if (expect.keyName !== undefined && parsed.skn !== expect.keyName) {
    return { ok: false, reason: 'token names an unknown key' };
  }
  const now = expect.nowSeconds ?? Math.floor(Date.now() / 1000);
  if (parsed.se <= now) return { ok: false, reason: 'token has expired' };
  const given = Buffer.from(safeDecode(parsed.sig) ?? '', 'base64');
  const wanted = Buffer.from(sign(expect.keyBase64, parsed.sr, parsed.se), 'base64');
  if (given.length !== wanted.length || !timingSafeEqual(given, wanted)) {
    return { ok: false, reason: 'signature does not match' };
  }
  return { ok: true };
}
