import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, startTestAgent, type TestAgent } from '../support/agent.js';
import { normalValues, rng } from '../support/models.js';

let t: TestAgent;
let db: Database.Database;
const now = () => new Date().toISOString();

function reading(pumpId: string, values: Record<string, number | null>, ts: string | number = now()) {
  return { pumpId, ts, values };
}

const count = (sql: string, ...args: unknown[]) => (db.prepare(sql).get(...args) as { n: number }).n;

beforeAll(async () => {
  t = await startTestAgent({ PUMPWATCH_MAX_BODY_BYTES: String(4 * 1024 * 1024) });
  db = new Database(join(t.dir, 'data', 'buffer.sqlite'), { readonly: true });
});

afterAll(async () => {
  db.close();
  await t.stop();
});

describe('POST /readings', () => {
  it('answers 202 only after the reading and its prediction are committed to SQLite', async () => {
    const r = await postJson(`${t.url}/readings`, reading('pump-a', { Pressure: 1.4, Flow: 30, Current: 1.4 }));
    expect(r.status).toBe(202);
    expect(r.json).toMatchObject({ accepted: 1, rejected: [] });
    const row = db.prepare("SELECT * FROM readings WHERE pump_id = 'pump-a'").get() as Record<string, unknown>;
    expect(row.model_version).toBe('test-1');
    expect(typeof row.score).toBe('number');
    expect(row.anomaly).toBe(0);
    expect(JSON.parse(row.vals as string)).toEqual({ Pressure: 1.4, Flow: 30, Current: 1.4 });
  });

  it('accepts a JSON array and NDJSON, with epoch-millisecond and ISO timestamps', async () => {
    const arr = await postJson(`${t.url}/readings`, [reading('pump-b', { Pressure: 1.4, Flow: 30, Current: 1.4 }, Date.now()), reading('pump-b', { Pressure: 1.41, Flow: 30, Current: 1.4 })]);
    expect(arr.status).toBe(202);
    expect(arr.json.accepted).toBe(2);
    const nd = [reading('pump-b', { Pressure: 1.4, Flow: 30.1, Current: 1.4 }), reading('pump-b', { Pressure: 1.4, Flow: 30.2, Current: 1.4 })].map((x) => JSON.stringify(x)).join('\n');
    const res = await fetch(`${t.url}/readings`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: `${nd}\n` });
    expect(res.status).toBe(202);
    expect(((await res.json()) as { accepted: number }).accepted).toBe(2);
    expect(count("SELECT count(*) n FROM readings WHERE pump_id = 'pump-b'")).toBe(4);
  });

  it('answers malformed JSON with 400 PW_BAD_JSON and keeps the body in the rejected table', async () => {
    const before = count('SELECT count(*) n FROM rejected');
    const r = await postJson(`${t.url}/readings`, '{"pumpId": "p1", "ts": ');
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('PW_BAD_JSON');
    expect(r.json.error).toMatch(/not valid JSON/);
    expect(count('SELECT count(*) n FROM rejected')).toBe(before + 1);
    const kept = db.prepare('SELECT raw, reason, source FROM rejected ORDER BY id DESC LIMIT 1').get() as Record<string, string>;
    expect(kept.raw).toContain('"pumpId": "p1"');
    expect(kept.source).toBe('http');
  });

  it('keeps the good readings of a request and names the field and problem of each bad one', async () => {
    const before = count('SELECT count(*) n FROM rejected');
    const good = reading('pump-c', { Pressure: 1.4, Flow: 30, Current: 1.4 });
    const bad = [
      { ts: now(), values: { Pressure: 1 } }, // missing pump id
      reading('pump-c', { Pressure: 'NaN' as unknown as number }),
      reading('pump-c', { Pressure: 'Infinity' as unknown as number }),
      { ...reading('pump-c', { Pressure: 1 }), colour: 'red' }, // unknown field
      reading('pump-c', { Pressure: true as unknown as number }),
      { pumpId: 17, ts: now(), values: { Pressure: 1 } },
      reading('pump-c', { Pressure: 1 }, 'yesterday'),
      reading('pump-c', { Pressure: 1 }, Date.now() + 3 * 86_400_000),
      reading('pump-c', { Pressure: 1 }, Date.now() - 2 * 365 * 86_400_000),
      reading('pump/../x', { Pressure: 1 }),
      'just a string',
      reading('pump-c', { Pressure: 1 }, 1e20), // beyond the year 275760: its refusal's wording threw, a 500 for the whole batch
    ];
    const r = await postJson(`${t.url}/readings`, [good, ...bad]);
    expect(r.status).toBe(202);
    expect(r.json.accepted).toBe(1);
    const errors = Object.fromEntries((r.json.rejected as Array<{ index: number; error: string }>).map((e) => [e.index, e.error]));
    expect(errors[1]).toMatch(/^pumpId: is required/);
    expect(errors[2]).toMatch(/^values\.Pressure: expected a finite number or null, got string "NaN"/);
    expect(errors[3]).toMatch(/^values\.Pressure: .*"Infinity"/);
    expect(errors[4]).toMatch(/unknown field "colour"/);
    expect(errors[5]).toMatch(/^values\.Pressure: .*boolean/);
    expect(errors[6]).toMatch(/^pumpId: expected a string, got 17/);
    expect(errors[7]).toMatch(/^ts: .*"yesterday" is not an ISO 8601/);
    expect(errors[8]).toMatch(/^ts: .* ahead of the gateway clock/);
    expect(errors[9]).toMatch(/^ts: .* behind the gateway clock/);
    expect(errors[10]).toMatch(/^pumpId: must be/);
    expect(errors[11]).toMatch(/expected a reading object, got string/);
    expect(errors[12]).toMatch(/^ts: 100000000000000000000 is more than .* ahead of the gateway clock .*is it in microseconds\?\)$/);
    expect(count('SELECT count(*) n FROM rejected')).toBe(before + bad.length);
    expect(count("SELECT count(*) n FROM readings WHERE pump_id = 'pump-c'")).toBe(1);
  });

  it('stores a request\'s refusals once when it is sent again after its good readings could not be committed', async () => {
    const full = await startTestAgent();
    try {
      const store = full.agent.buffer;
      const rejected = () => store.stats().rejected + store.stats().evicted.rejected; // stored ever (making room evicts refusals)
      store.db.pragma(`max_page_count = ${Number(store.db.pragma('page_count', { simple: true })) + 16}`); // room for a refusal, not for 3 000 readings
      const body = [...Array.from({ length: 3_000 }, (_, i) => reading('pump-f', normalValues(rng(i), i))), { pumpId: 'pump-f', values: {} }];
      const first = await postJson(`${full.url}/readings`, body);
      expect(first.status).toBe(507);
      expect(first.json.error).toMatch(/nothing was stored/);
      expect(rejected()).toBe(0); // the answer says nothing was stored: the refusal is not either
      store.db.pragma('max_page_count = 1073741823'); // room again: the sender retries
      const again = await postJson(`${full.url}/readings`, body);
      expect(again.status).toBe(202);
      expect(again.json).toMatchObject({ accepted: 3_000, rejectedTotal: 1 });
      expect(rejected()).toBe(1);
    } finally {
      await full.stop();
    }
  });

  it('answers 400 PW_NO_VALID_READINGS saying an empty array holds no readings', async () => {
    const r = await postJson(`${t.url}/readings`, []);
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ code: 'PW_NO_VALID_READINGS', error: 'the body holds no readings: send one reading, or an array or NDJSON of them', accepted: 0, rejectedTotal: 0 });
  });

  it('answers 400 PW_NO_VALID_READINGS with every reason when no reading is acceptable', async () => {
    const r = await postJson(`${t.url}/readings`, [{ pumpId: 'x' }, { values: {} }]);
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('PW_NO_VALID_READINGS');
    expect(r.json.rejected).toHaveLength(2);
    expect(r.json.error).toMatch(/none of the 2 readings is valid/);
  });

  it('keeps the good lines of NDJSON and rejects the lines that are not JSON', async () => {
    const body = [JSON.stringify(reading('pump-d', { Pressure: 1.4, Flow: 30, Current: 1.4 })), '{not json', JSON.stringify(reading('pump-d', { Pressure: 1.4, Flow: 30, Current: 1.4 }))].join('\n');
    const res = await fetch(`${t.url}/readings`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
    const json = (await res.json()) as { accepted: number; rejected: Array<{ index: number; error: string }> };
    expect(res.status).toBe(202);
    expect(json.accepted).toBe(2);
    expect(json.rejected).toEqual([{ index: 1, error: expect.stringMatching(/line 2 is not valid JSON/) }]);
  });

  it('answers a pretty-printed object with one typo with one PW_BAD_JSON and keeps it as one rejected item', async () => {
    const before = count('SELECT count(*) n FROM rejected');
    const body = `{\n  "pumpId": "pump-i"\n  "ts": ${Date.now()},\n  "values": {"Pressure": 1.4}\n}\n`;
    const r = await postJson(`${t.url}/readings`, body);
    expect(r.status).toBe(400);
    expect(r.json).toEqual({ code: 'PW_BAD_JSON', error: expect.stringMatching(/^the body is not valid JSON: /) });
    expect(count('SELECT count(*) n FROM rejected')).toBe(before + 1);
    expect(db.prepare('SELECT raw FROM rejected ORDER BY id DESC LIMIT 1').get()).toEqual({ raw: body });
  });

  it('reads NDJSON sent as JSON, keeps its good lines and names a bad line by its number, blank lines counted', async () => {
    const good = JSON.stringify(reading('pump-j', { Pressure: 1.4, Flow: 30, Current: 1.4 }));
    const r = await postJson(`${t.url}/readings`, `${good}\n\n{"pumpId":"pump-j", bad}\n${good}\n`);
    expect(r.status).toBe(202);
    expect(r.json).toMatchObject({ accepted: 2, rejected: [{ index: 1, error: expect.stringMatching(/^line 3 is not valid JSON: /) }], rejectedTotal: 1 });
    expect(count("SELECT count(*) n FROM readings WHERE pump_id = 'pump-j'")).toBe(2);
    expect(db.prepare('SELECT raw FROM rejected ORDER BY id DESC LIMIT 1').get()).toEqual({ raw: '{"pumpId":"pump-j", bad}' });
  });

  it('refuses JSON nested deeper than 16 levels with 400 PW_JSON_TOO_DEEP, and keeps and counts it as a refusal', async () => {
    const rejectedTotal = async () => Number(/^pumpwatch_readings_rejected_total (\d+)$/m.exec(await (await fetch(`${t.url}/metrics`)).text())![1]);
    const before = count('SELECT count(*) n FROM rejected');
    const countedBefore = await rejectedTotal();
    // 10 KB, one array 5 000 deep: its refusal's JSON.stringify overflowed the stack (500 PW_INTERNAL, nothing kept).
    const nested = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    // 1.6 MB of readings whose values nest 4 000 deep: JSON.parse of it blocked the event loop for seconds.
    const deepValues = `{"pumpId":"pump-deep","ts":${Date.now()},"values":${'['.repeat(4000)}${']'.repeat(4000)}}`;
    const readings = `[${Array.from({ length: 200 }, () => deepValues).join(',')}]`;
    for (const [body, column] of [[nested, 17], [readings, 66]] as const) {
      const r = await postJson(`${t.url}/readings`, body);
      expect(r.status).toBe(400);
      expect(r.json).toEqual({
        code: 'PW_JSON_TOO_DEEP',
        error: `the body has arrays and objects nested deeper than 16 levels (at line 1, column ${column}); a reading nests 3 deep at most`,
      });
      const kept = db.prepare('SELECT raw, reason, source FROM rejected ORDER BY id DESC LIMIT 1').get() as Record<string, string>;
      expect(kept).toEqual({ raw: body.slice(0, 4096), reason: r.json.error, source: 'http' });
    }
    expect(count('SELECT count(*) n FROM rejected')).toBe(before + 2);
    expect(await rejectedTotal()).toBe(countedBefore + 2);
    // In NDJSON the deep line is refused, the others kept.
    const good = JSON.stringify(reading('pump-deep', { Pressure: 1.4, Flow: 30, Current: 1.4 }));
    const nd = await fetch(`${t.url}/readings`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: `${good}\n${deepValues}\n${good}\n` });
    expect(nd.status).toBe(202);
    expect(await nd.json()).toEqual({ accepted: 2, rejected: [{ index: 1, error: expect.stringMatching(/^line 2 has arrays and objects nested deeper than 16 levels \(at column 66\)/) }], rejectedTotal: 1 });
    expect(count("SELECT count(*) n FROM readings WHERE pump_id = 'pump-deep'")).toBe(2);
    expect(count('SELECT count(*) n FROM rejected')).toBe(before + 3);
  });

  it('accepts a body that starts with a UTF-8 byte order mark', async () => {
    const r = await postJson(`${t.url}/readings`, `\uFEFF${JSON.stringify(reading('pump-k', { Pressure: 1.4, Flow: 30, Current: 1.4 }))}`);
    expect(r.status).toBe(202);
    expect(r.json.accepted).toBe(1);
    expect(count("SELECT count(*) n FROM readings WHERE pump_id = 'pump-k'")).toBe(1);
  });

  it('refuses an impossible date or hour and a value beyond float32, and keeps each with its reason', async () => {
    // The day after the last day of the latest past month shorter than 31 days (Date.parse moves it to the 1st).
    const end = new Date();
    do end.setUTCDate(0);
    while (end.getUTCDate() === 31);
    const noSuchDay = `${end.toISOString().slice(0, 7)}-${end.getUTCDate() + 1}T10:00:00Z`;
    const hour24 = `${new Date(Date.now() - 86_400_000).toISOString().slice(0, 10)}T24:00:00Z`;
    const values = { Pressure: 1.4, Flow: 30, Current: 1.4 };
    const before = count('SELECT count(*) n FROM rejected');
    const r = await postJson(`${t.url}/readings`, [
      reading('pump-l', values, noSuchDay),
      reading('pump-l', values, hour24),
      reading('pump-l', { ...values, Flow: 3.4028235e38 }),
      reading('pump-l', { ...values, Current: -1e39 }),
    ]);
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('PW_NO_VALID_READINGS');
    const reasons = [
      `ts: string "${noSuchDay}" is not a real date-time: ${noSuchDay.slice(0, 7)} has no day ${end.getUTCDate() + 1}`,
      `ts: string "${hour24}" is not a real date-time: hour 24 is not accepted (write 00:00 of the next day)`,
      'values.Flow: 3.4028235e+38 (pump "pump-l") is beyond the float32 range the models take (magnitude at most 3.4028234663852886e+38)',
      'values.Current: -1e+39 (pump "pump-l") is beyond the float32 range the models take (magnitude at most 3.4028234663852886e+38)',
    ];
    expect(r.json.rejected).toEqual(reasons.map((error, index) => ({ index, error })));
    expect(count("SELECT count(*) n FROM readings WHERE pump_id = 'pump-l'")).toBe(0);
    expect(count('SELECT count(*) n FROM rejected')).toBe(before + 4);
    const kept = (db.prepare('SELECT raw, reason FROM rejected ORDER BY id DESC LIMIT 4').all() as Array<{ raw: string; reason: string }>).reverse();
    expect(kept.map((k) => k.reason)).toEqual(reasons);
    expect(kept[2]!.raw).toContain('3.4028235e+38');
  });

  it('refuses a value named __proto__ with its reason and keeps the reading in rejected, instead of storing it without that value', async () => {
    // JSON.parse keeps "__proto__" as a key; the validator's copy of the values used to drop it: 202, and the value was gone.
    const reason = 'values: the value name "__proto__" is reserved: a JavaScript object cannot hold a value by that name';
    const one = `{"pumpId":"pump-p","ts":"${now()}","values":{"Pressure":1.4,"Flow":30,"Current":1.4,"__proto__":7.5}}`;
    const before = count('SELECT count(*) n FROM rejected');
    const alone = await postJson(`${t.url}/readings`, one);
    expect(alone.status).toBe(400);
    expect(alone.json.code).toBe('PW_NO_VALID_READINGS');
    expect(alone.json.rejected).toEqual([{ index: 0, error: reason }]);
    // Beside a good reading of the same request, and a name too long said to be one.
    const long = 'L'.repeat(130);
    const good = JSON.stringify(reading('pump-p', { Pressure: 1.4, Flow: 30, Current: 1.4 }));
    const mixed = await postJson(`${t.url}/readings`, `[${good},${one},${JSON.stringify(reading('pump-p', { Pressure: 1.4, [long]: 1 }))}]`);
    expect(mixed.status).toBe(202);
    expect(mixed.json.accepted).toBe(1);
    expect(mixed.json.rejected).toEqual([
      { index: 1, error: reason },
      { index: 2, error: `values: the value name "${'L'.repeat(40)}…" is 130 characters long, at most 128 allowed` },
    ]);
    expect(count('SELECT count(*) n FROM rejected')).toBe(before + 3);
    const kept = (db.prepare('SELECT raw, reason FROM rejected ORDER BY id DESC LIMIT 3').all() as Array<{ raw: string; reason: string }>).reverse();
    expect(kept.map((k) => k.reason)).toEqual([reason, reason, mixed.json.rejected[1].error]);
    expect(kept[0]!.raw).toContain('"__proto__":7.5');
    // Only the good reading is stored, with all its values.
    const stored = db.prepare("SELECT vals FROM readings WHERE pump_id = 'pump-p'").all() as Array<{ vals: string }>;
    expect(stored.map((row) => JSON.parse(row.vals) as unknown)).toEqual([{ Pressure: 1.4, Flow: 30, Current: 1.4 }]);
  });

  it('answers a body over the size limit with 413 and stores nothing from it', async () => {
    const rowsBefore = count('SELECT count(*) n FROM readings');
    const huge = JSON.stringify(Array.from({ length: 50_000 }, () => reading('pump-e', { Pressure: 1.4, Flow: 30, Current: 1.4 })));
    expect(huge.length).toBeGreaterThan(4 * 1024 * 1024);
    const r = await postJson(`${t.url}/readings`, huge);
    expect(r.status).toBe(413);
    expect(r.json.code).toBe('PW_BODY_TOO_LARGE');
    // It names the setting that counts, as the other refusals do.
    expect(r.json.error).toMatch(/^body of \d+ bytes is over the limit of \d+ bytes \(PUMPWATCH_MAX_BODY_BYTES\); send it in smaller requests/);
    expect(count('SELECT count(*) n FROM readings')).toBe(rowsBefore);
  });

  it('commits 10 000 readings of one request in one micro-batch, each scored', async () => {
    const r0 = rng(3);
    const start = Date.now() - 20_000 * 1000;
    const items = Array.from({ length: 10_000 }, (_, i) => reading(`pump-f${i % 10}`, normalValues(r0, i), start + i * 1000));
    const metricsBefore = await (await fetch(`${t.url}/metrics`)).text();
    const batchesBefore = Number(/pumpwatch_batch_readings_count (\d+)/.exec(metricsBefore)![1]);
    const r = await postJson(`${t.url}/readings`, items);
    expect(r.status).toBe(202);
    expect(r.json.accepted).toBe(10_000);
    expect(count("SELECT count(*) n FROM readings WHERE pump_id LIKE 'pump-f%' AND score IS NOT NULL")).toBe(10_000);
    const metricsAfter = await (await fetch(`${t.url}/metrics`)).text();
    expect(Number(/pumpwatch_batch_readings_count (\d+)/.exec(metricsAfter)![1])).toBe(batchesBefore + 1);
    // normal data of the training distribution: few anomalies (the threshold is a high quantile of training scores)
    expect(count("SELECT count(*) n FROM readings WHERE pump_id LIKE 'pump-f%' AND anomaly = 1")).toBeLessThan(500);
  });

  it('refuses more readings in one request than the configured maximum with 413', async () => {
    const big = await startTestAgent({ PUMPWATCH_MAX_READINGS_PER_REQUEST: '5' });
    try {
      const r = await postJson(`${big.url}/readings`, Array.from({ length: 6 }, () => reading('p', { Pressure: 1 })));
      expect(r.status).toBe(413);
      expect(r.json.code).toBe('PW_TOO_MANY_READINGS');
      expect(r.json.error).toBe('6 readings in one request, at most 5 allowed (PUMPWATCH_MAX_READINGS_PER_REQUEST); split the request');
    } finally {
      await big.stop();
    }
  });
});

