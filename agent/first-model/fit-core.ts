/**
 * The first model's fit itself, on packed rows (fit.ts PackedFitRequest), as `train` does it on a
 * range (trainer/train/pipeline.ts): load → the default model's flags as exclusions → clean with
 * its stopped-when rule → the oldest 80 % fitted (`mset`) → the newest 20 % scored through the
 * exported bytes in onnxruntime → refused above train's false-alarm ceiling, or when its runs of
 * flags there are more false alarms than a model raising one a day would raise. Runs on the worker
 * thread (fit-worker.ts) or in the caller's (fitFirstModelHere); deterministic either way.
 */
import { createHash } from 'node:crypto';
import { describeStoppedRule, pauseStarts, quoteName, quoteNames, type StoppedRule } from '../../inference/contract.js';
import { DEFAULT_ALGORITHM } from '../../trainer/algorithms/index.js';
import { ReadingsCollector, type LoadResult } from '../../trainer/data/collect.js';
import type { Cleaned, Target } from '../../trainer/data/clean.js';
import { alarmsRule, countAlarms, describeAlarms, tooManyAlarms, type AlarmCount } from '../../trainer/eval/alarms.js';
import { stoppedRows } from '../../trainer/data/stopped.js';
import { OnnxScorer, rowsOf } from '../../trainer/eval/score.js';
import { fitTable, type FitResult } from '../../trainer/fit.js';
import { columnMeans, columnStds } from '../../trainer/linalg/stats.js';
import { prepareLoaded } from '../../trainer/train/prepare-loaded.js';
import { holdoutSplit, MIN_HOLDOUT_ROWS, MIN_TRAIN_ROWS, TRAIN_DEFAULTS, trainSegmentStarts } from '../../trainer/train/split.js';
import type { PackedRows } from './pack.js';
import { FIRST_MODEL_ORIGIN, FIRST_MODEL_VERSION_PREFIX, type FirstModelFitResult, type PackedFitRequest } from './types.js';

const HOUR_MS = 3_600_000;

