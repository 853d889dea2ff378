/**
 * Silent pumps (agent/edge/pump-silence.ts) through the real alert publisher, against a real SQLite
 * buffer (its rows and meta) and a real onnxruntime model, with the gateway clock and the monotonic
 * clock injected: one `pump-silent` per silence, one `pump-resumed` when readings (accepted or
 * refused) come back, none with the setting 0, silence measured on the monotonic clock, alerts kept
 * through an offline period and a restart, the anomalies' rate limit left as it was; a pending
 * list over its size leaves no pump alerted whose alert it dropped; a pump out of service for 7
 * days is forgotten; a buffer that opens late restores the last run without the rows just committed.
 * The edgeHub side is the `send` function here (edge-silent-pump-hub.test.ts covers it with the real client).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AlertPublisher, type Alert } from '../../agent/edge/alerts.js';
import { bufferedPumps } from '../../agent/edge/pump-silence.js';
import { createLogger } from '../../agent/logger.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';
import { InferenceEngine } from '../../inference/engine.js';
import { LoadedModel } from '../../inference/model.js';
import { makeModel, normalValues, rng } from '../support/models.js';
import { sendOneThenRestart } from '../support/alerts.js';

const MINUTE = 60_000;
const DAY = 86_400_000;
let dir: string;
let buffer: BufferStore;
let engine: InferenceEngine;
/** The gateway (wall) clock, which NTP may step, and the monotonic clock, which only advances. */
let now = Date.UTC(2026, 11, 6, 10);
let mono = 0;
const tick = (ms: number): void => {
  now += ms;
  mono += ms;
};
/** The setting in force (`alerts.silentAfterSeconds`, in ms), changed live by a test. */
let silentAfterMs = MINUTE;
/** The pumps' own time of their next reading. */
const nextTs = new Map<string, number>();

function publisher(send: (a: Alert) => Promise<void>, minIntervalMs = 60_000, limits: { maxPending?: number; maxPendingSilence?: number } = {}): AlertPublisher {
  return new AlertPublisher({
    ...limits,
    engine,
    kv: buffer,
    deviceId: 'gw-s',
    send,
    minIntervalMs: () => minIntervalMs,
    sensorMinIntervalMs: () => 3_600_000,
    logger: createLogger('silent'),
    clock: () => now,
    monotonic: () => mono,
    silentAfterMs: () => silentAfterMs,
    buffered: (beforeSeq) => bufferedPumps(buffer, beforeSeq),
    markAlerted: (seq, at) => buffer.markAlerted(seq, at),
  });
}

/** Scores, commits and hands the publisher `n` readings of `pumpId` at 1 Hz (its own time), the clocks moving with them. */
async function readings(p: AlertPublisher | null, pumpId: string, n = 10, opts: { ts?: number; receivedAt?: number } = {}): Promise<{ rows: PredictionRow[]; seqs: number[] }> {
  const r = rng(pumpId.length);
  const ts0 = opts.ts ?? nextTs.get(pumpId) ?? now;
  const batch = Array.from({ length: n }, (_, i) => ({ pumpId, ts: ts0 + i * 1000, values: normalValues(r, i) }));
  nextTs.set(pumpId, ts0 + n * 1000);
  const rows = await engine.score(batch, opts.receivedAt ?? now);
  const seqs = buffer.appendBatch(rows);
  p?.onCommit(rows, seqs);
  return { rows, seqs };
}

/** Scores and commits one spike reading of `pumpId` (an anomaly for the test model). */
async function spike(p: AlertPublisher, pumpId: string): Promise<void> {
  const ts = nextTs.get(pumpId) ?? now;
  nextTs.set(pumpId, ts + 1000);
  const rows = await engine.score([{ pumpId, ts, values: { Pressure: 4, Flow: 30, Current: 1.4 } }], now);
  expect(rows[0]!.anomaly).toBe(true);
  p.onCommit(rows, buffer.appendBatch(rows));
}

