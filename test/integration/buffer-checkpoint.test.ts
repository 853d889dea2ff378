import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
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
