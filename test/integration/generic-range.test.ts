/**
 * A pump outside the generic default model's range, through the real ingest path: the bundled
 * default model in a real ONNX session, a real SQLite buffer, the board wired as
 * agent/wiring/page.ts wires it. Readings of the simulator's pumps scaled to another duty point
 * (flow × 0.25, current × 0.4, as a real pump on SKAB's testbed differs from the simulated one) are
 * all flagged by that model: the pump is marked, its readings and verdicts still stored as they are.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENERIC_RANGE_MIN_SCORED, GENERIC_RANGE_SHARE } from '../../agent/http/generic-range.js';
import { PumpBoard, type PumpSummary } from '../../agent/http/pump-board.js';
import { IngestPipeline } from '../../agent/ingest/pipeline.js';
import { createAgentMetrics, MetricsRegistry } from '../../agent/metrics.js';
import { bundledModelPath } from '../../agent/paths.js';
import { PumpSimulator } from '../../agent/simulator.js';
import { BufferStore } from '../../buffer/store.js';
import { InferenceEngine } from '../../inference/engine.js';
import { LoadedModel } from '../../inference/model.js';
import { ModelManager } from '../../inference/models.js';
import { makeModel } from '../support/models.js';

let dir: string;
let buffer: BufferStore;
let engine: InferenceEngine;
let models: ModelManager;
let board: PumpBoard;
let pipeline: IngestPipeline;
let wall = Date.now() - 3 * 3_600_000;
let mono = 0;

/**
 * `minutes` of 1-Hz readings of simulated pumps, each with its `scale` applied: one batch a minute
 * per pump, as a sensor module sends them.
 */
async function feed(pumps: Array<[PumpSimulator, Record<string, number>?]>, minutes: number): Promise<void> {
  for (let m = 0; m < minutes; m++) {
    wall += 60_000;
    mono += 60_000;
    for (const [sim, scale = {}] of pumps) {
      const batch = Array.from({ length: 60 }, () => {
        const { reading } = sim.next();
        const values = { ...reading.values };
        for (const [name, k] of Object.entries(scale)) values[name] = values[name]! * k;
        return { ...reading, values };
      });
      expect((await pipeline.ingest(batch, 'edge')).accepted).toBe(60);
    }
  }
}
const OTHER_DUTY_POINT = { 'Volume Flow RateRMS': 0.25, Current: 0.4 };
const sim = (pumpId: string, seed: number): PumpSimulator => new PumpSimulator({ pumpId, seed, startTs: wall });
const pump = (pumpId: string): PumpSummary => board.summaries().find((p) => p.pumpId === pumpId)!;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-generic-range-'));
  buffer = new BufferStore({ path: join(dir, 'buffer.sqlite'), maxBytes: 1 << 30 });
  buffer.open();
  engine = new InferenceEngine();
  models = new ModelManager({ engine, afterCurrentBatch: async () => undefined });
  await models.loadBundledDefault(bundledModelPath());
  board = new PumpBoard({ buffer, engine, models, clock: () => wall, monotonic: () => mono });
  pipeline = new IngestPipeline({ engine, buffer, metrics: createAgentMetrics(new MetricsRegistry()), clock: () => wall });
  pipeline.onCommit((rows, seqs) => board.record(rows, seqs));
  board.summaries(); // the page was opened: the board follows commits from here
});

afterAll(async () => {
  for (const key of engine.keys()) await engine.model(key)?.release();
  buffer.close();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

describe('a pump outside the generic default model\'s range', () => {
  it('marks a pump at another duty point, keeps every reading and verdict, and leaves a pump at the simulated duty point unmarked', async () => {
    const other = sim('pump-other', 7);
    const usual = sim('pump-usual', 8);
    await feed([[other, OTHER_DUTY_POINT], [usual]], 20);

    const o = pump('pump-other');
    const version = engine.model('default')!.meta.version;
    expect(o.model).toMatchObject({ key: 'default', version });
    expect(o.state).toBe('anomaly'); // the verdicts are what they were: the pump is only marked
    expect(o.outsideGenericRange).not.toBeNull();
    const mark = o.outsideGenericRange!;
    expect(mark).toMatchObject({ modelVersion: version, windowMinutes: 60 });
    expect(mark.scored).toBeGreaterThanOrEqual(20 * 60 - 60);
    expect(mark.share).toBeGreaterThanOrEqual(GENERIC_RANGE_SHARE);
    // every reading stored, with its score and verdict, as without the mark
    const stored = buffer.predictions('pump-other', { limit: 2000 });
    expect(stored).toHaveLength(1200);
    const flagged = stored.filter((r) => r.anomaly === true).length;
    expect(flagged).toBeGreaterThanOrEqual(mark.anomalies);
    expect(stored.filter((r) => r.anomaly !== null).length).toBeGreaterThanOrEqual(mark.scored);

    const u = pump('pump-usual');
    expect(u.model).toMatchObject({ key: 'default' });
    expect(u.outsideGenericRange).toBeNull();
    const usualRows = buffer.predictions('pump-usual', { limit: 2000 }).filter((r) => r.anomaly !== null);
    // at the simulated duty point the generic model flags few readings (none, measured): far below the bound
    expect(usualRows.length).toBeGreaterThanOrEqual(GENERIC_RANGE_MIN_SCORED);
    expect(usualRows.filter((r) => r.anomaly).length).toBeLessThan(0.1 * usualRows.length);

    // what GET /status reports
    expect(board.outsideGenericRange()).toEqual({ 'pump-other': mark });
    // after a restart, from the rows the board reads back
    const restarted = new PumpBoard({ buffer, engine, models, clock: () => wall, monotonic: () => mono });
    expect(restarted.outsideGenericRange()).toEqual({ 'pump-other': expect.objectContaining({ modelVersion: version, share: 1 }) });
  });

  it('clears the mark when the pump\'s readings come back within the model\'s range', async () => {
    const s = sim('pump-back', 9);
    await feed([[s, OTHER_DUTY_POINT]], 10);
    expect(pump('pump-back').outsideGenericRange).not.toBeNull();
    await feed([[s]], 5);
    expect(pump('pump-back').outsideGenericRange).toBeNull();
    expect(board.outsideGenericRange()['pump-back']).toBeUndefined();
  });

  it('marks nothing before GENERIC_RANGE_MIN_SCORED readings were scored, and nothing for a pump scored by a model of its own', async () => {
    const s = sim('pump-new', 10);
    const few = Array.from({ length: GENERIC_RANGE_MIN_SCORED - 1 }, () => {
      const { reading } = s.next();
      return { ...reading, values: { ...reading.values, 'Volume Flow RateRMS': reading.values['Volume Flow RateRMS']! * 0.25, Current: reading.values.Current! * 0.4 } };
    });
    expect((await pipeline.ingest(few, 'edge')).accepted).toBe(few.length);
    expect(pump('pump-new').outsideGenericRange).toBeNull();

    const own = sim('pump-own', 11);
    await feed([[own, OTHER_DUTY_POINT]], 5);
    expect(pump('pump-own').outsideGenericRange).not.toBeNull();
    engine.setModel('pump-own', await LoadedModel.fromBytes(makeModel({ version: 'own-1', source: 'pump-own' }), 'test'));
    expect(pump('pump-own').outsideGenericRange).toBeNull();
    expect(board.outsideGenericRange()['pump-own']).toBeUndefined();
  });
});
