/**
 * The buffer's file deleted or replaced while the store has it open (a cleanup script, an operator
 * "resetting" the buffer, a volume swapped under the container). SQLite goes on writing into the
 * unlinked file, so before the fix every reading acknowledged since was lost at the next start,
 * and nothing said so. Real SQLite files in a temp dir, the store's own checkpoint thread.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HousekeepingThread } from '../../agent/housekeeping.js';
import { SyncBatches } from '../../buffer/batches.js';
import { BufferError } from '../../buffer/errors.js';
import { BufferReader } from '../../buffer/reader.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';

const T0 = Date.UTC(2026, 10, 23, 10);
const BIG = 1 << 30;

function rows(from: number, n: number): PredictionRow[] {
  return Array.from({ length: n }, (_, k) => ({
    pumpId: 'pump-1', ts: T0 + (from + k) * 1000, receivedAt: T0, values: { a: from + k }, score: 0.1, anomaly: false,
    modelVersion: 'v1', imputed: false, unscoredReason: null,
  }));
}

const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

/** Appends until a commit is taken (PW_BUFFER_MOVED is refused while the store sorts the file out); returns the refusals. */
async function appendUntilTaken(store: BufferStore, batch: PredictionRow[]): Promise<string[]> {
  const refused: string[] = [];
  for (let i = 0; i < 100; i++) {
    try {
      store.appendBatch(batch);
      return refused;
    } catch (err) {
      if (!(err instanceof BufferError)) throw err;
      refused.push(`${err.code}: ${err.message}`);
      await sleep(20);
    }
  }
  throw new Error(`never taken: ${refused.at(-1)}`);
}

