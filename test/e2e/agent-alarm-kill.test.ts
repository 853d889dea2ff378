/**
 * The anomaly alarms across SIGKILLs, the agent as a process (dist/agent/cli.js) on the local hub
 * (the real azure-iot-device client): two pumps flicker between runs of anomalous and normal
 * readings (`PUMPWATCH_ALERTS_MIN_INTERVAL_SECONDS` 0: raises, repeats and clears at every turn),
 * the agent is killed at varied moments while it decides their alerts and started again each time,
 * and what reached the hub, deduplicated by `id`, is a consistent alarm stream (alarmStreamProblems):
 * every repeat and clear after its raise, no episode raised twice, one clear per episode, and no
 * raise while the pump's previous episode is open (an alarm forgotten at a restart raises again).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { getJson } from '../support/agent-http.js';
import { alarmStreamProblems } from '../support/alerts.js';
import { hubAgents, type HubAgents } from '../support/hub-agents.js';
import { normalValues, rng } from '../support/models.js';
import type { AgentProcess } from '../support/process.js';

const DEVICE = 'gw-alarm-kill';
const MODULE = 'pumpwatch';
const PUMPS = ['alarm-a', 'alarm-b'];
let agents: HubAgents;
const r = rng(21);

beforeAll(async () => {
  agents = await hubAgents({ prefix: 'pumpwatch-e2e-alarm-kill-', deviceId: DEVICE, moduleId: MODULE, modelVersion: 'alarm-kill' });
});

afterAll(async () => {
  await agents?.close();
});

const until = <T>(fn: () => T, timeout = 30_000) => vi.waitFor(fn, { timeout, interval: 100 });
const startAgent = () => agents.start({ PUMPWATCH_ALERTS_MIN_INTERVAL_SECONDS: '0' });

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

const delivered = () => agents.hub.outputs(DEVICE, MODULE, 'alerts').map((m) => JSON.parse(m.body.toString()));
/** How many distinct raises (an episode's first anomaly alert) or clears reached the hub so far. */
const uniqueOf = (kind: 'raise' | 'clear'): number =>
  new Set(delivered().filter((a) => (kind === 'clear' ? a.kind === 'anomaly-cleared' : a.kind === 'anomaly' && a.episode === a.seq)).map((a) => a.id)).size;

describe('anomaly alarms across SIGKILLs, the agent as a process', () => {
  it('delivers a consistent alarm stream (every repeat and clear after its raise, none twice) with the agent killed while it decides alerts', async () => {
    const kills = 6;
    for (let k = 0; k < kills; k++) {
      const agent = await startAgent();
      const before = delivered().length;
      const raisedBefore = uniqueOf('raise');
      const clearedBefore = uniqueOf('clear');
      const stop = { value: false };
      const posting = stream(agent, stop);
      // alerts decided and on their way by now, a raise and a clear of this life among them (the
      // stream's pace depends on the machine: on a busy one four alerts could all be repeats, and
      // six lives then made five clears in all), then a kill at a varied moment of the stream
      await until(() => {
        expect(delivered().length).toBeGreaterThan(before + 3);
        expect(uniqueOf('raise')).toBeGreaterThan(raisedBefore);
        expect(uniqueOf('clear')).toBeGreaterThan(clearedBefore);
      });
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
  }, 300_000);
});
