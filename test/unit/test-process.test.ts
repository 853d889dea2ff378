/**
 * The tests' agent process helper (test/support/process.ts): what e2e tests that kill the agent rely on.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startAgentProcess } from '../support/process.js';

const work = mkdtempSync(join(tmpdir(), 'pw-test-process-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('test agent process', () => {
  it('fails waitReady at once, naming the signal, when the agent was killed before it was ready', async () => {
    const agent = await startAgentProcess({ PUMPWATCH_DATA_DIR: join(work, 'data') });
    agent.proc.kill('SIGKILL');
    expect(await agent.exited).toBe('SIGKILL');
    // Before, it probed the dead port until its deadline and said "not ready after …".
    await expect(agent.waitReady(10_000)).rejects.toThrow(/^agent exited with SIGKILL before it was ready/);
  });
});
