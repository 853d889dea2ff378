/**
 * How a challenger and the live model are compared: on the same held-out rows (the most recent
 * part of the range), each at its own threshold, with the same metric: the balanced accuracy
 * 1 − (FAR + MAR)/2 (FAR and MAR shown beside it, and F1).
 *
 * - `labels`: when technicians' labels mark enough held-out rows as confirmed faults, at least
 *   MIN_LABELLED_ROWS rows in at least MIN_LABELLED_EPISODES episodes (runs of consecutive
 *   labelled rows), those rows are the positives and every other held-out row a negative (no
 *   label = normal operation; maintenance rows were dropped by cleaning).
 * - `synthetic-faults` (fewer labels, or none): the held-out rows outside confirmed faults are
 *   the negatives, and for every feature the faults may go in (faultSpreads: the scored model's,
 *   varying in training) and every fault size (2, 4 and 8 training standard deviations: small,
 *   medium, large) a copy of a block of min(300, ⌊held-out rows / 2⌋) held-out rows with that
 *   feature shifted by that much, up or down, gives the positives: sustained single-sensor faults.
 *   That is one placement; the faults are placed PLACEMENTS times, placement k's blocks each in
 *   the k-th of PLACEMENTS equal stretches of the held-out rows, half of the placements shifted up
 *   and half down. Where in its stretch a block starts, and which placements go up, come from a PRNG
 *   with the run's seed, so the comparison is reproducible; both models see exactly the same rows.
 *   The held-out rows inside confirmed faults, when there are some, are positives too, in every
 *   placement. A model's score is the mean of its placements' (`placements`), and the decision
 *   compares the two models placement by placement (train/decide.ts).
 *
 * Why placements: with one placement the positives were 24 blocks of 300 rows (8 features × 3
 * sizes); one block caught or missed moved the balanced accuracy by about 0.02, twice the default
 * margin, so the seed decided: the same data, champion and challenger data gave a gap between
 * −0.041 and +0.030 and promoted with 4 seeds of 6. Stretches rather than random starts: every part
 * of the held-out rows carries faults in every run, and the seed moves a block within its stretch
 * only (trainer/README.md, "Compare", has the figures).
 *
 * Why the minimum: one confirmed alert is one row. Compared on it alone, F1 was 0 or nearly for
 * both models and false alarms stopped counting (a live model that flagged 92 % of the normal
 * rows was kept against one that flagged none); one long fault label over most of the held-out
 * rows made F1 reward flagging everything. With 50 rows, one labelled row moves the balanced
 * accuracy by at most 0.5/50 = 0.01, the default margin, so no single row decides; with 5
 * episodes no single fault carries more than a fifth of the MAR (the rows of one fault are one
 * piece of evidence, not hundreds).
 *
 * Why the balanced accuracy: it does not depend on the share of positives, which is ours to
 * choose with synthetic faults and the technicians' with labels (they confirm alerts, not every
 * normal reading); F1 does, and rewards flagging everything when positives are many. It is 0.5
 * for flagging all or nothing.
 *
 * `evaluate` plans the same way on every row of its range (faults sized in the range's own
 * standard deviations); the caller names the rows, so the description says which they are.
 */
import type { Cleaned } from '../data/clean.js';
import { columnMeans, columnStds } from '../linalg/stats.js';
import { countAlarms, type AlarmCount } from './alarms.js';
import type { OnnxScorer, Rows } from './score.js';

export type Criterion = 'labels' | 'synthetic-faults';

export interface Counts {
  tp: number;
  fp: number;
  fn: number;
  tn: number;
}

export interface Evaluation {
  criterion: Criterion;
  /**
   * What the decision compares: the balanced accuracy. `f1` only in records written before
   * 2026-12-06, when a comparison on labels was decided by F1.
   */
  metric: 'f1' | 'balanced-accuracy';
  score: number;
  f1: number;
  /** % of negatives flagged. */
  far: number;
  /** % of positives missed. */
  mar: number;
  counts: Counts;
  threshold: number;
  /** Of the positives, the held-out rows inside confirmed faults and how many of them the model missed (absent when there are none). */
  labelled?: { rows: number; missed: number };
  /**
   * The false alarms on the negatives: runs of flagged normal rows and the running hours they
   * span (eval/alarms.ts). Absent from records written before 2026-12-06 (evening).
   */
  alarms?: AlarmCount;
  /**
   * `synthetic-faults`: the score on each placement of the faults (the same negatives, each
   * placement's positives), whose mean is `score`; the decision compares them pair by pair.
   * Absent with labels, and from records written before 2026-12-07.
   */
  placements?: number[];
}

