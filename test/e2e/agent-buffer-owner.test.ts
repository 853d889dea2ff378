/**
 * A buffer file the agent's user may not write, on a writable volume: most often one another user
 * made (an agent or `sqlite3` run as root) that the container image's uid 1000 then opens. SQLite
 * says "attempt to write a readonly database", and the agent said `… is read-only`, which sent a
 * technician to look for a read-only volume. It names the owner, the mode and the agent's uid, and
 * the command that fixes it. Root here runs the agent (or the buffer alone) as uid 1000 with
 * spawn's `uid` option, so permissions apply for real; as another user, only the chmod case runs.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BufferStore } from '../../buffer/store.js';
import { packageRoot } from '../../agent/paths.js';
import { startAgentProcess } from '../support/process.js';

const root = process.getuid?.() === 0;
/** The container image's user; root runs the children as it. */
const AGENT_UID = root ? 1000 : process.getuid!();
const AGENT_GID = root ? 1000 : process.getgid!();
const work = mkdtempSync(join(tmpdir(), 'pw-buffer-owner-'));
chmodSync(work, 0o755); // reachable by the agent's user
const script = join(work, 'open.mjs');
writeFileSync(
  script,
  `import { BufferStore } from ${JSON.stringify(pathToFileURL(join(packageRoot(), 'dist', 'buffer', 'store.js')).href)};
  const store = new BufferStore({ path: process.argv[2], maxBytes: 1 << 26 });
  try { store.open(); store.close(); console.log(JSON.stringify({ ok: true })); }
  catch (err) { console.log(JSON.stringify({ ok: false, code: err.code, message: err.message })); }`,
);

afterAll(() => rmSync(work, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }));

/** Opens the buffer at `path` in a process of the agent's user; its outcome. */
function openAsAgent(path: string): { ok: boolean; code?: string; message?: string } {
  const run = spawnSync(process.execPath, [script, path], { uid: AGENT_UID, gid: AGENT_GID, encoding: 'utf8' });
  expect(run.stderr).toBe('');
  return JSON.parse(run.stdout) as { ok: boolean; code?: string; message?: string };
}

/** A buffer with a few rows at `path`, made by this process (root, when the tests run as root). */
function makeBuffer(path: string): void {
  const store = new BufferStore({ path, maxBytes: 1 << 26 });
  store.open();
  store.appendBatch([{ pumpId: 'pump-1', ts: Date.UTC(2026, 11, 5), receivedAt: Date.UTC(2026, 11, 5), values: { Pressure: 0.4 }, score: null, anomaly: null, modelVersion: null, imputed: false, unscoredReason: null }]);
  store.close();
}

describe('a buffer file the agent may not write', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(work, 'data-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }));

  it.skipIf(!root)('owned by root, with the agent running as uid 1000: /healthz and POST /readings name the owner and say how to chown, not a read-only volume', async () => {
    makeBuffer(join(dir, 'buffer.sqlite')); // root's file
    chownSync(dir, AGENT_UID, AGENT_GID); // in the agent's folder, as a volume prepared for uid 1000 is
    const agent = await startAgentProcess({ PUMPWATCH_DATA_DIR: dir }, undefined, { uid: AGENT_UID, gid: AGENT_GID });
    try {
      await agent.waitReady();
      const url = agent.url;
      const file = join(dir, 'buffer.sqlite');
      const expected =
        `opening the buffer: ${file} is owned by uid 0 (gid 0, mode 0644) and this agent runs as uid ${AGENT_UID} (gid ${AGENT_GID}), which may not write it; ` +
        `the volume is not read-only: give the buffer's folder to the agent's user: chown -R ${AGENT_UID}:${AGENT_GID} ${dir} (the container image runs as uid 1000) (attempt to write a readonly database)`;
      const health = (await (await fetch(`${url}/healthz`)).json()) as { checks: Record<string, string> };
      expect(health.checks.buffer).toBe(`PW_BUFFER_READONLY: ${expected}`);
      const post = await fetch(`${url}/readings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pumpId: 'pump-1', ts: Date.now(), values: { Pressure: 0.4 } }) });
      expect(post.status).toBe(503);
      const answer = (await post.json()) as { code: string; error: string };
      expect(answer.code).toBe('PW_BUFFER_READONLY');
      expect(answer.error).toContain(expected);
      expect(answer.error).not.toMatch(/is read-only \(/);
    } finally {
      agent.proc.kill('SIGTERM');
      await agent.exited;
    }
  });

  it.skipIf(!root)('names the owner of a folder the agent may not create its buffer in', () => {
    chmodSync(dir, 0o755); // root's, not writable by the agent
    const path = join(dir, 'buffer.sqlite');
    expect(openAsAgent(path)).toEqual({
      ok: false,
      code: 'PW_BUFFER_CANNOT_OPEN',
      message: `opening the buffer: the folder ${dir}, where SQLite keeps ${path} and its -wal and -shm, is owned by uid 0 (gid 0, mode 0755) and this agent runs as uid ${AGENT_UID} (gid ${AGENT_GID}), which may not write it; the volume is not read-only: give the buffer's folder to the agent's user: chown -R ${AGENT_UID}:${AGENT_GID} ${dir} (the container image runs as uid 1000) (unable to open database file)`,
    });
  });

  it('says a file of its own made read-only (chmod 0444) is not writable, not that the volume is read-only, and the advice works', () => {
    const path = join(dir, 'buffer.sqlite');
    makeBuffer(path);
    chownSync(dir, AGENT_UID, AGENT_GID);
    chownSync(path, AGENT_UID, AGENT_GID);
    chmodSync(path, 0o444);
    // SQLite makes the -wal and -shm it needs with the database's mode: 0444 too, so they are named.
    const files = [path, `${path}-wal`, `${path}-shm`];
    expect(openAsAgent(path)).toEqual({
      ok: false,
      code: 'PW_BUFFER_READONLY',
      message:
        `opening the buffer: ${path} is owned by uid ${AGENT_UID} (gid ${AGENT_GID}, mode 0444) and this agent runs as uid ${AGENT_UID} (gid ${AGENT_GID}), which may not write it ` +
        `(nor buffer.sqlite-wal nor buffer.sqlite-shm beside it); the volume is not read-only: make them writable: chmod u+w ${files.join(' ')} (attempt to write a readonly database)`,
    });
    for (const file of files.filter((f) => existsSync(f))) chmodSync(file, 0o644); // chmod u+w (the -wal may be gone since)
    expect(openAsAgent(path)).toEqual({ ok: true });
  });
});
