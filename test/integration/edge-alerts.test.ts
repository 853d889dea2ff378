/**
 * Alert decisions against a real SQLite buffer (meta) and a real onnxruntime model, with the
 * gateway clock and the monotonic clock injected: one alert per pump and interval, suppressed
 * anomalies counted, alerts kept through an offline period and a restart, the interval kept when
 * NTP steps the gateway clock, the count held back ending with its episode (edge-alerts-clear-hub.test.ts
 * runs the alarm's clear on the hub). The edgeHub side is the `send` function here
 * (edge.test.ts covers it with the real client and the local hub).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AlertPublisher, type Alert } from '../../agent/edge/alerts.js';
import { CLEAR_AFTER_NORMALS } from '../../agent/http/pump-board.js';
import { createLogger } from '../../agent/logger.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';
import { InferenceEngine } from '../../inference/engine.js';
import { LoadedModel } from '../../inference/model.js';
import { makeModel, normalValues, rng } from '../support/models.js';
import { sendOneThenRestart } from '../support/alerts.js';

let dir: string;
let buffer: BufferStore;
let engine: InferenceEngine;
/** The gateway (wall) clock, which NTP may step, and the monotonic clock, which only advances. */
let now = Date.UTC(2026, 10, 23, 10);
let mono = 0;
const tick = (ms: number): void => {
  now += ms;
  mono += ms;
};

function publisher(send: (a: Alert) => Promise<void>, sensorMinIntervalMs = 3_600_000, minIntervalMs = 60_000): AlertPublisher {
  return new AlertPublisher({ engine, kv: buffer, deviceId: 'gw-a', send, minIntervalMs: () => minIntervalMs, sensorMinIntervalMs: () => sensorMinIntervalMs, logger: createLogger('silent'), clock: () => now, monotonic: () => mono });
}

/** Scores and commits one spike reading of `pumpId` (an anomaly for the test model). */
async function spike(pumpId: string, ts = now): Promise<{ rows: PredictionRow[]; seqs: number[] }> {
  const rows = await engine.score([{ pumpId, ts, values: { Pressure: 4, Flow: 30, Current: 1.4 } }], now);
  expect(rows[0]!.anomaly).toBe(true);
  return { rows, seqs: buffer.appendBatch(rows) };
}

/** The frozen value of a flickering sensor, and the one it reads for one reading when it thaws. */
const FROZEN = 1.41;
const THAWED = 1.47;
/** How far the sensors' own time is ahead of the gateway clock (after NTP steps the gateway clock back). */
let sensorSkew = 0;

/**
 * Scores and commits, at 1 Hz from the gateway's time now, one cycle of a flickering Current of
 * `pumpId`: one thawed reading (unless `thawFirst` is false), then `frozen` readings at FROZEN
 * (the model's bound is 60: the 60th makes a finding); then the clocks move on past them.
 */
async function flickerCycle(p: AlertPublisher, pumpId: string, r: () => number, opts: { thawFirst?: boolean; frozen?: number; scoredBy?: InferenceEngine; spikeEvery?: number } = {}): Promise<{ rows: PredictionRow[]; seqs: number[]; firstFrozenTs: number }> {
  const n = opts.frozen ?? 60;
  const currents = [...(opts.thawFirst === false ? [] : [THAWED]), ...Array.from({ length: n }, () => FROZEN)];
  // spikeEvery: every so many readings a spike of Pressure (an anomaly), the last one too
  const spiked = (i: number): boolean => opts.spikeEvery !== undefined && (currents.length - 1 - i) % opts.spikeEvery === 0;
  const readings = currents.map((Current, i) => ({ pumpId, ts: now + sensorSkew + i * 1000, values: { ...normalValues(r, i), Current, ...(spiked(i) ? { Pressure: 4 } : {}) } }));
  const rows = await (opts.scoredBy ?? engine).score(readings, now);
  const seqs = buffer.appendBatch(rows);
  p.onCommit(rows, seqs);
  tick(readings.length * 1000);
  return { rows, seqs, firstFrozenTs: readings[currents.length - n]!.ts };
}

const sensorAlerts = (sent: readonly Alert[]): Alert[] => sent.filter((a) => a.kind === 'sensor-frozen');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-alerts-'));
  buffer = new BufferStore({ path: join(dir, 'buffer.sqlite'), maxBytes: 1 << 30 });
  buffer.open();
  engine = new InferenceEngine();
  engine.setModel('default', await LoadedModel.fromBytes(makeModel({ version: 'a-1' }), 'test'));
});

