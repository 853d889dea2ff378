import { randomBytes } from 'node:crypto';
import type { Database } from 'better-sqlite3';
import { BufferError } from './errors.js';

/**
 * Schema migrations, applied in order inside one transaction each. Never edit a shipped step:
 * append a new one. `schema_version` holds the number of the last step applied.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: readings with their predictions, rejected items, counters, planned sync batches.
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE readings (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    pump_id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    vals TEXT NOT NULL,
    score REAL,
    anomaly INTEGER,
    model_version TEXT,
    imputed INTEGER NOT NULL,
    unscored_reason TEXT,
    shadow_score REAL,
    shadow_model_version TEXT,
    contributions TEXT,
    batch_id INTEGER,
    synced INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX readings_pump_seq ON readings (pump_id, seq);
  CREATE INDEX readings_unplanned ON readings (pump_id, seq) WHERE batch_id IS NULL;
  CREATE INDEX readings_unplanned_anomalies ON readings (seq) WHERE batch_id IS NULL AND anomaly = 1;
  CREATE INDEX readings_batch ON readings (batch_id) WHERE batch_id IS NOT NULL;
  CREATE TABLE rejected (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    raw TEXT NOT NULL,
    reason TEXT NOT NULL,
    received_at INTEGER NOT NULL
  );
  CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
  CREATE TABLE sync_batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL DEFAULT 'readings',
    pump_id TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    row_count INTEGER NOT NULL,
    blob_name TEXT NOT NULL UNIQUE,
    priority INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('planned', 'uploaded', 'failed')),
    sha256 TEXT,
    created_at INTEGER NOT NULL,
    uploaded_at INTEGER,
    error TEXT
  );
  CREATE INDEX sync_batches_state ON sync_batches (state, priority, id);
  `,
  // 2: cursors that stay O(log n) when most rows are synced and kept: the oldest unplanned row
  // (planning) and the oldest unsynced row (status), instead of a scan from the first row.
  `
  CREATE INDEX readings_unplanned_seq ON readings (seq) WHERE batch_id IS NULL;
  CREATE INDEX readings_unsynced_seq ON readings (seq) WHERE synced = 0;
  `,
  // 3: technicians' labels from the status page (uploaded to labels/ for the trainer), and the
  // anomalies the page lists newest first (a small partial index: anomalies are rare).
  `
  CREATE TABLE labels (
    id TEXT PRIMARY KEY,
    pump_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('confirmed-fault', 'false-alarm', 'maintenance')),
    fault_type TEXT,
    note TEXT,
    alert_seq INTEGER,
    from_ts INTEGER NOT NULL,
    to_ts INTEGER NOT NULL,
    author TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    synced INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX labels_alert ON labels (alert_seq) WHERE alert_seq IS NOT NULL;
  CREATE INDEX labels_pump_range ON labels (pump_id, from_ts);
  CREATE INDEX labels_unsynced ON labels (created_at) WHERE synced = 0;
  CREATE INDEX readings_anomalies ON readings (pump_id, seq) WHERE anomaly = 1;
  CREATE INDEX readings_anomalies_seq ON readings (seq) WHERE anomaly = 1;
  `,
  // 4: ingest speed. Every index on readings is written by every insert; the two below doubled the
  // cost of a commit (measured with bench/ingest) for queries that have cheaper paths: per-pump
  // planning walks readings_pump_seq, and the oldest unsynced row is the older of the oldest
  // unplanned row and the first row of a batch not yet uploaded (BufferStore.stats).
  `
  DROP INDEX readings_unplanned;
  DROP INDEX readings_unsynced_seq;
  `,
  // 5: the reading an alert was sent for is marked with the time edgeHub took it.
  `
  ALTER TABLE readings ADD COLUMN alerted_at INTEGER;
  `,
  // 6: sync state as sequence ranges (buffer/ranges.ts). A batch owns the rows of its pump between
  // its first and last seq; planning and uploading write one sync_batches row instead of every
  // reading (bench/sync: those per-row updates took 40 % of a drain). The per-row columns batch_id
  // and synced stay in the table unused (dropping them would rewrite the whole file on upgrade);
  // their indexes go, which also makes every insert cheaper. Before this SQL runs, rangesFromRows
  // rewrites the schema-5 batches so that each range holds exactly the rows its batch carried.
  // readings_sync_state shows the per-row view for people and tests.
  `
  DROP INDEX readings_unplanned_anomalies;
  DROP INDEX readings_batch;
  DROP INDEX readings_unplanned_seq;
  CREATE INDEX sync_batches_pump_range ON sync_batches (pump_id, last_seq);
  CREATE VIEW readings_sync_state AS
    SELECT r.seq AS seq, r.pump_id AS pump_id, b.id AS batch_id, coalesce(b.state = 'uploaded', 0) AS synced
    FROM readings r LEFT JOIN sync_batches b ON b.pump_id = r.pump_id AND r.seq BETWEEN b.first_seq AND b.last_seq;
  `,
  // 7: steps of the wall clock (NTP setting a clock that booted at 1970 or years behind): the rows
  // up to after_seq were received on a clock that read delta_ms less than today's (more, for a
  // step back), so retention measures their age with it (SyncBatches.recordClockStep), not from
  // the old clock's receive time, which made every such synced row years old and deleted it at once.
  `
  CREATE TABLE clock_steps (after_seq INTEGER NOT NULL, delta_ms INTEGER NOT NULL, recorded_at INTEGER NOT NULL);
  `,
  // 8: only the rows above from_seq (the newest when the run that noticed the step opened the
  // buffer) are corrected: the rows of earlier runs were on the clock of their own run (a reboot at
  // 1970 after running on the right clock made them read 56 years in the future). 0 for steps
  // recorded before: every row below after_seq, as then.
  `
  ALTER TABLE clock_steps ADD COLUMN from_seq INTEGER NOT NULL DEFAULT 0;
  `,
  // 9: an anomaly's commit. An index keyed by pump first gets each commit's entries at as many
  // places as the commit has pumps: a tick of 100 readings of 50 pumps writes about 70 pages of
  // each such index to the WAL (a seq- or ts-first one: 1 or 2). Anomalies had two of them,
  // readings_anomalies (pump_id, seq) and readings_anomalies_pump_ts (pump_id, ts): an all-anomaly
  // commit appended 930 KiB against 313 KiB for normal readings. The alerts of a pump are now read
  // by time from readings_anomalies_pump_ts alone (labels.ts), and the sync planner walks all
  // anomalies in seq order on the index below, appended to at its end (ranges.ts
  // newestUnplannedAnomaly); it replaces readings_anomalies_seq (seq), with pump_id so the walk
  // reads the index alone. Building it reads the anomalies once.
  `
  DROP INDEX readings_anomalies;
  DROP INDEX readings_anomalies_seq;
  CREATE INDEX readings_anomalies_seq_pump ON readings (seq, pump_id) WHERE anomaly = 1;
  `,
  // 10: an anomaly's contributions are written as a BLOB (a list id and float32 values,
  // buffer/contributions.ts) instead of JSON text, which was most of what an all-anomaly commit
  // allocated; the lists of feature names they refer to are kept here, one row per distinct list,
  // never deleted (a handful per file; no index: a list is looked up by its names only the first
  // time a connection writes it, a scan of those few rows). The column keeps its TEXT declaration
  // (SQLite stores a BLOB in it as given), and rows written before stay JSON text, read as before:
  // nothing is rewritten, so upgrading a buffer of millions of rows only creates a table.
  `
  CREATE TABLE contribution_names (id INTEGER PRIMARY KEY, names TEXT NOT NULL);
  `,
  // 11: the threshold of the model that scored a row, beside its score, so the lake tells how far a
  // score was from alarming: the bundled default model, models fitted on the gateway and models
  // deployed by URL have no registry record to look it up in. Null for unscored rows and for rows
  // written before this step (nothing is rewritten).
  `
  ALTER TABLE readings ADD COLUMN threshold REAL;
  `,
  // 12: a technician's label withdrawn (DELETE /labels/:id): a row of its own, not a label kind,
  // since widening the kind CHECK would rebuild the labels table. One withdrawal per label
  // (UNIQUE: a second is refused); labels stay as they were, so what was said and undone is kept.
  // Uploaded to labels/ beside the labels (sync/labels-upload.ts) for the trainer to drop the label.
  `
  CREATE TABLE label_withdrawals (
    id TEXT PRIMARY KEY,
    label_id TEXT NOT NULL UNIQUE,
    author TEXT NOT NULL,
    note TEXT,
    created_at INTEGER NOT NULL,
    synced INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX label_withdrawals_unsynced ON label_withdrawals (created_at) WHERE synced = 0;
  `,
  // 13: a label given on an alert whose episode is still running follows that episode (its range
  // moved to the episode's extent) until the episode ends, and is uploaded only then
  // (buffer/label-follow.ts). 1 while it follows; every label stored before is closed (0). No
  // index: the follow job's look for open labels (every 5 s) scans the labels, 0.5 ms for 10 000
  // of them here (a gateway gathers a few a day), and the column alone rewrites nothing.
  `
  ALTER TABLE labels ADD COLUMN follows_episode INTEGER NOT NULL DEFAULT 0;
  `,
];

/**
 * Schema 5 marked each row with its batch, and a batch took only the *unplanned* rows of its pump
 * between its bounds: a bulk batch planned after an anomaly's batch (with readings arriving in
 * between) spans it, e.g. bulk 1..200 around the anomaly's 40..100. As ranges those overlap, and
 * ranges.ts relies on a pump's ranges never overlapping: the rows 40..100 counted synced twice
 * (negative `unsynced`), rows of the bulk batch read as unplanned (planned and uploaded again, or
 * evicted as unsent), and its retry re-encoded rows it never carried.
 *
 * So each batch becomes the runs of consecutive rows of its pump (in seq order) that carry its
 * batch_id, which never overlap. A batch with one run keeps its id and name, its bounds narrowed to
 * the run (rows at its edges may have been evicted since). Of a batch with several runs:
 * - uploaded: one uploaded range per run, named after the batch with `#firstSeq` (the name of an
 *   uploaded range is only a record: nothing is uploaded under it again);
 * - planned or failed: the plan is dropped and its rows are planned again by the next sync cycle
 *   under new names (a range cannot leave out the other batch's rows, and its planned name says
 *   first-last of rows it would no longer hold). Should schema 5 have uploaded it without marking
 *   it, those rows are in Blob Storage twice, under two names; the trainer reads each
 *   (device, seq, time) once.
 * A batch none of whose rows is left (evicted, or removed by retention) is forgotten.
 */
