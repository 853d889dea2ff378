/**
 * The container image: only the production dependencies (`npm ci --omit=dev`), so no Azurite and
 * no local hub. The agent runs from a copy of dist/ beside a node_modules of exactly those packages
 * (from package-lock.json), as the Dockerfile's runtime stage lays them out. The packages are
 * symlinks to the repository's, and node runs with --preserve-symlinks: without it, code inside a
 * production package resolves from the package's real folder, which sees every devDependency, and
 * the image's missing ones would go unnoticed here.
 * Two runs: with nothing configured (`docker run -p 8080:8080 pumpwatch`: standalone), and as
 * IoT Edge runs it (a hub and a Blob Storage target), which loads and uses the IoT device SDK with
 * its MQTT transport, the Blob SDK and the sync worker thread.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { packageRoot } from '../../agent/paths.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { LocalHub } from '../support/local-hub.js';
import { normalValues, rng } from '../support/models.js';
import { freePort } from '../support/process.js';

const root = packageRoot();
/** How node resolves in the image: from the paths as laid out, never a symlink's target. */
const NODE_FLAGS = ['--preserve-symlinks', '--preserve-symlinks-main'];
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
let app: string;

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

/**
 * The devDependencies node finds from the image's dist/ and from inside each production package
 * (resolved as node resolves it, flags and all), as `<from> → <devDependency>`.
 */
