import { describe, expect, it } from 'vitest';
import { ReadingsCollector } from '../../trainer/data/collect.js';

describe('readings collector', () => {
  it('puts readings in time order, keeps a repeated reading once, and says which reading each row is', () => {
    const c = new ReadingsCollector();
    c.add(3000, { a: 3, b: 30 }, 'dev-1');
    c.add(1000, { a: 1, b: 10 }, 'dev-1');
    c.add(2000, { a: 2, b: 20 }, 'dev-2');
    c.add(1000, { a: 1, b: 10 }, 'dev-1'); // re-sent: same time, same values
    c.add(1000, { a: 1.5, b: null }, 'dev-1'); // same time, other values: kept
    const { loaded, origins } = c.finish();
    expect(loaded.series.timestamps).toEqual([1000, 1000, 2000, 3000]);
    expect(origins).toEqual([1, 4, 2, 0]);
    expect(loaded.series.rows.map((r) => [...r])).toEqual([
      [1, 10],
      [1.5, NaN],
      [2, 20],
      [3, 30],
    ]);
    expect(loaded).toMatchObject({ readings: 4, repeatedReadings: 1, devices: ['dev-1', 'dev-2'] });
  });

  it('gives no origins when the rows are the readings in the order added', () => {
    const c = new ReadingsCollector();
    for (let i = 0; i < 5; i++) c.add(i * 1000, { a: i });
    expect(c.finish().origins).toBeNull();
  });

  it('leaves out a counter when asked, as train loads a range', () => {
    const c = new ReadingsCollector({ leaveOutCounters: true });
    for (let i = 0; i < 50; i++) c.add(i * 1000, { hours: i, a: Math.sin(i) });
    const { loaded } = c.finish();
    expect(loaded.series.features).toEqual(['a']);
    expect(loaded.counterFeatures.map((f) => f.name)).toEqual(['hours']);
  });
});