interface Part {
  data: Rows;
  indices: number[];
  positive: boolean;
  /** The synthetic-fault placement this block belongs to (0 … PLACEMENTS − 1). */
  placement?: number;
  /** Rows inside confirmed-fault labels (positives). */
  labelled?: boolean;
  /**
   * The normal rows of the series: their flags are counted as false alarms too (runs of flags over
   * their running hours; eval/alarms.ts), in time order with the `confirmed` rows (the labelled
   * part's, scored on the same series), whose runs are their faults' alerts.
   */
  alarms?: { timestamps: ArrayLike<number>; segmentStarts: ReadonlySet<number>; rows: readonly number[]; confirmed: ReadonlySet<number> };
}

export interface EvaluationPlan {
  criterion: Criterion;
  parts: Part[];
  /** What the positives are, for model.json. */
  description: string;
  /** Synthetic-fault placements (`synthetic-faults` only): the labelled positives belong to each. */
  placements?: number;
}

export const FAULT_SIZES = [2, 4, 8];
const FAULT_ROWS = 300;
/**
 * Placements of the synthetic faults. Over six seeds, the gap between the same two models spanned
 * 0.071 with one placement, 0.0055 with 8, 0.0050 with 16 and 0.0019 with 32 (trainer/README.md,
 * "Compare"): 16 keeps it well under the margin and leaves the paired comparison 15 degrees of
 * freedom for its noise, for at most 16 × 7200 rows more to score per model (8 features),
 * whatever the number of held-out rows (+1.5 s per model on bench/train's 200,000).
 */
export const PLACEMENTS = 16;
/** Labelled fault rows in the scored rows needed to compare on labels alone. */
export const MIN_LABELLED_ROWS = 50;
/** Labelled fault episodes (runs of consecutive labelled rows) needed to compare on labels alone. */
export const MIN_LABELLED_EPISODES = 5;

/** How a plan's description names the rows it scores and the spread the faults are sized in. */
export interface ScoredRows {
  rows: string;
  spread: string;
}

/** `train`: the held-out rows, faults sized in standard deviations of the trained rows. */
export const HELD_OUT_ROWS: ScoredRows = { rows: 'held-out rows', spread: 'training standard deviations' };
/** `evaluate`: every row of the range, faults sized in its own standard deviations. */
export const RANGE_ROWS: ScoredRows = { rows: 'rows of the range', spread: 'standard deviations of the range' };

/** What a plan scores: the cleaned rows (or those both models can score), their label targets and segments. */
export type ScoredData = Pick<Cleaned, 'series' | 'targets' | 'segmentStarts'>;

/**
 * The size of a synthetic fault per feature: the standard deviation of `rows` for the features in
 * `watched` (the scored model's), 0 (no fault) for the others. `train` and `evaluate` both: a fault
 * in a feature the model does not watch (left out by --exclude, a counter, a sensor the live model
 * alone uses) would count against a model for leaving it out.
 */
export function faultSpreads(rows: readonly Float64Array[], features: readonly string[], watched: readonly string[]): Float64Array {
  const std = columnStds(rows, columnMeans(rows));
  return std.map((sd, f) => (watched.includes(features[f] as string) && Number.isFinite(sd) ? sd : 0));
}

