/**
 * A fleet upgrade in place: the agent of 2026-12-05 (buffer schema 8, no buffer id) persisted a
 * batch plan, its PUT reached Blob Storage, the answer was lost and the agent was killed. Today's
 * agent opens the file (migrating it, and giving it its buffer id only now) and sends the plan
 * again. The promise is the same rows under the same name with the same bytes: the blob there
 * counts as done. Before, the resend carried `bufferId`, its sha256 differed, and the batch went
 * beside the name: the same readings twice in the lake.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../agent/logger.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';
import type { BlobTarget } from '../../sync/client.js';
import { EncoderThread } from '../../sync/encoder-thread.js';
import { encodeLines } from '../../sync/encoder.js';
import { readingsBlobName } from '../../sync/layout.js';
import { uploaderFor } from '../../sync/uploader.js';
import { SyncWorker } from '../../sync/worker.js';
import { decodeAllBlobs, startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { oldSchemaFile } from '../support/schema9.js';

const T0 = Date.UTC(2026, 11, 5, 9);
const DEVICE = 'gw-old';
const ROWS: PredictionRow[] = [
  { pumpId: 'pump-7', ts: T0, receivedAt: T0 + 40, values: { Pressure: 0.38, 'Motor Temp': 61.5, Flow: null }, score: null, anomaly: null, modelVersion: 'default-1', imputed: false, unscoredReason: 'window filling: 1 of 2 readings' },
  { pumpId: 'pump-7', ts: T0 + 1000, receivedAt: T0 + 1040, values: { Pressure: 0.4, 'Motor Temp': 61.25, Flow: 12 }, score: 0.21875, anomaly: false, modelVersion: 'default-1', imputed: true, unscoredReason: null, shadowScore: 0.5, shadowModelVersion: 'v-shadow' },
  { pumpId: 'pump-7', ts: T0 + 2000, receivedAt: T0 + 2040, values: { Pressure: 3.5, 'Motor Temp': 90, Flow: 0.125 }, score: 7.75, anomaly: true, modelVersion: 'default-1', imputed: false, unscoredReason: null, contributions: { Pressure: 5.5, 'Motor Temp': 2.25, Flow: 0 } },
];
const BLOB = readingsBlobName('pump-7', DEVICE, 1, 3, T0);
/**
 * The lines the agent of 2026-12-05 (commit 79db785, sync/encoder.ts encodeRawRows) wrote for ROWS,
 * taken from that build: no `bufferId`, no `threshold`.
 */
const OLD_LINES =
  '{"seq":1,"deviceId":"gw-old","pumpId":"pump-7","ts":"2026-12-05T09:00:00.000Z","receivedAt":"2026-12-05T09:00:00.040Z","values":{"Pressure":0.38,"Motor Temp":61.5,"Flow":null},"score":null,"anomaly":null,"modelVersion":"default-1","imputed":false,"unscoredReason":"window filling: 1 of 2 readings"}\n' +
  '{"seq":2,"deviceId":"gw-old","pumpId":"pump-7","ts":"2026-12-05T09:00:01.000Z","receivedAt":"2026-12-05T09:00:01.040Z","values":{"Pressure":0.4,"Motor Temp":61.25,"Flow":12},"score":0.21875,"anomaly":false,"modelVersion":"default-1","imputed":true,"shadowScore":0.5,"shadowModelVersion":"v-shadow"}\n' +
  '{"seq":3,"deviceId":"gw-old","pumpId":"pump-7","ts":"2026-12-05T09:00:02.000Z","receivedAt":"2026-12-05T09:00:02.040Z","values":{"Pressure":3.5,"Motor Temp":90,"Flow":0.125},"score":7.75,"anomaly":true,"modelVersion":"default-1","imputed":false,"contributions":{"Pressure":5.5,"Motor Temp":2.25,"Flow":0}}\n';
/** That agent's sha256 of the gzip bytes (same build of zlib here). */
const OLD_SHA256 = '5db95ef6c75a1ac9fe7bd89a03b3f233031a29ac68b488da1852d43ad7cf5d38';

let az: TestAzurite;
let dir: string;
let path: string;
let containerNo = 0;
let threads: EncoderThread[] = [];

