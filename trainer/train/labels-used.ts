/**
 * Which technicians' labels, and which withdrawals, a `train` comparison used, with the rows each
 * label decided (registry/records.ts LabelsUsedSchema says which are listed and why): a verdict
 * that a relabel or a withdrawal flipped is traced to the label by these lists.
 *
 * The rows a label decided are found by timestamp (labelOwners): a row's target is that of the
 * latest label covering its time, so the held-out and left-out rows, taken after cleaning, are
 * given to the same label as the readings they came from.
 */
import { labelOwners, targetOf, type LabelRecord, type LabelTarget, type WithdrawalRecord } from '../../sync/labels-upload.js';
import type { LabelsUsed } from '../registry/records.js';

/** Labels and withdrawals listed at most, each: a pump with thousands of labels keeps the record small (about 400 bytes a label). */
export const LISTED_LABELS = 100;

/** A withdrawal read, with the label it withdraws when that label was read. */
export interface Withdrawn {
  withdrawal: WithdrawalRecord;
  label: LabelRecord | null;
}

/** A source's labels and withdrawals against the readings of a range (prepare.ts). */
export interface LabelUse {
  source: string;
  /** The source's labels, withdrawn ones left out, in readLabels' order. */
  labels: readonly LabelRecord[];
  /** Per label, the readings of the range it gave their target. */
  readings: Int32Array;
  /** The source's withdrawals, each with the readings of the range its label covered (0: label not read). */
  withdrawals: ReadonlyArray<Withdrawn & { readings: number }>;
}

/** The target of each reading at `timestamps` (labelTargets), and what the labels did to the range. */
export function labelUseOf(
  source: string,
  labels: readonly LabelRecord[],
  withdrawals: readonly Withdrawn[],
  timestamps: readonly number[],
): { targets: Array<LabelTarget | null>; use: LabelUse } {
  const owners = labelOwners(labels, source, timestamps);
  const readings = new Int32Array(labels.length);
  for (const k of owners) if (k >= 0) readings[k] = (readings[k] as number) + 1;
  const sorted = withdrawals.length > 0 ? Float64Array.from(timestamps).sort() : new Float64Array(0);
  return {
    targets: Array.from(owners, (k) => (k < 0 ? null : targetOf(labels[k] as LabelRecord))),
    use: { source, labels, readings, withdrawals: withdrawals.map((w) => ({ ...w, readings: w.label === null ? 0 : covered(sorted, Date.parse(w.label.from), Date.parse(w.label.to)) })) },
  };
}

/**
 * The record's `evaluation.labels`: `heldOut`, the times of the held-out rows both models were
 * scored on; `leftOut`, those of the training part's rows left out as confirmed faults.
 */
export function labelsUsed(use: LabelUse, heldOut: readonly number[], leftOut: readonly number[]): LabelsUsed {
  const held = rowsPerLabel(use, heldOut);
  const left = rowsPerLabel(use, leftOut);
  const used = use.labels
    .map((l, k) => ({ l, readings: use.readings[k] as number, heldOutRows: held[k] as number, leftOutRows: left[k] as number }))
    .filter((u) => u.readings > 0)
    // Stable: equal ones stay in readLabels' order (oldest first).
    .sort((a, b) => b.heldOutRows - a.heldOutRows || b.leftOutRows - a.leftOutRows || b.readings - a.readings);
  const applied = use.withdrawals.filter((w) => w.readings > 0).sort((a, b) => b.readings - a.readings);
  return {
    read: use.labels.length,
    used: used.length,
    heldOutRows: sum(held),
    leftOutRows: sum(left),
    listed: used.slice(0, LISTED_LABELS).map(({ l, readings, heldOutRows, leftOutRows }) => ({
      id: l.id,
      kind: l.kind,
      faultType: l.faultType,
      from: l.from,
      to: l.to,
      author: l.author,
      createdAt: l.createdAt,
      deviceId: l.deviceId,
      readings,
      heldOutRows,
      leftOutRows,
    })),
    notListed: Math.max(0, used.length - LISTED_LABELS),
    withdrawals: {
      read: use.withdrawals.length,
      applied: applied.length,
      listed: applied.slice(0, LISTED_LABELS).map(({ withdrawal: w, label, readings }) => ({
        id: w.id,
        withdraws: w.withdraws,
        kind: (label as LabelRecord).kind,
        author: w.author,
        createdAt: w.createdAt,
        deviceId: w.deviceId,
        readings,
      })),
      notListed: Math.max(0, applied.length - LISTED_LABELS),
    },
  };
}

function rowsPerLabel(use: LabelUse, timestamps: readonly number[]): Int32Array {
  const out = new Int32Array(use.labels.length);
  for (const k of labelOwners(use.labels, use.source, timestamps)) if (k >= 0) out[k] = (out[k] as number) + 1;
  return out;
}

function sum(a: Int32Array): number {
  return a.reduce((x, y) => x + y, 0);
}

/** How many of `sorted` (ascending) lie in [from, to]. */
function covered(sorted: Float64Array, from: number, to: number): number {
  return firstIndex(sorted, (t) => t > to) - firstIndex(sorted, (t) => t >= from);
}

/** The first index whose value satisfies `past` (monotone over `sorted`; the length when none). */
function firstIndex(sorted: Float64Array, past: (t: number) => boolean): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (past(sorted[mid] as number)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
