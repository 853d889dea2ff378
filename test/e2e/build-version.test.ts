/**
 * Which build a gateway runs (lib/build-info.ts): package.json says 0.1.0 for every build, so
 * /status, the twin and the blobs' metadata could not tell builds two days apart. The build writes
 * dist/build-info.json with a short sha256 over the shipped sources, and a real agent reports
 * `0.1.0+<12 hex>`; the id follows the sources' content, the same on every run.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { packageRoot } from '../../agent/paths.js';
import { buildVersion } from '../../lib/build-info.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { startAgentProcess, type AgentProcess } from '../support/process.js';

const root = packageRoot();
const WRITER = join(root, 'dist', 'lib', 'write-build-info.js');
const pkgVersion = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
let dir: string;
let az: TestAzurite;
let agent: AgentProcess | undefined;
/** What `npm run build` wrote for the sources of this checkout. */
let built: string;

/** The build-info writer on the sources of `from`, written to a file of its own: the version it printed. */
const writeInfo = (from: string, out: string): string => execFileSync(process.execPath, [WRITER, from, out], { encoding: 'utf8' }).trim();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-e2e-build-'));
  // what `npm run build` does after tsc (the suite's own build runs tsc only when told to skip)
  built = execFileSync(process.execPath, [WRITER], { encoding: 'utf8' }).trim();
  az = await startTestAzurite();
});

afterAll(async () => {
  if (agent && agent.proc.exitCode === null && agent.proc.signalCode === null) agent.proc.kill('SIGKILL');
  await az?.dispose();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

describe('the build id', () => {
  it('is the package version with 12 hex digits of build metadata', () => {
    expect(built).toMatch(new RegExp(`^${pkgVersion.replaceAll('.', '\\.')}\\+[0-9a-f]{12}$`));
    expect(JSON.parse(readFileSync(join(root, 'dist', 'build-info.json'), 'utf8'))).toEqual({ version: pkgVersion, build: built.split('+')[1] });
  });

  it('is reported by a real agent in /status and in its blobs\' metadata', async () => {
    await az.container('pumpwatch').create(); // a container SAS cannot create it
    agent = await startAgentProcess({
      PUMPWATCH_DATA_DIR: join(dir, 'data'),
      PUMPWATCH_SYNC: 'auto',
      PUMPWATCH_BLOB_SAS_URL: az.containerSasUrl('pumpwatch'),
      PUMPWATCH_SIMULATE: '1',
      PUMPWATCH_SIMULATE_RATE_HZ: '20',
      PUMPWATCH_SYNC_INTERVAL_SECONDS: '1',
    });
    await agent.waitReady();
    const status = (await (await fetch(`${agent.url}/status`)).json()) as { agentVersion: string };
    expect(status.agentVersion).toBe(built);
    await vi.waitFor(
      async () => {
        const s = (await (await fetch(`${agent!.url}/status`)).json()) as { sync: { uploadedBlobs: number } };
        expect(s.sync.uploadedBlobs).toBeGreaterThan(0);
      },
      { timeout: 30_000, interval: 200 },
    );
    agent.proc.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    const versions = new Set<string | undefined>();
    for await (const b of az.container('pumpwatch').listBlobsFlat({ includeMetadata: true, prefix: 'readings/' })) versions.add(b.metadata?.agentversion);
    expect([...versions]).toEqual([built]);
  });

  it('is the same for the same sources on every run and elsewhere, and changes when a shipped file changes', () => {
    const copy = join(dir, 'src');
    for (const f of ['agent', 'inference', 'buffer', 'sync', 'lib', 'trainer', 'package.json']) cpSync(join(root, f), join(copy, f), { recursive: true });
    const first = writeInfo(copy, join(dir, 'a.json'));
    expect(writeInfo(copy, join(dir, 'b.json'))).toBe(first);
    // a copy elsewhere (other mtimes, another path) of the same sources: the checkout's own id
    expect(first).toBe(built);
    // not shipped (.dockerignore leaves Markdown out of the image build): same id
    appendFileSync(join(copy, 'trainer', 'README.md'), '\nnote\n');
    expect(writeInfo(copy, join(dir, 'c.json'))).toBe(first);
    appendFileSync(join(copy, 'sync', 'layout.ts'), '\n// changed\n');
    const changed = writeInfo(copy, join(dir, 'd.json'));
    expect(changed).not.toBe(first);
    expect(changed.split('+')[0]).toBe(pkgVersion);
  });

  it('says unbuilt where no build wrote build-info.json (the sources run as they are)', () => {
    expect(buildVersion()).toBe(`${pkgVersion}+unbuilt`);
  });
});
