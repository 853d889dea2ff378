/**
 * `npm start` with nothing configured, as a real process: simulated pumps, the local IoT hub and
 * a local Azurite the agent starts itself; then the trainer, as its own process, reads what that
 * agent uploaded through the connection string the agent leaves for it (README, "The trainer").
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { packageRoot } from '../../agent/paths.js';
import { LOCAL_CONNECTION_STRING_FILE } from '../../agent/wiring/sync.js';
import { startAgentProcess, type AgentProcess } from '../support/process.js';

const run = promisify(execFile);
let dir: string;
let agent: AgentProcess;
const startedAt = Date.now();

const status = async () => (await (await fetch(`${agent.url}/status`)).json()) as any;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-standalone-'));
  // Nothing configured but where to keep data, a free port, and a faster pace for the test.
  agent = await startAgentProcess({
    PUMPWATCH_DATA_DIR: join(dir, 'data'),
    PUMPWATCH_SIMULATE: '',
    PUMPWATCH_SYNC: '',
    PUMPWATCH_HUB: '',
    PUMPWATCH_SIMULATE_RATE_HZ: '50',
    PUMPWATCH_SYNC_INTERVAL_SECONDS: '2',
  });
  await agent.waitReady(60_000);
}, 90_000);

afterAll(async () => {
  if (agent && agent.proc.exitCode === null) {
    agent.proc.kill('SIGTERM');
    await agent.exited;
  }
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

describe('the agent with nothing configured', () => {
  it('scores three simulated pumps, syncs to its own Azurite and takes its twin from the local hub', async () => {
    await vi.waitFor(
      async () => {
        const s = await status();
        expect(Object.keys(s.models)).toEqual(['default']);
        expect(s.readings.scored).toBeGreaterThan(3 * 600);
        expect(s.sync.uploadedRows).toBeGreaterThan(3 * 600);
        expect(s.connectivity.hub).toMatch(/^connected \(local hub/);
      },
      { timeout: 60_000, interval: 500 },
    );
    const s = await status();
    expect(s.sync.target).toMatch(/^devstoreaccount1\/pumpwatch at 127\.0\.0\.1:\d+$/);
    const pumps = ((await (await fetch(`${agent.url}/pumps`)).json()) as { pumps: Array<{ pumpId: string }> }).pumps.map((p) => p.pumpId);
    expect(pumps.sort()).toEqual(['sim-pump-1', 'sim-pump-2', 'sim-pump-3']);
  }, 70_000);

  it('leaves the connection string of its Azurite for the trainer, which trains a pump from the uploaded readings', async () => {
    const file = join(dir, 'data', 'azurite', LOCAL_CONNECTION_STRING_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const connectionString = readFileSync(file, 'utf8').trim();
    expect(connectionString).toMatch(/^DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=.+;BlobEndpoint=http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1;$/);
    // The agent never logs it.
    expect(agent.output()).not.toContain(connectionString.match(/AccountKey=([^;]+)/)![1]);

    const from = new Date(startedAt - 3_600_000).toISOString();
    const to = new Date(Date.now() + 3_600_000).toISOString();
    const { stdout } = await run(process.execPath, [join(packageRoot(), 'dist', 'trainer', 'cli.js'), 'train', '--source', 'sim-pump-1', '--from', from, '--to', to], {
      env: { PATH: process.env.PATH ?? '', PUMPWATCH_BLOB_CONNECTION_STRING: connectionString },
    });
    expect(stdout).toMatch(/^sim-pump-1: promoted /m);
  }, 60_000);

  it('stops cleanly on SIGTERM', async () => {
    agent.proc.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  }, 30_000);
});
