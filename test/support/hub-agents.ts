import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, vi } from 'vitest';
import { createLogger } from '../../agent/logger.js';
import { startTestAgent, type TestAgent } from './agent.js';
import { getJson } from './agent-http.js';
import { LocalHub } from './local-hub.js';
import { makeModel } from './models.js';
import { startAgentProcess, type AgentProcess } from './process.js';

/** Agent processes (dist/agent/cli.js) of one module on a local hub, one data folder for them all (a restart finds the last run's buffer). */
export interface HubAgents {
  dir: string;
  hub: LocalHub;
  /** Starts an agent with `env` added, ready and connected to the hub. */
  start: (env?: Record<string, string>) => Promise<AgentProcess>;
  /** Kills the agents still running, stops the hub and removes the folder. */
  close: () => Promise<void>;
}

export async function hubAgents(opts: { prefix: string; deviceId: string; moduleId: string; modelVersion: string }): Promise<HubAgents> {
  const dir = mkdtempSync(join(tmpdir(), opts.prefix));
  const hub = await LocalHub.start();
  const connectionString = hub.addModule(opts.deviceId, opts.moduleId);
  writeFileSync(join(dir, 'hub-ca.pem'), hub.ca);
  writeFileSync(join(dir, 'model.onnx'), makeModel({ version: opts.modelVersion }));
  const started: AgentProcess[] = [];
  return {
    dir,
    hub,
    start: async (env = {}) => {
      const agent = await startAgentProcess({
        PUMPWATCH_DATA_DIR: join(dir, 'data'),
        PUMPWATCH_DEFAULT_MODEL: join(dir, 'model.onnx'),
        PUMPWATCH_HUB: 'auto',
        PUMPWATCH_MODULE_CONNECTION_STRING: connectionString,
        PUMPWATCH_DEVICE_ID: opts.deviceId,
        EdgeModuleCACertificateFile: join(dir, 'hub-ca.pem'),
        ...env,
      });
      started.push(agent);
      await agent.waitReady();
      await vi.waitFor(async () => expect((await getJson(agent, '/status')).connectivity.hub).toMatch(/^connected/), { timeout: 30_000, interval: 200 });
      return agent;
    },
    close: async () => {
      for (const agent of started) {
        if (agent.proc.exitCode === null && agent.proc.signalCode === null) {
          agent.proc.kill('SIGKILL');
          await agent.exited;
        }
      }
      await hub.stop();
      rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
    },
  };
}

/** An agent in this process that is `moduleId` of `deviceId` on a fresh local hub, subscribed to its inputs, its warnings and errors kept in `lines`. */
export interface LoggedHubAgent {
  hub: LocalHub;
  t: TestAgent;
  lines: Array<Record<string, any>>;
  /** Stops the agent, then the hub. */
  stop: () => Promise<void>;
}

export async function loggedHubAgent(deviceId: string, moduleId: string, opts: { monotonic?: () => number } = {}): Promise<LoggedHubAgent> {
  const hub = await LocalHub.start();
  const connectionString = hub.addModule(deviceId, moduleId);
  const lines: Array<Record<string, any>> = [];
  const logger = createLogger('warn', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, any>) });
  const t = await startTestAgent(
    { PUMPWATCH_HUB: 'auto', PUMPWATCH_MODULE_CONNECTION_STRING: connectionString, PUMPWATCH_DEVICE_ID: deviceId },
    { hubCa: hub.ca, logger, monotonic: opts.monotonic },
  );
  await vi.waitFor(() => expect(hub.subscriptions(deviceId, moduleId).some((f) => f.includes('/inputs/'))).toBe(true), { timeout: 30_000, interval: 50 });
  return {
    hub,
    t,
    lines,
    stop: async () => {
      await t.stop();
      await hub.stop();
    },
  };
}
