/**
 * Runs of one repeated value in a feature's readings: what cleaning calls a stuck sensor in the
 * training data (clean.ts, step 2), and what the model carries to the agent so it can tell a frozen
 * sensor live (`pumpwatch.stuck_after`, inference/contract.ts StuckAfter). One test for both:
 * a feature is a noisy analog signal when, outside runs of `stuckRows` or more, its value changes
 * between at least half of its consecutive readings (a transmitter with noise). A feature that
 * holds its value by nature (a set point, an on/off status, a slow transmitter polled fast) is not,
 * and is never judged stuck.
 */
import { MAX_STUCK_AFTER, MIN_STUCK_AFTER, type StuckAfter } from '../../inference/contract.js';

/** A feature's value must change between at least this share of its consecutive readings (outside long runs) to be a noisy analog signal. */
export const MIN_CHANGE_SHARE = 0.5;

/**
 * The frozen-sensor bound is this many times the longest run a noisy feature showed in training
 * (never below MIN_STUCK_AFTER). Why 3: the longest run of a noisy signal varies from recording to
 * recording of the same pump by about that much (SKAB's flow meter: 12 to 43 readings over its 16
 * valve1 recordings of ~1 100 readings; its pressure 9 to 18), and where successive repeats were
 * independent, a run three times the longest of N readings would come once in about N³ readings.
 */
export const STUCK_AFTER_FACTOR = 3;

/** One feature's runs of identical present values. */
export interface RunProfile {
  /** Runs of at least `stuckRows` readings, [start, end). */
  long: Array<[number, number]>;
  /** Of the shorter runs: how many (each ends in a change), the readings they hold, the longest. */
  changes: number;
  steps: number;
  longest: number;
}

/**
 * Calls `each(start, end)` for every run [start, end) of identical present values of feature f (no
 * array of runs: a million rows). A missing value (NaN), or a row `skip` names, ends a run and is in none.
 */
export function forEachRun(rows: readonly Float64Array[], f: number, each: (start: number, end: number) => void, skip?: (i: number) => boolean): void {
  const absent = (i: number): boolean => Number.isNaN(rows[i]?.[f]) || (skip?.(i) ?? false);
  let start = 0;
  for (let i = 1; i <= rows.length; i++) {
    const same = i < rows.length && !absent(i) && rows[i]?.[f] === rows[start]?.[f];
    if (same) continue;
    if (!absent(start)) each(start, i);
    start = i;
  }
}

/** The runs of feature f: the long ones (`stuckRows` or more) apart, the rest counted. */
export function runProfile(rows: readonly Float64Array[], f: number, stuckRows: number, skip?: (i: number) => boolean): RunProfile {
  const profile: RunProfile = { long: [], changes: 0, steps: 0, longest: 0 };
  forEachRun(rows, f, (a, b) => {
    if (b - a >= stuckRows) profile.long.push([a, b]);
    else {
      profile.changes++;
      profile.steps += b - a;
      profile.longest = Math.max(profile.longest, b - a);
    }
  }, skip);
  return profile;
}

/** True when the feature is a noisy analog signal: outside the long runs, its value changes between at least half of its consecutive readings. */
export function noisyAnalog(profile: RunProfile): boolean {
  return profile.steps > 0 && profile.changes / profile.steps >= MIN_CHANGE_SHARE;
}

/** The frozen-sensor bound of a noisy feature whose longest run in training was `longest` readings. */
export function stuckAfterFor(longest: number): number {
  return Math.min(MAX_STUCK_AFTER, Math.max(MIN_STUCK_AFTER, Math.ceil(STUCK_AFTER_FACTOR * longest)));
}

/**
 * The frozen-sensor bounds of a model trained on `rows` (raw values: none carried forward, which
 * would make runs of its own): one per noisy analog feature, from its longest run shorter than
 * `stuckRows` (longer ones are stuck runs, which cleaning removes). `skip`: rows that are not
 * training rows (stopped, maintenance): they end a run. `judged`: the columns looked at (default all).
 */
export function stuckAfterOf(features: readonly string[], rows: readonly Float64Array[], stuckRows: number, skip?: (i: number) => boolean, judged: (f: number) => boolean = () => true): StuckAfter {
  const out: Record<string, number> = {};
  features.forEach((name, f) => {
    if (!judged(f)) return;
    const profile = runProfile(rows, f, stuckRows, skip);
    if (noisyAnalog(profile)) out[name] = stuckAfterFor(profile.longest);
  });
  return out;
}
