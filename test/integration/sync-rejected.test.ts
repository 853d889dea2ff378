/**
 * Items the agent refuses go up to rejected/{deviceId}/… in a real Azurite, after the readings:
 * several kinds of refusal, each once with its reason, secrets redacted; the readings' blobs are
 * the same as without them; a batch planned before a crash (its blob already up) is found there and
 * not uploaded twice; rows refused before the upgrade (an older buffer: no watermark) go up too.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { REJECTED_PLAN_KEY, REJECTED_THROUGH_KEY } from '../../buffer/ranges.js';
import { Agent } from '../../agent/main.js';
import { createLogger } from '../../agent/logger.js';
import { postJson, startTestAgent, testAgentConfig } from '../support/agent.js';
import { decodeAllBlobs, decodeRejectedBlobs, startTestAzurite, type TestAzurite } from '../support/azurite.js';

const CONTAINER = 'rejected-test';
const DEVICE = 'gw-rejected';
const SAS = 'https://acct.blob.core.windows.net/c?sv=2022-11-02&sp=racwl&sig=SECRETSIGNATURE123';

let az: TestAzurite;

beforeAll(async () => {
  az = await startTestAzurite();
});

afterAll(async () => {
  await az?.dispose();
});

const env = (container: string): Record<string, string> => ({
  PUMPWATCH_SYNC: 'auto',
  PUMPWATCH_BLOB_CONNECTION_STRING: az.connectionString,
  PUMPWATCH_BLOB_CONTAINER: container,
  PUMPWATCH_DEVICE_ID: DEVICE,
  PUMPWATCH_SYNC_INTERVAL_SECONDS: '1',
  PUMPWATCH_SYNC_BACKOFF_MAX_SECONDS: '1',
  PUMPWATCH_MAX_PUMPS: '2',
});

async function status(t: { url: string }): Promise<{ sync: { rejectedUploaded: number; rejectedPending: number; uploadedRows: number }; buffer: { unsynced: number } }> {
  return (await (await fetch(`${t.url}/status`)).json()) as never;
}

/** Waits until the agent has uploaded every reading and every refused item it holds. */
async function drained(t: { url: string }): Promise<void> {
  await vi.waitFor(async () => {
    const s = await status(t);
    if (s.buffer.unsynced !== 0 || s.sync.rejectedPending !== 0) throw new Error(`not drained: ${JSON.stringify(s.sync)}`);
  }, { timeout: 30_000, interval: 100 });
}

const good = (pumpId: string, i: number) => ({ pumpId, ts: Date.now() - 1000 + i, values: { Pressure: 1.4, Flow: 30, Current: 1.4 } });