beforeAll(async () => {
  az = await startTestAzurite();
});
afterAll(async () => {
  await az?.dispose();
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pw-upgrade-resend-'));
  path = join(dir, 'buffer.sqlite');
});
afterEach(() => {
  for (const t of threads) t.close();
  threads = [];
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

/**
 * The schema-8 agent's file with its plan of rows 1..3 persisted (its planner's statement), and
 * the blob it uploaded with the answer lost: the bytes and metadata that agent sent.
 */
async function oldAgentCrashedAfterPut(target: BlobTarget & { container: string }): Promise<void> {
  oldSchemaFile(path, 8, ROWS);
  const db = new Database(path);
  db.prepare(`INSERT INTO sync_batches (pump_id, first_seq, last_seq, row_count, blob_name, priority, state, created_at) VALUES ('pump-7', 1, 3, 3, ?, 0, 'planned', ?)`).run(BLOB, T0 + 3000);
  db.close();
  const encoded = await encodeLines(Buffer.from(OLD_LINES, 'utf8'), 3);
  expect(encoded.sha256).toBe(OLD_SHA256);
  const container = az.container(target.container);
  await container.createIfNotExists();
  const metadata = { rowcount: '3', sha256: encoded.sha256, rawsha256: encoded.rawSha256, schemaversion: '1', agentversion: '0.1.0', deviceid: DEVICE, pumpid: 'pump-7', firstseq: '1', lastseq: '3' };
  await container.getBlockBlobClient(BLOB).upload(encoded.body, encoded.body.length, { metadata, conditions: { ifNoneMatch: '*' } });
}

function worker(store: BufferStore, target: BlobTarget, encoderThread: EncoderThread | null, onEncoded?: (on: 'thread' | 'main') => void): SyncWorker {
  return new SyncWorker({
    onEncoded,
    buffer: store,
    uploader: () => uploaderFor({ target, createContainer: true }),
    deviceId: DEVICE,
    agentVersion: '0.0.0-test',
    settings: () => ({ intervalMs: 60_000, maxBytesPerSecond: 0, batchMaxRows: 100, batchMaxBytes: 1 << 20, anomalyContextRows: 10, backoff: { initialMs: 1000, maxMs: 8000, slowMs: 600_000, jitter: 0 }, threadAboveRows: 0 }),
    logger: createLogger('silent'),
    encoderThread,
  });
}

describe.each([
  ['main thread', false],
  ['encoder thread', true],
])('a batch the schema-8 agent planned and uploaded before a crash, sent again after the upgrade (%s)', (_, onThread) => {
  it('counts the blob already there as done: no beside-name, no line twice, and later batches carry the buffer id', async () => {
    const target = { kind: 'connection-string' as const, connectionString: az.connectionString, container: `upgrade-${++containerNo}` };
    await oldAgentCrashedAfterPut(target);
    const store = new BufferStore({ path, maxBytes: 2 ** 30 });
    store.open(); // migrates 8 → 11 and makes the buffer id now, after the plan
    try {
      const thread = onThread ? new EncoderThread(store.path) : null;
      if (thread !== null) threads.push(thread);
      const encodedOn: string[] = [];
      const w = worker(store, target, thread, (on) => void encodedOn.push(on));
      expect((await w.runOnce()).failure).toBeNull();
      await w.stop();
      expect(encodedOn).toEqual([onThread ? 'thread' : 'main']);
      const batch = store.db.prepare('SELECT state, sha256 FROM sync_batches WHERE blob_name = ?').get(BLOB);
      expect(batch).toEqual({ state: 'uploaded', sha256: OLD_SHA256 });

      let blobs = await decodeAllBlobs(az.container(target.container));
      expect(blobs.map((b) => b.name)).toEqual([BLOB]); // nothing beside it
      expect(blobs[0]!.lines.map((l) => l.seq)).toEqual([1, 2, 3]);

      // A plan made after the upgrade carries the file's id, lines and metadata.
      store.appendBatch([{ ...ROWS[1]!, ts: T0 + 3000, receivedAt: T0 + 3040, threshold: 1.5 }]);
      const w2 = worker(store, target, thread);
      expect((await w2.runOnce()).failure).toBeNull();
      await w2.stop();
      blobs = await decodeAllBlobs(az.container(target.container));
      expect(blobs.map((b) => b.name)).toEqual([BLOB, readingsBlobName('pump-7', DEVICE, 4, 4, T0 + 3000)]);
      expect(blobs[1]!.metadata.bufferid).toBe(store.bufferId());
      expect(blobs[1]!.lines.map((l) => [l.seq, l.bufferId])).toEqual([[4, store.bufferId()]]);
    } finally {
      store.close();
    }
  });
});
