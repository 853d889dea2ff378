import { describe, expect, it } from 'vitest';
import { FLAP_WARN_INTERVAL_MS, FLAP_WINDOW_MS, FlapTracker, flapReason } from '../../agent/edge/flaps.js';

const half = () => 0.5;

describe('FlapTracker', () => {
  it('counts connections lost within the window in a row, with a growing delay, and names a duplicated identity from the third', () => {
    const f = new FlapTracker({ backoff: { baseMs: 1_000, capMs: 300_000, random: half } });
    const delays: number[] = [];
    let now = 0;
    for (let i = 0; i < 12; i++) {
      f.connected(now);
      now += 50;
      delays.push(f.lost(now)!.delayMs);
    }
    expect(delays.slice(0, 4)).toEqual([750, 1_500, 3_000, 6_000]);
    expect(delays.at(-1)).toBe(225_000); // capped at 5 min, jitter in [cap/2, cap]
    expect(f.count(now)).toBe(12);
    expect(flapReason(2)).not.toMatch(/same identity/);
    expect(flapReason(3)).toMatch(/3 times in a row within a minute of opening it: another client is probably connected with the same identity \(PUMPWATCH_MODULE_CONNECTION_STRING/);
  });

  it('ends the streak once a connection lasts the window', () => {
    const f = new FlapTracker({ backoff: { baseMs: 1_000, capMs: 300_000, random: half } });
    for (let now = 0; now < 500; now += 100) {
      f.connected(now);
      f.lost(now + 10);
    }
    f.connected(1_000);
    expect(f.suspicious(1_000)).toBe(true);
    expect(f.count(1_000 + FLAP_WINDOW_MS)).toBe(0);
    expect(f.settle(1_000 + FLAP_WINDOW_MS)).toBe(5);
    expect(f.lost(1_000 + FLAP_WINDOW_MS + 5)).toBeNull();
    f.connected(100_000);
    expect(f.lost(100_010)).toEqual({ flaps: 1, delayMs: 750 });
  });

  it('says the warning at the third flap, then at most once per interval', () => {
    const f = new FlapTracker();
    const warned: number[] = [];
    for (let now = 0; now < 2 * FLAP_WARN_INTERVAL_MS; now += 1_000) {
      f.connected(now);
      f.lost(now + 10);
      if (f.warnNow(now + 10)) warned.push(now);
    }
    expect(warned).toEqual([2_000, 2_000 + FLAP_WARN_INTERVAL_MS]);
  });
});
