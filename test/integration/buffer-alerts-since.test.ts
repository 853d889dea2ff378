/**
 * GET /alerts on a real SQLite buffer: the alerts are read newest first by reading time down the ts
 * indexes made at open, exactly the rows answered whatever `since` matches (never every alert older
 * than `since`), with the same rows, order and limits as a filter of every alert would give.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabelStore } from '../../buffer/labels.js';
import { OPEN_INDEXES } from '../../buffer/migrations.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow, StoredRow } from '../../buffer/types.js';
import { queryPlans } from '../support/query-plans.js';

const T0 = Date.UTC(2026, 10, 23);
const PUMPS = ['pump-a', 'pump-b', 'pump-c'];
let dir: string;
let store: BufferStore;
let labels: LabelStore;
/** Every row stored, with its seq: what the answers are checked against. */
let all: StoredRow[] = [];

function row(pumpId: string, ts: number, anomaly: boolean): PredictionRow {
  return { pumpId, ts, receivedAt: ts, values: { Pressure: 1 }, score: anomaly ? 2 : 0.1, anomaly, modelVersion: 'v1', imputed: false, unscoredReason: null };
}

/** Newest first by reading time, the later committed first among equal times. */
const newestFirst = (a: StoredRow, b: StoredRow): number => b.ts - a.ts || b.seq - a.seq;

/** The newest `limit` alerts with ts ≥ since, of one pump or all: the meaning of the query, by brute force. */
function expectedRows(pumpId: string | undefined, sinceTs: number, limit: number): StoredRow[] {
  return all
    .filter((r) => r.anomaly === true && r.ts >= sinceTs && (pumpId === undefined || r.pumpId === pumpId))
    .sort(newestFirst)
    .slice(0, limit);
}
const expected = (pumpId: string | undefined, sinceTs: number, limit: number): number[] => expectedRows(pumpId, sinceTs, limit).map((r) => r.seq);
/** The perPump answer by brute force: each pump's newest, merged newest first. */
const expectedPerPump = (sinceTs: number, perPump: number): number[] =>
  PUMPS.flatMap((p) => expectedRows(p, sinceTs, perPump))
    .sort(newestFirst)
    .map((r) => r.seq);

