/**
 * Training benchmark: one pump's 1 000 000 readings (1 Hz, about 11.6 days, 8 sensors with daily
 * cycles, drift and noise) written to a real Azurite as the agent's sync writes them, then the
 * whole `train` job for that pump: read and de-duplicate the blobs, clean, hold out the last
 * 20 %, fit the default model, score challenger and live model on the held-out rows in
 * onnxruntime-node, write the registry. Prints the time of each stage and the peak RSS of this
 * process during the job (Azurite runs in its own process). Figures only, never pass/fail.
 *
 *   node dist/bench/train.js [--rows N] [--algo NAME]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { BlobServiceClient } from '@azure/storage-blob';
import { startAzurite } from '../agent/azurite.js';
import type { StoredRow } from '../buffer/types.js';
import { batchMetadata, encodeRows } from '../sync/encoder.js';
import { readingsBlobName } from '../sync/layout.js';
import type { Progress } from '../trainer/progress.js';
import { trainSource, TRAIN_DEFAULTS } from '../trainer/train/pipeline.js';
import { fmt, rssSampler } from './support.js';
import { mulberry32 as rng } from '../trainer/eval/criterion.js';

const PUMP = 'bench-pump';
const DEVICE = 'bench-gw';
const START = Date.UTC(2026, 0, 1);
const BATCH = 5000;


/** A SKAB-like pump: load follows a daily cycle, the sensors follow the load, temperatures drift. */
function values(r: () => number, i: number): Record<string, number> {
  const load = 0.6 + 0.3 * Math.sin((2 * Math.PI * i) / 86_400) + 0.05 * (r() - 0.5);
  const flow = 120 * load + (r() - 0.5);
  return {
    Accelerometer1RMS: 0.2 + 0.05 * load + 0.004 * (r() - 0.5),
    Accelerometer2RMS: 0.27 + 0.04 * load + 0.004 * (r() - 0.5),
    Current: 1 + 2 * load + 0.2 * (r() - 0.5),
    Pressure: 0.1 + 0.3 * load + 0.05 * (r() - 0.5),
    Temperature: 70 + 15 * load + 2 * Math.sin(i / 20_000) + 0.1 * (r() - 0.5),
    Thermocouple: 26 + 2 * Math.sin(i / 50_000) + 0.02 * (r() - 0.5),
    Voltage: 230 + 4 * (r() - 0.5),
    'Volume Flow RateRMS': flow,
  };
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({ options: { rows: { type: 'string' }, algo: { type: 'string' } } });
  const rows = Number(args.rows ?? 1_000_000);
  const dir = mkdtempSync(join(tmpdir(), 'pw-bench-train-'));
  const azurite = await startAzurite({ location: dir });
  try {
    const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient('bench');
    await container.create();
    // the registry in a container of its own, as the trainer keeps it (trainer/cloud/context.ts)
    const models = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient('bench-models');
    const t0 = performance.now();
    const r = rng(1);
    for (let start = 0; start < rows; start += BATCH) {
      const batch: StoredRow[] = [];
      for (let i = start; i < Math.min(rows, start + BATCH); i++) {
        const ts = START + i * 1000;
        batch.push({ seq: i + 1, pumpId: PUMP, ts, receivedAt: ts, values: values(r, i), score: null, anomaly: null, modelVersion: null, imputed: false, unscoredReason: null });
      }
      const enc = await encodeRows(batch, DEVICE);
      const first = batch[0] as StoredRow;
      const last = batch.at(-1) as StoredRow;
      await container
        .getBlockBlobClient(readingsBlobName(PUMP, DEVICE, first.seq, last.seq, first.ts))
        .upload(enc.body, enc.body.length, { metadata: batchMetadata(enc, { agentVersion: 'bench', deviceId: DEVICE, pumpId: PUMP, firstSeq: first.seq, lastSeq: last.seq }) });
    }
    console.log(`bench/train: ${fmt(rows)} readings of one pump written to Azurite in ${Math.ceil(rows / BATCH)} blobs (${((performance.now() - t0) / 1000).toFixed(1)} s, not timed below)`);

    const stages: Array<{ name: string; at: number }> = [];
    const progress: Progress = { stage: (name) => stages.push({ name, at: performance.now() }), update: () => {}, note: () => {}, finish: () => {} };
    const rssBefore = process.memoryUsage.rss() / 1024 / 1024;
    const rss = rssSampler();
    const t1 = performance.now();
    const outcome = await trainSource(
      { data: container, models },
      { source: PUMP, from: START, to: START + rows * 1000, ...TRAIN_DEFAULTS, algorithm: args.algo },
      progress,
      () => new Date(START + rows * 1000),
    );
    const total = performance.now() - t1;
    rss.stop();
    stages.push({ name: 'end', at: performance.now() });
    const record = outcome.record;
    console.log(`train ${PUMP}: ${outcome.status} ${record?.version} (${record?.algorithm}), ${fmt(record?.data.trainRows ?? 0)} rows trained, ${fmt(record?.data.holdoutRows ?? 0)} held out`);
    for (let i = 0; i + 1 < stages.length; i++) {
      const s = stages[i] as { name: string; at: number };
      console.log(`  ${s.name.padEnd(30)} ${((((stages[i + 1] as { at: number }).at - s.at) / 1000).toFixed(2)).padStart(7)} s`);
    }
    console.log(`  ${'total'.padEnd(30)} ${(total / 1000).toFixed(2).padStart(7)} s   (target < 60 s)`);
    console.log(`  peak RSS ${fmt(rss.peak())} MB (${fmt(rssBefore)} MB before the job; target < 1024 MB)`);
  } finally {
    await azurite.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
