/**
 * The anomaly alarms across SIGKILLs, the agent as a process (dist/agent/cli.js) on the local hub
 * (the real azure-iot-device client): two pumps flicker between runs of anomalous and normal
 * readings (`PUMPWATCH_ALERTS_MIN_INTERVAL_SECONDS` 0: raises, repeats and clears at every turn),
 * the agent is killed at varied moments while it decides their alerts and started again each time,
 * and what reached the hub, deduplicated by `id`, is a consistent alarm stream (alarmStreamProblems):
 * every repeat and clear after its raise, no episode raised twice, one clear per episode, and no
 * raise while the pump's previous episode is open (an alarm forgotten at a restart raises again).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { getJson } from '../support/agent-http.js';
import { alarmStreamProblems } from '../support/alerts.js';
import { LocalHub } from '../support/local-hub.js';
import { makeModel, normalValues, rng } from '../support/models.js';
import { startAgentProcess, type AgentProcess } from '../support/process.js';

const DEVICE = 'gw-alarm-kill';
const MODULE = 'pumpwatch';
const PUMPS = ['alarm-a', 'alarm-b'];
let dir: string;
let hub: LocalHub;
let connectionString: string;
const started: AgentProcess[] = [];
const r = rng(21);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-e2e-alarm-kill-'));
  hub = await LocalHub.start();
  connectionString = hub.addModule(DEVICE, MODULE);
  writeFileSync(join(dir, 'hub-ca.pem'), hub.ca);
  writeFileSync(join(dir, 'model.onnx'), makeModel({ version: 'alarm-kill' }));
});

afterAll(async () => {
  for (const agent of started) {
    if (agent.proc.exitCode === null && agent.proc.signalCode === null) {
      agent.proc.kill('SIGKILL');
      await agent.exited;
    }
  }
  await hub?.stop();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

const until = <T>(fn: () => T, timeout = 30_000) => vi.waitFor(fn, { timeout, interval: 100 });

async function startAgent(): Promise<AgentProcess> {
  const agent = await startAgentProcess({
    PUMPWATCH_DATA_DIR: join(dir, 'data'),
    PUMPWATCH_DEFAULT_MODEL: join(dir, 'model.onnx'),
    PUMPWATCH_HUB: 'auto',
    PUMPWATCH_MODULE_CONNECTION_STRING: connectionString,
    PUMPWATCH_DEVICE_ID: DEVICE,
    EdgeModuleCACertificateFile: join(dir, 'hub-ca.pem'),
    PUMPWATCH_ALERTS_MIN_INTERVAL_SECONDS: '0',
  });
  started.push(agent);
  await agent.waitReady();
  await until(async () => expect((await getJson(agent, '/status')).connectivity.hub).toMatch(/^connected/));
  return agent;
}

/** Each pump's own time of its next reading (1 Hz, from an hour ago), and its run: anomalous or not, readings left in it. */
let ts = Date.now() - 3_600_000;
const runs = new Map<string, { anomalous: boolean; left: number }>();
function nextReading(pumpId: string, i: number): { pumpId: string; ts: string; values: Record<string, number> } {
  const run = runs.get(pumpId) ?? { anomalous: false, left: 0 };
  // 1-3 anomalies, then 2-8 normal readings: from the 5th on, a clear
  if (run.left === 0) Object.assign(run, run.anomalous ? { anomalous: false, left: 2 + Math.floor(r() * 7) } : { anomalous: true, left: 1 + Math.floor(r() * 3) });
  run.left--;
  runs.set(pumpId, run);
  ts += 1000;
  return { pumpId, ts: new Date(ts).toISOString(), values: run.anomalous ? { Pressure: 4, Flow: 30, Current: 1.4 } : normalValues(r, i) };
}

/** Posts one reading of each pump per request, one request at a time, until `stop` is set or the agent dies. */
async function stream(agent: AgentProcess, stop: { value: boolean }): Promise<void> {
  for (let i = 0; !stop.value; i++) {
    try {
      const res = await fetch(`${agent.url}/readings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(PUMPS.map((p) => nextReading(p, i))) });
      await res.text();
    } catch {
      return; // killed
    }
  }
}

const delivered = () => hub.outputs(DEVICE, MODULE, 'alerts').map((m) => JSON.parse(m.body.toString()));

describe('anomaly alarms across SIGKILLs, the agent as a process', () => {
  it('delivers a consistent alarm stream (every repeat and clear after its raise, none twice) with the agent killed while it decides alerts', async () => {
    const kills = 6;
    for (let k = 0; k < kills; k++) {
      const agent = await startAgent();
      const before = delivered().length;
      const stop = { value: false };
      const posting = stream(agent, stop);
      // alerts decided and on their way by now, then a kill at a varied moment of the stream
      await until(() => expect(delivered().length).toBeGreaterThan(before + 3));
      await new Promise((resolve) => setTimeout(resolve, Math.floor(r() * 400)));
      agent.proc.kill('SIGKILL');
      expect(await agent.exited).toBe('SIGKILL');
      stop.value = true;
      await posting;
    }
    const last = await startAgent();
    // every pump back to normal for good: each open alarm clears
    const stop = { value: false };
    for (const pumpId of PUMPS) runs.set(pumpId, { anomalous: false, left: 1_000 });
    const posting = stream(last, stop);
    await until(async () => expect((await getJson(last, '/status')).alerts).toMatchObject({ pending: 0 }));
    stop.value = true;
    await posting;
    await until(async () => expect((await getJson(last, '/status')).alerts).toMatchObject({ pending: 0 }));
    last.proc.kill('SIGTERM');
    expect(await last.exited).toBe(0);

    const alerts = delivered();
    expect(alarmStreamProblems(alerts, { noneLost: true })).toEqual([]);
    const unique = new Map(alerts.map((a) => [a.id, a]));
    expect([...unique.values()].filter((a) => a.kind === 'anomaly-cleared').length).toBeGreaterThan(kills);
    expect([...unique.values()].filter((a) => a.kind === 'anomaly' && a.episode === a.seq).length).toBeGreaterThan(kills);
  }, 300_000);
});
