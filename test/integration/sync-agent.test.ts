/**
 * The agent's store-and-forward against a real Azurite: readings posted over HTTP reach Blob
 * Storage as gzip JSON lines under the DESIGN.md names, row for row; an outage grows the buffer,
 * which drains completely once Azurite is back.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { createLogger } from '../../agent/logger.js';
import { Agent } from '../../agent/main.js';
import { agentVersion } from '../../agent/paths.js';
import { toLine } from '../../sync/encoder.js';
import { parseReadingsBlobName } from '../../sync/layout.js';
import { readAllReadings } from '../../sync/reader.js';
import { postJson, startTestAgent, testAgentConfig, type TestAgent } from '../support/agent.js';
import { decodeAllBlobs, startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { makeModel, normalValues, rng } from '../support/models.js';

const DEVICE = 'gw-sync-it';
const CONTAINER = 'it-agent';
let az: TestAzurite;
let t: TestAgent;

/** Readings of one pump every 2 s from 10 minutes before the last UTC midnight (batches may start on either day). */
function readings(pumpId: string, from: number, n: number, seed: number, anomalies: number[] = []) {
  const r = rng(seed);
  const start = Math.floor(Date.now() / 86_400_000) * 86_400_000 - 600_000;
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    const values = normalValues(r, i);
    if (anomalies.includes(i)) values.Pressure = 50;
    return { pumpId, ts: new Date(start + i * 2000).toISOString(), values };
  });
}

async function drained(): Promise<void> {
  await vi.waitFor(() => expect(t.agent.buffer.stats().unsynced).toBe(0), { timeout: 30_000, interval: 100 });
}

async function getJson(path: string): Promise<any> {
  return (await fetch(`${t.url}${path}`)).json();
}

beforeAll(async () => {
  az = await startTestAzurite();
  t = await startTestAgent({
    PUMPWATCH_SYNC: 'auto',
    PUMPWATCH_BLOB_CONNECTION_STRING: az.connectionString,
    PUMPWATCH_BLOB_CONTAINER: CONTAINER,
    PUMPWATCH_DEVICE_ID: DEVICE,
    PUMPWATCH_SYNC_INTERVAL_SECONDS: '1',
    PUMPWATCH_SYNC_BATCH_MAX_ROWS: '150',
    PUMPWATCH_SYNC_BACKOFF_MAX_SECONDS: '1',
  });
});

afterAll(async () => {
  await t?.stop();
  await az?.dispose();
});

