/**
 * A proxy between the gateway and Blob Storage that refuses the upload with an HTML page echoing
 * the request URL, HTML-escaped (`&amp;sig=…`) and percent-encoded (`%26sig%3D…`): the sync worker
 * and the whole agent (its log, /status, the public /healthz, the buffer's batch record) must never
 * repeat the SAS signature.
 */
import { ContainerSASPermissions, generateBlobSASQueryParameters, StorageSharedKeyCredential } from '@azure/storage-blob';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEVSTORE_ACCOUNT, DEVSTORE_KEY } from '../../agent/azurite.js';
import { createLogger } from '../../agent/logger.js';
import { Agent } from '../../agent/main.js';
import { BufferStore } from '../../buffer/store.js';
import { uploaderFor } from '../../sync/uploader.js';
import { SyncWorker } from '../../sync/worker.js';
import { postJson, testAgentConfig } from '../support/agent.js';
import { makeModel, normalValues, rng } from '../support/models.js';

/** A container SAS as the SDK makes it; its signature is what must not leak. */
const SAS = generateBlobSASQueryParameters(
  { containerName: 'pumpwatch', permissions: ContainerSASPermissions.parse('racwl'), expiresOn: new Date(Date.now() + 3_600_000) },
  new StorageSharedKeyCredential(DEVSTORE_ACCOUNT, DEVSTORE_KEY),
);
const SIG = SAS.signature;

/** Every form of the signature a leak could take. */
function expectNoSignature(text: string): void {
  for (const form of [SIG, encodeURIComponent(SIG), encodeURIComponent(encodeURIComponent(SIG))]) expect(text).not.toContain(form);
  expect(text).not.toMatch(/sig(=|%3D)(?!\[redacted\])/i);
}

let proxy: { server: Server; port: number; status: number; requests: number };

beforeAll(async () => {
  const state = { status: 403, requests: 0 };
  const server = createServer((req, res) => {
    state.requests++;
    req.resume();
    const url = `http://${req.headers.host}${req.url}`;
    const page = `<html><body>Access denied by proxy for ${url.replace(/&/g, '&amp;').replace(/</g, '&lt;')}<br>retry: /login?next=${encodeURIComponent(url)}</body></html>`;
    res.writeHead(state.status, { 'content-type': 'text/html' });
    res.end(page);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy = Object.assign(state, { server, port: (server.address() as { port: number }).port });
});

afterAll(async () => {
  proxy.server.closeAllConnections();
  await new Promise<void>((resolve) => proxy.server.close(() => resolve()));
});

const sasUrl = () => `http://127.0.0.1:${proxy.port}/${DEVSTORE_ACCOUNT}/pumpwatch?${SAS.toString()}`;

describe('sync worker behind a proxy that echoes the SAS URL', () => {
  let dir: string;
  let store: BufferStore;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pw-sync-redaction-'));
    store = new BufferStore({ path: join(dir, 'buffer.sqlite'), maxBytes: 2 ** 30 });
    store.open();
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });

  it.each([
    [403, 'unauthorized', false],
    [500, 'server', true],
  ] as const)('answered %i: no signature in the log, status, health or batch record', async (status, kind, heals) => {
    proxy.status = status;
    const before = proxy.requests;
    const logs: string[] = [];
    const worker = new SyncWorker({
      buffer: store,
      uploader: () => uploaderFor({ target: { kind: 'sas-url', sasUrl: sasUrl() }, createContainer: true }),
      deviceId: 'gw-redaction',
      agentVersion: '0.0.0-test',
      settings: () => ({ intervalMs: 60_000, maxBytesPerSecond: 0, batchMaxRows: 100, batchMaxBytes: 1 << 20, anomalyContextRows: 0, backoff: { initialMs: 1000, maxMs: 8000, slowMs: 600_000, jitter: 0 } }),
      logger: createLogger('debug', { write: (line: string) => void logs.push(line) }),
      random: () => 0.5,
    });
    store.appendBatch([{ pumpId: 'pump-a', ts: Date.UTC(2026, 0, 1), receivedAt: Date.UTC(2026, 0, 1), values: { Flow: 30 }, score: 0.1, anomaly: false, modelVersion: 'm-1', imputed: false, unscoredReason: null }]);
    try {
      const result = await worker.runOnce();
      expect(proxy.requests).toBeGreaterThan(before); // the proxy did answer, with the URL in its page
      expect(result.failure).toMatchObject({ kind, heals, status });
      const records = store.db.prepare('SELECT error FROM sync_batches').all() as Array<{ error: string | null }>;
      expect(records.some((r) => r.error !== null)).toBe(true);
      const everything = [logs.join(''), JSON.stringify(worker.status()), JSON.stringify(worker.health()), JSON.stringify(records), JSON.stringify(result.failure)].join('\n');
      expectNoSignature(everything);
      if (heals) expect(worker.status().lastError).toContain('Access denied by proxy'); // the page still says what happened
      else expect(worker.health()).toEqual({ ok: false, error: 'Blob Storage refused the credentials (403): check the connection string or SAS URL (key, expiry; a container SAS needs permissions rcw).' });
    } finally {
      await worker.stop();
    }
  });
});

describe('agent behind a proxy that echoes the SAS URL', () => {
  it('reports the refusal on /healthz and /status and in its log without the signature', async () => {
    proxy.status = 403;
    const dir = mkdtempSync(join(tmpdir(), 'pw-agent-redaction-'));
    const logs: string[] = [];
    const modelPath = join(dir, 'default-model.onnx');
    writeFileSync(modelPath, makeModel());
    const config = testAgentConfig(join(dir, 'data'), {
      PUMPWATCH_SYNC: 'auto',
      PUMPWATCH_BLOB_SAS_URL: sasUrl(),
      PUMPWATCH_SYNC_INTERVAL_SECONDS: '1',
      PUMPWATCH_LOG_LEVEL: 'debug',
    });
    const agent = new Agent({ config, logger: createLogger('debug', { write: (line: string) => void logs.push(line) }), defaultModelPath: modelPath });
    try {
      await agent.start();
      const url = `http://127.0.0.1:${agent.httpAddress()!.port}`;
      const r = rng(3);
      const start = Date.now() - 60_000;
      const readings = Array.from({ length: 20 }, (_, i) => ({ pumpId: 'pump-a', ts: new Date(start + i * 1000).toISOString(), values: normalValues(r, i) }));
      expect((await postJson(`${url}/readings`, readings)).status).toBe(202);

      await vi.waitFor(async () => expect((await fetch(`${url}/healthz`)).status).toBe(503), { timeout: 20_000, interval: 200 });
      const healthz = (await (await fetch(`${url}/healthz`)).json()) as { status: string; failing: string[]; checks: Record<string, string> };
      expect(healthz).toMatchObject({ status: 'failing', failing: ['sync'], checks: { sync: expect.stringMatching(/^Blob Storage refused the credentials \(403\)/) } });
      const status = await (await fetch(`${url}/status`)).text();
      expect(status).toContain('refused the credentials');
      expectNoSignature([JSON.stringify(healthz), status, logs.join('')].join('\n'));
    } finally {
      await agent.stop();
      expectNoSignature(logs.join(''));
      rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
    }
  });
});
