/**
 * A first model fitted on the gateway, with the agent as a real process (dist/agent/cli.js) on the
 * local IoT hub (real azure-iot-device client), its bundled default model, and 2.5 h of simulated
 * readings at 10 s posted over HTTP with their past timestamps: off by default nothing is fitted;
 * with PUMPWATCH_FIRST_MODEL_AFTER_HOURS=2 the pump gets its own model at the check after start,
 * shown in /status and reported with origin "gateway"; after a SIGKILL the same model comes back
 * without a second fit; a model the trainer's fit exported, named by the twin, replaces it and it
 * is retired.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PumpSimulator, SIMULATED_FEATURES } from '../../agent/simulator.js';
import type { Reading } from '../../buffer/types.js';
import { fitTable } from '../../trainer/fit.js';
import { LocalHub } from '../support/local-hub.js';
import { ModelServer } from '../support/model-server.js';
import { freePort, startAgentProcess, type AgentProcess } from '../support/process.js';

const DEVICE = 'gw-first-e2e';
const MODULE = 'pumpwatch';
const PUMP = 'pump-e2e';
const HOUR = 3_600_000;
const STEP = 10_000;
const FITTED_LINE = 'first model fitted on the gateway; installing it';

let dir: string;
let hub: LocalHub;
let server: ModelServer;
let env: Record<string, string>;
const started: AgentProcess[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-e2e-first-model-'));
  hub = await LocalHub.start();
  server = await ModelServer.start();
  writeFileSync(join(dir, 'hub-ca.pem'), hub.ca);
  env = {
    PUMPWATCH_DATA_DIR: join(dir, 'data'),
    PUMPWATCH_HUB: 'auto',
    PUMPWATCH_MODULE_CONNECTION_STRING: hub.addModule(DEVICE, MODULE),
    PUMPWATCH_DEVICE_ID: DEVICE,
    EdgeModuleCACertificateFile: join(dir, 'hub-ca.pem'),
    PUMPWATCH_ALLOW_INSECURE_MODEL_URLS: '1',
    PUMPWATCH_LOG_LEVEL: 'info',
  };
});

afterAll(async () => {
  for (const agent of started) if (agent.proc.exitCode === null && agent.proc.signalCode === null) agent.proc.kill('SIGKILL');
  await Promise.all(started.map((a) => a.exited));
  await server?.stop();
  await hub?.stop();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

async function start(extra: Record<string, string>, port: number): Promise<AgentProcess> {
  const agent = await startAgentProcess({ ...env, ...extra }, port);
  started.push(agent);
  await agent.waitReady();
  return agent;
}

const until = <T>(fn: () => T | Promise<T>, timeout = 60_000) => vi.waitFor(fn, { timeout, interval: 200 });
const statusOf = async (agent: AgentProcess) => (await (await fetch(`${agent.url}/status`)).json()) as { models: Record<string, any>; firstModels: any };
const reported = () => hub.reported(DEVICE, MODULE) as { models?: Record<string, Record<string, unknown>> };
const fitLines = (agent: AgentProcess) => agent.output().split('\n').filter((l) => l.includes(FITTED_LINE));

/** 2.5 h of a running pump's readings at 10 s, ending half an hour ago. */
const readings: Reading[] = (() => {
  const sim = new PumpSimulator({ pumpId: PUMP, seed: 31, startTs: Date.now() - 3 * HOUR, periodMs: STEP });
  return Array.from({ length: 900 }, () => sim.next().reading);
})();

