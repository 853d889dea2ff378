/**
 * The verdict of a drift comparison (drift/verdict.ts): `drift` when anything judged drifted,
 * whatever was not judged; `inconclusive` when nothing drifted and some feature was not judged;
 * `no drift` only when every feature was judged. The exit code follows it.
 */
import { describe, expect, it } from 'vitest';
import { driftCommand, printDrift } from '../../trainer/commands/drift.js';
import { baselineOf } from '../../trainer/drift/baseline.js';
import { compareWithBaseline } from '../../trainer/drift/compare.js';
import { driftNullOf } from '../../trainer/drift/stray.js';
import { spanOf } from '../../trainer/drift/verdict.js';
import { EXIT } from '../../trainer/errors.js';
import { mulberry32 } from '../../trainer/eval/criterion.js';

const rand = mulberry32(11);
/** A short training range: `Temp` climbs all along it (a warm-up: KS cannot judge it at any window length), `Flow` is noise. */
const training = Array.from({ length: 200 }, (_, i) => Float64Array.of(20 + i / 10 + rand() / 100, 50 + rand()));
const features = ['Temp', 'Flow'];
const baseline = baselineOf(features, training);
const driftNull = driftNullOf(baseline, features, training);

function printed(rows: Float64Array[]): { lines: string[]; verdict: string } {
  const report = compareWithBaseline(baseline, features, rows, undefined, [], { driftNull });
  const lines: string[] = [];
  printDrift({ out: (t: string) => lines.push(t), err: () => {} }, 'pump-1', 'v1', rows.length, report, 10_000);
  return { lines, verdict: report.verdict };
}

describe('the drift verdict', () => {
  it('is drift when a judged feature drifted, and still names the feature that was not judged and why', () => {
    const { lines, verdict } = printed(Array.from({ length: 200 }, () => Float64Array.of(30 + rand(), 53 + rand())));
    expect(verdict).toBe('drift');
    expect(lines.at(-1)).toBe('  drift: Flow');
    // PSI can judge Temp from some hundreds of rows (the 50-row blocks' stray stays below what they reach); KS at no length.
    expect(lines.at(-2)).toMatch(/^ {2}not judged: Temp: the 200 recent rows are too few; PSI or KS can call drift in it from \d{3} rows on, about \d+ h( \d+ min)? at the pump's observed 10 s between readings; compare a longer range$/);
  });

  it('is inconclusive when nothing judged drifted and a feature could not be judged', () => {
    const { lines, verdict } = printed(Array.from({ length: 200 }, () => Float64Array.of(30 + rand(), 50 + rand())));
    expect(verdict).toBe('inconclusive');
    expect(lines.at(-1)).toBe('  inconclusive: no drift in the 1 feature judged (Flow); 1 not judged (Temp): see "not judged" above');
  });

  it('is no drift only when every feature was judged', () => {
    const steady = Array.from({ length: 2000 }, () => Float64Array.of(rand(), rand()));
    const base = baselineOf(['a', 'b'], steady);
    const report = compareWithBaseline(base, ['a', 'b'], steady.slice(0, 500), undefined, [], { driftNull: driftNullOf(base, ['a', 'b'], steady) });
    expect(report.verdict).toBe('no drift');
    expect(report.features.every((f) => f.notJudged === null)).toBe(true);
  });

  it("has an exit code of its own, distinct from failure, usage, drift and train-all's data failures, and documented in --help", () => {
    expect(EXIT.inconclusive).toBe(5);
    expect(new Set(Object.values(EXIT)).size).toBe(Object.values(EXIT).length);
    expect(driftCommand.help).toMatch(/5 inconclusive \(nothing judged drifted, some features not judged\)/);
  });

  it('gives window lengths a person can type', () => {
    expect([spanOf(40_000), spanOf(50 * 60_000), spanOf(125 * 60_000), spanOf(3 * 86_400_000)]).toEqual(['40 s', '50 min', '2 h 5 min', '3 days']);
  });
});
