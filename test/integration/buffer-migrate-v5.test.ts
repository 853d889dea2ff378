/**
 * Migration 6 on buffers written by the schema-5 agent (per-row batch_id and synced). Schema 5
 * planned a batch from the *unplanned* rows of its pump, so a bulk batch planned after an
 * anomaly's batch, with readings arriving in between, spans it (bulk 1..200 around the anomaly's
 * 40..100). The fixture builds the schema-5 file with the shipped steps 1-5 and plans and marks
 * batches with the schema-5 planner's own statements (commit 69b7ff2^, buffer/batches.ts), so the
 * overlap is the one a real gateway carries; then today's store opens it and a real sync uploads to
 * Azurite.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../agent/logger.js';
import { SyncBatches } from '../../buffer/batches.js';
import { MIGRATIONS } from '../../buffer/migrations.js';
import { BufferStore } from '../../buffer/store.js';
import { readingsBlobName } from '../../sync/layout.js';
import { uploaderFor } from '../../sync/uploader.js';
import { SyncWorker } from '../../sync/worker.js';
import { decodeAllBlobs, startTestAzurite, type TestAzurite } from '../support/azurite.js';

const T0 = Date.UTC(2026, 10, 20, 10);
const DEVICE = 'gw-v5';
const namer = (pumpId: string, first: number, last: number, ts: number): string => readingsBlobName(pumpId, DEVICE, first, last, ts);

let az: TestAzurite;
let dir: string;
let path: string;
let containerNo = 0;

beforeAll(async () => {
  az = await startTestAzurite();
});
afterAll(async () => {
  await az?.dispose();
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pw-migrate-v5-'));
  path = join(dir, 'buffer.sqlite');
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

type BatchState = 'planned' | 'uploaded' | 'failed';

/** A schema-5 buffer as the schema-5 agent leaves it, with its statements for rows and batches. */
class V5File {
  readonly db: Database.Database;
  constructor(file: string) {
    this.db = new Database(file);
    this.db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (5);');
    for (const step of MIGRATIONS.slice(0, 5)) this.db.exec(step);
  }

  /** Rows from..to (inclusive) of one pump; `anomalyAt` is scored anomalous. */
  append(pumpId: string, from: number, to: number, anomalyAt = -1): void {
    const insert = this.db.prepare(
      `INSERT INTO readings (pump_id, ts, received_at, vals, score, anomaly, model_version, imputed) VALUES (?, ?, ?, ?, ?, ?, 'm-1', 0)`,
    );
    for (let i = from; i <= to; i++) insert.run(pumpId, T0 + i * 1000, T0 + i * 1000, JSON.stringify({ Pressure: i }), i === anomalyAt ? 9 : 0.1, i === anomalyAt ? 1 : 0);
  }

  /**
   * Schema 5's plan: the unplanned rows of `pumpId` from `fromSeq` on (the planner took them up to
   * its limits; here all of them), persisted with the bounds of the first and last and marked.
   */
  plan(pumpId: string, fromSeq: number, priority: number): number {
    const rows = this.db.prepare('SELECT seq, ts FROM readings WHERE pump_id = ? AND seq >= ? AND batch_id IS NULL ORDER BY seq').all(pumpId, fromSeq) as Array<{ seq: number; ts: number }>;
    const first = rows[0]!;
    const last = rows[rows.length - 1]!;
    return this.db.transaction(() => {
      const id = Number(
        this.db
          .prepare(`INSERT INTO sync_batches (pump_id, first_seq, last_seq, row_count, blob_name, priority, state, created_at) VALUES (?, ?, ?, ?, ?, ?, 'planned', ?)`)
          .run(pumpId, first.seq, last.seq, rows.length, namer(pumpId, first.seq, last.seq, first.ts), priority, T0).lastInsertRowid,
      );
      const marked = this.db.prepare('UPDATE readings SET batch_id = ? WHERE pump_id = ? AND seq BETWEEN ? AND ? AND batch_id IS NULL').run(id, pumpId, first.seq, last.seq).changes;
      expect(marked).toBe(rows.length);
      return id;
    })();
  }

