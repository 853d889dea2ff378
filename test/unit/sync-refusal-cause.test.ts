/**
 * What a refusal by Blob Storage says about its cause: a gateway clock far from the service's
 * (Azure's 403 AuthenticationFailed "Request date header too old") is told as the clock, with both
 * times, and retried at the backoff pace; a SAS credential past its known expiry is told as
 * expired; the permissions named are those the agent needs (rcw), not more.
 */
import { RestError } from '@azure/storage-blob';
import { describe, expect, it } from 'vitest';
import { Backoff, classifyFailure, explainExpiry } from '../../sync/backoff.js';

const NOW = Date.UTC(2026, 11, 5, 17, 10);

/** A 403 as the SDK throws it for Azure's answer, with the answer's headers (Date: the service's own time). */
function refusal(code: string, serviceTime: number | null, status = 403): RestError {
  const headers: Record<string, string> = { 'x-ms-error-code': code };
  if (serviceTime !== null) headers.date = new Date(serviceTime).toUTCString();
  return Object.assign(new RestError(`Server failed to authenticate the request.\nRequestId:abc`, { statusCode: status, code }), {
    response: { status, headers: { get: (name: string) => headers[name.toLowerCase()] } },
  });
}

describe('a refusal by Blob Storage', () => {
  it('names the clock when the answer\'s Date is far from the gateway clock, and retries at the backoff pace', () => {
    const f = classifyFailure(refusal('AuthenticationFailed', NOW - 76 * 60_000), NOW);
    expect(f).toMatchObject({ kind: 'unauthorized', heals: true, status: 403, code: 'AuthenticationFailed' });
    expect(f.message).toBe(
      'Blob Storage refused the request (403 AuthenticationFailed): the gateway clock reads 2026-12-05T17:10Z, ' +
        "Blob Storage's 2026-12-05T15:54Z (76 min apart): fix the clock (NTP); the credentials may be fine.",
    );
    const ahead = classifyFailure(refusal('AuthenticationFailed', NOW + 2 * 3_600_000), NOW);
    expect(ahead.message).toContain('(2.0 h apart): fix the clock (NTP)');
    // The normal pace (1 s, 2 s, …), not the slow one kept for failures that need a person.
    const backoff = new Backoff({ initialMs: 1000, maxMs: 300_000, slowMs: 900_000, jitter: 0 });
    expect(backoff.next(f)).toBe(1000);
  });

  it('stays a credentials refusal, naming the permissions the agent needs (rcw), when the clocks agree or no Date came', () => {
    for (const serviceTime of [NOW - 4 * 60_000, null]) {
      const f = classifyFailure(refusal('AuthorizationFailure', serviceTime), NOW);
      expect(f).toMatchObject({ kind: 'unauthorized', heals: false });
      expect(f.message).toBe('Blob Storage refused the credentials (403 AuthorizationFailure): check the connection string or SAS URL (key, expiry; a container SAS needs permissions rcw).');
    }
  });

  it('says the SAS expired, with when, once its known expiry has passed', () => {
    const expiresAt = NOW - 60_000;
    const f = explainExpiry(classifyFailure(refusal('AuthenticationFailed', NOW), NOW), expiresAt, NOW);
    expect(f).toMatchObject({ kind: 'unauthorized', heals: false });
    expect(f.message).toBe('Blob Storage refused the credentials (403 AuthenticationFailed): the SAS expired at 2026-12-05T17:09:00.000Z; replace it (a restart-only setting).');
    // Not yet expired, no known expiry (an account key), or put down to the clock: unchanged.
    const plain = classifyFailure(refusal('AuthorizationFailure', NOW), NOW);
    expect(explainExpiry(plain, NOW + 60_000, NOW)).toEqual(plain);
    expect(explainExpiry(plain, null, NOW)).toEqual(plain);
    const clock = classifyFailure(refusal('AuthenticationFailed', NOW - 3 * 3_600_000), NOW);
    expect(explainExpiry(clock, expiresAt, NOW)).toEqual(clock);
  });
});