describe('refused items through the agent sync', () => {
  it('uploads refusals of several kinds to rejected/ once each with their reasons, secrets redacted, readings unaffected', async () => {
    const t = await startTestAgent(env(CONTAINER));
    try {
      // One request, so one commit and one batch: every kind of refusal, between good readings.
      const ndjson = [
        good('pump-a', 0),
        '{"pumpId": "pump-a", "ts": ',
        { pumpId: 'pump-a', ts: Date.now(), values: { Pressure: 1.4, Flow: 30, Current: 1.4, Temperature: 1e308 } },
        good('pump-b', 1),
        good('pump-c', 2), // a third pump past PUMPWATCH_MAX_PUMPS=2
        { pumpId: 'pump-b', ts: Date.now(), values: { Pressure: SAS } },
        good('pump-b', 3),
      ].map((l) => (typeof l === 'string' ? l : JSON.stringify(l).replace('1e+308', '1e308')));
      const res = await fetch(`${t.url}/readings`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: ndjson.join('\n') });
      expect(res.status).toBe(202);
      expect(((await res.json()) as { accepted: number }).accepted).toBe(3);
      await drained(t);

      const container = az.container(CONTAINER);
      const blobs = await decodeRejectedBlobs(container);
      const lines = blobs.flatMap((b) => b.lines);
      expect(lines.map((l) => l.id)).toEqual([1, 2, 3, 4]);
      expect(new Set(lines.map((l) => l.deviceId))).toEqual(new Set([DEVICE]));
      // The buffer file's id, as on readings lines: ids count from 1 again in a new file.
      const bufferId = t.agent.buffer.bufferId();
      expect(bufferId).toMatch(/^[0-9a-f]{16}$/);
      expect(new Set(lines.map((l) => l.bufferId))).toEqual(new Set([bufferId]));
      expect(lines[0]!.reason).toMatch(/not valid JSON/);
      expect(lines[1]!.reason).toMatch(/Temperature/);
      expect(lines[2]!.reason).toMatch(/PUMPWATCH_MAX_PUMPS|pumps/);
      expect(lines[2]!.raw).toContain('pump-c');
      expect(JSON.stringify(lines)).not.toContain('SECRETSIGNATURE123');
      expect(lines[3]!.raw).toContain('sig=[redacted]');
      for (const l of lines) expect(Date.parse(l.receivedAt)).toBeGreaterThan(0);
      const day = lines[0]!.receivedAt.slice(0, 10).replaceAll('-', '/'); // the UTC day of the first item's receipt
      expect(blobs[0]!.name).toBe(`rejected/${DEVICE}/${day}/000000000001-000000000004.jsonl.gz`);
      expect(blobs[0]!.metadata).toMatchObject({ rowcount: '4', firstid: '1', lastid: '4', deviceid: DEVICE, schemaversion: '1', bufferid: bufferId });
      expect(blobs[0]!.metadata.sha256).toMatch(/^[0-9a-f]{64}$/);

      // The readings went up as always, each once, and nothing refused is among them.
      const readings = (await decodeAllBlobs(container)).flatMap((b) => b.lines);
      expect(readings.map((l) => l.pumpId).sort()).toEqual(['pump-a', 'pump-b', 'pump-b']);
      const s = await status(t);
      expect(s.sync.rejectedUploaded).toBe(4);
      expect(s.sync.uploadedRows).toBe(3);
      expect(await (await fetch(`${t.url}/metrics`)).text()).toMatch(/^pumpwatch_sync_uploaded_rejected_rows_total 4$/m);

      // Later cycles (one a second) upload nothing again; a new refusal goes in a blob of its own.
      expect((await postJson(`${t.url}/readings`, '{"nope"')).status).toBe(400);
      await drained(t);
      const after = await decodeRejectedBlobs(container);
      expect(after.map((b) => b.name.split('/').at(-1))).toEqual(['000000000001-000000000004.jsonl.gz', '000000000005-000000000005.jsonl.gz']);
    } finally {
      await t.stop();
    }
  });

  it('finds its own blob after a crash between upload and mark, and uploads items refused before the upgrade', async () => {
    const container = 'rejected-crash';
    const t = await startTestAgent(env(container));
    const file = join(t.dir, 'data', 'buffer.sqlite');
    let again: Agent | null = null;
    try {
      for (let i = 0; i < 3; i++) expect((await postJson(`${t.url}/readings`, `{"bad": ${i}`)).status).toBe(400);
      await drained(t);
      await t.agent.stop();
      // As a crash after the service took the blob and before the mark: the plan back, the watermark
      // back to 0. Then, as a buffer of an agent before this upload, a refusal it kept.
      const db = new Database(file);
      const before = await decodeRejectedBlobs(az.container(container));
      const blob = before.at(-1)!;
      const [firstId, lastId] = [Number(blob.metadata.firstid), Number(blob.metadata.lastid)];
      db.prepare('UPDATE meta SET value = ? WHERE key = ?').run(String(firstId - 1), REJECTED_THROUGH_KEY);
      db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run(REJECTED_PLAN_KEY, JSON.stringify({ firstId, lastId, rowCount: lastId - firstId + 1, blobName: blob.name, deviceId: DEVICE }));
      db.prepare("INSERT INTO rejected (source, raw, reason, received_at) VALUES ('http', 'old', 'refused by an older agent', ?)").run(Date.now());
      db.close();
      // The agent again on the same data folder.
      const config = testAgentConfig(join(t.dir, 'data'), env(container));
      again = new Agent({ config, logger: createLogger('silent'), defaultModelPath: join(t.dir, 'default-model.onnx') });
      await again.start();
      const url = `http://127.0.0.1:${again.httpAddress()!.port}`;
      await drained({ url });
      const blobs = await decodeRejectedBlobs(az.container(container));
      expect(blobs.map((b) => b.lines.map((l) => l.id))).toEqual([...before.map((b) => b.lines.map((l) => l.id)), [4]]);
      expect(blobs.at(-1)!.lines[0]!.reason).toBe('refused by an older agent');
    } finally {
      await again?.stop();
      await t.stop();
    }
  });
});
