import { describe, expect, it } from 'vitest';
import { stoppedRows } from '../../trainer/data/stopped.js';

describe("the trainer's stopped rows", () => {
  it('leave out a glitch (under the bound for one or two readings) without a warm-up, and a stop of three readings with one, as the agent does', () => {
    const rule = { feature: 'Current', below: 0.5, afterStartSeconds: 5 };
    const low = new Set([10, 15, 16, 20, 21, 22]);
    const rows = Array.from({ length: 40 }, (_, i) => [low.has(i) ? 0.01 : 2.4]);
    const ts = rows.map((_, i) => Date.UTC(2026, 0, 1) + i * 1000);
    const { out, stopped, starting } = stoppedRows(rule, ['Current'], ts, rows);
    const left = [...out].flatMap((v, i) => (v ? [i] : []));
    expect(left).toEqual([10, 15, 16, 20, 21, 22, 23, 24, 25, 26]); // 23-26: the warm-up after the stop at 20-22
    expect([stopped, starting]).toEqual([6, 4]);
  });
});
