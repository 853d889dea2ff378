/**
 * Alert decisions against a real SQLite buffer (meta) and a real onnxruntime model, with the
 * gateway clock and the monotonic clock injected: one alert per pump and interval, suppressed
 * anomalies counted, alerts kept through an offline period and a restart, the interval kept when
 * NTP steps the gateway clock. The edgeHub side is the `send` function here
 * (edge.test.ts covers it with the real client and the local hub).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AlertPublisher, type Alert } from '../../agent/edge/alerts.js';
import { createLogger } from '../../agent/logger.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';
import { InferenceEngine } from '../../inference/engine.js';
import { LoadedModel } from '../../inference/model.js';
import { makeModel, normalValues, rng } from '../support/models.js';

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

function publisher(send: (a: Alert) => Promise<void>): AlertPublisher {
  return new AlertPublisher({ engine, kv: buffer, deviceId: 'gw-a', send, minIntervalMs: () => 60_000, logger: createLogger('silent'), clock: () => now, monotonic: () => mono });
}

/** Scores and commits one spike reading of `pumpId` (an anomaly for the test model). */
async function spike(pumpId: string, ts = now): Promise<{ rows: PredictionRow[]; seqs: number[] }> {
  const rows = await engine.score([{ pumpId, ts, values: { Pressure: 4, Flow: 30, Current: 1.4 } }], now);
  expect(rows[0]!.anomaly).toBe(true);
  return { rows, seqs: buffer.appendBatch(rows) };
}

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
    };
    let online = false;
    const sent: Alert[] = [];
    const send = async (a: Alert): Promise<void> => {
      if (!online) throw new Error('not connected to the hub');
      sent.push(a);
    };
    const p = new AlertPublisher({ engine, kv, deviceId: 'gw-a', send, minIntervalMs: () => 60_000, logger: createLogger('silent'), clock: () => now, monotonic: () => mono });
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
    const p = new AlertPublisher({ engine, kv: buffer, deviceId: 'gw-a', send, minIntervalMs: () => 60_000, logger: createLogger('silent'), clock: () => now, monotonic: () => mono, maxPending: 3 });
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
    const p = new AlertPublisher({ engine, kv: buffer, deviceId: 'gw-a', send, minIntervalMs: () => 60_000, logger: createLogger('silent'), clock: () => now, monotonic: () => mono, maxPending: 3 });
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
    // pump-7: Current frozen for 60 readings (the model's bound); the 60th is also a spike
    const readings = Array.from({ length: 60 }, (_, i) => ({ pumpId: 'pump-7', ts: now + i * 1000, values: { ...normalValues(r, i), Current: 1.41 } as Record<string, number> }));
    readings[59]!.values = { ...readings[59]!.values, Pressure: 4 };
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
    // pending: the earlier anomaly, then the frozen sensor (the spike at the same reading is rate-limited)
    expect(offline.status()).toMatchObject({ pending: 2, suppressed: 1 });

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
    // the frozen sensor's alert is sent and recorded, then the process stops before saving the list
    const once: Alert[] = [];
    const stopping = publisher(async (a) => {
      if (once.length === 1) throw new Error('stopping');
      once.push(a);
    });
    stopping.restore();
    stopping.flush();
    await stopping.idle();
    expect(once.map((a) => a.kind)).toEqual(['sensor-frozen']);
    // restored from the list saved before (both pending): the one sent is dropped, the anomaly of the same reading kept
    buffer.setMeta('alerts.pending', savedBefore);
    const rest: Alert[] = [];
    const after = publisher(async (a) => void rest.push(a));
    after.restore();
    after.flush();
    await after.idle();
    expect(rest.map((a) => [a.kind, a.seq])).toEqual([['anomaly', seqs[59]]]);
  });
});