describe('sync of the agent to Blob Storage (Azurite)', () => {
  it('uploads every committed row once, as the same JSON line the buffer holds, under the DESIGN.md blob names', async () => {
    for (const [pump, seed] of [['pump-a', 1], ['pump-b', 2], ['pump-c', 3]] as const) {
      const r = await postJson(`${t.url}/readings`, readings(pump, 0, 400, seed, [37, 250]));
      expect(r.status).toBe(202);
    }
    await drained();
    const rows = t.agent.buffer.rowsBySeq(0, Number.MAX_SAFE_INTEGER);
    expect(rows).toHaveLength(1200);
    expect(rows.filter((r) => r.anomaly).length).toBeGreaterThanOrEqual(6);

    const blobs = await decodeAllBlobs(az.container(CONTAINER));
    const bySeq = new Map<number, unknown>();
    for (const blob of blobs) {
      const ref = parseReadingsBlobName(blob.name)!;
      expect(ref, blob.name).not.toBeNull();
      const seqs = blob.lines.map((l) => l.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(ref).toMatchObject({ deviceId: DEVICE, firstSeq: seqs[0], lastSeq: seqs.at(-1), pumpId: blob.lines[0]!.pumpId });
      expect(ref.day).toBe(Math.floor(Date.parse(blob.lines[0]!.ts) / 86_400_000) * 86_400_000);
      expect(blob.lines.every((l) => l.pumpId === ref.pumpId && l.deviceId === DEVICE)).toBe(true);
      const body = await az.container(CONTAINER).getBlockBlobClient(blob.name).downloadToBuffer();
      expect(blob.metadata).toMatchObject({
        rowcount: String(blob.lines.length),
        sha256: createHash('sha256').update(body).digest('hex'),
        rawsha256: createHash('sha256').update(gunzipSync(body)).digest('hex'),
        schemaversion: '1',
        agentversion: agentVersion(),
        bufferid: t.agent.buffer.bufferId(),
      });
      for (const line of blob.lines) {
        expect(bySeq.has(line.seq), `seq ${line.seq} in two blobs`).toBe(false);
        bySeq.set(line.seq, line);
      }
    }
    for (const row of rows) expect(bySeq.get(row.seq)).toEqual(toLine(row, DEVICE, t.agent.buffer.bufferId()));
    expect(bySeq.size).toBe(rows.length);
  });

  it('reports the sync in /status and /metrics', async () => {
    // A cycle an anomaly kicked may still be running (finding nothing left): idle once it ends.
    let status = await getJson('/status');
    await vi.waitFor(async () => {
      status = await getJson('/status');
      expect(status.sync.state).toBe('idle');
    }, { timeout: 15_000, interval: 100 });
    expect(status.sync).toMatchObject({ state: 'idle', uploadedRows: 1200, lastError: null, failedBatches: 0 });
    expect(status.sync.lastSuccessAt).not.toBeNull();
    expect(status.connectivity.blob).toBe('online');
    expect(status.health.checks.sync).toBe('ok');
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toContain('pumpwatch_sync_uploaded_rows_total 1200');
    expect(metrics).toContain('pumpwatch_sync_blob_connectivity{state="online"} 1');
    // cycles of at most PUMPWATCH_SYNC_THREAD_ABOVE_ROWS (2 000) rows ran on the main thread: no encoder thread started
    expect(Number(/^pumpwatch_sync_encoded_batches_total\{on="main"\} (\d+)/m.exec(metrics)?.[1])).toBeGreaterThan(0);
    expect(metrics).not.toMatch(/^pumpwatch_sync_encoded_batches_total\{on="thread"\} [1-9]/m);
  });

  it('gives the trainer each reading of a pump once, in time order, for a time range', async () => {
    const all = readings('pump-b', 0, 400, 2, [37, 250]);
    const got = await readAllReadings(az.container(CONTAINER), { pumpId: 'pump-b', from: all[0]!.ts, to: Date.parse(all.at(-1)!.ts) + 1 });
    expect(got.map((l) => l.ts)).toEqual(all.map((r) => r.ts));
    expect(got.map((l) => l.values)).toEqual(all.map((r) => r.values));
    const part = await readAllReadings(az.container(CONTAINER), { pumpId: 'pump-b', from: all[100]!.ts, to: all[300]!.ts });
    expect(part.map((l) => l.ts)).toEqual(all.slice(100, 300).map((r) => r.ts));
  });

  it('keeps readings while Azurite is down, shows it offline, and drains the grown buffer once it is back', async () => {
    await az.stop();
    const posted = readings('pump-a', 400, 300, 4);
    for (let i = 0; i < posted.length; i += 50) {
      expect((await postJson(`${t.url}/readings`, posted.slice(i, i + 50))).status).toBe(202);
    }
    await vi.waitFor(async () => expect((await getJson('/status')).connectivity.blob).toBe('offline'), { timeout: 20_000, interval: 100 });
    const offline = await getJson('/status');
    expect(offline.sync.state).toBe('retrying');
    expect(offline.sync.lastError).toMatch(/unreachable/);
    expect(offline.buffer.unsynced).toBe(300);
    expect(offline.health.checks.sync).toBe('ok'); // an outage is normal in the field, not a fault

    await az.restart();
    await drained();
    expect((await getJson('/status')).connectivity.blob).toBe('online');
    const lines = (await decodeAllBlobs(az.container(CONTAINER))).flatMap((b) => b.lines);
    const seqs = lines.map((l) => l.seq);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(lines).toHaveLength(1500);
    const rows = t.agent.buffer.rowsBySeq(0, Number.MAX_SAFE_INTEGER);
    const bySeq = new Map(lines.map((l) => [l.seq, l]));
    for (const row of rows) expect(bySeq.get(row.seq)).toEqual(toLine(row, DEVICE, t.agent.buffer.bufferId()));
  });
});

describe('a sync target whose SAS credential expires', () => {
  it('is said ahead (within 7 days) and once expired, with the time, and shown in /status', async () => {
    const start = async (expiresOn: Date): Promise<{ lines: Array<{ msg: string; level: number }>; status: any; stop: () => Promise<void> }> => {
      const dir = mkdtempSync(join(tmpdir(), 'pumpwatch-sas-expiry-'));
      writeFileSync(join(dir, 'model.onnx'), makeModel());
      const lines: Array<{ msg: string; level: number }> = [];
      const config = testAgentConfig(join(dir, 'data'), { PUMPWATCH_SYNC: 'auto', PUMPWATCH_LOG_LEVEL: 'info', PUMPWATCH_BLOB_SAS_URL: az.containerSasUrl(CONTAINER, 'rcw', expiresOn) });
      const agent = new Agent({ config, logger: createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string; level: number }) }), defaultModelPath: join(dir, 'model.onnx') });
      await agent.start();
      const status = (await (await fetch(`http://127.0.0.1:${agent.httpAddress()!.port}/status`)).json()) as any;
      return {
        lines: lines.filter((l) => /SAS credential/.test(l.msg)),
        status,
        stop: async () => {
          await agent.stop();
          rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
        },
      };
    };
    const soon = new Date(Math.floor(Date.now() / 1000) * 1000 + 2 * 86_400_000);
    const a = await start(soon);
    try {
      expect(a.status.sync.targetExpiresAt).toBe(soon.toISOString());
      expect(a.lines.map((l) => [l.level, l.msg])).toEqual([[40, expect.stringMatching(new RegExp(`^the SAS credential of the sync target expires at ${soon.toISOString()} \\(in 2\\.0 days\\): replace it before`))]]);
      expect(JSON.stringify(a.lines)).not.toContain('sig=');
    } finally {
      await a.stop();
    }
    const past = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
    const b = await start(past);
    try {
      expect(b.lines.map((l) => [l.level, l.msg])).toEqual([[50, `the SAS credential of the sync target expired at ${past.toISOString()}: uploads are refused until it is replaced (a restart-only setting); readings stay in the buffer`]]);
    } finally {
      await b.stop();
    }
    const later = await start(new Date(Date.now() + 30 * 86_400_000));
    try {
      expect(later.lines).toEqual([]);
    } finally {
      await later.stop();
    }
  });
});
