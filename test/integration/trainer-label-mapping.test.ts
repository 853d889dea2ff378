/**
 * Technicians' labels mapped to a range's readings as `train` reads them (prepareData against a
 * real Azurite): each reading gets the target of the newest label over it, and the cost is linear
 * in readings and labels (it was their product: 100,000 readings against 1,000 labels took 77 s).
 */
import type { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { labelBlobName, readLabels, type LabelRecord } from '../../sync/labels-upload.js';
import { createProgress } from '../../trainer/progress.js';
import { prepareData } from '../../trainer/train/prepare.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { rng } from '../support/models.js';
import { pumpValues, seedReadings } from '../support/trainer.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);
const STEP = 20_000;

let az: TestAzurite;
let container: ContainerClient;

beforeAll(async () => {
  az = await startTestAzurite();
  container = az.container('trainer-label-mapping');
  await container.create();
});

afterAll(async () => {
  await az?.dispose();
});

describe('labels mapped to readings', () => {
  /** An ISO 8601 time of `ms` written with an offset of `minutes` (the label schema takes any offset). */
  const withOffset = (ms: number, minutes: number) => {
    const a = Math.abs(minutes);
    return `${new Date(ms + minutes * 60_000).toISOString().slice(0, 23)}${minutes < 0 ? '-' : '+'}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
  };
  /** What a reading's target was before: every label checked for every reading, the newest covering one winning. */
  const oneByOne = (labels: readonly LabelRecord[], pumpId: string, ts: number) => {
    let best: LabelRecord | null = null;
    for (const l of labels) {
      if (l.pumpId !== pumpId || ts < Date.parse(l.from) || ts > Date.parse(l.to)) continue;
      if (best === null || Date.parse(l.createdAt) >= Date.parse(best.createdAt)) best = l;
    }
    return best === null ? null : ({ 'confirmed-fault': 'anomaly', 'false-alarm': 'normal', maintenance: 'exclude' } as const)[best.kind];
  };

  it('gives each reading the target of the newest label over it, parsing each label’s times once however many readings there are', async () => {
    const r = rng(3);
    const n = 4000;
    await seedReadings(container, 'pump-labels', 'gw-1', T0, n, (i) => pumpValues(r, i, 30), { batch: 2000 });
    // 300 labels of every kind over overlapping spans, times with offsets, some created at the same moment, some of another pump.
    const kinds = ['confirmed-fault', 'false-alarm', 'maintenance'] as const;
    const records = Array.from({ length: 300 }, (_, k) => {
      const from = T0 + Math.floor(r() * (n + 200) - 100) * STEP;
      const to = from + Math.floor(r() * 40) * STEP;
      const created = T0 + DAY + Math.floor(r() * 40) * 60_000;
      const kind = kinds[k % 3]!;
      const record = {
        schema: 1,
        id: `lab-${k}`,
        deviceId: 'gw-1',
        pumpId: k % 10 === 9 ? 'pump-other' : 'pump-labels',
        kind,
        faultType: kind === 'confirmed-fault' ? 'other' : null,
        note: null,
        alertSeq: null,
        from: withOffset(from, (k % 5) * 60 - 120),
        to: withOffset(to, (k % 3) * 90),
        author: 'tech',
        createdAt: withOffset(created, k % 2 === 0 ? 0 : 120),
      };
      return { record, created };
    });
    for (let k = 0; k < records.length; k += 25) {
      await Promise.all(
        records.slice(k, k + 25).map(({ record, created }) => {
          const body = JSON.stringify(record);
          return container.getBlockBlobClient(labelBlobName('gw-1', { id: record.id, createdAt: created })).upload(body, body.length);
        }),
      );
    }
    const parse = vi.spyOn(Date, 'parse');
    let parses: number;
    let prepared: Awaited<ReturnType<typeof prepareData>>;
    try {
      prepared = await prepareData(container, { source: 'pump-labels', from: T0, to: T0 + DAY }, createProgress({ line: () => undefined }, false, 'test'), { raw: true });
    } finally {
      parses = parse.mock.calls.length;
      parse.mockRestore();
    }
    // Linear in the readings and in the labels (timestamps of the readings, the label blobs' downloads and
    // their sort by creation, each label's three times once): 17,572 here. Before, every reading
    // parsed the times of every label: 4000 × 300 × 2 and more.
    expect(parses).toBeLessThan(2 * n + 50 * records.length);
    const labels = await readLabels(container);
    const raw = prepared.raw!;
    expect(raw.timestamps).toHaveLength(n);
    const expected = raw.timestamps.map((ts) => oneByOne(labels, 'pump-labels', ts));
    expect(new Set(expected)).toEqual(new Set(['anomaly', 'normal', 'exclude', null]));
    expect(raw.targets).toEqual(expected);
  });
});
