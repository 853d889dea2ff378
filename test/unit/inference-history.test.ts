import { describe, expect, it } from 'vitest';
import { ValueHistory } from '../../inference/history.js';
import { RecentReadings } from '../../inference/recent.js';

describe('ValueHistory (a pump\'s raw readings kept as numbers)', () => {
  it('gives back the finite values of each kept reading, newest at age 0', () => {
    const h = new ValueHistory(4, true);
    h.push({ a: 1, b: 2 }, 100);
    h.push({ a: 3, b: null }, 200);
    h.push({ b: 5 }, 300);
    expect(h.size).toBe(3);
    expect(h.valuesAt(0)).toEqual({ b: 5 });
    expect(h.valuesAt(1)).toEqual({ a: 3 });
    expect(h.valuesAt(2)).toEqual({ a: 1, b: 2 });
    expect([h.tsAt(0), h.tsAt(1), h.tsAt(2)]).toEqual([300, 200, 100]);
  });

  it('keeps a name first seen later, absent from the readings before it', () => {
    const h = new ValueHistory(4);
    h.push({ a: 1 });
    h.push({ a: 2, c: 7 });
    h.push({ a: 3 });
    expect(h.valuesAt(0)).toEqual({ a: 3 });
    expect(h.valuesAt(1)).toEqual({ a: 2, c: 7 });
    expect(h.valuesAt(2)).toEqual({ a: 1 });
  });

  it("is not fooled by names every object inherits (constructor, toString) when a reading lacks them", () => {
    const h = new ValueHistory(4, true);
    h.push({ a: 1, constructor: 5, toString: 6 }, 100);
    h.push({ a: 2, b: 3 }, 200); // b is new; constructor and toString are absent, not values
    expect(h.valuesAt(0)).toEqual({ a: 2, b: 3 });
    h.push({ a: 1 }, 300);
    expect(h.holds(300, { a: 1, b: 9 })).toBe(false); // another reading than the one kept at 300
    expect(h.holds(300, { a: 1 })).toBe(true);
    expect(h.holds(100, { a: 1, constructor: 5, toString: 6 })).toBe(true);
    expect(h.holds(100, { a: 1, constructor: 5 })).toBe(false);
  });

  it('grows without losing or reordering what it kept, and keeps more from then on', () => {
    const h = new ValueHistory(3, true);
    for (let i = 1; i <= 5; i++) h.push({ v: i }, i * 10); // wrapped: holds 3, 4, 5
    h.grow(5);
    expect(h.capacity).toBe(5);
    expect([0, 1, 2].map((age) => [h.valuesAt(age).v, h.tsAt(age)])).toEqual([[5, 50], [4, 40], [3, 30]]);
    h.push({ v: 6, w: 1 }, 60);
    h.push({ v: 7 }, 70);
    h.push({ v: 8 }, 80);
    expect(h.size).toBe(5);
    expect([0, 1, 2, 3, 4].map((age) => h.valuesAt(age).v)).toEqual([8, 7, 6, 5, 4]);
    expect(h.valuesAt(2)).toEqual({ v: 6, w: 1 });
    h.grow(4); // never shrinks
    expect(h.capacity).toBe(5);
  });

  it('tells a reading with the same values (nulls and missing names alike) from one with others', () => {
    const h = new ValueHistory(4, true);
    h.push({ a: 1, b: null }, 100);
    expect(h.sameValuesAt(0, { a: 1, b: null })).toBe(true);
    expect(h.sameValuesAt(0, { a: 1 })).toBe(true);
    expect(h.sameValuesAt(0, { a: 1, b: 2 })).toBe(false);
    expect(h.sameValuesAt(0, { a: 1.5, b: null })).toBe(false);
    expect(h.sameValuesAt(0, { a: 1, c: 3 })).toBe(false);
  });

  it('keeps only the last `capacity` readings, oldest overwritten first', () => {
    const h = new ValueHistory(3);
    for (let i = 1; i <= 7; i++) h.push({ v: i });
    expect(h.size).toBe(3);
    expect([0, 1, 2].map((age) => h.valuesAt(age).v)).toEqual([7, 6, 5]);
    expect(() => h.valuesAt(3)).toThrow(/no reading 3 back \(3 kept\)/);
  });

  it('holds no reference to the objects it was given', () => {
    const h = new ValueHistory(2);
    const values: Record<string, number> = { a: 1 };
    h.push(values);
    values.a = 99;
    expect(h.valuesAt(0)).toEqual({ a: 1 });
  });
});

describe('RecentReadings', () => {
  it('returns the last readings of a pump oldest first, with their timestamps', () => {
    const recent = new RecentReadings(2);
    const row = (pumpId: string, ts: number, v: number) => ({
      pumpId, ts, receivedAt: ts, values: { x: v }, score: null, anomaly: null, modelVersion: null, imputed: false, unscoredReason: null,
    });
    recent.record([row('p1', 1, 10), row('p2', 2, 20), row('p1', 3, 30), row('p1', 4, 40)]);
    expect(recent.pumpIds()).toEqual(['p1', 'p2']);
    expect(recent.of('p1')).toEqual([
      { pumpId: 'p1', ts: 3, values: { x: 30 } },
      { pumpId: 'p1', ts: 4, values: { x: 40 } },
    ]);
    expect(recent.of('nope')).toEqual([]);
  });
});
