/**
 * A raise dropped from a full pending list while the hub is unreachable (a small `maxPending`):
 * once the hub is back, the control room's stream never has an episode without its raise
 * (alarmStreamProblems). A real SQLite buffer and a real onnxruntime model; the edgeHub side is
 * the `send` function, failing while offline.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertPublisher, type Alert } from '../../agent/edge/alerts.js';
import { CLEAR_AFTER_NORMALS } from '../../agent/http/pump-board.js';
import { createLogger } from '../../agent/logger.js';
import { BufferStore } from '../../buffer/store.js';
import { InferenceEngine } from '../../inference/engine.js';
import { LoadedModel } from '../../inference/model.js';
import { alarmStreamProblems } from '../support/alerts.js';
import { makeModel, normalValues, rng } from '../support/models.js';

let dir: string;
let buffer: BufferStore;
let engine: InferenceEngine;
let now = Date.UTC(2026, 10, 23, 10);
let mono = 0;
const r = rng(11);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-alerts-dropped-'));
  buffer = new BufferStore({ path: join(dir, 'buffer.sqlite'), maxBytes: 1 << 30 });
  buffer.open();
  engine = new InferenceEngine();
  engine.setModel('default', await LoadedModel.fromBytes(makeModel({ version: 'dropped-1' }), 'test'));
});

afterAll(async () => {
  await engine.model('default')?.release();
  buffer.close();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

/** A publisher whose hub is unreachable until `online.value` is set. */
function offlinePublisher(maxPending: number, minIntervalMs: number): { p: AlertPublisher; sent: Alert[]; online: { value: boolean } } {
  const sent: Alert[] = [];
  const online = { value: false };
  const send = async (a: Alert): Promise<void> => {
    if (!online.value) throw new Error('not connected to the hub');
    sent.push(a);
  };
  const p = new AlertPublisher({ engine, kv: buffer, deviceId: 'gw-a', send, minIntervalMs: () => minIntervalMs, sensorMinIntervalMs: () => 3_600_000, logger: createLogger('silent'), clock: () => now, monotonic: () => mono, maxPending });
  p.restore();
  return { p, sent, online };
}

/** Scores and commits one reading of `pumpId` (a spike: an anomaly for the test model; else normal), then the clocks move 1 s on. */
async function reading(p: AlertPublisher, pumpId: string, anomalous: boolean): Promise<number> {
  const values = anomalous ? { Pressure: 4, Flow: 30, Current: 1.4 } : normalValues(r, now / 1000);
  const rows = await engine.score([{ pumpId, ts: now, values }], now);
  expect(rows[0]!.anomaly).toBe(anomalous);
  const seqs = buffer.appendBatch(rows);
  p.onCommit(rows, seqs);
  now += 1000;
  mono += 1000;
  return seqs[0]!;
}

async function backOnline(p: AlertPublisher, online: { value: boolean }): Promise<void> {
  await p.idle();
  online.value = true;
  p.flush();
  await p.idle();
}

/** The clocks move `ms` on. */
const pass = (ms: number): void => {
  now += ms;
  mono += ms;
};

