/**
 * Label times: the route bounds `from` and `to` as a reading's `ts` is bounded (a time past the
 * year 275760 was stored and then answered 500), and a label already stored with such a time
 * (by an agent before this check) no longer breaks GET /labels or the upload of every later label:
 * it is moved to the rejected table with its reason, counted and reported.
 */
import Database from 'better-sqlite3';
import type { ContainerClient } from '@azure/storage-blob';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabelStore, type NewLabel, type SetAsideLabel } from '../../buffer/labels.js';
import { BufferStore } from '../../buffer/store.js';
import { uploadPendingLabels } from '../../sync/labels-upload.js';
import { postJson, startTestAgent, type TestAgent } from '../support/agent.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';

const BAD_FROM = 9e15; // epoch microseconds of 2255, or ms past the year 275760: no Date holds it

/** A label row as an agent without the bound stored it (the route answered 500 after the insert). */
function storeBadLabel(db: Database.Database, id: string, createdAt: number): void {
  db.prepare(
    `INSERT INTO labels (id, pump_id, kind, fault_type, note, alert_seq, from_ts, to_ts, author, created_at, synced)
     VALUES (?, 'lt-1', 'maintenance', NULL, NULL, NULL, ?, ?, 'Ana', ?, 0)`,
  ).run(id, BAD_FROM, BAD_FROM + 1000, createdAt);
}