export async function fitPacked(req: PackedFitRequest): Promise<FirstModelFitResult> {
  const who = `pump "${req.pumpId}"`;
  const { loaded, flagged } = loadPacked(req.rows);
  // The setting's rule when set (null: none), else the default model's.
  const rule = req.stoppedWhen === undefined ? req.defaultModel.stoppedWhen : (req.stoppedWhen ?? undefined);
  const ruleText = !rule ? '' : req.stoppedWhen ? `the stopped-when rule of PUMPWATCH_FIRST_MODEL_STOPPED_WHEN (${describeStoppedRule(rule)})` : `the default model ${req.defaultModel.version}'s stopped-when rule (${describeStoppedRule(rule)})`;
  const features = loaded.series.features;
  // Certain from the first reading: no span of running makes it fit, so it is said now, not after the hours.
  const missing = rule ? rule.when.filter((c) => !features.includes(c.feature)).map((c) => c.feature) : [];
  // With no reading yet nothing is certain: it waits.
  if (rule && missing.length > 0 && loaded.series.timestamps.length > 0) {
    const spanHours = Math.floor(runningSpan(loaded, flagged, undefined).ms / 36_000) / 100;
    const example = features.find((f) => /current|amp/i.test(f)) ?? features[0] ?? 'FEATURE';
    return {
      kind: 'refused',
      spanHours,
      reason:
        `${ruleText} names ${missing.map(quoteName).join(' and ')}, which ${who} does not send as a feature (its features: ${quoteNames(features)}): its stops cannot be told from its running; ` +
        `set PUMPWATCH_FIRST_MODEL_STOPPED_WHEN (twin firstModel.stoppedWhen) to a rule on this pump's sensors, e.g. "${example}<X" (stopped while ${example} is below X), or none to fit without a rule`,
    };
  }
  const span = runningSpan(loaded, flagged, rule);
  const spanHours = Math.floor(span.ms / 36_000) / 100;
  if (span.ms < req.afterHours * HOUR_MS) {
    const left = [span.stopped > 0 ? `${span.stopped} stopped or starting by ${ruleText}` : '', span.flagged > 0 ? `${span.flagged} flagged by the default model` : ''].filter((s) => s !== '');
    return {
      kind: 'waiting',
      spanHours,
      reason: `the running readings of ${who} span ${hours(spanHours)} of the ${hours(req.afterHours)} needed (${loaded.readings} readings${left.length > 0 ? `, not counted: ${left.join(', ')}` : ''})`,
    };
  }
  const refused = (reason: string, extra: { heldOutRows?: number; heldOutFlagged?: number; heldOutEpisodes?: number; heldOutHours?: number } = {}): FirstModelFitResult => ({ kind: 'refused', reason, spanHours, ...extra });

  const labelled: Target[] = Array.from(flagged, (f): Target => (f === 1 ? 'exclude' : null));
  const { cleaned, stopped } = prepareLoaded(loaded, labelled, rule ? { stoppedWhen: rule } : {});
  const { holdoutStart, trainIdx } = holdoutSplit(cleaned, TRAIN_DEFAULTS.holdoutFraction);
  const heldOutRows = cleaned.series.rows.length - holdoutStart;
  if (trainIdx.length < MIN_TRAIN_ROWS || heldOutRows < MIN_HOLDOUT_ROWS) return refused(tooFew(who, cleaned, trainIdx.length, heldOutRows), { heldOutRows });

  let fit: FitResult;
  try {
    fit = fitTable(
      {
        features: cleaned.series.features,
        timestamps: trainIdx.map((i) => cleaned.series.timestamps[i] as number),
        rows: trainIdx.map((i) => cleaned.series.rows[i] as Float64Array),
        timestampColumn: 'ts',
        ignoredColumns: [],
        segmentStarts: trainSegmentStarts(trainIdx, cleaned.segmentStarts),
      },
      {
        source: req.pumpId,
        algorithm: DEFAULT_ALGORITHM,
        versionPrefix: FIRST_MODEL_VERSION_PREFIX,
        ...(rule && stopped ? { stoppedWhen: rule, stoppedLeftOut: stopped } : {}),
        stuckAfter: cleaned.stuckAfter ?? {},
        metrics: {
          origin: FIRST_MODEL_ORIGIN,
          firstModel: {
            defaultModel: req.defaultModel.version,
            readings: loaded.readings,
            flaggedRowsLeftOut: cleaned.stats.droppedMaintenance,
            trainRows: trainIdx.length,
            heldOutRows,
            runningHours: spanHours,
          },
        },
      },
    );
  } catch (err) {
    // FitError and UsageError: the rows cannot make a model (no feature varies, a name the agent cannot take, …).
    return refused(`cannot fit a model on the ${trainIdx.length} training rows of ${who}: ${err instanceof Error ? err.message : String(err)}`, { heldOutRows });
  }

  const { flagged: heldOutFlagged, alarms } = await judgeHeldOut(fit.bytes, cleaned, holdoutStart);
  const judged = { heldOutRows, heldOutFlagged, heldOutEpisodes: alarms.runs, heldOutHours: round2(alarms.hours) };
  const share = (100 * heldOutFlagged) / heldOutRows;
  const since = new Date(cleaned.series.timestamps[holdoutStart] as number).toISOString();
  if (share > TRAIN_DEFAULTS.maxFar) {
    return refused(
      `model ${fit.metadata.version} flags ${heldOutFlagged} of the ${heldOutRows} newest readings of ${who} it was checked on (${share.toFixed(1)} %), over the ${TRAIN_DEFAULTS.maxFar} % ceiling: ` +
        `the readings from ${since} on differ from the ${trainIdx.length} it was fitted on${shiftText(cleaned, trainIdx, holdoutStart)}`,
      judged,
    );
  }
  if (tooManyAlarms(alarms.runs, alarms.hours)) {
    return refused(
      `model ${fit.metadata.version} would raise ${describeAlarms(alarms)} on the ${heldOutRows} newest readings of ${who} it was checked on ` +
        `(${heldOutFlagged} readings flagged, ${share.toFixed(2)} %): ${alarmsRule()}; it flickers about its threshold on the readings from ${since} on${shiftText(cleaned, trainIdx, holdoutStart)}`,
      judged,
    );
  }
  return {
    kind: 'fitted',
    bytes: fit.bytes,
    sha256: createHash('sha256').update(fit.bytes).digest('hex'),
    version: fit.metadata.version,
    metadata: fit.metadata,
    trainRows: trainIdx.length,
    ...judged,
    spanHours,
  };
}

/**
 * The packed rows as `train` loads a range (counters left out; in time order; a reading repeated
 * with the same time and values once), and per row of the series whether the default model flagged it.
 */
function loadPacked(rows: PackedRows): { loaded: LoadResult; flagged: Uint8Array } {
  const collector = new ReadingsCollector({ leaveOutCounters: true });
  const width = rows.names.length;
  const values: Record<string, number> = {};
  for (let i = 0; i < rows.ts.length; i++) {
    for (let f = 0; f < width; f++) values[rows.names[f] as string] = rows.values[i * width + f] as number;
    collector.add(rows.ts[i] as number, values);
  }
  const { loaded, origins } = collector.finish();
  const flagged = origins === null ? rows.anomaly : Uint8Array.from(origins, (i) => rows.anomaly[i] as number);
  return { loaded, flagged };
}

