/**
 * A status endpoint the agent process cannot listen on because of its setting: a
 * PUMPWATCH_HTTP_HOST that does not resolve or is not an address of the gateway, a
 * PUMPWATCH_HTTP_PORT another process holds or the agent may not use. Each is a bad setting, told as
 * the others are (exit 2, one stderr line naming the variable and the value), not a crash (exit 1
 * with only a JSON log line, which IoT Edge restarts for ever with nothing saying which setting).
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startAgentProcess, type AgentProcess } from '../support/process.js';

let dir: string;
const started: AgentProcess[] = [];
const root = process.getuid?.() === 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-e2e-listen-'));
  chmodSync(dir, 0o777); // the agent run as another user (EACCES) writes its data here
});

afterAll(() => {
  for (const agent of started) if (agent.proc.exitCode === null && agent.proc.signalCode === null) agent.proc.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

/** The agent's exit code and its stderr, or 'ran' when it started instead (then the test fails at once). */
async function run(env: Record<string, string>, port?: number, opts: { uid?: number; gid?: number } = {}): Promise<{ code: number | string; stderr: string; output: string }> {
  const agent = await startAgentProcess({ PUMPWATCH_DATA_DIR: join(dir, `data-${started.length}`), PUMPWATCH_LOG_LEVEL: 'info', ...env }, port, opts);
  started.push(agent);
  let stderr = '';
  agent.proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await Promise.race([agent.exited, agent.waitReady().then(() => 'ran', () => agent.exited)]);
  return { code, stderr, output: agent.output() };
}

describe('a status endpoint setting the agent cannot listen with', () => {
  it.each([
    ['a host name that does not resolve (ENOTFOUND)', 'gw17.lan.invalid', /^pumpwatch-agent: PW_CONFIG_INVALID: invalid configuration: PUMPWATCH_HTTP_HOST="gw17\.lan\.invalid": no such host \(the name does not resolve, ENOTFOUND\); set an address of this gateway/],
    ['an address that is not the gateway\'s (EADDRNOTAVAIL)', '192.0.2.1', /^pumpwatch-agent: PW_CONFIG_INVALID: invalid configuration: PUMPWATCH_HTTP_HOST="192\.0\.2\.1": not an address of this gateway \(EADDRNOTAVAIL\)/],
  ])('stops the agent with exit 2 and one stderr line naming PUMPWATCH_HTTP_HOST: %s', async (_what, host, line) => {
    const { code, stderr, output } = await run({ PUMPWATCH_HTTP_HOST: host });
    expect(code).toBe(2);
    expect(stderr.split('\n')).toEqual([expect.stringMatching(line), '']);
    expect(output).not.toContain('agent failed to start'); // no crash report beside it
  });

  it('stops the agent with exit 2 naming PUMPWATCH_HTTP_PORT when another process holds the port (EADDRINUSE)', async () => {
    const port = await freePort();
    const holder: Server = createServer((socket) => socket.destroy()); // the readiness probe's connections too: close() then ends
    await new Promise<void>((resolve) => holder.listen(port, '127.0.0.1', resolve));
    try {
      const { code, stderr } = await run({}, port);
      expect(code).toBe(2);
      expect(stderr.split('\n')).toEqual([`pumpwatch-agent: PW_CONFIG_INVALID: invalid configuration: PUMPWATCH_HTTP_PORT="${port}": the port is already in use on 127.0.0.1 (EADDRINUSE): another process listens on it (a second agent?); stop it or set another port`, '']);
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });

  it.runIf(root)('stops the agent with exit 2 naming PUMPWATCH_HTTP_PORT when it may not use the port (EACCES: below 1024, not root)', async () => {
    const { code, stderr } = await run({}, 81, { uid: 1000, gid: 1000 });
    expect(code).toBe(2);
    expect(stderr).toMatch(/^pumpwatch-agent: PW_CONFIG_INVALID: invalid configuration: PUMPWATCH_HTTP_PORT="81": not permitted to listen on this port \(EACCES/);
  });
});
