/**
 * The page's per-pump state against a real SQLite buffer, with the gateway (wall) clock and the
 * monotonic clock injected: "stale" is measured on the monotonic clock, so an NTP step of the
 * gateway clock neither hides a silent pump nor makes a live one stale.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PumpBoard, SEED_LOOKBACK_ROWS, type PumpSummary } from '../../agent/http/pump-board.js';
import { IngestPipeline } from '../../agent/ingest/pipeline.js';
import { MAX_REASON_CHARS, MAX_REFUSED_ONLY_PUMPS } from '../../agent/ingest/pump-refusals.js';
import { PumpRoster } from '../../agent/ingest/pump-roster.js';
import { createAgentMetrics, MetricsRegistry } from '../../agent/metrics.js';
import { SyncBatches } from '../../buffer/batches.js';
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

  it('keeps a pump that reported 20 s ago normal when the clock stepped 74 h forward before the page was first opened', () => {
    const b = board(); // the page not opened yet: the board is seeded at its first view
    const row = normal('pump-jump');
    b.record([row], buffer.appendBatch([row]));
    tick(20_000);
    wall += 74 * 3_600_000;
    expect(pump(b, 'pump-jump')).toMatchObject({ state: 'normal', detail: null }); // before: stale, "no reading for 4440 min"
    tick(6 * 60_000);
    expect(pump(b, 'pump-jump')).toMatchObject({ state: 'stale', lastState: 'normal', detail: 'no reading for 6 min' });
  });

  it('after a restart, counts a stored receive time ahead of the clock as now, and shows the pump stale five minutes on', () => {
    buffer.appendBatch([normal('pump-seeded', wall + 3_600_000)]); // received before the clock was stepped back an hour
    const b = board();
    expect(pump(b, 'pump-seeded')).toMatchObject({ state: 'normal' });
    tick(6 * 60_000);
    expect(pump(b, 'pump-seeded')).toMatchObject({ state: 'stale', lastState: 'normal', detail: 'no reading for 6 min' });
  });

  it('after a restart that followed a recorded step from 1970, times a pump\'s last reading by the corrected receive time: normal, stale only minutes on', () => {
    // A buffer of its own: the step recorded here corrects every row before it.
    const own = new BufferStore({ path: join(dir, 'stepped.sqlite'), maxBytes: 1 << 30 });
    own.open();
    try {
      const boot = Date.UTC(1970, 0, 1, 0, 30); // a gateway without a clock battery
      const [seq] = own.appendBatch([normal('pump-1970', boot)]);
      // NTP sets the clock 2 s later; the scheduler notices the step 3 s after that, at `wall`.
      const stepMs = wall - 3_000 - (boot + 2_000);
      expect(new SyncBatches(own).recordClockStep(stepMs, wall, seq!)).toBe(seq);
      tick(20_000); // the module restarts
      const b = new PumpBoard({ buffer: own, engine, models, clock: () => wall, monotonic: () => mono });
      expect(pump(b, 'pump-1970')).toMatchObject({ state: 'normal', detail: null }); // before: stale, "no reading for 29941627 min"
      tick(6 * 60_000); // 6 min 25 s since it reported
      expect(pump(b, 'pump-1970')).toMatchObject({ state: 'stale', lastState: 'normal', detail: 'no reading for 6 min' });
    } finally {
      own.close();
    }
  });

  it('after a reboot at 1970 and NTP setting the clock, shows a pump silent since before the reboot as stale, not as reporting now', () => {
    // A buffer of its own: the steps recorded here correct every row before them.
    const own = new BufferStore({ path: join(dir, 'rebooted.sqlite'), maxBytes: 1 << 30 });
    own.open();
    try {
      const [opened] = own.appendBatch([normal('pump-gone')]); // on the right clock; then the pump goes silent
      const rebootAt = wall + 30_000; // a power cut of 30 s; no clock battery: the agent opens at 1970
      const boot = Date.UTC(1970, 0, 1, 0, 5);
      const batches = new SyncBatches(own);
      const [seq] = own.appendBatch([normal('pump-1970', boot + 10_000)]);
      // NTP sets the clock 60 s after the boot; the scheduler notices it 5 s later. The run that
      // noticed it opened the buffer with `opened` its newest row: the step corrects only the rows after it.
      tick(30_000 + 65_000);
      expect(batches.recordClockStep(rebootAt + 60_000 - (boot + 60_000), wall, null, opened)).toBe(seq);
      tick(4 * 60_000 + 30_000); // the page is first opened 6 min after pump-gone's last reading
      const b = new PumpBoard({ buffer: own, engine, models, clock: () => wall, monotonic: () => mono });
      // Timed as it came, 6 min ago (before: normal, "received" in 2082, counted as now).
      expect(pump(b, 'pump-gone')).toMatchObject({ state: 'stale', lastState: 'normal', detail: 'no reading for 6 min' });
      expect(pump(b, 'pump-1970')).toMatchObject({ state: 'stale', detail: 'no reading for 5 min' }); // 5.4 min ago, on today's clock
    } finally {
      own.close();
    }
  });
});

describe('PumpBoard with refused readings (the real pipeline and SQLite)', () => {
  /** A pipeline wired to a board as agent/wiring/page.ts wires them, taking readings of at most `maxPumps` pumps. */
  const wired = (maxPumps = 100, openPage = true) => {
    const b = board();
    const pipeline = new IngestPipeline({
      engine,
      buffer,
      metrics: createAgentMetrics(new MetricsRegistry()),
      clock: () => wall,
      pumps: new PumpRoster(() => maxPumps, () => buffer.pumpIds()),
    });
    pipeline.onCommit((rows, seqs) => b.record(rows, seqs));
    pipeline.onRefuse((refused) => b.refused(refused));
    if (openPage) b.summaries();
    return { b, pipeline };
  };
  const good = (pumpId: string) => ({ pumpId, ts: wall, values: { Pressure: 1.4, Flow: 30, Current: 1.4 } });
  /** A reading after a firmware update: Pressure as a string. */
  const stringy = (pumpId: string) => ({ pumpId, ts: wall, values: { Pressure: '0.382638', Flow: 30, Current: 1.4 } });

  it('shows a pump whose readings are all refused as "refused" with the count and reason, not as stale', async () => {
    const { b, pipeline } = wired();
    for (let i = 0; i < 12; i++) {
      expect((await pipeline.ingest([good('pump-fw')], 'http')).accepted).toBe(1);
      tick(1000);
    }
    expect(pump(b, 'pump-fw')).toMatchObject({ state: 'normal', refused: null });
    for (let i = 0; i < 6 * 60; i++) {
      expect((await pipeline.ingest([stringy('pump-fw')], 'http')).accepted).toBe(0);
      tick(1000);
    }
    const p = pump(b, 'pump-fw');
    expect(p.state).toBe('refused');
    expect(p.lastState).toBe('normal');
    expect(p.detail).toMatch(/^\d+ readings refused in the last 5 min; last: values\.Pressure: expected a finite number or null, got string "0\.382638"$/);
    expect(p.refused).toMatchObject({ total: 360, overLimit: false, lastReason: 'values.Pressure: expected a finite number or null, got string "0.382638"' });
    expect(p.refused!.recent).toBeGreaterThanOrEqual(270);
    expect(p.refused!.recent).toBeLessThanOrEqual(300);
    expect(p.detail).not.toMatch(/no reading/);
    expect(b.refusalStatus().byPump['pump-fw']).toMatchObject({ total: 360, lastReason: p.refused!.lastReason });
    // Once the refusals stop too, the pump is silent: stale, as before.
    tick(6 * 60_000);
    expect(pump(b, 'pump-fw')).toMatchObject({ state: 'stale', lastState: 'normal', detail: 'no reading for 12 min' });
  });

  it('says "refused" after a minute of refused readings, and keeps a pump that also sends good readings in its state with the refusals as a warning', async () => {
    const { b, pipeline } = wired();
    await pipeline.ingest([good('pump-mix'), good('pump-soon')], 'http');
    for (let i = 0; i < 30; i++) {
      await pipeline.ingest([good('pump-mix'), stringy('pump-mix'), stringy('pump-soon')], 'http');
      tick(1000);
    }
    // pump-soon: 30 s of refused readings only, its last good reading is 30 s old: still normal, with the warning
    expect(pump(b, 'pump-soon')).toMatchObject({ state: 'normal', refused: { recent: 30 } });
    tick(31_000);
    await pipeline.ingest([good('pump-mix'), stringy('pump-mix'), stringy('pump-soon')], 'http');
    expect(pump(b, 'pump-soon')).toMatchObject({ state: 'refused', lastState: 'normal' });
    // pump-mix: a good reading with every refused one: not stale, not refused, the refusals shown beside
    expect(pump(b, 'pump-mix')).toMatchObject({ state: 'normal', lastState: null, refused: { recent: 31, total: 31, overLimit: false } });
  });

  it('gives a pump over PUMPWATCH_MAX_PUMPS a card that says its readings are refused for the limit', async () => {
    const known = buffer.pumpIds().length;
    const { b, pipeline } = wired(known + 1);
    expect((await pipeline.ingest([good('pump-in')], 'http')).accepted).toBe(1);
    const res = await pipeline.ingest([good('pump-over'), good('pump-over')], 'http');
    expect(res.accepted).toBe(0);
    const p = pump(b, 'pump-over');
    expect(p).toMatchObject({ state: 'refused', lastState: null, lastReading: null, model: expect.anything(), refused: { total: 2, recent: 2, overLimit: true } });
    expect(p.detail).toMatch(/^2 readings refused in the last 5 min: this gateway already takes readings of as many pumps as PUMPWATCH_MAX_PUMPS allows; last: pumpId: "pump-over" would be a new pump/);
    expect(b.refusalStatus().byPump['pump-over']).toMatchObject({ overLimit: true, total: 2 });
  });

  it('makes no card of a garbage pumpId, and keeps at most 32 pumps known only from refusals however many ids flood in', async () => {
    const { b, pipeline } = wired();
    const before = b.summaries().length;
    await pipeline.ingest([{ pumpId: '../../etc', ts: wall, values: { Pressure: 'x' } }, { pumpId: 42, ts: wall, values: {} }, { pumpId: 'a'.repeat(200), ts: wall, values: { P: 'x' } }], 'http');
    expect(b.summaries().length).toBe(before);
    const flood = Array.from({ length: 10_000 }, (_, i) => ({ pumpId: `rnd-${i.toString(36)}-${(i * 7919).toString(36)}`, ts: wall, values: { Pressure: 'x' } }));
    for (let i = 0; i < flood.length; i += 1000) expect((await pipeline.ingest(flood.slice(i, i + 1000), 'http')).accepted).toBe(0);
    const refusedOnly = b.summaries().filter((p) => p.pumpId.startsWith('rnd-'));
    expect(refusedOnly).toHaveLength(MAX_REFUSED_ONLY_PUMPS);
    expect(refusedOnly.every((p) => p.state === 'refused' && p.lastReading === null)).toBe(true);
    const status = b.refusalStatus();
    expect(Object.keys(status.byPump).filter((id) => id.startsWith('rnd-'))).toHaveLength(MAX_REFUSED_ONLY_PUMPS);
    expect(status.untrackedReadings).toBe(10_000 - MAX_REFUSED_ONLY_PUMPS);
    // Five minutes on, a pump refused now takes the place of one no longer refused; after an hour the rest are forgotten.
    tick(6 * 60_000);
    await pipeline.ingest([stringy('pump-late')], 'http');
    expect(pump(b, 'pump-late')).toMatchObject({ state: 'refused', refused: { total: 1 } });
    expect(b.summaries().filter((p) => p.pumpId.startsWith('rnd-'))).toHaveLength(MAX_REFUSED_ONLY_PUMPS - 1);
    tick(61 * 60_000);
    expect(b.summaries().some((p) => p.pumpId.startsWith('rnd-') || p.pumpId === 'pump-late')).toBe(false);
  });

  it('follows the refusals of every pump whose readings are taken, beyond the cap on refused-only pumps, before the page was ever opened', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `pump-known-${i}`);
    await wired(1000).pipeline.ingest(ids.map(good), 'http');
    const { b, pipeline } = wired(1000, false); // a restart: the board has not read the buffer yet
    await pipeline.ingest(ids.map(stringy), 'http');
    const status = b.refusalStatus();
    expect(ids.every((id) => status.byPump[id]?.total === 1)).toBe(true);
    expect(status.untrackedReadings).toBe(0);
    expect(pump(b, 'pump-known-39').refused).toMatchObject({ total: 1, recent: 1 });
  });

  it('cuts a long reason short', async () => {
    const { b, pipeline } = wired();
    const keys = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`extra_field_number_${i}`, 1]));
    await pipeline.ingest([{ pumpId: 'pump-long', ts: wall, values: { Pressure: 1 }, ...keys }], 'http');
    const p = pump(b, 'pump-long');
    expect(p.state).toBe('refused');
    expect(p.refused!.lastReason.length).toBeLessThanOrEqual(MAX_REASON_CHARS);
    // every unknown field is named in one refusal (since 2026-12-08): "unknown fields …"
    expect(p.refused!.lastReason).toMatch(/^unknown fields "extra_field_number_0", "extra_field_number_1".*…$/);
  });
});

