/**
 * PUMPWATCH_SYNC_ANOMALY_CONTEXT_ROWS (README, "Alerts first": rows of the newest anomaly and this
 * many rows of context before it go out before bulk rows): the agent syncing a backlog to a real
 * Azurite, a real SQLite buffer and onnxruntime session. The order is the agent's own record (its
 * batches in the order planned), the rows are what Blob Storage holds.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { postJson, startTestAgent, type TestAgent } from '../support/agent.js';
import { decodeAllBlobs, startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { recentStartOffMidnight } from '../support/clock.js';
import { normalValues, rng } from '../support/models.js';

const CONTAINER = 'anomaly-context';
const CONTEXT = 7;
/** An anomaly for the test model (as in edge.test.ts). */
const SPIKE = { Pressure: 4, Flow: 30, Current: 1.4 };
let az: TestAzurite;
let t: TestAgent;

/** `n` normal readings of `pumpId` a second apart, ending now; the one at `spikeAt` an anomaly. */
function readings(pumpId: string, n: number, spikeAt = -1) {
  const r = rng(pumpId.length);
  const start = recentStartOffMidnight(); // far from a UTC midnight, where a batch would be cut
  return Array.from({ length: n }, (_, i) => ({ pumpId, ts: new Date(start + i * 1000).toISOString(), values: i === spikeAt ? SPIKE : normalValues(r, i) }));
}

beforeAll(async () => {
  az = await startTestAzurite();
  t = await startTestAgent({
    PUMPWATCH_SYNC: 'auto',
    PUMPWATCH_BLOB_CONNECTION_STRING: az.connectionString,
    PUMPWATCH_BLOB_CONTAINER: CONTAINER,
    PUMPWATCH_DEVICE_ID: 'gw-context',
    PUMPWATCH_SYNC_INTERVAL_SECONDS: '3600', // only the anomaly starts a cycle
    PUMPWATCH_SYNC_BATCH_MAX_ROWS: '100',
    PUMPWATCH_SYNC_ANOMALY_CONTEXT_ROWS: String(CONTEXT),
  });
});

afterAll(async () => {
  await t?.stop();
  await az?.dispose();
});

describe('PUMPWATCH_SYNC_ANOMALY_CONTEXT_ROWS', () => {
  it('uploads the anomaly with that many earlier rows of its pump first, ahead of an older backlog', async () => {
    // pump-old's backlog is older (lower seqs); pump-alarm's 50th reading is the only anomaly
    const posted = [...readings('pump-old', 300), ...readings('pump-alarm', 80, 50)];
    expect((await postJson(`${t.url}/readings`, posted)).json).toMatchObject({ accepted: posted.length });
    await vi.waitFor(() => expect(t.agent.buffer.stats().unsynced).toBe(0), { timeout: 30_000, interval: 100 });

    const seqsOf = (pumpId: string) => (t.agent.buffer.db.prepare('SELECT seq FROM readings WHERE pump_id = ? ORDER BY seq').pluck().all(pumpId) as number[]);
    const anomalies = t.agent.buffer.db.prepare('SELECT seq FROM readings WHERE anomaly = 1').pluck().all() as number[];
    const alarm = seqsOf('pump-alarm');
    expect(anomalies).toEqual([alarm[50]]);

    const planned = t.agent.buffer.db.prepare('SELECT pump_id AS pumpId, first_seq AS firstSeq, blob_name AS name FROM sync_batches ORDER BY id').all() as Array<{ pumpId: string; firstSeq: number; name: string }>;
    expect(planned[0]).toMatchObject({ pumpId: 'pump-alarm', firstSeq: alarm[50 - CONTEXT] });
    expect(planned.slice(1).map((b) => b.pumpId)).toContain('pump-old');

    const first = (await decodeAllBlobs(az.container(CONTAINER))).find((b) => b.name === planned[0]!.name)!;
    const before = first.lines.filter((l) => l.seq < alarm[50]!);
    expect(before.map((l) => l.seq)).toEqual(alarm.slice(50 - CONTEXT, 50));
    expect(first.lines.find((l) => l.seq === alarm[50])).toMatchObject({ pumpId: 'pump-alarm', anomaly: true });
  });
});
