import { describe, expect, it } from 'vitest';
import { deepNesting, jsonPreview } from '../../agent/ingest/untrusted-json.js';

const deepArray = (n: number): unknown => {
  let v: unknown = [];
  for (let i = 1; i < n; i++) v = [v];
  return v;
};

describe('deepNesting', () => {
  it('finds the first bracket past the limit, outside strings, with its line and column', () => {
    expect(deepNesting('[[[]]]', 3)).toBeNull();
    expect(deepNesting('[[[[]]]]', 3)).toEqual({ line: 1, column: 4 });
    expect(deepNesting('{"a":"[[[[\\"[[[["}', 1)).toBeNull();
    expect(deepNesting('["\\"[[",[', 2)).toBeNull(); // an escaped quote does not end the string
    expect(deepNesting('["\\\\",[[', 2)).toEqual({ line: 1, column: 8 }); // an escaped backslash before the quote does
    expect(deepNesting('[\r\n [\n  [', 2)).toEqual({ line: 3, column: 3 });
    expect(deepNesting(']]]]][[', 1)).toEqual({ line: 1, column: 7 }); // stray closers do not make room
  });
});

describe('jsonPreview', () => {
  it('writes what JSON.stringify writes for an item that fits', () => {
    const item = { pumpId: 'p', ts: 1, values: { a: 1.5, b: null, c: Number.NaN, d: undefined }, list: [1, undefined, 'x"y'], at: new Date(0) };
    expect(jsonPreview(item)).toBe(JSON.stringify(item));
    for (const v of ['s', 3, true, null, [], {}]) expect(jsonPreview(v)).toBe(JSON.stringify(v));
  });

  it('never throws: nesting past the limit, cycles, BigInts and throwing getters give a preview', () => {
    expect(jsonPreview(deepArray(100_000))).toBe(`${'['.repeat(16)}"…"${']'.repeat(16)}`);
    expect(() => JSON.stringify(deepArray(100_000))).toThrow(RangeError); // what the rejected table's text was made with
    const cycle: Record<string, unknown> = { a: 1 };
    cycle.self = cycle;
    expect(jsonPreview(cycle)).toBe('{"a":1,"self":"…"}');
    expect(jsonPreview({ n: 10n })).toBe('{"n":10}');
    expect(jsonPreview({ a: 1, get b(): number { throw new Error('no'); } })).toBe('{"a":1');
  });

  it('stops at the bound, marks the cut and stays within it, however large the item', () => {
    const huge = { pumpId: 'p', values: Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`v${i}`, i])), tail: 'x'.repeat(1e6) };
    const text = jsonPreview(huge, 100);
    expect(text).toHaveLength(100);
    expect(text).toBe(`${JSON.stringify(huge).slice(0, 100 - '…[cut: over 100 chars]'.length)}…[cut: over 100 chars]`);
    expect(jsonPreview('y'.repeat(1e6), 50)).toBe(`"${'y'.repeat(50 - 1 - '…[cut: over 50 chars]'.length)}…[cut: over 50 chars]`);
  });
});