function countRows(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM readings').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe('the buffer file deleted or replaced while open', () => {
  let dir: string;
  let path: string;
  let store: BufferStore;
  let events: string[];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pw-moved-'));
    path = join(dir, 'data', 'buffer.sqlite');
    events = [];
    store = new BufferStore({ path, maxBytes: BIG, onFileEvent: (m) => events.push(m) });
    store.open();
  });

  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('restores the file at the path with every acknowledged reading, says so, and keeps the sequence going', async () => {
    store.appendBatch(rows(0, 20));
    for (const f of readdirSync(join(dir, 'data'))) rmSync(join(dir, 'data', f));
    // Within the first check interval a commit may still go into the unlinked file: acknowledged, it must survive too.
    store.appendBatch(rows(20, 10));
    await sleep(300);
    const refused = await appendUntilTaken(store, rows(30, 5));
    for (const r of refused) expect(r).toMatch(/^PW_BUFFER_MOVED: .*buffer\.sqlite was deleted while the agent had it open/);
    expect(existsSync(path)).toBe(true);
    expect(events[0]).toMatch(/buffer\.sqlite was deleted while the agent had it open/);
    expect(events.at(-1)).toMatch(/was restored at the path with every row it had/);
    const health = store.health();
    expect(health.ok).toBe(false); // /healthz names it for a while after, so someone looks
    expect(health.error).toMatch(/^PW_BUFFER_MOVED: .*was deleted while open/);
    expect(store.stats()).toMatchObject({ rows: 35, unsynced: 35 });
    expect(store.stats().fileEvent).toMatch(/restored/);
    const seqs = store.appendBatch(rows(35, 1));
    expect(seqs).toEqual([36]);
    store.close();

    // What a restart finds: every reading that was answered as stored.
    const again = new BufferStore({ path, maxBytes: BIG });
    again.open();
    expect(again.stats().rows).toBe(36);
    expect(again.rowsBySeq(1, 36).map((r) => r.values.a)).toEqual(Array.from({ length: 36 }, (_, i) => i));
    again.close();
  });

  it("sync's reader (the encoder thread's connection) follows the store to the restored file, not the deleted one it had open, and not before the store", async () => {
    store.appendBatch(rows(0, 20));
    const reader = new BufferReader(path);
    try {
      reader.follow(store.openFile());
      expect(reader.range('pump-1', 1, 20)).toHaveLength(20);
      for (const f of readdirSync(join(dir, 'data'))) rmSync(join(dir, 'data', f));
      // Deleted, not yet restored: the file it has open is the only copy, and it goes on reading it.
      reader.follow(store.openFile());
      expect(reader.range('pump-1', 1, 20)).toHaveLength(20);
      await sleep(300);
      await appendUntilTaken(store, rows(20, 5));
      expect(events.at(-1)).toMatch(/restored at the path/);
      // Rows committed since the restore are only in the new file (before: none found, for good).
      reader.follow(store.openFile());
      expect(reader.range('pump-1', 21, 25).map((r) => r.seq)).toEqual([21, 22, 23, 24, 25]);
      expect(reader.candidates('pump-1', 1, null, 100)).toHaveLength(25);
    } finally {
      reader.close();
    }
  });

  it("sync's reader follows the store after only the write-ahead log was deleted (it failed with a disk I/O error on the log that was gone)", async () => {
    store.appendBatch(rows(0, 20));
    const reader = new BufferReader(path);
    try {
      expect(reader.range('pump-1', 1, 20)).toHaveLength(20);
      rmSync(`${path}-wal`);
      await sleep(300);
      await appendUntilTaken(store, rows(20, 5));
      reader.follow(store.openFile());
      expect(reader.range('pump-1', 1, 25).map((r) => r.seq)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
      store.appendBatch(rows(25, 5));
      reader.follow(store.openFile());
      expect(reader.candidates('pump-1', 1, null, 100)).toHaveLength(30);
    } finally {
      reader.close();
    }
  });

  it('restores with the housekeeping thread of the agent running the checkpoints, once its connection is closed', async () => {
    store.close();
    const thread = new HousekeepingThread({ checkpointIntervalMs: 50 });
    const agentStore = new BufferStore({ path, maxBytes: BIG, startCheckpoints: thread.startCheckpoints, onFileEvent: (m) => events.push(m) });
    try {
      agentStore.open();
      agentStore.appendBatch(rows(0, 20));
      for (const f of readdirSync(join(dir, 'data'))) rmSync(join(dir, 'data', f));
      expect(agentStore.health().error).toMatch(/^PW_BUFFER_MOVED: /);
      // Nothing but the store's own wait for the thread's connection finishes it: no reading arrives meanwhile.
      for (let i = 0; i < 100 && !existsSync(path); i++) await sleep(20);
      expect(existsSync(path)).toBe(true);
      expect(events.at(-1)).toMatch(/restored at the path/);
      agentStore.appendBatch(rows(20, 1));
      expect(agentStore.stats().rows).toBe(21);
      await sleep(200); // a few of the thread's checkpoints on the new file: the new -wal stays
      expect(existsSync(`${path}-wal`)).toBe(true);
      expect(agentStore.health().error).toMatch(/^PW_BUFFER_MOVED: .*restored/);
    } finally {
      agentStore.close();
      await thread.close();
    }
    expect(countRows(path)).toBe(21);
  });

  it('also restores when only the write-ahead log was deleted', async () => {
    store.appendBatch(rows(0, 20));
    rmSync(`${path}-wal`);
    rmSync(`${path}-shm`);
    expect(store.health().error).toMatch(/lost its write-ahead log|PW_BUFFER_MOVED/);
    await appendUntilTaken(store, rows(20, 5));
    store.close();
    expect(countRows(path)).toBe(25);
  });

  it('saves the rows only the deleted log held with one checkpoint, without copying the buffer (a kill during a copy lost them)', async () => {
    store.appendBatch(rows(0, 20));
    rmSync(`${path}-wal`);
    rmSync(`${path}-shm`);
    // A copy could not be made at all: the restore must not need one.
    mkdirSync(`${path}.restoring-partial/x`, { recursive: true });
    expect(store.health().error).toMatch(/lost its write-ahead log|PW_BUFFER_MOVED/);
    await appendUntilTaken(store, rows(20, 5));
    expect(events.at(-1)).toMatch(/the buffer was restored at the path with every row it had/);
    store.close();
    expect(countRows(path)).toBe(25);
    expect(existsSync(`${path}.restoring`)).toBe(false);
  });

  /**
   * Another buffer (a restored backup), filled by `fill`, moved into place over the open one; then
   * two rows appended until the store takes them (it has opened the backup). Returns what `fill` did.
   */
  async function replaceWithBackup<T>(fill: (backup: BufferStore) => T): Promise<T> {
    const other = join(dir, 'other', 'buffer.sqlite');
    mkdirSync(join(dir, 'other'));
    const backup = new BufferStore({ path: other, maxBytes: BIG });
    backup.open();
    const filled = fill(backup);
    backup.close();
    rmSync(`${path}-wal`);
    rmSync(`${path}-shm`);
    rmSync(path);
    renameSync(other, path);
    await sleep(300);
    await appendUntilTaken(store, rows(20, 2));
    return filled;
  }

  it('opens a file put in its place as it is, and keeps the rows it had in a copy beside it', async () => {
    store.appendBatch(rows(0, 20));
    await replaceWithBackup((backup) => backup.appendBatch(rows(1000, 3)));
    expect(events.at(-1)).toMatch(/was replaced by another file while open; the rows the agent had were kept in .*buffer\.sqlite\.replaced-/);
    expect(store.stats().rows).toBe(5); // the backup's 3 and the 2 new ones
    const kept = readdirSync(join(dir, 'data')).filter((f) => f.includes('.replaced-'));
    expect(kept).toHaveLength(1);
    expect(countRows(join(dir, 'data', kept[0]!))).toBe(20);
  });

  it('a batch uploaded (or dropped) while the file was replaced marks nothing in the new file: its batch of the same id is another one', async () => {
    const namer = (p: string, a: number, b: number): string => `readings/${p}/${a}-${b}.jsonl.gz`;
    const limits = { maxRows: 100, maxBytes: 1 << 24, anomalyContextRows: 0 };
    store.appendBatch(rows(0, 20));
    const batches = new SyncBatches(store);
    const uploading = batches.plan(limits, namer, T0)!; // its upload is under way when the file is replaced
    // The backup put in its place has a planned batch of its own, with the same id, other rows.
    const theirs = await replaceWithBackup((backup) => {
      backup.appendBatch(rows(1000, 3).map((r) => ({ ...r, pumpId: 'pump-9' })));
      return new SyncBatches(backup).plan(limits, namer, T0)!;
    });
    expect(theirs.id).toBe(uploading.id);
    expect(events.at(-1)).toMatch(/was replaced by another file while open/);

    // The upload ends: its marks must not land on the backup's batch, nor a drop of it (its rows unreadable).
    batches.dropPlan(uploading);
    batches.noteError(uploading, 'timeout');
    batches.markFailed(uploading, 'conflict');
    batches.markUploaded(uploading, 'e'.repeat(64), T0);
    expect(store.db.prepare('SELECT pump_id AS pumpId, state, error FROM sync_batches WHERE id = ?').get(theirs.id)).toEqual({ pumpId: 'pump-9', state: 'planned', error: null });
    expect(store.stats().unsynced).toBe(5); // the backup's 3 rows, still to upload, and the 2 new ones
    expect(batches.pending()).toMatchObject({ id: theirs.id, blobName: theirs.blobName });
  });

  it('finishes a restore the process did not live to finish at the next open', () => {
    store.appendBatch(rows(0, 20));
    store.close();
    // What a stop between the copy and the rename leaves: the finished copy, nothing at the path.
    renameSync(path, `${path}.restoring`);
    const again = new BufferStore({ path, maxBytes: BIG });
    again.open();
    expect(again.stats().rows).toBe(20);
    expect(again.stats().fileEvent).toMatch(/restored from .*buffer\.sqlite\.restoring at this start/);
    again.close();
  });

  it('removes an unfinished copy at the next open, and names a finished one left beside the file without failing health', () => {
    store.appendBatch(rows(0, 20));
    store.close();
    writeFileSync(`${path}.restoring-partial`, Buffer.alloc(1 << 20)); // a kill during the copy
    writeFileSync(`${path}.restoring`, Buffer.alloc(1 << 10)); // a finished copy, and a file put at the path first
    const said: string[] = [];
    const again = new BufferStore({ path, maxBytes: BIG, onFileEvent: (m) => said.push(m) });
    again.open();
    expect(existsSync(`${path}.restoring-partial`)).toBe(false);
    expect(existsSync(`${path}.restoring`)).toBe(true);
    expect(again.stats().rows).toBe(20);
    expect(again.stats().fileEvent).toMatch(/buffer\.sqlite\.restoring, a copy of a buffer deleted while open, is beside the file at the path; kept for an operator/);
    expect(said).toHaveLength(1);
    expect(again.health().ok).toBe(true);
    again.close();
  });

  it('refuses readings with PW_BUFFER_MOVED, naming the file, while the rows cannot be copied out', async () => {
    store.appendBatch(rows(0, 20));
    for (const f of readdirSync(join(dir, 'data'))) rmSync(join(dir, 'data', f));
    // The copy's place is taken by a folder that cannot be removed: the copy fails as on a full disk.
    mkdirSync(`${path}.restoring-partial/x`, { recursive: true });
    const health = store.health();
    expect(health.ok).toBe(false);
    expect(health.error).toMatch(/^PW_BUFFER_MOVED: .*buffer\.sqlite was deleted while the agent had it open: copying its rows out of the open file failed/);
    let refusal: unknown;
    try {
      store.appendBatch(rows(20, 1));
    } catch (err) {
      refusal = err;
    }
    expect(refusal).toBeInstanceOf(BufferError);
    expect((refusal as BufferError).code).toBe('PW_BUFFER_MOVED');
    expect(existsSync(path)).toBe(false);
  });
});
