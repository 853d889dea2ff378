/**
 * The buffer's "openable from" mark (decision 24): every agent writes into `meta` the oldest schema
 * whose agents may open its file, and opens a file of a newer schema when the agent that wrote it
 * marked it for this agent's schema or older: no step run, the number and the mark left as they
 * are. So a later release whose steps older code may ignore (COMPATIBLE_STEPS) rolls back without
 * stopping ingest. A newer file without the mark, or marked past this agent, is refused as before.
 * The newer file here is made as such a release would leave it: one more step adding a nullable
 * column this agent never reads.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../agent/logger.js';
import { BufferError } from '../../buffer/errors.js';
import { MIGRATIONS, OPENABLE_FROM_KEY, openableFrom } from '../../buffer/migrations.js';
import { probeBufferFile } from '../../buffer/probe.js';
import { followOpenLabels } from '../../buffer/label-follow.js';
import { LabelStore } from '../../buffer/labels.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';
import { startTestAgent } from '../support/agent.js';

const CURRENT = MIGRATIONS.length;
const NEXT = CURRENT + 1;
const T0 = Date.UTC(2026, 11, 8, 9);
const rows = (from: number, n: number): PredictionRow[] =>
  Array.from({ length: n }, (_, i) => ({
    pumpId: 'pump-1', ts: T0 + (from + i) * 1000, receivedAt: T0 + (from + i) * 1000, values: { Pressure: from + i }, score: 0.1, anomaly: false, modelVersion: 'default-2', imputed: false, unscoredReason: null,
  }));

let dir: string;
let path: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pw-openable-from-'));
  path = join(dir, 'buffer.sqlite');
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

function openStore(onMigration?: (message: string) => void): BufferStore {
  const store = new BufferStore({ path, maxBytes: 2 ** 30, ...(onMigration ? { onMigration } : {}) });
  store.open();
  return store;
}

/** The file as a release one step ahead leaves it: its step (a nullable column), its number, and `mark` (none when null). */
function newerFile(mark: string | null): void {
  const store = openStore();
  store.appendBatch(rows(0, 5));
  store.close();
  const db = new Database(path);
  db.exec('ALTER TABLE readings ADD COLUMN next_release_note TEXT');
  db.prepare('UPDATE schema_version SET version = ?').run(NEXT);
  if (mark === null) db.prepare('DELETE FROM meta WHERE key = ?').run(OPENABLE_FROM_KEY);
  else db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(OPENABLE_FROM_KEY, mark);
  db.close();
}

function fileState(): { version: number; mark: string | undefined; rows: number } {
  const db = new Database(path, { readonly: true });
  try {
    return {
      version: (db.prepare('SELECT version FROM schema_version').get() as { version: number }).version,
      mark: (db.prepare('SELECT value FROM meta WHERE key = ?').get(OPENABLE_FROM_KEY) as { value: string } | undefined)?.value,
      rows: (db.prepare('SELECT count(*) AS n FROM readings').get() as { n: number }).n,
    };
  } finally {
    db.close();
  }
}

