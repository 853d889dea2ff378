import { describe, expect, it } from 'vitest';
import { parseRetryAfter } from '../../inference/download.js';

describe('parseRetryAfter (model downloads)', () => {
  it('reads Retry-After as seconds or an HTTP date, and ignores what is neither', () => {
    const now = Date.UTC(2026, 0, 1);
    expect(parseRetryAfter('7', now)).toBe(7000);
    expect(parseRetryAfter(new Date(now + 12_000).toUTCString(), now)).toBe(12_000);
    expect(parseRetryAfter(new Date(now - 5_000).toUTCString(), now)).toBe(0);
    expect(parseRetryAfter(undefined, now)).toBeNull();
    expect(parseRetryAfter('soon', now)).toBeNull();
  });
});
