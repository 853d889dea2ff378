/**
 * Contributions stored as a BLOB (schema 10, buffer/contributions.ts), on real SQLite files: the
 * JSON every reader gets back is byte for byte what JSON.stringify gave for the same object (what
 * was stored before), float32 model outputs take 4 bytes each, a buffer written by the schema-9
 * agent is upgraded without rewriting a row and its JSON rows read as before beside the new BLOB
 * rows, and a BLOB that cannot be decoded is an error naming its seq and what is wrong.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ContributionNames } from '../../buffer/contributions.js';
import { LabelStore } from '../../buffer/labels.js';
import { MIGRATIONS } from '../../buffer/migrations.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';
import { LoadedModel } from '../../inference/model.js';
import { makeModel, normalValues, rng } from '../support/models.js';
import { schema9File } from '../support/schema9.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

function tempPath(): string {
  const d = mkdtempSync(join(tmpdir(), 'pw-contributions-'));
  dirs.push(d);
  return join(d, 'buffer.sqlite');
}

const T0 = Date.UTC(2026, 11, 6, 8, 0, 0);

export const anomaly = (i: number, contributions: Record<string, number> | null, pumpId = 'pump-a'): PredictionRow => ({
  pumpId,
  ts: T0 + i * 1000,
  receivedAt: T0 + i * 1000 + 5,
  values: { Pressure: 1 + i / 10, Flow: 30 },
  score: 0.9,
  anomaly: true,
  modelVersion: 'm-1',
  imputed: false,
  unscoredReason: null,
  contributions,
});

/** Contributions whose JSON must come back unchanged: the edge cases of JSON.stringify and of float32. */
export const SPECIAL: ReadonlyArray<Record<string, number>> = [
  { Pressure: Math.fround(0.123456789), Flow: Math.fround(0.5), Current: Math.fround(1e-7) },
  { Pressure: Number.NaN, Flow: Number.POSITIVE_INFINITY, Current: Number.NEGATIVE_INFINITY },
  { Pressure: -0, Flow: 1.401298464324817e-45, Current: 3.4028234663852886e38 }, // -0, the smallest and largest float32
  { Pressure: 0.1, Flow: 1 / 3, Current: 1e300 }, // doubles no float32 holds: stored as float64
  { 'sensör "β"\n': Math.fround(0.25), '10': Math.fround(0.5), '2': Math.fround(0.125), b: 1 }, // integer-like keys come first in JSON
  { Pressure: null as unknown as number, Flow: Math.fround(0.75) },
];

function openStore(path: string, onWarning?: (message: string) => void): BufferStore {
  const store = new BufferStore({ path, maxBytes: 2 ** 30, ...(onWarning ? { onWarning } : {}) });
  store.open();
  return store;
}

const stored = (store: BufferStore): Array<{ seq: number; type: string; c: string | Buffer | null }> =>
  store.db.prepare('SELECT seq, typeof(contributions) AS type, contributions AS c FROM readings ORDER BY seq').all() as Array<{ seq: number; type: string; c: string | Buffer | null }>;

