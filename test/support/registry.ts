/**
 * Registers a model the trainer made (fitTable on the test table) as a version of a source and
 * promotes it, through the registry's own functions: for tests of deploy, rollback and the
 * registry checks that need a live model without running `train`.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { fitTable } from '../../trainer/fit.js';
import { nextPointer, RECORD_SCHEMA, type ModelRecord } from '../../trainer/registry/records.js';
import { sha256 } from '../../trainer/registry/model-blob.js';
import { readBest } from '../../trainer/registry/read.js';
import { registerVersion } from '../../trainer/registry/register.js';
import { writeBest } from '../../trainer/registry/write.js';
import { trainingTable } from './models.js';

/**
 * `features`: the table's sensors (default the test set); one the readings lack makes a live model
 * that cannot be scored. `fit`: more options of the fit (`stuckAfter: {}`: no frozen-sensor bounds,
 * so a contract-1 model; by default the bounds the rows give make it contract 2).
 */
export async function promoteFittedModel(
  container: ContainerClient,
  source: string,
  version: string,
  seed: number,
  now: Date,
  features?: readonly string[],
  fit: Omit<Parameters<typeof fitTable>[1], 'source' | 'version'> = {},
): Promise<ModelRecord> {
  const { bytes, metadata } = fitTable(trainingTable(300, seed, features), { ...fit, source, version });
  const record = {
    schema: RECORD_SCHEMA,
    source,
    version,
    algorithm: metadata.algorithm,
    features: metadata.features,
    window: metadata.window,
    threshold: metadata.threshold,
    model: { blob: `models/${source}/${version}/model.onnx`, sha256: sha256(bytes), size: bytes.length },
    data: { from: '', to: '', readings: 300, devices: [], droppedFeatures: [], cleaning: {}, trainRows: 300, trainFrom: '', trainTo: '', holdoutRows: 0, holdoutFrom: '', holdoutTo: '' },
    evaluation: { criterion: 'synthetic-faults', description: '', challenger: { criterion: 'synthetic-faults', metric: 'balanced-accuracy', score: 1, f1: 1, far: 0, mar: 0, counts: { tp: 1, fp: 0, fn: 0, tn: 1 }, threshold: metadata.threshold }, champion: null, championVersion: null },
    decision: { promoted: true, reason: 'test', margin: 0.01 },
    baseline: {},
    trainer: { version: 'test', seed: 1 },
    createdAt: now.toISOString(),
  } satisfies ModelRecord;
  await registerVersion(container, record, bytes);
  const best = await readBest(container, source);
  await writeBest(container, nextPointer(record, best?.pointer ?? null, now.toISOString(), 'test'), best?.etag ?? null);
  return record;
}
