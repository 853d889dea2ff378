import { describe, expect, it } from 'vitest';
import { WindowCounts } from '../../agent/window-counts.js';

describe('WindowCounts (a sliding window in a ring of slots)', () => {
  it('counts within the window, to the resolution of a slot, and forgets what slid out', () => {
    const w = new WindowCounts(60_000, 6, 0); // 10 s slots
    w.add(0);
    w.add(5_000, 2);
    w.add(25_000);
    expect(w.sum(25_000)).toBe(4);
    expect(w.sum(59_999)).toBe(4);
    expect(w.sum(60_000)).toBe(1); // slot 0 slid out
    expect(w.sum(85_000)).toBe(0);
    w.add(200_000); // far on: every slot passed is emptied, the ring is reused
    expect(w.sum(200_000)).toBe(1);
  });

  it('takes nothing older than the window, and counts a late one within it in its own slot', () => {
    const w = new WindowCounts(60_000, 6, 100_000);
    expect(w.add(100_000)).toBe(true);
    expect(w.add(45_000)).toBe(false); // slot 4: the window at slot 10 holds slots 5-10
    expect(w.add(55_000)).toBe(true); // slot 5
    expect(w.sum(100_000)).toBe(2);
    expect(w.sum(110_000)).toBe(1);
  });
});