describe('PumpBoard after a restart, for a pump in a long anomaly streak', () => {
  const reading = (pumpId: string, ts: number, anomaly: boolean): PredictionRow => ({ ...normal(pumpId, ts), score: anomaly ? 9 : 0.3, anomaly });
  /** `normals` normal readings, then `anomalies` anomalous ones, one a second, ending now. */
  const history = (pumpId: string, normals: number, anomalies: number): number => {
    const n = normals + anomalies;
    const t0 = wall - n * 1000;
    const rows = Array.from({ length: n }, (_, i) => reading(pumpId, t0 + i * 1000, i >= normals));
    for (let i = 0; i < rows.length; i += 5000) buffer.appendBatch(rows.slice(i, i + 5000));
    return t0 + normals * 1000; // the first anomalous reading
  };

  it('says the streak began at its first anomalous reading, not at the 200th-newest one', () => {
    const since = history('long-B', 15, 600);
    const b = board(); // a fresh board: as after a restart, seeded from the buffer
    expect(pump(b, 'long-B')).toMatchObject({ state: 'anomaly', anomalySince: new Date(since).toISOString(), anomalySinceAtLeast: false });
  });

  it('finds the start of a streak thousands of readings back, after an earlier streak that cleared', () => {
    const n = 1000 + 5 + 12_000;
    const t0 = wall - n * 1000;
    const verdict = (i: number): boolean => i < 1000 || i >= 1005; // a streak, five normal readings, a longer streak
    const rows = Array.from({ length: n }, (_, i) => reading('long-E', t0 + i * 1000, verdict(i)));
    for (let i = 0; i < rows.length; i += 5000) buffer.appendBatch(rows.slice(i, i + 5000));
    expect(pump(board(), 'long-E')).toMatchObject({ state: 'anomaly', anomalySince: new Date(t0 + 1005 * 1000).toISOString(), anomalySinceAtLeast: false });
  });

  it('keeps a streak cleared by five normal readings cleared, and says "at least" for a streak older than it reads back', () => {
    const cleared = history('long-C', 0, 400);
    buffer.appendBatch(Array.from({ length: 5 }, (_, i) => reading('long-C', wall + i, false)));
    expect(cleared).toBeLessThan(wall);
    expect(pump(board(), 'long-C')).toMatchObject({ state: 'normal', anomalySince: null, anomalySinceAtLeast: false });

    history('long-D', 5, SEED_LOOKBACK_ROWS + 300); // longer than the 200 seeded rows and the verdicts read back before them
    const b = board();
    const p = pump(b, 'long-D');
    expect(p).toMatchObject({ state: 'anomaly', anomalySinceAtLeast: true });
    const oldestRead = buffer.predictions('long-D', { limit: SEED_LOOKBACK_ROWS + 200 })[0]!.ts; // 200 seeded rows and the verdicts before them
    expect(p.anomalySince).toBe(new Date(oldestRead).toISOString());
  });
});

