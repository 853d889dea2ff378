/**
 * The module client as IoT Edge makes it, through the SDK's ModuleClient.fromEnvironment
 * (EdgeHubConnectionString + EdgeModuleCACertificateFile, the SDK's own non-workload path, against
 * the local hub): the SDK builds the client, and with it the transport, only after reading the CA
 * file, after the agent's start-up returned. Inputs are still acknowledged after their commit, and
 * the agent does not warn that they are not.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../agent/logger.js';
import { startTestAgent, type TestAgent } from '../support/agent.js';
import { LocalHub } from '../support/local-hub.js';
import { normalValues, rng } from '../support/models.js';

const DEVICE = 'gw-env';
const MODULE = 'pumpwatch';
let hub: LocalHub;
let t: TestAgent;
let caDir: string;
const lines: Array<Record<string, unknown>> = [];
const saved = { cs: process.env.EdgeHubConnectionString, ca: process.env.EdgeModuleCACertificateFile };

beforeAll(async () => {
  hub = await LocalHub.start();
  const connectionString = hub.addModule(DEVICE, MODULE);
  caDir = mkdtempSync(join(tmpdir(), 'pw-edge-env-'));
  const caFile = join(caDir, 'hub-ca.pem');
  writeFileSync(caFile, hub.ca);
  // The SDK reads these from the process environment itself.
  process.env.EdgeHubConnectionString = connectionString;
  process.env.EdgeModuleCACertificateFile = caFile;
  const logger = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  t = await startTestAgent({ PUMPWATCH_HUB: 'auto', EdgeHubConnectionString: connectionString, PUMPWATCH_DEVICE_ID: DEVICE }, { logger });
});

afterAll(async () => {
  await t?.stop(); // the module client closes before the broker, or the process hangs
  await hub?.stop();
  rmSync(caDir, { recursive: true, force: true });
  if (saved.cs === undefined) delete process.env.EdgeHubConnectionString;
  else process.env.EdgeHubConnectionString = saved.cs;
  if (saved.ca === undefined) delete process.env.EdgeModuleCACertificateFile;
  else process.env.EdgeModuleCACertificateFile = saved.ca;
});

describe('the agent with the module client of ModuleClient.fromEnvironment', () => {
  it('commits an input message before acknowledging it, and does not warn that the transport could not be hooked', async () => {
    await vi.waitFor(() => expect(hub.subscriptions(DEVICE, MODULE).some((f) => f.includes('/inputs/'))).toBe(true), { timeout: 20_000, interval: 50 });
    const reading = { pumpId: 'env-1', ts: new Date().toISOString(), values: normalValues(rng(4), 0) };
    const db = new Database(join(t.dir, 'data', 'buffer.sqlite'), { readonly: true });
    try {
      const committedWhenAcked = new Promise<number>((resolve) => {
        hub.once('inputCompleted', () => resolve((db.prepare("SELECT count(*) n FROM readings WHERE pump_id = 'env-1'").get() as { n: number }).n));
      });
      await hub.completed(await hub.deliverToInput(DEVICE, MODULE, 'readings', JSON.stringify(reading)));
      expect(await committedWhenAcked).toBe(1);
    } finally {
      db.close();
    }
    expect(lines.filter((l) => String(l.msg).includes('could not be hooked'))).toEqual([]);
  });
});
