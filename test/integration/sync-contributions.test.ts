/**
 * The sync of rows whose contributions are stored as a BLOB (schema 10), against Azurite, on the
 * encoder thread and on the main thread: the blobs are byte for byte those of the same rows stored
 * as JSON text by the schema-9 agent (the trainer reads the same lines), and a row whose BLOB cannot
 * be decoded is uploaded with `contributions: null` and the rest as stored, counted in /status and
 * named in /healthz (PW_BUFFER_INVALID_ROW), never set aside as a damaged page's rows are.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../agent/logger.js';
import { BUFFER_ID_KEY } from '../../buffer/migrations.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';
import { EncoderThread } from '../../sync/encoder-thread.js';
import { uploaderFor } from '../../sync/uploader.js';
import { SyncWorker } from '../../sync/worker.js';
import { decodeAllBlobs, startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { schema9File } from '../support/schema9.js';

const T0 = Date.UTC(2026, 11, 6, 8, 0, 0);
const DEVICE = 'gw-contrib';
const ROWS = 600;

let az: TestAzurite;
let containerNo = 0;
const dirs: string[] = [];

beforeAll(async () => {
  az = await startTestAzurite();
});
afterAll(async () => {
  await az?.dispose();
  for (const d of dirs) rmSync(d, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

function tempPath(): string {
  const d = mkdtempSync(join(tmpdir(), 'pw-sync-contributions-'));
  dirs.push(d);
  return join(d, 'buffer.sqlite');
}

/** Contributions as a model gives them (float32), with the cases JSON.stringify writes its own way. */
function contributionsOf(i: number): Record<string, number> {
  const f = (x: number): number => Math.fround(x);
  switch (i % 5) {
    case 0:
      return { Pressure: f(Math.abs(Math.sin(i))), Flow: f(Math.abs(Math.cos(i)) / 7), Current: f(i / 1e4) };
    case 1:
      return { Pressure: Number.NaN, Flow: Number.POSITIVE_INFINITY, Current: -0 };
    case 2:
      return { Pressure: 0.1, Flow: 1 / 3, Current: f(0.5) }; // doubles no float32 holds
    case 3:
      return { 'sensör "β"': f(0.25), '10': f(0.5), '2': f(0.125) };
    default:
      return { Pressure: f(1e-30), Flow: f(3e38), Current: 0 };
  }
}

const pumpOf = (i: number): string => (i % 2 === 0 ? 'pump-a' : 'pump-b');

const row = (i: number): PredictionRow => {
  const anomaly = i % 3 === 0;
  return {
    pumpId: pumpOf(i),
    ts: T0 + i * 1000,
    receivedAt: T0 + i * 1000 + 7,
    values: { Pressure: 1 + (i % 7) / 10, Flow: 30 + (i % 11), Current: null },
    score: anomaly ? 0.9 : 0.2,
    anomaly,
    modelVersion: 'm-1',
    imputed: false,
    unscoredReason: null,
    contributions: anomaly ? contributionsOf(i / 3) : null,
  };
};

interface LogLine {
  level: number;
  code?: string;
  msg: string;
  pumpId?: string;
  firstSeq?: number;
  lastSeq?: number;
  rows?: number;
  err?: { message: string };
}

function worker(store: BufferStore, container: string, thread: boolean, logs: LogLine[]): SyncWorker {
  const expected = thread ? 'thread' : 'main';
  return new SyncWorker({
    onEncoded: (on) => {
      if (on !== expected) logs.push({ level: 50, msg: `a batch was encoded on the ${on} thread, not on the ${expected} one` });
    },
    buffer: store,
    uploader: () => uploaderFor({ target: { kind: 'connection-string', connectionString: az.connectionString, container }, createContainer: true }),
    deviceId: DEVICE,
    agentVersion: '0.0.0-test',
    // every cycle on the thread when there is one, however small
    settings: () => ({ intervalMs: 60_000, maxBytesPerSecond: 0, batchMaxRows: 100, batchMaxBytes: 1 << 20, anomalyContextRows: 10, backoff: { initialMs: 1000, maxMs: 8000, slowMs: 600_000 }, threadAboveRows: 0 }),
    logger: createLogger('warn', { write: (s: string) => void logs.push(JSON.parse(s) as LogLine) }),
    encoderThread: thread ? new EncoderThread(store.path) : null,
  });
}

