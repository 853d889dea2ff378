/**
 * A frozen sensor, the agent as a process, its default model fitted by the trainer (with
 * `pumpwatch.stuck_after`): `GET /pumps` says the pump's current is frozen since the first reading
 * of its run; after a restart it says so again at once (the agent reads the pump's rows back),
 * with the same start; the value changing clears it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Reading } from '../../buffer/types.js';
import { agentPool, getJson, postReadings } from '../support/agent-http.js';
import type { AgentProcess } from '../support/process.js';
import { readingsWithStops, stopModels } from '../support/stops.js';

let dir: string;
let model: string;
const pool = agentPool();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-e2e-frozen-'));
  model = join(dir, 'model.onnx');
  writeFileSync(model, stopModels({ version: 'frozen-e2e' }).withRule);
});

afterAll(async () => {
  await pool.killAll();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

const start = (dataDir: string): Promise<AgentProcess> => pool.start({ PUMPWATCH_DATA_DIR: dataDir, PUMPWATCH_DEFAULT_MODEL: model });
const post = (agent: AgentProcess, readings: readonly Reading[]): Promise<void> => postReadings(agent, readings, Infinity);

async function pump(agent: AgentProcess): Promise<any> {
  return ((await getJson(agent, '/pumps')) as { pumps: Array<{ pumpId: string }> }).pumps.find((p) => p.pumpId === 'pump-f');
}

/** 400 readings at 1 Hz ending now: Current frozen at reading 99's value from 100 to 349, live again after. */
const START = Date.now() - 400_000;
const readings = readingsWithStops(400, () => false, { pumpId: 'pump-f', start: START, seed: 6 });
for (let i = 100; i < 350; i++) readings[i]!.values = { ...readings[i]!.values, Current: readings[99]!.values.Current! };

describe('a frozen sensor, the agent as a process', () => {
  it('says the sensor is frozen on /pumps, again at once after a restart, and clears when the value changes', async () => {
    const data = join(dir, 'data');
    const agent = await start(data);
    await post(agent, readings.slice(0, 250));
    const frozen = { feature: 'Current', kind: 'frozen', since: new Date(START + 99_000).toISOString(), readings: 151, value: readings[99]!.values.Current, after: 60 };
    expect((await pump(agent)).sensorFaults).toEqual([frozen]);
    agent.proc.kill('SIGTERM');
    expect(await agent.exited).toBe(0);

    const again = await start(data);
    expect((await pump(again)).sensorFaults).toEqual([frozen]);
    await post(again, readings.slice(250, 340));
    expect((await pump(again)).sensorFaults).toEqual([{ ...frozen, readings: 241 }]);
    await post(again, readings.slice(340));
    expect((await pump(again)).sensorFaults).toEqual([]);
    again.proc.kill('SIGTERM');
    expect(await again.exited).toBe(0);
  });
});
