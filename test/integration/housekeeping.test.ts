import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HousekeepingThread } from '../../agent/housekeeping.js';
import { SystemHealth } from '../../agent/system-health.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';

let dir: string | null = null;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  if (dir) rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  dir = null;
});

const row = (i: number): PredictionRow => ({
  pumpId: `pump-${i % 5}`, ts: 1_700_000_000_000 + i, receivedAt: 1_700_000_000_000 + i,
  values: { Pressure: i, Flow: i / 2, Current: 1.5 }, score: 0.1, anomaly: false, modelVersion: 'v1', imputed: false, unscoredReason: null,
});

/** A buffer whose checkpoints run on `thread`, with ~6 MB of WAL waiting to be checkpointed. */
function bufferOn(thread: HousekeepingThread): { store: BufferStore; path: string } {
  dir = mkdtempSync(join(tmpdir(), 'pw-housekeeping-'));
  const path = join(dir, 'buffer.sqlite');
  const store = new BufferStore({ path, maxBytes: 1 << 30, startCheckpoints: thread.startCheckpoints });
  store.open();
  cleanups.push(() => store.close());
  for (let b = 0; b < 10; b++) store.appendBatch(Array.from({ length: 2000 }, (_, i) => row(b * 2000 + i)));
  // Far below the main connection's autocheckpoint (16384 pages): only the thread checkpoints this.
  expect(statSync(`${path}-wal`).size).toBeLessThan(16384 * 4096);
  return { store, path };
}

/** Waits (up to 10 s) for the WAL's pages to reach the database file: a checkpoint ran. */
async function checkpointed(path: string): Promise<number> {
  let size = statSync(path).size;
  for (let i = 0; i < 100 && size < 2 * 1024 * 1024; i++) {
    await new Promise((r) => setTimeout(r, 100));
    size = statSync(path).size;
  }
  return size;
}

describe('the housekeeping thread (WAL checkpoints and system samples in one worker)', () => {
  it('checkpoints the buffer and samples the system on the same thread, and checkpoints stop with it', async () => {
    const thread = new HousekeepingThread({ checkpointIntervalMs: 100 });
    cleanups.push(() => thread.close());
    const { store, path } = bufferOn(thread);
    expect(thread.running).toBe(true);

    expect(await checkpointed(path)).toBeGreaterThan(2 * 1024 * 1024);
    const health = new SystemHealth(dir!, thread);
    const s = await health.sample();
    expect(s.error).toBeUndefined();
    expect(s.cpu.cores).toBeGreaterThan(0);
    expect(s.memory.totalBytes).toBeGreaterThan(0);
    expect(s.disk.freeBytes).toBeGreaterThan(0);
    // SystemHealth does not end a thread it was given: the checkpoints keep their thread.
    await health.close();
    expect(thread.running).toBe(true);

    // The buffer has no checkpointer of its own: once the thread ends, new commits stay in the WAL.
    await thread.close();
    expect(thread.running).toBe(false);
    const size = statSync(path).size;
    for (let b = 10; b < 20; b++) store.appendBatch(Array.from({ length: 2000 }, (_, i) => row(b * 2000 + i)));
    await new Promise((r) => setTimeout(r, 500));
    expect(statSync(path).size).toBe(size);
    expect(store.stats().rows).toBe(40_000);
  });

  it('keeps checkpointing when systeminformation cannot be loaded', async () => {
    const missing = join(tmpdir(), 'pw-no-such-dir', 'systeminformation.js');
    const thread = new HousekeepingThread({ checkpointIntervalMs: 100, systeminformation: missing });
    cleanups.push(() => thread.close());
    const health = new SystemHealth('.', thread);
    const first = await health.sample();
    expect(first.error).toMatch(/Cannot find module/);
    expect(first.cpu.loadPercent).toBeNull();
    expect(first.memory.totalBytes).toBeNull();
    expect(first.disk.totalBytes).toBeGreaterThan(0); // statfs, not systeminformation

    const { path } = bufferOn(thread);
    expect(await checkpointed(path)).toBeGreaterThan(2 * 1024 * 1024);
    expect((await health.sample()).error).toMatch(/Cannot find module/);
    expect(thread.running).toBe(true);
  });

  it('reports an exception thrown outside a sample instead of ending the thread, and keeps checkpointing', async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-housekeeping-'));
    // Stands in for systeminformation failing from a callback (an error no promise catches).
    const broken = join(dir, 'broken-systeminformation.cjs');
    writeFileSync(broken, `
      const fail = () => { setTimeout(() => { throw new Error('callback failed'); }, 0); return Promise.reject(new Error('no figures')); };
      module.exports = { currentLoad: fail, mem: fail, fsSize: fail, cpuTemperature: fail };
    `);
    const errors: string[] = [];
    const thread = new HousekeepingThread({ checkpointIntervalMs: 100, systeminformation: broken, onError: (job, message) => errors.push(`${job}: ${message}`) });
    cleanups.push(() => thread.close());
    const health = new SystemHealth('.', thread);
    expect((await health.sample()).error).toBe('cpu: no figures; memory: no figures; temperature: no figures');
    for (let i = 0; i < 50 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(errors).toContain('thread: callback failed');
    expect(thread.running).toBe(true);

    const path = join(dir, 'buffer.sqlite');
    const store = new BufferStore({ path, maxBytes: 1 << 30, startCheckpoints: thread.startCheckpoints });
    store.open();
    cleanups.push(() => store.close());
    for (let b = 0; b < 10; b++) store.appendBatch(Array.from({ length: 2000 }, (_, i) => row(b * 2000 + i)));
    expect(await checkpointed(path)).toBeGreaterThan(2 * 1024 * 1024);
  });
});