/** Every blob of a container: name, metadata hashes and the bytes. */
async function blobsOf(container: string): Promise<Array<{ name: string; sha256: string; rawsha256: string; body: Buffer }>> {
  const c = az.container(container);
  const out = [];
  for await (const item of c.listBlobsFlat({ prefix: 'readings/', includeMetadata: true })) {
    out.push({ name: item.name, sha256: item.metadata!.sha256!, rawsha256: item.metadata!.rawsha256!, body: await c.getBlockBlobClient(item.name).downloadToBuffer() });
  }
  return out;
}

async function syncAll(store: BufferStore, container: string, thread: boolean, logs: LogLine[] = []): Promise<void> {
  const sync = worker(store, container, thread, logs);
  try {
    expect((await sync.runOnce()).failure).toBeNull();
  } finally {
    await sync.stop();
  }
  expect(logs.filter((l) => l.level >= 50)).toEqual([]); // every batch where asked (the thread reads the built dist/)
}

const typesOf = (store: BufferStore): Record<string, number> =>
  Object.fromEntries((store.db.prepare('SELECT typeof(contributions) AS t, count(*) AS n FROM readings GROUP BY 1').all() as Array<{ t: string; n: number }>).map((r) => [r.t, r.n]));

describe('sync of contributions stored as a BLOB', () => {
  it.each([
    ['on the encoder thread', true],
    ['on the main thread', false],
  ])('uploads byte for byte the blobs of the same rows stored as JSON by the schema-9 agent (%s)', async (_, thread) => {
    const rows = Array.from({ length: ROWS }, (_, i) => row(i));
    const oldPath = tempPath();
    schema9File(oldPath, rows);
    const old = new BufferStore({ path: oldPath, maxBytes: 2 ** 30 });
    const fresh = new BufferStore({ path: tempPath(), maxBytes: 2 ** 30 });
    old.open();
    fresh.open();
    try {
      fresh.appendBatch(rows);
      fresh.setMeta(BUFFER_ID_KEY, old.bufferId()); // the lines name their buffer: the same id, so the same bytes
      expect(typesOf(old)).toEqual({ null: 400, text: 200 });
      expect(typesOf(fresh)).toEqual({ null: 400, blob: 200 });
      const [a, b] = [`contrib-json-${++containerNo}`, `contrib-blob-${containerNo}`];
      await syncAll(old, a, thread);
      await syncAll(fresh, b, thread);
      const fromJson = await blobsOf(a);
      const fromBlob = await blobsOf(b);
      expect(fromJson.length).toBeGreaterThan(5);
      expect(fromBlob.map((x) => x.name)).toEqual(fromJson.map((x) => x.name));
      fromBlob.forEach((x, i) => {
        expect(x.body.equals(fromJson[i]!.body), x.name).toBe(true);
        expect([x.sha256, x.rawsha256]).toEqual([fromJson[i]!.sha256, fromJson[i]!.rawsha256]);
      });
      // And the lines hold the contributions as JSON.stringify wrote them (NaN and ±Infinity as null, -0 as 0).
      const lines = (await decodeAllBlobs(az.container(b))).flatMap((x) => x.lines);
      expect(lines).toHaveLength(ROWS);
      for (const line of lines) expect(JSON.stringify(line.contributions ?? null)).toBe(JSON.stringify(rows[line.seq - 1]!.contributions));
    } finally {
      old.close();
      fresh.close();
    }
  });

  it.each([
    ['on the encoder thread', true],
    ['on the main thread', false],
  ])('uploads a row whose BLOB cannot be decoded with contributions: null and the rest as stored, and names it in /status and /healthz (%s)', async (_, thread) => {
    const warnings: string[] = [];
    const store = new BufferStore({ path: tempPath(), maxBytes: 2 ** 30, onWarning: (m) => warnings.push(m) });
    store.open();
    const logs: LogLine[] = [];
    try {
      const rows = Array.from({ length: ROWS }, (_, i) => row(i));
      store.appendBatch(rows);
      // seq 301 (i = 300, pump-a, an anomaly) cut short; seq 451 (i = 450, pump-a) naming a list the file does not hold.
      const blob = (seq: number) => store.db.prepare('SELECT contributions FROM readings WHERE seq = ?').pluck().get(seq) as Buffer;
      store.db.prepare('UPDATE readings SET contributions = ? WHERE seq = ?').run(blob(301).subarray(0, 9), 301);
      store.db.prepare('UPDATE readings SET contributions = ? WHERE seq = ?').run(Buffer.concat([Buffer.from([1, 99, 0, 0, 0]), blob(451).subarray(5)]), 451);
      const container = `contrib-bad-${++containerNo}`;
      await syncAll(store, container, thread, logs);
      const lines = (await decodeAllBlobs(az.container(container))).flatMap((x) => x.lines).sort((x, y) => x.seq - y.seq);
      // All 600 went up; the two with contributions: null, their values, score and verdict as stored.
      expect(lines.map((l) => l.seq)).toEqual(Array.from({ length: ROWS }, (_, i) => i + 1));
      for (const line of lines) {
        const stored = rows[line.seq - 1]!;
        const contributions = line.seq === 301 || line.seq === 451 ? null : stored.contributions;
        expect(JSON.stringify(line.contributions ?? null), `seq ${line.seq}`).toBe(JSON.stringify(contributions));
        expect([line.pumpId, line.values, line.score, line.anomaly]).toEqual([stored.pumpId, stored.values, stored.score, stored.anomaly]);
      }
      expect(lines[300]!.contributions).toBeNull();
      expect(lines[450]!.contributions).toBeNull();
      const { unreadable, unsynced, withoutContributions } = store.stats();
      expect(unsynced).toBe(0);
      expect(unreadable.rows).toBe(0);
      expect(logs.filter((l) => l.code === 'PW_BUFFER_ROWS_UNREADABLE')).toEqual([]);
      // The visible record: a count and the newest seqs, one warning per row, and /healthz degraded naming them.
      expect(withoutContributions.rows).toBe(2);
      const recorded = [...withoutContributions.recent].sort((x, y) => x.seq - y.seq);
      expect(recorded.map((r) => r.seq)).toEqual([301, 451]);
      expect(recorded[0]!.error).toMatch(/^reading seq 301: its contributions \(a BLOB of 9 bytes\) should be 17 bytes/);
      expect(recorded[1]!.error).toMatch(/^reading seq 451: its contributions \(a BLOB of 17 bytes\) name feature list 99, which contribution_names does not hold/);
      const said = warnings.filter((w) => /uploads it without its contributions/.test(w));
      expect(said).toHaveLength(2);
      expect(said.find((w) => w.includes('reading seq 301:'))).toMatch(/^PW_BUFFER_INVALID_ROW: reading seq 301: its contributions .*; the sync uploads it without its contributions, its values, score and verdict as stored$/);
      expect(said.find((w) => w.includes('reading seq 451:'))).toBeDefined();
      expect(store.health()).toEqual({
        ok: true,
        degraded: expect.stringMatching(/^PW_BUFFER_INVALID_ROW: 2 row\(s\) were uploaded without their contributions, which cannot be decoded \(seq (451, 301|301, 451)\); their values, score and verdict went up as stored/),
      });
    } finally {
      store.close();
    }
  });
});
