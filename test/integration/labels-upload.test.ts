import type { ContainerClient } from '@azure/storage-blob';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabelStore, type NewLabel } from '../../buffer/labels.js';
import { BufferStore } from '../../buffer/store.js';
import { DEVSTORE_KEY } from '../../agent/azurite.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { LabelRecordSchema, LabelUploadError, labelBlobName, labelTargetAt, labelTargets, readLabels, uploadPendingLabels, type LabelRecord } from '../../sync/labels-upload.js';

let dir: string;
let azurite: TestAzurite;
let container: ContainerClient;
let buffer: BufferStore;
let labels: LabelStore;

const label = (over: Partial<NewLabel> = {}): NewLabel => ({
  pumpId: 'pump-7',
  kind: 'confirmed-fault',
  faultType: 'bearing',
  note: 'noise from the drive end',
  alertSeq: 12,
  fromTs: Date.UTC(2026, 10, 23, 10, 0),
  toTs: Date.UTC(2026, 10, 23, 10, 5),
  author: 'Ana',
  ...over,
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-labels-up-'));
  azurite = await startTestAzurite();
  container = azurite.container('pumpwatch');
  await container.create();
  buffer = new BufferStore({ path: join(dir, 'buffer.sqlite'), maxBytes: 1 << 30 });
  buffer.open();
  labels = new LabelStore(buffer);
});

