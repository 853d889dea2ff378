/**
 * A real full disk below the cap: a tmpfs of 6 MiB mounted in a user and mount namespace
 * (`unshare -rm`), holding a buffer whose cap is 64 MiB. `PRAGMA max_page_count` (the other tests'
 * full disk) caps only the database file and leaves the WAL free to grow; on a real full disk even
 * the DELETEs of an eviction fail (they need room in the WAL), which stopped the buffer for good.
 * The buffer runs from dist/ (compiled by the test run's global setup; PUMPWATCH_TEST_DIST points
 * at another build) in a process inside that namespace. Skipped where user namespaces are not allowed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIST = process.env.PUMPWATCH_TEST_DIST ?? join(ROOT, 'dist');
const STORE = pathToFileURL(join(DIST, 'buffer', 'store.js')).href;
const mnt = mkdtempSync(join(tmpdir(), 'pw-full-disk-'));
/** A tmpfs can be mounted here (root, or user namespaces allowed): else the test is skipped, saying why. */
const canMount = spawnSync('unshare', ['-rm', 'sh', '-c', `mount -t tmpfs -o size=1m tmpfs ${mnt}`]).status === 0;
if (!canMount) console.warn(`buffer-disk-full: skipped: cannot mount a tmpfs in a user and mount namespace (unshare -rm) here`);
const scripts = mkdtempSync(join(tmpdir(), 'pw-full-disk-scripts-'));

afterAll(() => {
  rmSync(mnt, { recursive: true, force: true });
  rmSync(scripts, { recursive: true, force: true });
});

/** Both scripts' start: the buffer at DIR/buffer.sqlite (cap 64 MiB) open, and `reading()` making rows of 20 values. */
const PRELUDE = `
import { BufferStore } from ${JSON.stringify(STORE)};
import { readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
const dir = process.argv[2];
const path = dir + '/buffer.sqlite';
const store = new BufferStore({ path, maxBytes: 64 << 20 });
store.open();
let i = 0;
const reading = () => {
  const values = {};
  for (let k = 0; k < 20; k++) values['Sensor_' + k] = ((i * 7919 + k * 104729) % 100000) / 1000;
  i++;
  return { pumpId: 'p', ts: 1795392000000 + i * 1000, receivedAt: 1795392000000 + i * 1000, values, score: 0.2, anomaly: false, modelVersion: 'v1', imputed: false, unscoredReason: null };
};
`;

/** Runs a script (PRELUDE + `body`) in a fresh 6 MiB tmpfs mounted in its own namespace; its stdout's JSON line. */
function runOnTmpfs<T>(name: string, body: string): T {
  const script = join(scripts, name);
  writeFileSync(script, PRELUDE + body);
  const run = spawnSync('unshare', ['-rm', 'sh', '-c', `set -e; mount -t tmpfs -o size=6m tmpfs ${mnt}; '${process.execPath}' '${script}' ${mnt}`], {
    encoding: 'utf8',
  });
  expect(run.stderr).toBe('');
  return JSON.parse(run.stdout.trim()) as T;
}

/**
 * Appends 300 batches of 200 readings (~30 MB of rows, five times the disk), then fills what is
 * left of the disk with another file, as a log or another container would, and appends 50 more.
 * Prints one JSON line: each phase's outcomes by code, the buffer's stats and health.
 */
const SCRIPT = `
const outcomes = { fill: {}, full: {} };
const run = (n, phase) => {
  for (let b = 0; b < n; b++) {
    let code = 'ok';
    try { store.appendBatch(Array.from({ length: 200 }, reading)); } catch (err) { code = err.code; }
    outcomes[phase][code] = (outcomes[phase][code] ?? 0) + 1;
  }
};
run(300, 'fill');
const evictedWhileFilling = store.stats().evicted.unsynced;
let k = 0;
try { for (;;) writeFileSync(dir + '/other-' + k++, Buffer.alloc(16 << 10)); } catch {}
try { writeFileSync(dir + '/other-last', Buffer.alloc(4096)); } catch {}
const filesBytes = () => ['buffer.sqlite', 'buffer.sqlite-wal', 'buffer.sqlite-shm'].reduce((n, f) => { try { return n + statSync(dir + '/' + f).size; } catch { return n; } }, 0);
const buffered = filesBytes();
const t = Date.now();
while (Date.now() - t < 1100); // the buffer reads the free space at most once a second
run(50, 'full');
const s = store.stats();
console.log(JSON.stringify({ outcomes, evictedWhileFilling, stats: s, health: store.health(), bufferFiles: buffered }));
store.close();
`;

/**
 * Fills the disk as above, deletes the buffer's files while it is open (its blocks stay taken
 * while open), then appends until the buffer takes readings again; reopens the file at the path.
 */
const DELETED = `
for (let b = 0; b < 300; b++) store.appendBatch(Array.from({ length: 200 }, reading));
for (const f of readdirSync(dir)) if (f.startsWith('buffer.sqlite')) rmSync(dir + '/' + f);
const noticed = store.health().ok === false; // checked at every health call (commits: every 250 ms)
let taken = 0, refused = 0, lastError = null;
const t = Date.now();
while (taken === 0 && Date.now() - t < 20000) {
  try { store.appendBatch(Array.from({ length: 200 }, reading)); taken++; } catch (err) { refused++; lastError = err.code; await new Promise((r) => setTimeout(r, 50)); }
}
const fileEvent = store.stats().fileEvent;
const evicted = store.stats().evicted.total;
// Deleted again just before a stop, before any commit could notice: the stop copies the rows out.
for (let b = 0; b < 5; b++) store.appendBatch(Array.from({ length: 200 }, reading));
const beforeStop = store.stats();
for (const f of readdirSync(dir)) if (f.startsWith('buffer.sqlite')) rmSync(dir + '/' + f);
store.close();
const again = new BufferStore({ path, maxBytes: 64 << 20 });
again.open();
const after = again.stats();
console.log(JSON.stringify({ noticed, taken, refused, lastError, fileEvent, appended: i - refused * 200, rows: after.rows, evicted, evictedAfter: after.evicted.total, rowsBeforeStop: beforeStop.rows, evictedBeforeStop: beforeStop.evicted.total }));
again.close();
`;

