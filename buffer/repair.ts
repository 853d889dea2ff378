import type Database from 'better-sqlite3';
import { BufferError } from './errors.js';

/**
 * A damaged page of an index (a bad SD-card sector, a torn write), found when the buffer's open
 * fails on it: SQLite counts the readings by the (pump_id, seq) index, so such a page failed every
 * open with PW_BUFFER_CORRUPT, though every row was still in the table. An index holds nothing the
 * table does not, so it is built again from it.
 *
 * `REINDEX` (and `DROP INDEX`) cannot do it: both first free the index's pages by walking its
 * b-tree, and fail on the damaged page ("database disk image is malformed"). So the index's entry
 * is removed from the schema (writable_schema), a VACUUM rewrites the file from the schema that is
 * left (the old index's pages, the damaged one among them, are not copied), and the index is made
 * again from its SQL. The SQL is kept in `meta` in the same transaction as the removal, so a stop
 * (or a full disk failing the VACUUM) between the steps is finished at the next open.
 *
 * Only when SQLite's own check (`PRAGMA quick_check`) names nothing but indexes that have their
 * SQL: damage to a table (rows that may be lost) or to an index SQLite makes for a constraint stays
 * the error it was.
 */

const PENDING = 'repairing_index:';

interface SchemaRow {
  type: string;
  name: string;
  rootpage: number | null;
  sql: string | null;
}

/**
 * The indexes `PRAGMA quick_check` finds damaged (with their SQL), or null when it finds nothing,
 * or anything else (a table's page, a message it does not name an index in).
 */
function damagedIndexes(db: Database.Database): SchemaRow[] | null {
  const found = db.prepare('PRAGMA quick_check').pluck().all() as string[];
  if (found.length === 1 && found[0] === 'ok') return null;
  const schema = db.prepare('SELECT type, name, rootpage, sql FROM sqlite_schema').all() as SchemaRow[];
  const names = new Set<string>();
  for (const line of found.flatMap((f) => f.split('\n'))) {
    if (line.startsWith('*** in database')) continue;
    const tree = /^Tree (\d+) page \d+/.exec(line);
    const named = /(?:wrong # of entries|missing from|non-unique entry) in index (\S+)$/.exec(line);
    const entry = tree !== null ? schema.find((s) => s.rootpage === Number(tree[1])) : named !== null ? schema.find((s) => s.name === named[1]) : undefined;
    if (entry?.type !== 'index' || entry.sql === null) return null;
    names.add(entry.name);
  }
  return names.size === 0 ? null : schema.filter((s) => names.has(s.name));
}

/**
 * Builds the damaged indexes of the open buffer again from their tables when the damage is to
 * indexes only (see above); `warn` is told which. Returns false when it is not (the caller keeps
 * its error). Throws a BufferError when the rebuild itself fails (it is finished at the next open).
 */
export function repairDamagedIndexes(db: Database.Database, path: string, warn: (message: string) => void): boolean {
  const indexes = damagedIndexes(db);
  if (indexes === null) return false;
  db.unsafeMode(true); // writable_schema is refused in SQLite's defensive mode, better-sqlite3's default
  try {
    db.pragma('writable_schema = ON');
    db.transaction(() => {
      const keep = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
      const remove = db.prepare("DELETE FROM sqlite_schema WHERE type = 'index' AND name = ?");
      for (const index of indexes) {
        keep.run(PENDING + index.name, index.sql);
        remove.run(index.name);
      }
    })();
  } finally {
    db.pragma('writable_schema = RESET');
    db.unsafeMode(false);
  }
  const names = indexes.map((i) => i.name).join(', ');
  warn(`the buffer ${path} had a damaged page in its index ${names} (a bad sector of the storage, or a torn write); the index is being built again from the table, which every row is still in`);
  finishIndexRepairs(db, path);
  return true;
}

/** Finishes a rebuild of damaged indexes a stop cut short (their SQL kept in meta): a VACUUM, then the indexes. Nothing to do otherwise. */
export function finishIndexRepairs(db: Database.Database, path: string): void {
  const pending = db.prepare('SELECT key, value FROM meta WHERE key > ? AND key < ?').all(PENDING, `${PENDING}\uffff`) as Array<{ key: string; value: string }>;
  if (pending.length === 0) return;
  const names = pending.map((p) => p.key.slice(PENDING.length)).join(', ');
  try {
    db.exec('VACUUM');
  } catch (err) {
    throw new BufferError(
      'PW_BUFFER_CORRUPT',
      `rebuilding the damaged index ${names} of ${path}: the VACUUM that leaves its damaged pages behind failed (${(err as Error).message}); it needs free disk space about the size of the file, and is tried again at the next open`,
      { cause: err },
    );
  }
  db.transaction(() => {
    for (const p of pending) {
      db.exec(p.value);
      db.prepare('DELETE FROM meta WHERE key = ?').run(p.key);
    }
  })();
}