describe('PumpBoard with models deployed for pumps', () => {
  const ref = (version: string) => ({ version, sha256: 'a'.repeat(64) });

  it('carries a pump’s own refused or downloading model, and a shadow, while the default model scores it', async () => {
    const b = board();
    for (const id of ['pump-bad', 'pump-hang', 'pump-shadow', 'pump-plain']) b.record([normal(id)], buffer.appendBatch([normal(id)]));
    models.markRejected('pump-bad', ref('own-1'), 'sha256 of the download is 4b23…, the desired entry says 0000…');
    models.markDownloading('pump-hang', 'own-1');
    await models.setShadow('pump-shadow', await LoadedModel.fromBytes(makeModel({ version: 'shadow-1', source: 'pump-shadow' }), 'test'), ref('shadow-1'));
    try {
      expect(pump(b, 'pump-bad')).toMatchObject({
        model: { key: 'default', version: 'b-1' },
        deployment: { version: 'own-1', status: 'rejected', error: 'sha256 of the download is 4b23…, the desired entry says 0000…' },
        shadow: null,
      });
      expect(pump(b, 'pump-hang')).toMatchObject({ model: { key: 'default' }, deployment: { version: 'own-1', status: 'downloading', error: null }, shadow: null });
      expect(pump(b, 'pump-shadow')).toMatchObject({ model: { key: 'default' }, deployment: null, shadow: { version: 'shadow-1', status: 'shadow', error: null } });
      expect(pump(b, 'pump-plain')).toMatchObject({ model: { key: 'default' }, deployment: null, shadow: null });
      expect(typeof pump(b, 'pump-hang').deployment!.since).toBe('string');
    } finally {
      await models.setShadow('pump-shadow', null);
      await models.remove('pump-bad');
      await models.remove('pump-hang');
    }
  });
});
