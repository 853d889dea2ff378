/**
 * What an anomaly's commit writes, on a real SQLite buffer: the b-trees whose pages one commit of
 * 100 readings of 50 pumps appends to the WAL (read from the frames' headers), and the schema-9
 * migration that took the anomalies' second pump-first index away from every commit.
 */
import Database from 'better-sqlite3';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SyncBatches } from '../../buffer/batches.js';
import { LabelStore } from '../../buffer/labels.js';
import { MIGRATIONS } from '../../buffer/migrations.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';

const T0 = Date.UTC(2026, 11, 1);
const FEATURES = ['Pressure', 'Temperature', 'Flow', 'Vibration_X', 'Vibration_Y', 'Current', 'Voltage', 'Speed'];
const PUMPS = 50;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pw-anomaly-commit-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

/** Reading `i` of a stream cycling over the pumps, as the generic model flags a pump at another duty point: every one an anomaly. */
function reading(i: number, anomaly: boolean): PredictionRow {
  const values: Record<string, number> = {};
  const contributions: Record<string, number> = {};
  for (const [f, name] of FEATURES.entries()) {
    values[name] = 10 + Math.round(Math.sin(i + f) * 1e4) / 1e3;
    contributions[name] = Math.round(Math.cos(i * 7 + f) * 1e6) / 1e6;
  }
  return {
    pumpId: `pump-${String(i % PUMPS).padStart(2, '0')}`,
    ts: T0 + i * 100,
    receivedAt: T0 + i * 100,
    values,
    score: anomaly ? 3.5 : 0.1,
    anomaly,
    modelVersion: 'v1',
    imputed: false,
    unscoredReason: null,
    contributions: anomaly ? contributions : null,
  };
}

/** Page numbers of the WAL frames from byte `from` on (a frame: a 24-byte header, its page number first, then the page). */
function framePages(wal: string, from: number, pageSize: number): number[] {
  const size = statSync(wal).size;
  const fd = openSync(wal, 'r');
  const header = Buffer.alloc(4);
  const pages: number[] = [];
  try {
    for (let at = from; at + 24 + pageSize <= size; at += 24 + pageSize) {
      readSync(fd, header, 0, 4, at);
      pages.push(header.readUInt32BE(0));
    }
  } finally {
    closeSync(fd);
  }
  return pages;
}

describe("an anomaly's commit", () => {
  it('writes pages of one pump-first anomaly index per pump, besides readings_pump_seq, and a few pages of the others', async () => {
    const path = join(dir, 'buffer.sqlite');
    // No checkpoint: the WAL only grows, so one commit's frames are the bytes it appended.
    const store = new BufferStore({ path, maxBytes: 1 << 30, startCheckpoints: () => ({ stop: () => {}, error: () => null, closed: () => true }) });
    store.open();
    try {
      store.db.pragma('wal_autocheckpoint = 0');
      let i = 0;
      const commit = (): void => void store.appendBatch(Array.from({ length: 100 }, () => reading(i++, true)));
      for (let k = 0; k < 200; k++) commit(); // 400 rows a pump: each pump-first index has several leaves a pump
      const before = statSync(`${path}-wal`).size;
      commit();
      const pageSize = store.db.pragma('page_size', { simple: true }) as number;
      const owner = new Map((store.db.prepare('SELECT pageno, name FROM dbstat').all() as Array<{ pageno: number; name: string }>).map((r) => [r.pageno, r.name]));
      const written = new Map<string, number>();
      for (const page of new Set(framePages(`${path}-wal`, before, pageSize))) {
        const name = owner.get(page) ?? `page ${page}`;
        written.set(name, (written.get(name) ?? 0) + 1);
      }
      // A pump-first index gets the commit's entries at one place per pump: about a page each.
      const perPump = [...written].filter(([, n]) => n >= PUMPS / 2).map(([name]) => name).sort();
      expect(perPump, JSON.stringify(Object.fromEntries(written))).toEqual(['readings_anomalies_pump_ts', 'readings_pump_seq']);
      // One appended to at its end: its last leaf, the path down to it, now and then a split.
      for (const name of ['readings_anomalies_ts', 'readings_anomalies_seq_pump']) expect(written.get(name), name).toBeLessThanOrEqual(6);
    } finally {
      store.close();
      await vi.waitFor(() => expect(store.checkpointsEnded()).toBe(true), { timeout: 10_000, interval: 20 });
    }
  });
});

describe('schema 9', () => {
  it('migrates a schema-8 buffer: its two old anomaly indexes go, the seq walk index holds every anomaly, and alerts and planning answer as before', async () => {
    const path = join(dir, 'v8.sqlite');
    const old = new Database(path);
    old.pragma('journal_mode = WAL');
    old.exec('CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version (version) VALUES (8)');
    for (const step of MIGRATIONS.slice(0, 8)) old.exec(step);
    const insert = old.prepare(
      `INSERT INTO readings (pump_id, ts, received_at, vals, score, anomaly, model_version, imputed, contributions) VALUES (?, ?, ?, ?, ?, ?, 'v1', 0, ?)`,
    );
    old.transaction(() => {
      for (let i = 0; i < 600; i++) {
        const r = reading(i, i % 3 === 0);
        insert.run(r.pumpId, r.ts, r.receivedAt, JSON.stringify(r.values), r.score, r.anomaly ? 1 : 0, r.contributions ? JSON.stringify(r.contributions) : null);
      }
    })();
    const indexes = (db: Database.Database): string[] =>
      (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'readings' AND sql IS NOT NULL ORDER BY name").pluck().all() as string[]);
    expect(indexes(old)).toEqual(['readings_anomalies', 'readings_anomalies_seq', 'readings_pump_seq']);
    old.close();

    const store = new BufferStore({ path, maxBytes: 1 << 30 });
    store.open();
    try {
      expect(store.db.prepare('SELECT version FROM schema_version').pluck().get()).toBe(MIGRATIONS.length);
      expect(indexes(store.db)).toEqual(['readings_anomalies_pump_ts', 'readings_anomalies_seq_pump', 'readings_anomalies_ts', 'readings_pump_seq']);
      expect(store.db.prepare('SELECT count(*) FROM readings INDEXED BY readings_anomalies_seq_pump WHERE anomaly = 1').pluck().get()).toBe(200);
      expect(store.db.prepare('PRAGMA integrity_check').pluck().get()).toBe('ok');
      // The rows of before: alerts newest first, the newest anomaly planned first with its context.
      const labels = new LabelStore(store);
      expect(labels.alerts({ limit: 3 }).map((r) => r.seq)).toEqual([598, 595, 592]);
      expect(labels.alerts({ pumpId: 'pump-00', limit: 2 }).map((r) => r.seq)).toEqual([451, 301]);
      expect(labels.alertsPerPump({ perPump: 1 })).toHaveLength(PUMPS);
      const batches = new SyncBatches(store);
      expect(batches.pick({ maxRows: 10, maxBytes: 1 << 20, anomalyContextRows: 2 })).toMatchObject({ pumpId: 'pump-47', from: 498, priority: 0 });
    } finally {
      store.close();
      await vi.waitFor(() => expect(store.checkpointsEnded()).toBe(true), { timeout: 10_000, interval: 20 });
    }
  });
});
