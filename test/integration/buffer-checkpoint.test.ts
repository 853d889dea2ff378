import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HousekeepingThread } from '../../agent/housekeeping.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';

let dir: string | null = null;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  dir = null;
});

const row = (i: number): PredictionRow => ({
  pumpId: `pump-${i % 5}`, ts: 1_700_000_000_000 + i, receivedAt: 1_700_000_000_000 + i,
  values: { Pressure: i, Flow: i / 2, Current: 1.5 }, score: 0.1, anomaly: false, modelVersion: 'v1', imputed: false, unscoredReason: null,
});

describe('WAL checkpoints beside the writer', () => {
  it('copies committed pages into the database file from its own thread, below the autocheckpoint threshold', async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-ckpt-'));
    const path = join(dir, 'buffer.sqlite');
    const store = new BufferStore({ path, maxBytes: 1 << 30 });
    store.open();
    try {
      const before = statSync(path).size;
      for (let b = 0; b < 10; b++) store.appendBatch(Array.from({ length: 2000 }, (_, i) => row(b * 2000 + i)));
      const wal = statSync(`${path}-wal`).size;
      // ~6 MB of WAL: far below the main connection's 64 MB safety net, so only the worker checkpoints.
      expect(wal).toBeGreaterThan(2 * 1024 * 1024);
      expect(wal).toBeLessThan(16384 * 4096);
      let size = before;
      for (let i = 0; i < 50 && size < 2 * 1024 * 1024; i++) {
        await new Promise((r) => setTimeout(r, 100));
        size = statSync(path).size;
      }
      expect(size).toBeGreaterThan(2 * 1024 * 1024);
      expect(store.stats().rows).toBe(20_000);
    } finally {
      store.close();
    }
  });
});

describe('a clean close', () => {
  // Before, close() only asked the checkpoint thread to close its connection and closed its own at
  // once: the thread's then closed last (right after close() the -wal was there in 16 rounds of 20),
  // and anything done to the file in between raced it.
  it.each([
    ['its own checkpoint thread', false],
    ["the agent's housekeeping thread", true],
  ])('closes the checkpoint connection first, so the main one closes last and the -wal is gone when close() returns (%s)', async (_, shared) => {
    dir = mkdtempSync(join(tmpdir(), 'pw-ckpt-close-'));
    const housekeeping = shared ? new HousekeepingThread() : null;
    const warnings: string[] = [];
    try {
      for (let round = 0; round < 5; round++) {
        const path = join(dir, `buffer-${round}.sqlite`);
        const store = new BufferStore({ path, maxBytes: 1 << 30, onWarning: (m) => warnings.push(m), ...(housekeeping ? { startCheckpoints: housekeeping.startCheckpoints } : {}) });
        store.open();
        store.appendBatch(Array.from({ length: 500 }, (_, i) => row(round * 1000 + i)));
        await new Promise((r) => setTimeout(r, 20)); // the checkpoint connection is open by now
        store.appendBatch([row(round * 1000 + 999)]);
        expect(existsSync(`${path}-wal`)).toBe(true);
        store.close();
        expect(existsSync(`${path}-wal`), `round ${round}`).toBe(false);
        expect(store.checkpointsEnded(), `round ${round}`).toBe(true);
        store.open(); // and nothing was lost
        expect(store.stats().rows).toBe(501);
        store.close();
      }
      expect(warnings).toEqual([]);
    } finally {
      await housekeeping?.close();
    }
  });
});
