/**
 * A PUMPWATCH_DATA_DIR the agent cannot make: under a filesystem that takes no new folders (/proc),
 * or through a file. Each is a bad setting, told as the others are (exit 2, one stderr line naming
 * the variable). Under /proc the agent spun at 100 % CPU for ever with no output (node's recursive
 * mkdir loops there), and SIGTERM did not end it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgentProcess, type AgentProcess } from '../support/process.js';

let dir: string;
const started: AgentProcess[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-e2e-datadir-'));
});

afterAll(() => {
  // A spinning agent (the bug) does not end on SIGTERM.
  for (const agent of started) if (agent.proc.exitCode === null && agent.proc.signalCode === null) agent.proc.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

async function run(dataDir: string): Promise<{ code: number | string; stderr: string }> {
  const agent = await startAgentProcess({ PUMPWATCH_DATA_DIR: dataDir });
  started.push(agent);
  let stderr = '';
  agent.proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await Promise.race([agent.exited, agent.waitReady().then(() => 'ran', () => agent.exited)]);
  return { code, stderr };
}

describe('a PUMPWATCH_DATA_DIR the agent cannot make', () => {
  it('stops the agent with exit 2 naming PUMPWATCH_DATA_DIR under a filesystem that takes no folders (/proc), instead of spinning', async () => {
    const { code, stderr } = await run('/proc/pumpwatch-nope/data');
    expect(code).toBe(2);
    expect(stderr.split('\n')).toEqual([
      'pumpwatch-agent: PW_CONFIG_INVALID: invalid configuration: PUMPWATCH_DATA_DIR="/proc/pumpwatch-nope/data": cannot create the folder /proc/pumpwatch-nope: the filesystem of /proc takes no new folders (a virtual one, such as /proc or /sys?); set it to a folder on a writable volume (the container\'s is /data)',
      '',
    ]);
  });

  it('stops the agent with exit 2 naming the file a PUMPWATCH_DATA_DIR goes through, or is', async () => {
    const file = join(dir, 'not-a-folder');
    writeFileSync(file, 'x');
    for (const [dataDir, why] of [
      [join(file, 'data'), `${file} is a file, not a folder (the path goes through it)`],
      [file, `${file} is a file, not a folder`],
    ] as const) {
      const { code, stderr } = await run(dataDir);
      expect(code, dataDir).toBe(2);
      expect(stderr.split('\n')).toEqual([`pumpwatch-agent: PW_CONFIG_INVALID: invalid configuration: PUMPWATCH_DATA_DIR=${JSON.stringify(dataDir)}: ${why}`, '']);
    }
  });

  it('makes the missing folders of a PUMPWATCH_DATA_DIR and starts', async () => {
    const dataDir = join(dir, 'a', 'b', 'data');
    const { code } = await run(dataDir);
    expect(code).toBe('ran');
  });
});
