import { existsSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { pacedLatencies, rssSampler, stallsOf } from '../../bench/support.js';

/** Blocks the event loop for `ms`. */
function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // the loop is blocked: no timer fires
  }
}

describe('bench support', () => {
  it('paced latencies count from when a tick was due, not from when a blocked loop submitted it', async () => {
    // Tick 0 blocks the event loop for 60 ms (a slow commit); ticks 1–5 were due meanwhile, every 10 ms.
    const latencies = await pacedLatencies(8, 10, (tick) => {
      if (tick === 0) busy(60);
      return Promise.resolve();
    });
    expect(latencies).toHaveLength(8);
    const sorted = [...latencies].sort((a, b) => a - b);
    // Tick 1 waited ≥ 50 ms behind tick 0, tick 2 ≥ 40 ms, …: measured from the submission, each read ~0 ms.
    expect(sorted[sorted.length - 2]).toBeGreaterThanOrEqual(35);
    // In tick order: the ticks queued behind tick 0 come right after it, one stall.
    expect(latencies[1]).toBeGreaterThanOrEqual(35);
    expect(stallsOf(latencies, 20)).toMatchObject({ events: 1 });
  });

  it('counts a run of slow ticks as one stall and every slow tick', () => {
    expect(stallsOf([1, 55, 45, 35, 25, 15, 2, 30, 3], 20)).toEqual({ events: 2, ticks: 5 });
    expect(stallsOf([21], 20)).toEqual({ events: 1, ticks: 1 });
    expect(stallsOf([], 20)).toEqual({ events: 0, ticks: 0 });
  });

  it.runIf(existsSync('/proc/self/clear_refs'))('rssSampler catches a peak reached and released while the event loop was blocked', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const rss = rssSampler();
    const before = process.memoryUsage.rss() / 1024 / 1024;
    // 200 MB touched and freed again within one synchronous stretch: a 50 ms sampler never sees it.
    (() => {
      const block = new Float64Array(25 * 1024 * 1024);
      block.fill(1);
    })();
    gc();
    expect(process.memoryUsage.rss() / 1024 / 1024).toBeLessThan(before + 100); // released again
    rss.stop();
    expect(rss.peak()).toBeGreaterThan(before + 150);
  });
});