describe('the buffer mark of the oldest schema that may open it', () => {
  it('is the last step older agents must know: schema 11, as steps 12 (label withdrawals) and 13 (labels that follow an episode) are ones they may ignore', () => {
    expect(openableFrom()).toBe(11);
    expect(openableFrom(13, new Set([12, 13]))).toBe(11);
    expect(openableFrom(13, new Set([12]))).toBe(13);
    expect(openableFrom(12, new Set([12]))).toBe(11);
    expect(openableFrom(12, new Set([11, 12]))).toBe(10);
    expect(openableFrom(12, new Set([11]))).toBe(12);
    openStore().close();
    expect(fileState()).toMatchObject({ version: CURRENT, mark: '11' });
  });

  it('lets an agent of schema 11 open a file with label withdrawals, and its label writes leave the withdrawals right', () => {
    const store = openStore();
    const labels = new LabelStore(store);
    const base = { pumpId: 'pump-1', kind: 'false-alarm', faultType: null, note: null, alertSeq: null, fromTs: T0, toTs: T0 + 1000, author: 'Ana' } as const;
    const under = labels.add(base, T0 + 5000);
    const wrong = labels.add({ ...base, kind: 'maintenance' }, T0 + 6000);
    expect(labels.withdrawals.withdraw(wrong.id, { author: 'Ana', note: null }, T0 + 7000).outcome).toBe('withdrawn');
    store.close();
    // What the schema-11 agent decides (migrations.ts refusalOfNewer): it opens a newer file marked for its schema or older.
    const file = fileState();
    expect(file.version).toBe(CURRENT);
    expect(Number(file.mark)).toBeLessThanOrEqual(11);
    // The only writes a schema-11 agent makes to labels: it adds one, marks labels uploaded, and
    // moves one whose times are not dates to the rejected table (never a withdrawn one: it is never shown).
    const db = new Database(path);
    db.prepare("INSERT INTO labels (id, pump_id, kind, from_ts, to_ts, author, created_at) VALUES ('by-11', 'pump-1', 'maintenance', ?, ?, 'Ben', ?)").run(T0, T0 + 1000, T0 + 4000);
    db.prepare('UPDATE labels SET synced = 1').run();
    db.close();
    const again = openStore();
    const back = new LabelStore(again);
    expect(back.list({ limit: 10 }).map((l) => l.id)).toEqual([under.id, 'by-11']);
    expect(back.newestOverlapping('pump-1', T0, T0)?.id).toBe(under.id);
    expect(back.withdrawals.unsynced(10).map((w) => w.labelId)).toEqual([wrong.id]);
    again.close();
    expect(fileState()).toMatchObject({ version: CURRENT, mark: '11' });
  });

  it('lets an agent of schema 12 open a file with labels that follow an episode, and its label writes leave them right', async () => {
    const store = openStore();
    const alert = (i: number): PredictionRow => ({ ...rows(i, 1)[0]!, anomaly: true, score: 0.9 });
    const [first, , third] = store.appendBatch([alert(0), alert(10), alert(20)]);
    const labels = new LabelStore(store);
    const open = { pumpId: 'pump-1', kind: 'confirmed-fault', faultType: 'bearing', note: null, alertSeq: first!, fromTs: T0, toTs: T0 + 10_000, author: 'Ana', followsEpisode: true } as const;
    const uploaded = labels.add(open, T0 + 11_000);
    const withdrawn = labels.add(open, T0 + 12_000);
    store.close();
    const file = fileState();
    expect(file.version).toBe(CURRENT);
    expect(Number(file.mark)).toBeLessThanOrEqual(12);
    // A schema-12 agent sees both as closed labels with the range they have: it uploads one with
    // that range and marks it, withdraws the other, and adds a label of its own (the column's default).
    const db = new Database(path);
    db.prepare('UPDATE labels SET synced = 1 WHERE id = ?').run(uploaded.id);
    db.prepare("INSERT INTO label_withdrawals (id, label_id, author, note, created_at) VALUES ('w-12', ?, 'Ben', NULL, ?)").run(withdrawn.id, T0 + 13_000);
    db.prepare("INSERT INTO labels (id, pump_id, kind, alert_seq, from_ts, to_ts, author, created_at) VALUES ('by-12', 'pump-1', 'false-alarm', ?, ?, ?, 'Ben', ?)").run(third!, T0 + 20_000, T0 + 20_000, T0 + 14_000);
    db.close();
    // The newer agent again: the alert at T0 + 20 s joined the episode meanwhile, yet neither label
    // moves (the lake has the one's range, the other is withdrawn): both are closed as they stand.
    const again = openStore();
    const back = new LabelStore(again);
    expect(back.list({ limit: 10, withdrawn: true }).map((l) => [l.id, l.followsEpisode])).toEqual([
      ['by-12', false],
      [withdrawn.id, true],
      [uploaded.id, true],
    ]);
    const run = await followOpenLabels(back, again, { now: () => T0 + 21_000, gapMs: 60_000, walk: (seq) => back.episode(seq, 60_000) });
    expect(run).toMatchObject({ following: 0, closed: [], lost: [] });
    expect(back.list({ limit: 10, withdrawn: true }).map((l) => [l.id, l.followsEpisode, l.fromTs, l.toTs])).toEqual([
      ['by-12', false, T0 + 20_000, T0 + 20_000],
      [withdrawn.id, false, T0, T0 + 10_000],
      [uploaded.id, false, T0, T0 + 10_000],
    ]);
    // the withdrawn one goes up (before its withdrawal) with its range, the uploaded one not again
    expect(back.unsynced(10).map((l) => l.id)).toEqual([withdrawn.id, 'by-12']);
    again.close();
    expect(fileState()).toMatchObject({ version: CURRENT, mark: '11' });
  });

  it('lets this agent open a newer file marked for its schema, write and read it, and leaves the number and the mark', () => {
    newerFile(String(CURRENT));
    const told: string[] = [];
    const store = openStore((m) => told.push(m));
    expect(store.appendBatch(rows(5, 3))).toEqual([6, 7, 8]);
    store.close();
    expect(told).toHaveLength(1);
    expect(told[0]).toContain(`of schema ${NEXT}, newer than this agent knows (${CURRENT}), as the agent that wrote it allows agents of schema ${CURRENT} and later`);
    expect(fileState()).toEqual({ version: NEXT, mark: String(CURRENT), rows: 8 });
  });

  it.each([
    ['marked for a newer schema only', String(NEXT), `and marked it for agents of schema ${NEXT} and later`],
    ['without a mark (its agent did not write one)', null, 'a newer agent wrote it: refusing'],
    ['with a mark that is not a schema number', 'eleven', 'a newer agent wrote it: refusing'],
  ])('refuses a newer file %s with PW_BUFFER_SCHEMA_NEWER and leaves it untouched', (_what, mark, says) => {
    newerFile(mark);
    const before = fileState();
    let err: unknown;
    try {
      openStore();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BufferError);
    expect((err as BufferError).code).toBe('PW_BUFFER_SCHEMA_NEWER');
    expect((err as BufferError).message).toContain(`version ${NEXT} is newer than this agent knows (${CURRENT})`);
    expect((err as BufferError).message).toContain(says);
    expect(fileState()).toEqual(before);
  });

  it('lets the drain (its probe of a moved-aside file) take a newer file marked for it, and refuse one marked past it, as the agent decides', () => {
    newerFile(String(CURRENT));
    expect(probeBufferFile(path)).toMatchObject({ schema: NEXT, known: CURRENT });
    const db = new Database(path);
    db.prepare('UPDATE meta SET value = ? WHERE key = ?').run(String(NEXT), OPENABLE_FROM_KEY);
    db.close();
    expect(() => probeBufferFile(path)).toThrow(`and marked it for agents of schema ${NEXT} and later`);
  });

  it('lets the agent take readings on a newer file marked for it: /healthz 200, every reading stored', async () => {
    newerFile(String(CURRENT));
    const lines: Array<{ event?: string; msg: string }> = [];
    const t = await startTestAgent({ PUMPWATCH_DATA_DIR: dir }, { logger: createLogger('info', { write: (l: string) => void lines.push(JSON.parse(l) as { event?: string; msg: string }) }) });
    try {
      expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
      const body = JSON.stringify([0, 1, 2].map((i) => ({ pumpId: 'pump-1', ts: T0 + (10 + i) * 1000, values: { Pressure: 1, Flow: 2, Current: 3 } })));
      const res = await fetch(`${t.url}/readings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(res.status).toBeLessThan(300);
    } finally {
      await t.stop();
    }
    expect(lines.filter((l) => l.event === 'buffer-migration').map((l) => l.msg)).toEqual([expect.stringContaining(`of schema ${NEXT}, newer than this agent knows`)]);
    expect(fileState()).toEqual({ version: NEXT, mark: String(CURRENT), rows: 8 });
  });
});
