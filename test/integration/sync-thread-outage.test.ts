/**
 * Sync's encoder thread during a long outage: with Azurite stopped (connections refused), each
 * retry of the backoff started the thread (a second V8 isolate, ~25 MB) only for its first upload
 * to fail, and over days of outage that repeated at every retry. Retries while the target is known
 * not to answer now run on the main thread until it answers; the drain after it does still goes to
 * the thread. The agent runs in this process against a real Azurite, counted in its /metrics.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { postJson, startTestAgent, type TestAgent } from '../support/agent.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { normalValues, rng } from '../support/models.js';

let az: TestAzurite;
let t: TestAgent;
let next = 0;

/** `n` readings of one pump every 2 s, continuing the last call's. */
function readings(n: number) {
  const r = rng(7);
  const start = Date.now() - 3_600_000;
  return Array.from({ length: n }, () => {
    const i = next++;
    return { pumpId: 'pump-o', ts: new Date(start + i * 2000).toISOString(), values: normalValues(r, i) };
  });
}

/** A counter's value in /metrics (0 when absent). */
async function metric(name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

const failures = (): Promise<number> => metric('pumpwatch_sync_failures_total', '{kind="offline"}');
const threadStarts = (): Promise<number> => metric('pumpwatch_sync_encoder_thread_starts_total');

beforeAll(async () => {
  az = await startTestAzurite();
  t = await startTestAgent({
    PUMPWATCH_SYNC: 'auto',
    PUMPWATCH_BLOB_CONNECTION_STRING: az.connectionString,
    PUMPWATCH_BLOB_CONTAINER: 'it-thread-outage',
    PUMPWATCH_DEVICE_ID: 'gw-thread-outage',
    PUMPWATCH_SYNC_INTERVAL_SECONDS: '1',
    PUMPWATCH_SYNC_BATCH_MAX_ROWS: '50',
    PUMPWATCH_SYNC_BACKOFF_MAX_SECONDS: '1',
    PUMPWATCH_SYNC_THREAD_ABOVE_ROWS: '100',
  });
});

afterAll(async () => {
  await t?.stop();
  await az?.dispose();
});

describe('the encoder thread during a Blob Storage outage (Azurite stopped)', () => {
  it('retries while the link is down without starting the thread, and drains on the thread once it answers', async () => {
    // Uploads work (the container is made), below the thread's threshold: on the main thread.
    expect((await postJson(`${t.url}/readings`, readings(20))).status).toBe(202);
    await vi.waitFor(() => expect(t.agent.buffer.stats().unsynced).toBe(0), { timeout: 30_000, interval: 100 });
    expect(await threadStarts()).toBe(0);

    // The outage begins with a small backlog: the first failure is met on the main thread.
    await az.stop();
    expect((await postJson(`${t.url}/readings`, readings(50))).status).toBe(202);
    await vi.waitFor(async () => expect(await failures()).toBeGreaterThanOrEqual(1), { timeout: 30_000, interval: 100 });

    // The backlog grows past the threshold; three retries fail with it.
    expect((await postJson(`${t.url}/readings`, readings(500))).status).toBe(202);
    const before = await failures();
    await vi.waitFor(async () => expect(await failures()).toBeGreaterThanOrEqual(before + 3), { timeout: 60_000, interval: 100 });
    expect(t.agent.buffer.stats().unsynced).toBe(550);
    expect(await threadStarts()).toBe(0);
    expect(await metric('pumpwatch_sync_encoded_batches_total', '{on="thread"}')).toBe(0);

    // The link is back: the first batch goes up from the main thread, the rest of the drain from the thread.
    await az.restart();
    await vi.waitFor(() => expect(t.agent.buffer.stats().unsynced).toBe(0), { timeout: 60_000, interval: 100 });
    expect(await threadStarts()).toBeGreaterThanOrEqual(1);
    expect(await metric('pumpwatch_sync_encoded_batches_total', '{on="thread"}')).toBeGreaterThan(0);
    expect(await metric('pumpwatch_sync_uploaded_rows_total')).toBe(570);
  });
});
