/**
 * A failure of the buffer met by the sync is reported as the buffer's, not as an unreachable Blob
 * Storage: one page of the readings table zeroed (a bad SD-card sector) in a buffer with a backlog,
 * then a real sync to Azurite, on the encoder thread and on the main thread, and the agent's
 * /healthz. Before, the sync said "Blob Storage is unreachable … database disk image is malformed",
 * connectivity went offline, /healthz stayed 200, and it retried the same rows for ever.
 */
import Database from 'better-sqlite3';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../agent/logger.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';
import { EncoderThread } from '../../sync/encoder-thread.js';
import { uploaderFor } from '../../sync/uploader.js';
import { SyncWorker } from '../../sync/worker.js';
import { startTestAgent } from '../support/agent.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';

const T0 = Date.now() - 3_600_000;
const ROWS = 3000;

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

const row = (i: number): PredictionRow => ({
  pumpId: 'pump-a',
  ts: T0 + i * 1000,
  receivedAt: T0 + i * 1000,
  values: { Pressure: 1 + (i % 7) / 10, Flow: 30 + (i % 11) },
  score: 0.25,
  anomaly: false,
  modelVersion: 'm-1',
  imputed: false,
  unscoredReason: null,
});

/** A buffer of ROWS unsent rows in `dataDir`, closed, with one leaf page of the readings table in its middle zeroed. */
function corruptBuffer(dataDir: string): string {
  const path = join(dataDir, 'buffer.sqlite');
  const store = new BufferStore({ path, maxBytes: 2 ** 30 });
  store.open();
  store.appendBatch(Array.from({ length: ROWS }, (_, i) => row(i)));
  store.close();
  const db = new Database(path);
  db.pragma('wal_checkpoint(TRUNCATE)');
  const leaves = db.prepare("SELECT pageno FROM dbstat WHERE name = 'readings' AND pagetype = 'leaf' ORDER BY pageno").all() as Array<{ pageno: number }>;
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  db.close();
  const page = leaves[Math.floor(leaves.length / 2)]!.pageno;
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.alloc(pageSize, 0), 0, pageSize, (page - 1) * pageSize);
  closeSync(fd);
  return path;
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'pw-sync-buffer-failure-'));
  dirs.push(d);
  return d;
}

describe('sync meeting a corrupt page of the buffer', () => {
  it.each([
    ['on the encoder thread', true],
    ['on the main thread', false],
  ])('reports PW_BUFFER_CORRUPT as the buffer\'s failure (%s), leaving connectivity and the sync\'s own health alone', async (_, thread) => {
    const path = corruptBuffer(tempDir());
    const store = new BufferStore({ path, maxBytes: 2 ** 30 });
    store.open();
    const container = `corrupt-${++containerNo}`;
    const worker = new SyncWorker({
      buffer: store,
      uploader: () => uploaderFor({ target: { kind: 'connection-string', connectionString: az.connectionString, container }, createContainer: true }),
      deviceId: 'gw-corrupt',
      agentVersion: '0.0.0-test',
      settings: () => ({ intervalMs: 60_000, maxBytesPerSecond: 0, batchMaxRows: 200, batchMaxBytes: 1 << 20, anomalyContextRows: 10, backoff: { initialMs: 1000, maxMs: 8000, slowMs: 600_000 } }),
      logger: createLogger('silent'),
      encoderThread: thread ? new EncoderThread(path) : null,
    });
    try {
      expect(store.health()).toEqual({ ok: true });
      const result = await worker.runOnce();
      expect(result.failure).toMatchObject({ kind: 'buffer', code: 'PW_BUFFER_CORRUPT', heals: false });
      const status = worker.status();
      expect(status.lastError).toMatch(/^the buffer failed \(PW_BUFFER_CORRUPT\): .*buffer\.sqlite is not a valid database \(database disk image is malformed\)/);
      expect(status.lastError).not.toMatch(/Blob Storage/);
      expect(status.uploadedRows).toBeGreaterThan(0); // the rows before the bad page went up
      expect(worker.blobConnectivity()).toBe('online'); // what the uploads said of the target, not "offline"
      const health = store.health();
      expect(health.ok).toBe(false);
      expect(health.error).toMatch(/^PW_BUFFER_CORRUPT \(met by the sync\): .*database disk image is malformed/);
      expect(worker.health()).toEqual({ ok: true }); // named once, by the buffer's check
    } finally {
      await worker.stop();
      store.close();
    }
  });

  it('makes the agent\'s /healthz answer 503 naming the buffer, with /status sync.lastError naming it too', async () => {
    const data = join(tempDir(), 'data');
    corruptBuffer(data);
    const t = await startTestAgent({
      PUMPWATCH_DATA_DIR: data,
      PUMPWATCH_SYNC: 'auto',
      PUMPWATCH_BLOB_CONNECTION_STRING: az.connectionString,
      PUMPWATCH_BLOB_CONTAINER: `corrupt-agent-${++containerNo}`,
      PUMPWATCH_SYNC_BATCH_MAX_ROWS: '200',
      PUMPWATCH_DEVICE_ID: 'gw-corrupt',
    });
    try {
      let health: { status: number; json: { checks: Record<string, string>; failing?: string[] } } | null = null;
      for (let i = 0; i < 400; i++) { // the agent's first sync cycle, at its start: 40 s at most on a busy machine
        const res = await fetch(`${t.url}/healthz`);
        health = { status: res.status, json: (await res.json()) as { checks: Record<string, string> } };
        if (health.status === 503) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(health, JSON.stringify(health)).toMatchObject({ status: 503 });
      expect(health!.json.checks.buffer).toMatch(/^PW_BUFFER_CORRUPT \(met by the sync\): .*database disk image is malformed/);
      expect(health!.json.checks.sync).toBe('ok');
      const status = (await (await fetch(`${t.url}/status`)).json()) as { sync: { lastError: string }; connectivity: { blob: string } };
      expect(status.sync.lastError).toMatch(/^the buffer failed \(PW_BUFFER_CORRUPT\)/);
      expect(status.connectivity.blob).not.toBe('offline');
    } finally {
      await t.stop();
    }
  });
});