describe('inference on the committed rows', () => {
  it('flags a reading far off the training distribution as an anomaly', async () => {
    const r = await postJson(`${t.url}/readings`, [reading('pump-g', { Pressure: 1.4, Flow: 30, Current: 1.4 }), reading('pump-g', { Pressure: 0.2, Flow: 45, Current: 0.6 })]);
    expect(r.status).toBe(202);
    const rows = db.prepare("SELECT anomaly, score FROM readings WHERE pump_id = 'pump-g' ORDER BY seq").all() as Array<{ anomaly: number; score: number }>;
    expect(rows[0]!.anomaly).toBe(0);
    expect(rows[1]!.anomaly).toBe(1);
    expect(rows[1]!.score).toBeGreaterThan(rows[0]!.score * 10);
  });

  it('carries a missing value forward and marks the prediction imputed; stores a reading unscored when a value was never known', async () => {
    const t0 = Date.now() - 10_000; // a time of its own for each (the same time and values again would be a resend)
    const r = await postJson(`${t.url}/readings`, [
      reading('pump-h', { Pressure: 1.4, Flow: 30 }, t0),
      reading('pump-h', { Pressure: 1.4, Flow: 30, Current: 1.4 }, t0 + 1000),
      reading('pump-h', { Pressure: 1.4, Flow: null, Current: 1.4 }, t0 + 2000),
      reading('pump-h', { Pressure: 1.4, Current: 1.4 }, t0 + 3000),
    ]);
    expect(r.status).toBe(202);
    const rows = db.prepare("SELECT score, imputed, unscored_reason FROM readings WHERE pump_id = 'pump-h' ORDER BY seq").all() as Array<{ score: number | null; imputed: number; unscored_reason: string | null }>;
    expect(rows[0]).toMatchObject({ score: null, unscored_reason: 'no value known yet for feature "Current"' });
    expect(rows[1]).toMatchObject({ imputed: 0, unscored_reason: null });
    expect(rows[2]!.imputed).toBe(1);
    expect(rows[2]!.score).not.toBeNull();
    expect(rows[3]!.imputed).toBe(1);
  });
});

