/**
 * Model files for tests, made by the project's own trainer (never hand-written ONNX), and a
 * tiny deterministic generator of correlated pump-like training data.
 */
import { metadataToProps } from '../../inference/contract.js';
import { fitTable, TRAINER_VERSION, type FitResult } from '../../trainer/fit.js';
import type { CsvTable } from '../../trainer/csv.js';
import { encodeModel } from '../../trainer/onnx/model.js';
import { mulberry32 } from '../../trainer/eval/criterion.js';

export const TEST_FEATURES = ['Pressure', 'Flow', 'Current'] as const;

/** Deterministic PRNG (the trainer's mulberry32) so test models are the same bytes every run. */
export const rng = mulberry32;

/** A normal operating point: flow drives pressure and current, with a little noise. */
export function normalValues(r: () => number, t: number): Record<string, number> {
  const flow = 30 + 3 * Math.sin(t / 50) + (r() - 0.5) * 0.4;
  return {
    Pressure: 2 - 0.02 * flow + (r() - 0.5) * 0.02,
    Flow: flow,
    Current: 0.5 + 0.03 * flow + (r() - 0.5) * 0.02,
  };
}

export function trainingTable(rows = 600, seed = 7, features: readonly string[] = TEST_FEATURES): CsvTable {
  const r = rng(seed);
  const start = Date.UTC(2026, 0, 1);
  const table: CsvTable = { features: [...features], rows: [], timestamps: [], timestampColumn: 'timestamp', ignoredColumns: [] };
  for (let i = 0; i < rows; i++) {
    const v = normalValues(r, i);
    table.rows.push(Float64Array.from(features.map((f) => v[f] ?? 0)));
    table.timestamps.push(start + i * 1000);
  }
  return table;
}

type ModelOptions = { version?: string; window?: number; source?: string; features?: readonly string[]; seed?: number };

/** A model fitted by the trainer on normal data (contract 2: it carries frozen-sensor bounds). */
export function makeModel(opts: ModelOptions = {}): Uint8Array {
  return fitModel(opts).bytes;
}

function fitModel(opts: ModelOptions): FitResult {
  return fitTable(trainingTable(600, opts.seed ?? 7, opts.features ?? TEST_FEATURES), {
    version: opts.version ?? 'test-1',
    window: opts.window ?? 1,
    source: opts.source ?? 'default',
    algorithm: 'pca',
  });
}

/**
 * A model as makeModel fits it, its metadata written as `edit` makes of what the trainer writes:
 * a model as an earlier or a later trainer would write it, the same graph.
 */
export function makeModelWithProps(opts: ModelOptions, edit: (props: Record<string, string>) => Record<string, string>): Uint8Array {
  const fit = fitModel(opts);
  return rewritten(fit, edit(metadataToProps(fit.metadata)));
}

/** The trainer's fitted graph written again with `props` as its metadata. */
export function rewritten(fit: FitResult, props: Record<string, string>, docString = 'rewritten metadata'): Uint8Array {
  return encodeModel(fit.model.toOnnxGraph(), { metadata: props, producerVersion: TRAINER_VERSION, docString });
}
