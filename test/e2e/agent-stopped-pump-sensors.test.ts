/**
 * The agent as a process with its bundled default model (stopped-when rule: the current AND the
 * flow low): a current transmitter reading 0 A on a running pump (the flow and the rest normal) is
 * no stop: its readings are held a minute as a stop's possible beginning (`pump stopping`), then
 * scored and flagged, an alert is raised, the page's API shows the pump
 * in anomaly and running, also after a restart. A real stop (current and flow near 0) still shows
 * the pump stopped, without an alert. Readings from the agent's own simulator.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PumpSimulator } from '../../agent/simulator.js';
import type { Reading } from '../../buffer/types.js';
import { agentPool, getJson, postReadings, stopAgent } from '../support/agent-http.js';
import type { AgentProcess } from '../support/process.js';

let dir: string;
const pool = agentPool();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-e2e-stopped-sensors-'));
});

afterAll(async () => {
  await pool.killAll();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

const start = (dataDir: string): Promise<AgentProcess> => pool.start({ PUMPWATCH_DATA_DIR: dataDir });
const stop = stopAgent;
const post = (agent: AgentProcess, readings: readonly Reading[]): Promise<void> => postReadings(agent, readings, 500);

/** 1 500 readings at 1 Hz of a simulated running pump, ending a minute ago; `change` alters those from 600 on. */
const START = Date.now() - 1_560_000;
function pump(pumpId: string, seed: number, change: (v: Record<string, number | null>) => Record<string, number | null>): Reading[] {
  const sim = new PumpSimulator({ pumpId, seed, startTs: START, faults: 'none' });
  return Array.from({ length: 1500 }, (_, i) => {
    const r = sim.next().reading;
    return i < 600 ? r : { ...r, values: change({ ...r.values }) };
  });
}

const pumpOf = async (agent: AgentProcess, id: string) => (await getJson(agent, '/pumps')).pumps.find((x: { pumpId: string }) => x.pumpId === id);

describe('a dead current transmitter on a running pump, the agent as a process with its bundled model', () => {
  it('scores and flags its readings and raises an alert (the pump running, in anomaly), after a restart too; a real stop is still a stop', async () => {
    const data = join(dir, 'bundled');
    const agent = await start(data);
    const dead = pump('pump-dead', 5151, (v) => ({ ...v, Current: 0 }));
    const stopped = pump('pump-stop', 5252, (v) => ({ ...v, Current: 0.01, 'Volume Flow RateRMS': 0.3 }));
    // the page's board followed from here on (a board seeded after the post reads back each pump's newest 200 rows only)
    expect((await getJson(agent, '/pumps')).pumps).toEqual([]);
    await post(agent, [...dead.slice(0, 1000), ...stopped.slice(0, 1000)]);

    expect(await pumpOf(agent, 'pump-dead')).toMatchObject({ state: 'anomaly', running: true, stoppedSince: null });
    const { predictions } = await getJson(agent, '/pumps/pump-dead/predictions?limit=1000');
    // its first minute (one reading a second) held as a stop's possible beginning, unscored
    const held = predictions.filter((r: { ts: string }) => Date.parse(r.ts) >= dead[600]!.ts && Date.parse(r.ts) < dead[660]!.ts);
    expect(held.length).toBe(60);
    expect(held.every((r: { score: number | null; unscoredReason: string | null }) => r.score === null && r.unscoredReason?.startsWith('pump stopping: "Current" = 0, below 0.2; "Volume Flow RateRMS" = '))).toBe(true);
    const deadRows = predictions.filter((r: { ts: string }) => Date.parse(r.ts) >= dead[660]!.ts);
    expect(deadRows.length).toBeGreaterThan(300);
    expect(deadRows.every((r: { score: number | null; anomaly: boolean | null }) => r.score !== null && r.anomaly === true)).toBe(true);
    expect(predictions.some((r: { unscoredReason: string | null }) => r.unscoredReason?.startsWith('pump stopped: '))).toBe(false);
    const alerts = (await getJson(agent, '/alerts')).alerts as Array<{ pumpId: string }>;
    expect(alerts.filter((a) => a.pumpId === 'pump-dead').length).toBeGreaterThan(0);

    const s = await pumpOf(agent, 'pump-stop');
    expect(s).toMatchObject({ state: 'stopped', running: false, stoppedSince: new Date(stopped[600]!.ts).toISOString(), anomalySince: null, lastAlertAt: null });
    expect(s.detail).toMatch(/^pump stopped: "Current" = 0\.01, below 0\.2 and "Volume Flow RateRMS" = 0\.3, below 5 \(model default-2's stopped-when rule\)$/);
    expect(alerts.filter((a) => a.pumpId === 'pump-stop')).toEqual([]);
    await stop(agent);

    // Restarted: the dead sensor's next readings are still scored and flagged, the stop still a stop.
    const again = await start(data);
    await post(again, [...dead.slice(1000), ...stopped.slice(1000)]);
    expect(await pumpOf(again, 'pump-dead')).toMatchObject({ state: 'anomaly', running: true, stoppedSince: null });
    const { predictions: later } = await getJson(again, `/pumps/pump-dead/predictions?since=${encodeURIComponent(new Date(dead[1000]!.ts).toISOString())}&limit=1000`);
    expect(later).toHaveLength(500);
    expect(later.every((r: { score: number | null; anomaly: boolean | null }) => r.score !== null && r.anomaly === true)).toBe(true);
    expect(await pumpOf(again, 'pump-stop')).toMatchObject({ state: 'stopped', running: false, anomalySince: null, lastAlertAt: null });
    await stop(again);
  });
});
