/**
 * The bottom line of a drift comparison. `no drift` is said only when every feature was judged:
 * a 20-row window inside a bearing fault, where PSI was not judged and KS could not call drift in
 * 5 of 8 features, used to end in `no drift` (exit 0), and its note blamed the model's training
 * range when the window was what was short. A feature neither PSI nor KS can call drift in
 * (compare.ts `notJudged`) makes the verdict `inconclusive` unless something drifted, and a line
 * per cause says which features and what would judge them: a longer window (how many rows, and
 * how long that is at the pump's observed interval), or a retrain on a longer range or more rows.
 */
import type { DriftReport, FeatureDrift } from './compare.js';

/** `Temp, Flow` of the features that were not judged for `cause`. */
function names(features: readonly FeatureDrift[]): string {
  return features.map((f) => f.feature).join(', ');
}

/** `2 h 5 min`, `50 min`, `40 s`: a window length to give as --from/--to or --days. */
export function spanOf(ms: number): string {
  const s = Math.ceil(ms / 1000);
  if (s < 60) return `${s} s`;
  const min = Math.ceil(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return min % 60 === 0 ? `${h} h` : `${h} h ${min % 60} min`;
  return `${Math.ceil(h / 24)} days`;
}

/** The median time between consecutive readings (ms), NaN with fewer than 2 or none apart. */
export function observedInterval(timestamps: ArrayLike<number>): number {
  const gaps: number[] = [];
  for (let i = 1; i < timestamps.length; i++) {
    const gap = (timestamps[i] as number) - (timestamps[i - 1] as number);
    if (gap > 0) gaps.push(gap);
  }
  if (gaps.length === 0) return NaN;
  gaps.sort((a, b) => a - b);
  return gaps[gaps.length >> 1] as number;
}

/**
 * One line per cause of features not judged (none when every feature was): `not judged: Flow,
 * Current: 20 recent rows are too few; PSI or KS can call drift in them from 50 rows on (Flow
 * from 50, Current from 50), about 50 min at the pump's observed 1 min between readings; compare a
 * longer range`. `intervalMs`: the observed time between readings (NaN: not said).
 */
export function notJudgedLines(report: DriftReport, intervalMs = NaN): string[] {
  const out: string[] = [];
  const recent = report.features.filter((f) => f.notJudged?.cause === 'recent-rows');
  if (recent.length > 0) {
    const needed = Math.max(...recent.map((f) => f.notJudged?.from ?? 0));
    const each = [...new Set(recent.map((f) => f.notJudged?.from))].length > 1 ? ` (${recent.map((f) => `${f.feature} from ${f.notJudged?.from}`).join(', ')})` : '';
    const span = Number.isFinite(intervalMs) ? `, about ${spanOf(needed * intervalMs)} at the pump's observed ${spanOf(intervalMs)} between readings` : '';
    const rows = Math.max(...recent.map((f) => f.recentCount));
    out.push(`not judged: ${names(recent)}: the ${rows} recent rows are too few; PSI or KS can call drift in ${recent.length > 1 ? 'them' : 'it'} from ${needed} rows on${each}${span}; compare a longer range`);
  }
  const range = report.features.filter((f) => f.notJudged?.cause === 'training-range');
  if (range.length > 0) {
    out.push(
      `not judged: ${names(range)}: at no window length: the model's own training rows strayed from its baseline further than PSI and KS can reach ` +
        '(the notes above): it was trained on too short a range to show how far unchanged data wanders; retrain it on a longer range',
    );
  }
  const few = report.features.filter((f) => f.notJudged?.cause === 'baseline-rows');
  if (few.length > 0) {
    const counts = [...new Set(few.map((f) => f.baselineCount ?? '?'))].join('/');
    out.push(`not judged: ${names(few)}: at no window length: the baseline was made of ${counts} training rows, too few for PSI (5 per bin) and for KS; retrain it on more rows`);
  }
  return out;
}

/**
 * The last line: `drift: Flow, Current (new)`, `no drift` (every feature judged), or
 * `inconclusive: no drift in the 3 features judged (…); 5 not judged (…)`.
 */
export function verdictLine(report: DriftReport, driftedNames: readonly string[]): string {
  if (report.verdict === 'drift') return `drift: ${driftedNames.join(', ')}`;
  if (report.verdict === 'no drift') return 'no drift';
  const judged = report.features.filter((f) => f.notJudged === null);
  const not = report.features.filter((f) => f.notJudged !== null);
  const inJudged = judged.length === 0 ? 'no feature could be judged' : `no drift in the ${judged.length} feature${judged.length === 1 ? '' : 's'} judged (${names(judged)})`;
  return `inconclusive: ${inJudged}; ${not.length} not judged (${names(not)}): see "not judged" above`;
}

/**
 * What was not judged, in one clause for `train --if-drifted`'s skip line: `Temp, Flow (from 1200
 * rows on, 20 given), Pressure (at no window length: the live model was trained on too short a
 * range; retrain it on a longer one)`.
 */
export function notJudgedBrief(report: DriftReport): string {
  const parts: string[] = [];
  const recent = report.features.filter((f) => f.notJudged?.cause === 'recent-rows');
  if (recent.length > 0) parts.push(`${names(recent)} (from ${Math.max(...recent.map((f) => f.notJudged?.from ?? 0))} rows on, ${Math.max(...recent.map((f) => f.recentCount))} given)`);
  const range = report.features.filter((f) => f.notJudged?.cause === 'training-range');
  if (range.length > 0) parts.push(`${names(range)} (at no window length: the live model was trained on too short a range; retrain it on a longer one)`);
  const few = report.features.filter((f) => f.notJudged?.cause === 'baseline-rows');
  if (few.length > 0) parts.push(`${names(few)} (at no window length: the live model's baseline has too few rows; retrain it on more)`);
  return parts.join(', ');
}
