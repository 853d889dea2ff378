/**
 * PUMPWATCH_SYNC_MAX_BYTES_PER_SECOND end to end: a real store, the real sync worker and uploader,
 * a real Azurite. The token bucket alone is unit-tested (test/unit/sync-bandwidth.test.ts); here the
 * bytes that reach Blob Storage are held to the cap.
 *
 * No test may assert a speed (a loaded 2-core machine makes anything slower), so the cap is checked
 * from the other side, as an upper bound on the rate that load can only make easier to meet: the
 * bucket lets `cap` bytes go at once and `cap` more per second after, so the bytes of the first k
 * blobs are at most cap × (1 + seconds between the first upload and the k-th). The times are the
 * worker's own (recorded as each upload starts, just after the bucket let it go) and, as a second
 * witness, the creation times Azurite gives the blobs (whole seconds). Both checks allow twice the
 * cap, and Azurite's two seconds more for its rounding and the first upload's own duration.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createLogger } from '../../agent/logger.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';
import { uploaderFor } from '../../sync/uploader.js';
import { SyncWorker } from '../../sync/worker.js';
import { decodeAllBlobs, startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { rng } from '../support/models.js';

const T0 = Date.UTC(2026, 10, 20, 8); // fixed: 4 000 readings a second apart stay within one UTC day
const ROWS = 4000;
// About 164 kB of gzip in 16 blobs: some nine seconds at this cap.
const CAP = 16_000;
const MARGIN = 2;

let az: TestAzurite;
let dir: string;
beforeAll(async () => {
  az = await startTestAzurite();
  dir = mkdtempSync(join(tmpdir(), 'pw-bandwidth-'));
});
afterAll(async () => {
  await az?.dispose();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

it('uploads no faster than sync.maxBytesPerSecond allows, by the bytes that reach Blob Storage and when they went', async () => {
  const random = rng(21); // values that gzip poorly, so the blobs are many bytes
  const reading = (i: number): PredictionRow => ({
    pumpId: 'pump-bw', ts: T0 + i * 1000, receivedAt: T0 + i * 1000, values: { Pressure: random(), Flow: random() }, score: random(), anomaly: false,
    modelVersion: 'm-1', imputed: false, unscoredReason: null,
  });
  const store = new BufferStore({ path: join(dir, 'buffer.sqlite'), maxBytes: 2 ** 30 });
  store.open();
  store.appendBatch(Array.from({ length: ROWS }, (_, i) => reading(i)));
  const container = 'bandwidth';
  /** Each upload as the worker starts it: performance.now() (the bucket's clock) and its bytes. */
  const uploads: Array<{ at: number; bytes: number }> = [];
  const worker = new SyncWorker({
    buffer: store,
    uploader: () => {
      const real = uploaderFor({ target: { kind: 'connection-string', connectionString: az.connectionString, container }, createContainer: true });
      const upload = real.upload.bind(real);
      real.upload = (req, signal) => {
        uploads.push({ at: performance.now(), bytes: req.encoded.body.length });
        return upload(req, signal);
      };
      return real;
    },
    deviceId: 'gw-bw',
    agentVersion: '0.0.0-test',
    settings: () => ({ intervalMs: 60_000, maxBytesPerSecond: CAP, batchMaxRows: 250, batchMaxBytes: 1 << 20, anomalyContextRows: 0, backoff: { initialMs: 1000, maxMs: 8000, slowMs: 600_000 }, threadAboveRows: 1_000_000 }),
    logger: createLogger('silent'),
  });
  try {
    expect((await worker.runOnce()).failure).toBeNull();
  } finally {
    await worker.stop();
    store.close();
  }

  // Everything went up, and the bytes the worker sent are the bytes Azurite holds.
  expect((await decodeAllBlobs(az.container(container))).flatMap((b) => b.lines)).toHaveLength(ROWS);
  const blobs: Array<{ createdOn: number; bytes: number }> = [];
  for await (const b of az.container(container).listBlobsFlat()) blobs.push({ createdOn: b.properties.createdOn!.getTime(), bytes: b.properties.contentLength ?? 0 });
  const total = blobs.reduce((n, b) => n + b.bytes, 0);
  expect(uploads.reduce((n, u) => n + u.bytes, 0)).toBe(total);
  expect(total).toBeGreaterThan(8 * CAP); // enough bytes that the cap has to hold them back for seconds

  // The worker's times: at each upload, the bytes sent so far stay under the bucket's bound (× MARGIN).
  let sent = 0;
  const over = uploads.flatMap((u, k) => {
    sent += u.bytes;
    const allowed = CAP * (1 + (u.at - uploads[0]!.at) / 1000);
    return sent > MARGIN * allowed ? [`upload ${k + 1}: ${sent} bytes sent by ${Math.round(u.at - uploads[0]!.at)} ms, allowed ${Math.round(allowed)}`] : [];
  });
  expect(over).toEqual([]);

  // Azurite's times: the blobs were created over a span that the cap's rate (× MARGIN) needs at least.
  blobs.sort((a, b) => a.createdOn - b.createdOn);
  const spanSeconds = (blobs.at(-1)!.createdOn - blobs[0]!.createdOn) / 1000 + 2;
  expect((total - CAP) / spanSeconds, `${total} bytes in blobs created over ${spanSeconds - 2} s`).toBeLessThanOrEqual(MARGIN * CAP);
}, 120_000);
