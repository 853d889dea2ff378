/**
 * The one Retry-After reader (lib/retry-after.ts) that model downloads and the sync share: seconds,
 * the three HTTP-date forms (GMT whatever the gateway's time zone), dates past, garbage, and values
 * too large to trust.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_RETRY_AFTER_MS, parseRetryAfter, parseRetryAfterMs } from '../../lib/retry-after.js';

const now = Date.UTC(2026, 11, 6, 10, 0, 0);
const zone = process.env.TZ;

afterEach(() => {
  if (zone === undefined) delete process.env.TZ;
  else process.env.TZ = zone;
});

describe('parseRetryAfter', () => {
  it('reads delay-seconds, with a fraction too, as milliseconds', () => {
    expect(parseRetryAfter('7', now)).toBe(7000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('1.5', now)).toBe(1500);
    expect(parseRetryAfter(['3', '9'], now)).toBe(3000); // a header sent twice: the first
  });

  it('reads the three HTTP-date forms as GMT, whatever the time zone of the gateway', () => {
    process.env.TZ = 'America/New_York';
    expect(parseRetryAfter('Sun, 06 Dec 2026 10:00:12 GMT', now)).toBe(12_000);
    expect(parseRetryAfter(new Date(now + 90_000).toUTCString(), now)).toBe(90_000);
    expect(parseRetryAfter('Sunday, 06-Dec-26 10:01:00 GMT', now)).toBe(60_000);
    expect(parseRetryAfter('Sun Dec  6 10:00:30 2026', now)).toBe(30_000);
  });

  it('takes a date already past as no wait at all', () => {
    expect(parseRetryAfter('Sun, 06 Nov 1994 08:49:37 GMT', now)).toBe(0);
    expect(parseRetryAfter(new Date(now - 5_000).toUTCString(), now)).toBe(0);
  });

  it('takes what is neither seconds nor an HTTP-date for none, however Date.parse would read it', () => {
    for (const v of [undefined, null, '', '   ', 'soon', '1 hour', '-5', '2026-12-06', '12abc', '+3', '0x10', 'Infinity', 'NaN', 'Tue, 31 Feb 2026 10:00:00 GMT', 'Sun, 06 Dec 2026 25:00:00 GMT', '2026-12-06T10:01:00Z', 'Sun, 06 Dec 2026 10:01:00 PST']) {
      expect(parseRetryAfter(v, now), String(v)).toBeNull();
    }
  });

  it('trusts no more than an hour by default, or the limit given', () => {
    expect(MAX_RETRY_AFTER_MS).toBe(3_600_000);
    expect(parseRetryAfter('86400', now)).toBe(3_600_000);
    expect(parseRetryAfter('99999999999999999999999999', now)).toBe(3_600_000);
    expect(parseRetryAfter('1'.repeat(400), now)).toBe(3_600_000);
    expect(parseRetryAfter('Fri, 31 Dec 9999 23:59:59 GMT', now)).toBe(3_600_000);
    expect(parseRetryAfter('120', now, 60_000)).toBe(60_000);
  });
});

describe('parseRetryAfterMs (x-ms-retry-after-ms)', () => {
  it('reads whole milliseconds, capped, and nothing else', () => {
    expect(parseRetryAfterMs('250')).toBe(250);
    expect(parseRetryAfterMs('99999999999999')).toBe(3_600_000);
    for (const v of [undefined, '', '1.5', '-1', 'soon']) expect(parseRetryAfterMs(v), String(v)).toBeNull();
  });
});