describe('a raise dropped from a full pending list', () => {
  it('leaves no episode without its raise in what reaches the hub, for pumps flickering between anomalous and normal runs', async () => {
    const { p, sent, online } = offlinePublisher(6, 3_000);
    // Each pump in runs: 1-3 anomalies, then 2-8 normal readings (from CLEAR_AFTER_NORMALS on, a clear).
    const runs = new Map<string, { anomalous: boolean; left: number }>();
    const next = (pumpId: string): boolean => {
      const run = runs.get(pumpId) ?? { anomalous: false, left: 0 };
      if (run.left === 0) Object.assign(run, run.anomalous ? { anomalous: false, left: 2 + Math.floor(r() * 7) } : { anomalous: true, left: 1 + Math.floor(r() * 3) });
      run.left--;
      runs.set(pumpId, run);
      return run.anomalous;
    };
    // Offline stretches, each longer than the list, with the hub back between them.
    for (let stretch = 0; stretch < 8; stretch++) {
      online.value = false;
      for (let i = 0; i < 60; i++) {
        const pumpId = `flicker-${i % 3}`;
        await reading(p, pumpId, next(pumpId));
      }
      await backOnline(p, online);
    }
    expect(p.status().dropped).toBeGreaterThan(0);
    expect(sent.filter((a) => a.kind === 'anomaly-cleared').length).toBeGreaterThan(0);
    expect(alarmStreamProblems(sent)).toEqual([]);
    expect(new Set(sent.map((a) => a.id)).size).toBe(sent.length);
  });

  it('raises again at its next alert, not held back by the rate limit, an alarm none of whose alerts was left', async () => {
    const { p, sent, online } = offlinePublisher(4, 60_000);
    await reading(p, 'lost-x', true); // raises lost-x
    for (const pumpId of ['x-other-1', 'x-other-2', 'x-other-3', 'x-other-4']) await reading(p, pumpId, true); // the raise is pushed out
    const again = await reading(p, 'lost-x', true); // inside the interval
    pass(60_000);
    const normals: number[] = [];
    for (let i = 0; i < CLEAR_AFTER_NORMALS; i++) normals.push(await reading(p, 'lost-x', false));
    await backOnline(p, online);

    expect(alarmStreamProblems(sent)).toEqual([]);
    expect(sent.filter((a) => a.pumpId === 'lost-x').map((a) => [a.kind, a.seq, a.episode])).toEqual([
      ['anomaly', again, again],
      ['anomaly-cleared', normals.at(-1), again],
    ]);
  });

  it('drops a clear left with no raise, and sends none for an alarm none of whose alerts was left', async () => {
    const { p, sent, online } = offlinePublisher(3, 60_000);
    await reading(p, 'lost-c', true);
    pass(60_000);
    for (let i = 0; i < CLEAR_AFTER_NORMALS; i++) await reading(p, 'lost-c', false); // its clear pending behind its raise
    await reading(p, 'c-other-1', true);
    await reading(p, 'c-other-2', true); // pushes out lost-c's raise: its clear goes with it
    expect(p.status()).toMatchObject({ pending: 2, dropped: 2 });
    await reading(p, 'lost-u', true);
    for (const pumpId of ['u-other-1', 'u-other-2', 'u-other-3']) await reading(p, pumpId, true); // lost-u's raise pushed out
    pass(60_000);
    for (let i = 0; i < CLEAR_AFTER_NORMALS; i++) await reading(p, 'lost-u', false); // back to normal: no clear of an alarm never raised
    expect(p.status()).toMatchObject({ pending: 3, dropped: 6 });
    await backOnline(p, online);

    expect(alarmStreamProblems(sent)).toEqual([]);
    expect(sent.map((a) => a.pumpId)).toEqual(['u-other-1', 'u-other-2', 'u-other-3']);
  });

  it('drops repeats first and clears last, so an alarm raised before the outage still clears, and carries the dropped repeats in suppressedSinceLast', async () => {
    const { p, sent, online } = offlinePublisher(4, 0); // no rate limit: every anomalous reading an alert
    online.value = true;
    await reading(p, 'kept-a', true); // raised while online
    await p.idle();
    online.value = false;
    for (let i = 0; i < 10; i++) await reading(p, 'kept-a', true); // 10 repeats on a list of 4
    for (let i = 0; i < CLEAR_AFTER_NORMALS; i++) await reading(p, 'kept-a', false); // its clear
    for (let i = 0; i < 7; i++) await reading(p, 'kept-b', true); // b's raise and 6 repeats push on the list
    await backOnline(p, online);

    expect(alarmStreamProblems(sent)).toEqual([]);
    const a = sent.filter((x) => x.pumpId === 'kept-a');
    // The raise before the outage, then its clear: the repeats went first, and the clear counts all 10.
    expect(a.map((x) => x.kind)).toEqual(['anomaly', 'anomaly-cleared']);
    expect(a[1]).toMatchObject({ episode: a[0]!.seq, suppressedSinceLast: 10 });
    // b: its raise kept, its oldest repeats dropped; every anomalous reading is an alert sent or counted in the next one's suppressedSinceLast.
    const b = sent.filter((x) => x.pumpId === 'kept-b');
    expect(b[0]!.episode).toBe(b[0]!.seq);
    expect(b.reduce((n, x) => n + 1 + x.suppressedSinceLast, 0)).toBe(7);
    expect(p.status().dropped).toBe(10 + 4);
  });
});

