/**
 * A `train` run's evaluation names the technicians' labels and withdrawals its comparison used,
 * against a real Azurite: labels uploaded as the agent uploads them (a real SQLite buffer,
 * uploadPendingLabels), one of them withdrawn on the page; the record lists the labels that gave
 * readings of the range their target (not one of another month, nor one a newer label overrules
 * everywhere) with the rows each decided, and the withdrawal; a pump without labels lists none.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabelStore, type Label, type NewLabel } from '../../buffer/labels.js';
import { BufferStore } from '../../buffer/store.js';
import { uploadPendingLabels } from '../../sync/labels-upload.js';
import { readModelRecord } from '../../trainer/registry/read.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { rng } from '../support/models.js';
import { challengerVersion, evaluationRecords, pumpValues, runTrainer, seedReadings, trainerContext } from '../support/trainer.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 11);
const STEP = 20_000;
const RANGE = ['--from', '2026-01-11', '--to', '2026-01-12'];
/** Five pressure faults of 60 readings in the held-out part (rows 2880-3599 of 3600, before cleaning), and one in the training part. */
const FAULTS = [3000, 3080, 3160, 3240, 3320];
const TRAINING_FAULT = 1000;
const inFault = (i: number) => [...FAULTS, TRAINING_FAULT].some((s) => i >= s && i < s + 60);
const at = (row: number) => T0 + row * STEP;

let az: TestAzurite;
let dir: string;
let buffer: BufferStore;
let container: ContainerClient;
const used: Label[] = [];
let overruled: Label;
let old: Label;
let wrong: Label;
let withdrawalId: string;

const label = (over: Partial<NewLabel> & Pick<NewLabel, 'kind' | 'fromTs' | 'toTs'>): NewLabel => ({
  pumpId: 'pump-l',
  faultType: over.kind === 'confirmed-fault' ? 'other' : null,
  note: null,
  alertSeq: null,
  author: 'Ana',
  ...over,
});

const cli = (args: string[]) => runTrainer(args, trainerContext(container, { now: new Date(T0 + 30 * DAY) }));

const evaluationsOf = (source: string, version: string) => evaluationRecords(container, source, version);

beforeAll(async () => {
  az = await startTestAzurite();
  dir = mkdtempSync(join(tmpdir(), 'pw-eval-labels-'));
  buffer = new BufferStore({ path: join(dir, 'buffer.sqlite'), maxBytes: 1 << 30 });
  buffer.open();
  container = az.container('evaluation-labels');
  await container.create();
  const r = rng(13);
  await seedReadings(container, 'pump-l', 'gw-l', T0, 3600, (i) => pumpValues(r, i, 25, { shift: inFault(i) ? 1.5 : 0 }));
  await seedReadings(container, 'pump-n', 'gw-n', T0, 3600, (i) => pumpValues(r, i, 25));
  const store = new LabelStore(buffer);
  let t = T0 + DAY;
  const add = (l: NewLabel) => store.add(l, (t += 1000));
  // Created first, so the confirmed fault over the same readings (created later) overrules it everywhere.
  overruled = add(label({ kind: 'false-alarm', fromTs: at(FAULTS[0]!), toTs: at(FAULTS[0]! + 59) }));
  for (const s of FAULTS) used.push(add(label({ kind: 'confirmed-fault', fromTs: at(s), toTs: at(s + 59) })));
  used.push(add(label({ kind: 'confirmed-fault', fromTs: at(TRAINING_FAULT), toTs: at(TRAINING_FAULT + 59), author: 'Ben' })));
  used.push(add(label({ kind: 'maintenance', fromTs: at(0), toTs: at(99) })));
  used.push(add(label({ kind: 'false-alarm', fromTs: at(3450), toTs: at(3469) })));
  old = add(label({ kind: 'false-alarm', fromTs: T0 - 20 * DAY, toTs: T0 - 20 * DAY + 600_000 }));
  // A confirmed fault over normal readings (a sixth episode), withdrawn on the page.
  wrong = add(label({ kind: 'confirmed-fault', fromTs: at(2950), toTs: at(2969) }));
  const done = store.withdrawals.withdraw(wrong.id, { author: 'Cem', note: 'wrong pump' }, T0 + 2 * DAY);
  expect(done.outcome).toBe('withdrawn');
  withdrawalId = (done as { withdrawal: { id: string } }).withdrawal.id;
  expect(await uploadPendingLabels(container, store, 'gw-l')).toMatchObject({ uploaded: 12 });
});