/**
 * How long the pump ran under watch: the time between consecutive readings both running (neither
 * stopped nor starting by the rule, neither flagged), a pause between them (the agent's rule) not
 * counted. Judged on the values as loaded, as cleaning judges stops.
 */
function runningSpan(loaded: LoadResult, flagged: Uint8Array, rule: StoppedRule | undefined): { ms: number; stopped: number; flagged: number } {
  const { timestamps, rows, features } = loaded.series;
  const marks = rule ? stoppedRows(rule, features, timestamps, rows).out : null;
  const pauses = new Set(pauseStarts(timestamps));
  let ms = 0;
  let stopped = 0;
  let flaggedRows = 0;
  let previousRunning = false;
  for (let i = 0; i < timestamps.length; i++) {
    const isStopped = marks !== null && marks[i] === 1;
    if (isStopped) stopped++;
    else if (flagged[i] === 1) flaggedRows++;
    const running = !isStopped && flagged[i] !== 1;
    if (running && previousRunning && !pauses.has(i)) ms += (timestamps[i] as number) - (timestamps[i - 1] as number);
    previousRunning = running;
  }
  return { ms, stopped, flagged: flaggedRows };
}

/**
 * What the model in `bytes` does on the held-out rows (from `holdoutStart`), scored in onnxruntime
 * as train scores them: the rows it flags, and its false alarms (runs of flags) over the running
 * hours the rows span (trainer/eval/alarms.ts: a pause or a hole the cleaning left ends a run).
 */
async function judgeHeldOut(bytes: Uint8Array, cleaned: Cleaned, holdoutStart: number): Promise<{ flagged: number; alarms: AlarmCount }> {
  const scorer = await OnnxScorer.load(bytes);
  try {
    const held = Array.from({ length: cleaned.series.rows.length - holdoutStart }, (_, k) => holdoutStart + k);
    const scores = await scorer.score(rowsOf(cleaned.series, cleaned.segmentStarts), held);
    const flags = Array.from(scores, (s) => s > scorer.metadata.threshold);
    return { flagged: flags.filter(Boolean).length, alarms: countAlarms(flags, held, cleaned.series.timestamps, new Set(cleaned.segmentStarts)) };
  } finally {
    await scorer.release();
  }
}

/** `; the held-out mean moved from the fitted one by Pressure +4.1, Current −2.3 standard deviations` (the features most moved, at least 1), or ''. */
function shiftText(cleaned: Cleaned, trainIdx: readonly number[], holdoutStart: number): string {
  const train = trainIdx.map((i) => cleaned.series.rows[i] as Float64Array);
  const held = cleaned.series.rows.slice(holdoutStart);
  const mean = columnMeans(train);
  const sd = columnStds(train, mean);
  const heldMean = columnMeans(held);
  const moved = cleaned.series.features
    .map((name, f) => ({ name, z: (sd[f] as number) > 0 ? ((heldMean[f] as number) - (mean[f] as number)) / (sd[f] as number) : 0 }))
    .filter((m) => Math.abs(m.z) >= 1)
    .sort((a, b) => Math.abs(b.z) - Math.abs(a.z) || (a.name < b.name ? -1 : 1))
    .slice(0, 3);
  if (moved.length === 0) return '';
  return `; the held-out mean moved from the fitted one by ${moved.map((m) => `${m.name} ${m.z > 0 ? '+' : '−'}${Math.abs(m.z).toFixed(1)}`).join(', ')} standard deviations`;
}

function tooFew(who: string, cleaned: Cleaned, train: number, held: number): string {
  const s = cleaned.stats;
  const missing = Object.entries(s.missingByFeature)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([name, n]) => `${name} in ${n}`);
  return (
    `not enough usable readings of ${who}: ${train} to fit on (need ${MIN_TRAIN_ROWS}) and ${held} held out (need ${MIN_HOLDOUT_ROWS}) from ${s.inputRows} readings ` +
    `(${s.droppedStopped ?? 0} stopped or starting, ${s.droppedMaintenance} flagged by the default model, ${s.droppedMissing} with a value missing${missing.length > 0 ? `: ${missing.join(', ')}` : ''})`
  );
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

/** `5.25 h` */
function hours(h: number): string {
  return `${Number(h.toFixed(2))} h`;
}