/** Rows from `holdoutStart` on are scored; `named` says what they are (and what `std` is) in the description. */
export function planEvaluation(cleaned: ScoredData, holdoutStart: number, std: Float64Array, seed: number, named: ScoredRows): EvaluationPlan {
  const base: Rows = { features: cleaned.series.features, rows: cleaned.series.rows, segmentStarts: cleaned.segmentStarts };
  const held = range(holdoutStart, cleaned.series.rows.length);
  const positives = held.filter((i) => cleaned.targets[i] === 'anomaly');
  const negatives = positives.length === 0 ? held : held.filter((i) => cleaned.targets[i] !== 'anomaly');
  const episodes = runsOf(positives);
  const normal = { timestamps: cleaned.series.timestamps, segmentStarts: new Set(cleaned.segmentStarts), rows: held, confirmed: new Set(positives) };
  const labelled: Part = { data: base, indices: positives, positive: true, labelled: true };
  const inEpisodes = `${positives.length} ${named.rows} inside confirmed-fault labels (${episodes} episode${episodes === 1 ? '' : 's'})`;
  if (positives.length >= MIN_LABELLED_ROWS && episodes >= MIN_LABELLED_EPISODES) {
    return {
      criterion: 'labels',
      parts: [labelled, { data: base, indices: negatives, positive: false, alarms: normal }],
      description: `${inEpisodes} are positives, the other ${negatives.length} negatives`,
    };
  }
  const rand = mulberry32(seed);
  const block = Math.min(FAULT_ROWS, Math.max(1, Math.floor(held.length / 2)));
  const starts = held.length - block + 1;
  const parts: Part[] = [{ data: base, indices: negatives, positive: false, alarms: normal }];
  // Per feature and size, whether the even placements go up (the odd ones go the other way).
  const up = Array.from(std, () => FAULT_SIZES.map(() => rand() < 0.5));
  for (let k = 0; k < PLACEMENTS; k++) {
    std.forEach((sd, f) => {
      if (sd > 0)
        FAULT_SIZES.forEach((size, z) => {
          const sign = up[f]?.[z] === (k % 2 === 0) ? 1 : -1;
          const start = holdoutStart + Math.floor(((k + rand()) / PLACEMENTS) * starts);
          parts.push({ ...faultBlock(cleaned, f, sign * size * sd, start, block), placement: k });
        });
    });
  }
  const blocks = (parts.length - 1) / PLACEMENTS;
  if (positives.length > 0) parts.push(labelled);
  const faults =
    `positives are ${blocks} copies of blocks of ${block} ${named.rows}, one per varying feature and fault size, each with that feature shifted by that size: ` +
    `${FAULT_SIZES.slice(0, -1).join(', ')} or ${FAULT_SIZES.at(-1)} ${named.spread}, placed ${PLACEMENTS} times (placement k in the k-th of ${PLACEMENTS} stretches of the ${named.rows}, half of the placements up, half down)`;
  return {
    criterion: 'synthetic-faults',
    placements: PLACEMENTS,
    parts,
    description:
      positives.length === 0
        ? `no fault labels in the ${named.rows}: the ${held.length} ${named.rows} are negatives; ${faults}`
        : `too few fault labels in the ${named.rows} to compare on them alone (${inEpisodes}; that needs ${MIN_LABELLED_ROWS} rows in ${MIN_LABELLED_EPISODES} episodes): ` +
          `the other ${negatives.length} ${named.rows} are negatives; ${faults}; the ${positives.length} labelled rows are positives too, in every placement`,
  };
}

/** Runs of consecutive indices in `indices` (ascending). */
function runsOf(indices: readonly number[]): number {
  let runs = 0;
  indices.forEach((i, k) => {
    if (k === 0 || i !== (indices[k - 1] as number) + 1) runs++;
  });
  return runs;
}

/** A shifted copy of `block` scored rows from `start`, scored on its own (windows start inside it). */
function faultBlock(cleaned: ScoredData, f: number, shift: number, start: number, block: number): Part {
  const rows = cleaned.series.rows.slice(start, start + block).map((row) => {
    const copy = Float64Array.from(row);
    copy[f] = (copy[f] as number) + shift;
    return copy;
  });
  return { data: { features: cleaned.series.features, rows, segmentStarts: [0] }, indices: range(0, rows.length), positive: true };
}

/**
 * The counts of a plan with placements add up every placement's positives (the labelled rows once
 * per placement) and the negatives once, so that the score is the mean of the placements' scores.
 */
