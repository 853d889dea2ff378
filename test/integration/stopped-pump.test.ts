/**
 * A stopped pump (a model's stopped-when rule) with real onnxruntime sessions on models the
 * trainer fitted: its readings are stored unscored, the first ones after it as a warm-up, then
 * scored on a window that holds no reading from before the stop; a restart reaches the same verdicts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PredictionRow, Reading } from '../../buffer/types.js';
import { InferenceEngine } from '../../inference/engine.js';
import { LoadedModel } from '../../inference/model.js';
import { readingsWithStops, stopModels } from '../support/stops.js';

let withRule: LoadedModel;
let withoutRule: LoadedModel;
/** Current<0.5 and Current<0.4 (two rules), both with a warm-up of 600 s: longer than the 256 readings a pump keeps at 1 Hz. */
let long5: LoadedModel;
let long4: LoadedModel;

beforeAll(async () => {
  const models = stopModels({ version: 'r1' });
  withRule = await LoadedModel.fromBytes(models.withRule, 'r1');
  withoutRule = await LoadedModel.fromBytes(models.withoutRule, 'r1-norule');
  long5 = await LoadedModel.fromBytes(stopModels({ version: 'l5', rule: { when: [{ feature: 'Current', below: 0.5 }], afterStartSeconds: 600 } }).withRule, 'l5');
  long4 = await LoadedModel.fromBytes(stopModels({ version: 'l4', rule: { when: [{ feature: 'Current', below: 0.4 }], afterStartSeconds: 600 } }).withRule, 'l4');
});

afterAll(async () => {
  for (const m of [withRule, withoutRule, long5, long4]) await m.release();
});

/** Running 0-299, stopped 300-399, running 400-599 (1 Hz); warm-up 30 s: 400-428 starting. */
const STOPPED = (i: number) => i >= 300 && i < 400;
const readings = readingsWithStops(600, STOPPED);

async function scoreAll(engine: InferenceEngine, rs: readonly Reading[], batch = 37): Promise<PredictionRow[]> {
  const rows: PredictionRow[] = [];
  for (let i = 0; i < rs.length; i += batch) rows.push(...(await engine.score(rs.slice(i, i + batch), 0)));
  return rows;
}

const verdicts = (rows: readonly PredictionRow[]) => rows.map((r) => [r.score, r.anomaly, r.unscoredReason]);

/**
 * `rs` scored by long5 up to the reading `at(engine)` and by long4, swapped in there, from it on
 * (`rest`), and the rows from that reading on of long4 scoring `rs` from the start (`expected`).
 */
async function swappedToLong4(rs: readonly Reading[], at: (engine: InferenceEngine) => number): Promise<{ expected: PredictionRow[]; rest: PredictionRow[]; swapAt: number }> {
  const reference = new InferenceEngine();
  reference.setModel('default', long4);
  const all = await scoreAll(reference, rs);
  const engine = new InferenceEngine();
  engine.setModel('default', long5);
  const swapAt = at(engine);
  await scoreAll(engine, rs.slice(0, swapAt));
  engine.setModel('default', long4);
  return { expected: all.slice(swapAt), rest: await scoreAll(engine, rs.slice(swapAt)), swapAt };
}
const shadowVerdicts = (rows: readonly PredictionRow[]) => rows.map((r) => r.shadowScore);
/** The rows as the buffer hands them to seed() at a restart. */
const stored = (rows: readonly PredictionRow[]) => rows.map((r) => ({ ts: r.ts, values: r.values, unscoredReason: r.unscoredReason }));
const reasonKind = (r: PredictionRow) => (r.score !== null ? 'scored' : (r.unscoredReason ?? '').replace(/:.*/, ''));