function rangesFromRows(db: Database): void {
  interface V5Batch { id: number; pump_id: string; blob_name: string; state: string }
  const batches = db.prepare('SELECT id, pump_id, blob_name, state FROM sync_batches ORDER BY id').all() as V5Batch[];
  const own = db.prepare('SELECT count(*) AS n, min(seq) AS lo, max(seq) AS hi FROM readings WHERE batch_id = ?');
  const inRange = db.prepare('SELECT count(*) AS n FROM readings WHERE pump_id = ? AND seq BETWEEN ? AND ?');
  const rowsOf = db.prepare('SELECT seq, batch_id FROM readings WHERE pump_id = ? AND seq BETWEEN ? AND ? ORDER BY seq');
  const narrow = db.prepare('UPDATE sync_batches SET first_seq = ?, last_seq = ?, row_count = ? WHERE id = ?');
  const forget = db.prepare('DELETE FROM sync_batches WHERE id = ?');
  const addRun = db.prepare(
    `INSERT INTO sync_batches (kind, pump_id, first_seq, last_seq, row_count, blob_name, priority, state, sha256, created_at, uploaded_at, error)
     SELECT kind, pump_id, ?, ?, ?, blob_name || '#' || ?, priority, state, sha256, created_at, uploaded_at, error FROM sync_batches WHERE id = ?`,
  );
  for (const b of batches) {
    const mine = own.get(b.id) as { n: number; lo: number | null; hi: number | null };
    if (mine.n === 0 || mine.lo === null || mine.hi === null) {
      forget.run(b.id);
      continue;
    }
    if ((inRange.get(b.pump_id, mine.lo, mine.hi) as { n: number }).n === mine.n) {
      narrow.run(mine.lo, mine.hi, mine.n, b.id); // one run: the range holds exactly its rows
      continue;
    }
    if (b.state !== 'uploaded') {
      forget.run(b.id);
      continue;
    }
    const runs: Array<{ first: number; last: number; n: number }> = [];
    let run: { first: number; last: number; n: number } | null = null;
    for (const r of rowsOf.all(b.pump_id, mine.lo, mine.hi) as Array<{ seq: number; batch_id: number | null }>) {
      if (r.batch_id !== b.id) run = null;
      else if (run === null) runs.push((run = { first: r.seq, last: r.seq, n: 1 }));
      else {
        run.last = r.seq;
        run.n++;
      }
    }
    for (const r of runs.slice(1)) addRun.run(r.first, r.last, r.n, r.first, b.id);
    narrow.run(runs[0]!.first, runs[0]!.last, runs[0]!.n, b.id);
  }
  const overlaps = db
    .prepare(
      `SELECT count(*) AS n FROM (SELECT first_seq, lag(last_seq) OVER (PARTITION BY pump_id ORDER BY first_seq, last_seq) AS prev
       FROM sync_batches) WHERE first_seq <= prev`,
    )
    .get() as { n: number };
  if (overlaps.n > 0) {
    throw new BufferError('PW_BUFFER_CORRUPT', `${overlaps.n} sync batch ranges overlap after turning schema-5 batches into ranges: the file was left at schema 5`);
  }
}