export async function evaluate(scorer: OnnxScorer, plan: EvaluationPlan): Promise<Evaluation> {
  const counts: Counts = { tp: 0, fp: 0, fn: 0, tn: 0 };
  const threshold = scorer.metadata.threshold;
  // Positives caught and missed, per placement.
  const placed = Array.from({ length: plan.placements ?? 0 }, () => ({ tp: 0, fn: 0 }));
  let labelled: Evaluation['labelled'];
  // The flags of the series' own rows (the normal part and the labelled one), by row.
  const flagOf = new Map<number, boolean>();
  for (const part of plan.parts) {
    const scores = await scorer.score(part.data, part.indices);
    const tally: Counts = { tp: 0, fp: 0, fn: 0, tn: 0 };
    scores.forEach((s, k) => {
      const flagged = s > threshold;
      tally[part.positive ? (flagged ? 'tp' : 'fn') : flagged ? 'fp' : 'tn']++;
      if (part.alarms || part.labelled === true) flagOf.set(part.indices[k] as number, flagged);
    });
    // A placement's own blocks, or the labelled rows, which are positives of every placement.
    const into = part.placement !== undefined ? [placed[part.placement]] : part.positive && placed.length > 0 ? placed : [counts];
    for (const c of into) {
      if (c === undefined) continue;
      c.tp += tally.tp;
      c.fn += tally.fn;
    }
    counts.fp += tally.fp;
    counts.tn += tally.tn;
    if (part.labelled === true && part.indices.length > 0) labelled = { rows: part.indices.length, missed: tally.fn };
  }
  for (const p of placed) {
    counts.tp += p.tp;
    counts.fn += p.fn;
  }
  const normal = plan.parts.find((p) => p.alarms)?.alarms;
  let alarms: AlarmCount | undefined;
  if (normal) {
    const a = countAlarms(normal.rows.map((i) => flagOf.get(i) === true), normal.rows, normal.timestamps, normal.segmentStarts, normal.confirmed);
    alarms = { runs: a.runs, hours: round(a.hours) };
  }
  const r = rates(counts);
  const placements = placed.map((p) => balancedAccuracy(rates({ ...p, fp: counts.fp, tn: counts.tn })));
  return {
    criterion: plan.criterion,
    metric: 'balanced-accuracy',
    score: balancedAccuracy(r),
    ...r,
    counts,
    threshold,
    ...(labelled ? { labelled } : {}),
    ...(alarms ? { alarms } : {}),
    ...(placements.length > 0 ? { placements } : {}),
  };
}

function balancedAccuracy(r: { far: number; mar: number }): number {
  return round(1 - (r.far + r.mar) / 200);
}

const METRIC_NAMES: Record<Evaluation['metric'], string> = { f1: 'F1', 'balanced-accuracy': 'balanced accuracy' };

/** The decision metric as printed: `F1` or `balanced accuracy`. */
export function metricName(metric: Evaluation['metric']): string {
  return METRIC_NAMES[metric];
}

/**
 * An evaluation as every command prints it: the decision metric by name and its score, then the
 * other figures (F1 only when it is not the metric itself), with the counts when asked.
 */
export function formatEvaluation(e: Pick<Evaluation, 'metric' | 'score' | 'f1' | 'far' | 'mar' | 'counts'>, withCounts = false): string {
  const figures = [...(e.metric === 'f1' ? [] : [`F1 ${e.f1.toFixed(4)}`]), `FAR ${e.far.toFixed(2)} %`, `MAR ${e.mar.toFixed(2)} %`].join(', ');
  const counts = withCounts ? `; TP ${e.counts.tp}, FP ${e.counts.fp}, FN ${e.counts.fn}, TN ${e.counts.tn}` : '';
  return `${metricName(e.metric)} ${e.score.toFixed(4)} (${figures}${counts})`;
}

export function rates(c: Counts): { f1: number; far: number; mar: number } {
  const f1 = c.tp + c.fn + c.fp === 0 ? 0 : c.tp / (c.tp + (c.fn + c.fp) / 2);
  const far = c.fp + c.tn === 0 ? 0 : (100 * c.fp) / (c.fp + c.tn);
  const mar = c.fn + c.tp === 0 ? 0 : (100 * c.fn) / (c.fn + c.tp);
  return { f1: round(f1), far: round(far), mar: round(mar) };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}

function round(x: number): number {
  return Number(x.toFixed(6));
}

/** Deterministic uniform [0, 1) generator. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