describe('status endpoints', () => {
  it('serves /healthz, /readyz, /status, /metrics and /pumps/{id}/predictions', async () => {
    // The counts are compared with those before this test's own readings, whatever ran before it.
    const before = ((await (await fetch(`${t.url}/status`)).json()) as any).readings as { accepted: number; rejected: number };
    const t0 = Date.now() - 10_000;
    const posted = await postJson(`${t.url}/readings`, [
      reading('pump-status', { Pressure: 1.4, Flow: 30, Current: 1.4 }, t0),
      reading('pump-status', { Pressure: 0.2, Flow: 45, Current: 0.6 }, t0 + 1000), // far off the training data: an anomaly
      { pumpId: 'pump-status', ts: 'not-a-time', values: { Pressure: 1 } },
    ]);
    expect(posted.json).toMatchObject({ accepted: 2 });
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${t.url}/readyz`)).status).toBe(200);
    const status = (await (await fetch(`${t.url}/status`)).json()) as any;
    expect(status.models.default).toMatchObject({ version: 'test-1', status: 'active', features: ['Pressure', 'Flow', 'Current'], window: 1 });
    // The start-up model file says where it was read from (PUMPWATCH_DEFAULT_MODEL, or the bundled one).
    expect(status.models.default.origin).toBe(join(t.dir, 'default-model.onnx'));
    expect(status.buffer.rows).toBe(count('SELECT count(*) n FROM readings'));
    expect(status.buffer).toHaveProperty('unsynced');
    expect(status.buffer).toHaveProperty('evicted');
    expect(status.readings.accepted).toBe(before.accepted + 2);
    expect(status.readings.rejected).toBe(before.rejected + 1);
    expect(typeof status.uptimeSeconds).toBe('number');
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toMatch(/^pumpwatch_readings_accepted_total \d+$/m);
    expect(metrics).toMatch(/^pumpwatch_inference_seconds_bucket\{le="0.001"\} \d+$/m);
    expect(metrics).toMatch(/^pumpwatch_buffer_rows \d+$/m);
    const preds = (await (await fetch(`${t.url}/pumps/pump-status/predictions?limit=1`)).json()) as any;
    expect(preds.count).toBe(1);
    expect(preds.predictions[0]).toMatchObject({ anomaly: true, modelVersion: 'test-1' });
    const bad = await fetch(`${t.url}/pumps/pump-status/predictions?limit=abc`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).code).toBe('PW_BAD_QUERY');
    const nf = await fetch(`${t.url}/nope`);
    expect(nf.status).toBe(404);
    expect(((await nf.json()) as any).code).toBe('PW_NOT_FOUND');
  });

  it('gives the rows of a pump after a sequence number (what a poll for new rows asks), and refuses a bad one', async () => {
    const seqs = (await postJson(`${t.url}/readings`, Array.from({ length: 5 }, (_, i) => reading('pump-seq', { Pressure: 1.4, Flow: 30 + i, Current: 1.4 })))).json;
    expect(seqs.accepted).toBe(5);
    const all = ((await (await fetch(`${t.url}/pumps/pump-seq/predictions`)).json()) as any).predictions as Array<{ seq: number }>;
    expect(all).toHaveLength(5);
    const after = ((await (await fetch(`${t.url}/pumps/pump-seq/predictions?afterSeq=${all[2]!.seq}`)).json()) as any).predictions as Array<{ seq: number }>;
    expect(after.map((r) => r.seq)).toEqual(all.slice(3).map((r) => r.seq));
    expect(((await (await fetch(`${t.url}/pumps/pump-seq/predictions?afterSeq=${all[4]!.seq}`)).json()) as any).count).toBe(0);
    for (const bad of ['-1', '1.5', 'x']) {
      const res = await fetch(`${t.url}/pumps/pump-seq/predictions?afterSeq=${bad}`);
      expect(res.status, bad).toBe(400);
      expect(((await res.json()) as any).error).toBe(`afterSeq: "${bad}" must be a sequence number (a non-negative integer)`);
    }
  });

  it('pages through a pump\'s rows after a sequence number in seq order with a next cursor, every row once when a poller is behind by more than limit', async () => {
    const body = Array.from({ length: 23 }, (_, i) => reading(i % 3 === 0 ? 'pump-other' : 'pump-paged', { Pressure: 1.4, Flow: 30 + i, Current: 1.4 }));
    expect((await postJson(`${t.url}/readings`, body)).json.accepted).toBe(23);
    const all = ((await (await fetch(`${t.url}/pumps/pump-paged/predictions`)).json()) as any).predictions.map((r: { seq: number }) => r.seq) as number[];
    expect(all).toHaveLength(15);
    const polled: number[] = [];
    let after = 0;
    let pages = 0;
    const cursors: Array<[unknown, number]> = [];
    for (;;) {
      const page = (await (await fetch(`${t.url}/pumps/pump-paged/predictions?afterSeq=${after}&limit=4`)).json()) as any;
      pages++;
      polled.push(...page.predictions.map((r: { seq: number }) => r.seq));
      const last = page.predictions.at(-1)?.seq ?? after;
      cursors.push([page.next, last]);
      after = last;
      if (page.more !== true || pages > 10) break;
    }
    expect(polled).toEqual(all); // before: the newest 4 (the 11 before them lost), and no next or more
    for (const [next, last] of cursors) expect(next).toBe(last);
    expect(pages).toBe(4);
    // Caught up: nothing follows, and the cursor stays where it was.
    expect(await (await fetch(`${t.url}/pumps/pump-paged/predictions?afterSeq=${after}&limit=4`)).json()).toMatchObject({ count: 0, next: after, more: false });
    // Without afterSeq: the newest rows, nothing after them, their last seq the cursor to poll from.
    expect(await (await fetch(`${t.url}/pumps/pump-paged/predictions?limit=4`)).json()).toMatchObject({ count: 4, next: all.at(-1), more: false });
  });

  it('requires the bearer token when one is set, except for /healthz and /readyz', async () => {
    const secured = await startTestAgent({ PUMPWATCH_STATUS_TOKEN: 's3cret-token' });
    try {
      expect((await fetch(`${secured.url}/healthz`)).status).toBe(200);
      const none = await fetch(`${secured.url}/status`);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/Bearer/);
      expect((await fetch(`${secured.url}/status`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
      // A malformed %-escape in the path is a client's error (not a 500 and an error log line), with or without a token.
      const malformed = await fetch(`${secured.url}/pumps/%E0%A4/predictions`);
      expect(malformed.status).toBe(404);
      expect(((await malformed.json()) as any).code).toBe('PW_NOT_FOUND');
      expect((await fetch(`${secured.url}/status`, { headers: { authorization: 'Bearer s3cret-token' } })).status).toBe(200);
      const post = await postJson(`${secured.url}/readings`, reading('p', { Pressure: 1 }));
      expect(post.status).toBe(401);
      expect(JSON.stringify(post.json)).not.toContain('s3cret-token');
    } finally {
      await secured.stop();
    }
  });

  it('takes a token read with spaces or a newline at its ends as the token without them (a header cannot carry them)', async () => {
    // Before, such a token was taken as it was, and every request was then refused: the page's too.
    const secured = await startTestAgent({ PUMPWATCH_STATUS_TOKEN: ' s3cret-token\n' });
    try {
      expect((await fetch(`${secured.url}/status`, { headers: { authorization: 'Bearer s3cret-token' } })).status).toBe(200);
      expect((await fetch(`${secured.url}/status`, { headers: { authorization: 'Bearer s3cret-token2' } })).status).toBe(401);
      expect((await fetch(`${secured.url}/status`)).status).toBe(401);
    } finally {
      await secured.stop();
    }
  });
});
