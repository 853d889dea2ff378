/**
 * PUMPWATCH_BLOB_SAS_URL checked at start-up by the agent process, against a real Azurite: an
 * account SAS URL (no container in its path, as `az storage account generate-sas` appended to the
 * account's endpoint gives) stops the agent with exit 2 and one stderr line naming the variable,
 * the value hidden. It used to be taken: every sync failed with a bare "400" and /status showed the
 * target `devstoreaccount1/undefined`. The same credential with the container in the path is what
 * the sync can use: it is taken, and the rows land in that container.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestAzurite, decodeAllBlobs, type TestAzurite } from '../support/azurite.js';
import { startAgentProcess, type AgentProcess } from '../support/process.js';

let dir: string;
let az: TestAzurite;
const started: AgentProcess[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-e2e-sas-url-'));
  az = await startTestAzurite();
});

afterAll(async () => {
  for (const agent of started) if (agent.proc.exitCode === null && agent.proc.signalCode === null) agent.proc.kill('SIGKILL');
  await az?.dispose();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

async function agentWith(sasUrl: string): Promise<AgentProcess> {
  const agent = await startAgentProcess({
    PUMPWATCH_DATA_DIR: join(dir, `data-${started.length}`),
    PUMPWATCH_SYNC: 'auto',
    PUMPWATCH_BLOB_SAS_URL: sasUrl,
    PUMPWATCH_SIMULATE: '1',
    PUMPWATCH_SIMULATE_RATE_HZ: '20',
    PUMPWATCH_SYNC_INTERVAL_SECONDS: '1',
  });
  started.push(agent);
  return agent;
}

/** The exit code, or 'ran' when the agent started instead (the URL taken: the test then fails at once, not after its timeout). */
const outcome = (agent: AgentProcess): Promise<number | string> => Promise.race([agent.exited, agent.waitReady().then(() => 'ran', () => agent.exited)]);

const signatureOf = (url: string): string => new URL(url).searchParams.get('sig')!;

describe('PUMPWATCH_BLOB_SAS_URL', () => {
  it('refuses an account SAS URL (no container in its path) at start: exit 2, one stderr line naming the variable, the value hidden', async () => {
    const url = az.accountSasUrl();
    const agent = await agentWith(url);
    let stderr = '';
    agent.proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    expect(await outcome(agent)).toBe(2);
    expect(stderr.split('\n')).toEqual([expect.stringMatching(/^pumpwatch-agent: PW_CONFIG_INVALID: invalid configuration: PUMPWATCH_BLOB_SAS_URL=\(value hidden\): it names no container: its path has 1 non-empty segment and must be \/ACCOUNT\/CONTAINER .*an account SAS URL\? Add the container to its path/), '']);
    expect(agent.output()).not.toContain(signatureOf(url));
    expect(agent.output()).not.toContain(encodeURIComponent(signatureOf(url)));
  });

  it('refuses a URL without a signature', async () => {
    const url = az.containerSasUrl('pumpwatch');
    const agent = await agentWith(url.replace(/[?&]sig=[^&]*/, ''));
    let stderr = '';
    agent.proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    expect(await outcome(agent)).toBe(2);
    expect(stderr).toMatch(/^pumpwatch-agent: PW_CONFIG_INVALID: invalid configuration: PUMPWATCH_BLOB_SAS_URL=\(value hidden\): it carries no signature/);
  });

  it('takes the same account SAS with the container in the path, and uploads into that container', async () => {
    const agent = await agentWith(az.accountSasUrl('acct-sas'));
    await agent.waitReady();
    await vi.waitFor(
      async () => {
        const status = (await (await fetch(`${agent.url}/status`)).json()) as { sync: { uploadedRows: number; target: string; lastError: unknown } };
        expect(status.sync.target).toMatch(/^devstoreaccount1\/acct-sas at /);
        expect(status.sync.lastError).toBeNull();
        expect(status.sync.uploadedRows).toBeGreaterThan(0);
      },
      { timeout: 30_000, interval: 200 },
    );
    agent.proc.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    const blobs = await decodeAllBlobs(az.container('acct-sas'));
    expect(blobs.flatMap((b) => b.lines).length).toBeGreaterThan(0);
  });
});
