/**
 * False alarms as a technician meets them: each run of flagged normal readings is one alarm (the
 * agent alerts when a run begins), however many readings it flags. A model whose scores hover about
 * its threshold flags few readings, in many short runs: within a ceiling on the share of readings
 * flagged (`--max-far`), it can still raise dozens of alarms a day. Used by `train`'s decision
 * (train/decide.ts, on the normal held-out rows) and by the first model fitted on the gateway
 * (agent/first-model/fit-core.ts, on its held-out rows). Storage-free.
 */

/** The alarm rate tolerated: about what a technician reads before ignoring a pump's alarms. */
export const ALARMS_PER_DAY = 1;
/** Too many: a Poisson count at ALARMS_PER_DAY over the hours reaches them less often than this. */
export const ALARMS_SIGNIFICANCE = 0.01;
/** And never fewer than this: an alarm or two in a few hours never refuses a model by chance. */
export const ALARMS_AT_LEAST = 3;

/** Runs of flags (alarms) and the running hours they were counted over. */
export interface AlarmCount {
  runs: number;
  hours: number;
}

/**
 * False alarms among rows scored in time order: `flags[k]` for row `rows[k]` (indices into a
 * series, ascending). A run of flags ends at an unflagged row, at a row that does not follow the
 * one before it (a row left out between them), and at a segment start (a pause or a hole: after
 * it, a flag is a new alarm). A run that holds a `confirmed` row (inside a technician's
 * confirmed-fault label) is that fault's alert, not a false alarm: a windowed model still flags a
 * few readings after a fault ends, and a label's times rarely match the fault's to the reading.
 * The hours are the intervals between consecutive rows neither of them confirmed, but across
 * those breaks: the normal running time.
 */
export function countAlarms(
  flags: readonly boolean[],
  rows: readonly number[],
  timestamps: ArrayLike<number>,
  segmentStarts: ReadonlySet<number>,
  confirmed: ReadonlySet<number> = new Set(),
): AlarmCount {
  let runs = 0;
  let ms = 0;
  let inRun = false;
  let runConfirmed = false;
  const close = (): void => {
    if (inRun && !runConfirmed) runs++;
    inRun = false;
    runConfirmed = false;
  };
  rows.forEach((row, k) => {
    const joined = k > 0 && row === (rows[k - 1] as number) + 1 && !segmentStarts.has(row);
    if (joined && !confirmed.has(row) && !confirmed.has(row - 1)) ms += (timestamps[row] as number) - (timestamps[row - 1] as number);
    if (!joined || flags[k] !== true) close();
    if (flags[k] === true) {
      inRun = true;
      if (confirmed.has(row)) runConfirmed = true;
    }
  });
  close();
  return { runs, hours: ms / 3_600_000 };
}

/**
 * Whether `runs` alarms in `hours` of running are too many for a model raising `perDay` a day
 * (default ALARMS_PER_DAY; 0: never too many): at least ALARMS_AT_LEAST, and a Poisson count at
 * that rate reaches them with probability below ALARMS_SIGNIFICANCE (at one a day: 3 or more in
 * 4.8 h; 5 or more in 24 h).
 */
export function tooManyAlarms(runs: number, hours: number, perDay: number = ALARMS_PER_DAY): boolean {
  if (runs < ALARMS_AT_LEAST || !(perDay > 0)) return false;
  const lambda = (perDay * Math.max(hours, 0)) / 24;
  // P(N ≥ runs) = 1 − Σ_{i<runs} e^−λ λ^i / i!
  let term = Math.exp(-lambda);
  let below = 0;
  for (let i = 0; i < runs; i++) {
    below += term;
    term *= lambda / (i + 1);
  }
  return 1 - below < ALARMS_SIGNIFICANCE;
}

/** `13 false alarms (runs of flagged readings) in 9.62 h of running, 32.4 a day` */
export function describeAlarms(a: AlarmCount): string {
  return `${a.runs} false alarm${a.runs === 1 ? '' : 's'} (runs of flagged readings) in ${Number(a.hours.toFixed(2))} h of running, ${(a.runs / Math.max(a.hours / 24, 1 / 24)).toFixed(1)} a day`;
}

/** `more than a model raising 1 a day would (p < 0.01)` */
export function alarmsRule(perDay: number = ALARMS_PER_DAY): string {
  return `more than a model raising ${perDay} a day would (p < ${ALARMS_SIGNIFICANCE})`;
}