  /** Schema 5's markUploaded / markFailed. */
  mark(id: number, state: BatchState): void {
    if (state === 'planned') return;
    this.db.transaction(() => {
      this.db.prepare('UPDATE sync_batches SET state = ?, sha256 = ?, uploaded_at = ? WHERE id = ?').run(state, state === 'uploaded' ? 'f'.repeat(64) : null, T0, id);
      if (state === 'uploaded') this.db.prepare('UPDATE readings SET synced = 1 WHERE batch_id = ? AND synced = 0').run(id);
    })();
  }

  close(): void {
    this.db.close();
  }
}

/**
 * Pump P: rows 1..100 with an anomaly at 50, planned first with 10 rows of context (40..100);
 * then rows 101..200 arrive and the bulk batch takes P's unplanned rows: 1..39 and 101..200,
 * bounds 1..200. Pump Q's rows 201..210 stay unplanned.
 */
function writeV5(anomaly: BatchState, bulk: BatchState): { anomalyId: number; bulkId: number } {
  const v5 = new V5File(path);
  v5.append('P', 1, 100, 50);
  const anomalyId = v5.plan('P', 40, 0);
  v5.mark(anomalyId, anomaly);
  v5.append('P', 101, 200);
  const bulkId = v5.plan('P', 1, 1);
  v5.mark(bulkId, bulk);
  v5.append('Q', 201, 210);
  const ranges = v5.db.prepare('SELECT first_seq AS f, last_seq AS l, row_count AS n FROM sync_batches ORDER BY id').all();
  expect(ranges).toEqual([{ f: 40, l: 100, n: 61 }, { f: 1, l: 200, n: 139 }]); // the overlap schema 5 wrote
  v5.close();
  return { anomalyId, bulkId };
}

const seqs = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, k) => from + k);

/** The rows of `store` in a planned (not uploaded) range, by the per-row view. */
function plannedRows(store: BufferStore): number[] {
  return (store.db.prepare(`SELECT v.seq FROM readings_sync_state v JOIN sync_batches b ON b.id = v.batch_id WHERE b.state <> 'uploaded' ORDER BY v.seq`).all() as Array<{ seq: number }>).map((r) => r.seq);
}

/** Syncs the whole buffer to a fresh container and returns every seq uploaded, one entry per line. */
async function syncAll(store: BufferStore): Promise<number[]> {
  const container = `v5-${++containerNo}`;
  const worker = new SyncWorker({
    buffer: store,
    uploader: () => uploaderFor({ target: { kind: 'connection-string', connectionString: az.connectionString, container }, createContainer: true }),
    deviceId: DEVICE,
    agentVersion: '0.0.0-test',
    settings: () => ({ intervalMs: 60_000, maxBytesPerSecond: 0, batchMaxRows: 50, batchMaxBytes: 1 << 20, anomalyContextRows: 10, backoff: { initialMs: 1000, maxMs: 8000, slowMs: 600_000 } }),
    logger: createLogger('silent'),
    encoderThread: null,
  });
  const result = await worker.runOnce();
  expect(result.failure).toBeNull();
  await worker.stop();
  const created = await az.container(container).exists();
  if (!created) return [];
  return (await decodeAllBlobs(az.container(container))).flatMap((b) => b.lines.map((l) => l.seq)).sort((a, b) => a - b);
}

