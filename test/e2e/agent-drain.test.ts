/**
 * `pumpwatch-agent drain --buffer FILE` on a buffer the real agent wrote while Blob Storage was
 * unreachable and that was then moved out of its data directory (the rollback of
 * deployment/README.md section 9): every reading and refused item of the file reaches a real
 * Azurite exactly once, beside the blobs of an agent that runs meanwhile on a fresh buffer under
 * the same device id, through a SIGKILL while an upload's answer was lost; a re-run uploads
 * nothing; the refusals (a file the agent has open, not a buffer, a newer schema) touch nothing.
 */
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { packageRoot } from '../../agent/paths.js';
import { readAllReadings } from '../../sync/reader.js';
import { decodeAllBlobs, decodeRejectedBlobs, startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { startBlobProxy } from '../support/blob-proxy.js';
import { recentStartOffMidnight } from '../support/clock.js';
import { freePort, startAgentProcess, type AgentProcess } from '../support/process.js';
import { oldSchemaFile } from '../support/schema9.js';
import { DEVSTORE_ACCOUNT, DEVSTORE_KEY } from '../../agent/azurite.js';
import { MIGRATIONS, OPENABLE_FROM_KEY } from '../../buffer/migrations.js';
import { LabelStore } from '../../buffer/labels.js';
import { BufferStore } from '../../buffer/store.js';
import { readLabels } from '../../sync/labels-upload.js';

const DEVICE = 'gw-drain';
const CONTAINER = 'e2e-drain';
const ROWS_PER_PUMP = 150;
const REFUSALS = 5;
const START = recentStartOffMidnight();
const TEST_TIMEOUT_MS = 120_000;

let work: string;
let az: TestAzurite;
/** The moved-aside buffer the agent wrote, drained by the first test. */
let moved: string;
/** A copy of it as the agent left it, for the other tests. */
let pristine: string;

interface DrainRun {
  code: number | string;
  out: string;
  err: string;
}

/** Runs `pumpwatch-agent drain` as a process; SIGKILL once `killWhen` says so (asked every 20 ms). */
function runDrain(args: string[], env: Record<string, string>, killWhen?: () => boolean): Promise<DrainRun> {
  const proc = spawn(process.execPath, [join(packageRoot(), 'dist', 'agent', 'cli.js'), 'drain', ...args], {
    env: { PATH: process.env.PATH ?? '', PUMPWATCH_SYNC_BATCH_MAX_ROWS: '40', PUMPWATCH_SYNC_BACKOFF_MAX_SECONDS: '1', PUMPWATCH_LOG_LEVEL: 'debug', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const poll = killWhen === undefined ? null : setInterval(() => killWhen() && proc.kill('SIGKILL'), 20);
  return new Promise((resolve) =>
    proc.once('close', (code, signal) => {
      if (poll !== null) clearInterval(poll);
      resolve({ code: code ?? signal ?? 'unknown', out, err });
    }),
  );
}

const target = (connectionString = az.connectionString): Record<string, string> => ({ PUMPWATCH_BLOB_CONNECTION_STRING: connectionString, PUMPWATCH_BLOB_CONTAINER: CONTAINER });

/** A copy of the moved file before any drain (it was closed cleanly: no -wal, no -shm). */
function copyOfMoved(name: string): string {
  const dir = join(work, name);
  mkdirSync(dir);
  copyFileSync(pristine, join(dir, 'buffer.sqlite'));
  return join(dir, 'buffer.sqlite');
}

function fileState(path: string): { seqs: number[]; refused: number[]; bufferId: string; planned: string[] } {
  const db = new Database(path, { readonly: true });
  try {
    return {
      seqs: db.prepare('SELECT seq FROM readings ORDER BY seq').pluck().all() as number[],
      refused: db.prepare('SELECT id FROM rejected ORDER BY id').pluck().all() as number[],
      bufferId: db.prepare("SELECT value FROM meta WHERE key = 'buffer.id'").pluck().get() as string,
      planned: db.prepare("SELECT blob_name FROM sync_batches WHERE state = 'planned' ORDER BY id").pluck().all() as string[],
    };
  } finally {
    db.close();
  }
}

/** Readings of two pumps (one POST each, their seqs one pump after the other) and refusals. */
async function post(url: string, startMs: number, rows: number, refusals: number): Promise<void> {
  for (const pumpId of ['pump-1', 'pump-2']) {
    const body = Array.from({ length: rows }, (_, i) => JSON.stringify({ pumpId, ts: startMs + i * 1000, values: { Pressure: 1.4, Flow: 30, Current: 1.4 } }));
    const res = await fetch(`${url}/readings`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: body.join('\n') });
    expect(res.status).toBe(202);
  }
  if (refusals > 0) {
    const bad = Array.from({ length: refusals }, (_, i) => `{"not json": ${i},`);
    const res = await fetch(`${url}/readings`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: bad.join('\n') });
    expect(res.status).toBe(400);
  }
}

async function stop(agent: AgentProcess): Promise<void> {
  agent.proc.kill('SIGTERM');
  expect(await agent.exited).toBe(0);
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'pw-e2e-drain-'));
  az = await startTestAzurite();
}, 60_000);