/**
 * Indexes made at every open when missing, outside the numbered steps: an index only makes reads
 * cheaper, SQLite keeps it up to date whichever agent writes, and an agent that does not know it
 * never reads it, so it needs no schema version. As a step it would have made the buffer "newer"
 * than the release before: rolled back onto it, that image would refuse the file
 * (PW_BUFFER_SCHEMA_NEWER) and stop taking readings, for an index it does not even use. So an
 * older image opens a buffer that has them, and a newer one adds them to a buffer that lacks them
 * (building them reads the table once, at the first open: 1.0-1.5 s for 400 000 readings, 227 MB,
 * here; an open that finds them takes under a millisecond).
 * - readings_anomalies_ts, readings_anomalies_pump_ts: GET /alerts reads the newest alerts, of all
 *   pumps or of one, by reading time down these (labels.ts), from `since` on when given. Partial,
 *   like the other anomaly indexes: a normal reading's commit does not write them. Since schema 9
 *   the alerts need them (the pump-first seq index they replaced is gone); they are made here all
 *   the same, as any agent that opens the file makes them.
 */
export const OPEN_INDEXES: readonly string[] = [
  'CREATE INDEX IF NOT EXISTS readings_anomalies_ts ON readings (ts) WHERE anomaly = 1',
  'CREATE INDEX IF NOT EXISTS readings_anomalies_pump_ts ON readings (pump_id, ts) WHERE anomaly = 1',
];

