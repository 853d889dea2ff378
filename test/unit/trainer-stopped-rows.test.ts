import { describe, expect, it } from 'vitest';
import { MAX_CARRY_READINGS } from '../../inference/contract.js';
import { parseStoppedWhenOption, stoppedRows } from '../../trainer/data/stopped.js';

describe("the trainer's stopped rows", () => {
  it('leave out a glitch (under the bound for one or two readings) without a warm-up, and a stop of three readings with one, as the agent does', () => {
    const rule = { when: [{ feature: 'Current', below: 0.5 }], afterStartSeconds: 5 };
    const low = new Set([10, 15, 16, 20, 21, 22]);
    const rows = Array.from({ length: 40 }, (_, i) => [low.has(i) ? 0.01 : 2.4]);
    const ts = rows.map((_, i) => Date.UTC(2026, 0, 1) + i * 1000);
    const { out, stopped, starting } = stoppedRows(rule, ['Current'], ts, rows);
    const left = [...out].flatMap((v, i) => (v ? [i] : []));
    expect(left).toEqual([10, 15, 16, 20, 21, 22, 23, 24, 25, 26]); // 23-26: the warm-up after the stop at 20-22
    expect([stopped, starting]).toEqual([6, 4]);
  });
});

describe('--stopped-when with several conditions', () => {
  it('reads conditions joined by "&", feature names with spaces, trimmed', () => {
    expect(parseStoppedWhenOption('  Current < 0.2 &  Volume Flow RateRMS<5 ', '1800')).toEqual({
      when: [
        { feature: 'Current', below: 0.2 },
        { feature: 'Volume Flow RateRMS', below: 5 },
      ],
      afterStartSeconds: 1800,
    });
    expect(parseStoppedWhenOption('none', undefined)).toBeNull();
  });

  it.each([
    ['Current<0.2 &', '--stopped-when "Current<0.2 &": an empty condition between or beside "&"'],
    ['& Current<0.2', '--stopped-when "& Current<0.2": an empty condition between or beside "&"'],
    ['Current<0.2 && Flow<5', '--stopped-when "Current<0.2 && Flow<5": an empty condition between or beside "&"'],
    ['Current<0.2 & Current<1', '--stopped-when "Current<0.2 & Current<1": the feature "Current" is named twice (one condition per feature)'],
    ['Current<0.2 & Flow>5', '--stopped-when "Current<0.2 & Flow>5": the operator is ">" (in "Flow>5"), only "<" is supported'],
    ['Current<0.2 & Flow<', '--stopped-when "Current<0.2 & Flow<": no number after "<" (in "Flow<")'],
    ['Current<0.2 & Flow 5', '--stopped-when "Current<0.2 & Flow 5": expected FEATURE<NUMBER, or several joined by "&"'],
    ['Current<0.2 & Flow<Infinity', '--stopped-when "Current<0.2 & Flow<Infinity": "Infinity" is not a finite number (in "Flow<Infinity")'],
  ])('refuses %s, naming what is wrong', (text, message) => {
    expect(() => parseStoppedWhenOption(text, undefined)).toThrow(message);
  });

  it('leaves out as stopped only the rows where every condition holds: a dead current sensor on a running pump is no stop (its first minute held, as the agent holds it)', () => {
    const rule = { when: [{ feature: 'Current', below: 0.5 }, { feature: 'Flow', below: 5 }], afterStartSeconds: 5 };
    // 10-14: the current reads 0 while the flow runs; 20-24: a stop (both low); 30: the flow unknown (NaN) with the current low (held: the flow not in yet)
    const rows = Array.from({ length: 40 }, (_, i) => [i >= 10 && i < 15 ? 0 : i >= 20 && i < 25 ? 0.01 : i === 30 ? 0.01 : 2.4, i >= 20 && i < 25 ? 0 : i === 30 ? Number.NaN : 30]);
    const ts = rows.map((_, i) => Date.UTC(2026, 0, 1) + i * 1000);
    const { out, stopped, starting, stopping } = stoppedRows(rule, ['Current', 'Flow'], ts, rows);
    expect([...out].flatMap((v, i) => (v ? [i] : []))).toEqual([10, 11, 12, 13, 14, 20, 21, 22, 23, 24, 25, 26, 27, 28, 30]);
    expect([stopped, starting, stopping]).toEqual([5, 4, 6]);
  });
});

