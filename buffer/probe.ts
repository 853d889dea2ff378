/**
 * Checks a buffer file before a tool other than its agent opens it (`pumpwatch-agent drain`), and
 * writes nothing to it on a refusal: BufferStore.open() creates a missing file, migrates any SQLite
 * file into a buffer, and shares a file another process has open.
 * - PW_BUFFER_CANNOT_OPEN: no file at the path.
 * - PW_BUFFER_NOT_A_BUFFER: not SQLite, or SQLite without a buffer's tables.
 * - PW_BUFFER_SCHEMA_NEWER: a newer agent migrated it and did not mark it for this build (migrations.ts refusalOfNewer).
 * - PW_BUFFER_IN_USE: another process has it open (a running agent).
 */
import Database from 'better-sqlite3';
import { statSync } from 'node:fs';
import { BufferError, classifySqliteError } from './errors.js';
import { MIGRATIONS, refusalOfNewer } from './migrations.js';

/** Tables every buffer has had since schema 1. */
const BUFFER_TABLES = ['schema_version', 'meta', 'readings', 'rejected', 'sync_batches'];

export interface ProbedBuffer {
  /** The file's schema version; below MIGRATIONS.length, opening it migrates it; above, a newer file marked for this build (opened as it is). */
  schema: number;
  /** The newest schema this build knows. */
  known: number;
  /** Blob names of the newest planned (or uploaded) batches, newest first: the device id they went under. */
  planNames: string[];
}

export function probeBufferFile(path: string): ProbedBuffer {
  const st = statSync(path, { throwIfNoEntry: false });
  if (st === undefined || !st.isFile()) {
    throw new BufferError('PW_BUFFER_CANNOT_OPEN', `${path}: ${st === undefined ? 'no such file' : 'not a regular file'} (give the moved buffer.sqlite itself, its -wal and -shm beside it)`);
  }
  let db: Database.Database | null = null;
  try {
    // Not read-only: the lock test below needs a connection that may write; nothing is written.
    db = new Database(path, { fileMustExist: true, timeout: 0 });
    inUse(db, path); // first: the exclusive locking mode takes effect only before the file is read
    const tables = new Set(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[]);
    const missing = BUFFER_TABLES.filter((t) => !tables.has(t));
    if (missing.length > 0) throw notABuffer(path, `it has no ${missing.join(', ')} table${missing.length > 1 ? 's' : ''}`);
    const schema = db.prepare('SELECT version FROM schema_version').pluck().get() as number | undefined;
    if (typeof schema !== 'number' || !Number.isInteger(schema) || schema < 1) throw notABuffer(path, `its schema_version holds ${JSON.stringify(schema ?? null)}, not a step number`);
    const newer = refusalOfNewer(db, schema);
    if (newer !== null) throw new BufferError('PW_BUFFER_SCHEMA_NEWER', `${path}: ${newer.message}`);
    const planNames = db.prepare('SELECT blob_name FROM sync_batches ORDER BY id DESC LIMIT 100').pluck().all() as string[];
    return { schema, known: MIGRATIONS.length, planNames };
  } catch (err) {
    if (err instanceof BufferError) throw err;
    const code = (err as { code?: string }).code ?? '';
    if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) throw notABuffer(path, `it is not an SQLite database (${(err as Error).message})`);
    throw classifySqliteError(err, path, 'checking the buffer');
  } finally {
    db?.close();
  }
}

/**
 * Throws PW_BUFFER_IN_USE when another connection has the file open. A WAL connection holds a
 * shared lock on the database file for as long as it is open (the agent's, idle or not), and the
 * exclusive locking mode wants an exclusive lock at the first write: SQLITE_BUSY at once (timeout
 * 0) while any other process has it open. Taken and given back here: the file stays free for the
 * tool's own connections (its checkpoints), so an agent started on the file afterwards is not seen.
 */
function inUse(db: Database.Database, path: string): void {
  db.pragma('locking_mode = EXCLUSIVE');
  try {
    db.exec('BEGIN IMMEDIATE');
    db.exec('ROLLBACK');
  } catch (err) {
    if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
    throw new BufferError(
      'PW_BUFFER_IN_USE',
      `${path} is open in another process (a running agent, or a drain): stop it, or move the file out of its data directory, and run this again (SQLite: ${(err as Error).message})`,
      { cause: err },
    );
  }
}

function notABuffer(path: string, why: string): BufferError {
  return new BufferError('PW_BUFFER_NOT_A_BUFFER', `${path} is not a PumpWatch buffer: ${why}`);
}
