import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SyncBatches } from '../../buffer/batches.js';
import { BufferError } from '../../buffer/errors.js';
import { MIGRATIONS } from '../../buffer/migrations.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';

const T0 = Date.UTC(2026, 10, 23, 10);
const BIG = 1 << 30;
const LIMITS = { maxRows: 10_000, maxBytes: 1 << 30, anomalyContextRows: 0 };
const namer = (p: string, a: number, b: number): string => `readings/${p}/${a}-${b}.jsonl.gz`;

function reading(pumpId: string, i: number, over: Partial<PredictionRow> = {}): PredictionRow {
  return {
    pumpId,
    ts: T0 + i * 1000,
    receivedAt: T0 + i * 1000 + 7,
    values: { Pressure: (i % 100) / 100, Flow: i * 0.5, Temperature: 20 + (i % 7) },
    score: 0.1,
    anomaly: false,
    modelVersion: 'v1',
    imputed: false,
    unscoredReason: null,
    ...over,
  };
}

const rows = (pumpId: string, from: number, n: number): PredictionRow[] =>
  Array.from({ length: n }, (_, k) => reading(pumpId, from + k));

function expectBufferError(fn: () => unknown, code: string): BufferError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(BufferError);
    expect((err as BufferError).code).toBe(code);
    return err as BufferError;
  }
  throw new Error(`expected a BufferError ${code}, but nothing was thrown`);
}

function sqlCount(store: BufferStore, sql: string): number {
  return (store.db.prepare(sql).get() as { n: number }).n;
}