afterAll(async () => {
  buffer?.close();
  await az?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

describe("a train run's evaluation names the labels it used", () => {
  it('lists exactly the labels that decided readings of the range, with the rows each decided, and the withdrawal', async () => {
    const report = join(dir, 'report.html');
    const res = await cli(['train', '--source', 'pump-l', ...RANGE, '--report', report]);
    expect(res.code, res.err).toBe(0);
    const version = challengerVersion(res.out, 'pump-l');
    const [evaluation, ...more] = await evaluationsOf('pump-l', version);
    expect(more).toEqual([]);
    const e = evaluation!.record;
    const labels = e.evaluation.labels!;
    expect(e.evaluation.criterion).toBe('labels');

    // The labels used, not the one of another month nor the overruled one; the withdrawn one is gone.
    expect(labels).toMatchObject({ read: 10, used: 8, notListed: 0 });
    expect(labels.listed.map((l) => l.id).sort()).toEqual(used.map((l) => l.id).sort());
    for (const id of [overruled.id, old.id, wrong.id]) expect(labels.listed.map((l) => l.id)).not.toContain(id);
    const byId = new Map(labels.listed.map((l) => [l.id, l]));
    const fault = byId.get(used[0]!.id)!;
    expect(fault).toEqual({
      id: used[0]!.id,
      kind: 'confirmed-fault',
      faultType: 'other',
      from: new Date(at(FAULTS[0]!)).toISOString(),
      to: new Date(at(FAULTS[0]! + 59)).toISOString(),
      author: 'Ana',
      createdAt: new Date(used[0]!.createdAt).toISOString(),
      deviceId: 'gw-l',
      readings: 60,
      heldOutRows: 60,
      leftOutRows: 0,
    });
    expect(byId.get(used[5]!.id)).toMatchObject({ author: 'Ben', readings: 60, heldOutRows: 0, leftOutRows: 60 });
    expect(byId.get(used[6]!.id)).toMatchObject({ kind: 'maintenance', readings: 100, heldOutRows: 0, leftOutRows: 0 });
    expect(byId.get(used[7]!.id)).toMatchObject({ kind: 'false-alarm', readings: 20, heldOutRows: 20, leftOutRows: 0 });

    // The rows each label decided add up to the comparison's own counts.
    const faults = labels.listed.filter((l) => l.kind === 'confirmed-fault');
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    expect(sum(faults.map((l) => l.heldOutRows))).toBe(e.evaluation.challenger.labelled!.rows);
    expect(e.evaluation.challenger.labelled!.rows).toBe(300);
    expect(sum(labels.listed.map((l) => l.heldOutRows))).toBe(labels.heldOutRows);
    expect(labels.heldOutRows).toBe(320);
    expect(sum(labels.listed.map((l) => l.leftOutRows))).toBe(e.data.faultRowsLeftOut);
    expect(labels.leftOutRows).toBe(60);
    expect(e.evaluation.description).toMatch(/\(5 episodes\)/);

    expect(labels.withdrawals).toEqual({
      read: 1,
      applied: 1,
      listed: [{ id: withdrawalId, withdraws: wrong.id, kind: 'confirmed-fault', author: 'Cem', createdAt: new Date(T0 + 2 * DAY).toISOString(), deviceId: 'gw-l', readings: 20 }],
      notListed: 0,
    });

    // model.json of the new version holds the same (its first evaluation).
    expect((await readModelRecord(container, 'pump-l', version)).evaluation.labels).toEqual(labels);

    const line =
      `  labels   8 of the 10 labels read gave readings of the range their target (320 held-out rows, 60 training rows left out as faults); ` +
      `1 of the 1 withdrawal read took its label off readings of the range; listed in ${evaluation!.name}`;
    expect(res.out.split('\n')).toContain(line);
    expect(readFileSync(report, 'utf8')).toContain(`<p><b>labels</b>: ${line.slice('  labels   '.length)}</p>`);
  });

  it('lists none for a pump without labels', async () => {
    const res = await cli(['train', '--source', 'pump-n', ...RANGE]);
    expect(res.code, res.err).toBe(0);
    const version = challengerVersion(res.out, 'pump-n');
    const [evaluation] = await evaluationsOf('pump-n', version);
    expect(evaluation!.record.evaluation.labels).toEqual({ read: 0, used: 0, heldOutRows: 0, leftOutRows: 0, listed: [], notListed: 0, withdrawals: { read: 0, applied: 0, listed: [], notListed: 0 } });
    expect(res.out.split('\n')).toContain(
      `  labels   0 of the 0 labels read gave readings of the range their target (0 held-out rows, 0 training rows left out as faults); 0 of the 0 withdrawals read took their labels off readings of the range; listed in ${evaluation!.name}`,
    );
  });
});
