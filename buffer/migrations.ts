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
  // their indexes go, which also makes every insert cheaper. Ranges equal the per-row state they
  // replace: a batch marked exactly the unplanned rows of its pump between its bounds.
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
];

export function migrate(db: Database): number {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
  const row = db.prepare('SELECT version FROM schema_version').get() as { version: number } | undefined;
  let version = row?.version ?? 0;
  if (row === undefined) db.prepare('INSERT INTO schema_version (version) VALUES (0)').run();
  if (version > MIGRATIONS.length) {
    throw new BufferError(
      'PW_BUFFER_SCHEMA_NEWER',
      `buffer schema version ${version} is newer than this agent knows (${MIGRATIONS.length}); ` +
        'a newer agent wrote it: refusing to touch it (upgrade the agent or move the file away)',
    );
  }
  for (; version < MIGRATIONS.length; version++) {
    const step = MIGRATIONS[version]!;
    db.transaction(() => {
      db.exec(step);
      db.prepare('UPDATE schema_version SET version = ?').run(version + 1);
    })();
  }
  return version;
}