describe('BufferStore on a real SQLite file', () => {
  let dir: string;
  let path: string;
  const open: BufferStore[] = [];
  const openStore = (opts: { maxBytes?: number; rejectedRawMaxChars?: number } = {}): BufferStore => {
    const store = new BufferStore({ path, maxBytes: opts.maxBytes ?? BIG, rejectedRawMaxChars: opts.rejectedRawMaxChars });
    store.open();
    open.push(store);
    return store;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pw-buffer-store-'));
    path = join(dir, 'nested', 'folder', 'buffer.db');
  });
  afterEach(() => {
    for (const s of open.splice(0)) s.close();
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });

  it('creates the file and its folder with the newest schema, in WAL mode with synchronous=FULL', () => {
    const store = openStore();
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(store.db.pragma('synchronous', { simple: true })).toBe(2); // FULL
    expect(sqlCount(store, 'SELECT version AS n FROM schema_version')).toBe(MIGRATIONS.length);
    const names = (store.db.prepare("SELECT name FROM sqlite_master WHERE type IN ('table','index')").all() as { name: string }[]).map((r) => r.name);
    expect(names).toEqual(expect.arrayContaining(['readings', 'rejected', 'counters', 'meta', 'sync_batches', 'readings_pump_seq', 'sync_batches_pump_range']));
    // Every index on readings is paid by every insert: sync state lives in sync_batches' ranges.
    for (const gone of ['readings_unplanned', 'readings_unsynced_seq', 'readings_unplanned_seq', 'readings_unplanned_anomalies', 'readings_batch']) {
      expect(names).not.toContain(gone);
    }
    expect(store.stats()).toMatchObject({ rows: 0, unsynced: 0, rejected: 0, oldestUnsyncedTs: null, maxBytes: BIG });
  });

  it('shows the checkpoint thread\'s last failure in its stats (nothing else would say it)', () => {
    let failure: string | null = null;
    const store = new BufferStore({ path, maxBytes: BIG, startCheckpoints: () => ({ stop: () => {}, error: () => failure }) });
    store.open();
    open.push(store);
    expect(store.stats().checkpointError).toBeNull();
    failure = 'ERR_WORKER_OUT_OF_MEMORY: the checkpoint thread ran out of its heap';
    expect(store.stats().checkpointError).toBe(failure);
  });

  it('migrates an existing empty file', () => {
    openStore().close();
    rmSync(path);
    writeFileSync(path, '');
    const store = openStore();
    expect(sqlCount(store, 'SELECT version AS n FROM schema_version')).toBe(MIGRATIONS.length);
    expect(store.appendBatch(rows('pump-1', 0, 3))).toEqual([1, 2, 3]);
  });

  it('reopens an up-to-date buffer without touching its schema or its rows', () => {
    const first = openStore();
    first.appendBatch(rows('pump-1', 0, 5));
    const schema = first.db.prepare('SELECT sql FROM sqlite_master ORDER BY name').all();
    first.close();
    for (let k = 0; k < 3; k++) {
      const again = openStore();
      expect(again.db.prepare('SELECT sql FROM sqlite_master ORDER BY name').all()).toEqual(schema);
      expect(sqlCount(again, 'SELECT count(*) AS n FROM schema_version')).toBe(1);
      expect(again.stats().rows).toBe(5);
      again.close();
    }
  });

  /** A buffer file at `path` as the first agent (schema 1) made it, open for rows to be put in. */
  const versionOneFile = (): Database.Database => {
    openStore().close(); // creates the folder
    rmSync(path);
    const db = new Database(path);
    db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);');
    db.exec(MIGRATIONS[0]!);
    return db;
  };

  it('migrates a version-1 buffer to the newest schema, keeping its rows and sequence', () => {
    const db = versionOneFile();
    db.prepare(`INSERT INTO readings (pump_id, ts, received_at, vals, imputed) VALUES ('pump-1', ?, ?, '{"Pressure":1}', 0)`).run(T0, T0);
    db.close();
    const store = openStore();
    expect(sqlCount(store, 'SELECT version AS n FROM schema_version')).toBe(MIGRATIONS.length);
    expect(sqlCount(store, "SELECT count(*) AS n FROM sqlite_master WHERE name = 'sync_batches_pump_range'")).toBe(1);
    expect(store.stats()).toMatchObject({ rows: 1, unsynced: 1, oldestUnsyncedTs: T0 });
    expect(store.appendBatch(rows('pump-1', 1, 1))).toEqual([2]);
  });

  it('gives a buffer made before buffer ids one at its first open, and keeps a file\'s id for its life', () => {
    const db = versionOneFile();
    db.close();
    const store = openStore();
    const id = store.bufferId();
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    store.close();
    expect(openStore().bufferId()).toBe(id);
    for (const s of open.splice(0)) s.close();
    rmSync(path);
    expect(openStore().bufferId()).not.toBe(id); // a new file, a new id
  });

  it('carries per-row sync state (schema 5) over to ranges (schema 6): synced stays synced, planned stays planned', () => {
    openStore().close();
    rmSync(path);
    const db = new Database(path);
    db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (5);');
    for (const step of MIGRATIONS.slice(0, 5)) db.exec(step);
    const insert = db.prepare(`INSERT INTO readings (pump_id, ts, received_at, vals, imputed, batch_id, synced) VALUES (?, ?, ?, '{"Pressure":1}', 0, ?, ?)`);
    const batch = db.prepare(`INSERT INTO sync_batches (pump_id, first_seq, last_seq, row_count, blob_name, priority, state, created_at) VALUES (?, ?, ?, ?, ?, 1, ?, 0)`);
    batch.run('pump-1', 1, 5, 3, 'b1', 'uploaded'); // pump-1's rows 1, 3, 5: synced
    batch.run('pump-1', 7, 7, 1, 'b2', 'planned'); // pump-1's row 7: planned, not yet uploaded
    for (let seq = 1; seq <= 8; seq++) {
      const pump = seq % 2 === 1 ? 'pump-1' : 'pump-2';
      const batchId = pump === 'pump-1' ? (seq <= 5 ? 1 : 2) : null;
      insert.run(pump, T0 + seq * 1000, T0, batchId, batchId === 1 ? 1 : 0);
    }
    db.close();
    const store = openStore();
    expect(store.stats()).toMatchObject({ rows: 8, unsynced: 5, oldestUnsyncedTs: T0 + 2000 });
    const state = store.db.prepare('SELECT seq, batch_id AS batchId, synced FROM readings_sync_state ORDER BY seq').all();
    expect(state).toEqual([
      { seq: 1, batchId: 1, synced: 1 }, { seq: 2, batchId: null, synced: 0 }, { seq: 3, batchId: 1, synced: 1 }, { seq: 4, batchId: null, synced: 0 },
      { seq: 5, batchId: 1, synced: 1 }, { seq: 6, batchId: null, synced: 0 }, { seq: 7, batchId: 2, synced: 0 }, { seq: 8, batchId: null, synced: 0 },
    ]);
    const batches = new SyncBatches(store);
    expect(batches.next(LIMITS, namer, T0)).toMatchObject({ id: 2, firstSeq: 7, lastSeq: 7 }); // the planned one first
    batches.markUploaded(batches.pending()!, 'x', T0);
    expect(batches.next(LIMITS, namer, T0)).toMatchObject({ pumpId: 'pump-2', firstSeq: 2, lastSeq: 8, rowCount: 4 });
  });

  it('refuses a schema version newer than it knows with PW_BUFFER_SCHEMA_NEWER and leaves the file untouched', () => {
    openStore().close();
    const db = new Database(path);
    db.prepare('UPDATE schema_version SET version = ?').run(MIGRATIONS.length + 7);
    // As its agent leaves it: marked for agents of its own schema (buffer-openable-from.test.ts has the other marks).
    db.prepare("UPDATE meta SET value = ? WHERE key = 'schema.openableFrom'").run(String(MIGRATIONS.length + 7));
    db.close();
    const err = expectBufferError(() => openStore(), 'PW_BUFFER_SCHEMA_NEWER');
    expect(err.message).toContain(path);
    expect(err.message).toContain(`version ${MIGRATIONS.length + 7} is newer than this agent knows (${MIGRATIONS.length})`);
    const check = new Database(path, { readonly: true });
    expect(check.prepare('SELECT version FROM schema_version').get()).toEqual({ version: MIGRATIONS.length + 7 });
    check.close();
  });

  it('numbers rows with increasing sequence numbers that continue after a reopen', () => {
    const first = openStore();
    expect(first.appendBatch(rows('pump-1', 0, 3))).toEqual([1, 2, 3]);
    expect(first.appendBatch(rows('pump-2', 3, 2))).toEqual([4, 5]);
    first.close();
    expect(openStore().appendBatch(rows('pump-1', 5, 2))).toEqual([6, 7]);
  });

  it('never reuses the sequence numbers of deleted newest rows, even across a reopen', () => {
    const first = openStore();
    first.appendBatch(rows('pump-1', 0, 10));
    const batches = new SyncBatches(first);
    const batch = batches.next(LIMITS, namer, T0)!;
    batches.markUploaded(batch, 'f'.repeat(64), T0);
    expect(batches.deleteSyncedBefore(Number.MAX_SAFE_INTEGER)).toBe(10);
    expect(first.stats()).toMatchObject({ rows: 0, unsynced: 0 });
    expect(first.appendBatch(rows('pump-1', 10, 1))).toEqual([11]);
    first.db.prepare('DELETE FROM readings WHERE seq = 11').run(); // the newest row gone, then a restart
    first.close();
    const again = openStore();
    expect(again.appendBatch(rows('pump-1', 11, 2))).toEqual([12, 13]);
  });

  it('commits a batch of 10 000 rows atomically: one row breaking NOT NULL stores nothing of that batch', () => {
    const store = openStore();
    store.appendBatch(rows('pump-1', 0, 5));
    const batch = rows('pump-1', 5, 10_000);
    batch[9_000] = { ...batch[9_000]!, pumpId: null as unknown as string };
    const err = expectBufferError(() => store.appendBatch(batch), 'PW_BUFFER_INVALID_ROW');
    expect(err.message).toContain('NOT NULL');
    expect(sqlCount(store, 'SELECT count(*) AS n FROM readings')).toBe(5);
    expect(store.stats()).toMatchObject({ rows: 5, unsynced: 5 });
    const good = rows('pump-1', 5, 10_000);
    const seqs = store.appendBatch(good);
    expect(seqs[0]).toBe(6);
    expect(seqs.at(-1)).toBe(10_005);
    expect(sqlCount(store, 'SELECT count(*) AS n FROM readings')).toBe(10_005);
    expect(store.stats()).toMatchObject({ rows: 10_005, unsynced: 10_005 });
  });

  it('reads back every field of a prediction row as it was committed', () => {
    const store = openStore();
    const full: PredictionRow = {
      pumpId: 'pump-9',
      ts: T0,
      receivedAt: T0 + 3,
      values: { Pressure: 0.38, Flow: null },
      score: 0.91,
      anomaly: true,
      modelVersion: '2026-11-01.3',
      imputed: true,
      unscoredReason: null,
      shadowScore: 0.5,
      shadowModelVersion: 'shadow-1',
      contributions: { Pressure: 0.8, Flow: 0.11 },
      threshold: 0.75,
    };
    const unscored: PredictionRow = { ...reading('pump-9', 1), score: null, anomaly: null, modelVersion: null, unscoredReason: 'no model' };
    const [a, b] = store.appendBatch([full, unscored]);
    expect(store.rowsBySeq(a!, b!)).toEqual([
      { ...full, seq: a },
      { ...unscored, seq: b, shadowScore: null, shadowModelVersion: null, contributions: null, threshold: null },
    ]);
    expect(store.predictions('pump-9', { limit: 1 }).map((r) => r.seq)).toEqual([b]);
    expect(store.predictions('pump-9', { sinceTs: T0, limit: 10 }).map((r) => r.seq)).toEqual([a, b]);
    expect(store.pumpIds()).toEqual(['pump-9']);
  });

  it('keeps rejected items with source, reason, time and their raw text truncated to the bound', () => {
    const store = openStore({ rejectedRawMaxChars: 100 });
    const long = 'x'.repeat(1_000);
    store.appendRejected([
      { source: 'http', raw: '{"pumpId":1}', reason: 'pumpId must be a string', receivedAt: T0 },
      { source: 'edge', raw: long, reason: 'payload is not JSON', receivedAt: T0 + 1 },
    ]);
    store.close();
    const again = openStore({ rejectedRawMaxChars: 100 });
    expect(again.stats().rejected).toBe(2);
    const [newest, oldest] = again.rejected(10);
    expect(oldest).toMatchObject({ source: 'http', raw: '{"pumpId":1}', reason: 'pumpId must be a string', receivedAt: T0 });
    expect(newest).toMatchObject({ source: 'edge', reason: 'payload is not JSON', receivedAt: T0 + 1 });
    expect(newest!.raw.startsWith('x'.repeat(100))).toBe(true);
    expect(newest!.raw).toContain('[truncated 900 chars]');
    expect(newest!.raw.length).toBeLessThan(200);
  });

  it('keeps meta values across a reopen', () => {
    const store = openStore();
    store.setMeta('activeModel:pump-1', 'v3');
    store.setMeta('activeModel:pump-1', 'v4');
    store.close();
    const again = openStore();
    expect(again.getMeta('activeModel:pump-1')).toBe('v4');
    expect(again.getMeta('missing')).toBeNull();
  });

  it('recounts rows, unsynced rows, rejected items and the oldest unsynced time from the file on open', () => {
    const store = openStore();
    store.appendBatch(rows('pump-1', 0, 30));
    store.appendRejected([{ source: 'http', raw: '{}', reason: 'empty', receivedAt: T0 }]);
    const batches = new SyncBatches(store);
    batches.markUploaded(batches.next({ ...LIMITS, maxRows: 12 }, namer, T0)!, 'a'.repeat(64), T0);
    store.close();
    const again = openStore();
    expect(again.stats()).toMatchObject({ rows: 30, unsynced: 18, rejected: 1, oldestUnsyncedTs: T0 + 12_000 });
  });

  it('opening twice keeps one handle, and use after close fails with PW_BUFFER_CLOSED', () => {
    const store = openStore();
    const db = store.db;
    store.open();
    expect(store.db).toBe(db);
    store.close();
    expectBufferError(() => store.appendBatch(rows('pump-1', 0, 1)), 'PW_BUFFER_CLOSED');
    expectBufferError(() => store.stats(), 'PW_BUFFER_CLOSED');
    expect(store.health().ok).toBe(false);
  });
});
