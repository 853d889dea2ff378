/**
 * Gateway health figures when the OS is slow to answer one of them (a command stuck behind a hung
 * mount), and the disk figures of a data dir on its own file system. systeminformation is replaced
 * by a module that hangs on purpose: the only way to make the OS hang on cue.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
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

/**
 * A FIFO in the test's folder: opening it for reading blocks in the kernel until a writer comes,
 * as a /sys attribute whose driver never answers does. `release` lets every reader go on.
 */
function fifo(dir: string): { path: string; release: () => void } {
  const path = join(dir, 'never-answers');
  execFileSync('mkfifo', [path]);
  return {
    path,
    release: () => {
      // Opens for writing without waiting for a reader; readers blocked in open() then read EOF.
      try {
        closeSync(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK));
      } catch {
        // ENXIO: no reader left
      }
    },
  };
}

describe('a call systeminformation makes that the OS never answers', () => {
  it('kills a command it runs synchronously, keeps the other figures, names it, and does not run it again within its back-off', async () => {
    const dir = tempDir();
    const calls = join(dir, 'calls');
    const hang = fifo(dir);
    cleanups.push(hang.release);
    const command = `echo temperature >> ${calls}; cat ${hang.path} 2>/dev/null`;
    // As systeminformation's cpuTemperature on Linux: execSync of a \`cat\` of the thermal zones,
    // taken from child_process when the module loads, with no time limit, its failure swallowed.
    const stub = join(dir, 'systeminformation-stuck-command.cjs');
    writeFileSync(stub, `
      const execSync = require('child_process').execSync;
      module.exports = {
        currentLoad: async () => ({ currentLoad: 12, cpus: [{}, {}] }),
        mem: async () => ({ total: 8e9, available: 6e9 }),
        cpuTemperature: () => new Promise((resolve) => process.nextTick(() => {
          try { execSync(${JSON.stringify(command)}, { stdio: ['pipe', 'pipe', 'ignore'] }); } catch {}
          resolve({ main: null, max: null });
        })),
      };
    `);
    const thread = new HousekeepingThread({ systeminformation: stub, now: () => Date.parse('2026-12-06T10:00:00Z') });
    cleanups.push(() => thread.close());
    const health = new SystemHealth(dir, thread);

    const first = await health.sample();
    expect(first.cpu).toEqual({ loadPercent: 12, cores: 2 });
    expect(first.memory).toEqual({ totalBytes: 8e9, availableBytes: 6e9, usedPercent: 25 });
    expect(first.temperature).toEqual({ mainCelsius: null, maxCelsius: null });
    expect(first.error).toMatch(/^a command gave no answer in 3 s and was killed; .*10:10 UTC.*: /);
    expect(first.error!.endsWith(`: ${command.slice(0, 79)}…`)).toBe(true);

    const second = await health.sample();
    expect(second.cpu.loadPercent).toBe(12);
    expect(second.error).toBe(first.error);
    expect(readFileSync(calls, 'utf8').split('\n').filter(Boolean)).toEqual(['temperature']); // once, not once per sample

    await thread.close();
    expect(thread.held).toBeNull();
  }, 40_000);

  it('reads a /sys file through a command it can kill, not on node\'s thread pool', async () => {
    const dir = tempDir();
    const stub = join(dir, 'systeminformation-sys-read.cjs');
    // As cpuTemperature's last resort: fs.readFile of thermal_zone0/temp. /sys/class/thermal itself
    // cannot be made to hang here, so the stub reads a path under /sys that does not exist: the
    // error must be cat's (a child process), not the thread pool's ENOENT.
    writeFileSync(stub, `
      const fs = require('fs');
      module.exports = {
        currentLoad: async () => ({ currentLoad: 12, cpus: [{}] }),
        mem: async () => ({ total: 8e9, available: 6e9 }),
        cpuTemperature: () => new Promise((resolve) => fs.readFile('/sys/pumpwatch-test/none', (err, data) => resolve({ main: err ? -1 : Number(data), max: err ? String(err.message) : null }))),
      };
    `);
    const thread = new HousekeepingThread({ systeminformation: stub });
    cleanups.push(() => thread.close());
    const raw = await thread.sample();
    expect(raw.temp?.main).toBe(-1);
    expect(raw.temp?.max).toMatch(/^Command failed: cat \/sys\/pumpwatch-test\/none/);
  }, 20_000);

  it('abandons a thread held in a read the OS never answers when asked to close, and says so', async () => {
    const dir = tempDir();
    const hang = fifo(dir);
    const entered = join(dir, 'entered');
    const stub = join(dir, 'systeminformation-stuck-read.cjs');
    // A synchronous read on the thread itself that no kill reaches (a path outside /sys, so nothing bounds it).
    writeFileSync(stub, `
      const fs = require('fs');
      module.exports = {
        currentLoad: async () => { fs.writeFileSync(${JSON.stringify(entered)}, ''); fs.readFileSync(${JSON.stringify(hang.path)}); return { currentLoad: 1, cpus: [{}] }; },
        mem: async () => ({ total: 8e9, available: 6e9 }),
        cpuTemperature: async () => ({ main: null, max: null }),
      };
    `);
    const thread = new HousekeepingThread({ systeminformation: stub });
    cleanups.push(async () => {
      hang.release(); // the read returns, and the thread, terminated meanwhile, ends
      await vi.waitFor(() => expect(thread.held).toBeNull(), { timeout: 10_000, interval: 20 });
    });
    void thread.sample();
    await vi.waitFor(() => expect(existsSync(entered)).toBe(true), { timeout: 10_000, interval: 20 }); // held from here on
    expect(thread.held).toBeNull();
    await thread.close();
    expect(thread.held).toBe('the housekeeping thread did not end within 3 s of being asked (a call the OS does not answer holds it)');
  }, 20_000);
});