/**
 * A disk that fills while the buffer evicts: 4 000 readings, then a reader holding a snapshot (as
 * sync's reader does while it encodes, so the WAL cannot start over) and another file leaving
 * FREE bytes, about two eviction chunks' WAL frames. The next eviction (the disk's limit as the
 * cap) commits chunks until the WAL can grow no more and the next chunk fails with the disk full.
 */
const PARTIAL = `
import { createRequire } from 'node:module';
import { statfsSync } from 'node:fs';
const Database = createRequire(${JSON.stringify(join(ROOT, 'package.json'))})('better-sqlite3');
const FREE = 400000;
for (let b = 0; b < 20; b++) store.appendBatch(Array.from({ length: 200 }, reading));
store.db.pragma('wal_checkpoint(TRUNCATE)');
const before = store.stats().rows;
const reader = new Database(path, { readonly: true });
reader.exec('BEGIN');
reader.prepare('SELECT count(*) FROM readings').get();
const avail = () => { const f = statfsSync(dir); return f.bavail * f.bsize; };
writeFileSync(dir + '/other', Buffer.alloc(Math.max(0, avail() - FREE)));
const t = Date.now();
while (Date.now() - t < 1100); // the buffer reads the free space at most once a second
store.enforceCap();
const s = store.stats();
const health = store.health();
reader.exec('COMMIT');
const rows = reader.prepare('SELECT count(*) AS n FROM readings').get().n;
reader.close();
console.log(JSON.stringify({ before, rows, stats: s, health }));
store.close();
`;

describe.skipIf(!canMount)('a buffer on a real full disk below its cap (a tmpfs in unshare -rm; skipped where it cannot be mounted)', () => {
  it('restores a buffer deleted while open although the copy does not fit on its full volume: it evicts as on a full disk until it does', () => {
    const out = runOnTmpfs<{
      noticed: boolean; taken: number; appended: number; rows: number; evictedAfter: number; rowsBeforeStop: number; evictedBeforeStop: number; fileEvent: string | null;
    }>('deleted.mjs', DELETED);
    expect(out.noticed, JSON.stringify(out)).toBe(true);
    expect(out.taken, JSON.stringify(out)).toBe(1); // taken again, not refused for good
    expect(out.fileEvent).toMatch(/was deleted while open; the buffer was restored at the path; its volume had no room for the copy, so \d+ rows were evicted first/);
    // Deleted again just before the stop: the rows are in the file at the path after it, or counted as evicted.
    expect(out.rows).toBeGreaterThan(0);
    expect(out.rows + out.evictedAfter).toBe(out.appended);
    expect(out.rows + (out.evictedAfter - out.evictedBeforeStop)).toBe(out.rowsBeforeStop);
  });

  it('counts the chunks an eviction committed before the disk filled mid-way, since start as in the totals', () => {
    const out = runOnTmpfs<{
      before: number; rows: number; health: { ok: boolean; error?: string };
      stats: { rows: number; evicted: { unsynced: number; total: number }; unsentEvicted: { sinceStart: number } };
    }>('partial.mjs', PARTIAL);
    const gone = out.before - out.rows;
    // The eviction failed part-way: some chunks went, then the disk was full.
    expect(out.health.ok, JSON.stringify(out)).toBe(false);
    expect(out.health.error).toMatch(/evicting rows to stay under the cap: the disk holding .* is full/);
    expect(gone, JSON.stringify(out)).toBeGreaterThan(0);
    // Every count says what really went: the stored totals, the since-start count, the rows counted.
    expect(out.stats.evicted.unsynced).toBe(gone);
    expect(out.stats.evicted.total).toBe(gone);
    expect(out.stats.unsentEvicted.sinceStart).toBe(gone);
    expect(out.stats.rows).toBe(out.rows);
  });

  it('evicts the oldest unsent readings as under the cap, and keeps committing when another file takes the rest of the disk', () => {
    const out = runOnTmpfs<{
      outcomes: { fill: Record<string, number>; full: Record<string, number> };
      evictedWhileFilling: number;
      stats: { rows: number; unsynced: number; evicted: { unsynced: number; total: number }; diskLimitBytes: number | null; maxBytes: number };
      health: { ok: boolean };
      bufferFiles: number;
    }>('full.mjs', SCRIPT);
    // Every batch committed: the disk's limit became the cap in force before SQLite ran out of room.
    expect(out.outcomes.fill).toEqual({ ok: 300 });
    expect(out.evictedWhileFilling).toBeGreaterThan(0);
    // The disk then full to the last block by another file: eviction still makes room.
    expect(out.outcomes.full).toEqual({ ok: 50 });
    // working; the unsent readings evicted are told, as lost
    expect(out.health).toEqual({ ok: true, degraded: expect.stringMatching(/^PW_BUFFER_UNSENT_EVICTED: /) });
    // Counted as the cap's evictions are: every reading is either kept or counted as evicted.
    expect(out.stats.rows + out.stats.evicted.unsynced).toBe(350 * 200);
    expect(out.stats.evicted.total).toBe(out.stats.evicted.unsynced);
    expect(out.stats.diskLimitBytes).not.toBeNull();
    expect(out.stats.diskLimitBytes!).toBeLessThan(6 << 20);
    expect(out.bufferFiles).toBeLessThan(6 << 20);
  });
});