describe('contributions stored as a BLOB (schema 10)', () => {
  it('gives back the JSON text JSON.stringify gave, byte for byte, for float32, float64, non-finite, -0, null and integer-like or unicode names', () => {
    const store = openStore(tempPath());
    try {
      const seqs = store.appendBatch(SPECIAL.map((c, i) => anomaly(i, c)));
      const rows = stored(store);
      expect(rows.map((r) => r.type)).toEqual(SPECIAL.map(() => 'blob'));
      // float32 values take 4 bytes each after the 5-byte header; any other double 8.
      expect(rows.map((r) => (r.c as Buffer).length)).toEqual([5 + 12, 5 + 12, 5 + 12, 5 + 24, 5 + 16, 5 + 8]);
      // The text the sync uploads (readRows decodes with the connection's ContributionNames), here from a second instance.
      const names = new ContributionNames(store.db);
      rows.forEach((r, i) => expect(names.text(r.c as Buffer, r.seq)).toBe(JSON.stringify(SPECIAL[i])));
      // What every reader gets: the object JSON.parse gives for the JSON that was stored before schema 10.
      expect(store.rowsBySeq(seqs[0]!, seqs.at(-1)!).map((r) => r.contributions)).toEqual(SPECIAL.map((c) => JSON.parse(JSON.stringify(c))));
      expect(Object.keys(store.rowsBySeq(seqs[4]!, seqs[4]!)[0]!.contributions!)).toEqual(Object.keys(SPECIAL[4]!));
    } finally {
      store.close();
    }
  });

  it("stores a real model's contributions as float32, 4 bytes a feature, and gives back exactly the model's values", async () => {
    const model = await LoadedModel.fromBytes(makeModel({ window: 1 }), 'test');
    const store = openStore(tempPath());
    try {
      const { features } = model.meta;
      const r = rng(11);
      const n = 64;
      const input = new Float32Array(n * features.length);
      for (let k = 0; k < n; k++) {
        const v = normalValues(r, k);
        features.forEach((f, j) => (input[k * features.length + j] = v[f]! * (k % 2 === 0 ? 1 : 40))); // half far off: larger contributions
      }
      const out = await model.run(input, n);
      // As the engine builds them (inference/engine.ts contributionsOf): the ONNX output's float32 values by feature name.
      const all = Array.from({ length: n }, (_, k) => Object.fromEntries(features.map((f, j) => [f, out.contributions![k * features.length + j]!])));
      const seqs = store.appendBatch(all.map((c, k) => anomaly(k, c)));
      expect(stored(store).every((s) => s.type === 'blob' && (s.c as Buffer).length === 5 + 4 * features.length && (s.c as Buffer)[0] === 1)).toBe(true);
      const back = store.rowsBySeq(seqs[0]!, seqs.at(-1)!);
      back.forEach((row, k) => {
        for (const f of features) expect(Object.is(row.contributions![f], all[k]![f])).toBe(true);
      });
    } finally {
      store.close();
      await model.release();
    }
  });

  it('keeps JSON text for contributions a BLOB cannot hold: no names, a value that is not a number, a key __proto__', () => {
    const store = openStore(tempPath());
    try {
      const odd = [{}, { Pressure: 'high' as unknown as number }, JSON.parse('{"__proto__":0.5,"Flow":0.5}') as Record<string, number>];
      const seqs = store.appendBatch(odd.map((c, i) => anomaly(i, c)));
      expect(stored(store).map((r) => [r.type, r.c])).toEqual(odd.map((c) => ['text', JSON.stringify(c)]));
      expect(store.rowsBySeq(seqs[0]!, seqs.at(-1)!).map((r) => JSON.stringify(r.contributions))).toEqual(odd.map((c) => JSON.stringify(c)));
    } finally {
      store.close();
    }
  });

  it('keeps one list of names per distinct set, across reopens', () => {
    const path = tempPath();
    const a = { Pressure: 0.5, Flow: 0.25 };
    const b = { Flow: 0.5, Pressure: 0.25 }; // the same names in another order: another list (another JSON)
    let store = openStore(path);
    store.appendBatch([anomaly(0, a), anomaly(1, b), anomaly(2, a)]);
    store.close();
    store = openStore(path);
    try {
      store.appendBatch([anomaly(3, b), anomaly(4, a)]);
      expect(store.db.prepare('SELECT id, names FROM contribution_names ORDER BY id').all()).toEqual([
        { id: 1, names: '["Pressure","Flow"]' },
        { id: 2, names: '["Flow","Pressure"]' },
      ]);
      expect(store.rowsBySeq(1, 5).map((r) => JSON.stringify(r.contributions))).toEqual([a, b, a, b, a].map((c) => JSON.stringify(c)));
    } finally {
      store.close();
    }
  });

  it('forgets the list a rolled-back commit added: the id it had goes to the next list, and each row keeps its own names', () => {
    const store = openStore(tempPath());
    try {
      const first = { Pressure: 0.5, Flow: 0.25 };
      const broken = { ...anomaly(1, null), pumpId: null as unknown as string }; // NOT NULL: the whole commit is refused
      expect(() => store.appendBatch([anomaly(0, first), broken])).toThrow(expect.objectContaining({ code: 'PW_BUFFER_INVALID_ROW' }));
      expect(store.db.prepare('SELECT count(*) FROM contribution_names').pluck().get()).toBe(0);
      const other = { Current: 0.75 };
      const [s1, s2] = store.appendBatch([anomaly(2, other), anomaly(3, first)]);
      expect(store.rowsBySeq(s1!, s2!).map((r) => r.contributions)).toEqual([other, first]);
    } finally {
      store.close();
    }
  });
});

