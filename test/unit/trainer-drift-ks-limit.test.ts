/**
 * A KS threshold of 1 or more, which no KS distance can exceed: on a model trained on a short
 * range (its training rows' own blocks strayed far from its baseline, and the threshold is
 * STRAY_FACTOR × that) or on very few rows. `drift` used to print `KS > 1.123` as if it judged;
 * it now says, per such feature, that KS cannot call drift there, why, and what still can.
 */
import { describe, expect, it } from 'vitest';
import { printDrift } from '../../trainer/commands/drift.js';
import { baselineOf } from '../../trainer/drift/baseline.js';
import { compareWithBaseline, featureStatus, ksCannotDrift } from '../../trainer/drift/compare.js';
import { driftNullOf } from '../../trainer/drift/stray.js';
import { mulberry32 } from '../../trainer/eval/criterion.js';

const rand = mulberry32(7);
/** A short training range in time order: `Temp` climbs all along it (a warm-up), `Flow` is noise. */
const training = Array.from({ length: 200 }, (_, i) => Float64Array.of(20 + i / 10 + rand() / 100, 50 + rand()));
const features = ['Temp', 'Flow'];
const baseline = baselineOf(features, training);
const driftNull = driftNullOf(baseline, features, training);

function printed(rows: Float64Array[]): string[] {
  const report = compareWithBaseline(baseline, features, rows, undefined, [], { driftNull });
  const lines: string[] = [];
  printDrift({ out: (t: string) => lines.push(t), err: () => {} }, 'pump-1', 'v1', rows.length, report);
  return lines;
}

describe('a KS threshold no KS distance can exceed', () => {
  it('is said per feature on a model trained on a short range: why, and what can still call drift', () => {
    // Each block of 50 of the 200 training rows covers a quarter of Temp's climb, far from the whole baseline: × 1.5, above 1.
    const recent = Array.from({ length: 200 }, () => Float64Array.of(40 + rand(), 50 + rand()));
    const report = compareWithBaseline(baseline, features, recent, undefined, [], { driftNull });
    const temp = report.features.find((f) => f.feature === 'Temp')!;
    expect(temp.effective.ks).toBeGreaterThanOrEqual(1);
    expect(temp.ks).toBe(1); // every recent value is above the baseline: the largest KS there is, and still not above the threshold
    expect(temp.reasons).not.toContain('KS');
    expect(ksCannotDrift(report.features.find((f) => f.feature === 'Flow')!)).toBe(false);

    const lines = printed(recent);
    const note = lines.find((l) => l.startsWith('  Temp: KS cannot call drift'));
    expect(note).toBe(
      `  Temp: KS cannot call drift: its threshold ${temp.effective.ks.toFixed(3)} is at least 1, the largest KS distance there is, because blocks of 50 of the model's own training rows strayed from its baseline by KS ${temp.stray!.ks / 1.5} (× 1.5): ` +
        'the model was trained on too short a range to show how far unchanged data wanders; retrain it on a longer range; ' +
        `only the trained-range rule (median far outside the training values) and the stuck/outlier rule can (PSI cannot either: its threshold is at or above the ${temp.psiMax.toFixed(3)} these rows can reach)`,
    );
    expect(lines.filter((l) => /^ {2}\w+: KS cannot call drift:/.test(l))).toHaveLength(1); // not Flow
    expect(lines.find((l) => l.startsWith('  Temp '))).toMatch(/ \d\.\d{3} {2}.*\(KS cannot call drift: threshold at least 1, see the note\)$/);
    expect(featureStatus(report.features.find((f) => f.feature === 'Flow')!)).not.toContain('KS cannot');
  });

  it('is said on very few rows, naming the rows as the cause and from how many rows KS can judge, and the training range where no row count would do', () => {
    const lines = printed(training.slice(0, 3));
    // Flow: 1.95/√n_eff falls below 1 from 4 rows on. Temp: the 50-row blocks' stray keeps KS's threshold at 1.5 at any length.
    expect(lines).toContain(
      '  Flow: KS cannot call drift: its threshold 1.134 is at least 1, the largest KS distance there is, because the 3 rows compared are too few (KS 1.95/√n_eff): ' +
        'KS can call drift in it from 4 rows on; compare a longer range; only the stuck/outlier rule can (PSI is not judged either)',
    );
    expect(lines.find((l) => l.startsWith('  Temp: KS cannot call drift'))).toMatch(/because blocks of 50 of the model's own training rows strayed .*; retrain it on a longer range; only the stuck\/outlier rule can \(PSI is not judged either\)$/);
  });

  it('is not said where KS can judge', () => {
    const steady = Array.from({ length: 2000 }, () => Float64Array.of(rand(), rand()));
    const base = baselineOf(['a', 'b'], steady);
    const report = compareWithBaseline(base, ['a', 'b'], steady.slice(0, 500), undefined, [], { driftNull: driftNullOf(base, ['a', 'b'], steady) });
    const lines: string[] = [];
    printDrift({ out: (t: string) => lines.push(t), err: () => {} }, 'pump-1', 'v1', 500, report);
    expect(lines.join('\n')).not.toContain('KS cannot call drift');
  });
});