/**
 * The steps an agent that knows only the steps before may ignore: after such a step it still reads
 * and writes the file rightly (a table or nullable column it never reads, which the newer agent
 * fills in or does without for rows the older one wrote). Every agent writes the oldest schema that
 * may open its file into `meta` (OPENABLE_FROM_KEY, openableFrom()), and opens a file of a newer
 * schema when that mark is its own schema or older, without running a step or changing the number.
 * So a release whose steps are all listed here rolls back without the file's being refused
 * (PW_BUFFER_SCHEMA_NEWER), from the first release that reads the mark (the evening of 2026-12-07, schema 11) on.
 * Steps 1-11 were made when no agent read a mark, so each is one older agents refuse.
 * A step goes here only when its author has checked both directions: the older agent's writes on
 * the newer file, and the newer agent's reads of rows the older one wrote.
 */
export const COMPATIBLE_STEPS: ReadonlySet<number> = new Set<number>([
  // 12 (label_withdrawals), checked both ways. An agent of schema 11 never reads the table: its
  // views show withdrawn labels again and it uploads no withdrawal, but what it writes stays right:
  // labels are only inserted, marked synced, or (times that are not dates) moved to the rejected
  // table, and such a label is never shown, so never withdrawn. The newer agent reads the labels the
  // older one wrote as labels without a withdrawal, which they are, and uploads the withdrawals
  // still unsynced when it runs again.
  12,
  // 13 (labels.follows_episode), checked both ways. An agent of schema 12 never reads the column:
  // it sees an open label as a closed one with the range it has now, shows it so, and uploads it
  // with that range, as it did every label given on a running alarm. Its writes leave the newer
  // file right: a label it inserts takes the default 0 (closed: it never follows, as that agent's
  // labels never did); it marks labels uploaded (synced = 1), and the newer agent closes an open
  // label found uploaded without moving it (buffer/label-follow.ts), so the lake and the views keep
  // the range uploaded; its withdrawal of an open label is one the newer agent closes the label for
  // in the same way; it moves labels whose times are not dates to the rejected table (deleting the
  // row, the flag with it). The newer agent reads the older one's labels as closed, which they are.
  13,
]);

