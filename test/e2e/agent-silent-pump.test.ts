/**
 * Silent pumps across a SIGKILL, the agent as a process (dist/agent/cli.js) on the local hub, with
 * `PUMPWATCH_ALERTS_SILENT_AFTER_SECONDS` at its smallest, 60: a pump alerted `pump-silent` before
 * the kill is not alerted again after the restart, and gets its `pump-resumed` when its readings
 * come back; a pump that was still sending at the kill and sends nothing after the restart is
 * silent from the agent's start (`beganBeforeRestart`). Real minutes pass (the process's monotonic
 * clock cannot be moved); the order of the alerts on the hub is what is asserted.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { getJson } from '../support/agent-http.js';
import { hubAgents, type HubAgents } from '../support/hub-agents.js';
import { normalValues, rng } from '../support/models.js';
import type { AgentProcess } from '../support/process.js';

const DEVICE = 'gw-silent-e2e';
const MODULE = 'pumpwatch';
let agents: HubAgents;
const r = rng(8);
/** Each pump's own time of its next reading. */
const nextTs = new Map<string, number>();

beforeAll(async () => {
  agents = await hubAgents({ prefix: 'pumpwatch-e2e-silent-', deviceId: DEVICE, moduleId: MODULE, modelVersion: 'silent-e2e' });
});

afterAll(async () => {
  await agents?.close();
});

const startAgent = () => agents.start({ PUMPWATCH_ALERTS_SILENT_AFTER_SECONDS: '60' });

const until = <T>(fn: () => T, timeout = 30_000) => vi.waitFor(fn, { timeout, interval: 200 });
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Posts `n` readings of each pump at 1 Hz of its own time (ending now, at its first post); all accepted. */
async function post(agent: AgentProcess, pumps: readonly string[], n = 1): Promise<void> {
  const body = pumps.flatMap((pumpId) => {
    const start = nextTs.get(pumpId) ?? Date.now() - n * 1000;
    nextTs.set(pumpId, start + n * 1000);
    return Array.from({ length: n }, (_, i) => ({ pumpId, ts: new Date(start + i * 1000).toISOString(), values: normalValues(r, i) }));
  });
  const res = await fetch(`${agent.url}/readings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status, await res.clone().text()).toBe(202);
}

const alerts = (kind: string, pumpId: string) =>
  agents.hub
    .outputs(DEVICE, MODULE, 'alerts')
    .filter((m) => m.properties.type === kind && m.properties.pumpId === pumpId)
    .map((m) => JSON.parse(m.body.toString()));

describe('silent pumps across a SIGKILL, the agent as a process', () => {
  it('does not alert a pump alerted before the kill again, sends its pump-resumed when it sends after the restart, and alerts a pump silent since the restart', async () => {
    const first = await startAgent();
    await post(first, ['pump-a', 'pump-b'], 10);
    // pump-b goes on sending until the kill; pump-a stops
    for (let beat = 0; beat < 60 && alerts('pump-silent', 'pump-a').length === 0; beat++) {
      await post(first, ['pump-b']);
      await wait(2_000);
    }
    expect(alerts('pump-silent', 'pump-a')).toHaveLength(1);
    // edgeHub took it and the agent recorded it sent: nothing of it is pending at the kill
    await until(async () => expect((await getJson(first, '/status')).alerts).toMatchObject({ pending: 0, silentPumps: { 'pump-a': { alerted: true } } }));
    expect(alerts('pump-silent', 'pump-b')).toEqual([]);
    first.proc.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');

    const second = await startAgent();
    expect((await getJson(second, '/status')).alerts.silentPumps).toMatchObject({ 'pump-a': { alerted: true, beganBeforeRestart: true } });
    // pump-b, silent since the start, is alerted after the setting's 60 s; pump-a was due at the same check
    await until(() => expect(alerts('pump-silent', 'pump-b')).toHaveLength(1), 120_000);
    expect(alerts('pump-silent', 'pump-b')[0]).toMatchObject({ kind: 'pump-silent', silence: { beganBeforeRestart: true } });
    expect(alerts('pump-silent', 'pump-b')[0].silence.silentSeconds).toBeGreaterThanOrEqual(60);
    // every alert decided is on the hub by now
    await until(async () => expect((await getJson(second, '/status')).alerts).toMatchObject({ pending: 0, silentPumps: { 'pump-a': { alerted: true }, 'pump-b': { alerted: true } } }));
    expect(alerts('pump-silent', 'pump-a')).toHaveLength(1);

    await post(second, ['pump-a'], 5);
    await until(() => expect(alerts('pump-resumed', 'pump-a')).toHaveLength(1));
    expect(alerts('pump-resumed', 'pump-a')[0]).toMatchObject({ kind: 'pump-resumed', pumpId: 'pump-a', silence: { beganBeforeRestart: true, intervalSeconds: 1 } });
    expect(alerts('pump-silent', 'pump-a')).toHaveLength(1);
    expect(alerts('pump-resumed', 'pump-b')).toEqual([]);
    second.proc.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  }, 300_000);
});