afterAll(async () => {
  await az?.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('pumpwatch-agent drain', () => {
  it('refuses the buffer of a running agent, then drains the moved file exactly once beside a fresh buffer of the same device, through a SIGKILL; a re-run uploads nothing', async () => {
    // The agent buffers with Blob Storage unreachable (nothing listens on that port): its sync plans
    // batches, persists them, and fails their uploads.
    const data = join(work, 'old');
    const dead = `DefaultEndpointsProtocol=http;AccountName=${DEVSTORE_ACCOUNT};AccountKey=${DEVSTORE_KEY};BlobEndpoint=http://127.0.0.1:${await freePort()}/${DEVSTORE_ACCOUNT};`;
    const old = await startAgentProcess({
      PUMPWATCH_DATA_DIR: data,
      PUMPWATCH_SYNC: 'auto',
      ...target(dead),
      PUMPWATCH_DEVICE_ID: DEVICE,
      PUMPWATCH_SYNC_INTERVAL_SECONDS: '1',
      PUMPWATCH_SYNC_BACKOFF_MAX_SECONDS: '1',
      PUMPWATCH_SYNC_BATCH_MAX_ROWS: '40',
    });
    try {
      await old.waitReady();
      await post(old.url, START, ROWS_PER_PUMP, REFUSALS);
      const file = join(data, 'buffer.sqlite');
      await vi.waitFor(() => expect(fileState(file).planned.length).toBeGreaterThan(0), { timeout: 20_000, interval: 100 });
      // While the agent has it open, the drain refuses the file and the agent goes on.
      const held = await runDrain(['--buffer', file], target());
      expect(held.code, held.err).toBe(2);
      expect(held.err).toContain('PW_BUFFER_IN_USE');
      expect(held.err).toContain(`${file} is open in another process`);
      expect(held.out).toBe('');
      expect((await fetch(`${old.url}/healthz`)).status).toBe(200);
    } finally {
      await stop(old);
    }
    // The rollback: the file moved out of the data directory.
    mkdirSync(join(work, 'moved'));
    moved = join(work, 'moved', 'buffer.sqlite');
    renameSync(join(data, 'buffer.sqlite'), moved);
    expect(existsSync(`${join(data, 'buffer.sqlite')}-wal`)).toBe(false);
    pristine = join(work, 'pristine.sqlite');
    copyFileSync(moved, pristine);
    const before = fileState(moved);
    expect(before.seqs).toHaveLength(2 * ROWS_PER_PUMP);
    expect(before.refused).toHaveLength(REFUSALS);

    // The agent that runs now, on a fresh buffer under the same device id, uploads first: its seqs
    // start at 1 again, so its blob names are those of the moved file's first batches.
    const fresh = await startAgentProcess({ PUMPWATCH_DATA_DIR: join(work, 'fresh'), PUMPWATCH_SYNC: 'auto', ...target(), PUMPWATCH_DEVICE_ID: DEVICE, PUMPWATCH_SYNC_BATCH_MAX_ROWS: '40', PUMPWATCH_SYNC_INTERVAL_SECONDS: '1' });
    try {
      await fresh.waitReady();
      await post(fresh.url, START + 3_600_000, 60, 0);
      await vi.waitFor(async () => expect(((await (await fetch(`${fresh.url}/status`)).json()) as { buffer: { unsynced: number } }).buffer.unsynced).toBe(0), { timeout: 30_000, interval: 200 });
    } finally {
      await stop(fresh);
    }
    const freshBlobs = new Map((await decodeAllBlobs(az.container(CONTAINER))).map((b) => [b.name, JSON.stringify(b.lines)]));
    const freshId = (JSON.parse([...freshBlobs.values()][0]!) as Array<{ bufferId: string }>)[0]!.bufferId;
    expect(freshId).not.toBe(before.bufferId);

    // A drain whose third upload reaches Azurite but whose answer is lost, killed then.
    const proxy = await startBlobProxy(az.port, (() => {
      let puts = 0;
      return (req) => (req.method === 'PUT' && req.path.includes('/readings/') && ++puts === 3 ? 'lose-answer' : 'forward');
    })());
    const first = await runDrain(['--buffer', moved], target(proxy.connectionString), () => proxy.held() === 1);
    await proxy.close();
    expect(first.code, first.err).toBe('SIGKILL');
    const mid = fileState(moved);
    expect(mid.planned.length, 'the lost upload stays planned').toBeGreaterThan(0);

    const second = await runDrain(['--buffer', moved], target());
    expect(second.code, `${second.out}\n${second.err}`).toBe(0);
    expect(second.out).toContain('were there already with the same bytes');
    expect(second.out).toContain(`nothing left unsent in ${moved}: it may be deleted`);
    expect(second.out).toContain(`device id ${DEVICE} (from the file's planned batches)`);
    // The plans persisted before the kill went up under their own names.
    const after = await decodeAllBlobs(az.container(CONTAINER));
    const names = new Set(after.map((b) => b.name.replace(/~[0-9a-f]{12}\.jsonl\.gz$/, '.jsonl.gz')));
    for (const name of mid.planned) expect(names.has(name), name).toBe(true);

    // The fresh buffer's blobs are untouched; the moved file's rows are each in the lake once.
    for (const [name, lines] of freshBlobs) expect(JSON.stringify(after.find((b) => b.name === name)?.lines), name).toBe(lines);
    const drained = after.flatMap((b) => b.lines).filter((l) => l.bufferId === before.bufferId);
    expect(drained.map((l) => l.seq).sort((a, b) => a - b)).toEqual(before.seqs);
    expect(drained.every((l) => l.deviceId === DEVICE)).toBe(true);
    const beside = after.filter((b) => b.name.includes('~'));
    expect(beside.length, 'a drained batch met a fresh blob of its name').toBeGreaterThan(0);
    const refused = (await decodeRejectedBlobs(az.container(CONTAINER))).flatMap((b) => b.lines).filter((l) => l.bufferId === before.bufferId);
    expect(refused.map((l) => l.id).sort((a, b) => a - b)).toEqual(before.refused);
    // The trainer's reader keeps both buffers' readings, each once.
    const read = await readAllReadings(az.container(CONTAINER), { pumpId: 'pump-1', from: START, to: START + 86_400_000 });
    expect(read.filter((l) => l.bufferId === before.bufferId)).toHaveLength(ROWS_PER_PUMP);
    expect(read.filter((l) => l.bufferId === freshId)).toHaveLength(60);

    // A re-run: nothing to do, nothing uploaded.
    const third = await runDrain(['--buffer', moved], target());
    expect(third.code, third.err).toBe(0);
    expect(third.out).toContain('nothing to upload');
    expect((await decodeAllBlobs(az.container(CONTAINER))).map((b) => b.name)).toEqual(after.map((b) => b.name));
    expect(existsSync(moved)).toBe(true);
    console.log(`drain: ${after.length} blobs, ${beside.length} beside a fresh blob; first run:\n${first.out}second run:\n${second.out}`);
  }, TEST_TIMEOUT_MS);

  it('gives up with PW_DRAIN_INCOMPLETE at --timeout while Blob Storage is unreachable, naming no secret', async () => {
    const file = copyOfMoved('unreachable');
    const dead = `DefaultEndpointsProtocol=http;AccountName=${DEVSTORE_ACCOUNT};AccountKey=${DEVSTORE_KEY};BlobEndpoint=http://127.0.0.1:${await freePort()}/${DEVSTORE_ACCOUNT};`;
    const run = await runDrain(['--buffer', file, '--timeout', '2'], target(dead));
    expect(run.code, run.out).toBe(1);
    expect(run.err).toContain('PW_DRAIN_INCOMPLETE: left unsent: 300 reading(s), 5 refused item(s), 0 label(s) (--timeout of 2 s reached)');
    expect(run.out).toContain('Blob Storage failed (offline)');
    expect(run.out + run.err).not.toContain(DEVSTORE_KEY);
  }, TEST_TIMEOUT_MS);

  it('closes a label that followed an alarm still running when the agent left the file, over its episode there, says so, and uploads it', async () => {
    const file = copyOfMoved('open-label');
    const store = new BufferStore({ path: file, maxBytes: 2 ** 30 });
    store.open();
    const alert = (i: number) => ({ pumpId: 'pump-f', ts: START + i * 1000, receivedAt: START + i * 1000, values: { Pressure: 0.2 }, score: 0.9, anomaly: true, modelVersion: 'm1', imputed: false, unscoredReason: null });
    const [first] = store.appendBatch([alert(0), alert(5), alert(10)]);
    // as the agent left it: posted at the first alert, moved by its job no further (it runs every 5 s)
    const label = new LabelStore(store).add({ pumpId: 'pump-f', kind: 'confirmed-fault', faultType: 'bearing', note: null, alertSeq: first!, fromTs: START, toTs: START, author: 'Ana', followsEpisode: true }, START + 1000);
    store.close();
    const run = await runDrain(['--buffer', file], target());
    expect(run.code, `${run.out}\n${run.err}`).toBe(0);
    expect(run.out).toContain('drain: closed 1 label(s) that followed an alarm still running when the agent left the file');
    expect(run.out).toContain(`nothing left unsent in ${file}`);
    const [inLake] = (await readLabels(az.container(CONTAINER), DEVICE, { pumps: ['pump-f'] })).filter((l) => l.id === label.id);
    expect(inLake).toMatchObject({ from: new Date(START).toISOString(), to: new Date(START + 10_000).toISOString(), alertSeq: first });
  }, TEST_TIMEOUT_MS);

  it('refuses a missing file, a file that is not a buffer and a newer schema without touching them; migrates an older one and says so', async () => {
    const dir = join(work, 'refusals');
    mkdirSync(dir);
    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'not a database\n');
    const other = join(dir, 'other.sqlite');
    const db = new Database(other);
    db.exec('CREATE TABLE t (x)');
    db.close();
    const newer = copyOfMoved('newer');
    const w = new Database(newer);
    w.prepare('UPDATE schema_version SET version = 99').run();
    // As the agent of schema 99 leaves it: marked for agents of its own schema (a mark at this build's opens it).
    w.prepare('UPDATE meta SET value = ? WHERE key = ?').run('99', OPENABLE_FROM_KEY);
    w.close();
    const cases: Array<[string, string, string]> = [
      [join(dir, 'missing.sqlite'), 'PW_BUFFER_CANNOT_OPEN', 'no such file'],
      [text, 'PW_BUFFER_NOT_A_BUFFER', 'is not a PumpWatch buffer: it is not an SQLite database'],
      [other, 'PW_BUFFER_NOT_A_BUFFER', 'is not a PumpWatch buffer: it has no schema_version, meta, readings, rejected, sync_batches tables'],
      [newer, 'PW_BUFFER_SCHEMA_NEWER', `buffer schema version 99 is newer than this agent knows (${MIGRATIONS.length}); a newer agent wrote it and marked it for agents of schema 99 and later`],
    ];
    for (const [file, code, words] of cases) {
      const bytes = existsSync(file) ? readFileSync(file) : null;
      const run = await runDrain(['--buffer', file], target());
      expect(run.code, file).toBe(2);
      expect(run.err, file).toContain(`${code}: `);
      expect(run.err, file).toContain(words);
      if (bytes !== null) expect(readFileSync(file).equals(bytes), `${file} unchanged`).toBe(true);
      expect(existsSync(`${file}-wal`), file).toBe(false);
    }

    // A schema-9 file that never planned a batch: its device id must be given, then it is migrated.
    const older = join(dir, 'older.sqlite');
    const rows = Array.from({ length: 30 }, (_, i) => ({ pumpId: 'pump-9', ts: START + i * 1000, receivedAt: START + i * 1000, values: { Pressure: 1 }, score: 0.1, anomaly: false, modelVersion: 'm1', imputed: false, unscoredReason: null }));
    oldSchemaFile(older, 9, rows);
    const unknown = await runDrain(['--buffer', older], target());
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('PW_DRAIN_DEVICE_UNKNOWN');
    const run = await runDrain(['--buffer', older], { ...target(), PUMPWATCH_DEVICE_ID: 'gw-old' });
    expect(run.code, run.err).toBe(0);
    expect(run.out).toContain(`${older} is at buffer schema 9: migrating it to`);
    expect(run.out).toContain('device id gw-old (from PUMPWATCH_DEVICE_ID)');
    const lines = (await decodeAllBlobs(az.container(CONTAINER), 'readings/pump-9/')).flatMap((b) => b.lines);
    expect(lines.map((l) => l.seq).sort((a, b) => a - b)).toEqual(rows.map((_, i) => i + 1));
    expect(lines.every((l) => l.deviceId === 'gw-old')).toBe(true);
  }, TEST_TIMEOUT_MS);
});
