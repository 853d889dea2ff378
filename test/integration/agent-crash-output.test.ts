/**
 * What the agent process (dist/agent/cli.js) prints when it dies of an error nothing caught: the
 * message with secrets removed and the call frames, exit code 1; never the raw stack, whose first
 * lines repeat a message that may be an SDK response body echoing a signature.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../agent/paths.js';

const AGENT = join(packageRoot(), 'dist', 'agent', 'cli.js');
const MESSAGE = String.raw`Bad request\nCannot PUT /devstoreaccount1/pumpwatch/b.gz?sv=2021&amp;sig=LEAKSIG&amp;se=1 (%26sig%3DLEAKPCT)\nauthorization=SharedKey devstoreaccount1:LEAKHMAC=`;

/** Preloaded modules (node --import) that make the agent fail in each way once it is loaded. */
const PRELOADS: Record<string, string> = {
  // main() rejects: writing the help text throws.
  'main-rejects': `
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = (chunk, ...rest) => {
      if (String(chunk).startsWith('pumpwatch-agent: the PumpWatch edge agent')) throw new Error('${MESSAGE}');
      return write(chunk, ...rest);
    };`,
  // A promise rejected with no handler, and an exception thrown from a timer, once cli.js has set up (or after 5 s).
  'unhandled-rejection': whenLoaded(`Promise.reject(new Error('${MESSAGE}'));`),
  'uncaught-exception': whenLoaded(`throw new Error('${MESSAGE}');`),
};

function whenLoaded(action: string): string {
  return `
    let polls = 0;
    const timer = setInterval(() => {
      if (process.listenerCount('uncaughtException') === 0 && ++polls < 500) return;
      clearInterval(timer);
      ${action}
    }, 10);`;
}

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pw-agent-crash-'));
  for (const [name, source] of Object.entries(PRELOADS)) await writeFile(join(dir, `${name}.mjs`), source);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function runAgent(preload: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', join(dir, `${preload}.mjs`), AGENT, '--help'], { env: { PATH: process.env.PATH ?? '' }, timeout: 30_000 }, (err, _stdout, stderr) => {
      resolve({ code: typeof err?.code === 'number' ? err.code : 0, stderr });
    });
  });
}

describe('agent process crash output', () => {
  it.each([
    ['main-rejects', 'pumpwatch-agent: Error: Bad request'],
    ['unhandled-rejection', 'pumpwatch-agent: unhandled rejection: Error: Bad request'],
    ['uncaught-exception', 'pumpwatch-agent: uncaught exception: Error: Bad request'],
  ])('%s: exits 1 and prints the redacted message and the call frames only', async (preload, first) => {
    const { code, stderr } = await runAgent(preload);
    expect(code).toBe(1);
    expect(stderr).not.toContain('LEAK');
    expect(stderr.startsWith(`${first}\n`)).toBe(true);
    expect(stderr).toContain('Cannot PUT /devstoreaccount1/pumpwatch/b.gz?sv=[redacted]&amp;sig=[redacted]&amp;se=[redacted] (%26sig%3D[redacted])');
    expect(stderr).toContain('authorization=SharedKey devstoreaccount1:[redacted]');
    expect(stderr).toMatch(/\n\s+at /);
  });
});
