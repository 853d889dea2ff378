/**
 * SIGTERM to the agent process while a call of the gateway's health sample never gets an answer
 * from the OS. systeminformation's cpuTemperature runs `cat /sys/class/thermal/thermal_zone*​/temp`
 * synchronously on the housekeeping thread, and node's exit waits for every thread: before, one
 * thermal zone whose driver never answered blanked every figure and kept the agent from ever
 * exiting ('clean stop took longer than 10 s', then nothing until SIGKILL).
 */
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeModel } from '../support/models.js';
import { startAgentProcess, type AgentProcess } from '../support/process.js';

let dir: string;
let model: string;
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-stuck-os-'));
  model = join(dir, 'model.onnx');
  writeFileSync(model, makeModel({ version: 'stuck-1' }));
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(() => rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }));

/** A FIFO: opening it for reading blocks in the kernel until a writer comes; `release` lets every reader go. */
function fifo(name: string): { path: string; release: () => void } {
  const path = join(dir, name);
  spawnSync('mkfifo', [path]);
  const release = (): void => {
    try {
      closeSync(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // ENXIO: no reader left
    }
  };
  return { path, release };
}

/** A private mount namespace with its own /sys/class/thermal can be made here (root, util-linux unshare). */
const canUnshare = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs tmpfs /sys/class/thermal'], { stdio: 'ignore' }).status === 0;

async function postReading(agent: AgentProcess): Promise<void> {
  const res = await fetch(`${agent.url}/readings`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ pumpId: 'pump-1', ts: Date.now(), values: { Pressure: 0.4 } }),
  });
  expect(res.status).toBe(202);
}

function storedReadings(data: string): number {
  const db = new Database(join(data, 'buffer.sqlite'), { readonly: true });
  try {
    return (db.prepare("SELECT count(*) n FROM readings WHERE pump_id = 'pump-1'").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

interface SystemFigures {
  sampledAt: string | null;
  cpu: { cores: number | null };
  memory: { totalBytes: number | null };
  temperature: { mainCelsius: number | null };
  error?: string;
}

describe('SIGTERM while the OS does not answer a call of the health sample', () => {
  it.skipIf(!canUnshare)('exits 0 with the buffer closed when a thermal zone never answers, and /status kept the other figures', async () => {
    // The real systeminformation, in a mount namespace where thermal_zone0/temp is a FIFO nobody writes.
    const hang = fifo('thermal-temp');
    cleanups.push(hang.release); // the `cat` the agent killed leaves its own child blocked on it
    const setup = join(dir, 'stuck-thermal.sh');
    writeFileSync(
      setup,
      `set -e
mount -t tmpfs tmpfs /sys/class/thermal
mkdir /sys/class/thermal/thermal_zone0
echo x86_pkg_temp > /sys/class/thermal/thermal_zone0/type
ln -s "$PUMPWATCH_TEST_FIFO" /sys/class/thermal/thermal_zone0/temp
exec "$@"
`,
    );
    const data = join(dir, 'data-thermal');
    const agent = await startAgentProcess(
      { PUMPWATCH_DATA_DIR: data, PUMPWATCH_DEFAULT_MODEL: model, PUMPWATCH_TEST_FIFO: hang.path, PUMPWATCH_LOG_LEVEL: 'info' },
      undefined,
      { prefix: ['unshare', '-m', '--propagation', 'private', 'sh', setup] },
    );
    cleanups.push(() => {
      if (agent.proc.exitCode === null && agent.proc.signalCode === null) agent.proc.kill('SIGKILL');
    });
    await agent.waitReady();
    await postReading(agent);
    let system: SystemFigures | undefined;
    await vi.waitFor(
      async () => {
        system = ((await (await fetch(`${agent.url}/status`)).json()) as { system: SystemFigures }).system;
        expect(system.error).toMatch(/a command gave no answer in 3 s and was killed; a process it started is still running, and it is not run again before that ends \(looked at again at \d\d:\d\d UTC\): cat \/sys\/class\/thermal\/thermal_zone\*\/type/);
      },
      { timeout: 40_000, interval: 500 },
    );
    expect(system!.cpu.cores).toBeGreaterThan(0);
    expect(system!.memory.totalBytes).toBeGreaterThan(0);
    expect(system!.temperature.mainCelsius).toBeNull();

    agent.proc.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    expect(agent.output()).not.toContain('clean stop took longer');
    expect(agent.output()).not.toContain('abandoned');
    expect(storedReadings(data)).toBe(1);
  }, 90_000);

  it('ends by SIGTERM, the buffer closed, when the housekeeping thread is held in a read no kill reaches', async () => {
    // systeminformation replaced (by a preload that redirects its resolution) with one whose CPU
    // figure reads a FIFO synchronously on the thread: a read the kernel never answers, outside /sys.
    const hang = fifo('held-read');
    const entered = join(dir, 'entered');
    const stub = join(dir, 'systeminformation-held.cjs');
    writeFileSync(
      stub,
      `const fs = require('fs');
module.exports = {
  currentLoad: async () => { fs.writeFileSync(${JSON.stringify(entered)}, ''); fs.readFileSync(${JSON.stringify(hang.path)}); return { currentLoad: 1, cpus: [{}] }; },
  mem: async () => ({ total: 8e9, available: 6e9 }),
  cpuTemperature: async () => ({ main: null, max: null }),
};
`,
    );
    const preload = join(dir, 'redirect-systeminformation.cjs');
    writeFileSync(
      preload,
      `const Module = require('node:module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  return request === 'systeminformation' ? ${JSON.stringify(stub)} : resolve.call(this, request, ...rest);
};
`,
    );
    const data = join(dir, 'data-held');
    const agent = await startAgentProcess({ PUMPWATCH_DATA_DIR: data, PUMPWATCH_DEFAULT_MODEL: model, PUMPWATCH_LOG_LEVEL: 'info' }, undefined, { nodeArgs: ['--require', preload] });
    cleanups.push(() => {
      hang.release();
      if (agent.proc.exitCode === null && agent.proc.signalCode === null) agent.proc.kill('SIGKILL');
    });
    await agent.waitReady();
    await postReading(agent);
    await vi.waitFor(() => expect(existsSync(entered)).toBe(true), { timeout: 30_000, interval: 50 });

    agent.proc.kill('SIGTERM');
    expect(await agent.exited).toBe('SIGTERM');
    expect(agent.output()).toContain('the housekeeping thread did not end within 3 s of being asked (a call the OS does not answer holds it): abandoned');
    expect(agent.output()).toContain("pumpwatch-agent: the housekeeping thread did not end within 3 s of being asked (a call the OS does not answer holds it): node's exit would wait for it forever; ending by SIGTERM instead");
    expect(agent.output()).not.toContain('clean stop took longer');
    expect(storedReadings(data)).toBe(1);
  }, 90_000);
});
