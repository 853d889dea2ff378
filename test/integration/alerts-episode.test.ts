/**
 * GET /alerts/:seq/episode and the walk behind it (buffer/episodes.ts) on a real SQLite buffer: the
 * episode holding an alert is the one the page's own grouping (agent/page/alerts.js groupEpisodes)
 * makes of every alert, for every alert, across statement chunks, ties, late rows and other pumps'
 * alerts in between; the walk lets the event loop run between chunks; bad requests are named.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EPISODE_GAP_MS } from '../../agent/http/alerts-routes.js';
// @ts-expect-error: the page's plain-JS module, read by the browser and here alike
import { EPISODE_GAP_MS as PAGE_GAP_MS, groupEpisodes } from '../../agent/page/alerts.js';
import { EPISODE_CHUNK, WALK_SQL, episodeExtent } from '../../buffer/episodes.js';
import { LabelStore } from '../../buffer/labels.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow, StoredRow } from '../../buffer/types.js';
import { createLogger } from '../../agent/logger.js';
import { postJson, startTestAgent, type TestAgent } from '../support/agent.js';
import { rng } from '../support/models.js';

const T0 = Date.UTC(2026, 10, 23);
const PUMPS = ['ep-a', 'ep-b', 'ep-c'];

interface PageEpisode {
  pumpId: string;
  first: { seq: number };
  last: { seq: number };
  peak: { seq: number };
  alerts: unknown[];
}

describe('the episode of an alert, walked in SQLite', () => {
  let dir: string;
  let store: BufferStore;
  let labels: LabelStore;
  let all: StoredRow[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pumpwatch-episode-'));
    store = new BufferStore({ path: join(dir, 'buffer.sqlite'), maxBytes: 1024 ** 3 });
    store.open();
    labels = new LabelStore(store);
    // Per pump: runs of alerts with gaps mostly under a minute, some of exactly a minute (the same
    // episode), some just over (a new one), equal times, rows arriving late (ts before seq order),
    // normal readings between, and one run longer than two chunks, so chunk ends fall inside episodes.
    const random = rng(7);
    const rows: PredictionRow[] = [];
    const clock = new Map(PUMPS.map((p) => [p, T0]));
    const gaps = [0, 1000, 30_000, EPISODE_GAP_MS, EPISODE_GAP_MS + 1, 5 * 60_000];
    for (let i = 0; i < 9000; i++) {
      const flood = i > 2000 && i < 7000 && random() < 0.9; // ep-a alerts every second for a while
      const pumpId = flood ? 'ep-a' : PUMPS[Math.floor(random() * PUMPS.length)]!;
      const long = pumpId === 'ep-a' && i > 2000 && i < 7000;
      const gap = long ? 1000 : gaps[Math.floor(random() * gaps.length)]!;
      const ts = clock.get(pumpId)! + gap;
      clock.set(pumpId, ts);
      const late = random() < 0.03 ? 45_000 : 0;
      const anomaly = long || random() < 0.8;
      const score = anomaly ? 1 + Math.floor(random() * 50) / 10 : 0.2; // ties of the peak score too
      rows.push({ pumpId, ts: ts - late, receivedAt: ts, values: { Pressure: 1 }, score, anomaly, modelVersion: 'v1', imputed: false, unscoredReason: null });
    }
    const seqs = store.appendBatch(rows);
    all = rows.map((r, i) => ({ ...r, seq: seqs[i]! }));
  });
  afterAll(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is, for every alert, the episode the page groups it in from every alert of its pump', async () => {
    expect(PAGE_GAP_MS).toBe(EPISODE_GAP_MS);
    // the page's view: every alert, newest first (ts, then seq), as GET /alerts answers
    const alerts = all
      .filter((r) => r.anomaly)
      .sort((a, b) => b.ts - a.ts || b.seq - a.seq)
      .map((r) => ({ seq: r.seq, pumpId: r.pumpId, ts: new Date(r.ts).toISOString(), score: r.score, label: null }));
    const episodes = groupEpisodes(alerts) as PageEpisode[];
    expect(episodes.length).toBeGreaterThan(200);
    const longest = Math.max(...episodes.map((e) => e.alerts.length));
    expect(longest).toBeGreaterThan(2 * EPISODE_CHUNK); // the walk crosses chunk ends
    let checked = 0;
    for (const ep of episodes) {
      const expected = { pumpId: ep.pumpId, first: ep.first.seq, last: ep.last.seq, count: ep.alerts.length, peak: ep.peak.seq };
      // from its first, its last, and one alert inside
      for (const a of [ep.first, ep.last, ep.alerts[Math.floor(ep.alerts.length / 2)] as { seq: number }]) {
        const found = await labels.episode(a.seq, EPISODE_GAP_MS);
        if (found.extent === null) throw new Error(`alert ${a.seq}: ${found.reason}`);
        const e = found.extent;
        expect({ pumpId: e.pumpId, first: e.first.seq, last: e.last.seq, count: e.count, peak: e.peak.seq }, `alert ${a.seq}`).toEqual(expected);
        checked += 1;
      }
    }
    expect(checked).toBe(episodes.length * 3);
  });

  it('lets the event loop run between chunks of a long episode', async () => {
    const long = all.filter((r) => r.pumpId === 'ep-a' && r.anomaly).sort((a, b) => a.ts - b.ts || a.seq - b.seq);
    const middle = long[Math.floor(long.length / 2)]!;
    let pauses = 0;
    const found = await episodeExtent(store, middle.seq, EPISODE_GAP_MS, {
      pause: async () => {
        pauses += 1;
      },
    });
    if (found.extent === null) throw new Error(found.reason);
    // one pause between the two ways at least, and one per full chunk read
    expect(found.extent.count).toBeGreaterThan(2 * EPISODE_CHUNK);
    expect(pauses).toBeGreaterThanOrEqual(Math.floor(found.extent.count / EPISODE_CHUNK));
  });

  it('stops at a pause once its asker is gone', async () => {
    const long = all.filter((r) => r.pumpId === 'ep-a' && r.anomaly).sort((a, b) => a.ts - b.ts || a.seq - b.seq);
    let pauses = 0;
    const found = await episodeExtent(store, long[Math.floor(long.length / 2)]!.seq, EPISODE_GAP_MS, {
      pause: async () => {
        pauses += 1;
      },
      stopped: () => pauses >= 2,
    });
    expect(found).toEqual({ extent: null, reason: 'stopped', pumpId: 'ep-a' });
    expect(pauses).toBe(2);
  });

  it('steps through thousands of alerts of one time (a sender whose clock stood still) in seeks, each alert once', async () => {
    const ts = T0 + 30 * 86_400_000;
    const tied = Array.from({ length: 5000 }, (_, i): PredictionRow => ({ pumpId: 'ep-tie', ts: ts + (i < 10 ? -i * 1000 : 0), receivedAt: ts, values: { Pressure: 1 }, score: i === 2500 ? 9 : 2, anomaly: true, modelVersion: 'v1', imputed: false, unscoredReason: null }));
    const seqs = store.appendBatch(tied);
    // each statement of the walk seeks to its cursor, ties included: no statement reads the tie again from its start
    const plan = (sql: string) =>
      (store.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all({ pump: 'ep-tie', ts, seq: seqs[2000], n: 1000 }) as Array<{ detail: string }>).map((r) => r.detail).join('\n');
    expect(plan(WALK_SQL.back)).toMatch(/pump_id=\? AND ts=\? AND rowid<\?/);
    expect(plan(WALK_SQL.on)).toMatch(/pump_id=\? AND ts=\? AND rowid>\?/);
    const found = await labels.episode(seqs[2000]!, EPISODE_GAP_MS);
    if (found.extent === null) throw new Error(found.reason);
    expect(found.extent).toMatchObject({ count: 5000, first: { seq: seqs[9] }, last: { seq: seqs[4999] }, peak: { seq: seqs[2500] } });
  });

  it('says when the buffer keeps no such reading, or the reading is not an alert', async () => {
    expect(await labels.episode(1e9, EPISODE_GAP_MS)).toEqual({ extent: null, reason: 'not-kept' });
    const normal = all.find((r) => !r.anomaly)!;
    expect(await labels.episode(normal.seq, EPISODE_GAP_MS)).toEqual({ extent: null, reason: 'not-alert', pumpId: normal.pumpId });
  });
});

describe('GET /alerts/:seq/episode on a running agent', () => {
  let t: TestAgent;
  const NORMAL = { Pressure: 1.4, Flow: 30, Current: 1.4 };
  const FAULT = { Pressure: 0.2, Flow: 45, Current: 0.6 };
  const get = async (path: string) => {
    const res = await fetch(`${t.url}${path}`);
    return { status: res.status, json: (await res.json()) as any };
  };

  beforeAll(async () => {
    t = await startTestAgent();
  });
  afterAll(async () => {
    await t.stop();
  });

  it('answers the whole of an episode of 5 000 alerts from any of its alerts, with its peak as GET /alerts shows alerts', async () => {
    const t0 = Date.now() - 3 * 3_600_000;
    const rows = [
      { pumpId: 'ep-http', ts: t0 - 120_000, values: FAULT }, // an episode before, more than a minute off
      { pumpId: 'ep-http', ts: t0 - 61_000, values: NORMAL },
      ...Array.from({ length: 5000 }, (_, i) => ({ pumpId: 'ep-http', ts: t0 + i * 1000, values: i === 2500 ? { ...FAULT, Pressure: 0 } : FAULT })),
      { pumpId: 'ep-http', ts: t0 + 4999 * 1000 + EPISODE_GAP_MS + 1, values: FAULT }, // the next episode
      { pumpId: 'ep-other', ts: t0 + 1500, values: FAULT },
    ];
    for (let i = 0; i < rows.length; i += 1000) expect((await postJson(`${t.url}/readings`, rows.slice(i, i + 1000))).status).toBe(202);
    const newest = (await get('/alerts?pumpId=ep-http&limit=3')).json.alerts;
    expect(newest).toHaveLength(3);
    const inside = newest[1]; // the newest alert of the long episode
    const r = await get(`/alerts/${inside.seq}/episode?pumpId=ep-http`);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({
      pumpId: 'ep-http',
      gapMs: EPISODE_GAP_MS,
      count: 5000,
      first: { ts: new Date(t0).toISOString() },
      last: { seq: inside.seq, ts: new Date(t0 + 4999 * 1000).toISOString() },
    });
    // the peak: the reading furthest out, shown as an alert of GET /alerts is
    expect(r.json.peak).toMatchObject({ pumpId: 'ep-http', ts: new Date(t0 + 2500 * 1000).toISOString(), label: null });
    expect(Object.keys(r.json.peak).sort()).toEqual(Object.keys(inside).sort());
    expect(r.json.peak.score).toBeGreaterThanOrEqual(Math.max(...newest.map((a: any) => a.score)));
    // the same episode from its first alert
    const fromFirst = await get(`/alerts/${r.json.first.seq}/episode`);
    expect(fromFirst.json).toEqual(r.json);
    expect(r.json.label).toBeNull();

    // its label: the newest of the pump's labels meeting its time range, though its newest alerts do not carry it
    const label = (body: Record<string, unknown>) => postJson(`${t.url}/labels`, { pumpId: 'ep-http', author: 'Ben', kind: 'false-alarm', ...body });
    expect((await label({ from: new Date(t0 - 120_000).toISOString(), to: new Date(t0 - 120_000).toISOString() })).status).toBe(201); // the episode before
    expect((await label({ from: new Date(t0 + 5000 * 1000 + EPISODE_GAP_MS).toISOString(), to: new Date(t0 + 5000 * 1000 + EPISODE_GAP_MS).toISOString() })).status).toBe(201); // the next
    const early = await label({ kind: 'confirmed-fault', faultType: 'bearing', from: new Date(t0).toISOString(), to: new Date(t0 + 1000 * 1000).toISOString() });
    expect(early.status).toBe(201);
    const labelled = await get(`/alerts/${inside.seq}/episode?pumpId=ep-http`);
    expect(labelled.json.label).toMatchObject({ id: (early.json as any).label.id, kind: 'confirmed-fault', faultType: 'bearing', from: new Date(t0).toISOString(), to: new Date(t0 + 1000 * 1000).toISOString() });
    expect((await get(`/alerts?pumpId=ep-http&limit=3`)).json.alerts[1].label).toBeNull();
    // another pump's label over the same time is not its
    expect((await postJson(`${t.url}/labels`, { pumpId: 'ep-other', author: 'Ben', kind: 'false-alarm', from: new Date(t0).toISOString(), to: new Date(t0 + 4999 * 1000).toISOString() })).status).toBe(201);
    expect((await get(`/alerts/${inside.seq}/episode?pumpId=ep-http`)).json.label.id).toBe((early.json as any).label.id);
  });

  it('names what is wrong: not a number, no such reading, not an alert, another pump', async () => {
    const bad = await get('/alerts/abc/episode');
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/seq in \/alerts\/:seq\/episode: "abc" must be a sequence number/);
    const none = await get('/alerts/999999999/episode');
    expect(none.status).toBe(404);
    expect(none.json.error).toMatch(/alert 999999999: the buffer keeps no reading with that seq/);
    const t0 = Date.now() - 60_000;
    expect((await postJson(`${t.url}/readings`, [{ pumpId: 'ep-n', ts: t0, values: NORMAL }, { pumpId: 'ep-n', ts: t0 + 1000, values: FAULT }])).status).toBe(202);
    const [alert] = (await get('/alerts?pumpId=ep-n')).json.alerts;
    const notAlert = await get(`/alerts/${alert.seq - 1}/episode`);
    expect(notAlert.status).toBe(404);
    expect(notAlert.json.error).toBe(`alert ${alert.seq - 1}: reading ${alert.seq - 1} of pump ep-n is not an alert`);
    const other = await get(`/alerts/${alert.seq}/episode?pumpId=ep-x`);
    expect(other.status).toBe(404);
    expect(other.json.error).toBe(`alert ${alert.seq} is of pump ep-n, not of ep-x`);
  });
});
describe('GET /alerts/:seq/episode when its asker leaves', () => {
  it('stops the walk of a closed request, logs no failure for it, and answers the next one', async () => {
    const lines: Array<{ level: number; msg: string }> = [];
    const t = await startTestAgent({}, { logger: createLogger('info', { write: (l: string) => void lines.push(JSON.parse(l) as { level: number; msg: string }) }) });
    try {
      // a million alerts of one pump at one time (a sender whose clock stood still): a walk of a second or more
      const ts = Date.now() - 2 * 3_600_000;
      const row: PredictionRow = { pumpId: 'ep-flood', ts, receivedAt: ts, values: { Pressure: 0.2 }, score: 5, anomaly: true, modelVersion: 'v1', imputed: false, unscoredReason: null };
      let middle = 0;
      for (let i = 0; i < 10; i++) {
        const seqs = t.agent.buffer.appendBatch(Array.from({ length: 100_000 }, () => row));
        if (i === 5) middle = seqs[0]!;
      }
      const [small] = t.agent.buffer.appendBatch([{ ...row, pumpId: 'ep-small' }]);
      const walks: Array<{ seq: number; reason: string }> = [];
      const labels = LabelStore.prototype;
      const episode = labels.episode;
      // the walk's outcome, as the route gets it (the route's own answer goes to no one)
      labels.episode = async function (this: LabelStore, seq, gapMs, stopped) {
        const found = await episode.call(this, seq, gapMs, stopped);
        walks.push({ seq, reason: found.extent === null ? found.reason : 'whole' });
        return found;
      };
      try {
        const asker = new AbortController();
        const gone = fetch(`${t.url}/alerts/${middle}/episode`, { signal: asker.signal }).catch((err: Error) => err.name);
        await new Promise((done) => setTimeout(done, 150));
        asker.abort(); // the page's timeout, a closed tab
        expect(await gone).toBe('AbortError');
        const next = await fetch(`${t.url}/alerts/${small}/episode`);
        expect(next.status).toBe(200);
        expect(((await next.json()) as { count: number }).count).toBe(1);
        expect(walks).toEqual([
          { seq: middle, reason: 'stopped' },
          { seq: small, reason: 'whole' },
        ]);
        expect(lines.filter((l) => l.level >= 40 && /PW_STOPPED/.test(JSON.stringify(l)))).toEqual([]);
      } finally {
        labels.episode = episode;
      }
    } finally {
      await t.stop();
    }
  }, 60_000);
});
