/**
 * The sync on a link where the connection stays up while answers stop (a proxy or middlebox that
 * holds the request): each request is given up after the idle window and the cycle ends as an
 * outage (it hung until someone closed the socket), /status shows the cycle in flight and
 * /healthz fails when a cycle stops moving; a slow link that keeps moving is not cut. Also the
 * refusals whose cause is not the credentials: a gateway clock far off, a SAS past its expiry.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEVSTORE_ACCOUNT, DEVSTORE_KEY } from '../../agent/azurite.js';
import { createLogger } from '../../agent/logger.js';
import { LabelStore } from '../../buffer/labels.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';
import { sasExpiry, type BlobTarget } from '../../sync/client.js';
import { sha256Hex } from '../../sync/encoder.js';
import { uploadPendingLabels } from '../../sync/labels-upload.js';
import { uploaderFor } from '../../sync/uploader.js';
import { SyncWorker, type CycleResult, type SyncSettings, type SyncWorkerDeps } from '../../sync/worker.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';

const T0 = Date.UTC(2026, 11, 5, 8);
const SETTINGS: SyncSettings = {
  intervalMs: 60_000,
  maxBytesPerSecond: 0,
  batchMaxRows: 50,
  batchMaxBytes: 64 * 1024,
  anomalyContextRows: 10,
  backoff: { initialMs: 1000, maxMs: 8000, slowMs: 600_000, jitter: 0 },
};
/** The idle window the tests give requests (the agent's is 60 s). */
const IDLE_MS = 400;
/** How long a test waits for a cycle before calling it hung (today's code: forever). */
const HUNG_MS = 20_000;

let az: TestAzurite;
let dir: string;
let store: BufferStore;
let silent: { server: Server; port: number; sockets: Set<Socket>; bytes: number };

const row = (pumpId: string, i: number): PredictionRow => ({
  pumpId,
  ts: T0 + i * 1000,
  receivedAt: T0 + i * 1000,
  values: { Pressure: 1 + (i % 7) / 10, Flow: 30 + (i % 11) },
  score: 0.25,
  anomaly: false,
  modelVersion: 'm-1',
  imputed: false,
  unscoredReason: null,
});

const connectionString = (port: number): string =>
  `DefaultEndpointsProtocol=http;AccountName=${DEVSTORE_ACCOUNT};AccountKey=${DEVSTORE_KEY};BlobEndpoint=http://127.0.0.1:${port}/${DEVSTORE_ACCOUNT};`;

/** A server that accepts connections and reads every byte, and never answers. */
async function startSilentServer(): Promise<typeof silent> {
  const sockets = new Set<Socket>();
  const state = { server: createServer(), port: 0, sockets, bytes: 0 };
  state.server.on('connection', (s) => {
    sockets.add(s);
    s.on('data', (d) => (state.bytes += d.length));
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => state.server.listen(0, '127.0.0.1', r));
  state.port = (state.server.address() as { port: number }).port;
  return state;
}

function worker(target: BlobTarget, deps: Partial<SyncWorkerDeps> = {}, idleTimeoutMs = IDLE_MS): SyncWorker {
  return new SyncWorker({
    buffer: store,
    uploader: () => uploaderFor({ target, client: { idleTimeoutMs }, createContainer: true }),
    deviceId: 'gw-stall',
    agentVersion: '0.0.0-test',
    settings: () => SETTINGS,
    logger: createLogger('silent'),
    random: () => 0.5,
    ...deps,
  });
}

/** The cycle's result, or 'hung' when it has not ended in HUNG_MS. */
async function cycleWithin(w: SyncWorker, ms = HUNG_MS): Promise<CycleResult | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), ms)));
  try {
    return await Promise.race([w.runOnce(), hung]);
  } finally {
    clearTimeout(timer);
  }
}

