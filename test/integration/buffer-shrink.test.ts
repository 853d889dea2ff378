/**
 * A lowered cap shrinks the buffer's files, not only the pages in use: before, evicted pages stayed
 * in the file as free pages, so after lowering the cap from 32 to 4 MiB (twin `buffer.maxBytes`,
 * or the environment at a restart) the file stayed at 20 MB while /status said 3.5 MB. Real SQLite
 * files; the store's own checkpoint thread runs the incremental vacuum.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Checkpointer } from '../../buffer/checkpointer.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';

const T0 = Date.UTC(2026, 10, 23, 10);
const MIB = 1024 * 1024;
/** What the files may pass the cap by: a commit (here one reading) before eviction and the checkpoint. */
const SLACK = 64 * 1024;

function reading(i: number): PredictionRow {
  const values: Record<string, number> = {};
  for (let k = 0; k < 20; k++) values[`Sensor_${k}`] = Math.round(((i * 7919 + k * 104729) % 100_000) * 1.234567) / 1000;
  return { pumpId: 'pump-1', ts: T0 + i * 1000, receivedAt: T0 + i * 1000, values, score: 0.2, anomaly: false, modelVersion: 'v1', imputed: false, unscoredReason: null };
}

const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));
const size = (p: string): number => {
  try {
    return statSync(p).size;
  } catch {
    return 0;
  }
};

describe('a lowered cap shrinks the buffer file', () => {
  let dir: string;
  let path: string;
  let next = 0;
  const files = (): number => size(path) + size(`${path}-wal`) + size(`${path}-shm`);
  const fill = (store: BufferStore, n: number): void => {
    for (let done = 0; done < n; done += 1000) store.appendBatch(Array.from({ length: 1000 }, () => reading(next++)));
  };
  /** Polls (the checkpoint thread works every 500 ms) until the files are within `cap`; returns how long it took. */
  async function waitUnder(store: BufferStore, cap: number, timeoutMs: number): Promise<number> {
    const start = Date.now();
    while (files() > cap + SLACK && Date.now() - start < timeoutMs) {
      store.appendBatch([reading(next++)]); // a trickle of readings, as in the field
      await sleep(100);
    }
    return Date.now() - start;
  }

  /** Fills 40 000 readings under a 32 MiB cap, lowers it to 4 MiB live, and waits for the files (see waitUnder). */
  async function lowerCapTo4MiB(store: BufferStore): Promise<number> {
    fill(store, 40_000);
    expect(size(path)).toBeGreaterThan(12 * MIB);
    store.setMaxBytes(4 * MIB);
    store.appendBatch([reading(next++)]);
    return waitUnder(store, 4 * MIB, 30_000);
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pw-shrink-'));
    path = join(dir, 'buffer.sqlite');
    next = 0;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('brings the files under a cap lowered live within seconds, and /status tells file bytes from pages in use', { timeout: 60_000 }, async () => {
    const store = new BufferStore({ path, maxBytes: 32 * MIB });
    store.open();
    try {
      const took = await lowerCapTo4MiB(store);
      expect(files()).toBeLessThanOrEqual(4 * MIB + SLACK);
      expect(took).toBeLessThan(30_000);
      const s = store.stats();
      expect(s.evicted.unsynced).toBeGreaterThan(0);
      expect(s.fileBytes).toBe(size(path));
      expect(s.fileBytes).toBeGreaterThanOrEqual(s.bytes);
      expect(s.fileBytes).toBeLessThanOrEqual(4 * MIB + SLACK);
    } finally {
      store.close();
    }
  });

  // PUMPWATCH_CHECKPOINT_INTERVAL_MS spaces checkpoints out (SD-card wear); shrinking must not wait
  // for them: at a 30 s interval, 8 MiB a tick would take minutes to give back a lowered cap's room.
  it('shrinks as fast with checkpoints an hour apart: shrinking looks every 500 ms whatever the interval', { timeout: 60_000 }, async () => {
    const store = new BufferStore({
      path, maxBytes: 32 * MIB,
      startCheckpoints: (p, shrink) => {
        const c = new Checkpointer(p, 3_600_000, shrink);
        c.start();
        return c;
      },
    });
    store.open();
    try {
      await lowerCapTo4MiB(store);
      expect(files()).toBeLessThanOrEqual(4 * MIB + SLACK);
    } finally {
      store.close();
    }
  });

  it('converts a file made without incremental vacuum (before 2026-12-05) and shrinks it under a cap lowered at restart', { timeout: 60_000 }, async () => {
    const first = new BufferStore({ path, maxBytes: 32 * MIB });
    first.open();
    fill(first, 40_000);
    first.close();
    // As an older agent left it: no auto_vacuum, so freed pages could only be reused, never given back.
    const raw = new Database(path);
    raw.pragma('auto_vacuum = NONE');
    raw.exec('VACUUM');
    expect(raw.pragma('auto_vacuum', { simple: true })).toBe(0);
    raw.close();
    expect(size(path)).toBeGreaterThan(12 * MIB);

    const store = new BufferStore({ path, maxBytes: 4 * MIB });
    store.open();
    try {
      store.appendBatch([reading(next++)]);
      await waitUnder(store, 4 * MIB, 30_000);
      expect(files()).toBeLessThanOrEqual(4 * MIB + SLACK);
      expect(store.db.pragma('auto_vacuum', { simple: true })).toBe(2);
      expect(store.stats().rows).toBeGreaterThan(1000); // evicted down to the cap, not emptied
    } finally {
      store.close();
    }
  });
});
