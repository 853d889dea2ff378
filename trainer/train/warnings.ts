/**
 * What `train` tells the data scientist about the data and the challenger beyond the decision:
 * cleaning that removed much of a feature (the model then never saw those values, and the agent,
 * which scores every reading as it comes, will flag them), rows dropped for one feature, features
 * left out or ignored, a challenger that flags no positive at all, and one that flags many more raw
 * held-out readings (as the agent scores them) than cleaned ones. Printed under the
 * decision and in the report; none of them blocks a promotion.
 */
import { overCeiling } from './decide.js';
import type { CleanStats } from '../data/clean.js';
import type { LoadResult } from '../data/load.js';
import type { AgentView } from '../eval/as-agent.js';
import type { Evaluation } from '../eval/criterion.js';

/** Share of a feature's readings that cleaning may remove before `train` warns. */
export const CLEANED_SHARE_WARNING = 0.05;
/**
 * Percentage points by which the challenger's false-alarm rate on the raw held-out readings (as
 * the agent scores them) may exceed its rate on the cleaned held-out rows before `train` warns.
 */
export const RAW_FAR_WARNING_POINTS = 2;

const pct = (part: number, whole: number) => `${((100 * part) / Math.max(1, whole)).toFixed(part * 1000 < whole ? 1 : 0)} %`;
const list = (names: readonly string[]) => names.join(', ');

/** `exclude`: the names `--exclude` gave (one the pump never sent is named: a typo would leave the feature in). */
export function dataWarnings(
  loaded: Pick<LoadResult, 'readings' | 'droppedFeatures' | 'staleFeatures' | 'excludedFeatures' | 'counterFeatures'>,
  stats: CleanStats,
  constantFeatures: readonly string[],
  exclude: readonly string[] = [],
): string[] {
  const out: string[] = [];
  for (const c of loaded.counterFeatures) {
    out.push(
      `left out ${c.name}: it only grows over the range (a counter: ${c.falls} decrease${c.falls === 1 ? '' : 's'} in ${c.rises + c.falls} changes); ` +
        'a model of its level would flag every reading once it passes the trained values',
    );
  }
  const unseen = exclude.filter((name) => !loaded.excludedFeatures.includes(name));
  if (unseen.length > 0) out.push(`--exclude names ${list(unseen)}, which no reading of the range had`);
  const n = stats.inputRows;
  for (const [name, removed] of Object.entries(stats.stuckValues)) {
    if (removed > CLEANED_SHARE_WARNING * n) {
      out.push(
        `${name}: ${removed} of ${n} readings (${pct(removed, n)}) were long runs of one repeated value and were removed as a stuck sensor; ` +
          'if the pump stood still (or the sensor really held that value) then, the model has not seen that state and the agent will flag it',
      );
    }
  }
  for (const [name, removed] of Object.entries(stats.outliers)) {
    if (removed > CLEANED_SHARE_WARNING * n) {
      out.push(`${name}: ${removed} of ${n} readings (${pct(removed, n)}) were removed as outliers; the model has not seen those values and the agent will flag them`);
    }
  }
  const missing = Object.entries(stats.missingByFeature).filter(([, rows]) => rows > CLEANED_SHARE_WARNING * n);
  if (missing.length > 0) {
    out.push(
      `${stats.droppedMissing} of ${n} rows (${pct(stats.droppedMissing, n)}) were dropped for missing values: ` +
        `${missing.map(([name, rows]) => `${name} missing in ${rows}`).join(', ')} (removed as above, or not sent in part of the range: a sensor added, renamed or out of service)`,
    );
  }
  if (loaded.staleFeatures.length > 0) {
    out.push(`left out ${list(loaded.staleFeatures)}: present in most readings but in none of the most recent 10 %; the pump no longer sends ${loaded.staleFeatures.length > 1 ? 'them' : 'it'}`);
  }
  if (loaded.droppedFeatures.length > 0) out.push(`left out ${list(loaded.droppedFeatures)}: present in fewer than half of the readings`);
  if (constantFeatures.length > 0) {
    out.push(`${list(constantFeatures)} did not vary in the trained rows: the model ignores ${constantFeatures.length > 1 ? 'them' : 'it'}, but the agent still needs ${constantFeatures.length > 1 ? 'them' : 'it'} in every pump reading`);
  }
  return out;
}

/**
 * A challenger that flags none of the positives, or none of the labelled fault rows among them; a
 * comparison without a single normal row; a challenger above the false-alarm ceilings (`maxFar`,
 * or too many runs of flags: decide.ts overCeiling; promoted all the same when no model is live or
 * the live one cannot score the data). The rows counted are the cleaned held-out rows the decision
 * compared, and the warning says so, with what the agent misses of the raw readings in confirmed
 * faults (`raw`, eval/as-agent.ts) beside it: a warning of none flagged next to an `as agent` line
 * that missed 5 of 6 read as a contradiction.
 */
export function evaluationWarnings(e: Evaluation, maxFar?: number, maxAlarmsPerDay?: number, raw?: AgentView): string[] {
  const out: string[] = [];
  const positives = e.counts.tp + e.counts.fn;
  const inRaw = raw && raw.faults > 0 ? `; as the agent scores the raw held-out readings, it misses ${raw.missedFaults} of the ${raw.faults} in confirmed faults` : '';
  if (positives > 0 && e.counts.tp === 0) {
    const what =
      e.criterion === 'labels' ? 'cleaned held-out rows inside confirmed faults' : e.labelled ? 'positives (synthetic faults and cleaned held-out rows inside confirmed faults)' : 'synthetic faults in the cleaned held-out rows';
    out.push(`the challenger flags none of the ${positives} ${what} (MAR 100 %): at its threshold it would raise no alarm on them${inRaw}`);
  } else if (e.labelled && e.labelled.missed === e.labelled.rows) {
    out.push(`the challenger flags none of the ${e.labelled.rows} cleaned held-out rows inside confirmed faults: at its threshold it would raise no alarm on them${inRaw}`);
  }
  if (e.counts.fp + e.counts.tn === 0) {
    out.push('every held-out row lies inside a confirmed fault: there is no normal row to count false alarms on (FAR reads 0), and neither the balanced accuracy nor the false-alarm ceiling sees a model that flags everything');
  } else if (maxFar !== undefined) {
    const over = overCeiling(e, { maxFar, maxAlarmsPerDay });
    if (over !== null) out.push(`the challenger ${over}`);
  }
  return out;
}

/**
 * A challenger that raises many more alarms on the raw held-out readings, scored as the agent
 * scores them (eval/as-agent.ts), than on the cleaned held-out rows the decision compared.
 */
export function rawReadingWarnings(e: Evaluation, raw: AgentView): string[] {
  if (raw.normal === 0 || raw.far <= e.far + RAW_FAR_WARNING_POINTS) return [];
  return [
    `on the raw held-out readings, scored as the agent scores them, the challenger flags ${raw.far.toFixed(2)} % of ${raw.normal} normal readings, ` +
      `against ${e.far.toFixed(2)} % of the cleaned held-out rows the decision compared: it flags readings that cleaning removed or altered ` +
      '(stuck runs, outliers, rows with a missing value: see the cleaning line and the warnings above); if they are real states of the pump ' +
      '(a stop, a set point held for hours), the agent will raise alarms on them in the field',
  ];
}
