/**
 * The container image run with nothing configured (`docker run -p 8080:8080 pumpwatch`): standalone,
 * but the image has only the production dependencies (`npm ci --omit=dev`), so no Azurite and no
 * local hub. The agent runs from a copy of dist/ beside a node_modules of exactly those packages
 * (from package-lock.json), as the Dockerfile's runtime stage lays them out.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { packageRoot } from '../../agent/paths.js';
import { freePort } from '../support/process.js';

const root = packageRoot();
let app: string;
let proc: ChildProcess;
let url: string;
let output = '';

/** /app of the image: dist/, the bundled model, the page, package.json and the production node_modules. */
function imageLayout(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pumpwatch-image-'));
  cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
  mkdirSync(join(dir, 'agent', 'assets'), { recursive: true });
  cpSync(join(root, 'agent', 'assets', 'default-model.onnx'), join(dir, 'agent', 'assets', 'default-model.onnx'));
  cpSync(join(root, 'agent', 'page'), join(dir, 'agent', 'page'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), readFileSync(join(root, 'package.json')));
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  for (const [path, info] of Object.entries(lock.packages)) {
    const name = path.slice('node_modules/'.length);
    if (!path.startsWith('node_modules/') || info.dev === true || name.includes('/node_modules/')) continue;
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    symlinkSync(join(root, path), join(dir, path));
  }
  return dir;
}

beforeAll(async () => {
  app = imageLayout();
  // The layout is the image's: Azurite cannot be found from its dist/.
  expect(() => createRequire(join(app, 'dist', 'agent', 'cli.js')).resolve('azurite/package.json')).toThrow();
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  // Nothing configured but where to keep data and a free port (the Dockerfile sets those two too).
  proc = spawn(process.execPath, [join(app, 'dist', 'agent', 'cli.js')], {
    cwd: app,
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', PUMPWATCH_DATA_DIR: join(app, 'data'), PUMPWATCH_HTTP_PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  await vi.waitFor(
    async () => {
      if (proc.exitCode !== null) throw new Error(`agent exited with ${proc.exitCode}:\n${output}`);
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
    },
    { timeout: 60_000, interval: 200 },
  );
}, 90_000);

afterAll(async () => {
  if (proc && proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    await exited;
  }
  if (app) rmSync(app, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

describe('the container image with nothing configured', () => {
  it('runs healthy with sync off, says once why and how to configure a target, and keeps every reading', async () => {
    // Past a few sync intervals (30 s by default would be long: the sync part is not there to wait for).
    await vi.waitFor(
      async () => {
        const s = (await (await fetch(`${url}/status`)).json()) as any;
        expect(s.readings.accepted).toBeGreaterThan(3 * 3);
      },
      { timeout: 30_000, interval: 200 },
    );
    const health = await fetch(`${url}/healthz`);
    const body = (await health.json()) as { status: string; checks: Record<string, string>; failing?: string[] };
    expect(health.status, JSON.stringify(body)).toBe(200);
    expect(body.checks.sync).toBeUndefined();
    const s = (await (await fetch(`${url}/status`)).json()) as any;
    expect(s.standalone).toBe(true);
    expect(s.sync.state).toBe('off');
    expect(s.sync.reason).toMatch(/Azurite .*is not installed.*set PUMPWATCH_BLOB_CONNECTION_STRING or PUMPWATCH_BLOB_SAS_URL/);
    expect(s.connectivity.blob).toBe('off');
    expect(s.buffer.unsynced).toBe(s.buffer.rows);
    const warnings = output.split('\n').filter((l) => l.includes('"code":"PW_AZURITE_MISSING"'));
    expect(warnings, output).toHaveLength(1);
    expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 40, component: 'sync' });
    expect(output).not.toContain('PW_SYNC_NOT_CONFIGURED');
  }, 60_000);
});
