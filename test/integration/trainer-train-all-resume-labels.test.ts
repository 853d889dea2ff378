/**
 * train-all --resume does not take an earlier attempt's record that labels posted since have made
 * stale, through the real `pumpwatch-trainer` process against Azurite, the labels written by a
 * real SQLite buffer and uploaded by the sync (uploadPendingLabels) between two attempts: a label
 * of the range makes the retry train its pump again, and only it (not a pump whose label is
 * outside the range, nor the others); a withdrawal counts too; and a pump skipped for having no
 * readings is trained again once its readings of the range arrive (one listing per day of the
 * range, counted through a proxy; a pump whose listing fails is said and trained again). Before, the retry took every record whatever was posted since: a verdict the labels
 * contradicted stood for the whole range.
 */
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabelStore, type Label, type NewLabel } from '../../buffer/labels.js';
import { BufferStore } from '../../buffer/store.js';
import { uploadPendingLabels } from '../../sync/labels-upload.js';
import { EXIT } from '../../trainer/errors.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { startBlobProxy } from '../support/blob-proxy.js';
import { runTrainer, seedDays, trainerContext } from '../support/trainer.js';
import { evaluationBlobs, readJsonBlob, runContainers, trainerProcess } from '../support/train-all-runs.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1);
const RANGE = ['--from', '2026-01-01', '--to', '2026-01-02'];
const RUNS = 'runs/2026-01-01T00-00-00.000Z_2026-01-02T00-00-00.000Z/';

let az: TestAzurite;
let dir: string;
const buffers: BufferStore[] = [];

beforeAll(async () => {
  az = await startTestAzurite();
  dir = mkdtempSync(join(tmpdir(), 'pw-resume-labels-'));
});

