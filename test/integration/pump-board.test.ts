/**
 * The page's per-pump state against a real SQLite buffer, with the gateway (wall) clock and the
 * monotonic clock injected: "stale" is measured on the monotonic clock, so an NTP step of the
 * gateway clock neither hides a silent pump nor makes a live one stale.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PumpBoard, type PumpSummary } from '../../agent/http/pump-board.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';
import { InferenceEngine } from '../../inference/engine.js';
import { LoadedModel } from '../../inference/model.js';
import { ModelManager } from '../../inference/models.js';
import { makeModel } from '../support/models.js';

let dir: string;
let buffer: BufferStore;
let engine: InferenceEngine;
let models: ModelManager;
let wall = Date.UTC(2026, 10, 23, 12);
let mono = 0;
const tick = (ms: number): void => {
  wall += ms;
  mono += ms;
};

const board = (): PumpBoard => new PumpBoard({ buffer, engine, models, clock: () => wall, monotonic: () => mono });
const normal = (pumpId: string, receivedAt = wall): PredictionRow => ({
  pumpId,
  ts: receivedAt,
  receivedAt,
  values: { Pressure: 1.4, Flow: 30, Current: 1.4 },
  score: 0.3,
  anomaly: false,
  modelVersion: 'b-1',
  imputed: false,
  unscoredReason: null,
});
const pump = (b: PumpBoard, pumpId: string): PumpSummary => b.summaries().find((p) => p.pumpId === pumpId)!;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-board-'));
  buffer = new BufferStore({ path: join(dir, 'buffer.sqlite'), maxBytes: 1 << 30 });
  buffer.open();
  engine = new InferenceEngine();
  engine.setModel('default', await LoadedModel.fromBytes(makeModel({ version: 'b-1' }), 'test'));
  models = new ModelManager({ engine, afterCurrentBatch: async () => undefined });
});

afterAll(async () => {
  await engine.model('default')?.release();
  buffer.close();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

describe('PumpBoard when NTP steps the gateway clock', () => {
  it('shows a pump silent for 20 min as stale after the clock was stepped back an hour', () => {
    const b = board();
    b.summaries();
    const row = normal('pump-back');
    b.record([row], buffer.appendBatch([row]));
    tick(20 * 60_000);
    wall -= 3_600_000;
    expect(pump(b, 'pump-back')).toMatchObject({ state: 'stale', lastState: 'normal', detail: 'no reading for 20 min' });
    expect(pump(b, 'pump-back').lastReading!.receivedAt).toBe(new Date(row.receivedAt).toISOString());
  });

  it('keeps a pump that just sent a reading normal after the clock was stepped forward an hour', () => {
    const b = board();
    b.summaries();
    const row = normal('pump-forward');
    b.record([row], buffer.appendBatch([row]));
    tick(10_000);
    wall += 3_600_000;
    expect(pump(b, 'pump-forward')).toMatchObject({ state: 'normal', detail: null });
  });

  it('after a restart, counts a stored receive time ahead of the clock as now, and shows the pump stale five minutes on', () => {
    buffer.appendBatch([normal('pump-seeded', wall + 3_600_000)]); // received before the clock was stepped back an hour
    const b = board();
    expect(pump(b, 'pump-seeded')).toMatchObject({ state: 'normal' });
    tick(6 * 60_000);
    expect(pump(b, 'pump-seeded')).toMatchObject({ state: 'stale', lastState: 'normal', detail: 'no reading for 6 min' });
  });
});
