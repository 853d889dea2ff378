import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { DEFAULT_MODEL_KEY } from '../../inference/engine.js';
import { pageDir } from '../../agent/http/page-routes.js';
import { postJson, startTestAgent, type TestAgent } from '../support/agent.js';

const NORMAL = { Pressure: 1.4, Flow: 30, Current: 1.4 };
const FAULT = { Pressure: 0.2, Flow: 45, Current: 0.6 };

let t: TestAgent;
const reading = (pumpId: string, values: Record<string, number | null>, ts = Date.now()) => ({ pumpId, ts, values });
const getJson = async (path: string, headers: Record<string, string> = {}) => {
  const res = await fetch(`${t.url}${path}`, { headers });
  return { status: res.status, json: (await res.json()) as any };
};

beforeAll(async () => {
  t = await startTestAgent();
});
afterAll(async () => {
  await t.stop();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('GET / and its assets', () => {
  it('serves the page and every asset it references from the agent itself, with a same-origin CSP', async () => {
    const res = await fetch(`${t.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    const html = await res.text();
    const refs = [...html.matchAll(/(?:src|href)="([^"#]+)"/g)].map((m) => m[1]!);
    expect(refs.every((r) => r.startsWith('/'))).toBe(true);
    // ES modules the page imports, found from app.js's import lines
    const modules = [...readFileSync(join(pageDir(), 'app.js'), 'utf8').matchAll(/from '\.\/([a-z-]+\.js)'/g)].map((m) => `/page/${m[1]}`);
    for (const path of [...refs, ...modules]) {
      const asset = await fetch(`${t.url}${path}`);
      expect(asset.status, path).toBe(200);
      expect((await asset.arrayBuffer()).byteLength, path).toBeGreaterThan(50);
    }
    expect(refs).toContain('/page/vendor/uplot.js');
  });

  it('refuses paths that try to leave the page folder', async () => {
    for (const path of ['/page/..%2Fpaths.ts', '/page/..%2F..%2Fpackage.json', '/page/.env', '/page/screenshot.png', '/page/vendor/uPlot.cjs.js', '/page/README.md']) {
      const res = await fetch(`${t.url}${path}`);
      expect(res.status, path).toBe(404);
      expect(((await res.json()) as any).code).toBe('PW_NOT_FOUND');
    }
  });
});

describe('GET /pumps', () => {
  it('shows each pump as normal or in anomaly since its first anomalous reading, with its model', async () => {
    const t0 = Date.now() - 60_000;
    await postJson(`${t.url}/readings`, [reading('pa-1', NORMAL, t0), reading('pa-1', NORMAL, t0 + 1000)]);
    await postJson(`${t.url}/readings`, [reading('pa-2', NORMAL, t0), reading('pa-2', FAULT, t0 + 1000), reading('pa-2', FAULT, t0 + 2000)]);
    const { status, json } = await getJson('/pumps');
    expect(status).toBe(200);
    const byId = Object.fromEntries(json.pumps.map((p: any) => [p.pumpId, p]));
    expect(byId['pa-1']).toMatchObject({ state: 'normal', anomalySince: null, model: { key: 'default', version: 'test-1', features: ['Pressure', 'Flow', 'Current'] } });
    expect(byId['pa-2']).toMatchObject({ state: 'anomaly', anomalySince: new Date(t0 + 1000).toISOString(), lastAlertAt: new Date(t0 + 2000).toISOString() });
    expect(byId['pa-2'].lastReading.contributions).toHaveProperty('Pressure');
    expect(byId['pa-2'].lastAlert).toMatchObject({ ts: new Date(t0 + 2000).toISOString(), contributions: { Pressure: expect.any(Number) } });
    expect(typeof byId['pa-2'].model.threshold).toBe('number');
    // The test model was fitted on ten minutes of readings: the page is told it is short.
    expect(byId['pa-1'].model.training).toEqual({ from: '2026-01-01T00:00:00.000Z', to: '2026-01-01T00:09:59.000Z', spanMs: 599_000, short: true });
  });

  it('keeps a pump in anomaly through a single normal reading and clears it after five in a row', async () => {
    const t0 = Date.now() - 30_000;
    await postJson(`${t.url}/readings`, [reading('pa-3', FAULT, t0), reading('pa-3', NORMAL, t0 + 1000)]);
    let pump = (await getJson('/pumps')).json.pumps.find((p: any) => p.pumpId === 'pa-3');
    expect(pump.state).toBe('anomaly');
    await postJson(`${t.url}/readings`, [2, 3, 4, 5].map((i) => reading('pa-3', NORMAL, t0 + i * 1000)));
    pump = (await getJson('/pumps')).json.pumps.find((p: any) => p.pumpId === 'pa-3');
    expect(pump).toMatchObject({ state: 'normal', anomalySince: null, lastAlertAt: new Date(t0).toISOString() });
  });

  it('marks a pump stale when no reading arrived for five minutes', async () => {
    // "Stale" is measured on performance.now(), not Date: both move with the fake clock.
    vi.useFakeTimers({ toFake: ['Date', 'performance'] });
    await postJson(`${t.url}/readings`, [reading('pa-4', NORMAL)]);
    vi.advanceTimersByTime(6 * 60_000);
    const pump = (await getJson('/pumps')).json.pumps.find((p: any) => p.pumpId === 'pa-4');
    expect(pump.state).toBe('stale');
    expect(pump.detail).toBe('no reading for 6 min');
    expect(pump.lastState).toBe('normal');
  });

  it('keeps the alarm of a pump that goes silent while in anomaly: stale, last state anomaly, since its first anomalous reading', async () => {
    vi.useFakeTimers({ toFake: ['Date', 'performance'] });
    const t0 = Date.now() - 10_000;
    await postJson(`${t.url}/readings`, [reading('pa-6', NORMAL, t0), reading('pa-6', FAULT, t0 + 1000), reading('pa-6', FAULT, t0 + 2000)]);
    const fresh = (await getJson('/pumps')).json.pumps.find((p: any) => p.pumpId === 'pa-6');
    expect(fresh).toMatchObject({ state: 'anomaly', lastState: null });
    vi.advanceTimersByTime(7 * 60_000);
    const pump = (await getJson('/pumps')).json.pumps.find((p: any) => p.pumpId === 'pa-6');
    expect(pump).toMatchObject({
      state: 'stale',
      lastState: 'anomaly',
      detail: 'no reading for 7 min',
      anomalySince: new Date(t0 + 1000).toISOString(),
      lastAlertAt: new Date(t0 + 2000).toISOString(),
    });
  });

  it('shows a pump whose readings all come refused as "refused" with the reason, not as stale, in /pumps and /status', async () => {
    vi.useFakeTimers({ toFake: ['Date', 'performance'] });
    expect((await postJson(`${t.url}/readings`, [reading('pa-7', NORMAL, Date.now() - 1000), reading('pa-7', NORMAL)])).status).toBe(202);
    // a firmware update: Pressure comes as a string, every 30 s for 6 min
    for (let i = 0; i < 12; i++) {
      vi.advanceTimersByTime(30_000);
      const res = await postJson(`${t.url}/readings`, { pumpId: 'pa-7', ts: Date.now(), values: { ...NORMAL, Pressure: '0.38' } });
      expect(res.status).toBe(400);
    }
    const pump = (await getJson('/pumps')).json.pumps.find((p: any) => p.pumpId === 'pa-7');
    expect(pump).toMatchObject({ state: 'refused', lastState: 'normal', refused: { total: 12, overLimit: false } });
    expect(pump.detail).toMatch(/^(9|10|11) readings refused in the last 5 min; last: values\.Pressure: expected a finite number or null, got string "0\.38"$/);
    const status = (await getJson('/status')).json;
    expect(status.readings.refusedByPump['pa-7']).toMatchObject({ total: 12, lastReason: 'values.Pressure: expected a finite number or null, got string "0.38"' });
    expect(status.readings.refusedUntracked).toBe(0);
  });

  it('gives a pump refused for PUMPWATCH_MAX_PUMPS a card that says so', async () => {
    const own = await startTestAgent({ PUMPWATCH_MAX_PUMPS: '1' });
    try {
      expect((await postJson(`${own.url}/readings`, [reading('lim-1', NORMAL)])).status).toBe(202);
      expect((await postJson(`${own.url}/readings`, [reading('lim-2', NORMAL)])).status).toBe(400);
      const pumps = ((await (await fetch(`${own.url}/pumps`)).json()) as any).pumps;
      const card = pumps.find((p: any) => p.pumpId === 'lim-2');
      expect(card).toMatchObject({ state: 'refused', lastReading: null, refused: { total: 1, overLimit: true } });
      expect(card.detail).toMatch(/PUMPWATCH_MAX_PUMPS/);
    } finally {
      await own.stop();
    }
  });

  it('shows "no model" for readings that arrive while no model is active', async () => {
    const model = t.agent.engine.model(DEFAULT_MODEL_KEY)!;
    t.agent.engine.setModel(DEFAULT_MODEL_KEY, null);
    try {
      await postJson(`${t.url}/readings`, [reading('pa-5', NORMAL)]);
      const pump = (await getJson('/pumps')).json.pumps.find((p: any) => p.pumpId === 'pa-5');
      expect(pump).toMatchObject({ state: 'no-model', model: null });
      expect(pump.lastReading.score).toBeNull();
    } finally {
      t.agent.engine.setModel(DEFAULT_MODEL_KEY, model);
    }
  });
});

describe('GET /alerts', () => {
  /** Newest first by reading time, the later committed first among equal times. */
  const expectNewestFirst = (alerts: Array<{ ts: string; seq: number }>): void => {
    const order = alerts.map((a) => [Date.parse(a.ts), a.seq] as const);
    expect(order).toEqual([...order].sort((a, b) => b[0] - a[0] || b[1] - a[1]));
  };

  it('lists anomalies newest first by reading time with the threshold and model version that scored them', async () => {
    const t0 = Date.now() - 20_000;
    await postJson(`${t.url}/readings`, [reading('al-1', FAULT, t0), reading('al-1', NORMAL, t0 + 1000), reading('al-2', FAULT, t0 + 2000)]);
    const { status, json } = await getJson('/alerts?limit=1000');
    expect(status).toBe(200);
    expectNewestFirst(json.alerts);
    const first = json.alerts.find((a: any) => a.pumpId === 'al-2');
    expect(first).toMatchObject({ ts: new Date(t0 + 2000).toISOString(), modelVersion: 'test-1', label: null, values: FAULT });
    expect(first.score).toBeGreaterThan(first.threshold);
    expect(Object.keys(first.contributions).sort()).toEqual(['Current', 'Flow', 'Pressure']);
    const onlyAl1 = (await getJson('/alerts?pumpId=al-1')).json;
    expect(onlyAl1.alerts.map((a: any) => a.pumpId)).toEqual(['al-1']);
    expect((await getJson(`/alerts?since=${encodeURIComponent(new Date(t0 + 1500).toISOString())}&pumpId=al-1`)).json.count).toBe(0);
    expect((await getJson('/alerts?limit=1')).json.count).toBe(1);
  });

  it('with perPump, answers the newest alerts of every pump: one pump in anomaly at 1 Hz does not push the others out', async () => {
    const t0 = Date.now() - 120_000;
    await postJson(`${t.url}/readings`, [reading('pp-other', NORMAL, t0), reading('pp-other', FAULT, t0 + 1000)]);
    // The flood's readings are ten minutes ahead of the gateway clock (allowed up to a day): the
    // newest by reading time of every alert of this agent, whatever the tests before posted.
    const flood = Date.now() + 600_000;
    await postJson(`${t.url}/readings`, Array.from({ length: 60 }, (_, i) => reading('pp-flood', FAULT, flood + i * 1000)));
    // the newest alerts across all pumps are the flood's only (what the page asked for before)
    expect(new Set((await getJson('/alerts?limit=50')).json.alerts.map((a: any) => a.pumpId))).toEqual(new Set(['pp-flood']));

    const { status, json } = await getJson('/alerts?perPump=3');
    expect(status).toBe(200);
    expectNewestFirst(json.alerts);
    const flooded = json.alerts.filter((a: any) => a.pumpId === 'pp-flood');
    expect(flooded.map((a: any) => a.ts)).toEqual([59, 58, 57].map((i) => new Date(flood + i * 1000).toISOString()));
    const other = json.alerts.filter((a: any) => a.pumpId === 'pp-other');
    expect(other).toHaveLength(1);
    expect(other[0]).toMatchObject({ ts: new Date(t0 + 1000).toISOString(), values: FAULT, label: null });
    // every pump with an alert in the buffer is there, none with more than perPump
    const all = (await getJson('/alerts?limit=1000')).json.alerts;
    const counts = new Map<string, number>();
    for (const a of json.alerts) counts.set(a.pumpId, (counts.get(a.pumpId) ?? 0) + 1);
    expect(new Set(counts.keys())).toEqual(new Set(all.map((a: any) => a.pumpId)));
    expect(Math.max(...counts.values())).toBe(3);
    expect(json.count).toBe(json.alerts.length);

    // the alert of the quiet pump can be labelled, and the label shows on it
    const labelled = await postJson(`${t.url}/labels`, { pumpId: 'pp-other', kind: 'false-alarm', alertSeq: other[0].seq, author: 'Ana' });
    expect(labelled.status).toBe(201);
    const again = (await getJson('/alerts?perPump=3')).json.alerts.find((a: any) => a.pumpId === 'pp-other');
    expect(again.label).toMatchObject({ kind: 'false-alarm', alertSeq: other[0].seq, author: 'Ana' });
    // with pumpId and since, as without perPump
    expect((await getJson('/alerts?perPump=2&pumpId=pp-flood')).json.alerts.map((a: any) => a.pumpId)).toEqual(['pp-flood', 'pp-flood']);
    const since = encodeURIComponent(new Date(t0 + 1500).toISOString());
    expect((await getJson(`/alerts?perPump=5&since=${since}&pumpId=pp-other`)).json.count).toBe(0);
    const recent = (await getJson(`/alerts?perPump=5&since=${since}`)).json.alerts;
    expect(recent.filter((a: any) => a.pumpId === 'pp-flood')).toHaveLength(5);
    expect(recent.some((a: any) => a.pumpId === 'pp-other' || Date.parse(a.ts) < t0 + 1500)).toBe(false);
  });

  it('pages back through every alert with before=next, equal reading times included, none twice and none skipped', async () => {
    const t0 = Date.now() - 3_600_000;
    // Two pumps' alerts at the same reading times: pages of 3 split such ties.
    await postJson(`${t.url}/readings`, Array.from({ length: 26 }, (_, i) => reading(i % 2 === 0 ? 'pg-1' : 'pg-2', FAULT, t0 + Math.floor(i / 2) * 1000)));
    const since = encodeURIComponent(new Date(t0).toISOString());
    const whole = (await getJson(`/alerts?since=${since}&limit=1000`)).json;
    expect(whole.next).toBeNull(); // not a full page
    expect(whole.alerts.filter((a: any) => a.pumpId.startsWith('pg-'))).toHaveLength(26);
    const pages: Array<Array<{ ts: string; seq: number }>> = [];
    let next: string | null = null;
    do {
      const { status, json } = await getJson(`/alerts?since=${since}&limit=3${next ? `&before=${next}` : ''}`);
      expect(status).toBe(200);
      pages.push(json.alerts);
      next = json.next;
      if (json.count === 3) expect(next).toBe(`${Date.parse(json.alerts[2].ts)}:${json.alerts[2].seq}`);
      else expect(next).toBeNull();
    } while (next !== null && pages.length < 100);
    const seen = pages.flat();
    // Every alert once, in the whole list's order.
    expect(seen.map((a) => a.seq)).toEqual(whole.alerts.map((a: any) => a.seq));
    expectNewestFirst(seen);
    // Some page ended inside a tie of reading times and the next went on with it.
    expect(pages.some((p, k) => k + 1 < pages.length && pages[k + 1]!.length > 0 && p.at(-1)!.ts === pages[k + 1]![0]!.ts)).toBe(true);
    // With pumpId, the same.
    const one = (await getJson(`/alerts?pumpId=pg-2&limit=10`)).json;
    expect(one.count).toBe(10);
    const rest = (await getJson(`/alerts?pumpId=pg-2&limit=10&before=${one.next}`)).json;
    expect([...one.alerts, ...rest.alerts].map((a: any) => a.seq)).toEqual((await getJson('/alerts?pumpId=pg-2&limit=1000')).json.alerts.map((a: any) => a.seq));
    expect(rest).toMatchObject({ count: 3, next: null });
    // perPump lists have no next.
    expect((await getJson('/alerts?perPump=1')).json.next).toBeNull();
  });

  it('answers a bad query with 400 PW_BAD_QUERY naming the parameter', async () => {
    for (const q of ['before=yesterday', 'before=12:', 'before=1:2:3', 'before=99999999999999999:1']) {
      const bad = await getJson(`/alerts?${q}`);
      expect(bad.status, q).toBe(400);
      expect(bad.json.error, q).toMatch(/^before must be the "next" of a previous answer/);
    }
    expect((await getJson('/alerts?perPump=2&before=1:1')).json.error).toMatch(/^before and perPump cannot be combined/);
    const r = await getJson('/alerts?limit=0');
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ code: 'PW_BAD_QUERY' });
    expect(r.json.error).toMatch(/^limit/);
    expect((await getJson('/alerts?since=yesterday')).json.error).toMatch(/^since/);
    for (const q of ['perPump=0', 'perPump=1001', 'perPump=2.5', 'perPump=all']) {
      const bad = await getJson(`/alerts?${q}`);
      expect(bad.status, q).toBe(400);
      expect(bad.json.error, q).toMatch(/^perPump: .* must be an integer from 1 to 1000/);
    }
    const both = await getJson('/alerts?perPump=5&limit=10');
    expect(both.status).toBe(400);
    expect(both.json).toMatchObject({ code: 'PW_BAD_QUERY' });
    expect(both.json.error).toMatch(/^perPump and limit/);
  });

  it('refuses a since that is not an ISO 8601 date-time with its zone nor epoch ms, and takes both forms', async () => {
    // Date.parse read these as dates of 2001 and answered 200.
    for (const q of ['garbage%201', 'next%20tuesday%2012', '2026-12-07', '2026-12-07T10:00:00', '2026-02-30T10:00:00Z', '-5', '1e3']) {
      const bad = await getJson(`/alerts?since=${q}`);
      expect(bad.status, q).toBe(400);
      expect(bad.json.code, q).toBe('PW_BAD_QUERY');
      expect(bad.json.error, q).toMatch(/^since: .* is neither an ISO 8601 date nor epoch milliseconds/);
    }
    for (const q of [encodeURIComponent('2026-12-07T10:00:00+01:00'), '2026-12-07T10:00:00.5Z', '1796600000000', '2026']) {
      expect((await getJson(`/alerts?since=${q}`)).status, q).toBe(200);
    }
  });

  it('refuses a query parameter a GET route does not take, naming it, on every data route', async () => {
    const routes = ['/alerts?limt=2', '/alerts?pumpid=nosuch', '/labels?pumpid=nosuch', '/alerts/1/episode?pump=x', '/pumps/p/predictions?sice=1', '/status?x=1', '/metrics?x=1', '/pumps?x=1', '/events?x=1'];
    for (const path of routes) {
      const bad = await getJson(path);
      expect(bad.status, path).toBe(400);
      expect(bad.json.code, path).toBe('PW_BAD_QUERY');
      const name = /[?&]([^=]+)=/.exec(path)![1]!;
      expect(bad.json.error, path).toContain(`unknown query parameter "${name}"`);
    }
    // The names each takes are answered as ever.
    expect((await getJson('/labels?pumpId=nosuch&since=0&limit=2')).json.labels).toEqual([]);
    // once each: two pumps answered one pump's rows, as if both were asked for
    for (const path of ['/labels?pumpId=a&pumpId=b', '/alerts?limit=5&limit=6']) {
      const twice = await getJson(path);
      expect(twice.status, path).toBe(400);
      expect(twice.json.error, path).toMatch(/^query parameter "(pumpId|limit)" is given more than once for GET \/(labels|alerts): give it once$/);
    }
  });
});

describe('GET /events', () => {
  it('streams the readings committed after the page connected', async () => {
    const ac = new AbortController();
    const res = await fetch(`${t.url}/events`, { signal: ac.signal });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    while (!text.includes('event: hello')) text += (await reader.read()).value ?? '';
    await postJson(`${t.url}/readings`, [reading('ev-1', NORMAL), reading('ev-1', FAULT)]);
    while (!text.includes('event: rows')) text += (await reader.read()).value ?? '';
    while (!/event: rows\ndata: .*\n\n/.test(text)) text += (await reader.read()).value ?? '';
    const data = JSON.parse(/event: rows\ndata: (.*)\n\n/.exec(text)![1]!);
    expect(data.pumps['ev-1'].map((r: any) => r.anomaly)).toEqual([false, true]);
    expect(data.pumps['ev-1'][1].values).toEqual(FAULT);
    ac.abort();
  });
});

describe('with a status token', () => {
  let secured: TestAgent;
  beforeAll(async () => {
    secured = await startTestAgent({ PUMPWATCH_STATUS_TOKEN: 'tech-secret-1' });
  });
  afterAll(async () => {
    await secured.stop();
  });

  it('serves the page shell without the token but its data only with it', async () => {
    expect((await fetch(`${secured.url}/`)).status).toBe(200);
    expect((await fetch(`${secured.url}/page/app.js`)).status).toBe(200);
    for (const path of ['/pumps', '/alerts', '/labels', '/events']) {
      const res = await fetch(`${secured.url}${path}`);
      expect(res.status, path).toBe(401);
      expect(((await res.json()) as any).code).toBe('PW_UNAUTHORIZED');
    }
    const ok = await fetch(`${secured.url}/pumps`, { headers: { authorization: 'Bearer tech-secret-1' } });
    expect(ok.status).toBe(200);
    const wrong = await fetch(`${secured.url}/alerts`, { headers: { authorization: 'Bearer nope' } });
    expect(((await wrong.json()) as any).error).toBe('wrong status token');
  });
});
