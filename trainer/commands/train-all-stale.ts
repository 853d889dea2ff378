/**
 * train-all --resume: when an earlier attempt's record of a source no longer stands for this one.
 * A record written before a technician's label (or withdrawal) of the source's range reached Blob
 * Storage judged the models without it: a confirmed fault that should have made the challenger
 * lose, or a false alarm that should have made it win. And one that skipped the source for having
 * no readings in the range is stale once a gateway uploaded some (a gateway offline for hours).
 *
 * Labels are compared by id, not by time: the record names the labels and withdrawals of the
 * range that its attempt read (`labelIds`), and any other one read now is new to it. A label's
 * `createdAt` is the gateway's clock at the technician's click, which can be hours before its
 * upload (the gateway offline), so a label created before the record but uploaded after it
 * would be missed; the upload time would not be, but an attempt reads the labels once, when it
 * starts, which is up to hours before a source's own `startedAt` (a shard trained one source at a
 * time), so a label uploaded in between was neither read nor after the record; and it compares
 * Blob Storage's clock with the trainer's. The set of ids has none of these gaps.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { listDay } from '../../sync/reader.js';
import { idleLimitOf } from '../cloud/blob-limits.js';
import type { RunRecord } from '../registry/run-record.js';
import type { LabelSet } from '../train/prepare.js';

const DAY_MS = 86_400_000;

interface Range {
  from: number;
  to: number;
}

/** A label's span [from, to] (both included, as labelOwners reads it) overlaps the range [from, to). */
const overlaps = (l: { from: string; to: string }, range: Range): boolean => Date.parse(l.from) < range.to && Date.parse(l.to) >= range.from;

/**
 * The ids of `source`'s labels and withdrawals in `set` whose span overlaps the range, sorted: a
 * withdrawal by its label's span, with that label's id (a withdrawal of a label not read changes
 * no reading, and is left out). What the record's `labelIds` holds.
 */
export function labelIdsOf(set: LabelSet, source: string, range: Range): string[] {
  const ids = new Set<string>();
  for (const l of set.labels) if (l.pumpId === source && overlaps(l, range)) ids.add(l.id);
  for (const { withdrawal, label } of set.withdrawals) {
    if (withdrawal.pumpId !== source || label === null || !overlaps(label, range)) continue;
    ids.add(withdrawal.id);
    ids.add(label.id);
  }
  return [...ids].sort();
}

const counted = (n: number, one: string): string => `${n} ${one}${n === 1 ? '' : 's'}`;

/**
 * Why `record` no longer stands for the labels read now (`set`), or null when its attempt read the
 * same labels and withdrawals of the range: `2 labels of the range posted since the earlier
 * attempt read them`, `1 withdrawal …`, `1 label its attempt read is no longer in Blob Storage`.
 * A record without `labelIds` (written before they were) stands, as it did.
 */
export function labelsChanged(record: RunRecord, set: LabelSet, range: Range): string | null {
  if (record.labelIds === undefined) return null;
  const then = new Set(record.labelIds);
  const now = labelIdsOf(set, record.source, range);
  const withdrawals = new Set(set.withdrawals.map((w) => w.withdrawal.id));
  const added = now.filter((id) => !then.has(id));
  const gone = record.labelIds.filter((id) => !now.includes(id)).length;
  const addedWithdrawals = added.filter((id) => withdrawals.has(id)).length;
  const posted = [addedWithdrawals < added.length ? counted(added.length - addedWithdrawals, 'label') : null, addedWithdrawals > 0 ? counted(addedWithdrawals, 'withdrawal') : null].filter((p) => p !== null);
  const why = [
    ...(posted.length > 0 ? [`${posted.join(' and ')} of the range posted since the earlier attempt read them`] : []),
    ...(gone > 0 ? [`${counted(gone, 'label')} its attempt read ${gone === 1 ? 'is' : 'are'} no longer in Blob Storage`] : []),
  ];
  return why.length > 0 ? why.join('; ') : null;
}

/**
 * For a record that skipped its source for having no readings in the range: `readings in the range
 * now (blobs dated 2026-01-01)` when a readings blob of the source is dated on a day of the range
 * (the day of its first reading, sync/layout.ts), null when none is. One listing per day of the
 * range (listDay, as the training lists them), newest day first, until a blob is found: a retired
 * pump costs as many small listings as the range has days. A blob dated on the first day of a
 * range that does not start at 00:00 UTC may hold readings before the range only: the source is
 * then trained again, and skipped again.
 */
export async function readingsSince(data: ContainerClient, record: RunRecord, range: Range): Promise<string | null> {
  if (record.outcome !== 'skipped' || record.skipKind !== 'no-readings') return null;
  const first = Math.floor(range.from / DAY_MS) * DAY_MS;
  for (let day = Math.floor((range.to - 1) / DAY_MS) * DAY_MS; day >= first; day -= DAY_MS) {
    const blobs = await listDay(data, record.source, day, undefined, { idleMs: idleLimitOf(data) });
    if (blobs.length > 0) return `readings in the range now (blobs dated ${new Date(day).toISOString().slice(0, 10)})`;
  }
  return null;
}
