/**
 * PUMPWATCH_MODULE_CONNECTION_STRING checked at start-up by the agent process (dist/agent/cli.js),
 * as a bad Blob Storage connection string is: a string the module client cannot sign in with stops
 * the agent with exit 2 and one line naming the missing part, never the value, instead of an agent
 * that retries for ever ("missing the property: DeviceId", or "Not authorized" without ModuleId).
 * A string the agent does not use (the hub off) is not checked; a real one connects.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LocalHub } from '../support/local-hub.js';
import { startAgentProcess, type AgentProcess } from '../support/process.js';

const KEY = Buffer.from('a module key that must not be printed').toString('base64');
let dir: string;
let hub: LocalHub;
/** Every agent started, so that one that did not stop (the check missing: it retries for ever) is stopped after the tests. */
const started: AgentProcess[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-e2e-module-cs-'));
  hub = await LocalHub.start();
  writeFileSync(join(dir, 'hub-ca.pem'), hub.ca);
});

afterAll(async () => {
  for (const agent of started) if (agent.proc.exitCode === null && agent.proc.signalCode === null) await stop(agent);
  await hub?.stop();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

/** The agent process with this module connection string and the hub on; `env` adds to it. */
async function agentWith(connectionString: string, env: Record<string, string> = {}): Promise<AgentProcess> {
  const agent = await startAgentProcess({
    PUMPWATCH_DATA_DIR: join(dir, `data-${Math.random().toString(36).slice(2)}`),
    PUMPWATCH_HUB: 'auto',
    PUMPWATCH_MODULE_CONNECTION_STRING: connectionString,
    EdgeModuleCACertificateFile: join(dir, 'hub-ca.pem'),
    PUMPWATCH_LOG_LEVEL: 'info',
    ...env,
  });
  started.push(agent);
  return agent;
}

async function stop(agent: AgentProcess): Promise<number | string> {
  agent.proc.kill('SIGTERM');
  return agent.exited;
}

describe('a PUMPWATCH_MODULE_CONNECTION_STRING the module client cannot sign in with', () => {
  it.each([
    ['without DeviceId', `HostName=localhub;ModuleId=pumpwatch;SharedAccessKey=${KEY};GatewayHostName=localhost:1`, 'The connection string is missing the property: DeviceId'],
    ['without ModuleId (a device\'s)', `HostName=localhub;DeviceId=gw-cs;SharedAccessKey=${KEY};GatewayHostName=localhost:1`, 'it has no ModuleId: a device\'s connection string?'],
  ])('stops the agent with exit 2 and one stderr line naming the missing part, the value hidden: %s', async (_what, connectionString, reason) => {
    const agent = await agentWith(connectionString);
    let stderr = '';
    agent.proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    expect(await agent.exited).toBe(2);
    expect(stderr.split('\n')).toEqual([expect.stringMatching(/^pumpwatch-agent: PW_CONFIG_INVALID: invalid configuration: PUMPWATCH_MODULE_CONNECTION_STRING=\(value hidden\): not a module connection string: /), '']);
    expect(stderr).toContain(reason);
    expect(agent.output()).not.toContain(KEY);
    expect(agent.output()).not.toContain('could not connect');
  });

  it('is not checked with the hub off, where the agent does not use it', async () => {
    const agent = await agentWith(`HostName=localhub;ModuleId=pumpwatch;SharedAccessKey=${KEY}`, { PUMPWATCH_HUB: 'off' });
    await agent.waitReady();
    expect(await stop(agent)).toBe(0);
  });
});

describe('a module connection string of the local hub', () => {
  it('is taken, and the agent connects with it', async () => {
    const agent = await agentWith(hub.addModule('gw-cs', 'pumpwatch'), { PUMPWATCH_DEVICE_ID: 'gw-cs' });
    try {
      await agent.waitReady();
      await vi.waitFor(
        async () => {
          const status = (await (await fetch(`${agent.url}/status`)).json()) as { connectivity: { hub: string } };
          expect(status.connectivity.hub, agent.output()).toBe('connected');
        },
        { timeout: 30_000, interval: 200 },
      );
    } finally {
      expect(await stop(agent)).toBe(0);
    }
  });
});
