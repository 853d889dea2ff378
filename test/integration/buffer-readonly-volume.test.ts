/**
 * A buffer on a read-only volume is PW_BUFFER_READONLY, not PW_BUFFER_CANNOT_OPEN: after a clean
 * stop there is no -wal or -shm, and SQLite, unable to create them, fails with SQLITE_CANTOPEN.
 * The volume is real: a tmpfs mounted in a user and mount namespace (`unshare -rm`), remounted
 * read-only and back. The buffer runs from dist/ (compiled by the test run's global setup) in a
 * process inside that namespace. Skipped where user namespaces are not allowed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const STORE = pathToFileURL(join(ROOT, 'dist', 'buffer', 'store.js')).href;
const namespaces = spawnSync('unshare', ['-rm', 'true']).status === 0;
const mnt = mkdtempSync(join(tmpdir(), 'pw-ro-volume-'));
const scripts = mkdtempSync(join(tmpdir(), 'pw-ro-scripts-'));

afterAll(() => {
  rmSync(mnt, { recursive: true, force: true });
  rmSync(scripts, { recursive: true, force: true });
});

/** A node script that opens the buffer at `file` (appending `rows` readings) and prints the outcome as one JSON line. */
function openScript(file: string, rows: number): string {
  return `
    import { BufferStore } from ${JSON.stringify(STORE)};
    const store = new BufferStore({ path: ${JSON.stringify(file)}, maxBytes: 1 << 26 });
    try {
      store.open();
      const t = Date.now();
      store.appendBatch(Array.from({ length: ${rows} }, (_, i) => ({ pumpId: 'p', ts: t + i, receivedAt: t, values: { a: i }, score: null, anomaly: null, modelVersion: null, imputed: false, unscoredReason: null })));
      const rows = store.stats().rows;
      store.close();
      console.log(JSON.stringify({ ok: true, rows }));
    } catch (err) {
      console.log(JSON.stringify({ ok: false, code: err.code, message: err.message }));
    }`;
}

describe.skipIf(!namespaces)('a buffer on a read-only volume', () => {
  it('is PW_BUFFER_READONLY naming the volume, and opens once the volume is writable again', () => {
    const file = join(mnt, 'data', 'buffer.sqlite');
    const node = (rows: number): string => {
      const script = join(scripts, `open-${rows}.mjs`);
      writeFileSync(script, openScript(file, rows));
      return `'${process.execPath}' '${script}'`;
    };
    const script = [
      'set -e',
      `mount -t tmpfs -o size=8m tmpfs ${mnt}`,
      node(10), // creates it, closed cleanly: no -wal, no -shm
      `ls ${mnt}/data`,
      `mount -o remount,ro ${mnt}`,
      node(1),
      `mount -o remount,rw ${mnt}`,
      node(1),
    ].join('\n');
    const run = spawnSync('unshare', ['-rm', 'sh', '-c', script], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toBe('{"ok":true,"rows":10}');
    expect(lines[1]).toBe('buffer.sqlite'); // nothing beside it
    const readOnly = JSON.parse(lines[2]!) as { ok: boolean; code: string; message: string };
    expect(readOnly).toMatchObject({ ok: false, code: 'PW_BUFFER_READONLY' });
    expect(readOnly.message).toContain(`the volume holding ${join(mnt, 'data')} is read-only`);
    expect(JSON.parse(lines[3]!)).toEqual({ ok: true, rows: 11 });
  });
});