describe('a schema-9 buffer opened by this agent', () => {
  it('is upgraded to schema 10 without rewriting a row, and its JSON rows read as before beside new BLOB rows of the same content', () => {
    const path = tempPath();
    const old = SPECIAL.map((c, i) => anomaly(i, c, i % 2 === 0 ? 'pump-a' : 'pump-b'));
    schema9File(path, [...old, { ...anomaly(99, null), anomaly: false, score: 0.1 }]);
    const before = new Database(path, { readonly: true });
    const oldCells = before.prepare('SELECT seq, typeof(contributions) AS type, contributions AS c FROM readings ORDER BY seq').all();
    before.close();
    const store = openStore(path);
    try {
      expect(store.db.prepare('SELECT version FROM schema_version').pluck().get()).toBe(MIGRATIONS.length);
      expect(MIGRATIONS.length).toBeGreaterThanOrEqual(10);
      expect(stored(store)).toEqual(oldCells); // nothing rewritten: the same text, still text
      // The same readings again, written by this agent: BLOBs.
      const fresh = store.appendBatch(old.map((r) => ({ ...r, ts: r.ts + 500_000, receivedAt: r.receivedAt + 500_000 })));
      expect(stored(store).filter((r) => fresh.includes(r.seq)).map((r) => r.type)).toEqual(old.map(() => 'blob'));

      // Every reader gives the same contributions for an old row and its new twin.
      const contributions = (rows: ReadonlyArray<{ seq: number; contributions?: Record<string, number> | null }>, seqs: readonly number[]) =>
        seqs.map((s) => JSON.stringify(rows.find((r) => r.seq === s)?.contributions));
      const oldSeqs = old.map((_, i) => i + 1);
      const expected = old.map((r) => JSON.stringify(r.contributions));
      const all = store.rowsBySeq(1, fresh.at(-1)!);
      expect(contributions(all, oldSeqs)).toEqual(expected);
      expect(contributions(all, fresh)).toEqual(expected);
      const predictions = [...store.predictions('pump-a', { limit: 100 }), ...store.predictions('pump-b', { limit: 100 })];
      expect(contributions(predictions, oldSeqs)).toEqual(expected);
      expect(contributions(predictions, fresh)).toEqual(expected);
      const alerts = new LabelStore(store).alerts({ limit: 100 });
      expect(contributions(alerts, oldSeqs)).toEqual(expected);
      expect(contributions(alerts, fresh)).toEqual(expected);
    } finally {
      store.close();
    }
  });
});

describe('a contributions BLOB that cannot be decoded', () => {
  it.each([
    ['a wrong length', (b: Buffer) => b.subarray(0, b.length - 3), /reading seq 2: its contributions \(a BLOB of 14 bytes\) should be 17 bytes: a 5-byte header and one float32 value for each of the 3 names of list 1/],
    ['an unknown list id', (b: Buffer) => Buffer.concat([Buffer.from([1, 9, 0, 0, 0]), b.subarray(5)]), /reading seq 2: its contributions \(a BLOB of 17 bytes\) name feature list 9, which contribution_names does not hold/],
    ['an unknown kind', (b: Buffer) => Buffer.concat([Buffer.from([7]), b.subarray(1)]), /reading seq 2: its contributions \(a BLOB of 17 bytes\) are of kind 7, neither 1 \(float32\) nor 2 \(float64\)/],
    ['no header', () => Buffer.from([1, 1]), /reading seq 2: its contributions \(a BLOB of 2 bytes\) are shorter than their 5-byte header/],
  ])('is PW_BUFFER_INVALID_ROW naming its seq and what is wrong (%s); the store\'s own readers read it as no contributions and warn once', (_, spoil, message) => {
    const warnings: string[] = [];
    const store = openStore(tempPath(), (m) => warnings.push(m));
    try {
      store.appendBatch([0, 1, 2].map((i) => anomaly(i, SPECIAL[0]!)));
      const blob = store.db.prepare('SELECT contributions FROM readings WHERE seq = 2').pluck().get() as Buffer;
      store.db.prepare('UPDATE readings SET contributions = ? WHERE seq = 2').run(spoil(blob));
      // a reader without a way to tell (the sync's: buffer/unreadable.ts) is told by the error
      const strict = new ContributionNames(store.db);
      const stmt = store.db.prepare('SELECT contributions FROM readings WHERE seq = 2').pluck();
      expect(() => strict.text(stmt.get() as Buffer, 2)).toThrow(expect.objectContaining({ code: 'PW_BUFFER_INVALID_ROW', message: expect.stringMatching(message) }));
      // the store's readers (the page, /alerts, the windows read back) get the rest of the row
      const rows = store.rowsBySeq(1, 3);
      expect(rows.map((r) => [r.seq, r.contributions === null])).toEqual([[1, false], [2, true], [3, false]]);
      expect(rows[1]).toMatchObject({ pumpId: 'pump-a', values: anomaly(1, null).values, anomaly: true }); // seq 2 is the second row appended
      store.rowsBySeq(2, 2);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(message);
      expect(warnings[0]).toMatch(/^PW_BUFFER_INVALID_ROW: .*read as no contributions/);
    } finally {
      store.close();
    }
  });
});