function devDependenciesReachable(flags: string[]): string[] {
  const script = `
    const { createRequire } = require('node:module');
    const { join } = require('node:path');
    const [deps, devs] = JSON.parse(process.argv[1]);
    const found = (req, name) => {
      try { req.resolve(name); return true; } catch (err) { return err.code !== 'MODULE_NOT_FOUND'; }
    };
    const out = [];
    const fromDist = createRequire(join(process.cwd(), 'dist', 'agent', 'cli.js'));
    for (const dev of devs) if (found(fromDist, dev)) out.push('dist → ' + dev);
    for (const dep of deps) {
      let entry;
      try { entry = require.resolve(dep); } catch { entry = require.resolve(dep + '/package.json'); }
      const fromDep = createRequire(entry);
      for (const dev of devs) if (found(fromDep, dev)) out.push(dep + ' → ' + dev);
    }
    console.log(JSON.stringify(out));`;
  // Type packages have no code to resolve.
  const devs = Object.keys(pkg.devDependencies).filter((d) => !d.startsWith('@types/'));
  const r = spawnSync(process.execPath, [...flags, '-e', script, JSON.stringify([Object.keys(pkg.dependencies), devs])], { cwd: app, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as string[];
}

interface ImageRun {
  proc: ChildProcess;
  url: string;
  output: () => string;
}

/** `node dist/agent/cli.js` in /app, with the image's environment (NODE_ENV, data dir, port) and `env`. */
async function runImage(env: Record<string, string>): Promise<ImageRun> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let output = '';
  const proc = spawn(process.execPath, [...NODE_FLAGS, join(app, 'dist', 'agent', 'cli.js')], {
    cwd: app,
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', PUMPWATCH_DATA_DIR: join(app, `data-${port}`), PUMPWATCH_HTTP_PORT: String(port), ...env },
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
  return { proc, url, output: () => output };
}

async function stopImage(run: ImageRun | undefined): Promise<void> {
  const proc = run?.proc;
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGTERM');
  await exited;
}

beforeAll(() => {
  app = imageLayout();
});

afterAll(() => {
  if (app) rmSync(app, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

describe('the image layout', () => {
  it('reaches no devDependency, from dist/ or from inside a production package', () => {
    expect(devDependenciesReachable(NODE_FLAGS)).toEqual([]);
    // What the flags are for: resolved from the symlinks' targets, every package sees them.
    expect(devDependenciesReachable([])).toContain('pino → azurite');
  });
});

describe('the container image with nothing configured', () => {
  let run: ImageRun | undefined;
  beforeAll(async () => {
    // Nothing configured but where to keep data and a free port (the Dockerfile sets those two too).
    run = await runImage({});
  }, 90_000);
  afterAll(() => stopImage(run));

  it('runs healthy with sync off, says once why and how to configure a target, and keeps every reading', async () => {
    const { url, output } = run!;
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
    const warnings = output().split('\n').filter((l) => l.includes('"code":"PW_AZURITE_MISSING"'));
    expect(warnings, output()).toHaveLength(1);
    expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 40, component: 'sync' });
    expect(output()).not.toContain('PW_SYNC_NOT_CONFIGURED');
    // The local hub is a development tool: the image runs without one.
    expect(output()).toContain('running without a hub');
  }, 60_000);

  it("is healthy by the Dockerfile's HEALTHCHECK command, run in the image layout", () => {
    const cmd = JSON.parse(/^HEALTHCHECK [^\n]*\\\n\s*CMD (\[.*\])$/m.exec(readFileSync(join(root, 'Dockerfile'), 'utf8'))![1]!) as string[];
    expect(cmd[0]).toBe('node');
    // The image's environment: all interfaces, the port the agent listens on.
    const r = spawnSync(process.execPath, [...NODE_FLAGS, ...cmd.slice(1)], { cwd: app, env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', PUMPWATCH_HTTP_HOST: '0.0.0.0', PUMPWATCH_HTTP_PORT: new URL(run!.url).port }, encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/healthz: 200 /);
  });
});

describe('the container image as IoT Edge runs it', () => {
  const DEVICE = 'image-gw';
  const MODULE = 'pumpwatch';
  const CONTAINER = 'image-readings';
  let hub: LocalHub | undefined;
  let az: TestAzurite | undefined;
  let run: ImageRun | undefined;
  beforeAll(async () => {
    az = await startTestAzurite();
    hub = await LocalHub.start();
    const caFile = join(app, 'hub-ca.pem');
    writeFileSync(caFile, hub.ca);
    // What the IoT Edge runtime sets (ModuleClient.fromEnvironment), and a Blob Storage target.
    run = await runImage({
      EdgeHubConnectionString: hub.addModule(DEVICE, MODULE),
      EdgeModuleCACertificateFile: caFile,
      IOTEDGE_MODULEID: MODULE,
      PUMPWATCH_DEVICE_ID: DEVICE,
      PUMPWATCH_BLOB_CONNECTION_STRING: az.connectionString,
      PUMPWATCH_BLOB_CONTAINER: CONTAINER,
      PUMPWATCH_SYNC_INTERVAL_SECONDS: '1',
    });
  }, 120_000);
  afterAll(async () => {
    await stopImage(run); // the module client closes before the broker
    await hub?.stop();
    await az?.dispose();
  });

  it('reports to the hub and uploads its readings to Blob Storage with the production dependencies only', async () => {
    const { url, output } = run!;
    const random = rng(7);
    const t0 = Date.now();
    const readings = Array.from({ length: 20 }, (_, i) => ({ pumpId: 'img-1', ts: new Date(t0 + i).toISOString(), values: normalValues(random, i) }));
    const res = await fetch(`${url}/readings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(readings) });
    expect(res.status, await res.text()).toBe(202);
    await vi.waitFor(
      async () => {
        const s = (await (await fetch(`${url}/status`)).json()) as any;
        expect(s.connectivity.hub, output()).toBe('connected');
        expect(s.sync.uploadedRows, output()).toBeGreaterThanOrEqual(readings.length);
        expect((hub!.reported(DEVICE, MODULE) as any).models?.default?.status, output()).toBe('active');
      },
      { timeout: 60_000, interval: 250 },
    );
    const blobs: string[] = [];
    for await (const b of az!.container(CONTAINER).listBlobsFlat({ prefix: 'readings/' })) blobs.push(b.name);
    expect(blobs.length).toBeGreaterThan(0);
    const s = (await (await fetch(`${url}/status`)).json()) as any;
    expect(s.standalone).toBe(false);
    const health = await fetch(`${url}/healthz`);
    expect(health.status, JSON.stringify(await health.json())).toBe(200);
  }, 90_000);
});
