/**
 * A buffer already on a volume that is full when the agent starts: a real tmpfs of 3 MiB mounted
 * in a user and mount namespace (`unshare -rm`), holding a copy of a buffer file and a filler file
 * that takes the rest, as a log or another container would. SQLite then fails to grow the -shm
 * index beside the file and says "disk I/O error" (SQLITE_IOERR_SHMSIZE), which the agent passed
 * on as PW_BUFFER_IO: a technician reads that as a failing SD card, and /healthz did not even name
 * the file. It is PW_BUFFER_DISK_FULL (POST /readings 507), naming the file, and the buffer opens
 * as it was once the filler is gone. Skipped where a tmpfs cannot be mounted in a namespace.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';
import { packageRoot } from '../../agent/paths.js';
import { startAgentProcess } from '../support/process.js';

const mnt = mkdtempSync(join(tmpdir(), 'pw-full-volume-'));
const work = mkdtempSync(join(tmpdir(), 'pw-full-volume-work-'));
const canMount = spawnSync('unshare', ['-rm', 'sh', '-c', `mount -t tmpfs -o size=1m tmpfs ${mnt}`]).status === 0;
if (!canMount) console.warn('agent-full-volume: skipped: cannot mount a tmpfs in a user and mount namespace (unshare -rm) here');
const seed = join(work, 'seed', 'buffer.sqlite');
const data = join(mnt, 'data');
const buffer = join(data, 'buffer.sqlite');

/** Shell lines that mount the 3 MiB tmpfs, copy the seed buffer into it and fill what is left. */
const FULL_VOLUME = [
  'set -e',
  `mount -t tmpfs -o size=3m tmpfs ${mnt}`,
  `mkdir ${data}`,
  `cp ${seed} ${buffer}`,
  `head -c 8M /dev/zero > ${mnt}/filler 2>/dev/null || true`,
];

const T0 = Date.UTC(2026, 11, 5, 10);
const row = (i: number): PredictionRow => ({ pumpId: 'pump-1', ts: T0 + i * 1000, receivedAt: T0 + i * 1000, values: { Pressure: i / 7, Current: i / 3 }, score: 0.1, anomaly: false, modelVersion: 'v1', imputed: false, unscoredReason: null });

beforeAll(() => {
  // The buffer a gateway had before its volume filled: 1 000 readings, closed cleanly.
  const store = new BufferStore({ path: seed, maxBytes: 1 << 26 });
  store.open();
  store.appendBatch(Array.from({ length: 1_000 }, (_, i) => row(i)));
  store.close();
});

afterAll(() => {
  rmSync(mnt, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

describe.skipIf(!canMount)('a buffer on a volume that is full when the agent starts', () => {
  it('is PW_BUFFER_DISK_FULL naming the file in /healthz, and POST /readings answers 507, not a disk I/O error', async () => {
    // `unshare` and `sh` exec the agent ("$@": node's command line): the child is the agent itself,
    // in the namespace of the tmpfs.
    const agent = await startAgentProcess({ PUMPWATCH_DATA_DIR: data }, undefined, { prefix: ['unshare', '-rm', 'sh', '-c', [...FULL_VOLUME, 'exec "$@"'].join('\n'), 'sh'] });
    try {
      await agent.waitReady();
      const url = agent.url;
      const health = await fetch(`${url}/healthz`);
      const body = (await health.json()) as { failing: string[]; checks: Record<string, string> };
      expect(health.status).toBe(503);
      expect(body.failing).toEqual(['buffer']);
      expect(body.checks.buffer).toMatch(new RegExp(`^PW_BUFFER_DISK_FULL: opening the buffer: the disk holding ${buffer} is full \\(0 bytes free; SQLite: disk I/O error, SQLITE_IOERR_SHMSIZE\\)$`));

      const post = await fetch(`${url}/readings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pumpId: 'pump-1', ts: Date.now(), values: { Pressure: 0.4 } }) });
      const answer = (await post.json()) as { code: string; error: string };
      expect(post.status).toBe(507);
      expect(answer.code).toBe('PW_BUFFER_DISK_FULL');
      expect(answer.error).toContain(`the disk holding ${buffer} is full`);
      expect(answer.error).toMatch(/nothing was stored, retry later$/);
      expect(agent.output()).toContain('PW_BUFFER_DISK_FULL');
    } finally {
      agent.proc.kill('SIGTERM');
      await agent.exited;
    }
  });

  it('opens as it was, with its rows, once there is room again (the -shm stub SQLite left is no harm)', () => {
    const script = join(work, 'open.mjs');
    writeFileSync(
      script,
      `import { BufferStore } from ${JSON.stringify(pathToFileURL(join(packageRoot(), 'dist', 'buffer', 'store.js')).href)};
      import { rmSync } from 'node:fs';
      const open = () => {
        const store = new BufferStore({ path: ${JSON.stringify(buffer)}, maxBytes: 1 << 26 });
        try { store.open(); const rows = store.stats().rows; store.close(); return { ok: true, rows }; }
        catch (err) { return { ok: false, code: err.code, message: err.message }; }
      };
      const full = open();
      rmSync(${JSON.stringify(`${mnt}/filler`)});
      console.log(JSON.stringify({ full, freed: open() }));`,
    );
    const run = spawnSync('unshare', ['-rm', 'sh', '-c', [...FULL_VOLUME, `'${process.execPath}' '${script}'`].join('\n')], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    const { full, freed } = JSON.parse(run.stdout) as { full: { ok: boolean; code: string; message: string }; freed: unknown };
    expect(full).toMatchObject({ ok: false, code: 'PW_BUFFER_DISK_FULL' });
    expect(full.message).toContain(`the disk holding ${buffer} is full`);
    expect(freed).toEqual({ ok: true, rows: 1_000 });
  });
});
