/**
 * Gateway health figures when the OS is slow to answer one of them (a command stuck behind a hung
 * mount), and the disk figures of a data dir on its own file system. systeminformation is replaced
 * by a module that hangs on purpose: the only way to make the OS hang on cue.
 */
import { mkdtempSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HousekeepingThread } from '../../agent/housekeeping.js';
import { SystemHealth } from '../../agent/system-health.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(parent = tmpdir()): string {
  const dir = mkdtempSync(join(parent, 'pw-health-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe('the system sample while one figure hangs', () => {
  it('keeps the figures that came, names the one missing, and never asks it again while the first call hangs', async () => {
    const dir = tempDir();
    const calls = join(dir, 'calls');
    const stub = join(dir, 'hanging-systeminformation.cjs');
    // currentLoad never answers (as df did behind a stale NFS mount); every call is counted in a file.
    writeFileSync(stub, `
      const { appendFileSync } = require('node:fs');
      module.exports = {
        currentLoad: () => { appendFileSync(${JSON.stringify(calls)}, 'cpu\\n'); return new Promise(() => {}); },
        mem: async () => ({ total: 8e9, available: 6e9 }),
        cpuTemperature: async () => ({ main: 41, max: 45 }),
        fsSize: () => { appendFileSync(${JSON.stringify(calls)}, 'fsSize\\n'); return new Promise(() => {}); },
      };
    `);
    const thread = new HousekeepingThread({ systeminformation: stub });
    cleanups.push(() => thread.close());
    const health = new SystemHealth(dir, thread);

    const first = await health.sample();
    expect(first.error).toBe('cpu: no answer in 5 s');
    expect(first.cpu).toEqual({ loadPercent: null, cores: null });
    expect(first.memory).toEqual({ totalBytes: 8e9, availableBytes: 6e9, usedPercent: 25 });
    expect(first.temperature).toEqual({ mainCelsius: 41, maxCelsius: 45 });
    expect(first.disk.totalBytes).toBeGreaterThan(0);
    expect(first.sampledAt).not.toBeNull();

    const second = await health.sample();
    expect(second.memory.totalBytes).toBe(8e9);
    expect(readFileSync(calls, 'utf8').split('\n').filter(Boolean)).toEqual(['cpu']); // one hung call, not one per sample
  }, 20_000);
});

describe('the disk figures', () => {
  // A tmpfs data dir (docker run --tmpfs /data): systeminformation's df list leaves tmpfs out.
  const shm = '/dev/shm';
  const ownFileSystem = existsSync(shm) && statSync(shm).dev !== statSync(tmpdir()).dev;

  it.skipIf(!ownFileSystem)('are those of the file system holding the data dir, also one df leaves out', async () => {
    const dir = tempDir(shm);
    const health = new SystemHealth(dir);
    cleanups.push(() => health.close());
    const s = await health.sample();
    const fs = statfsSync(dir);
    expect(s.disk.path).toBe(dir);
    expect(s.disk.totalBytes).toBe(fs.blocks * fs.bsize);
    expect(s.disk.freeBytes).toBeGreaterThan(0);
    expect(s.disk.freeBytes).toBeLessThanOrEqual(fs.blocks * fs.bsize);
  });

  it('are null with the reason when the data dir cannot be read, while the other figures stay', async () => {
    const missing = join(tempDir(), 'not-created');
    const health = new SystemHealth(missing);
    cleanups.push(() => health.close());
    const s = await health.sample();
    expect(s.disk).toEqual({ path: missing, totalBytes: null, freeBytes: null, usedPercent: null });
    expect(s.error).toMatch(/^disk: ENOENT/);
    expect(s.memory.totalBytes).toBeGreaterThan(0);
  });
});
