/**
 * A PSI threshold above the largest PSI n rows can reach. PSI over decile bins saturates
 * when every recent value lies in one bin (≈ 8.28 for n ≥ 5 000, 7.78 for n = 2 880, 6.51 for
 * 720), whatever the size of the shift. The stray factor can raise the PSI threshold above that
 * (seen: Temperature 10.39 and Thermocouple 12.79 with n = 2 880, a −30 °C shift printed "ok"),
 * and the KS note then claims "PSI and the stuck/outlier rule still can", which is false.
 */
import { describe, expect, it } from 'vitest';
import { printDrift } from '../../trainer/commands/drift.js';
import { baselineOf, psiOf } from '../../trainer/drift/baseline.js';
import { compareWithBaseline, driftNotes, featureStatus, outsideTrainedRange, psiCannotDrift, psiReachable } from '../../trainer/drift/compare.js';
import { driftNullOf } from '../../trainer/drift/stray.js';
import { mulberry32 } from '../../trainer/eval/criterion.js';

const rand = mulberry32(7);
const training = Array.from({ length: 400 }, (_, i) => Float64Array.of(20 + i / 10 + rand() / 100, 50 + rand()));
const features = ['Temp', 'Flow'];
const baseline = baselineOf(features, training);
const driftNull = driftNullOf(baseline, features, training);

describe('a feature neither PSI nor KS can call drift in', () => {
  it('is not reported "ok" with a note saying PSI still can', () => {
    const recent = Array.from({ length: 400 }, () => Float64Array.of(-500 + rand(), 50 + rand())); // Temp 500 degrees below anything trained
    const report = compareWithBaseline(baseline, features, recent, undefined, [], { driftNull });
    const temp = report.features.find((f) => f.feature === 'Temp')!;
    const shares = baseline.Temp!.shares;
    const maxPsi = Math.max(...shares.map((_, k) => psiOf(shares, shares.map((__, j) => (j === k ? 1 : 0)), recent.length)));
    const lines: string[] = [];
    printDrift({ out: (t: string) => lines.push(t), err: () => {} }, 'pump-1', 'v1', recent.length, report);
    const psiCannot = temp.effective.psi !== null && temp.effective.psi >= maxPsi;
    // Either the shift is called drift, or the output must not claim PSI can still call it.
    if (!temp.drifted && psiCannot) {
      expect(lines.join('\n')).not.toMatch(/Temp: KS cannot call drift:.*PSI and the stuck\/outlier rule still can/);
    }
    expect(temp.drifted || !psiCannot).toBe(true);
  });
});

describe('the largest PSI rows can reach, and the trained-range rule', () => {
  it('computes the PSI of all rows in one decile: 8.28 from 5 000 rows, 7.78 at 2 880, 6.51 at 720', () => {
    const deciles = Array.from({ length: 10 }, () => 0.1);
    expect(psiReachable(deciles, 5000)).toBeCloseTo(8.28, 2);
    expect(psiReachable(deciles, 2880)).toBeCloseTo(7.78, 2);
    expect(psiReachable(deciles, 720)).toBeCloseTo(6.51, 2);
  });

  it('says "PSI not judged" (not "ok") where the stray raised the PSI threshold beyond reach, and notes what still can', () => {
    // A narrow shift inside the trained range: PSI's threshold forced beyond reach by a hand-made null; KS still judges.
    const nul = { version: 1 as const, factor: 1.5, sizes: [{ rows: 50, blocks: 8, psi: { Temp: 20, Flow: 0.01 }, ks: { Temp: 0.1, Flow: 0.01 } }] };
    const same = Array.from({ length: 400 }, (_, i) => Float64Array.of(20 + ((i * 7) % 400) / 10 + rand() / 100, 50 + rand()));
    const report = compareWithBaseline(baseline, features, same, undefined, [], { driftNull: nul });
    const temp = report.features.find((f) => f.feature === 'Temp')!;
    expect(psiCannotDrift(temp)).toBe(true);
    expect(featureStatus(temp)).toMatch(/^ok \(PSI not judged: threshold 30\.000 at or above \d+\.\d{3}, the largest PSI 400 rows can reach\)/);
    expect(driftNotes(400, report).join('\n')).toMatch(/Temp: PSI cannot call drift: .*KS, the trained-range rule and the stuck\/outlier rule still can/);
    expect(featureStatus(report.features.find((f) => f.feature === 'Flow')!)).toBe('ok');
  });

  it('calls a feature whose median lies outside every trained value drift, whatever PSI and KS can say', () => {
    const shifted = Array.from({ length: 400 }, () => Float64Array.of(-30 + rand(), 50 + rand()));
    const report = compareWithBaseline(baseline, features, shifted, undefined, [], { driftNull });
    const temp = report.features.find((f) => f.feature === 'Temp')!;
    expect(temp.drifted).toBe(true);
    expect(temp.reasons.some((r) => /^median -29\.\d+ far outside the trained 20\.\d+\.\.59\.\d+$/.test(r))).toBe(true);
  });

  it('does not call drift on unchanged rows, nor on a few outliers beyond the trained range', () => {
    const again = Array.from({ length: 400 }, (_, i) => Float64Array.of(20 + i / 10 + rand() / 100, i < 20 ? 500 : 50 + rand()));
    const report = compareWithBaseline(baseline, features, again, undefined, [], { driftNull });
    expect(report.features.map((f) => f.reasons.filter((r) => r.startsWith('median')))).toEqual([[], []]);
    expect(outsideTrainedRange(25, 20, 60)).toBe(false);
    expect(outsideTrainedRange(NaN, 20, 60)).toBe(false);
    expect(outsideTrainedRange(-19, 20, 60)).toBe(false); // beyond the range, by less than its width
    expect(outsideTrainedRange(-21, 20, 60)).toBe(true);
    expect(outsideTrainedRange(101, 20, 60)).toBe(true);
  });
});