beforeAll(async () => {
  az = await startTestAzurite();
});
afterAll(async () => {
  await az?.dispose();
});
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pw-sync-stall-'));
  store = new BufferStore({ path: join(dir, 'buffer.sqlite'), maxBytes: 2 ** 30 });
  store.open();
  silent = await startSilentServer();
});
afterEach(async () => {
  for (const s of silent.sockets) s.destroy();
  await new Promise((r) => silent.server.close(r));
  store.close();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

describe('sync against a connection that stops answering', () => {
  for (const where of ['the main thread', 'the encoder thread'] as const) {
    it(`ends the cycle as an outage after the idle window when the upload gets no answer (on ${where})`, async () => {
      store.appendBatch(Array.from({ length: 20 }, (_, i) => row('pump-a', i)));
      const w = worker({ kind: 'connection-string', connectionString: connectionString(silent.port), container: 'pumpwatch' }, where === 'the main thread' ? { encoderThread: null } : { settings: () => ({ ...SETTINGS, threadAboveRows: 0 }) });
      try {
        const result = await cycleWithin(w);
        expect(result, 'the cycle never ended').not.toBe('hung');
        const { failure } = result as CycleResult;
        expect(failure).toMatchObject({ kind: 'offline', heals: true, code: 'PW_SYNC_NO_ANSWER' });
        // The idle window (plus the small body's drain), or the cap when connecting alone took longer (a busy machine).
        expect(failure!.message).toMatch(/^(no answer from Blob Storage for|Blob Storage took longer than) \d+(\.\d)? s \(uploading readings\/pump-a\/\S+\.jsonl\.gz[,)]/);
        expect(silent.bytes).toBeGreaterThan(0); // the request did reach the server
        expect(w.status()).toMatchObject({ state: 'retrying', connectivity: 'offline', uploadingSince: null, lastError: failure!.message });
        expect(w.health()).toEqual({ ok: true }); // an outage, not a failure of the gateway
        expect(store.stats().unsynced).toBe(20); // the batch stays planned for the next cycle
      } finally {
        await w.stop();
      }
    });
  }

  it('shows the cycle in flight in status(), and fails health() once it has not moved for longer than the limit', async () => {
    store.appendBatch(Array.from({ length: 20 }, (_, i) => row('pump-a', i)));
    let mono = 1_000_000;
    // The agent's idle window (60 s): the request is still held while the monotonic clock is moved on.
    const w = worker({ kind: 'connection-string', connectionString: connectionString(silent.port), container: 'pumpwatch' }, { encoderThread: null, monotonic: () => mono }, 60_000);
    const cycle = w.runOnce();
    try {
      await vi.waitFor(() => expect(silent.bytes, 'bytes of the upload that reached the silent server').toBeGreaterThan(0), { timeout: 60_000, interval: 20 });
      const status = w.status();
      expect(status.state).toBe('uploading');
      expect(status.uploadingSince).not.toBeNull();
      expect(status.lastProgressAt).toBe(status.uploadingSince);
      expect(w.health()).toEqual({ ok: true });
      mono += 2 * 60_000 + Math.ceil((SETTINGS.batchMaxBytes * 1000) / 500) + 60_000; // past the limit of the largest batch's request
      expect(w.health()).toMatchObject({ ok: false, error: expect.stringMatching(/^the sync cycle that began at .* has not moved for \d+ min .*: it is stuck$/) as string });
    } finally {
      await w.stop(); // the stop signal still ends the held request at once
      await cycle;
    }
    expect(w.status().uploadingSince).toBeNull();
  });

  it('ends the label uploads that follow the readings the same way', async () => {
    const w = worker(
      { kind: 'connection-string', connectionString: connectionString(silent.port), container: 'pumpwatch' },
      {
        encoderThread: null,
        afterReadings: async (uploader, signal) => {
          const labels = new LabelStore(store);
          labels.add({ pumpId: 'pump-a', kind: 'false-alarm', faultType: null, note: null, alertSeq: null, fromTs: T0, toTs: T0 + 1000, author: 'tech' }, T0);
          await uploadPendingLabels(uploader.containerClient, labels, 'gw-stall', { idleMs: uploader.idleTimeoutMs, signal });
          return { contacted: true };
        },
      },
    );
    try {
      const result = await cycleWithin(w);
      expect(result, 'the cycle never ended').not.toBe('hung');
      expect((result as CycleResult).failure).toMatchObject({ kind: 'offline', code: 'PW_SYNC_NO_ANSWER', message: expect.stringMatching(/^uploading labels failed after 0 of them: no answer from Blob Storage/) as string });
    } finally {
      await w.stop();
    }
  });
});

/**
 * A proxy to Azurite that passes the gateway's bytes on at `bytesPerSecond`, in small slices (the
 * answers come back at once): a slow link that keeps moving.
 */
async function startThrottle(upstreamPort: number, bytesPerSecond: number): Promise<{ server: Server; port: number; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(upstreamPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    upstream.pipe(client);
    const slice = 256;
    client.on('data', (chunk: Buffer) => {
      client.pause();
      let at = 0;
      const next = (): void => {
        if (at >= chunk.length || upstream.destroyed) {
          client.resume();
          return;
        }
        upstream.write(chunk.subarray(at, at + slice));
        at += slice;
        setTimeout(next, (slice * 1000) / bytesPerSecond);
      };
      next();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, sockets };
}

describe('sync on a slow link that keeps moving', () => {
  it('is not cut: a 24 KB blob at 8 KB/s (3 s) goes up with a 400 ms idle window', async () => {
    const proxy = await startThrottle(az.port, 8 * 1024);
    try {
      await az.container('slow').createIfNotExists();
      const uploader = uploaderFor({ target: { kind: 'connection-string', connectionString: connectionString(proxy.port), container: 'slow' }, client: { idleTimeoutMs: IDLE_MS }, createContainer: true });
      const body = randomBytes(24 * 1024); // incompressible: every byte crosses the slow link
      const sha256 = await sha256Hex(body);
      const t0 = performance.now();
      const outcome = await uploader.upload({ blobName: 'readings/slow.jsonl.gz', encoded: { body, sha256, rawSha256: sha256, rawBytes: body.length, rowCount: 1 }, metadata: { sha256 } });
      expect(outcome).toBe('created');
      expect(performance.now() - t0).toBeGreaterThan(2 * IDLE_MS); // it did take longer than the idle window: the link was slow
      expect((await az.container('slow').getBlockBlobClient('readings/slow.jsonl.gz').downloadToBuffer()).equals(body)).toBe(true);
    } finally {
      for (const s of proxy.sockets) s.destroy();
      await new Promise((r) => proxy.server.close(r));
    }
  });
});

describe('a refusal whose cause is not the credentials', () => {
  let server: HttpServer | null = null;
  afterEach(async () => {
    if (server) await new Promise((r) => server!.close(r));
    server = null;
  });

  it('names the gateway clock when the service\'s Date is far off (Azure\'s answer to a skewed x-ms-date), retries at the backoff pace and fails /healthz with it', async () => {
    // What Azure answers a SharedKey request dated more than 15 min off its own time (Azurite does not check).
    const serviceTime = Date.now() - 76 * 60_000;
    server = createHttpServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(403, { 'x-ms-error-code': 'AuthenticationFailed', 'content-type': 'application/xml', date: new Date(serviceTime).toUTCString() });
        res.end('<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code><Message>Server failed to authenticate the request.</Message><AuthenticationErrorDetail>Request date header too old</AuthenticationErrorDetail></Error>');
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    store.appendBatch([row('pump-a', 1)]);
    const w = worker({ kind: 'connection-string', connectionString: connectionString((server.address() as { port: number }).port), container: 'pumpwatch' }, { encoderThread: null });
    try {
      const result = await cycleWithin(w);
      const { failure, nextDelayMs } = result as CycleResult;
      expect(failure).toMatchObject({ kind: 'unauthorized', heals: true, status: 403 });
      expect(failure!.message).toMatch(/^Blob Storage refused the request \(403 AuthenticationFailed\): the gateway clock reads \S+Z, Blob Storage's \S+Z \(7[67] min apart\): fix the clock \(NTP\); the credentials may be fine\.$/);
      expect(nextDelayMs).toBeLessThanOrEqual(SETTINGS.backoff.initialMs); // not the slow pace
      expect(w.health()).toEqual({ ok: false, error: failure!.message });
    } finally {
      await w.stop();
    }
  });

  it('says the SAS expired, and when, in the failure itself once its expiry has passed (real Azurite)', async () => {
    await az.container('expired').createIfNotExists();
    const target: BlobTarget = { kind: 'sas-url', sasUrl: az.containerSasUrl('expired', 'rcw', new Date(Date.now() - 60_000)) };
    const expiresAt = sasExpiry(target);
    store.appendBatch([row('pump-a', 1)]);
    const w = worker(target, { encoderThread: null, credentialExpiresAt: () => expiresAt });
    try {
      const { failure } = (await cycleWithin(w)) as CycleResult;
      expect(failure).toMatchObject({ kind: 'unauthorized', heals: false, status: 403 });
      expect(failure!.message).toBe(`Blob Storage refused the credentials (403 ${failure!.code}): the SAS expired at ${new Date(expiresAt!).toISOString()}; replace it (a restart-only setting).`);
    } finally {
      await w.stop();
    }
  });
});