afterAll(async () => {
  await engine.model('default')?.release();
  buffer.close();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

describe('AlertPublisher', () => {
  it('alerts once per pump per interval and counts the anomalies it held back', async () => {
    const sent: Alert[] = [];
    const p = publisher(async (a) => void sent.push(a));
    for (let i = 0; i < 3; i++) {
      const { rows, seqs } = await spike('pump-1');
      p.onCommit(rows, seqs);
      tick(10_000);
    }
    const other = await spike('pump-2');
    p.onCommit(other.rows, other.seqs);
    tick(40_000); // 70 s after pump-1's first alert
    const again = await spike('pump-1');
    p.onCommit(again.rows, again.seqs);
    await p.idle();

    expect(sent.map((a) => [a.pumpId, a.suppressedSinceLast])).toEqual([['pump-1', 0], ['pump-2', 0], ['pump-1', 2]]);
    expect(sent[0]).toMatchObject({ deviceId: 'gw-a', modelVersion: 'a-1', threshold: expect.any(Number) });
    expect(p.status()).toMatchObject({ sent: 3, suppressed: 2, pending: 0 });
    expect(JSON.parse(buffer.getMeta('alerts.sent')!)['pump-1']).toMatchObject({ seq: again.seqs[0] });
  });

  it('keeps alerts through an offline period and a restart, and sends them afterwards in order', async () => {
    tick(3_600_000);
    const offline = publisher(() => Promise.reject(new Error('not connected to the hub')));
    offline.restore();
    for (const pump of ['pump-3', 'pump-4']) {
      const { rows, seqs } = await spike(pump);
      offline.onCommit(rows, seqs);
    }
    await offline.idle();
    expect(offline.status()).toMatchObject({ pending: 2, lastError: 'not connected to the hub' });

    const sent: Alert[] = [];
    const restarted = publisher(async (a) => void sent.push(a));
    restarted.restore();
    restarted.flush();
    await restarted.idle();

    expect(sent.map((a) => a.pumpId)).toEqual(['pump-3', 'pump-4']);
    expect(JSON.parse(buffer.getMeta('alerts.pending')!)).toEqual([]);
    tick(1_000); // a new reading (the same time and values again would be a resend, not scored again)
    const { rows, seqs } = await spike('pump-3'); // still inside pump-3's interval after the restart
    restarted.onCommit(rows, seqs);
    expect(restarted.status().suppressed).toBe(1);
  });

  it('sends the alerts kept through an offline period without saving the list of those left after each one', async () => {
    tick(3_600_000);
    // The buffer's meta, with the bytes of the pending list written to it counted.
    let pendingWritten = 0;
    const kv = {
      getMeta: (key: string) => buffer.getMeta(key),
      setMeta: (key: string, value: string) => {
        if (key === 'alerts.pending') pendingWritten += value.length;
        buffer.setMeta(key, value);
      },
      setMetas: (entries: ReadonlyArray<readonly [string, string]>) => {
        for (const [key, value] of entries) if (key === 'alerts.pending') pendingWritten += value.length;
        buffer.setMetas(entries);
      },
    };
    let online = false;
    const sent: Alert[] = [];
    const send = async (a: Alert): Promise<void> => {
      if (!online) throw new Error('not connected to the hub');
      sent.push(a);
    };
    const p = new AlertPublisher({ engine, kv, deviceId: 'gw-a', send, minIntervalMs: () => 60_000, sensorMinIntervalMs: () => 3_600_000, logger: createLogger('silent'), clock: () => now, monotonic: () => mono });
    p.restore();
    const pumps = Array.from({ length: 60 }, (_, i) => `drain-${i}`);
    for (const pump of pumps) {
      const { rows, seqs } = await spike(pump);
      p.onCommit(rows, seqs);
    }
    await p.idle();
    const kept = buffer.getMeta('alerts.pending')!;
    expect(JSON.parse(kept)).toHaveLength(60);

    pendingWritten = 0;
    online = true;
    p.flush();
    await p.idle();

    expect(sent.map((a) => a.pumpId)).toEqual(pumps);
    expect(JSON.parse(buffer.getMeta('alerts.pending')!)).toEqual([]);
    // Saved after each alert, the list of those left was written 60 times: 30 times its size.
    expect(pendingWritten).toBeLessThan(kept.length);
  });

  it('after a restart in the middle of sending, sends only the alerts not handed to edgeHub yet', async () => {
    tick(3_600_000);
    const offline = publisher(() => Promise.reject(new Error('not connected to the hub')));
    offline.restore();
    const pumps = ['mid-1', 'mid-2', 'mid-3', 'mid-4', 'mid-5'];
    for (const pump of pumps) {
      const { rows, seqs } = await spike(pump);
      offline.onCommit(rows, seqs);
    }
    await offline.idle();
    // Online again: edgeHub takes two alerts, and the process stops while the third is on its way.
    const first: Alert[] = [];
    let thirdOnItsWay = (): void => {};
    const third = new Promise<void>((r) => (thirdOnItsWay = r));
    const stopping = publisher((a) => {
      first.push(a);
      if (first.length <= 2) return Promise.resolve();
      thirdOnItsWay();
      return new Promise<void>(() => {}); // never answered: the process stops
    });
    stopping.restore();
    stopping.flush();
    await third;
    expect(first.map((a) => a.pumpId)).toEqual(['mid-1', 'mid-2', 'mid-3']);

    const after: Alert[] = [];
    const restarted = publisher(async (a) => void after.push(a));
    restarted.restore();
    expect(restarted.status().pending).toBe(3);
    restarted.flush();
    await restarted.idle();
    expect(after.map((a) => a.pumpId)).toEqual(['mid-3', 'mid-4', 'mid-5']);
  });

  it('sends an alert decided at any moment of a drain at once, not at the next flush (30 s later)', async () => {
    tick(3_600_000);
    // The second alert is decided k microtasks after the first starts on its way: one of them lands
    // after the drain's last send, before the drain has ended.
    try {
      for (let k = 0; k < 12; k++) {
        const sent: Alert[] = [];
        const p = publisher(async (a) => void sent.push(a));
        p.restore();
        const first = await spike(`drain-a${k}`);
        const second = await spike(`drain-b${k}`);
        p.onCommit(first.rows, first.seqs);
        for (let i = 0; i < k; i++) await Promise.resolve();
        p.onCommit(second.rows, second.seqs);
        await p.idle();
        expect({ k, sent: sent.map((a) => a.pumpId), pending: p.status().pending }).toEqual({ k, sent: [`drain-a${k}`, `drain-b${k}`], pending: 0 });
      }
    } finally {
      buffer.setMeta('alerts.pending', '[]'); // an alert left unsent is not the next test's
    }
  });

  it('with the list full while its oldest alert is on its way, drops an alert never sent, and counts every alert once', async () => {
    tick(3_600_000);
    let online = false;
    const sent: Alert[] = [];
    let answer = (): void => {};
    const send = (a: Alert): Promise<void> => {
      if (!online) return Promise.reject(new Error('not connected to the hub'));
      sent.push(a);
      // edgeHub takes its time over the first alert sent; the others it takes at once.
      return sent.length === 1 ? new Promise<void>((r) => (answer = r)) : Promise.resolve();
    };
    const p = new AlertPublisher({ engine, kv: buffer, deviceId: 'gw-a', send, minIntervalMs: () => 60_000, sensorMinIntervalMs: () => 3_600_000, logger: createLogger('silent'), clock: () => now, monotonic: () => mono, maxPending: 3 });
    p.restore();
    const pumps = ['full-1', 'full-2', 'full-3'];
    for (const pump of pumps) {
      const { rows, seqs } = await spike(pump);
      p.onCommit(rows, seqs);
    }
    await p.idle();
    expect(p.status()).toMatchObject({ pending: 3, dropped: 0 });

    online = true;
    p.flush();
    await vi.waitFor(() => expect(sent).toHaveLength(1)); // full-1 on its way
    const late = await spike('full-4'); // the list is over its 3 while full-1 is on its way
    p.onCommit(late.rows, late.seqs);
    answer();
    await p.idle();

    // full-1 was sent: the alert dropped is the oldest not on its way (full-2), and none is lost uncounted.
    expect(sent.map((a) => a.pumpId)).toEqual(['full-1', 'full-3', 'full-4']);
    expect(p.status()).toMatchObject({ sent: 3, dropped: 1, pending: 0 });
    expect(JSON.parse(buffer.getMeta('alerts.pending')!)).toEqual([]);
  });

  it('with the list full while its oldest alert is on its way and edgeHub then refuses it, drops that one (counted) and sends the others after', async () => {
    tick(3_600_000);
    let answer = (_ok: boolean): void => {};
    const sent: Alert[] = [];
    let tries = 0;
    const send = (a: Alert): Promise<void> => {
      if (++tries === 1) return new Promise<void>((resolve, reject) => (answer = (ok) => (ok ? resolve() : reject(new Error('edgeHub refused it')))));
      sent.push(a);
      return Promise.resolve();
    };
    const p = new AlertPublisher({ engine, kv: buffer, deviceId: 'gw-a', send, minIntervalMs: () => 60_000, sensorMinIntervalMs: () => 3_600_000, logger: createLogger('silent'), clock: () => now, monotonic: () => mono, maxPending: 3 });
    p.restore();
    for (const pump of ['refused-1', 'refused-2', 'refused-3']) {
      const { rows, seqs } = await spike(pump);
      p.onCommit(rows, seqs); // the first starts on its way at once
    }
    const late = await spike('refused-4');
    p.onCommit(late.rows, late.seqs);
    answer(false);
    await p.idle();
    expect(p.status()).toMatchObject({ sent: 0, dropped: 1, pending: 3 });
    p.flush();
    await p.idle();
    expect(sent.map((a) => a.pumpId)).toEqual(['refused-2', 'refused-3', 'refused-4']);
    expect(p.status()).toMatchObject({ sent: 3, dropped: 1, pending: 0 });
  });

  it('keeps alerting once per interval after NTP steps the gateway clock back a day', async () => {
    tick(3_600_000);
    const sent: Alert[] = [];
    const p = publisher(async (a) => void sent.push(a));
    let ts = now; // the sensor's own time goes on
    const first = await spike('pump-5', ts);
    p.onCommit(first.rows, first.seqs);
    now -= 86_400_000; // the gateway booted a day ahead; NTP corrects it
    for (let m = 0; m < 3; m++) {
      tick(60_000);
      ts += 60_000;
      const { rows, seqs } = await spike('pump-5', ts);
      p.onCommit(rows, seqs);
    }
    await p.idle();

    expect(sent.map((a) => a.pumpId)).toEqual(['pump-5', 'pump-5', 'pump-5', 'pump-5']);
    expect(p.status()).toMatchObject({ sent: 4, suppressed: 0 });
  });

  it('after a restart, counts a last alert recorded later than the gateway clock as expired', async () => {
    tick(3_600_000);
    const sent: Alert[] = [];
    const before = publisher(async (a) => void sent.push(a));
    before.restore();
    const ts = now;
    const first = await spike('pump-6', ts);
    before.onCommit(first.rows, first.seqs);
    await before.idle();
    now -= 86_400_000; // stepped back a day, then the agent restarts
    tick(10_000);
    const after = publisher(async (a) => void sent.push(a));
    after.restore();
    const again = await spike('pump-6', ts + 10_000);
    after.onCommit(again.rows, again.seqs);
    await after.idle();

    expect(sent.map((a) => a.pumpId)).toEqual(['pump-6', 'pump-6']);
    expect(after.status().suppressed).toBe(0);
  });

  it('sends one sensor-frozen alert when a sensor is found frozen, outside the rate limit, beside the anomaly of the same reading, which the rate limit holds back', async () => {
    tick(3_600_000);
    const r = rng(4);
    // pump-7: Current frozen for 60 readings (the model's bound); every 4th is a spike (its alarm
    // stays open: an off-delay of normal readings would clear it), the 60th too
    const readings = Array.from({ length: 60 }, (_, i) => ({ pumpId: 'pump-7', ts: now + i * 1000, values: { ...normalValues(r, i), Current: 1.41, ...(i % 4 === 3 ? { Pressure: 4 } : {}) } as Record<string, number> }));
    // an anomaly of pump-7 alerted just now: the next ones are held back by the rate limit
    const first = await spike('pump-7', now - 1000);
    const offline = publisher(() => Promise.reject(new Error('not connected to the hub')));
    offline.onCommit(first.rows, first.seqs);
    const rows = await engine.score(readings, now);
    expect(rows.slice(0, 59).every((row) => row.sensorFaultsBegan === undefined)).toBe(true);
    expect(rows[59]).toMatchObject({ anomaly: true, sensorFaultsBegan: [{ feature: 'Current', kind: 'frozen', readings: 60, value: 1.41, after: 60 }] });
    const seqs = buffer.appendBatch(rows);
    offline.onCommit(rows, seqs);
    await offline.idle();
    // pending: the earlier anomaly, then the frozen sensor (the spikes, the one at the same reading too, are rate-limited)
    expect(offline.status()).toMatchObject({ pending: 2, suppressed: 15 });

    // after a restart, the hub back: both go out in order
    const sent: Alert[] = [];
    const flaky = publisher(async (a) => void sent.push(a));
    flaky.restore();
    flaky.flush();
    await flaky.idle();
    expect(sent.map((a) => a.kind)).toEqual(['anomaly', 'sensor-frozen']);
    expect(sent[1]).toMatchObject({ pumpId: 'pump-7', seq: seqs[59], score: rows[59]!.score, topFeatures: [], suppressedSinceLast: 0, sensor: { feature: 'Current', value: 1.41, since: new Date(readings[0]!.ts).toISOString(), readings: 60, after: 60 } });
    expect(JSON.parse(buffer.getMeta('alerts.sent')!)['pump-7']).toMatchObject({ seq: seqs[59], sensor: 'Current' });
  });

  it('after a restart, a sensor-frozen alert sent or pending last does not hold back the pump\'s next anomaly alert (the rate limit is of anomalies)', async () => {
    tick(3_600_000);
    const r = rng(9);
    const sent: Alert[] = [];
    // anomalies at most one per pump in 10 min: the restart comes 61 s after the sensor alerts
    const before = publisher(async (a) => void sent.push(a), 3_600_000, 600_000);
    before.restore();
    // pump-9: an anomaly alerted an hour ago, then its Current found frozen and alerted just now
    const old = await spike('pump-9');
    before.onCommit(old.rows, old.seqs);
    await before.idle();
    tick(3_600_000);
    const cycle = await flickerCycle(before, 'pump-9', r, { thawFirst: false });
    expect(cycle.rows.some((row) => row.anomaly === true)).toBe(false);
    await before.idle();
    // the cycle's normal readings cleared its alarm (the off-delay) before the sensor was found frozen
    expect(sent.filter((a) => a.pumpId === 'pump-9').map((a) => a.kind)).toEqual(['anomaly', 'anomaly-cleared', 'sensor-frozen']);
    // pump-11: an anomaly alerted, then at once its Current found frozen, its alarm kept open by
    // anomalies the rate limit holds back (the last at the sensor's reading): the anomaly's time is kept
    const recent = await spike('pump-11');
    before.onCommit(recent.rows, recent.seqs);
    await flickerCycle(before, 'pump-11', r, { thawFirst: false, spikeEvery: 4 });
    await before.idle();
    expect(JSON.parse(buffer.getMeta('alerts.sent')!)['pump-11']).toMatchObject({ sensor: 'Current', anomalyAt: expect.any(Number) });
    // pump-10: a sensor-frozen alert still pending (the hub down) when the agent stops
    const offline = publisher(() => Promise.reject(new Error('not connected to the hub')), 3_600_000, 600_000);
    offline.restore();
    const pending = await flickerCycle(offline, 'pump-10', r, { thawFirst: false });
    expect(pending.rows.some((row) => row.anomaly === true)).toBe(false);
    await offline.idle();
    expect(offline.status().pending).toBe(1);

    tick(1_000);
    const sentBefore = sent.length;
    const after = publisher(async (a) => void sent.push(a), 3_600_000, 600_000);
    after.restore();
    for (const pump of ['pump-9', 'pump-10', 'pump-11']) {
      const { rows, seqs } = await spike(pump);
      after.onCommit(rows, seqs);
    }
    await after.idle();
    // pump-11's anomaly alert of 61 s before still holds its next one back
    expect(after.status().suppressed).toBe(1);
    expect(sent.slice(sentBefore).map((a) => [a.pumpId, a.kind])).toEqual([['pump-10', 'sensor-frozen'], ['pump-9', 'anomaly'], ['pump-10', 'anomaly']]);
  });

  it('after a restart, keeps an alert of the same reading as the one last sent when it is another (a frozen sensor, then the anomaly)', async () => {
    tick(3_600_000);
    const r = rng(5);
    const readings = Array.from({ length: 60 }, (_, i) => ({ pumpId: 'pump-8', ts: now + i * 1000, values: { ...normalValues(r, i), Current: 1.3 } as Record<string, number> }));
    readings[59]!.values = { ...readings[59]!.values, Pressure: 4 };
    const rows = await engine.score(readings, now);
    const seqs = buffer.appendBatch(rows);
    const offline = publisher(() => Promise.reject(new Error('not connected to the hub')));
    offline.onCommit(rows, seqs);
    await offline.idle();
    expect(offline.status().pending).toBe(2);
    const savedBefore = buffer.getMeta('alerts.pending')!;
    // the frozen sensor's alert is sent and recorded, then the process stops before saving the list;
    // restored from the list saved before (both pending): the one sent is dropped, the anomaly of the same reading kept
    const { once, rest } = await sendOneThenRestart(publisher, buffer, savedBefore);
    expect(once.map((a) => a.kind)).toEqual(['sensor-frozen']);
    expect(rest.map((a) => [a.kind, a.seq])).toEqual([['anomaly', seqs[59]]]);
  });

  it('sends one sensor-frozen alert in the quiet time of a sensor that thaws for one reading a minute and freezes again, and counts the findings it held back', async () => {
    tick(3_600_000);
    const sent: Alert[] = [];
    const p = publisher(async (a) => void sent.push(a)); // the default quiet time, 3 600 s
    const r = rng(11);
    await flickerCycle(p, 'flicker-1', r, { thawFirst: false });
    // 19 more cycles of 61 readings: 20 minutes, a finding each minute
    for (let cycle = 1; cycle < 20; cycle++) await flickerCycle(p, 'flicker-1', r);
    await p.idle();

    expect(sensorAlerts(sent)).toHaveLength(1); // one per cycle (20) before the quiet time
    expect(sensorAlerts(sent)[0]).toMatchObject({ pumpId: 'flicker-1', suppressedSinceLast: 0, sensor: { feature: 'Current', value: FROZEN, readings: 60, after: 60 } });
    expect(p.status()).toMatchObject({ sensorFaults: 20, sensorSuppressed: 19, sensorsSuppressed: { 'flicker-1': { Current: { suppressedSinceLast: 19 } } } });
  });

  it('sends the alert of a sensor still frozen when its quiet time ends, with the findings held back meanwhile; none when it has thawed by then', async () => {
    tick(3_600_000);
    const sent: Alert[] = [];
    const p = publisher(async (a) => void sent.push(a), 600_000); // a quiet time of 10 min
    const r = rng(12);
    await flickerCycle(p, 'flicker-2', r, { thawFirst: false }); // alerted
    let last = { rows: [] as PredictionRow[], seqs: [] as number[], firstFrozenTs: 0 };
    for (let cycle = 1; cycle < 10; cycle++) last = await flickerCycle(p, 'flicker-2', r); // 9 findings in the quiet time, each ends frozen
    await p.idle();
    expect(sensorAlerts(sent)).toHaveLength(1);
    expect(p.status()).toMatchObject({ sensorSuppressed: 9, sensorsSuppressed: { 'flicker-2': { Current: { suppressedSinceLast: 9 } } } });

    // 610 s after the alert: the quiet time is over, and Current has read FROZEN since the last finding's run began
    const still = await flickerCycle(p, 'flicker-2', r, { thawFirst: false, frozen: 10 });
    await p.idle();
    expect(sensorAlerts(sent)).toHaveLength(2);
    expect(sensorAlerts(sent)[1]).toMatchObject({
      pumpId: 'flicker-2',
      seq: still.seqs.at(-1),
      ts: new Date(still.rows.at(-1)!.ts).toISOString(),
      suppressedSinceLast: 9,
      sensor: { feature: 'Current', value: FROZEN, since: new Date(last.firstFrozenTs).toISOString(), readings: 70, after: 60 },
    });
    expect(p.status().sensorsSuppressed).toEqual({});
    // frozen on: no more alerts (its quiet time starts again with the one sent)
    await flickerCycle(p, 'flicker-2', r, { thawFirst: false, frozen: 100 });

    // A second pump: it flickers through its quiet time, and has thawed when the quiet time ends.
    const r2 = rng(13);
    await flickerCycle(p, 'flicker-3', r2, { thawFirst: false });
    for (let cycle = 1; cycle < 10; cycle++) await flickerCycle(p, 'flicker-3', r2);
    await flickerCycle(p, 'flicker-3', r2, { frozen: 10 }); // thawed, then 10 identical readings: not frozen
    await p.idle();
    expect(sensorAlerts(sent).filter((a) => a.pumpId === 'flicker-3')).toHaveLength(1);
    expect(p.status().sensorsSuppressed).toEqual({ 'flicker-3': { Current: expect.objectContaining({ suppressedSinceLast: 9 }) } });
    // it freezes again, after its quiet time: alerted at once, with the findings held back
    await flickerCycle(p, 'flicker-3', r2, { thawFirst: false, frozen: 50 });
    await p.idle();
    const flicker3 = sensorAlerts(sent).filter((a) => a.pumpId === 'flicker-3');
    expect(flicker3.map((a) => a.suppressedSinceLast)).toEqual([0, 9]);
    expect(sensorAlerts(sent)).toHaveLength(4);
  });

  it('keeps a sensor\'s quiet time and its findings held back through a restart, and sends the alert of the sensor still frozen when it ends', async () => {
    tick(3_600_000);
    const sent: Alert[] = [];
    const before = publisher(async (a) => void sent.push(a), 600_000);
    before.restore();
    const r = rng(14);
    await flickerCycle(before, 'flicker-4', r, { thawFirst: false }); // alerted
    for (let cycle = 1; cycle < 5; cycle++) await flickerCycle(before, 'flicker-4', r); // 4 held back
    await before.idle();
    expect(sensorAlerts(sent)).toHaveLength(1);
    expect(JSON.parse(buffer.getMeta('alerts.sensors') ?? '{}')['flicker-4']).toMatchObject({ Current: { suppressed: 4 } });

    // The agent restarts: its engine counts the runs again from the rows read back (agent/main.ts seedWindows), its publisher restores.
    const restarted = new InferenceEngine();
    restarted.setModel('default', await LoadedModel.fromBytes(makeModel({ version: 'a-1' }), 'test'));
    restarted.seed('flicker-4', buffer.predictions('flicker-4', { limit: restarted.frozenReadBack() + 1 }));
    expect(restarted.sensorFaults('flicker-4')).toMatchObject([{ feature: 'Current', readings: 60 }]);
    const after = new AlertPublisher({ engine: restarted, kv: buffer, deviceId: 'gw-a', send: async (a) => void sent.push(a), minIntervalMs: () => 60_000, sensorMinIntervalMs: () => 600_000, logger: createLogger('silent'), clock: () => now, monotonic: () => mono });
    after.restore();
    expect(after.status().sensorsSuppressed).toMatchObject({ 'flicker-4': { Current: { suppressedSinceLast: 4 } } });
    try {
      for (let cycle = 5; cycle < 10; cycle++) await flickerCycle(after, 'flicker-4', r, { scoredBy: restarted }); // 5 more, still in the quiet time
      await after.idle();
      expect(sensorAlerts(sent)).toHaveLength(1);
      await flickerCycle(after, 'flicker-4', r, { thawFirst: false, frozen: 5, scoredBy: restarted }); // the quiet time is over, still frozen
      await after.idle();
      expect(sensorAlerts(sent).map((a) => a.suppressedSinceLast)).toEqual([0, 9]);
      expect(sensorAlerts(sent)[1]!.sensor).toMatchObject({ feature: 'Current', value: FROZEN, readings: 65 });
    } finally {
      await restarted.model('default')?.release();
    }
  });

  it('after a restart, counts a sensor\'s last alert recorded later than the gateway clock as expired', async () => {
    tick(3_600_000);
    const sent: Alert[] = [];
    const before = publisher(async (a) => void sent.push(a));
    before.restore();
    const r = rng(15);
    await flickerCycle(before, 'flicker-5', r, { thawFirst: false });
    await before.idle();
    now -= 86_400_000; // stepped back a day, then the agent restarts; the sensors' time goes on
    sensorSkew = 86_400_000;
    const after = publisher(async (a) => void sent.push(a));
    after.restore();
    await flickerCycle(after, 'flicker-5', r);
    await after.idle();
    now += sensorSkew;
    sensorSkew = 0;
    expect(sensorAlerts(sent).map((a) => a.pumpId)).toEqual(['flicker-5', 'flicker-5']);
  });

  it('drops the findings held back of a sensor the pump\'s model no longer bounds (a swap), and of a pump the agent no longer tracks (a restart)', async () => {
    tick(3_600_000);
    const own = new InferenceEngine();
    const bounded = await LoadedModel.fromBytes(makeModel({ version: 'a-1' }), 'test');
    const unbounded = await LoadedModel.fromBytes(makeModel({ version: 'a-no-current', features: ['Pressure', 'Flow'] }), 'test');
    try {
      expect(unbounded.meta.stuckAfter).not.toHaveProperty('Current');
      own.setModel('default', bounded);
      const sent: Alert[] = [];
      const p = new AlertPublisher({ engine: own, kv: buffer, deviceId: 'gw-a', send: async (a) => void sent.push(a), minIntervalMs: () => 60_000, sensorMinIntervalMs: () => 600_000, logger: createLogger('silent'), clock: () => now, monotonic: () => mono });
      p.restore();
      const r = rng(21);
      await flickerCycle(p, 'swapped', r, { thawFirst: false, scoredBy: own });
      await flickerCycle(p, 'swapped', r, { scoredBy: own });
      await flickerCycle(p, 'left', r, { thawFirst: false, scoredBy: own });
      await flickerCycle(p, 'left', r, { scoredBy: own });
      await p.idle();
      expect(sensorAlerts(sent).map((a) => a.pumpId)).toEqual(['swapped', 'left']);
      expect(p.status().sensorsSuppressed).toMatchObject({ swapped: { Current: { suppressedSinceLast: 1 } }, left: { Current: { suppressedSinceLast: 1 } } });

      // 'swapped' gets its own model, without a bound for Current: its count can never be alerted now
      own.setModel('swapped', unbounded);
      tick(600_000);
      await flickerCycle(p, 'swapped', r, { scoredBy: own });
      expect(p.status().sensorsSuppressed).toEqual({ left: { Current: expect.objectContaining({ suppressedSinceLast: 1 }) } });
      expect(JSON.parse(buffer.getMeta('alerts.sensors') ?? '{}')).not.toHaveProperty('swapped');

      // a restart whose buffer kept no row of 'left' (a new engine that never saw it): dropped at the next commit
      const fresh = new InferenceEngine();
      fresh.setModel('default', bounded);
      const after = new AlertPublisher({ engine: fresh, kv: buffer, deviceId: 'gw-a', send: async (a) => void sent.push(a), minIntervalMs: () => 60_000, sensorMinIntervalMs: () => 600_000, logger: createLogger('silent'), clock: () => now, monotonic: () => mono });
      after.restore();
      expect(after.status().sensorsSuppressed).toHaveProperty('left');
      await flickerCycle(after, 'another', r, { scoredBy: fresh, frozen: 5 });
      expect(after.status().sensorsSuppressed).toEqual({});
      expect(JSON.parse(buffer.getMeta('alerts.sensors') ?? '{}')).not.toHaveProperty('left');
      expect(sensorAlerts(sent).map((a) => a.pumpId)).toEqual(['swapped', 'left']);
    } finally {
      await bounded.release();
      await unbounded.release();
    }
  });
});

describe('an anomaly alarm\'s episode: its clear and suppressedSinceLast', () => {
  const r = rng(11);
  async function normal(pumpId: string): Promise<{ rows: PredictionRow[]; seqs: number[] }> {
    const rows = await engine.score([{ pumpId, ts: now, values: normalValues(r, 0) }], now);
    expect(rows[0]!.anomaly).toBe(false);
    return { rows, seqs: buffer.appendBatch(rows) };
  }
  /** Scores and commits one reading of `pumpId`, a spike or a normal one, 10 s after the last, and waits for its alerts; its seq. */
  async function reading(p: AlertPublisher, pumpId: string, anomalous: boolean): Promise<number> {
    tick(10_000);
    const { rows, seqs } = anomalous ? await spike(pumpId) : await normal(pumpId);
    p.onCommit(rows, seqs);
    await p.idle();
    return seqs[0]!;
  }
  const restored = (sent: Alert[]): AlertPublisher => {
    const p = publisher(async (a) => void sent.push(a));
    p.restore();
    return p;
  };

  it('sends suppressedSinceLast with the clear, and starts a new episode from 0', async () => {
    tick(3_600_000);
    const sent: Alert[] = [];
    const p = restored(sent);
    const raise = await reading(p, 'episode-1', true);
    for (let i = 0; i < 3; i++) await reading(p, 'episode-1', true); // within the minute: held back
    for (let i = 0; i < CLEAR_AFTER_NORMALS; i++) await reading(p, 'episode-1', false);
    tick(60_000); // the rate limit over: the next anomaly is alerted either way
    const next = await reading(p, 'episode-1', true);

    expect(sent.map((a) => [a.kind, a.episode, a.suppressedSinceLast])).toEqual([
      ['anomaly', raise, 0],
      ['anomaly-cleared', raise, 3],
      ['anomaly', next, 0],
    ]);
  });

  it('clears an alarm raised by one model on the normal readings of the model swapped in, naming it', async () => {
    tick(3_600_000);
    const sent: Alert[] = [];
    const p = restored(sent);
    const raise = await reading(p, 'episode-3', true);
    const swapped = await LoadedModel.fromBytes(makeModel({ version: 'b-1' }), 'test');
    try {
      engine.setModel('episode-3', swapped);
      tick(60_000); // the interval since the raise over: the clear comes at the off-delay's last reading
      for (let i = 0; i < CLEAR_AFTER_NORMALS; i++) await reading(p, 'episode-3', false);
      expect(sent.map((a) => [a.kind, a.episode, a.modelVersion])).toEqual([
        ['anomaly', raise, 'a-1'],
        ['anomaly-cleared', raise, 'b-1'],
      ]);
    } finally {
      await swapped.release();
    }
  });

  it('clears no sooner than the rate-limit interval after the last alert of the alarm: a flickering pump makes at most a raise and a clear a minute', async () => {
    tick(3_600_000);
    const sent: Alert[] = [];
    const p = restored(sent);
    const raise = await reading(p, 'episode-4', true);
    for (let i = 0; i < CLEAR_AFTER_NORMALS; i++) await reading(p, 'episode-4', false); // 50 s after the raise: not yet
    expect(sent.map((a) => a.kind)).toEqual(['anomaly']);
    const clear = await reading(p, 'episode-4', false); // 60 s after it: cleared
    expect(sent.map((a) => [a.kind, a.episode, a.seq])).toEqual([
      ['anomaly', raise, raise],
      ['anomaly-cleared', raise, clear],
    ]);
    // Two minutes of flicker, a reading every 2 s: one anomalous, then five normal ones, over and
    // over. Each run of normal readings is the off-delay; a raise and a clear per run were 20 messages.
    sent.length = 0;
    for (let cycle = 0; cycle < 10; cycle++) {
      for (let i = 0; i < 6; i++) {
        tick(2_000);
        const { rows, seqs } = i === 0 ? await spike('episode-4') : await normal('episode-4');
        p.onCommit(rows, seqs);
        await p.idle();
      }
    }
    expect(sent.length).toBeGreaterThan(0); // still alerted: the raise is news
    expect(sent.length).toBeLessThanOrEqual(5); // a raise, a repeat or a clear at most about once a minute
  });

  it('says when the agent decided an alert (detectedAt, on the gateway clock) beside the reading time of a sender an hour ahead', async () => {
    tick(3_600_000);
    const sent: Alert[] = [];
    const p = restored(sent);
    tick(10_000);
    const { rows, seqs } = await spike('episode-5', now + 3_600_000);
    p.onCommit(rows, seqs);
    await p.idle();
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ kind: 'anomaly', ts: new Date(now + 3_600_000).toISOString(), detectedAt: new Date(now).toISOString() });
  });

  it('keeps suppressedSinceLast across a restart', async () => {
    tick(3_600_000);
    const sent: Alert[] = [];
    const raise = await reading(restored(sent), 'episode-2', true);
    const before = restored(sent);
    for (let i = 0; i < 2; i++) await reading(before, 'episode-2', true); // held back
    const after = restored(sent);
    tick(60_000);
    const repeat = await reading(after, 'episode-2', true);

    expect(sent.map((a) => [a.kind, a.seq, a.episode, a.suppressedSinceLast])).toEqual([
      ['anomaly', raise, raise, 0],
      ['anomaly', repeat, raise, 2],
    ]);
  });
});
