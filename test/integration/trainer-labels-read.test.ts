/**
 * Which label blobs a training run downloads, counted through a proxy in front of a real Azurite:
 * the labels are uploaded as the agent uploads them (uploadPendingLabels, from a real SQLite
 * buffer: each blob tagged with its pump in the `pumpid` metadata); a run downloads only those of
 * the pumps it trains (train: its source; train-all: its shard's), and every blob that names no
 * pump (copied without its metadata, or written by another tool), and the labels it reads still
 * decide its comparison.
 */
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabelStore, type NewLabel } from '../../buffer/labels.js';
import { BufferStore } from '../../buffer/store.js';
import { labelBlobName, toLabelRecord, uploadPendingLabels } from '../../sync/labels-upload.js';
import { readBest, readModelRecord } from '../../trainer/registry/read.js';
import { inShard, shardOf } from '../../trainer/train/sources.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { startBlobProxy, type BlobProxy } from '../support/blob-proxy.js';
import { rng } from '../support/models.js';
import { pumpValues, runTrainer, seedReadings, trainerContext } from '../support/trainer.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 11);
const STEP = 20_000;
const RANGE = ['--from', '2026-01-11', '--to', '2026-01-12'];
/** Five pressure faults of 60 readings each, 20 readings apart, in the held-out part (rows 2880-3599): enough episodes to compare on. */
const FAULTS = [3000, 3080, 3160, 3240, 3320];
const inFault = (i: number) => FAULTS.some((s) => i >= s && i < s + 60);
/** Pumps with labels and readings, but none in the range: train-all skips them. */
const QUIET = Array.from({ length: 10 }, (_, i) => `pump-${i}`);

let az: TestAzurite;
let proxy: BlobProxy;
let dir: string;
let buffer: BufferStore;
let container: ContainerClient;
/** The label blobs of each pump, as the agent named them. */
const blobsOf = new Map<string, string[]>();

const label = (pumpId: string, over: Partial<NewLabel> = {}): NewLabel => ({
  pumpId,
  kind: 'false-alarm',
  faultType: null,
  note: null,
  alertSeq: null,
  fromTs: T0 - 5 * DAY,
  toTs: T0 - 5 * DAY + 600_000,
  author: 'tech',
  ...over,
});

/** Labels uploaded by a gateway's agent: added to its buffer, then uploaded by the sync's own function. */
async function agentUploads(deviceId: string, labels: NewLabel[]): Promise<void> {
  const store = new LabelStore(buffer);
  const added = labels.map((l, i) => store.add(l, T0 + DAY + i * 1000));
  expect(await uploadPendingLabels(container, store, deviceId)).toMatchObject({ uploaded: labels.length });
  for (const l of added) blobsOf.set(l.pumpId, [...(blobsOf.get(l.pumpId) ?? []), labelBlobName(deviceId, l)]);
}

beforeAll(async () => {
  az = await startTestAzurite();
  proxy = await startBlobProxy(az.port);
  dir = mkdtempSync(join(tmpdir(), 'pw-labels-read-'));
  buffer = new BufferStore({ path: join(dir, 'buffer.sqlite'), maxBytes: 1 << 30 });
  buffer.open();
  container = az.container('labels-read-it');
  await container.create();
  // pump-c: its pressure sensor off five times near the end, each a confirmed fault labelled by a technician.
  const rc = rng(13);
  await seedReadings(container, 'pump-c', 'gw-3', T0, 3600, (i) => pumpValues(rc, i, 25, { shift: inFault(i) ? 1.5 : 0 }));
  await agentUploads('gw-3', FAULTS.map((s) => label('pump-c', { kind: 'confirmed-fault', note: 'pressure sensor', fromTs: T0 + s * STEP, toTs: T0 + (s + 59) * STEP })));
  // 40 other pumps' labels, from other gateways: none is pump-c's. Ten of those pumps have readings, weeks before the range.
  for (let g = 0; g < 4; g++) await agentUploads(`gw-${10 + g}`, Array.from({ length: 10 }, (_, i) => label(`pump-${g * 10 + i}`)));
  for (const pump of QUIET) await seedReadings(container, pump, 'gw-10', T0 - 20 * DAY, 5, (i) => pumpValues(rc, i, 25));
  // A label of pump-c without its metadata (copied by hand): a maintenance window over its first 100 readings.
  const old = { id: 'old-1', pumpId: 'pump-c', kind: 'maintenance' as const, faultType: null, note: null, alertSeq: null, fromTs: T0, toTs: T0 + 99 * STEP, author: 'tech', createdAt: T0 - DAY, synced: true };
  const body = JSON.stringify(toLabelRecord('gw-old', old as never));
  await container.getBlockBlobClient(labelBlobName('gw-old', old as never)).upload(body, body.length);
  blobsOf.set('no metadata', [labelBlobName('gw-old', old as never)]);
});