/** Each pump's alerts sent, by kind, in order. */
const kindsByPump = (sent: readonly Alert[]): Record<string, Array<Alert['kind']>> => {
  const out: Record<string, Array<Alert['kind']>> = {};
  for (const a of sent) (out[a.pumpId] ??= []).push(a.kind);
  return out;
};
const ofKind = (sent: readonly Alert[], kind: Alert['kind'], pumpId?: string): Alert[] => sent.filter((a) => a.kind === kind && (pumpId === undefined || a.pumpId === pumpId));
const iso = (ms: number): string => new Date(ms).toISOString();

beforeAll(async () => {
  engine = new InferenceEngine();
  engine.setModel('default', await LoadedModel.fromBytes(makeModel({ version: 's-1' }), 'test'));
});

afterAll(async () => {
  await engine.model('default')?.release();
});

// A buffer of its own per test: the pumps a restart reads back are the test's.
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-silence-'));
  buffer = new BufferStore({ path: join(dir, 'buffer.sqlite'), maxBytes: 1 << 30 });
  buffer.open();
  silentAfterMs = MINUTE;
  tick(DAY);
});

afterEach(() => {
  buffer.close();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

describe('silent pumps', () => {
  it('alerts a pump silent for the setting once, and its return once, with how long and the readings it missed', async () => {
    const sent: Alert[] = [];
    const p = publisher(async (a) => void sent.push(a));
    p.restore();
    const before = await readings(p, 'quiet-1', 10);
    const last = { seq: before.seqs.at(-1)!, ts: before.rows.at(-1)!.ts, receivedAt: before.rows.at(-1)!.receivedAt };
    tick(MINUTE - 1);
    p.checkSilence();
    expect(p.status()).toMatchObject({ silentPumps: {}, pumpsSilent: 0 });
    tick(1);
    p.checkSilence();
    await p.idle();
    expect(sent).toEqual([
      {
        // the kind, the reading, and when it was decided: a pump silent again at the same last reading is another alert
        id: expect.stringMatching(new RegExp(`^pump-silent:[0-9a-f]{16}:${last.seq}:${now}$`)),
        schemaVersion: 1,
        kind: 'pump-silent',
        deviceId: 'gw-s',
        pumpId: 'quiet-1',
        seq: last.seq,
        ts: iso(last.ts),
        score: null,
        threshold: null,
        modelVersion: null,
        topFeatures: [],
        suppressedSinceLast: 0,
        silence: { since: iso(last.receivedAt), lastReading: { seq: last.seq, ts: iso(last.ts), receivedAt: iso(last.receivedAt) }, silentSeconds: 60, beganBeforeRestart: false, intervalSeconds: 1 },
        detectedAt: iso(now),
      },
    ]);
    // silent on: no second alert
    for (let i = 0; i < 10; i++) {
      tick(MINUTE);
      p.checkSilence();
    }
    await p.idle();
    expect(sent).toHaveLength(1);
    expect(p.status()).toMatchObject({ silentPumps: { 'quiet-1': { since: iso(last.receivedAt), silentSeconds: 660, alerted: true, beganBeforeRestart: false } }, pumpsSilent: 1, silentAlerts: 1 });

    // back, its own time 11 min and 1 s after its last reading: 660 readings missed at 1 Hz
    const back = await readings(p, 'quiet-1', 5, { ts: last.ts + 661_000 });
    await readings(p, 'quiet-1', 5);
    tick(MINUTE - 1);
    p.checkSilence();
    await p.idle();
    expect(ofKind(sent, 'pump-resumed')).toEqual([
      expect.objectContaining({
        pumpId: 'quiet-1',
        seq: back.seqs[0],
        ts: iso(back.rows[0]!.ts),
        silence: { since: iso(last.receivedAt), lastReading: { seq: last.seq, ts: iso(last.ts), receivedAt: iso(last.receivedAt) }, silentSeconds: 660, beganBeforeRestart: false, intervalSeconds: 1, missedReadings: 660 },
      }),
    ]);
    expect(sent).toHaveLength(2);
    expect(p.status()).toMatchObject({ silentPumps: {}, pumpsSilent: 0, silentAlerts: 1, resumedAlerts: 1, sent: 2 });
    // a silence alert marks no reading as alerted (alerted_at is an anomaly's or a sensor's)
    expect(buffer.db.prepare('SELECT count(*) AS n FROM readings WHERE alerted_at IS NOT NULL').get()).toEqual({ n: 0 });
  });

  it('counts refused readings: a pump whose readings are refused is not silent, one alerted silent resumes with them, and a pump known only from refusals is never alerted', async () => {
    const sent: Alert[] = [];
    const p = publisher(async (a) => void sent.push(a));
    p.restore();
    const { seqs } = await readings(p, 'refusing-1', 5);
    tick(50_000);
    p.onRefuse([{ pumpId: 'refusing-1', receivedAt: now }]);
    p.onRefuse([{ pumpId: 'never-accepted', receivedAt: now }]);
    tick(50_000);
    p.checkSilence();
    await p.idle();
    expect(sent).toEqual([]);
    tick(10_000);
    p.checkSilence();
    await p.idle();
    expect(sent.map((a) => [a.kind, a.pumpId, a.silence?.since])).toEqual([['pump-silent', 'refusing-1', iso(now - MINUTE)]]);

    p.onRefuse([{ pumpId: 'refusing-1', receivedAt: now }]);
    p.onRefuse([{ pumpId: 'refusing-1', receivedAt: now + 1 }]);
    await p.idle();
    // no reading was missed: they came, refused; the alert is at its last reading accepted
    expect(ofKind(sent, 'pump-resumed')).toEqual([expect.objectContaining({ pumpId: 'refusing-1', seq: seqs.at(-1), silence: expect.not.objectContaining({ missedReadings: expect.anything() }) })]);
    expect(ofKind(sent, 'pump-resumed')[0]!.silence).toMatchObject({ silentSeconds: 60, beganBeforeRestart: false });
    tick(DAY);
    p.checkSilence();
    await p.idle();
    expect(sent.filter((a) => a.pumpId === 'never-accepted')).toEqual([]);
  });

  it('measures silence on the monotonic clock: a step of the gateway clock neither raises it nor hides it', async () => {
    const sent: Alert[] = [];
    const p = publisher(async (a) => void sent.push(a));
    p.restore();
    await readings(p, 'stepped-1', 5);
    now += DAY; // NTP steps the gateway clock a day forward
    p.checkSilence();
    await p.idle();
    expect(sent).toEqual([]);
    now -= 2 * DAY; // and two back
    mono += MINUTE;
    p.checkSilence();
    await p.idle();
    expect(sent.map((a) => [a.kind, a.silence?.silentSeconds])).toEqual([['pump-silent', 60]]);
  });

  it('sends nothing with the setting 0 (off), and applies a new value at the next check', async () => {
    silentAfterMs = 0;
    const sent: Alert[] = [];
    const p = publisher(async (a) => void sent.push(a));
    p.restore();
    await readings(p, 'off-1', 5);
    tick(DAY);
    p.checkSilence();
    await p.idle();
    expect(sent).toEqual([]);
    expect(p.status()).toMatchObject({ silentPumps: {}, pumpsSilent: 0 });
    silentAfterMs = 2 * MINUTE; // the twin sets it
    p.checkSilence();
    await p.idle();
    expect(sent.map((a) => [a.kind, a.pumpId, a.silence?.silentSeconds])).toEqual([['pump-silent', 'off-1', 86_400]]);
    // turned off while it is silent: it still gets its pump-resumed
    silentAfterMs = 0;
    await readings(p, 'off-1', 1);
    await p.idle();
    expect(sent.map((a) => a.kind)).toEqual(['pump-silent', 'pump-resumed']);
  });

  it('keeps silence alerts pending while edgeHub is unreachable and sends them after, outside the anomalies\' rate limit and leaving it as it was, through a restart too', async () => {
    let online = true;
    const sent: Alert[] = [];
    const send = async (a: Alert): Promise<void> => {
      if (!online) throw new Error('not connected to the hub');
      sent.push(a);
    };
    // anomalies at most one per pump in 10 min
    const p = publisher(send, 10 * MINUTE);
    p.restore();
    await spike(p, 'rate-1'); // alerted
    await readings(p, 'rate-2', 3); // never an anomaly
    await p.idle();
    online = false;
    tick(MINUTE);
    p.checkSilence();
    await p.idle();
    expect(p.status()).toMatchObject({ pending: 2, lastError: 'not connected to the hub' });
    expect(JSON.parse(buffer.getMeta('alerts.pending')!).map((x: { alert: Alert }) => [x.alert.kind, x.alert.pumpId])).toEqual([['pump-silent', 'rate-1'], ['pump-silent', 'rate-2']]);
    online = true;
    p.flush(); // the reconnect
    await p.idle();
    expect(sent.map((a) => [a.kind, a.pumpId])).toEqual([['anomaly', 'rate-1'], ['pump-silent', 'rate-1'], ['pump-silent', 'rate-2']]);

    // rate-1's anomaly alert of a minute ago still holds its next one back; the resumed goes out
    await spike(p, 'rate-1');
    await p.idle();
    expect(p.status().suppressed).toBe(1);
    expect(sent.slice(3).map((a) => [a.kind, a.pumpId])).toEqual([['pump-resumed', 'rate-1']]);

    // a restart: rate-1's last alert sent is the resumed one, yet the anomaly's time is restored; rate-2 had none
    tick(1000);
    const after = publisher(send, 10 * MINUTE);
    after.restore();
    await spike(after, 'rate-1');
    await spike(after, 'rate-2');
    await after.idle();
    expect(after.status().suppressed).toBe(1);
    expect(sent.slice(4).map((a) => [a.kind, a.pumpId])).toEqual([['pump-resumed', 'rate-2'], ['anomaly', 'rate-2']]);
  });

  it('after a restart, a silence alert still pending starts no rate limit of anomalies', async () => {
    const offline = publisher(() => Promise.reject(new Error('not connected to the hub')), 10 * MINUTE);
    offline.restore();
    await readings(offline, 'pending-1', 3);
    tick(MINUTE);
    offline.checkSilence();
    await offline.idle();
    expect(offline.status().pending).toBe(1);

    tick(1000);
    const sent: Alert[] = [];
    const after = publisher(async (a) => void sent.push(a), 10 * MINUTE);
    after.restore();
    await spike(after, 'pending-1');
    await after.idle();
    expect(sent.map((a) => a.kind)).toEqual(['pump-silent', 'pump-resumed', 'anomaly']);
    expect(after.status().suppressed).toBe(0);
  });

  it('after a restart, alerts neither a pump alerted before again nor one last heard over 7 days before, alerts the others silent from the start, and sends the pump-resumed of the one alerted before', async () => {
    // A pump of an earlier run, last heard 8 days ago (decommissioned)
    await readings(null, 'old-1', 3, { receivedAt: now - 8 * DAY, ts: now - 8 * DAY });
    const sent: Alert[] = [];
    const first = publisher(async (a) => void sent.push(a));
    first.restore();
    const alerted = await readings(first, 'was-alerted', 5);
    tick(MINUTE);
    first.checkSilence();
    const known = await readings(first, 'known-1', 5); // heard just before the restart
    await first.idle();
    expect(sent.map((a) => [a.kind, a.pumpId])).toEqual([['pump-silent', 'was-alerted']]);
    expect(JSON.parse(buffer.getMeta('alerts.silent')!)).toHaveProperty('was-alerted');

    // The agent restarts (the time it was down shows only on the gateway clock)
    now += 10 * MINUTE;
    mono = 0;
    const after = publisher(async (a) => void sent.push(a));
    after.restore();
    expect(after.status().silentPumps).toEqual({ 'was-alerted': { since: iso(alerted.rows.at(-1)!.receivedAt), silentSeconds: 0, alerted: true, beganBeforeRestart: true } });
    tick(MINUTE);
    after.checkSilence();
    tick(10 * MINUTE);
    after.checkSilence();
    await after.idle();
    const lastKnown = known.rows.at(-1)!;
    expect(sent.slice(1)).toEqual([
      expect.objectContaining({
        kind: 'pump-silent',
        pumpId: 'known-1',
        seq: known.seqs.at(-1),
        silence: { since: iso(lastKnown.receivedAt), lastReading: { seq: known.seqs.at(-1), ts: iso(lastKnown.ts), receivedAt: iso(lastKnown.receivedAt) }, silentSeconds: 60, beganBeforeRestart: true, intervalSeconds: 1 },
      }),
    ]);
    expect(Object.keys(after.status().silentPumps)).toEqual(['known-1', 'was-alerted']);

    const back = await readings(after, 'was-alerted', 3);
    await after.idle();
    expect(sent.slice(2)).toEqual([expect.objectContaining({ kind: 'pump-resumed', pumpId: 'was-alerted', seq: back.seqs[0], silence: expect.objectContaining({ silentSeconds: 660, beganBeforeRestart: true }) })]);
    expect(JSON.parse(buffer.getMeta('alerts.silent')!)).not.toHaveProperty('was-alerted');
    expect(sent.filter((a) => a.pumpId === 'old-1')).toEqual([]);
  });

  it('after a kill in the middle of sending, sends neither silence alert twice, nor leaves one unsent (a pump silent twice at the same last reading)', async () => {
    const offline = publisher(() => Promise.reject(new Error('not connected to the hub')));
    offline.restore();
    const { seqs } = await readings(offline, 'mid-1', 3);
    tick(MINUTE);
    offline.checkSilence();
    offline.onRefuse([{ pumpId: 'mid-1', receivedAt: now }]); // heard again, refused
    tick(MINUTE);
    offline.checkSilence(); // silent again, at the same last reading
    await offline.idle();
    const kept = JSON.parse(buffer.getMeta('alerts.pending')!) as Array<{ alert: Alert }>;
    expect(kept.map((x) => [x.alert.kind, x.alert.seq])).toEqual([['pump-silent', seqs.at(-1)], ['pump-resumed', seqs.at(-1)], ['pump-silent', seqs.at(-1)]]);
    const savedBefore = buffer.getMeta('alerts.pending')!;
    // edgeHub takes one, then the process is killed before it saves the list
    const { once, rest, after } = await sendOneThenRestart(publisher, buffer, savedBefore);
    expect(once.map((a) => a.kind)).toEqual(['pump-silent']);
    expect(rest.map((a) => a.kind)).toEqual(['pump-resumed', 'pump-silent']);
    expect(after.status().silentPumps).toMatchObject({ 'mid-1': { alerted: true } });
  });

  it('after a kill between saving a pump-silent alert and the silent pumps, restores the pump as alerted from the alert, and keeps it so through the next restart', async () => {
    const sent: Alert[] = [];
    const offline = publisher(() => Promise.reject(new Error('not connected to the hub')));
    offline.restore();
    await readings(offline, 'kill-1', 3);
    tick(MINUTE);
    offline.checkSilence();
    await offline.idle();
    buffer.setMeta('alerts.silent', '{}'); // the second write never happened

    const after = publisher(async (a) => void sent.push(a));
    after.restore();
    tick(MINUTE);
    after.checkSilence();
    after.flush();
    await after.idle();
    expect(sent.map((a) => [a.kind, a.pumpId])).toEqual([['pump-silent', 'kill-1']]);

    // Restarted again (a module update) before kill-1 sends: the same silence is not alerted again.
    const third = publisher(async (a) => void sent.push(a));
    third.restore();
    expect(third.status().silentPumps).toMatchObject({ 'kill-1': { alerted: true, beganBeforeRestart: true } });
    tick(MINUTE);
    third.checkSilence();
    await third.idle();
    expect(sent.map((a) => [a.kind, a.pumpId])).toEqual([['pump-silent', 'kill-1']]);
    await readings(third, 'kill-1', 1);
    await third.idle();
    expect(sent.map((a) => a.kind)).toEqual(['pump-silent', 'pump-resumed']);
  });

  it('with the pending list full of silence alerts, leaves no pump alerted whose pump-silent it dropped (alerted at the next check), and drops the pump-resumed of a silence whose pump-silent it dropped', async () => {
    let online = false;
    const sent: Alert[] = [];
    const send = async (a: Alert): Promise<void> => {
      if (!online) throw new Error('not connected to the hub');
      sent.push(a);
    };
    const p = publisher(send, 60_000, { maxPendingSilence: 3 }); // three silence alerts kept at most
    p.restore();
    const pumps = ['drop-0', 'drop-1', 'drop-2', 'drop-3', 'drop-4'];
    for (const pump of pumps) await readings(p, pump, 3);
    tick(MINUTE);
    p.checkSilence(); // five pump-silent alerts, three kept
    await p.idle();
    expect(p.status()).toMatchObject({ pending: 3, dropped: 2, silentAlerts: 3, pumpsSilent: 5 });
    expect(p.status().silentPumps).toMatchObject({ 'drop-0': { alerted: false }, 'drop-1': { alerted: false }, 'drop-2': { alerted: true } });
    expect(Object.keys(JSON.parse(buffer.getMeta('alerts.silent')!))).toEqual(['drop-2', 'drop-3', 'drop-4']);

    online = true;
    p.flush(); // the reconnect
    await p.idle();
    p.checkSilence(); // the two dropped: decided again
    await p.idle();
    expect(sent.map((a) => [a.kind, a.pumpId])).toEqual([...['drop-2', 'drop-3', 'drop-4', 'drop-0', 'drop-1'].map((pump) => ['pump-silent', pump])]);
    for (const pump of pumps) await readings(p, pump, 1);
    await p.idle();
    expect(kindsByPump(sent)).toEqual(Object.fromEntries(pumps.map((pump) => [pump, ['pump-silent', 'pump-resumed']])));

    // Offline again: drop-0 and drop-1 silent, drop-0 back; drop-2 silent: drop-0's pump-silent is
    // dropped, and its pump-resumed with it (a return from a silence the cloud never heard of).
    online = false;
    sent.length = 0;
    tick(MINUTE);
    await readings(p, 'drop-2', 1);
    await readings(p, 'drop-3', 1);
    await readings(p, 'drop-4', 1);
    p.checkSilence(); // drop-0, drop-1
    await readings(p, 'drop-0', 1); // its pump-resumed
    tick(MINUTE);
    await readings(p, 'drop-0', 1);
    await readings(p, 'drop-1', 1); // its pump-resumed, the list over its 3
    await p.idle();
    expect(p.status()).toMatchObject({ pending: 2, dropped: 4 });
    online = true;
    p.flush();
    await p.idle();
    expect(sent.map((a) => [a.kind, a.pumpId])).toEqual([['pump-silent', 'drop-1'], ['pump-resumed', 'drop-1']]);
  });

  it('keeps silence alerts apart from the anomalies\' limit: an outage\'s anomalies push out older anomalies, never a pump-silent', async () => {
    let online = false;
    const sent: Alert[] = [];
    const send = async (a: Alert): Promise<void> => {
      if (!online) throw new Error('not connected to the hub');
      sent.push(a);
    };
    const p = publisher(send, 0, { maxPending: 2, maxPendingSilence: 2 });
    p.restore();
    await readings(p, 'apart-quiet', 3);
    tick(MINUTE);
    for (let i = 0; i < 3; i++) await spike(p, 'apart-busy'); // heard, and alerted, all along
    p.checkSilence();
    for (let i = 0; i < 3; i++) await spike(p, 'apart-busy');
    await p.idle();
    expect(p.status()).toMatchObject({ pending: 3, dropped: 4, silentPumps: { 'apart-quiet': { alerted: true } } });
    online = true;
    p.flush();
    await p.idle();
    // The busy pump's raise stays (a full list drops repeats first: dropped-raises.ts), its newest repeat too.
    expect(sent.map((a) => [a.kind, a.pumpId])).toEqual([['anomaly', 'apart-busy'], ['pump-silent', 'apart-quiet'], ['anomaly', 'apart-busy']]);
    expect(sent[0]!.episode).toBe(sent[0]!.seq);
  });

  it('forgets a pump alerted silent and then out of service for over 7 days, while running and at a restart: no longer silent, and followed again as a new pump once it sends', async () => {
    const sent: Alert[] = [];
    const p = publisher(async (a) => void sent.push(a));
    p.restore();
    await readings(p, 'retired-1', 3);
    await readings(p, 'retired-2', 3);
    tick(MINUTE);
    p.checkSilence();
    await p.idle();
    expect(p.status()).toMatchObject({ pumpsSilent: 2 });
    // retired-2 sends once more (its silence begins a minute later); 7 days pass for retired-1
    await readings(p, 'retired-2', 1);
    tick(7 * DAY - MINUTE);
    p.checkSilence();
    await p.idle();
    expect(p.status().silentPumps).toMatchObject({ 'retired-1': { alerted: true }, 'retired-2': { alerted: true } });
    tick(1);
    p.checkSilence();
    await p.idle();
    expect(p.status()).toMatchObject({ pumpsSilent: 1, silentPumps: { 'retired-2': { alerted: true } } });
    expect(Object.keys(JSON.parse(buffer.getMeta('alerts.silent')!))).toEqual(['retired-2']);
    expect(sent.map((a) => [a.kind, a.pumpId])).toEqual([['pump-silent', 'retired-1'], ['pump-silent', 'retired-2'], ['pump-resumed', 'retired-2'], ['pump-silent', 'retired-2']]);
    sent.length = 0;

    // A restart a day later: retired-2 was last heard over 7 days before (alerted, stored so)
    now += DAY;
    mono = 0;
    const after = publisher(async (a) => void sent.push(a));
    after.restore();
    expect(after.status()).toMatchObject({ pumpsSilent: 0, silentPumps: {} });
    expect(JSON.parse(buffer.getMeta('alerts.silent')!)).toEqual({});
    tick(10 * MINUTE);
    after.checkSilence();
    // back in service: followed anew, silent again after the setting
    await readings(after, 'retired-1', 3, { ts: now });
    await after.idle();
    expect(sent).toEqual([]);
    tick(MINUTE);
    after.checkSilence();
    await after.idle();
    expect(sent.map((a) => [a.kind, a.pumpId, a.silence?.beganBeforeRestart])).toEqual([['pump-silent', 'retired-1', false]]);
  });

  it('with a buffer that opens after the start and a commit before any flush, restores the last run without that commit\'s rows: the pump-resumed carries the last reading before the silence and the readings missed', async () => {
    const sent: Alert[] = [];
    const first = publisher(async (a) => void sent.push(a));
    first.restore();
    const before = await readings(first, 'late-1', 10);
    tick(MINUTE);
    first.checkSilence();
    await first.idle();
    expect(sent.map((a) => [a.kind, a.pumpId])).toEqual([['pump-silent', 'late-1']]);
    const last = before.rows.at(-1)!;

    // The next run starts with its buffer closed; it opens later (agent/main.ts reopenBuffer)
    buffer.close();
    now += 10 * MINUTE;
    mono = 0;
    const after = publisher(async (a) => void sent.push(a));
    after.restore();
    buffer.open();
    // its first commit: late-1 back, 61 s of its own time after its last reading
    const back = await readings(after, 'late-1', 5, { ts: last.ts + 61_000 });
    await after.idle();
    expect(sent.slice(1)).toEqual([
      expect.objectContaining({
        kind: 'pump-resumed',
        pumpId: 'late-1',
        seq: back.seqs[0],
        silence: expect.objectContaining({ lastReading: { seq: before.seqs.at(-1), ts: iso(last.ts), receivedAt: iso(last.receivedAt) }, beganBeforeRestart: true, intervalSeconds: 1, missedReadings: 60 }),
      }),
    ]);
    expect(after.status()).toMatchObject({ pumpsSilent: 0 });
  });
});
