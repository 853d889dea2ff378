/**
 * A buffer row whose stored contributions (a schema-10 BLOB) cannot be decoded, the agent as a
 * process: after a restart the technician's page, the alerts list and the other pumps' read-back
 * still work. The row's contributions read as null (the log names its seq and what is wrong), the
 * rest of the row as stored; only the sync sets such a row aside (sync-contributions.test.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Reading } from '../../buffer/types.js';
import { agentPool, getJson, postReadings, stopAgent } from '../support/agent-http.js';
import type { AgentProcess } from '../support/process.js';
import { readingsWithStops, stopModels } from '../support/stops.js';

let dir: string;
let model: string;
const pool = agentPool();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-e2e-undecodable-'));
  model = join(dir, 'model.onnx');
  writeFileSync(model, stopModels({ version: 'undecodable-e2e' }).withRule);
});

afterAll(async () => {
  await pool.killAll();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

const start = (dataDir: string): Promise<AgentProcess> => pool.start({ PUMPWATCH_DATA_DIR: dataDir, PUMPWATCH_DEFAULT_MODEL: model });

async function pumps(agent: AgentProcess): Promise<Array<{ pumpId: string; sensorFaults: unknown[] }>> {
  return ((await getJson(agent, '/pumps')) as { pumps: Array<{ pumpId: string; sensorFaults: unknown[] }> }).pumps;
}

const START = Date.now() - 400_000;
/** pump-a: 40 normal readings, then 5 spikes (anomalies, with contributions). */
const pumpA: Reading[] = readingsWithStops(45, () => false, { pumpId: 'pump-a', start: START, seed: 3 });
for (let i = 40; i < 45; i++) pumpA[i]!.values = { ...pumpA[i]!.values, Pressure: 4, Flow: 30 };
/** pump-b: 250 readings, its Current frozen from reading 100 on. */
const pumpB: Reading[] = readingsWithStops(250, () => false, { pumpId: 'pump-b', start: START, seed: 4 });
for (let i = 100; i < 250; i++) pumpB[i]!.values = { ...pumpB[i]!.values, Current: pumpB[99]!.values.Current! };

describe('contributions that cannot be decoded, the agent as a process', () => {
  it('leave the page, the alerts and every other pump read back after a restart', async () => {
    const data = join(dir, 'data');
    const agent = await start(data);
    await postReadings(agent, [...pumpA, ...pumpB], Infinity);
    const before = (await getJson(agent, '/alerts?pumpId=pump-a&limit=10')) as { alerts: Array<{ seq: number; contributions: Record<string, number> | null }> };
    expect(before.alerts.length).toBe(5);
    expect(before.alerts.every((a) => a.contributions !== null)).toBe(true);
    const frozen = (await pumps(agent)).find((p) => p.pumpId === 'pump-b')!.sensorFaults;
    expect(frozen).toHaveLength(1);
    await stopAgent(agent);

    // Two of pump-a's BLOBs now name a list of feature names the file does not hold (id 99).
    const db = new Database(join(data, 'buffer.sqlite'));
    const rows = db.prepare("SELECT seq, contributions FROM readings WHERE pump_id = 'pump-a' AND anomaly = 1 ORDER BY seq LIMIT 2").all() as Array<{ seq: number; contributions: Buffer }>;
    const update = db.prepare('UPDATE readings SET contributions = ? WHERE seq = ?');
    let broken = 0;
    for (const row of rows) {
      expect(Buffer.isBuffer(row.contributions)).toBe(true);
      const blob = Buffer.from(row.contributions);
      blob.writeUInt32LE(99, 1);
      broken += update.run(blob, row.seq).changes;
    }
    db.close();
    expect(broken).toBe(2);

    const again = await start(data);
    const listed = await pumps(again);
    expect(listed.map((p) => p.pumpId)).toEqual(['pump-a', 'pump-b']);
    expect(listed.find((p) => p.pumpId === 'pump-b')!.sensorFaults).toEqual(frozen);
    const after = (await getJson(again, '/alerts?pumpId=pump-a&limit=10')) as { alerts: Array<{ seq: number; contributions: Record<string, number> | null }> };
    expect(after.alerts.map((a) => a.seq)).toEqual(before.alerts.map((a) => a.seq));
    expect(after.alerts.filter((a) => a.contributions === null)).toHaveLength(2);
    await stopAgent(again);
    expect(again.output()).toMatch(/reading seq \d+: its contributions \(a BLOB of \d+ bytes\) name feature list 99/);
  });
});
