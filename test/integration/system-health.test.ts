import { describe, expect, it } from 'vitest';
import { SystemHealth } from '../../agent/system-health.js';

describe('gateway health from systeminformation', () => {
  it('samples CPU, memory and the disk holding the data directory in a worker thread', async () => {
    const health = new SystemHealth('.');
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      const s = await health.sample();
      expect(s.error).toBeUndefined();
      expect(s.cpu.cores).toBeGreaterThan(0);
      expect(s.cpu.loadPercent).toBeGreaterThanOrEqual(0);
      expect(s.memory.totalBytes).toBeGreaterThan(0);
      expect(s.memory.usedPercent).toBeGreaterThan(0);
      expect(s.disk.totalBytes).toBeGreaterThan(0);
      expect(s.disk.freeBytes).toBeGreaterThan(0);
      expect(health.latest().sampledAt).toBe(s.sampledAt);
      // the event loop kept turning while the OS was queried (the sampling is off this thread)
      expect(ticks).toBeGreaterThan(0);
    } finally {
      clearInterval(timer);
      await health.close();
    }
  });
});
