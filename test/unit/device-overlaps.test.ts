/**
 * devicesOverlap (trainer/data/collect.ts): when two devices sent readings of one pump over the
 * same time, which only one pump id on two gateways gives, and a gateway replaced by another never does.
 */
import { describe, expect, it } from 'vitest';
import { devicesOverlap, OVERLAP_MIN_MS, OVERLAP_MIN_READINGS, ReadingsCollector } from '../../trainer/data/collect.js';

const T0 = Date.parse('2026-12-01T00:00:00Z');
const MIN = 60_000;

/** Readings every `step` ms from `from` for `count`, of `device`. */
const run = (device: string, from: number, count: number, step = 30_000) => Array.from({ length: count }, (_, i) => ({ device, ts: from + i * step }));

function collected(readings: ReadonlyArray<{ device: string; ts: number }>) {
  const c = new ReadingsCollector();
  for (const [i, r] of readings.entries()) c.add(r.ts, { Flow: 10 + (i % 7), Pressure: 2 + (i % 3) / 10 }, r.device);
  return c.finish().loaded;
}

describe('devicesOverlap', () => {
  it('finds two gateways posting one pump id side by side, with each one\'s readings in the stretch', () => {
    const loaded = collected([...run('gw-a', T0, 480), ...run('gw-b', T0 + 15_000, 480)]); // 4 h each, interleaved
    expect(loaded.devices).toEqual(['gw-a', 'gw-b']);
    expect(loaded.deviceOverlaps).toEqual([{ devices: ['gw-a', 'gw-b'], from: T0 + 15_000, to: T0 + 479 * 30_000, readings: [479, 479] }]); // gw-a's first and gw-b's last lie outside the stretch
  });

  it('finds none when a gateway took over from another, even with a handover of minutes', () => {
    const old = run('gw-old', T0, 480);
    const handover = T0 + 480 * 30_000 - 20 * MIN; // the new one starts 20 min before the old one stops
    expect(collected([...old, ...run('gw-new', handover, 480)]).deviceOverlaps).toEqual([]);
    expect(collected([...run('gw-new', handover, 480), ...old]).deviceOverlaps).toEqual([]); // in any order
  });

  it('finds none for a stretch under an hour, or with too few readings of one device in it', () => {
    expect(collected([...run('gw-a', T0, 480), ...run('gw-b', T0 + 480 * 30_000 - OVERLAP_MIN_MS + MIN, 480)]).deviceOverlaps).toEqual([]);
    // gw-b sent a few readings only (a test post at commissioning): OVERLAP_MIN_READINGS - 1 spread over 4 h
    expect(collected([...run('gw-a', T0, 480), ...run('gw-b', T0, OVERLAP_MIN_READINGS - 1, 4 * 3_600_000 / OVERLAP_MIN_READINGS)]).deviceOverlaps).toEqual([]);
  });

  it('names every pair of three devices that overlap, and none for readings without a device', () => {
    const three = collected([...run('gw-c', T0, 480), ...run('gw-a', T0, 480), ...run('gw-b', T0 + 8 * 3_600_000, 480)]);
    expect(three.deviceOverlaps.map((o) => o.devices)).toEqual([['gw-c', 'gw-a']]);
    expect(devicesOverlap([T0, T0 + 1], new Uint16Array(2), ['gw-a'])).toEqual([]);
    const c = new ReadingsCollector();
    for (let i = 0; i < 3000; i++) c.add(T0 + i * 1000, { Flow: i % 5 });
    expect(c.finish().loaded.deviceOverlaps).toEqual([]); // the agent's first model: its own buffer, no device
  });
});
