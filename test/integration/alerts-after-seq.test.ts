/**
 * GET /alerts?afterSeq=: a poller (a SCADA gateway on the plant LAN) that follows the alerts by the
 * buffer's seq sees every alert kept exactly once, whatever the senders' clocks said; one that
 * follows them by reading time (`since`) misses a late burst of old readings. A real agent over a
 * real SQLite buffer, and the buffer's statements checked for their query plans.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabelStore } from '../../buffer/labels.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';
import { postJson, startTestAgent, type TestAgent } from '../support/agent.js';
import { queryPlans } from '../support/query-plans.js';

const NORMAL = { Pressure: 1.4, Flow: 30, Current: 1.4 };
const FAULT = { Pressure: 0.2, Flow: 45, Current: 0.6 };

let t: TestAgent;
let db: Database.Database;
const getJson = async (path: string) => (await (await fetch(`${t.url}${path}`)).json()) as any;
const post = async (rows: Array<[string, Record<string, number>, number]>) => {
  const r = await postJson(`${t.url}/readings`, rows.map(([pumpId, values, ts]) => ({ pumpId, ts, values })));
  expect(r.json).toMatchObject({ accepted: rows.length, rejected: [] });
};
/** The alerts the buffer holds, in seq order, of one pump or all. */
const stored = (pumpId?: string): number[] =>
  db.prepare(`SELECT seq FROM readings WHERE anomaly = 1 ${pumpId ? 'AND pump_id = ?' : ''} ORDER BY seq`).pluck().all(...(pumpId ? [pumpId] : [])) as number[];

/** Polls GET /alerts?afterSeq= from `after` with `query` until `more` is false: what it saw, and where it stopped. */
async function pollAll(after: number, query: string): Promise<{ seen: number[]; next: number; pages: number }> {
  const seen: number[] = [];
  let pages = 0;
  for (;;) {
    const page = await getJson(`/alerts?afterSeq=${after}${query}`);
    pages++;
    const seqs = page.alerts.map((a: { seq: number }) => a.seq) as number[];
    seen.push(...seqs);
    expect(page.count).toBe(seqs.length);
    // of every pump, next is the last alert's seq; of one pump, it may be past the other pumps' alerts after it
    if (seqs.length > 0 && query.includes('pumpId')) expect(page.next).toBeGreaterThanOrEqual(seqs.at(-1)!);
    else if (seqs.length > 0) expect(page.next).toBe(seqs.at(-1));
    after = page.next;
    if (page.more !== true || pages > 50) return { seen, next: after, pages };
  }
}

beforeAll(async () => {
  t = await startTestAgent();
  db = new Database(join(t.dir, 'data', 'buffer.sqlite'), { readonly: true });
});
afterAll(async () => {
  db.close();
  await t.stop();
});

describe('GET /alerts?afterSeq=', () => {
  it('gives every alert once in seq order, a late burst of old reading times included, which a poll by since misses', async () => {
    const t0 = Date.now() - 3_600_000;
    // live readings, reading times rising
    await post([
      ['as-1', NORMAL, t0],
      ['as-1', FAULT, t0 + 10_000],
      ['as-2', FAULT, t0 + 20_000],
      ['as-1', FAULT, t0 + 30_000],
      ['as-2', NORMAL, t0 + 40_000],
      ['as-1', FAULT, t0 + 50_000],
    ]);
    const first = await pollAll(0, '&limit=2');
    expect(first.seen).toEqual(stored()); // before: 400 PW_BAD_QUERY, afterSeq unknown to GET /alerts
    expect(first.seen).toHaveLength(4);
    expect(first.pages).toBe(2);
    // Caught up: nothing new, the cursor stays where it was.
    expect(await getJson(`/alerts?afterSeq=${first.next}&limit=2`)).toEqual({ count: 0, alerts: [], next: first.next, more: false });
    // A poller by reading time remembers the newest time it saw.
    const sinceAnswer = await getJson('/alerts?limit=1000');
    const lastSeen = Math.max(...sinceAnswer.alerts.map((a: { ts: string }) => Date.parse(a.ts)));

    // A store-and-forward RTU forwards readings of some seconds before late (within a pause of the
    // pumps' newest, so they are scored), then the live ones go on.
    await post([
      ['as-2', FAULT, t0 + 5_000],
      ['as-1', FAULT, t0 + 6_000],
      ['as-2', NORMAL, t0 + 7_000],
      ['as-2', FAULT, t0 + 8_000],
    ]);
    const late = stored().filter((s) => s > first.next);
    await post([['as-1', FAULT, t0 + 60_000]]);

    const second = await pollAll(first.next, '&limit=2');
    expect(second.seen).toEqual(stored().filter((s) => s > first.next));
    expect(second.seen).toHaveLength(4);
    expect([...first.seen, ...second.seen]).toEqual(stored()); // every alert, each once, in seq order
    const bySince = (await getJson(`/alerts?since=${lastSeen}&limit=1000`)).alerts.map((a: { seq: number }) => a.seq) as number[];
    expect(late).toHaveLength(3);
    for (const seq of late) expect(bySince).not.toContain(seq); // why a poller must follow seq
    // each alert as GET /alerts shows it
    const [one] = (await getJson(`/alerts?afterSeq=${first.next}&limit=1`)).alerts;
    expect(one).toEqual((await getJson('/alerts?limit=1000')).alerts.find((a: { seq: number }) => a.seq === one.seq));
    expect(Object.keys(one)).toEqual(['seq', 'pumpId', 'ts', 'score', 'threshold', 'modelVersion', 'values', 'contributions', 'label']);

    // one pump's alerts alone, the other pump's passed over
    const pump = await pollAll(0, '&pumpId=as-2&limit=1');
    expect(pump.seen).toEqual(stored('as-2'));
    expect(pump.seen).toHaveLength(3);
    expect(pump.next).toBe(stored().at(-1)); // past as-1's last alert, which it passed over
    expect(await getJson(`/alerts?afterSeq=${pump.next}&pumpId=as-2`)).toEqual({ count: 0, alerts: [], next: pump.next, more: false });
  });

  it('refuses afterSeq with before, perPump or since, and an afterSeq that is not a sequence number, naming what is wrong', async () => {
    const cases: Array<[string, string]> = [
      ['afterSeq=3&before=1700000000000:5', 'afterSeq and before cannot be combined'],
      ['afterSeq=3&perPump=5', 'afterSeq and perPump cannot be combined'],
      ['afterSeq=3&since=2026-12-01T00:00:00Z', 'afterSeq and since cannot be combined'],
      ['afterSeq=-1', 'afterSeq: "-1" must be a sequence number (a non-negative integer)'],
      ['afterSeq=1.5', 'afterSeq: "1.5" must be a sequence number (a non-negative integer)'],
      ['afterSeq=x', 'afterSeq: "x" must be a sequence number (a non-negative integer)'],
      ['afterSeq=3&limit=1001', 'limit: "1001" must be an integer from 1 to 1000'],
    ];
    for (const [query, error] of cases) {
      const res = await fetch(`${t.url}/alerts?${query}`);
      expect(res.status, query).toBe(400);
      const body = (await res.json()) as { code: string; error: string };
      expect(body.code, query).toBe('PW_BAD_QUERY');
      expect(body.error, query).toContain(error);
    }
  });
});

