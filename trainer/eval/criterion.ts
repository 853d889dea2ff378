/**
 * How a challenger and the live model are compared: on the same held-out rows (the most recent
 * part of the range), each at its own threshold, with the same metric (F1, with FAR and MAR).
 *
 * - `labels`: when technicians' labels mark at least one held-out row as a confirmed fault, those
 *   rows are the positives and every other held-out row a negative (no label = normal operation;
 *   maintenance rows were dropped by cleaning).
 * - `synthetic-faults` (no fault labels): the held-out rows are the negatives, and for every
 *   feature that varies in training and every fault size (2, 4 and 8 training standard
 *   deviations: small, medium, large) a copy of a block of min(300, ⌊held-out rows / 2⌋)
 *   held-out rows with that feature shifted by that much, up or down, gives the positives:
 *   sustained single-sensor faults. Blocks and signs come from a PRNG with the run's seed, so
 *   the comparison is reproducible; both models see exactly the same rows.
 *
 * `evaluate` plans the same way on every row of its range (faults sized in the range's own
 * standard deviations); the caller names the rows, so the description says which they are.
 *
 * The decision score: F1 with labels (the SKAB convention). With synthetic faults the share of
 * positives is our choice, and F1 would reward a model that flags everything; the score is then
 * the balanced accuracy 1 − (FAR + MAR)/2, which is 0.5 for flagging all or nothing.
 */
import type { Cleaned } from '../data/clean.js';
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
  /** What the decision compares: F1 (labels) or balanced accuracy (synthetic faults). */
  metric: 'f1' | 'balanced-accuracy';
  score: number;
  f1: number;
  /** % of negatives flagged. */
  far: number;
  /** % of positives missed. */
  mar: number;
  counts: Counts;
  threshold: number;
}

interface Part {
  data: Rows;
  indices: number[];
  positive: boolean;
}

export interface EvaluationPlan {
  criterion: Criterion;
  parts: Part[];
  /** What the positives are, for model.json. */
  description: string;
}

export const FAULT_SIZES = [2, 4, 8];
const FAULT_ROWS = 300;

/** How a plan's description names the rows it scores and the spread the faults are sized in. */
export interface ScoredRows {
  rows: string;
  spread: string;
}

/** `train`: the held-out rows, faults sized in standard deviations of the trained rows. */
export const HELD_OUT_ROWS: ScoredRows = { rows: 'held-out rows', spread: 'training standard deviations' };
/** `evaluate`: every row of the range, faults sized in its own standard deviations. */
export const RANGE_ROWS: ScoredRows = { rows: 'rows of the range', spread: 'standard deviations of the range' };

/** Rows from `holdoutStart` on are scored; `named` says what they are (and what `std` is) in the description. */
export function planEvaluation(cleaned: Cleaned, holdoutStart: number, std: Float64Array, seed: number, named: ScoredRows): EvaluationPlan {
  const base: Rows = { features: cleaned.series.features, rows: cleaned.series.rows, segmentStarts: cleaned.segmentStarts };
  const held = range(holdoutStart, cleaned.series.rows.length);
  const positives = held.filter((i) => cleaned.targets[i] === 'anomaly');
  if (positives.length > 0) {
    return {
      criterion: 'labels',
      parts: [
        { data: base, indices: positives, positive: true },
        { data: base, indices: held.filter((i) => cleaned.targets[i] !== 'anomaly'), positive: false },
      ],
      description: `${positives.length} ${named.rows} inside confirmed-fault labels are positives, the other ${held.length - positives.length} negatives`,
    };
  }
  const rand = mulberry32(seed);
  const block = Math.min(FAULT_ROWS, Math.max(1, Math.floor(held.length / 2)));
  const parts: Part[] = [{ data: base, indices: held, positive: false }];
  std.forEach((sd, f) => {
    if (sd > 0) for (const size of FAULT_SIZES) parts.push(faultBlock(cleaned, f, (rand() < 0.5 ? -1 : 1) * size * sd, holdoutStart + Math.floor(rand() * (held.length - block + 1)), block));
  });
  return {
    criterion: 'synthetic-faults',
    parts,
    description:
      `no fault labels in the ${named.rows}: the ${held.length} ${named.rows} are negatives; positives are ${parts.length - 1} copies of blocks of ${block} ${named.rows}, ` +
      `one per varying feature and fault size, each with that feature shifted by that size: ${FAULT_SIZES.slice(0, -1).join(', ')} or ${FAULT_SIZES.at(-1)} ${named.spread}`,
  };
}

/** A shifted copy of `block` scored rows from `start`, scored on its own (windows start inside it). */
function faultBlock(cleaned: Cleaned, f: number, shift: number, start: number, block: number): Part {
  const rows = cleaned.series.rows.slice(start, start + block).map((row) => {
    const copy = Float64Array.from(row);
    copy[f] = (copy[f] as number) + shift;
    return copy;
  });
  return { data: { features: cleaned.series.features, rows, segmentStarts: [0] }, indices: range(0, rows.length), positive: true };
}

export async function evaluate(scorer: OnnxScorer, plan: EvaluationPlan): Promise<Evaluation> {
  const counts: Counts = { tp: 0, fp: 0, fn: 0, tn: 0 };
  const threshold = scorer.metadata.threshold;
  for (const part of plan.parts) {
    const scores = await scorer.score(part.data, part.indices);
    for (const s of scores) {
      const flagged = s > threshold;
      const key = part.positive ? (flagged ? 'tp' : 'fn') : flagged ? 'fp' : 'tn';
      counts[key]++;
    }
  }
  const r = rates(counts);
  const metric = plan.criterion === 'labels' ? 'f1' : 'balanced-accuracy';
  const score = metric === 'f1' ? r.f1 : round(1 - (r.far + r.mar) / 200);
  return { criterion: plan.criterion, metric, score, ...r, counts, threshold };
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