afterAll(async () => {
  buffer?.close();
  await proxy?.close();
  await az?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

/** Runs the trainer through the proxy; the label blobs it downloaded, by name. */
async function run(args: string[]): Promise<{ code: number; out: string; err: string; labelGets: string[] }> {
  const through = BlobServiceClient.fromConnectionString(proxy.connectionString).getContainerClient('labels-read-it');
  const first = proxy.requests.length;
  const res = await runTrainer(args, trainerContext(through, { now: new Date(T0 + 30 * DAY) }));
  const labelGets = proxy.requests
    .slice(first)
    .filter((r) => r.method === 'GET' && r.path.startsWith('/devstoreaccount1/labels-read-it/labels/'))
    .map((r) => r.path.slice('/devstoreaccount1/labels-read-it/'.length));
  return { ...res, labelGets };
}

describe('the labels a training run reads', () => {
  it('downloads only the source\'s labels and those that name no pump, and still compares on the confirmed faults (train)', async () => {
    const res = await run(['train', '--source', 'pump-c', ...RANGE]);
    expect(res.code, res.err).toBe(0);
    expect(res.labelGets.sort()).toEqual([...blobsOf.get('pump-c')!, ...blobsOf.get('no metadata')!].sort());
    const record = await readModelRecord(container, 'pump-c', (await readBest(container, 'pump-c'))!.pointer.version);
    // The fault labels (with their metadata) decide the comparison; the one without metadata left its window out.
    expect(record.evaluation.criterion).toBe('labels');
    expect(record.evaluation.challenger.counts.tp + record.evaluation.challenger.counts.fn).toBe(300);
    expect(record.data.cleaning).toMatchObject({ droppedMaintenance: 100 });
    expect(res.out).toMatch(/compare {2}labels: challenger balanced accuracy \d\.\d{4}/);
  });

  it('downloads the labels of the shard\'s sources only (train-all)', async () => {
    const shards = 4;
    const shard = shardOf('pump-c', shards);
    const mine = inShard(QUIET, shard, shards);
    const others = Array.from({ length: 40 }, (_, i) => `pump-${i}`).filter((p) => !mine.includes(p));
    expect(mine.length, 'some quiet pumps in the shard of pump-c').toBeGreaterThan(0);
    const res = await run(['train-all', '--shard', `${shard}/${shards}`, ...RANGE]);
    expect(res.code, res.err).toBe(0);
    expect(res.out).toMatch(/^pump-c: (promoted|kept) /m);
    expect(res.out).toContain(`${mine.length + 1} of ${QUIET.length + 1} sources`);
    const expected = ['pump-c', 'no metadata', ...mine].flatMap((p) => blobsOf.get(p) ?? []);
    expect(res.labelGets.sort()).toEqual(expected.sort());
    for (const p of others) for (const name of blobsOf.get(p)!) expect(res.labelGets, p).not.toContain(name);
  });
});
