import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabelStore } from '../../buffer/labels.js';
import { MIGRATIONS } from '../../buffer/migrations.js';
import { BufferStore } from '../../buffer/store.js';
import { postJson, startTestAgent, type TestAgent } from '../support/agent.js';

const NORMAL = { Pressure: 1.4, Flow: 30, Current: 1.4 };
const FAULT = { Pressure: 0.2, Flow: 45, Current: 0.6 };

let t: TestAgent;
let db: Database.Database;
const reading = (pumpId: string, values: Record<string, number>, ts: number) => ({ pumpId, ts, values });
const getJson = async (path: string) => (await (await fetch(`${t.url}${path}`)).json()) as any;

/** Posts readings and returns the alerts (anomalous readings) of that pump, newest first. */
async function alertsOf(pumpId: string, rows: Array<[Record<string, number>, number]>): Promise<any[]> {
  const r = await postJson(`${t.url}/readings`, rows.map(([v, ts]) => reading(pumpId, v, ts)));
  expect(r.status).toBe(202);
  return (await getJson(`/alerts?pumpId=${pumpId}`)).alerts;
}

async function withdraw(id: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const res = await fetch(`${t.url}/labels/${encodeURIComponent(id)}`, {
    method: 'DELETE',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

/** Posts one anomalous reading of `pumpId` and returns its alert. */
async function alertOf(pumpId: string, ts: number): Promise<any> {
  const [alert] = await alertsOf(pumpId, [[FAULT, ts]]);
  expect(alert).toBeDefined();
  return alert;
}

beforeAll(async () => {
  t = await startTestAgent();
  db = new Database(join(t.dir, 'data', 'buffer.sqlite'), { readonly: true });
});
afterAll(async () => {
  db.close();
  await t.stop();
});

describe('POST /labels', () => {
  it('stores a confirmed fault on an alert in SQLite with who and when, and shows it on the alert', async () => {
    const t0 = Date.now() - 10_000;
    const [alert] = await alertsOf('lb-1', [[NORMAL, t0], [FAULT, t0 + 1000]]);
    const before = Date.now();
    const r = await postJson(`${t.url}/labels`, { pumpId: 'lb-1', kind: 'confirmed-fault', faultType: 'bearing', note: 'grinding noise', alertSeq: alert.seq, author: 'Ana' });
    expect(r.status).toBe(201);
    expect(r.json.label).toMatchObject({ pumpId: 'lb-1', kind: 'confirmed-fault', faultType: 'bearing', alertSeq: alert.seq, author: 'Ana', synced: false });
    const row = db.prepare('SELECT * FROM labels WHERE id = ?').get(r.json.label.id) as Record<string, unknown>;
    expect(row).toMatchObject({ pump_id: 'lb-1', kind: 'confirmed-fault', fault_type: 'bearing', note: 'grinding noise', alert_seq: alert.seq, author: 'Ana', synced: 0 });
    expect(row.from_ts).toBe(t0 + 1000);
    expect(row.to_ts).toBe(t0 + 1000);
    expect(row.created_at as number).toBeGreaterThanOrEqual(before);
    const [shown] = (await getJson('/alerts?pumpId=lb-1')).alerts;
    expect(shown.label).toMatchObject({ id: r.json.label.id, kind: 'confirmed-fault', faultType: 'bearing', author: 'Ana' });
  });

  it('shows the latest label when a technician changes a verdict', async () => {
    const [alert] = await alertsOf('lb-2', [[FAULT, Date.now() - 5000]]);
    await postJson(`${t.url}/labels`, { pumpId: 'lb-2', kind: 'confirmed-fault', faultType: 'other', alertSeq: alert.seq, author: 'Ana' });
    await postJson(`${t.url}/labels`, { pumpId: 'lb-2', kind: 'false-alarm', alertSeq: alert.seq, author: 'Ben', note: 'valve test' });
    const [shown] = (await getJson('/alerts?pumpId=lb-2')).alerts;
    expect(shown.label).toMatchObject({ kind: 'false-alarm', author: 'Ben', note: 'valve test', faultType: null });
    const listed = (await getJson('/labels?pumpId=lb-2')).labels;
    expect(listed.map((l: any) => l.kind)).toEqual(['false-alarm', 'confirmed-fault']);
  });

  it('applies a maintenance window to the alerts inside it and to no others', async () => {
    const t0 = Date.now() - 60_000;
    const alerts = await alertsOf('lb-3', [[FAULT, t0], [FAULT, t0 + 20_000], [FAULT, t0 + 40_000]]);
    const r = await postJson(`${t.url}/labels`, {
      pumpId: 'lb-3',
      kind: 'maintenance',
      from: new Date(t0 + 10_000).toISOString(),
      to: t0 + 50_000,
      author: 'Ana',
    });
    expect(r.status).toBe(201);
    expect(r.json.label).toMatchObject({ alertSeq: null, from: new Date(t0 + 10_000).toISOString(), to: new Date(t0 + 50_000).toISOString() });
    const shown = (await getJson('/alerts?pumpId=lb-3')).alerts.map((a: any) => a.label?.kind ?? null);
    expect(alerts).toHaveLength(3);
    expect(shown).toEqual(['maintenance', 'maintenance', null]);
  });

  it('stores a label given only an alert over its whole episode, answers that range, and every view shows what is stored', async () => {
    // one episode of three alerts (20 s apart, a normal reading among them), and an alert more than a minute before and after it
    const t0 = Date.now() - 600_000;
    const rows: Array<[Record<string, number>, number]> = [[FAULT, t0 - 120_000], [FAULT, t0], [NORMAL, t0 + 10_000], [FAULT, t0 + 20_000], [FAULT, t0 + 40_000], [FAULT, t0 + 200_000]];
    const alerts = await alertsOf('lb-7', rows);
    expect(alerts.map((a) => Date.parse(a.ts))).toEqual([t0 + 200_000, t0 + 40_000, t0 + 20_000, t0, t0 - 120_000]);
    const middle = alerts[2];
    const r = await postJson(`${t.url}/labels`, { pumpId: 'lb-7', kind: 'confirmed-fault', faultType: 'bearing', alertSeq: middle.seq, author: 'Ana' });
    expect(r.status).toBe(201);
    const episode = { from: new Date(t0).toISOString(), to: new Date(t0 + 40_000).toISOString() };
    expect(r.json.label).toMatchObject({ alertSeq: middle.seq, ...episode });
    const row = db.prepare('SELECT from_ts, to_ts FROM labels WHERE id = ?').get(r.json.label.id);
    expect(row).toEqual({ from_ts: t0, to_ts: t0 + 40_000 });
    // the alerts of the episode carry it, those of the episodes around it do not, and the episode view shows the same range
    const shown = (await getJson('/alerts?pumpId=lb-7')).alerts.map((a: any) => a.label?.id ?? null);
    expect(shown).toEqual([null, r.json.label.id, r.json.label.id, r.json.label.id, null]);
    const view = await getJson(`/alerts/${alerts[1].seq}/episode`);
    expect(view).toMatchObject({ count: 3, first: { ts: episode.from }, last: { ts: episode.to }, label: { id: r.json.label.id, ...episode } });
    // a range given is kept as given: the page may label part of an episode
    const part = await postJson(`${t.url}/labels`, { pumpId: 'lb-7', kind: 'false-alarm', alertSeq: middle.seq, from: t0 + 20_000, to: t0 + 20_000, author: 'Ben' });
    expect(part.json.label).toMatchObject({ from: middle.ts, to: middle.ts });
  });

  it('shows on each alert the newest label whose stored range covers it, as the trainer takes it, and refuses an alert outside the range given', async () => {
    const t0 = Date.now() - 600_000;
    const [second, first] = await alertsOf('lb-8', [[FAULT, t0], [FAULT, t0 + 20_000]]);
    const at = (ts: number) => new Date(ts).toISOString();
    // a false alarm on the first alert alone, then a confirmed fault over the episode named by its other alert
    const older = await postJson(`${t.url}/labels`, { pumpId: 'lb-8', kind: 'false-alarm', alertSeq: first.seq, from: at(t0), to: at(t0), author: 'Ben' });
    const newer = await postJson(`${t.url}/labels`, { pumpId: 'lb-8', kind: 'confirmed-fault', faultType: 'seal-leak', alertSeq: second.seq, author: 'Ana' });
    expect([older.status, newer.status]).toEqual([201, 201]);
    expect(newer.json.label).toMatchObject({ from: at(t0), to: at(t0 + 20_000) });
    const shown = (await getJson('/alerts?pumpId=lb-8')).alerts.map((a: any) => a.label?.id);
    expect(shown).toEqual([newer.json.label.id, newer.json.label.id]);
    expect((await getJson(`/alerts/${first.seq}/episode`)).label.id).toBe(newer.json.label.id);
    // a range that leaves out the alert it names would label another stretch than the one the alert is in
    const outside = await postJson(`${t.url}/labels`, { pumpId: 'lb-8', kind: 'false-alarm', alertSeq: second.seq, from: at(t0), to: at(t0 + 10_000), author: 'Ben' });
    expect(outside.status).toBe(400);
    expect(outside.json).toMatchObject({ code: 'PW_BAD_LABEL', error: `alert ${second.seq} at ${at(t0 + 20_000)} lies outside from ${at(t0)} – to ${at(t0 + 10_000)}: give a range that holds it, or none (its episode)` });
  });

  it.each([
    [{ kind: 'confirmed-fault', faultType: 'bearing', alertSeq: 1 }, /author: author is required/],
    [{ kind: 'confirmed-fault', author: 'Ana', from: 1, to: 2 }, /faultType is required/],
    [{ kind: 'confirmed-fault', faultType: 'gremlins', author: 'Ana', from: 1, to: 2 }, /faultType must be one of bearing/],
    [{ kind: 'false-alarm', faultType: 'bearing', author: 'Ana', from: 1, to: 2 }, /faultType applies only to a confirmed fault/],
    [{ kind: 'broken', author: 'Ana' }, /kind must be one of confirmed-fault, false-alarm, maintenance/],
    [{ kind: 'maintenance', author: 'Ana' }, /maintenance needs a time range/],
    [{ kind: 'maintenance', author: 'Ana', from: 10, to: 5 }, /to is before from/],
    [{ kind: 'maintenance', author: 'Ana', from: 10 }, /give both from and to/],
    [{ kind: 'false-alarm', author: 'Ana' }, /false-alarm needs an alertSeq or a time range/],
    [{ kind: 'maintenance', author: 'Ana', from: 1, to: 2, color: 'red' }, /color/],
    [{ kind: 'maintenance', author: 'Ana', from: 'last tuesday', to: 2 }, /from/],
  ])('refuses %j with 400 PW_BAD_LABEL and says what is wrong', async (body, message) => {
    const r = await postJson(`${t.url}/labels`, { pumpId: 'lb-x', ...body });
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('PW_BAD_LABEL');
    expect(r.json.error).toMatch(message);
  });

  it('refuses a label for an alert of another pump, an unknown alert, or a false alarm on a normal reading', async () => {
    const t0 = Date.now() - 10_000;
    const [alert] = await alertsOf('lb-4', [[FAULT, t0]]);
    const other = await postJson(`${t.url}/labels`, { pumpId: 'lb-5', kind: 'false-alarm', alertSeq: alert.seq, author: 'Ana' });
    expect(other.json).toMatchObject({ code: 'PW_BAD_LABEL', error: `alert ${alert.seq} belongs to pump lb-4, not lb-5` });
    const unknown = await postJson(`${t.url}/labels`, { pumpId: 'lb-4', kind: 'false-alarm', alertSeq: 99_999_999, author: 'Ana' });
    expect(unknown.status).toBe(404);
    expect(unknown.json.code).toBe('PW_ALERT_NOT_FOUND');
    await postJson(`${t.url}/readings`, [reading('lb-4', NORMAL, t0 + 1000)]);
    const normalSeq = (await getJson('/pumps/lb-4/predictions?limit=1')).predictions[0].seq;
    const notAlert = await postJson(`${t.url}/labels`, { pumpId: 'lb-4', kind: 'false-alarm', alertSeq: normalSeq, author: 'Ana' });
    expect(notAlert.json.error).toMatch(/is not an alert/);
    const badJson = await postJson(`${t.url}/labels`, '{"kind":');
    expect(badJson.json.code).toBe('PW_BAD_JSON');
    expect((db.prepare("SELECT count(*) n FROM labels WHERE pump_id IN ('lb-4', 'lb-5')").get() as { n: number }).n).toBe(0);
  });

  it('refuses a pumpId a reading could not have, and control or bidi-override characters in its text, naming the field', async () => {
    const t0 = Date.now() - 10_000;
    const range = { kind: 'maintenance', from: t0, to: t0 + 1000 };
    const before = (db.prepare('SELECT count(*) n FROM labels').get() as { n: number }).n;
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ pumpId: '<b>x</b>"><img src=x>/../ü', author: 'Ana' }, /^pumpId: must be 1-128 characters: letters, digits/],
      [{ pumpId: 'pump.1', author: 'Ana' }, /^pumpId: must be/],
      [{ pumpId: 'lb-6', author: 'Ana\u202Eevil' }, /^author: has a control or bidirectional-override character \(U\+202E at character 4\)/],
      [{ pumpId: 'lb-6', author: 'Ana\nBob' }, /^author: .*\(U\+000A at character 4\)/],
      [{ pumpId: 'lb-6', author: 'Ana', note: 'ok\u0007' }, /^note: .*\(U\+0007 at character 3\)/],
      [{ pumpId: 'lb-6', author: 'Ana', note: 'a \u2066b' }, /^note: .*U\+2066/],
    ];
    for (const [fields, error] of cases) {
      const r = await postJson(`${t.url}/labels`, { ...range, ...fields });
      expect(r.status, JSON.stringify(fields)).toBe(400);
      expect(r.json.code).toBe('PW_BAD_LABEL');
      expect(r.json.error, JSON.stringify(fields)).toMatch(error);
    }
    expect((db.prepare('SELECT count(*) n FROM labels').get() as { n: number }).n).toBe(before);
    // A note keeps its line breaks and tabs (the page's textarea).
    const ok = await postJson(`${t.url}/labels`, { ...range, pumpId: 'lb-6', author: 'Ana', note: 'seal replaced\n\tpump 6 ok' });
    expect(ok.status).toBe(201);
    expect(ok.json.label.note).toBe('seal replaced\n\tpump 6 ok');
  });
});