async function post(agent: AgentProcess, rows: readonly Reading[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 300) {
    const body = rows.slice(i, i + 300).map((r) => ({ ...r, ts: new Date(r.ts).toISOString() }));
    const res = await fetch(`${agent.url}/readings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.status, await res.text()).toBe(202);
  }
}

/** A model for the pump as the trainer's fit exports it, from other simulated readings of it. */
function cloudModel(version: string): Uint8Array {
  const sim = new PumpSimulator({ pumpId: PUMP, seed: 32, startTs: Date.now() - 30 * HOUR, periodMs: STEP });
  const rows = Array.from({ length: 1200 }, () => sim.next().reading);
  const features = [...SIMULATED_FEATURES];
  return fitTable(
    { features, rows: rows.map((r) => Float64Array.from(features.map((f) => r.values[f] as number))), timestamps: rows.map((r) => r.ts), timestampColumn: 'ts', ignoredColumns: [] },
    { algorithm: 'pca', source: PUMP, version, window: 1 },
  ).bytes;
}

describe('the agent process with PUMPWATCH_FIRST_MODEL_AFTER_HOURS', () => {
  it('fits nothing when unset; fits the pump at the check after a start with 2 h; keeps it across a SIGKILL; retires it for the twin\'s model', async () => {
    const port = await freePort();

    // Unset (off): the check after start runs and fits nothing.
    const off = await start({}, port);
    await post(off, readings);
    await until(async () => expect((await statusOf(off)).firstModels).toMatchObject({ afterHours: 0, checks: 1 }));
    expect((await statusOf(off)).firstModels.pumps).toEqual({});
    expect((await statusOf(off)).models[PUMP]).toBeUndefined();
    expect(fitLines(off)).toEqual([]);
    off.proc.kill('SIGTERM');
    expect(await off.exited).toBe(0);

    // 2 h: the check 10 s after start fits the pump, and the model becomes its live model.
    const on = await start({ PUMPWATCH_FIRST_MODEL_AFTER_HOURS: '2' }, port);
    await until(async () => expect((await statusOf(on)).models[PUMP]).toMatchObject({ status: 'active', origin: 'gateway' }));
    const s = await statusOf(on);
    const version = s.models[PUMP].version as string;
    expect(version).toMatch(/^gw-\d{8}-[0-9a-f]{12}$/);
    expect(s.firstModels).toMatchObject({ afterHours: 2, pumps: { [PUMP]: { state: 'fitted', version } } });
    expect(s.firstModels.pumps[PUMP].spanHours).toBeGreaterThanOrEqual(2);
    await until(() => expect(reported().models?.[PUMP]).toMatchObject({ version, status: 'active', origin: 'gateway' }));
    expect(fitLines(on)).toHaveLength(1);
    expect(on.output()).toContain('first model fitted on the gateway activated');

    // SIGKILL, restart: the same model, restored; the check after start fits nothing again.
    on.proc.kill('SIGKILL');
    await on.exited;
    const again = await start({ PUMPWATCH_FIRST_MODEL_AFTER_HOURS: '2' }, port);
    await until(async () => expect((await statusOf(again)).firstModels.checks).toBeGreaterThanOrEqual(1));
    const after = await statusOf(again);
    expect(after.models[PUMP]).toMatchObject({ version, status: 'active', origin: 'gateway' });
    expect(after.firstModels.pumps[PUMP]).toMatchObject({ state: 'fitted', version });
    expect(fitLines(again)).toEqual([]);

    // The twin names a model for the pump: it replaces the first model, which is retired.
    const entry = server.add(PUMP, cloudModel('cloud-1'), 'cloud-1');
    hub.updateDesired(DEVICE, MODULE, { models: { [PUMP]: entry } });
    await until(() => expect(reported().models?.[PUMP]).toMatchObject({ version: 'cloud-1', status: 'active', ac: 200 }));
    expect(reported().models?.[PUMP]).not.toHaveProperty('origin');
    const replaced = await statusOf(again);
    expect(replaced.models[PUMP].origin).not.toBe('gateway');
    expect(replaced.firstModels.pumps[PUMP]).toMatchObject({ state: 'retired', version });
    expect(again.output()).toContain('first model fitted on the gateway retired');
    again.proc.kill('SIGTERM');
    expect(await again.exited).toBe(0);
  }, 180_000);
});
