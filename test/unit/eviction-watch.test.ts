import { afterEach, describe, expect, it, vi } from 'vitest';

afterEach(() => {
  vi.useRealTimers();
});
import { EvictionWatch } from '../../agent/eviction-watch.js';

describe('eviction warnings', () => {
  it('keeps one line a minute when NTP steps the gateway clock back an hour', () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.UTC(2026, 10, 23, 12) });
    let mono = 0;
    let evicted = 0;
    const counts: Array<number | undefined> = [];
    const watch = new EvictionWatch({
      counts: () => ({ synced: 0, unsynced: evicted, anomalies: 0, rejected: 0 }),
      maxBytes: () => 1e9,
      logger: { warn: (fields) => void counts.push((fields as { evicted?: number }).evicted) },
      monotonic: () => mono,
    });
    watch.check(); // the baseline
    evicted += 500;
    watch.check();
    vi.setSystemTime(Date.now() - 3_600_000); // the wall clock steps back; the interval is not measured on it
    for (let i = 0; i < 12; i++) {
      vi.setSystemTime(Date.now() + 10_000);
      mono += 10_000;
      evicted += 1000;
      watch.check();
    }
    expect(counts).toEqual([500, 6000, 6000]);
  });

  it('takes its baseline when the buffer opens, so evictions before the first tick are told', () => {
    let evicted = 0;
    const told: number[] = [];
    const watch = new EvictionWatch({
      counts: () => ({ synced: 0, unsynced: evicted, anomalies: 0, rejected: 0 }),
      maxBytes: () => 1e9,
      logger: { warn: (fields) => void told.push((fields as { evicted: number }).evicted) },
      monotonic: () => 0,
    });
    evicted = 300; // evicted by an earlier run: not news
    watch.opened();
    evicted += 4000; // the first commits after the open
    watch.check(); // the first tick
    expect(told).toEqual([4000]);
    watch.opened(); // a reopen keeps the count going (the counters persist)
    evicted += 50;
    watch.flush(); // at a stop, whatever the rate limit
    expect(told).toEqual([4000, 50]);
  });
});