/** `meta` key holding openableFrom() of the agent that last opened the file knowing all its steps. */
export const OPENABLE_FROM_KEY = 'schema.openableFrom';

/** The oldest schema whose agents may open a file migrated by `steps`: its last step not in `compatible`. */
export function openableFrom(steps: number = MIGRATIONS.length, compatible: ReadonlySet<number> = COMPATIBLE_STEPS): number {
  let n = steps;
  while (n > 0 && compatible.has(n)) n--;
  return n;
}

/** The mark a newer agent left, or null: none (an agent before the mark), no meta table, or not a schema number. */
function openableFromMark(db: Database): number | null {
  try {
    const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(OPENABLE_FROM_KEY) as { value: string } | undefined;
    return row !== undefined && /^[0-9]+$/.test(row.value) ? Number(row.value) : null;
  } catch (err) {
    if (err instanceof Error && /no such table/.test(err.message)) return null;
    throw err;
  }
}

/** Data rewrites that run, in the same transaction, before the SQL of a step (by its number). */
const BEFORE_STEP: Partial<Record<number, (db: Database) => void>> = { 6: rangesFromRows };

/**
 * Told of an upgrade of an existing file (from schema 1 or later; a new file is no upgrade):
 * `starting` before the first step, with the file's size, and `done` after the last, with how long
 * the steps (and the indexes and id made at open) took. The agent answers nothing meanwhile.
 */
export interface MigrationEvents {
  starting?(from: number, to: number, fileBytes: number): void;
  done?(from: number, to: number, ms: number): void;
  /** A file of a newer schema (`version`) that its agent marked for agents of schema `mark` and later, this one among them. */
  newerCompatible?(version: number, mark: number): void;
}

/**
 * The indexes and the buffer id made at every open, whichever agent opens the file (OPEN_INDEXES),
 * and, by an agent that knows every step of the file, the mark of the oldest agents that may open
 * it (`mark`; an agent opening a newer file leaves that agent's mark alone).
 */