describe('the trainer\'s stopped rows with the rule\'s feature in some rows only', () => {
  it('count a stop over the rows without it and leave out its warm-up, as the agent does (a missing value neither counts towards a stop nor ends one)', () => {
    const rule = { when: [{ feature: 'Current', below: 0.5 }], afterStartSeconds: 5 };
    // Current sent in even rows only (NaN in odd ones, as loaded); stopped at 20-25
    const rows = Array.from({ length: 40 }, (_, i) => [i % 2 === 1 ? Number.NaN : i >= 20 && i < 26 ? 0.01 : 2.4]);
    const ts = rows.map((_, i) => Date.UTC(2026, 0, 1) + i * 1000);
    const { out, stopped, starting } = stoppedRows(rule, ['Current'], ts, rows);
    // 20, 22, 24 stopped: the stop counts at 24 (three in a row, 21 and 23 unknown between them: kept, as the stop had not counted yet);
    // 25 unknown inside the stop that counted: taken as stopped (a value not known ends no stop); 26-29: its warm-up, from 25
    expect([...out].flatMap((v, i) => (v ? [i] : []))).toEqual([20, 22, 24, 25, 26, 27, 28, 29]);
    expect([stopped, starting]).toEqual([4, 4]);
  });
});

describe('a stop in the making in the trainer\'s rows (some of the rule\'s conditions met, not all)', () => {
  const rule = { when: [{ feature: 'Current', below: 0.5 }, { feature: 'Flow', below: 5 }], afterStartSeconds: 0 };
  const left = (step: number, rows: number[][]) => {
    const ts = rows.map((_, i) => Date.UTC(2026, 0, 1) + i * step);
    const marks = stoppedRows(rule, ['Current', 'Flow'], ts, rows);
    return { rows: [...marks.out].flatMap((v, i) => (v ? [i] : [])), stopped: marks.stopped, stopping: marks.stopping };
  };
  const running = [2.4, 30];
  const deadCurrent = [0, 30];
  const stoppedRow = [0.01, 0];

  it('leaves out a stop\'s first readings that still show flow, and the stop', () => {
    // 20 s apart: running 0-9, the current down and the flow still read at 10-11, stopped 12-19, running again
    const rows = Array.from({ length: 30 }, (_, i) => (i < 10 || i >= 20 ? running : i < 12 ? deadCurrent : stoppedRow));
    expect(left(20_000, rows)).toEqual({ rows: [10, 11, 12, 13, 14, 15, 16, 17, 18, 19], stopped: 8, stopping: 2 });
  });

  it('keeps a dead sensor\'s readings after three of them, 20 s apart (the hold ran out: a sensor failing on a running pump)', () => {
    const rows = Array.from({ length: 30 }, (_, i) => (i >= 10 && i < 20 ? deadCurrent : running));
    expect(left(20_000, rows)).toEqual({ rows: [10, 11, 12], stopped: 0, stopping: 3 });
    // a dead flow meter the same
    const flow = Array.from({ length: 30 }, (_, i) => (i >= 10 && i < 20 ? [2.4, 0] : running));
    expect(left(20_000, flow).rows).toEqual([10, 11, 12]);
  });

  it('holds for a minute at one reading a second, and only three readings a minute apart', () => {
    const rows = Array.from({ length: 200 }, (_, i) => (i >= 10 && i < 150 ? deadCurrent : running));
    expect(left(1000, rows).rows).toEqual(Array.from({ length: 60 }, (_, i) => 10 + i));
    expect(left(60_000, rows).rows).toEqual([10, 11, 12]);
  });

  it('starts a new hold after a running reading; a reading the rule cannot tell neither counts nor ends one', () => {
    const rows = [running, deadCurrent, deadCurrent, running, deadCurrent, [Number.NaN, Number.NaN], deadCurrent, deadCurrent, deadCurrent, running];
    // 20 s apart: 1-2 held; 4, 6, 7 held (three of the new run), 8 the fourth: kept
    expect(left(20_000, rows).rows).toEqual([1, 2, 4, 6, 7]);
  });

  it('holds a reading with one condition met and the other\'s value unknown until that value comes: a stop\'s beginning, or the usual hold', () => {
    const flowUnknown = [0.01, Number.NaN];
    // 1 s apart, the flow sent every tenth reading. A stop at 10-39: the current ~0 at once, the flow (unknown at 11-19) low at 20 and 30.
    // The stop counts at 30 (its third stopped reading): 31-39, the flow unknown inside it, are taken as stopped, not held.
    const stop = Array.from({ length: 50 }, (_, i) => (i < 10 || i >= 40 ? running : i === 10 || i === 20 || i === 30 ? stoppedRow : flowUnknown));
    expect(left(1000, stop)).toEqual({ rows: Array.from({ length: 30 }, (_, i) => 10 + i), stopped: 12, stopping: 18 });
    // a dead current transmitter, the flow sent every tenth reading at 30 l/min: held as any stop in the making (a minute from its first reading), then kept
    const dead = Array.from({ length: 200 }, (_, i) => (i < 11 ? running : i % 10 === 0 ? deadCurrent : flowUnknown));
    expect(left(1000, dead).rows).toEqual(Array.from({ length: 60 }, (_, i) => 11 + i));
    // the value never comes: held for MAX_CARRY_READINGS readings, then kept (the agent no longer carries the last one to score them)
    const gone = Array.from({ length: 100 }, (_, i) => (i < 10 ? running : flowUnknown));
    expect(left(1000, gone).rows).toEqual(Array.from({ length: MAX_CARRY_READINGS }, (_, i) => 10 + i));
    // nothing met and nothing broken (both unknown): neither held nor ending a hold. 20 s apart, the flow at 30 l/min from 4: the run (1, 3, 4) held for three readings, then kept
    expect(left(20_000, [running, flowUnknown, [Number.NaN, Number.NaN], flowUnknown, deadCurrent, deadCurrent, deadCurrent, running]).rows).toEqual([1, 3, 4]);
  });

  it('never holds under a rule of one condition', () => {
    const one = { when: [{ feature: 'Current', below: 0.5 }], afterStartSeconds: 0 };
    const rows = [running, deadCurrent, [2.4, 0], running];
    const marks = stoppedRows(one, ['Current', 'Flow'], rows.map((_, i) => i * 1000), rows);
    expect([marks.stopped, marks.stopping]).toEqual([1, 0]);
  });
});

describe("the trainer's stopped rows as carry breaks", () => {
  it('mark the stopped and starting rows (the agent starts its window again after them), not those held as stopping (kept in its window)', () => {
    const rule = { when: [{ feature: 'Current', below: 0.5 }, { feature: 'Flow', below: 5 }], afterStartSeconds: 3 };
    // 1 s apart: the flow still read at 10-11 (held), stopped 12-15, its warm-up 16-17 (3 s from 15), running from 18
    const rows = Array.from({ length: 25 }, (_, i) => (i < 10 || i >= 16 ? [2.4, 30] : i < 12 ? [0.01, 30] : [0.01, 0]));
    const ts = rows.map((_, i) => Date.UTC(2026, 0, 1) + i * 1000);
    const { out, restarts } = stoppedRows(rule, ['Current', 'Flow'], ts, rows);
    expect([...out].flatMap((v, i) => (v ? [i] : []))).toEqual([10, 11, 12, 13, 14, 15, 16, 17]);
    expect([...restarts].flatMap((v, i) => (v ? [i] : []))).toEqual([12, 13, 14, 15, 16, 17]);
  });
});