/** A shell command as systeminformation's cpuTemperature runs it (execSync, failure swallowed), its output the figure in millidegrees. */
function temperatureCommandStub(dir: string, command: string): string {
  const stub = join(dir, 'systeminformation-temperature-command.cjs');
  writeFileSync(stub, `
    const execSync = require('child_process').execSync;
    module.exports = {
      currentLoad: async () => ({ currentLoad: 12, cpus: [{}, {}] }),
      mem: async () => ({ total: 8e9, available: 6e9 }),
      cpuTemperature: () => new Promise((resolve) => process.nextTick(() => {
        let main = null;
        try { main = Number(execSync(${JSON.stringify(command)}, { stdio: ['pipe', 'pipe', 'ignore'] }).toString()) / 1000; } catch {}
        resolve({ main, max: main });
      })),
    };
  `);
  return stub;
}

const runs = (calls: string): number => readFileSync(calls, 'utf8').split('\n').filter(Boolean).length;

describe('a command killed for giving no answer in 3 s', () => {
  it('is run again after its back-off once nothing of it is left, and its figure comes back', async () => {
    const dir = tempDir();
    const calls = join(dir, 'calls');
    const hang = fifo(dir);
    cleanups.push(hang.release);
    // Slow only the first time (a busy sensor at boot): the shell becomes the blocked `cat`, so the kill ends all of it.
    const command = `echo run >> ${calls}; if [ -e ${dir}/answered-once ]; then echo 41000; else touch ${dir}/answered-once; exec cat ${hang.path}; fi`;
    let now = Date.parse('2026-12-06T10:00:00Z');
    const thread = new HousekeepingThread({ systeminformation: temperatureCommandStub(dir, command), now: () => now });
    cleanups.push(() => thread.close());
    const health = new SystemHealth(dir, thread);
    const shown = `${command.slice(0, 79)}…`;

    const first = await health.sample();
    expect(first.temperature).toEqual({ mainCelsius: null, maxCelsius: null });
    expect(first.cpu.loadPercent).toBe(12);
    expect(first.error).toBe(`a command gave no answer in 3 s and was killed; retried at 10:10 UTC: ${shown}`);

    now += 9 * 60_000; // within the back-off: not run, the error kept
    const second = await health.sample();
    expect(second.error).toBe(first.error);
    expect(second.temperature.mainCelsius).toBeNull();
    expect(runs(calls)).toBe(1);

    now += 60_000; // 10 min after the kill
    const third = await health.sample();
    expect(third.temperature).toEqual({ mainCelsius: 41, maxCelsius: 41 });
    expect(third.error).toBeUndefined();
    expect(runs(calls)).toBe(2);
  }, 30_000);

  it('is not run a second time while a process it started is still running, and is once that ends', async () => {
    const dir = tempDir();
    const calls = join(dir, 'calls');
    const hang = fifo(dir);
    cleanups.push(hang.release);
    // The first run leaves a child blocked (the kill ends only the shell), as one stuck in the kernel.
    const command = `echo run >> ${calls}; if [ -e ${dir}/answered-once ]; then echo 41000; else touch ${dir}/answered-once; cat ${hang.path}; echo 0; fi`;
    let now = Date.parse('2026-12-06T10:00:00Z');
    const thread = new HousekeepingThread({ systeminformation: temperatureCommandStub(dir, command), now: () => now });
    cleanups.push(() => thread.close());
    const health = new SystemHealth(dir, thread);
    const shown = `${command.slice(0, 79)}…`;
    const stuck = (at: string): string =>
      `a command gave no answer in 3 s and was killed; a process it started is still running, and it is not run again before that ends (looked at again at ${at} UTC): ${shown}`;

    const first = await health.sample();
    expect(first.temperature.mainCelsius).toBeNull();
    expect(first.error).toBe(stuck('10:10'));

    now += 10 * 60_000; // its back-off has passed, but its child is still there: not run, back-off doubled
    const second = await health.sample();
    expect(second.error).toBe(stuck('10:30'));
    now += 20 * 60_000;
    const third = await health.sample();
    expect(third.error).toBe(stuck('11:10'));
    expect(third.temperature.mainCelsius).toBeNull();
    expect(runs(calls)).toBe(1);

    hang.release(); // the child ends
    await vi.waitFor(
      async () => {
        now += 6 * 3_600_000;
        const s = await health.sample();
        expect(s.temperature).toEqual({ mainCelsius: 41, maxCelsius: 41 });
        expect(s.error).toBeUndefined();
      },
      { timeout: 10_000, interval: 50 },
    );
    expect(runs(calls)).toBe(2);
  }, 30_000);
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