afterAll(async () => {
  buffer?.close();
  await azurite?.dispose();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

describe('uploadPendingLabels', () => {
  it('uploads each label as labels/{device}/{yyyy}/{mm}/{dd}/{id}.json and marks it synced', async () => {
    const a = labels.add(label(), Date.UTC(2026, 10, 23, 11, 0));
    const b = labels.add(label({ kind: 'maintenance', faultType: null, alertSeq: null }), Date.UTC(2026, 10, 24, 8, 0));
    expect(await uploadPendingLabels(container, labels, 'gw-1')).toEqual({ uploaded: 2, alreadyPresent: 0 });
    expect(labels.unsynced(10)).toEqual([]);
    const names: string[] = [];
    for await (const blob of container.listBlobsFlat({ prefix: 'labels/' })) names.push(blob.name);
    expect(names.sort()).toEqual([`labels/gw-1/2026/11/23/${a.id}.json`, `labels/gw-1/2026/11/24/${b.id}.json`]);
    const body = JSON.parse((await container.getBlobClient(names[0]!).downloadToBuffer()).toString('utf8'));
    expect(body).toEqual({
      schema: 1,
      id: a.id,
      deviceId: 'gw-1',
      pumpId: 'pump-7',
      kind: 'confirmed-fault',
      faultType: 'bearing',
      note: 'noise from the drive end',
      alertSeq: 12,
      from: '2026-11-23T10:00:00.000Z',
      to: '2026-11-23T10:05:00.000Z',
      author: 'Ana',
      createdAt: '2026-11-23T11:00:00.000Z',
    });
    expect(await uploadPendingLabels(container, labels, 'gw-1')).toEqual({ uploaded: 0, alreadyPresent: 0 });
  });

  it('re-uploading a label that was uploaded before a crash (but not marked) finds it there and writes no second copy', async () => {
    const c = labels.add(label({ note: 'first' }), Date.UTC(2026, 10, 25, 9, 0));
    await uploadPendingLabels(container, labels, 'gw-1');
    buffer.db.prepare('UPDATE labels SET synced = 0 WHERE id = ?').run(c.id); // as if the mark was lost
    expect(await uploadPendingLabels(container, labels, 'gw-1')).toEqual({ uploaded: 0, alreadyPresent: 1 });
    expect(labels.unsynced(10)).toEqual([]);
    const props = await container.getBlobClient(labelBlobName('gw-1', c)).getProperties();
    expect(props.contentType).toBe('application/json');
  });

  it('keeps labels pending and throws a typed error without secrets when the upload fails', async () => {
    const d = labels.add(label({ note: 'pending' }), Date.UTC(2026, 10, 26, 9, 0));
    const missing = azurite.container('no-such-container');
    const err = await uploadPendingLabels(missing, labels, 'gw-1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LabelUploadError);
    expect((err as LabelUploadError).code).toBe('PW_LABEL_UPLOAD_FAILED');
    expect((err as Error).message).not.toContain(DEVSTORE_KEY);
    expect(labels.unsynced(10).map((l) => l.id)).toEqual([d.id]);
    await uploadPendingLabels(container, labels, 'gw-1');
    expect(labels.unsynced(10)).toEqual([]);
  });
});

describe('readLabels (for the trainer)', () => {
  it('reads every label back oldest first, one device or all, and skips blobs that are not labels', async () => {
    labels.add(label({ pumpId: 'pump-9' }), Date.UTC(2026, 10, 27, 9, 0));
    await uploadPendingLabels(container, labels, 'gw-2');
    await container.getBlockBlobClient('labels/gw-2/2026/11/27/broken.json').upload('{"schema": 1}', 13);
    const invalid: string[] = [];
    const all = await readLabels(container, undefined, { onInvalid: (name) => invalid.push(name) });
    expect(all.map((l) => l.deviceId)).toEqual(['gw-1', 'gw-1', 'gw-1', 'gw-1', 'gw-2']);
    expect(all.map((l) => l.createdAt)).toEqual([...all.map((l) => l.createdAt)].sort());
    expect(invalid).toEqual(['labels/gw-2/2026/11/27/broken.json']);
    const gw2 = await readLabels(container, 'gw-2');
    expect(gw2.map((l) => l.pumpId)).toEqual(['pump-9']);
  });
});

describe('label withdrawals in the lake', () => {
  it('uploads a withdrawal once after its label, and readLabels leaves the label out so the one under it applies again', async () => {
    const base = { pumpId: 'pump-w', alertSeq: null, fromTs: Date.UTC(2026, 10, 28, 10, 0), toTs: Date.UTC(2026, 10, 28, 10, 5) };
    const under = labels.add(label({ ...base, kind: 'false-alarm', faultType: null }), Date.UTC(2026, 10, 28, 11, 0));
    const wrong = labels.add(label({ ...base, kind: 'confirmed-fault' }), Date.UTC(2026, 10, 28, 12, 0));
    await uploadPendingLabels(container, labels, 'gw-w');
    const taken = await readLabels(container, 'gw-w');
    expect(labelTargetAt(taken, 'pump-w', base.fromTs)).toBe('anomaly');

    const done = labels.withdrawals.withdraw(wrong.id, { author: 'Ana', note: 'wrong pump' }, Date.UTC(2026, 10, 29, 8, 0));
    expect(done.outcome).toBe('withdrawn');
    const w = (done as { withdrawal: { id: string } }).withdrawal;
    expect(labels.unsyncedCount()).toBe(1);
    expect(await uploadPendingLabels(container, labels, 'gw-w')).toEqual({ uploaded: 1, alreadyPresent: 0 });
    expect(labels.unsyncedCount()).toBe(0);
    expect(await uploadPendingLabels(container, labels, 'gw-w')).toEqual({ uploaded: 0, alreadyPresent: 0 });

    const name = `labels/gw-w/2026/11/29/${w.id}.json`;
    const blob = container.getBlobClient(name);
    expect((await blob.getProperties()).metadata).toEqual({ schema: '1', pumpid: 'pump-w', kind: 'withdrawal' });
    const record = JSON.parse((await blob.downloadToBuffer()).toString('utf8'));
    expect(record).toEqual({ schema: 1, kind: 'withdrawal', id: w.id, deviceId: 'gw-w', withdraws: wrong.id, pumpId: 'pump-w', author: 'Ana', note: 'wrong pump', createdAt: '2026-11-29T08:00:00.000Z' });
    // A trainer from before withdrawals validates with this same schema: it skips the record as an invalid label (its usual warning) and keeps the label.
    expect(LabelRecordSchema.safeParse(record).success).toBe(false);

    const invalid: string[] = [];
    const read = await readLabels(container, 'gw-w', { pumps: ['pump-w'], onInvalid: (n) => invalid.push(n) });
    expect(read.map((l) => l.id)).toEqual([under.id]);
    expect(invalid).toEqual([]);
    expect(labelTargetAt(read, 'pump-w', base.fromTs)).toBe('normal');
  });

  it('uploads a label withdrawn before it was uploaded, then its withdrawal, and the trainer reads neither as a label', async () => {
    const l = labels.add(label({ pumpId: 'pump-x', alertSeq: null }), Date.UTC(2026, 10, 30, 9, 0));
    labels.withdrawals.withdraw(l.id, { author: 'Ben', note: null }, Date.UTC(2026, 10, 30, 9, 1));
    expect(labels.unsyncedCount()).toBe(2);
    expect(await uploadPendingLabels(container, labels, 'gw-x')).toEqual({ uploaded: 2, alreadyPresent: 0 });
    expect(await readLabels(container, 'gw-x')).toEqual([]);
    expect(labelTargetAt(await readLabels(container, 'gw-x'), 'pump-x', Date.UTC(2026, 10, 23, 10, 0))).toBeNull();
  });
});

describe('labelTargetAt', () => {
  const rec = (kind: LabelRecord['kind'], from: string, to: string, createdAt: string): LabelRecord => ({
    schema: 1,
    id: `${kind}-${createdAt}`,
    deviceId: 'gw',
    pumpId: 'p',
    kind,
    faultType: kind === 'confirmed-fault' ? 'bearing' : null,
    note: null,
    alertSeq: null,
    from,
    to,
    author: 'a',
    createdAt,
  });
  const labelsList = [
    rec('confirmed-fault', '2026-01-01T10:00:00Z', '2026-01-01T11:00:00Z', '2026-01-02T00:00:00Z'),
    rec('maintenance', '2026-01-01T10:30:00Z', '2026-01-01T12:00:00Z', '2026-01-03T00:00:00Z'),
    rec('false-alarm', '2026-01-01T13:00:00Z', '2026-01-01T13:00:00Z', '2026-01-02T00:00:00Z'),
  ];
  const at = (iso: string, pump = 'p') => labelTargetAt(labelsList, pump, Date.parse(iso));

  it('makes confirmed faults anomalies, false alarms normal and maintenance excluded, the latest label winning', () => {
    expect(at('2026-01-01T10:10:00Z')).toBe('anomaly');
    expect(at('2026-01-01T10:45:00Z')).toBe('exclude');
    expect(at('2026-01-01T13:00:00Z')).toBe('normal');
    expect(at('2026-01-01T14:00:00Z')).toBeNull();
    expect(at('2026-01-01T10:10:00Z', 'other-pump')).toBeNull();
  });

  it('answers for many readings at once, in any order, as for each alone (the ends of a label included)', () => {
    const times = ['2026-01-01T14:00:00Z', '2026-01-01T10:00:00Z', '2026-01-01T13:00:00Z', '2026-01-01T09:59:59Z', '2026-01-01T10:45:00Z', '2026-01-01T12:00:00Z', '2026-01-01T10:30:00Z', '2026-01-01T12:00:00.001Z'];
    const ts = times.map(Date.parse);
    expect(labelTargets(labelsList, 'p', ts)).toEqual(ts.map((t) => labelTargetAt(labelsList, 'p', t)));
    expect(labelTargets(labelsList, 'p', ts)).toEqual([null, 'anomaly', 'normal', null, 'exclude', 'exclude', 'exclude', null]);
    expect(labelTargets(labelsList, 'other-pump', ts)).toEqual(ts.map(() => null));
    // Two labels created at the same time: the later in the list wins, as readLabels orders them (by id).
    const tie = [rec('false-alarm', '2026-01-01T10:00:00Z', '2026-01-01T11:00:00Z', '2026-01-02T00:00:00Z'), rec('maintenance', '2026-01-01T10:30:00Z', '2026-01-01T10:40:00Z', '2026-01-02T00:00:00+00:00')];
    expect(labelTargets(tie, 'p', [Date.parse('2026-01-01T10:35:00Z'), Date.parse('2026-01-01T10:45:00Z')])).toEqual(['exclude', 'normal']);
    expect(labelTargets([tie[1]!, tie[0]!], 'p', [Date.parse('2026-01-01T10:35:00Z')])).toEqual(['normal']);
  });
});