const plans = (run: () => unknown): string[] => queryPlans(store.db, run);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-alerts-since-'));
  store = new BufferStore({ path: join(dir, 'buffer.sqlite'), maxBytes: 1024 ** 3 });
  store.open();
  labels = new LabelStore(store);
  // 6 000 readings a second apart, every other one an anomaly; every 97th arrives late (its ts an
  // hour back), so ts and seq do not run in the same order.
  const rows: PredictionRow[] = [];
  for (let i = 0; i < 6000; i++) rows.push(row(PUMPS[i % 3]!, T0 + i * 1000 - (i % 97 === 0 ? 3_600_000 : 0), i % 2 === 0));
  const seqs = store.appendBatch(rows);
  all = rows.map((r, i) => ({ ...r, seq: seqs[i]! }));
});
afterAll(() => {
  store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('alerts since a time', () => {
  const newest = T0 + 5999 * 1000;
  const cases: Array<[string, number]> = [
    ['after every alert', newest + 1],
    ['the last minute', newest - 60_000],
    ['the last 20 minutes', newest - 1_200_000],
    ['an hour back (late readings too)', newest - 3_600_000],
    ['before every alert', 0],
  ];

  it('answers the newest alerts with ts ≥ since, newest first by reading time, within the limit, of one pump or all', () => {
    for (const [what, sinceTs] of cases) {
      for (const limit of [1, 7, 50, 1000]) {
        expect(labels.alerts({ sinceTs, limit }).map((r) => r.seq), `${what}, limit ${limit}`).toEqual(expected(undefined, sinceTs, limit));
        expect(labels.alerts({ pumpId: 'pump-b', sinceTs, limit }).map((r) => r.seq), `${what}, pump-b, limit ${limit}`).toEqual(expected('pump-b', sinceTs, limit));
        expect(labels.alertsPerPump({ sinceTs, perPump: limit }).map((r) => r.seq), `${what}, perPump ${limit}`).toEqual(expectedPerPump(sinceTs, limit));
      }
    }
    // without since, as before: the newest alerts whatever their time
    expect(labels.alerts({ limit: 5 }).map((r) => r.seq)).toEqual(expected(undefined, 0, 5));
    expect(labels.alertsPerPump({ perPump: 2 }).map((r) => r.seq)).toEqual(expectedPerPump(0, 2));
    // a whole row, not only its seq
    expect(labels.alerts({ sinceTs: newest - 60_000, limit: 1 })).toEqual([{ ...all.at(-2)!, contributions: null, shadowScore: null, shadowModelVersion: null, threshold: null }]);
  });

  it('lists a late reading\'s alert by its reading time, after newer readings committed before it', () => {
    // i = 5820: every 97th reading arrives an hour late; its alert is committed after those of the
    // hour before it, and listed among the alerts of its own time.
    const late = all[5820]!;
    expect(late.anomaly).toBe(true);
    const listed = labels.alerts({ pumpId: late.pumpId, limit: 1000 });
    expect(listed.map((r) => r.ts)).toEqual(listed.map((r) => r.ts).sort((a, b) => b - a));
    const at = listed.findIndex((r) => r.seq === late.seq);
    expect(listed.slice(0, at).filter((r) => r.seq < late.seq).length).toBeGreaterThan(500); // committed before it, newer readings
    expect(listed.slice(at + 1).every((r) => r.ts <= late.ts)).toBe(true);
  });

  it('reads the alerts it answers down the ts indexes, whatever since matches, never walking or sorting every alert', () => {
    // A scan of a table or index, or a sort; the one scan allowed is the first step of the pump
    // listing (ORDER BY pump_id LIMIT 1: one entry read).
    const walksEveryAlert = /^SCAN readings(?! USING COVERING INDEX readings_anomalies_pump_ts$)|TEMP B-TREE/m;
    for (const sinceTs of [newest + 1, newest - 60_000, 0]) {
      const queries = [
        ['all pumps', () => labels.alerts({ sinceTs, limit: 50 }), /SEARCH readings USING INDEX readings_anomalies_ts \(ts>\?\)/],
        ['one pump', () => labels.alerts({ pumpId: 'pump-a', sinceTs, limit: 1000 }), /SEARCH readings USING INDEX readings_anomalies_pump_ts \(pump_id=\? AND ts>\?\)/],
        ['per pump', () => labels.alertsPerPump({ sinceTs, perPump: 1000 }), /SEARCH readings USING INDEX readings_anomalies_pump_ts \(pump_id=\? AND ts>\?\)/],
      ] as const;
      for (const [what, run, index] of queries) {
        const planned = plans(run);
        expect(planned.join('\n'), what).toMatch(index);
        for (const plan of planned) expect(plan, what).not.toMatch(walksEveryAlert);
      }
    }
    // a page after a cursor seeks to it, ties of its time included: no page reads a time's alerts
    // again from their newest (thousands share a time when a sender's clock stands still)
    const cursor = { ts: newest - 60_000, seq: 3000 };
    const paged = [
      ['all pumps', () => labels.alerts({ limit: 50, before: cursor }), /readings_anomalies_ts \(ts=\? AND rowid<\?\)/],
      ['one pump', () => labels.alerts({ pumpId: 'pump-a', limit: 50, before: cursor }), /readings_anomalies_pump_ts \(pump_id=\? AND ts=\? AND rowid<\?\)/],
    ] as const;
    for (const [what, run, tie] of paged) {
      const planned = plans(run);
      expect(planned.join('\n'), what).toMatch(tie);
      for (const plan of planned) expect(plan, what).not.toMatch(walksEveryAlert);
    }
  });
});

describe('the ts indexes', () => {
  it('are made at open on a buffer that lacks them, without changing its schema version (an older agent still opens it)', () => {
    const path = join(dir, 'older.sqlite');
    const older = new BufferStore({ path, maxBytes: 1024 ** 3 });
    older.open();
    older.appendBatch([row('pump-a', T0, true)]);
    older.close();
    // as the release before left the file: the indexes not there
    const raw = new Database(path);
    for (const sql of OPEN_INDEXES) raw.exec(`DROP INDEX ${/INDEX IF NOT EXISTS (\w+)/.exec(sql)![1]}`);
    const version = (raw.prepare('SELECT version FROM schema_version').get() as { version: number }).version;
    raw.close();

    const again = new BufferStore({ path, maxBytes: 1024 ** 3 });
    again.open();
    const indexes = again.db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'readings_anomalies%ts'").pluck().all();
    expect(indexes.sort()).toEqual(['readings_anomalies_pump_ts', 'readings_anomalies_ts']);
    expect(again.db.prepare('SELECT version FROM schema_version').pluck().get()).toBe(version);
    expect(new LabelStore(again).alerts({ sinceTs: T0, limit: 10 }).map((r) => r.pumpId)).toEqual(['pump-a']);
    again.close();
  });
});