function openExtras(db: Database, mark?: number): void {
  db.transaction(() => {
    for (const sql of OPEN_INDEXES) db.exec(sql);
    const made = db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run(BUFFER_ID_KEY, randomBytes(8).toString('hex'));
    // An older file gets its id only now: the batches an older agent planned (and may have uploaded
    // before a crash lost the answer) were encoded without it, and must go up again byte for byte.
    const planned = (db.prepare('SELECT max(id) AS id FROM sync_batches').get() as { id: number | null }).id;
    if (made.changes === 1 && planned !== null) {
      db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run(BUFFER_ID_AFTER_BATCH_KEY, String(planned));
    }
    if (mark !== undefined) {
      db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(OPENABLE_FROM_KEY, String(mark));
    }
  })();
}

/**
 * Whether this build refuses a file of schema `version` (PW_BUFFER_SCHEMA_NEWER, nothing in it
 * touched): null when it knows every step, or when the newer agent that wrote it marked it for
 * this build's schema or older (openableFrom); else the refusal. `migrate` and the drain's probe
 * of a file (probe.ts) decide alike.
 */
export function refusalOfNewer(db: Database, version: number): BufferError | null {
  if (version <= MIGRATIONS.length) return null;
  const mark = openableFromMark(db);
  return mark !== null && mark <= MIGRATIONS.length ? null : schemaNewer(version, mark);
}

function schemaNewer(version: number, mark: number | null): BufferError {
  return new BufferError(
    'PW_BUFFER_SCHEMA_NEWER',
    `buffer schema version ${version} is newer than this agent knows (${MIGRATIONS.length}); ` +
      `a newer agent wrote it${mark === null ? '' : ` and marked it for agents of schema ${mark} and later`}: refusing to touch it (upgrade the agent or move the file away)`,
  );
}

export function migrate(db: Database, events: MigrationEvents = {}): number {
  const t0 = performance.now();
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
  const row = db.prepare('SELECT version FROM schema_version').get() as { version: number } | undefined;
  let version = row?.version ?? 0;
  if (row === undefined) db.prepare('INSERT INTO schema_version (version) VALUES (0)').run();
  if (version > MIGRATIONS.length) {
    const refusal = refusalOfNewer(db, version);
    if (refusal !== null) throw refusal;
    // A newer agent's steps since its mark are all ones this agent's writes leave right: opened as
    // it is, no step run, the number and the mark left for that agent.
    events.newerCompatible?.(version, openableFromMark(db)!);
    openExtras(db);
    return version;
  }
  const from = version;
  const upgrade = from > 0 && from < MIGRATIONS.length;
  if (upgrade) events.starting?.(from, MIGRATIONS.length, (db.pragma('page_count', { simple: true }) as number) * (db.pragma('page_size', { simple: true }) as number));
  for (; version < MIGRATIONS.length; version++) {
    const step = MIGRATIONS[version]!;
    db.transaction(() => {
      BEFORE_STEP[version + 1]?.(db);
      db.exec(step);
      db.prepare('UPDATE schema_version SET version = ?').run(version + 1);
    })();
  }
  openExtras(db, openableFrom());
  if (upgrade) events.done?.(from, version, performance.now() - t0);
  return version;
}

/**
 * The buffer's id in `meta`: 16 random hex characters, made when the file is created (or, for a
 * file made before it existed, at its first open by an agent that knows it) and kept for the
 * file's life. Sequence numbers start again at 1 in a new file (a replaced data volume, a deleted
 * buffer) under the same device id, so a reading in the lake is known by (deviceId, bufferId, seq).
 * Made at open like OPEN_INDEXES, not in a numbered step: an older agent opens the file all the
 * same (it never reads this key), and every open after the first finds it and writes nothing.
 */
export const BUFFER_ID_KEY = 'buffer.id';

/**
 * The highest `sync_batches` id planned before the file had its id (absent in a file made with
 * one). A plan is persisted before its upload and a retry must send the same bytes under the same
 * name, so the lines of those batches leave `bufferId` out, as the agent that planned them did;
 * batch ids only grow (AUTOINCREMENT), so every later plan carries the id.
 */
export const BUFFER_ID_AFTER_BATCH_KEY = 'buffer.id.afterBatch';