describe('LabelStore.alertsAfter on a real buffer', () => {
  let dir: string;
  let store: BufferStore;
  let labels: LabelStore;
  let seqs: number[] = [];
  let rows: PredictionRow[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pumpwatch-alerts-after-'));
    store = new BufferStore({ path: join(dir, 'buffer.sqlite'), maxBytes: 1024 ** 3 });
    store.open();
    labels = new LabelStore(store);
    // 3 000 readings: one pump floods alerts, a quiet one alerts at every 500th, every third normal
    const T0 = Date.UTC(2026, 10, 23);
    rows = Array.from({ length: 3000 }, (_, i) => {
      const quiet = i % 500 === 7;
      const anomaly = quiet || i % 3 !== 0;
      return { pumpId: quiet ? 'quiet' : 'flood', ts: T0 + i * 1000, receivedAt: T0 + i * 1000, values: { Pressure: 1 }, score: anomaly ? 2 : 0.1, anomaly, modelVersion: 'v1', imputed: false, unscoredReason: null };
    });
    seqs = store.appendBatch(rows);
  });
  afterAll(() => {
    store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads a range of the anomalies\' seq index, never every reading, of every pump or of one', () => {
    const planned = [
      ...queryPlans(store.db, () => labels.alertsAfter({ afterSeq: seqs[100]!, limit: 50 })),
      ...queryPlans(store.db, () => labels.alertsAfter({ pumpId: 'quiet', afterSeq: seqs[100]!, limit: 50 })),
    ];
    expect(planned.length).toBeGreaterThanOrEqual(3);
    for (const plan of planned) {
      expect(plan).toMatch(/SEARCH readings USING (COVERING )?INDEX readings_anomalies_seq_pump \(seq>\?\)|SEARCH readings USING INTEGER PRIMARY KEY/);
      expect(plan).not.toMatch(/SCAN readings(?! USING)|TEMP B-TREE/);
    }
  });

  it('walks at most `walk` alerts of other pumps for one pump, moving next past them, so a quiet pump behind a flood is read in bounded polls', () => {
    const quiet = seqs.filter((_, i) => rows[i]!.pumpId === 'quiet');
    const seen: number[] = [];
    let after = 0;
    let polls = 0;
    for (;;) {
      const page = labels.alertsAfter({ pumpId: 'quiet', afterSeq: after, limit: 2, walk: 300 });
      polls++;
      seen.push(...page.rows.map((r) => r.seq));
      expect(page.next).toBeGreaterThanOrEqual(after);
      after = page.next;
      if (!page.more || polls > 100) break;
    }
    expect(seen).toEqual(quiet);
    expect(polls).toBeGreaterThan(3); // the walk was bounded: 2 000 alerts in steps of 300
    expect(after).toBe(seqs.filter((_, i) => rows[i]!.anomaly).at(-1)); // past every alert walked
    expect(labels.alertsAfter({ pumpId: 'quiet', afterSeq: after, limit: 2, walk: 300 })).toEqual({ rows: [], next: after, more: false });
  });
});
