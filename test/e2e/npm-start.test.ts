/**
 * `npm start` as the README gives it: SIGTERM to npm stops the agent cleanly (exit 0, port freed).
 * npm forwards the signal only to the script's own process; a script that ran node under a shell
 * left the agent running, orphaned, holding its port and buffer, while npm exited 143.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../agent/paths.js';
import { freePort } from '../support/process.js';

const dir = mkdtempSync(join(tmpdir(), 'pumpwatch-npm-start-'));
afterAll(() => rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }));

/** `npm start` in a process group of its own (as a terminal runs it), answering on a free port. */
async function startNpm(dataDir: string): Promise<{ npm: ChildProcess; url: string; output: () => string; exited: Promise<number | string> }> {
  const port = await freePort();
  const npm = spawn('npm', ['start', '--silent'], {
    cwd: packageRoot(),
    env: { ...process.env, PUMPWATCH_DATA_DIR: dataDir, PUMPWATCH_HTTP_PORT: String(port), PUMPWATCH_SIMULATE: '0', PUMPWATCH_SYNC: 'off', PUMPWATCH_HUB: 'off', PUMPWATCH_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  npm.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  npm.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) => npm.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const url = `http://127.0.0.1:${port}/healthz`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (npm.exitCode !== null) throw new Error(`npm start exited early:\n${out}`);
    if (Date.now() > deadline) throw new Error(`the agent never answered:\n${out}`);
    try {
      if ((await fetch(url)).status === 200) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { npm, url, output: () => out, exited };
}

describe('npm start', () => {
  it('stops cleanly on Ctrl-C or a SIGTERM to its process group, though the agent gets the signal twice (from the terminal, and forwarded by npm)', async () => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const data = join(dir, signal);
      const { npm, url, output, exited } = await startNpm(data);
      process.kill(-npm.pid!, signal);
      const code = await exited;
      expect(output(), signal).not.toMatch(/exiting now/);
      expect(code, output()).not.toBe(1);
      await expect(fetch(url)).rejects.toThrow();
      expect(existsSync(join(data, 'buffer.sqlite-wal')), `${signal}: SQLite closed`).toBe(false);
    }
  }, 90_000);

  it('stops the agent and exits 0 on SIGTERM, leaving no agent behind', async () => {
    const { npm, url, output, exited } = await startNpm(dir);
    npm.kill('SIGTERM'); // npm alone, as a service manager signals it
    expect(await exited, output()).toBe(0);
    await expect(fetch(url)).rejects.toThrow(); // nothing listens any more: the agent stopped too
  }, 60_000);
});