/** A label withdrawn (DELETE /labels/:id): every view leaves it out, so the label under it applies again, or none. */
describe('DELETE /labels/:id', () => {
  it('withdraws a confirmed fault: the alert, its episode and GET /labels show the older label under it again', async () => {
    const alert = await alertOf('wd-1', Date.now() - 10_000);
    const older = await postJson(`${t.url}/labels`, { pumpId: 'wd-1', kind: 'false-alarm', alertSeq: alert.seq, author: 'Ben' });
    const wrong = await postJson(`${t.url}/labels`, { pumpId: 'wd-1', kind: 'confirmed-fault', faultType: 'bearing', alertSeq: alert.seq, author: 'Ana' });
    expect([older.status, wrong.status]).toEqual([201, 201]);
    expect((await getJson('/alerts?pumpId=wd-1')).alerts[0].label).toMatchObject({ id: wrong.json.label.id });

    const before = Date.now();
    const done = await withdraw(wrong.json.label.id, { author: 'Ana', note: 'wrong pump' });
    expect(done.status).toBe(201);
    expect(done.json.withdrawal).toMatchObject({ withdraws: wrong.json.label.id, pumpId: 'wd-1', author: 'Ana', note: 'wrong pump', synced: false });
    const row = db.prepare('SELECT * FROM label_withdrawals WHERE label_id = ?').get(wrong.json.label.id) as Record<string, unknown>;
    expect(row).toMatchObject({ id: done.json.withdrawal.id, author: 'Ana', note: 'wrong pump', synced: 0 });
    expect(row.created_at as number).toBeGreaterThanOrEqual(before);
    // The label itself is kept as it was: what was said and that it was undone.
    expect(db.prepare('SELECT kind FROM labels WHERE id = ?').get(wrong.json.label.id)).toEqual({ kind: 'confirmed-fault' });

    expect((await getJson('/alerts?pumpId=wd-1')).alerts[0].label).toMatchObject({ id: older.json.label.id, kind: 'false-alarm' });
    expect((await getJson(`/alerts/${alert.seq}/episode`)).label).toMatchObject({ id: older.json.label.id });
    expect((await getJson('/labels?pumpId=wd-1')).labels.map((l: any) => l.id)).toEqual([older.json.label.id]);
    const all = (await getJson('/labels?pumpId=wd-1&withdrawn=1')).labels;
    expect(all.map((l: any) => [l.id, l.withdrawal?.author ?? null])).toEqual([
      [wrong.json.label.id, 'Ana'],
      [older.json.label.id, null],
    ]);
  });

  it('withdraws the only label of an alert: the alert has no label again', async () => {
    const alert = await alertOf('wd-2', Date.now() - 5_000);
    const posted = await postJson(`${t.url}/labels`, { pumpId: 'wd-2', kind: 'confirmed-fault', faultType: 'seal-leak', alertSeq: alert.seq, author: 'Ana' });
    expect((await withdraw(posted.json.label.id, { author: 'Ana' })).status).toBe(201);
    expect((await getJson('/alerts?pumpId=wd-2')).alerts[0].label).toBeNull();
    expect((await getJson(`/alerts/${alert.seq}/episode`)).label).toBeNull();
  });

  it('answers 404 PW_LABEL_NOT_FOUND for an unknown id and 409 PW_LABEL_WITHDRAWN, with the first withdrawal, for a second', async () => {
    const unknown = await withdraw('no-such-label', { author: 'Ana' });
    expect(unknown.status).toBe(404);
    expect(unknown.json).toMatchObject({ code: 'PW_LABEL_NOT_FOUND', error: expect.stringContaining('no-such-label') });

    const alert = await alertOf('wd-3', Date.now() - 5_000);
    const posted = await postJson(`${t.url}/labels`, { pumpId: 'wd-3', kind: 'false-alarm', alertSeq: alert.seq, author: 'Ana' });
    const first = await withdraw(posted.json.label.id, { author: 'Ana' });
    const again = await withdraw(posted.json.label.id, { author: 'Ben' });
    expect(again.status).toBe(409);
    expect(again.json).toMatchObject({ code: 'PW_LABEL_WITHDRAWN', error: expect.stringContaining('by Ana'), withdrawal: { id: first.json.withdrawal.id } });
    expect(db.prepare('SELECT count(*) AS n FROM label_withdrawals WHERE label_id = ?').get(posted.json.label.id)).toEqual({ n: 1 });
  });

  it('refuses a body without an author, with unknown fields, with control characters, or not JSON, naming what is wrong, and stores nothing', async () => {
    const alert = await alertOf('wd-4', Date.now() - 5_000);
    const { json } = await postJson(`${t.url}/labels`, { pumpId: 'wd-4', kind: 'false-alarm', alertSeq: alert.seq, author: 'Ana' });
    const id = json.label.id as string;
    const cases: Array<[unknown, string, string]> = [
      [{}, 'PW_BAD_LABEL', 'author is required'],
      [{ author: '   ' }, 'PW_BAD_LABEL', 'author is required'],
      [{ author: 'Ana', kind: 'false-alarm' }, 'PW_BAD_LABEL', 'kind'],
      [{ author: 'Ana\u202e' }, 'PW_BAD_LABEL', 'U+202E'],
      ['not json', 'PW_BAD_JSON', 'not valid JSON'],
      ['', 'PW_BAD_JSON', 'not valid JSON'],
    ];
    for (const [body, code, says] of cases) {
      const r = await withdraw(id, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json, JSON.stringify(body)).toMatchObject({ code, error: expect.stringContaining(says) });
    }
    expect(db.prepare('SELECT count(*) AS n FROM label_withdrawals WHERE label_id = ?').get(id)).toEqual({ n: 0 });
    expect((await getJson('/labels?pumpId=wd-4')).labels).toHaveLength(1);
    expect((await getJson('/labels?withdrawn=yes')).code).toBe('PW_BAD_QUERY');
  });

  it('is refused from a page of another origin, as POST /labels is, and PUT changes no label', async () => {
    const alert = await alertOf('wd-5', Date.now() - 5_000);
    const { json } = await postJson(`${t.url}/labels`, { pumpId: 'wd-5', kind: 'false-alarm', alertSeq: alert.seq, author: 'Ana' });
    const cross = await withdraw(json.label.id, { author: 'Mallory' }, { origin: 'http://evil.example' });
    expect(cross).toMatchObject({ status: 403, json: { code: 'PW_CROSS_ORIGIN' } });
    const site = await withdraw(json.label.id, { author: 'Mallory' }, { 'sec-fetch-site': 'cross-site' });
    expect(site).toMatchObject({ status: 403, json: { code: 'PW_CROSS_ORIGIN' } });
    const put = await fetch(`${t.url}/labels/${json.label.id}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ author: 'Ana' }) });
    expect(put.status).toBe(405);
    expect((await getJson('/alerts?pumpId=wd-5')).alerts[0].label).toMatchObject({ id: json.label.id });
  });
});

describe('LabelStore', () => {
  let dir: string;
  let store: BufferStore;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pumpwatch-labels-'));
  });
  afterAll(() => {
    store?.close();
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });

  it('upgrades a schema-2 buffer in place and keeps its readings', () => {
    const path = join(dir, 'buffer.sqlite');
    const old = new Database(path);
    old.exec('CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (2);');
    for (const step of MIGRATIONS.slice(0, 2)) old.exec(step);
    old.prepare("INSERT INTO readings (pump_id, ts, received_at, vals, imputed, anomaly) VALUES ('p', 1, 1, '{}', 0, 1)").run();
    old.close();
    store = new BufferStore({ path, maxBytes: 1 << 30 });
    store.open();
    expect((store.db.prepare('SELECT version FROM schema_version').get() as { version: number }).version).toBe(MIGRATIONS.length);
    const labels = new LabelStore(store);
    expect(labels.alerts({ limit: 10 }).map((a) => a.pumpId)).toEqual(['p']);
    expect(() => store.db.prepare("INSERT INTO labels (id, pump_id, kind, from_ts, to_ts, author, created_at) VALUES ('x', 'p', 'guess', 1, 1, 'a', 1)").run()).toThrow(/CHECK/);
  });

  it('lists unsynced labels oldest first and marks them synced', () => {
    const labels = new LabelStore(store);
    const base = { pumpId: 'p', faultType: null, note: null, alertSeq: null, fromTs: 1, toTs: 2, author: 'Ana' } as const;
    const a = labels.add({ ...base, kind: 'maintenance' }, 1000);
    const b = labels.add({ ...base, kind: 'false-alarm' }, 2000);
    expect(a.id).not.toBe(b.id);
    expect(labels.unsynced(10).map((l) => l.id)).toEqual([a.id, b.id]);
    labels.markSynced([a.id]);
    expect(labels.unsynced(10).map((l) => l.id)).toEqual([b.id]);
    expect(labels.counts()).toEqual({ total: 2, unsynced: 1 });
    expect(labels.list({ limit: 10 }).map((l) => [l.id, l.synced])).toEqual([
      [b.id, false],
      [a.id, true],
    ]);
  });
});
