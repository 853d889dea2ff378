/**
 * Which labels a train-all record names (labelIdsOf), and why --resume finds a record stale
 * (labelsChanged): the labels and withdrawals of the source whose span overlaps the range, by id.
 */
import { describe, expect, it } from 'vitest';
import type { LabelRecord, WithdrawalRecord } from '../../sync/labels-upload.js';
import { labelIdsOf, labelsChanged } from '../../trainer/commands/train-all-stale.js';
import type { RunRecord } from '../../trainer/registry/run-record.js';
import type { LabelSet } from '../../trainer/train/prepare.js';

const RANGE = { from: Date.UTC(2026, 0, 1), to: Date.UTC(2026, 0, 2) };

const label = (id: string, pumpId: string, from: string, to: string): LabelRecord => ({
  schema: 1,
  id,
  deviceId: 'gw-1',
  pumpId,
  kind: 'confirmed-fault',
  faultType: 'other',
  note: null,
  alertSeq: null,
  from,
  to,
  author: 'Ana',
  createdAt: '2026-01-01T20:00:00.000Z',
});

const withdrawal = (id: string, of: LabelRecord): WithdrawalRecord => ({ schema: 1, kind: 'withdrawal', id, deviceId: 'gw-1', withdraws: of.id, pumpId: of.pumpId, author: 'Cem', note: null, createdAt: '2026-01-02T08:00:00.000Z' });

const set = (labels: LabelRecord[], withdrawals: Array<{ withdrawal: WithdrawalRecord; label: LabelRecord | null }> = []): LabelSet => ({ labels, withdrawals, skipped: [] });

const record = (labelIds?: string[]): RunRecord => ({
  schema: 1,
  source: 'pump-7',
  range: { from: '2026-01-01T00:00:00.000Z', to: '2026-01-02T00:00:00.000Z' },
  outcome: 'kept',
  reason: 'kept',
  ...(labelIds ? { labelIds } : {}),
  options: {},
  optionsHash: '0',
  build: 'b',
  startedAt: '2026-12-08T01:00:00.000Z',
  finishedAt: '2026-12-08T01:01:00.000Z',
  shard: '0/1',
});

describe('labelIdsOf', () => {
  it("names the source's labels whose span overlaps the range (ends included, the range's end not), and each withdrawal with its label by the label's span", () => {
    const inside = label('l-in', 'pump-7', '2026-01-01T10:00:00.000Z', '2026-01-01T11:00:00.000Z');
    const endsAtStart = label('l-edge', 'pump-7', '2025-12-31T23:00:00.000Z', '2026-01-01T00:00:00.000Z');
    const startsAtEnd = label('l-after', 'pump-7', '2026-01-02T00:00:00.000Z', '2026-01-02T01:00:00.000Z');
    const other = label('l-other', 'pump-8', '2026-01-01T10:00:00.000Z', '2026-01-01T11:00:00.000Z');
    const withdrawnIn = label('l-win', 'pump-7', '2026-01-01T12:00:00.000Z', '2026-01-01T13:00:00.000Z');
    const withdrawnOut = label('l-wout', 'pump-7', '2025-12-01T12:00:00.000Z', '2025-12-01T13:00:00.000Z');
    const ids = labelIdsOf(
      set([inside, endsAtStart, startsAtEnd, other], [
        { withdrawal: withdrawal('w-in', withdrawnIn), label: withdrawnIn },
        { withdrawal: withdrawal('w-out', withdrawnOut), label: withdrawnOut },
        { withdrawal: withdrawal('w-unread', withdrawnIn), label: null },
      ]),
      'pump-7',
      RANGE,
    );
    expect(ids).toEqual(['l-edge', 'l-in', 'l-win', 'w-in']);
  });
});

describe('labelsChanged', () => {
  const a = label('l-a', 'pump-7', '2026-01-01T10:00:00.000Z', '2026-01-01T11:00:00.000Z');
  const b = label('l-b', 'pump-7', '2026-01-01T12:00:00.000Z', '2026-01-01T13:00:00.000Z');

  it('says nothing when the record names the labels read now', () => {
    expect(labelsChanged(record(['l-a', 'l-b']), set([b, a]), RANGE)).toBeNull();
  });

  it('counts the labels and withdrawals posted since, and the labels its attempt read that are gone', () => {
    expect(labelsChanged(record([]), set([a, b]), RANGE)).toBe('2 labels of the range posted since the earlier attempt read them');
    expect(labelsChanged(record(['l-a']), set([b], [{ withdrawal: withdrawal('w-a', a), label: a }]), RANGE)).toBe('1 label and 1 withdrawal of the range posted since the earlier attempt read them');
    expect(labelsChanged(record(['l-a', 'l-b']), set([a]), RANGE)).toBe('1 label its attempt read is no longer in Blob Storage');
    expect(labelsChanged(record(['l-a', 'l-x']), set([a, b]), RANGE)).toBe('1 label of the range posted since the earlier attempt read them; 1 label its attempt read is no longer in Blob Storage');
  });

  it('leaves a record written before records named their labels as it was', () => {
    expect(labelsChanged(record(), set([a, b]), RANGE)).toBeNull();
  });
});