describe('a stopped pump', () => {
  it('stores a stop unscored, warms up after it, then scores a fresh window; no anomaly', async () => {
    const engine = new InferenceEngine();
    engine.setModel('default', withRule);
    const rows = await scoreAll(engine, readings);
    const stop = rows.slice(300, 400);
    expect(stop.every((r) => r.score === null && r.anomaly === null)).toBe(true);
    expect(stop[0]!.unscoredReason).toMatch(/^pump stopped: "Current" = 0\.0\d+, below 0\.5 \(model r1's stopped-when rule\)$/);
    // 30 s of warm-up after the last stopped reading (at 399 s): 400-428
    const starting = rows.slice(400, 429);
    expect(starting.every((r) => r.score === null && /^pump starting: \d+ s since its last stopped reading at 2026-06-01T00:06:39\.000Z, scored from 30 s \(model r1's warm-up\)$/.test(r.unscoredReason ?? ''))).toBe(true);
    expect(starting[0]!.unscoredReason).toMatch(/^pump starting: 1 s /);
    // then a window of 5 fills from 429 on: nothing from before the stop or from the warm-up in it
    expect(rows.slice(429, 433).map((r) => r.unscoredReason)).toEqual([1, 2, 3, 4].map((n) => `window filling: ${n} of 5 readings`));
    expect(rows.slice(433).every((r) => r.score !== null)).toBe(true);
    expect(rows.filter((r) => r.anomaly === true)).toEqual([]);
    const fresh = new InferenceEngine();
    fresh.setModel('default', withRule);
    const alone = await fresh.score(readings.slice(429, 440), 0);
    expect(rows.slice(433, 440).map((r) => r.score)).toEqual(alone.slice(4).map((r) => r.score));
  });

  it('takes a glitch (one or two readings under the bound) for no stop: those readings unscored, no warm-up after them', async () => {
    // a transmitter reading 0 for one sample at 200 and two at 250-251; three in a row at 300-302 count as a stop
    const glitch = (i: number) => i === 200 || i === 250 || i === 251 || (i >= 300 && i <= 302);
    const rs = readingsWithStops(400, glitch);
    const engine = new InferenceEngine();
    engine.setModel('default', withRule);
    const rows = await scoreAll(engine, rs);
    for (const i of [200, 250, 251, 300, 301, 302]) expect(rows[i]!.unscoredReason, `reading ${i}`).toMatch(/^pump stopped: /);
    // after a glitch the window fills again (no window holds it), and no warm-up is waited for
    expect(rows.slice(201, 206).map((r) => r.unscoredReason)).toEqual([1, 2, 3, 4].map((n): string | null => `window filling: ${n} of 5 readings`).concat([null]));
    expect(rows.slice(252, 257).map((r) => r.unscoredReason)).toEqual([1, 2, 3, 4].map((n): string | null => `window filling: ${n} of 5 readings`).concat([null]));
    expect(rows.slice(201, 300).some((r) => /^pump starting/.test(r.unscoredReason ?? ''))).toBe(false);
    // three stopped readings in a row are a stop: its warm-up follows
    expect(rows[303]!.unscoredReason).toMatch(/^pump starting: 1 s since its last stopped reading at /);
  });

  it('is flagged by the same model without the rule (what the rule prevents)', async () => {
    const engine = new InferenceEngine();
    engine.setModel('default', withoutRule);
    const rows = await scoreAll(engine, readings);
    const flagged = rows.slice(300, 400).filter((r) => r.anomaly === true).length;
    expect(flagged).toBeGreaterThan(90);
  });

  it('reaches the same verdicts after a restart in the stop, in the warm-up, or right after it', async () => {
    const reference = new InferenceEngine();
    reference.setModel('default', withRule);
    const expected = await scoreAll(reference, readings);
    for (const cut of [350, 399, 410, 431]) {
      const before = new InferenceEngine();
      before.setModel('default', withRule);
      const stored = await scoreAll(before, readings.slice(0, cut));
      const after = new InferenceEngine();
      after.setModel('default', withRule);
      after.seed('p1', stored.map((r) => ({ ts: r.ts, values: r.values, unscoredReason: r.unscoredReason })));
      const rest = await scoreAll(after, readings.slice(cut));
      expect(verdicts(rest), `restart at ${cut}`).toEqual(verdicts(expected.slice(cut)));
    }
  });

  it('finds a warm-up after a restart from the stored reason when the stop is older than the rows read back', async () => {
    const reference = new InferenceEngine();
    reference.setModel('default', withRule);
    const expected = await scoreAll(reference, readings);
    const after = new InferenceEngine();
    after.setModel('default', withRule);
    // only the rows of the warm-up are read back: none of the stop
    after.seed('p1', expected.slice(405, 420).map((r) => ({ ts: r.ts, values: r.values, unscoredReason: r.unscoredReason })));
    const rest = await scoreAll(after, readings.slice(420));
    expect(verdicts(rest)).toEqual(verdicts(expected.slice(420)));
  });

  it('judges a shadow by its own rule: no shadow score in a stop, while the live model without a rule scores it', async () => {
    const engine = new InferenceEngine();
    engine.setModel('default', withoutRule);
    engine.setShadow('default', withRule);
    const rows = await scoreAll(engine, readings);
    expect(rows.slice(300, 429).every((r) => r.shadowScore === undefined && r.score !== null)).toBe(true);
    expect(rows.slice(433).every((r) => typeof r.shadowScore === 'number')).toBe(true);
    // as the model with the rule scores live: the shadow's window started again after the stop too
    const live = new InferenceEngine();
    live.setModel('default', withRule);
    expect(rows.slice(433).map((r) => r.shadowScore)).toEqual((await scoreAll(live, readings)).slice(433).map((r) => r.score));
  });

  it('judges a reading without the rule\'s feature as before (the window carries the value)', async () => {
    const engine = new InferenceEngine();
    engine.setModel('default', withRule);
    const rs = readingsWithStops(40, () => false);
    delete (rs[20]!.values as Record<string, number | null>).Current;
    const rows = await scoreAll(engine, rs);
    expect(rows[20]!.score).not.toBeNull();
    expect(rows[20]!.imputed).toBe(true);
  });

  it('keeps a resend and a replayed backlog of a stop out as before', async () => {
    const engine = new InferenceEngine();
    engine.setModel('default', withRule);
    await scoreAll(engine, readings.slice(0, 320));
    const [again] = await engine.score([readings[310]!], 0);
    expect(again!.unscoredReason).toMatch(/^not scored: repeats a reading this pump already sent \(same time, same values\)$/);
    const backlog = readingsWithStops(5, () => true, { start: readings[0]!.ts - 3_600_000 });
    const late = await engine.score(backlog, 0);
    expect(late.every((r) => /^not scored: older than this pump's newest reading/.test(r.unscoredReason ?? ''))).toBe(true);
  });

  it('scores a pump at once after a restart that follows a step back of its sender\'s clock: the stop timed on the old clock is forgotten, as without the restart', async () => {
    // a stop (300-399) that counted, then the sender's clock steps back an hour; readings go on at 1 Hz, live
    let now = 0;
    const engine = new InferenceEngine(() => {}, () => now);
    engine.setModel('default', withRule);
    const live = async (rs: readonly Reading[]) => {
      const rows: PredictionRow[] = [];
      for (const r of rs) {
        now += 1000;
        rows.push(...(await engine.score([r], 0)));
      }
      return rows;
    };
    const before = await live(readings);
    const back = readingsWithStops(200, () => false, { start: readings.at(-1)!.ts + 1000 - 3_600_000, seed: 5 });
    const stepped = await live(back.slice(0, 100));
    // the live engine took the new clock after a few late readings and scores the pump
    expect(stepped.slice(-50).every((r) => r.score !== null)).toBe(true);
    const after = new InferenceEngine();
    after.setModel('default', withRule);
    after.seed('p1', stored([...before, ...stepped]));
    const rest = await scoreAll(after, back.slice(100));
    // before the fix: every one "pump starting: 0 s since its last stopped reading at …" (the stop timed on the old clock, an hour ahead of these readings)
    expect(rest.map(reasonKind)).toEqual(rest.map(() => 'scored'));
    expect(verdicts(rest)).toEqual(verdicts(await live(back.slice(100))));
  });

  it('warms up after a stop whose readings carry the rule\'s feature only every other one: a reading without it neither counts towards the stop nor ends it, and is stopped inside a stop that counted', async () => {
    const sparse = readingsWithStops(600, STOPPED);
    for (let i = 1; i < sparse.length; i += 2) delete (sparse[i]!.values as Record<string, number | null>).Current;
    const engine = new InferenceEngine();
    engine.setModel('default', withRule);
    const rows = await scoreAll(engine, sparse);
    for (let i = 300; i < 400; i += 2) expect(rows[i]!.unscoredReason, `reading ${i}`).toMatch(/^pump stopped: "Current" = 0\.0\d+, below 0\.5 \(/);
    // the odd ones of the stop are not stopped (Current unknown): before the stop counted (three stopped readings: 300, 302, 304) their window has no current yet
    expect([rows[301]!.unscoredReason, rows[303]!.unscoredReason]).toEqual(['no value known yet for feature "Current"', 'no value known yet for feature "Current"']);
    // then, inside the stop that counted, taken as stopped: the pump has not been seen to run (before the fix: "pump starting: 1 s since its last stopped reading …")
    for (let i = 305; i < 400; i += 2) expect(rows[i]!.unscoredReason, `reading ${i}`).toBe('pump stopped: "Current" = unknown (bound 0.5) (model r1\'s stopped-when rule: "Current" is not yet known, and a value not known ends no stop)');
    // 30 s of warm-up after the last reading taken as stopped (399): 400-428, then a fresh window of 5 from the first current known (430)
    expect(rows.slice(400, 429).map(reasonKind)).toEqual(rows.slice(400, 429).map(() => 'pump starting'));
    expect(rows[400]!.unscoredReason).toMatch(/^pump starting: 1 s since its last stopped reading at 2026-06-01T00:06:39\.000Z, /);
    expect(rows.slice(429, 434).map((r) => r.unscoredReason)).toEqual(['no value known yet for feature "Current"', ...[1, 2, 3, 4].map((n) => `window filling: ${n} of 5 readings`)]);
    expect(rows.slice(434).every((r) => r.score !== null)).toBe(true);
    expect(rows.filter((r) => r.anomaly === true)).toEqual([]);
  });

  it('warms a model swapped in during a warm-up up after the same stop, though the stop is older than the readings the pump keeps, as if it had scored from the start', async () => {
    // the stop at 300-399; a warm-up of 600 s (until 999); the swap at 700: the 256 readings kept hold none of the stop
    const { expected, rest } = await swappedToLong4(readingsWithStops(1300, STOPPED), () => 700);
    // before the fix: scored from the swap on (its window rebuilt from the readings kept), 300 s into the warm-up
    expect(rest.slice(0, 299).map(reasonKind)).toEqual(rest.slice(0, 299).map(() => 'pump starting'));
    expect(verdicts(rest)).toEqual(verdicts(expected));
  });

  it.each([1, 2])('warms a model swapped in up after a stop that began before the readings the pump keeps (only its last %i among them), as if it had scored from the start', async (tail) => {
    // the stop at 300-399 (1 Hz), a warm-up of 600 s (400-998); swapped when the oldest of the 256 readings kept is 400 - tail
    // the new model's rule judges the readings kept when it scores its first one, which is among them
    const { expected, rest, swapAt } = await swappedToLong4(readingsWithStops(1300, STOPPED), (engine) => 400 - tail + engine.historyNeeded() - 1);
    // before the fix: the new rule saw the stop's last readings only, too few to count (a glitch to it): scored from the swap on, in the warm-up
    expect(rest.slice(0, 999 - swapAt).map(reasonKind)).toEqual(rest.slice(0, 999 - swapAt).map(() => 'pump starting'));
    expect(verdicts(rest)).toEqual(verdicts(expected));
  });

  it('a model swapped in ends a stop that straddles the readings kept at once when its rule calls those readings running: no warm-up of its own', async () => {
    // 300-399 at 0.45 A: stopped by Current<0.5 (long5), running by Current<0.4 (long4)
    const rs = readingsWithStops(1300, STOPPED).map((r, i) => (STOPPED(i) ? { ...r, values: { ...r.values, Current: 0.45 } } : r));
    const engine = new InferenceEngine();
    engine.setModel('default', long5);
    const swapAt = 398 + engine.historyNeeded() - 1;
    const before = await scoreAll(engine, rs.slice(0, swapAt));
    expect(before.slice(400, swapAt).every((r) => r.unscoredReason?.startsWith('pump starting: ')), 'the old rule warms up').toBe(true);
    engine.setModel('default', long4);
    const rest = await scoreAll(engine, rs.slice(swapAt));
    expect(rest.map(reasonKind)).toEqual(rest.map(() => 'scored'));
  });

  it('keeps a shadow of another rule in the warm-up after a restart in it, the stop older than the rows read back', async () => {
    const rs = readingsWithStops(1300, STOPPED);
    const reference = new InferenceEngine();
    reference.setModel('default', long5);
    reference.setShadow('default', long4);
    const expected = await scoreAll(reference, rs);
    expect(expected.slice(400, 1000).every((r) => r.shadowScore === undefined)).toBe(true);
    const after = new InferenceEngine();
    after.setModel('default', long5);
    after.setShadow('default', long4);
    // restarted at 700: the rows read back (as many as the pump keeps) hold none of the stop
    after.seed('p1', stored(expected.slice(700 - after.historyNeeded(), 700)));
    const rest = await scoreAll(after, rs.slice(700));
    // before the fix: the shadow scored from 700 on, 300 s into its warm-up
    expect(shadowVerdicts(rest)).toEqual(shadowVerdicts(expected.slice(700)));
    expect(verdicts(rest)).toEqual(verdicts(expected.slice(700)));
  });
});