describe('POST /labels time bounds', () => {
  let t: TestAgent;
  beforeAll(async () => {
    t = await startTestAgent();
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('answers 400 naming the field for a time past the year 275760, and stores nothing', async () => {
    const r = await postJson(`${t.url}/labels`, { pumpId: 'lt-1', kind: 'maintenance', from: BAD_FROM, to: BAD_FROM + 1000, author: 'Ana' });
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('PW_BAD_LABEL');
    expect(r.json.error).toMatch(/^from: 9000000000000000 is more than 86400 s \(PUMPWATCH_MAX_FUTURE_SECONDS, twin ingest\.maxFutureSeconds\) ahead of the gateway clock \(.*\) \(epoch milliseconds are expected: is it in microseconds\?\)$/);
    const listed = await fetch(`${t.url}/labels`);
    expect(listed.status).toBe(200);
    expect(((await listed.json()) as { count: number }).count).toBe(0);
  });

  it('answers 400 for a time in epoch seconds or beyond the readings\' bounds, naming the field', async () => {
    const now = Date.now();
    const seconds = await postJson(`${t.url}/labels`, { pumpId: 'lt-1', kind: 'maintenance', from: Math.floor(now / 1000) - 60, to: Math.floor(now / 1000), author: 'Ana' });
    expect(seconds.status).toBe(400);
    expect(seconds.json.error).toMatch(/^from: 1970-.* is more than 31536000 s \(PUMPWATCH_MAX_PAST_SECONDS, twin ingest\.maxPastSeconds\) behind the gateway clock .* \(epoch milliseconds are expected: is it in seconds\?\)$/);
    const ahead = await postJson(`${t.url}/labels`, { pumpId: 'lt-1', kind: 'maintenance', from: now, to: now + 3 * 86_400_000, author: 'Ana' });
    expect(ahead.status).toBe(400);
    expect(ahead.json.error).toMatch(/^to: .* is more than 86400 s \(PUMPWATCH_MAX_FUTURE_SECONDS, twin ingest\.maxFutureSeconds\) ahead of the gateway clock/);
    const ok = await postJson(`${t.url}/labels`, { pumpId: 'lt-1', kind: 'maintenance', from: new Date(now - 3_600_000).toISOString(), to: new Date(now).toISOString(), author: 'Ana' });
    expect(ok.status).toBe(201);
  });

  it('keeps GET /labels and GET /alerts at 200 when a label with such a time is already stored', async () => {
    const db = new Database(join(t.dir, 'data', 'buffer.sqlite'));
    try {
      storeBadLabel(db, 'bad-stored', Date.now());
    } finally {
      db.close();
    }
    const listed = await fetch(`${t.url}/labels`);
    expect(listed.status).toBe(200);
    const body = (await listed.json()) as { labels: Array<{ id: string }> };
    expect(body.labels.map((l) => l.id)).not.toContain('bad-stored');
    expect(body.labels.length).toBeGreaterThan(0);
    expect((await fetch(`${t.url}/alerts`)).status).toBe(200);
  });
});

describe('POST /labels time bounds follow the readings\' settings', () => {
  it('accepts a range two years back when PUMPWATCH_MAX_PAST_SECONDS allows ten', async () => {
    const t = await startTestAgent({ PUMPWATCH_MAX_PAST_SECONDS: String(10 * 365 * 86400) });
    try {
      const from = Date.now() - 2 * 365 * 86_400_000;
      const r = await postJson(`${t.url}/labels`, { pumpId: 'lt-2', kind: 'maintenance', from, to: from + 3_600_000, author: 'Ana' });
      expect(r.status).toBe(201);
    } finally {
      await t.stop();
    }
  });
});

describe('a stored label whose time is not a date', () => {
  let az: TestAzurite;
  let dir: string;
  beforeAll(async () => {
    az = await startTestAzurite();
    dir = mkdtempSync(join(tmpdir(), 'pw-labels-bad-'));
  });
  afterAll(async () => {
    await az?.dispose();
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });

  const label = (pumpId: string, fromTs: number): NewLabel => ({ pumpId, kind: 'maintenance', faultType: null, note: null, alertSeq: null, fromTs, toTs: fromTs + 1000, author: 'Ana' });

  it('is moved to the rejected table with its reason and reported, and the labels after it are still uploaded', async () => {
    const store = new BufferStore({ path: join(dir, 'buffer.sqlite'), maxBytes: 2 ** 30 });
    store.open();
    try {
      const labels = new LabelStore(store);
      const now = Date.now();
      const a = labels.add(label('lt-1', now - 60_000), now - 3000);
      storeBadLabel(store.db, 'bad-1', now - 2000); // older than the label after it: it came first in the upload
      const c = labels.add(label('lt-1', now - 30_000), now - 1000);
      expect(labels.list({ limit: 10 }).map((l) => l.id)).toEqual([c.id, a.id]);
      expect(labels.unsynced(10).map((l) => l.id)).toEqual([a.id, c.id]);

      const container: ContainerClient = az.container('labels-bad');
      await container.createIfNotExists();
      const setAside: SetAsideLabel[] = [];
      expect(await uploadPendingLabels(container, labels, 'gw-1', { onSetAside: (l) => setAside.push(...l), now })).toEqual({ uploaded: 2, alreadyPresent: 0 });
      expect(setAside).toEqual([{ id: 'bad-1', reason: expect.stringMatching(/^label bad-1: from_ts 9000000000000000 and to_ts 9000000000001000 are not times/) }]);
      const names: string[] = [];
      for await (const b of container.listBlobsFlat({ prefix: 'labels/' })) names.push(b.name);
      expect(names.map((n) => n.split('/').pop()).sort()).toEqual([`${a.id}.json`, `${c.id}.json`].sort());

      const rejected = store.db.prepare('SELECT source, raw, reason, received_at AS at FROM rejected').all() as Array<{ source: string; raw: string; reason: string; at: number }>;
      expect(rejected).toHaveLength(1);
      expect(rejected[0]).toMatchObject({ source: 'label', reason: setAside[0]!.reason, at: now - 2000 });
      expect(JSON.parse(rejected[0]!.raw)).toMatchObject({ id: 'bad-1', from_ts: BAD_FROM, author: 'Ana' });
      expect(store.stats().rejected).toBe(1);
      expect(store.db.prepare("SELECT count(*) AS n FROM labels WHERE id = 'bad-1'").get()).toEqual({ n: 0 });
      expect(labels.counts()).toEqual({ total: 2, unsynced: 0 });
      // Once moved, it is not reported again.
      expect(await uploadPendingLabels(container, labels, 'gw-1', { onSetAside: (l) => setAside.push(...l), now })).toEqual({ uploaded: 0, alreadyPresent: 0 });
      expect(setAside).toHaveLength(1);
    } finally {
      store.close();
    }
  });
});
