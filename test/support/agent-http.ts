/**
 * Agents as real processes for the e2e tests that post readings to them and read their endpoints:
 * a pool a test file starts them from (each waited ready; all killed in afterAll), a clean stop,
 * posting readings, and reading JSON.
 */
import { expect } from 'vitest';
import type { Reading } from '../../buffer/types.js';
import { startAgentProcess, type AgentProcess } from './process.js';

/** Agents a test file starts with `start` (each waited ready); `killAll` (afterAll) SIGKILLs those still running. */
export function agentPool(): { start: (env: Record<string, string>) => Promise<AgentProcess>; killAll: () => Promise<void> } {
  const agents: AgentProcess[] = [];
  return {
    start: async (env) => {
      const agent = await startAgentProcess(env);
      agents.push(agent);
      await agent.waitReady();
      return agent;
    },
    killAll: async () => {
      for (const a of agents) {
        if (a.proc.exitCode === null && a.proc.signalCode === null) {
          a.proc.kill('SIGKILL');
          await a.exited;
        }
      }
    },
  };
}

/** SIGTERM, and the agent exits 0. */
export async function stopAgent(agent: AgentProcess): Promise<void> {
  agent.proc.kill('SIGTERM');
  expect(await agent.exited).toBe(0);
}

/** POSTs the readings (ISO times) in batches of `batch`; each is answered 202 with every reading accepted. */
export async function postReadings(agent: AgentProcess, readings: readonly Reading[], batch = 500): Promise<void> {
  for (let i = 0; i < readings.length; i += batch) {
    const part = readings.slice(i, i + batch);
    const res = await fetch(`${agent.url}/readings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(part.map((r) => ({ ...r, ts: new Date(r.ts).toISOString() }))) });
    expect(res.status, await res.clone().text()).toBe(202);
    expect(((await res.json()) as { accepted: number }).accepted).toBe(part.length);
  }
}

/** GET `path`: 200, its JSON. */
export async function getJson(agent: AgentProcess, path: string): Promise<any> {
  const res = await fetch(`${agent.url}${path}`);
  expect(res.status).toBe(200);
  return res.json();
}