afterAll(async () => {
  for (const b of buffers) b.close();
  await az?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

/** A gateway's label store on its own SQLite buffer, and its upload to `container` as the sync does it. */
function gateway(name: string, container: ContainerClient): { store: LabelStore; upload: () => Promise<{ uploaded: number }> } {
  const buffer = new BufferStore({ path: join(dir, `${name}.sqlite`), maxBytes: 1 << 30 });
  buffer.open();
  buffers.push(buffer);
  const store = new LabelStore(buffer);
  return { store, upload: () => uploadPendingLabels(container, store, 'gw-1') };
}

/** A technician's label, created on the gateway in the range's day (long before either attempt: a gateway offline since). */
const label = (store: LabelStore, l: Pick<NewLabel, 'pumpId' | 'kind' | 'fromTs' | 'toTs'>): Label =>
  store.add({ faultType: l.kind === 'confirmed-fault' ? 'bearing' : null, note: null, alertSeq: null, author: 'Ana', ...l }, T0 + 20 * HOUR);

const lastLine = (text: string) => text.trim().split('\n').at(-1);

describe('train-all --resume after labels posted since the earlier attempt', () => {
  it("trains again the pump a label of the range concerns, and only it: not for a label outside the range nor another pump's, and then takes its new record", async () => {
    const name = 'resume-label';
    const { data, models } = await runContainers(az, name);
    for (const [i, pump] of ['pump-a', 'pump-b', 'pump-c'].entries()) await seedDays(data, pump, T0, 1 + i, 30, { count: 4320 });
    const gw = gateway(name, data);
    const first = await trainerProcess(az, name, ['train-all', ...RANGE, '--resume']);
    expect(first.code, first.stderr).toBe(EXIT.ok);
    expect(lastLine(first.stdout)).toBe('train-all: shard 0/1: 3 promoted, 0 kept, 0 skipped, 0 failed');
    const recordA = await readJsonBlob(models, `${RUNS}pump-a.json`);
    const before = new Map(await Promise.all(['pump-a', 'pump-b', 'pump-c'].map(async (p) => [p, await evaluationBlobs(models, p)] as const)));

    // Created on the gateway before the first attempt, uploaded after it (the gateway was offline).
    const fault = label(gw.store, { pumpId: 'pump-a', kind: 'confirmed-fault', fromTs: T0 + 10 * HOUR, toTs: T0 + 10 * HOUR + 1_200_000 });
    label(gw.store, { pumpId: 'pump-b', kind: 'false-alarm', fromTs: T0 - 3 * DAY, toTs: T0 - 3 * DAY + 600_000 }); // outside the range
    label(gw.store, { pumpId: 'pump-x', kind: 'confirmed-fault', fromTs: T0 + HOUR, toTs: T0 + 2 * HOUR }); // no source of this shard
    expect(await gw.upload()).toMatchObject({ uploaded: 3 });

    const retry = await trainerProcess(az, name, ['train-all', ...RANGE, '--resume']);
    expect(retry.code, retry.stderr).toBe(EXIT.ok);
    expect(retry.stdout).toContain(`pump-a: trained again: 1 label of the range posted since the earlier attempt read them (its record: done at ${recordA.finishedAt as string} (promoted ${recordA.version as string})) (--resume)`);
    expect(retry.stdout).toMatch(/^pump-a: (promoted|kept) /m);
    expect(await evaluationBlobs(models, 'pump-a')).toHaveLength(before.get('pump-a')!.length + 1);
    for (const pump of ['pump-b', 'pump-c']) {
      expect(retry.stdout, pump).toMatch(new RegExp(`^${pump}: done already at \\S+ \\(promoted \\S+\\), not trained again \\(--resume\\)$`, 'm'));
      expect(await evaluationBlobs(models, pump), pump).toEqual(before.get(pump));
    }
    expect(retry.stdout).not.toMatch(/^pump-[bc]: trained again/m);
    expect(lastLine(retry.stdout)).toMatch(/^train-all: shard 0\/1: [01] promoted, [01] kept, 0 skipped, 0 failed, 2 done already$/);
    // The record names the labels its attempt read: none, then the one posted.
    expect(recordA.labelIds).toEqual([]);
    expect(await readJsonBlob(models, `${RUNS}pump-a.json`)).toMatchObject({ labelIds: [fault.id] });

    // The new record names the label: a further retry takes it.
    const third = await trainerProcess(az, name, ['train-all', ...RANGE, '--resume']);
    expect(lastLine(third.stdout)).toBe('train-all: shard 0/1: 0 promoted, 0 kept, 0 skipped, 0 failed, 3 done already');
  });

  it('trains again the pump whose label of the range was withdrawn since, not the one whose withdrawn label is outside the range', async () => {
    const name = 'resume-withdrawal';
    const { data, models } = await runContainers(az, name);
    await seedDays(data, 'pump-w', T0, 1, 30, { count: 4320 });
    await seedDays(data, 'pump-v', T0, 2, 30, { count: 4320 });
    const gw = gateway(name, data);
    const wrong = label(gw.store, { pumpId: 'pump-w', kind: 'confirmed-fault', fromTs: T0 + 5 * HOUR, toTs: T0 + 6 * HOUR });
    const old = label(gw.store, { pumpId: 'pump-v', kind: 'confirmed-fault', fromTs: T0 - 2 * DAY, toTs: T0 - 2 * DAY + HOUR });
    expect(await gw.upload()).toMatchObject({ uploaded: 2 });
    const first = await trainerProcess(az, name, ['train-all', ...RANGE, '--resume', '--json']);
    expect(first.code, first.stderr).toBe(EXIT.ok);
    const records = new Map(first.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => 'source' in r).map((r) => [r.source as string, r]));
    expect(records.get('pump-w')).toMatchObject({ outcome: 'promoted' });
    expect(records.get('pump-v')).toMatchObject({ outcome: 'promoted' });
    const before = await evaluationBlobs(models, 'pump-v');

    for (const l of [wrong, old]) expect(gw.store.withdrawals.withdraw(l.id, { author: 'Cem', note: 'wrong pump' }, T0 + 21 * HOUR).outcome).toBe('withdrawn');
    expect(await gw.upload()).toMatchObject({ uploaded: 2 });

    const retry = await trainerProcess(az, name, ['train-all', ...RANGE, '--resume']);
    expect(retry.code, retry.stderr).toBe(EXIT.ok);
    expect(retry.stdout).toMatch(/^pump-w: trained again: 1 withdrawal of the range posted since the earlier attempt read them \(its record: done at \S+ \(promoted \S+\)\) \(--resume\)$/m);
    expect(retry.stdout).toMatch(/^pump-v: done already at /m);
    expect(await evaluationBlobs(models, 'pump-v')).toEqual(before);
    expect(lastLine(retry.stdout)).toMatch(/, 1 done already$/);
    expect(records.get('pump-w')).toMatchObject({ labelIds: [wrong.id] });
    expect(records.get('pump-v')).toMatchObject({ labelIds: [] });
    const w = await readJsonBlob(models, `${RUNS}pump-w.json`);
    // The label and its withdrawal: a further retry takes the record.
    expect(w.labelIds).toHaveLength(2);
    expect(w.labelIds).toContain(wrong.id);
  });

  it('trains again a pump skipped for no readings once its readings of the range arrived, not one that still has none', async () => {
    const name = 'resume-readings';
    const { data, models } = await runContainers(az, name);
    await seedDays(data, 'pump-late', T0 + 5 * DAY, 1, 30, { count: 100 });
    await seedDays(data, 'pump-gone', T0 + 5 * DAY, 1, 30, { count: 100 });
    const first = await trainerProcess(az, name, ['train-all', ...RANGE, '--resume']);
    expect(first.code, first.stderr).toBe(EXIT.ok);
    expect(lastLine(first.stdout)).toBe('train-all: shard 0/1: 0 promoted, 0 kept, 2 skipped, 0 failed');
    const skipped = await readJsonBlob(models, `${RUNS}pump-late.json`);
    expect(skipped).toMatchObject({ outcome: 'skipped', skipKind: 'no-readings' });

    // The gateway, offline through the range, uploads its readings.
    await seedDays(data, 'pump-late', T0, 1000, 30, { count: 4320 });
    const retry = await trainerProcess(az, name, ['train-all', ...RANGE, '--resume']);
    expect(retry.code, retry.stderr).toBe(EXIT.ok);
    expect(retry.stdout).toContain(`pump-late: trained again: readings in the range now (blobs dated 2026-01-01) (its record: done at ${skipped.finishedAt as string} (skipped: no readings)) (--resume)`);
    expect(retry.stdout).toMatch(/^pump-late: promoted /m);
    expect(retry.stdout).toMatch(/^pump-gone: done already at \S+ \(skipped: no readings\), not trained again \(--resume\)$/m);
    expect(lastLine(retry.stdout)).toBe('train-all: shard 0/1: 1 promoted, 0 kept, 0 skipped, 0 failed, 1 done already');
    expect(await readJsonBlob(models, `${RUNS}pump-late.json`)).toMatchObject({ outcome: 'promoted' });
  });

  it('lists each day of the range once for a pump skipped for no readings, and trains it again, saying why, when that listing fails', async () => {
    const name = 'resume-listing';
    const { data, models } = await runContainers(az, name);
    await seedDays(data, 'pump-q', T0 + 30 * DAY, 1, 30, { count: 100 });
    const week = ['train-all', '--from', '2026-01-01', '--to', '2026-01-08', '--resume'];
    const first = await runTrainer(week, trainerContext(data, { now: () => new Date(), models }));
    expect(first.out.split('\n').at(-1)).toBe('train-all: shard 0/1: 0 promoted, 0 kept, 1 skipped, 0 failed');
    const days = /^readings\/pump-q\/2026\/01\/0\d\/$/;
    let failing: string | null = null;
    const proxy = await startBlobProxy(az.port, (req) => (req.query.get('prefix') === failing ? 503 : 'forward'));
    try {
      // The trainer's client as the CLI makes it, but without the SDK's own retries of a 503 (seconds apart).
      const proxied = BlobServiceClient.fromConnectionString(proxy.connectionString, { retryOptions: { maxTries: 1 } }).getContainerClient(name);
      const ctx = trainerContext(proxied, { now: () => new Date(), models });
      const retry = await runTrainer(week, ctx);
      expect(retry.code, retry.err).toBe(EXIT.ok);
      expect(retry.out).toMatch(/^pump-q: done already at \S+ \(skipped: no readings\), not trained again \(--resume\)$/m);
      // One listing per day of the range, newest first: what a retired pump costs a retry.
      const listed = proxy.requests.flatMap((r) => (days.test(r.query.get('prefix') ?? '') ? [r.query.get('prefix')] : []));
      expect(listed).toEqual(Array.from({ length: 7 }, (_, k) => `readings/pump-q/2026/01/0${7 - k}/`));

      failing = 'readings/pump-q/2026/01/07/';
      const down = await runTrainer(week, ctx);
      expect(down.err).toContain('  warning  pump-q: its readings of the range were not listed (PW_TRAINER_STORAGE: listing the readings of "pump-q" failed: Blob Storage answered 503 ServerBusy: The proxy of this test answers 503.): trained again');
      expect(down.out).not.toContain('done already');
    } finally {
      await proxy.close();
    }
  });
});
