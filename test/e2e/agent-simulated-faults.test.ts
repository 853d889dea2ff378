/**
 * The standalone demo shows what it injected: the agent as a real process with a simulated pump
 * whose random faults come within a second, its log lines of each onset, and /status's `simulator`
 * section (absent from an agent without simulated pumps).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgentProcess, type AgentProcess } from '../support/process.js';

let dir: string;
const started: AgentProcess[] = [];

async function start(env: Record<string, string>): Promise<AgentProcess> {
  const agent = await startAgentProcess({ PUMPWATCH_DATA_DIR: join(dir, `data-${started.length}`), PUMPWATCH_LOG_LEVEL: 'info', ...env });
  started.push(agent);
  await agent.waitReady();
  return agent;
}

/** The agent's first log line with this event (waits for it; the agent's exit fails the wait). */
async function logEvent(agent: AgentProcess, event: string): Promise<Record<string, unknown>> {
  for (;;) {
    const line = agent.output().split('\n').find((l) => l.includes(`"event":"${event}"`));
    if (line !== undefined) return JSON.parse(line) as Record<string, unknown>;
    if (agent.proc.exitCode !== null) throw new Error(`agent exited before logging ${event}:\n${agent.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-e2e-simfaults-'));
});

afterAll(async () => {
  for (const a of started) {
    if (a.proc.exitCode !== null || a.proc.signalCode !== null) continue;
    a.proc.kill('SIGTERM');
    await a.exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('agent: the simulated faults it injected', () => {
  it('logs a fault onset with its pump, kind, peak and planned end, and lists it under way in /status', async () => {
    const agent = await start({ PUMPWATCH_SIMULATE: '1', PUMPWATCH_SIMULATE_FAULT_INTERVAL_MINUTES: '0.01' });
    const onset = await logEvent(agent, 'simulated-fault-onset');
    expect(onset).toMatchObject({ level: 30, component: 'simulator', pumpId: 'sim-pump-1' });
    expect(['cavitation', 'bearing-wear', 'leak', 'valve']).toContain(onset.kind);
    expect(onset.peak).toBeGreaterThan(0);
    expect(Date.parse(String(onset.plannedEnd))).toBeGreaterThan(Date.parse(String(onset.since)));
    const status = (await (await fetch(`${agent.url}/status`)).json()) as { simulator?: { faults: string; pumps: Record<string, { current: Record<string, unknown>[]; recentEnded: unknown[] }> } };
    expect(status.simulator?.faults).toBe('random');
    // the shortest random fault lasts 2 minutes: the one logged is still under way
    const current = status.simulator?.pumps['sim-pump-1']?.current ?? [];
    const logged = current.find((f) => f.kind === onset.kind && f.since === onset.since);
    expect(logged).toMatchObject({ peak: onset.peak, plannedEnd: onset.plannedEnd });
    expect(logged?.severity).toBeGreaterThanOrEqual(0);
  });

  it('has no simulator section without simulated pumps', async () => {
    const agent = await start({ PUMPWATCH_SIMULATE: '0' });
    const status = (await (await fetch(`${agent.url}/status`)).json()) as Record<string, unknown>;
    expect(status.device).toBeDefined();
    expect(status).not.toHaveProperty('simulator');
  });
});