describe('migration 6 on a schema-5 buffer whose bulk batch spans an anomaly batch', () => {
  it('both batches uploaded: nothing counts unsynced, nothing is planned or uploaded again', async () => {
    writeV5('uploaded', 'uploaded');
    const store = new BufferStore({ path, maxBytes: 2 ** 30 });
    store.open();
    try {
      expect(store.stats()).toMatchObject({ rows: 210, unsynced: 10 }); // Q's rows only (was -51: P's 40..100 counted synced twice)
      const state = store.db.prepare('SELECT count(*) AS n, sum(synced) AS synced FROM readings_sync_state').get();
      expect(state).toEqual({ n: 210, synced: 200 }); // one line per row (there were 261)
      expect(plannedRows(store)).toEqual([]);
      const ranges = store.db.prepare("SELECT first_seq AS f, last_seq AS l, row_count AS n, state FROM sync_batches ORDER BY first_seq").all();
      expect(ranges).toEqual([
        { f: 1, l: 39, n: 39, state: 'uploaded' },
        { f: 40, l: 100, n: 61, state: 'uploaded' },
        { f: 101, l: 200, n: 100, state: 'uploaded' },
      ]);
      expect(await syncAll(store)).toEqual(seqs(201, 210)); // P's rows went up under schema 5: not again (1..39 were)
      expect(store.stats().unsynced).toBe(0);
    } finally {
      store.close();
    }
  });

  it('anomaly uploaded, bulk still planned: the bulk rows are unsynced once, and a sync uploads each of them exactly once', async () => {
    writeV5('uploaded', 'planned');
    const store = new BufferStore({ path, maxBytes: 2 ** 30 });
    store.open();
    try {
      expect(store.stats()).toMatchObject({ rows: 210, unsynced: 149 }); // 139 of P's bulk batch, Q's 10
      expect(store.db.prepare('SELECT count(*) AS n FROM readings_sync_state').get()).toEqual({ n: 210 });
      // Its plan could not stay as a range without taking the anomaly's uploaded rows: it is dropped.
      expect(new SyncBatches(store).pending()).toBeNull();
      expect(await syncAll(store)).toEqual([...seqs(1, 39), ...seqs(101, 200), ...seqs(201, 210)]); // 40..100 were uploaded by schema 5
      expect(store.stats().unsynced).toBe(0);
    } finally {
      store.close();
    }
  });

  it('both still planned: the anomaly batch stays planned (its rows never evicted), and a sync uploads every row exactly once', async () => {
    writeV5('planned', 'planned');
    const store = new BufferStore({ path, maxBytes: 2 ** 30 });
    store.open();
    try {
      expect(store.stats()).toMatchObject({ rows: 210, unsynced: 210 });
      expect(plannedRows(store)).toEqual(seqs(40, 100));
      expect(new SyncBatches(store).pending()).toMatchObject({ firstSeq: 40, lastSeq: 100, rowCount: 61, blobName: namer('P', 40, 100, T0 + 40_000) });
      expect(await syncAll(store)).toEqual(seqs(1, 210));
      expect(store.stats().unsynced).toBe(0);
    } finally {
      store.close();
    }
  });

  it('anomaly failed (its name taken), bulk uploaded: the bulk rows stay synced around the failed range, which is tried again', async () => {
    writeV5('failed', 'uploaded');
    const store = new BufferStore({ path, maxBytes: 2 ** 30 });
    store.open();
    try {
      expect(store.stats()).toMatchObject({ rows: 210, unsynced: 71 }); // the anomaly's 61, Q's 10
      new SyncBatches(store).retryFailed(); // as the worker does at its start
      expect(plannedRows(store)).toEqual(seqs(40, 100));
      expect(await syncAll(store)).toEqual([...seqs(40, 100), ...seqs(201, 210)]);
      expect(store.stats().unsynced).toBe(0);
    } finally {
      store.close();
    }
  });

  it('forgets a schema-5 batch none of whose rows is left, and narrows one whose edge rows were evicted', () => {
    const v5 = new V5File(path);
    v5.append('P', 1, 30);
    const gone = v5.plan('P', 1, 1);
    v5.mark(gone, 'uploaded');
    v5.db.prepare('DELETE FROM readings WHERE seq <= 30').run(); // evicted as synced
    v5.append('P', 31, 60);
    const edge = v5.plan('P', 31, 1);
    v5.mark(edge, 'uploaded');
    v5.db.prepare('DELETE FROM readings WHERE seq <= 40').run();
    v5.close();
    const store = new BufferStore({ path, maxBytes: 2 ** 30 });
    store.open();
    try {
      expect(store.db.prepare('SELECT id, first_seq AS f, last_seq AS l, row_count AS n FROM sync_batches').all()).toEqual([{ id: edge, f: 41, l: 60, n: 20 }]);
      expect(store.stats()).toMatchObject({ rows: 20, unsynced: 0 });
    } finally {
      store.close();
    }
  });
});
