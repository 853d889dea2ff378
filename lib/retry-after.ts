/**
 * A server's Retry-After (RFC 9110 §10.2.3): no new request before it. Model downloads
 * (inference/download.ts) and the sync (sync/backoff.ts) both read it, so it is read here, once:
 * `lib/` holds low-level helpers that import nothing of ours, which any folder may import.
 *
 * The value is delay-seconds or an HTTP-date: the IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`),
 * or the obsolete RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37
 * 1994`) forms, all in GMT. Anything else is not a Retry-After (null), however Date.parse would
 * take it: it reads "2026" as a year, "1.5" as 5 January 2001 and an asctime date in the gateway's
 * own time zone. Seconds with a fraction are taken (some services send them). A date already past
 * is 0; a value beyond `maxMs` (default an hour) is not trusted further and counts as `maxMs`.
 */

/** A Retry-After beyond this is not trusted further (a misconfigured proxy must not stop retries for days). */
export const MAX_RETRY_AFTER_MS = 3_600_000;

const SECONDS = /^\d+(\.\d+)?$/;
const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const LONG_DAY = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTH = `(${MONTHS.join('|')})`;
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`);
const RFC_850 = new RegExp(`^${LONG_DAY}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`);
const ASCTIME = new RegExp(`^${DAY} ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`);

/**
 * Milliseconds to wait from a Retry-After header value (the first, when it came more than once),
 * between 0 and `maxMs`; null when there is none or it is neither seconds nor an HTTP-date.
 */
export function parseRetryAfter(value: string | readonly string[] | null | undefined, now = Date.now(), maxMs = MAX_RETRY_AFTER_MS): number | null {
  const v = (typeof value === 'string' ? value : value?.[0])?.trim();
  if (!v) return null;
  if (SECONDS.test(v)) return clamp(Number(v) * 1000, maxMs);
  const at = httpDate(v, now);
  return at === null ? null : clamp(at - now, maxMs);
}

/** Milliseconds from Azure Storage's `x-ms-retry-after-ms` (whole milliseconds), within 0..`maxMs`; null when absent or not a number. */
export function parseRetryAfterMs(value: string | readonly string[] | null | undefined, maxMs = MAX_RETRY_AFTER_MS): number | null {
  const v = (typeof value === 'string' ? value : value?.[0])?.trim();
  return v && /^\d+$/.test(v) ? clamp(Number(v), maxMs) : null;
}

function clamp(ms: number, maxMs: number): number {
  return Math.round(Math.min(Math.max(0, ms), maxMs));
}

/** An HTTP-date in ms since the epoch, or null (a day that does not exist, 31 Feb, is not a date). */
function httpDate(v: string, now: number): number | null {
  let m = IMF_FIXDATE.exec(v);
  if (m) return utc(Number(m[3]), m[2]!, Number(m[1]), m.slice(4, 7));
  m = RFC_850.exec(v);
  if (m) {
    // A two-digit year more than 50 years ahead is the latest past year ending so (RFC 9110 §5.6.7).
    const thisYear = new Date(now).getUTCFullYear();
    let year = Math.floor(thisYear / 100) * 100 + Number(m[3]);
    if (year > thisYear + 50) year -= 100;
    return utc(year, m[2]!, Number(m[1]), m.slice(4, 7));
  }
  m = ASCTIME.exec(v);
  if (m) return utc(Number(m[6]), m[1]!, Number(m[2]!.trim()), m.slice(3, 6));
  return null;
}

function utc(year: number, month: string, day: number, time: readonly (string | undefined)[]): number | null {
  const [h, min, s] = time.map(Number) as [number, number, number];
  const mon = MONTHS.indexOf(month);
  if (h > 23 || min > 59 || s > 60) return null;
  const at = Date.UTC(year, mon, day, h, min, Math.min(s, 59));
  return new Date(at).getUTCDate() === day ? at : null;
}
