/**
 * PUMPWATCH_SYNC_BATCH_MAX_BYTES (README configuration table: "uncompressed JSON bytes per uploaded
 * blob at most"), measured on what reaches Blob Storage: the agent syncing to a real Azurite, a
 * real SQLite buffer and onnxruntime session, each blob downloaded and gunzipped. Both places a
 * batch is sized: on the main thread (a small backlog) and on the encoder thread
 * (PUMPWATCH_SYNC_THREAD_ABOVE_ROWS=0). Anomalies carry their contributions, the longest lines;
 * values named outside ASCII take more bytes than characters.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { gunzipSync } from 'node:zlib';
import { postJson, startTestAgent, type TestAgent } from '../support/agent.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { recentStartOffMidnight } from '../support/clock.js';
import { normalValues, rng } from '../support/models.js';

const MAX_BYTES = 8192;
let az: TestAzurite;

/** `n` readings of `pumpId` a second apart, ending now; every one an anomaly for the test model when `spikes`. */
function readings(pumpId: string, n: number, spikes: boolean, extra: Record<string, number> = {}) {
  const r = rng(pumpId.length);
  const start = recentStartOffMidnight(); // far from a UTC midnight, where a batch would be cut
  return Array.from({ length: n }, (_, i) => ({ pumpId, ts: new Date(start + i * 1000).toISOString(), values: { ...(spikes ? { Pressure: 4 + i / 1000, Flow: 30, Current: 1.4 } : normalValues(r, i)), ...extra } }));
}

/**
 * Values a site names in its own language, kept and uploaded with the model's own features: two or
 * three UTF-8 bytes a character, where a count of characters would see one.
 */
const LOCAL_NAMES = {
  'Температура подшипника двигателя со стороны привода, °C': 41.5,
  'Температура подшипника двигателя с противоположной стороны, °C': 39.25,
  'Давление на входе насоса по датчику резервного канала, бар': 1.125,
  'Вибрация корпуса насоса, среднеквадратичное значение, мм/с': 2.75,
  '吐出圧力（予備チャンネルの圧力センサー）、メガパスカル': 0.5,
};

beforeAll(async () => {
  az = await startTestAzurite();
});

afterAll(async () => {
  await az?.dispose();
});

describe.each([
  ['the main thread', 'main', '100000'],
  ['the encoder thread', 'thread', '0'],
])('PUMPWATCH_SYNC_BATCH_MAX_BYTES, batches sized on %s', (_, on, threadAboveRows) => {
  const CONTAINER = `batch-bytes-${threadAboveRows}`;
  let t: TestAgent;
  beforeAll(async () => {
    t = await startTestAgent({
      PUMPWATCH_SYNC: 'auto',
      PUMPWATCH_BLOB_CONNECTION_STRING: az.connectionString,
      PUMPWATCH_BLOB_CONTAINER: CONTAINER,
      PUMPWATCH_DEVICE_ID: 'gw-batch-bytes-with-a-long-device-id',
      PUMPWATCH_SYNC_INTERVAL_SECONDS: '1',
      PUMPWATCH_SYNC_BATCH_MAX_BYTES: String(MAX_BYTES),
      PUMPWATCH_SYNC_THREAD_ABOVE_ROWS: threadAboveRows,
    });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('uploads no blob whose JSON lines exceed it, normal readings and anomalies alike, and every row once', async () => {
    const posted = [...readings('pump-normal', 400, false), ...readings('pump-anomalous', 200, true), ...readings('pump-local-names', 300, false, LOCAL_NAMES)];
    expect((await postJson(`${t.url}/readings`, posted)).json).toMatchObject({ accepted: posted.length });
    await vi.waitFor(() => expect(t.agent.buffer.stats().unsynced).toBe(0), { timeout: 30_000, interval: 100 });

    const container = az.container(CONTAINER);
    const sizes: Record<string, number[]> = {};
    let rows = 0;
    for await (const item of container.listBlobsFlat({ prefix: 'readings/' })) {
      const json = gunzipSync(await container.getBlockBlobClient(item.name).downloadToBuffer());
      const pump = item.name.split('/')[1]!;
      (sizes[pump] ??= []).push(json.length);
      rows += json.toString().trim().split('\n').length;
    }
    expect(rows).toBe(posted.length);
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`^pumpwatch_sync_encoded_batches_total\\{on="${on}"\\} [1-9]`, 'm'));
    // several blobs of each pump: the cap, not the row cap or the cycle, cut them
    expect(sizes['pump-normal']!.length).toBeGreaterThan(3);
    expect(sizes['pump-anomalous']!.length).toBeGreaterThan(3);
    expect(sizes['pump-local-names']!.length).toBeGreaterThan(3);
    expect(Math.max(...Object.values(sizes).flat())).toBeLessThanOrEqual(MAX_BYTES);
  });
});
