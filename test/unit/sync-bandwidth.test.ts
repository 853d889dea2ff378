import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TokenBucket } from '../../sync/bandwidth.js';

describe('upload bandwidth cap (token bucket)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Takes `sizes` one after the other and returns the fake time at which each was let through. */
  async function passTimes(bucket: TokenBucket, sizes: number[]): Promise<number[]> {
    const start = Date.now();
    const times: number[] = [];
    const run = (async () => {
      for (const s of sizes) {
        await bucket.take(s);
        times.push(Date.now() - start);
      }
    })();
    await vi.runAllTimersAsync();
    await run;
    return times;
  }

  it('lets one second of bytes through at once, then paces to the cap', async () => {
    const bucket = new TokenBucket(() => 1000);
    expect(await passTimes(bucket, [1000, 500, 500, 2000])).toEqual([0, 500, 1000, 3000]);
  });

  it('lets a blob larger than the bucket through and pays it back by waiting', async () => {
    const bucket = new TokenBucket(() => 1000);
    expect(await passTimes(bucket, [5000, 1])).toEqual([4000, 4001]);
  });

  it('does not wait without a cap, and applies a new cap at once', async () => {
    let rate = 0;
    const bucket = new TokenBucket(() => rate);
    expect(await passTimes(bucket, [1e9, 1e9])).toEqual([0, 0]);
    rate = 100;
    expect(await passTimes(bucket, [100, 100])).toEqual([0, 1000]);
  });

  it('does not make a blob wait for the size of a backward step of the wall clock', async () => {
    const bucket = new TokenBucket(() => 100_000);
    expect(await passTimes(bucket, [50_000])).toEqual([0]);
    vi.setSystemTime(Date.now() - 2 * 3_600_000); // NTP steps Date back; timers and performance.now() go on
    expect(await passTimes(bucket, [50_000, 100_000])).toEqual([0, 1000]);
  });

  it('neither adds nor takes away bytes when a clock it is given steps back', async () => {
    let wall = Date.UTC(2026, 10, 23, 12);
    const waits: number[] = [];
    const bucket = new TokenBucket(() => 100_000, () => wall, async (ms) => void waits.push(ms));
    await bucket.take(50_000);
    wall -= 2 * 3_600_000;
    await bucket.take(50_000);
    await bucket.take(50_000);
    expect(waits).toEqual([500]);
  });

  it('stops waiting when aborted', async () => {
    const bucket = new TokenBucket(() => 10);
    const ac = new AbortController();
    const p = bucket.take(10_000, ac.signal);
    ac.abort(new Error('stopping'));
    await expect(p).rejects.toThrow('stopping');
  });
});
