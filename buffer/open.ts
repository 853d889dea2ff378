import Database from 'better-sqlite3';
import { accessSync, constants, mkdirSync, statSync, type Stats } from 'node:fs';
import { basename, dirname } from 'node:path';
import { BufferError, classifySqliteError } from './errors.js';
import { migrate, type MigrationEvents } from './migrations.js';

/** A file's identity: its device and inode (a file put at the path later has other ones); null when none is there. */
export function fileIdentity(path: string): string | null {
  const st = statSync(path, { throwIfNoEntry: false });
  return st === undefined ? null : `${st.dev}:${st.ino}`;
}

/** A buffer's database file and its write-ahead log, as one identity (either replaced gives another). */
export function openFileIdentity(path: string): string {
  return `${fileIdentity(path)}|${fileIdentity(`${path}-wal`)}`;
}

/** Page cache of a buffer connection, in KiB. */
export const PAGE_CACHE_KIB = 2000;

/**
 * Opens (creating when missing) the buffer's SQLite file: WAL, synchronous=FULL, migrated to the
 * newest schema, and proven writable. Every failure is a BufferError that names the file:
 * PW_BUFFER_CANNOT_OPEN, PW_BUFFER_READONLY, PW_BUFFER_CORRUPT, PW_BUFFER_DISK_FULL,
 * PW_BUFFER_SCHEMA_NEWER, PW_BUFFER_IO.
 */
export function openDatabase(path: string, migration: MigrationEvents = {}): Database.Database {
  let db: Database.Database | null = null;
  try {
    mkdirSync(dirname(path), { recursive: true });
    db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    db.pragma('journal_size_limit = 67108864');
    // better-sqlite3 builds SQLite with a 16 MB page cache per connection; the buffer's writes go to
    // the right-hand edge of its indexes and its reads are short range scans, so SQLite's own
    // default of 2 MB serves them as well (bench/ingest: same throughput) for 14 MB less RSS.
    db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
    migrate(db, migration);
    probeWritable(db);
    return db;
  } catch (err) {
    closeQuietly(db);
    if (err instanceof BufferError) {
      throw new BufferError(err.code, `opening the buffer ${path}: ${err.message}`, { cause: err });
    }
    const error = classifySqliteError(err, path, 'opening the buffer');
    if (error.code !== 'PW_BUFFER_CANNOT_OPEN' && error.code !== 'PW_BUFFER_READONLY') throw error;
    throw notWritable(path, error) ?? (error.code === 'PW_BUFFER_CANNOT_OPEN' ? folderProblem(path, error) : null) ?? error;
  }
}

/**
 * Why SQLite could not write (SQLITE_READONLY) or create (SQLITE_CANTOPEN) the buffer, when it is
 * a file, or the folder, this process may not write on a writable volume: most often a buffer
 * another user made (an agent or `sqlite3` run as root) that the image's uid 1000 then opens.
 * SQLite says "attempt to write a readonly database", which read as a read-only volume; this names
 * the owner, the mode, the process's uid and the command that fixes it. Null when every one is
 * writable, or when the volume itself is read-only (EROFS: folderProblem and the default say so).
 */
function notWritable(path: string, error: BufferError): BufferError | null {
  const dir = dirname(path);
  const uid = process.geteuid?.();
  const gid = process.getegid?.();
  if (uid === undefined || gid === undefined) return null; // Windows: no uids
  const refused = (file: string): Stats | null => {
    const st = statSync(file, { throwIfNoEntry: false });
    return st === undefined || writableBy(file, st, uid, gid) ? null : st;
  };
  // SQLite makes the -wal and -shm with the database's mode: one chmod 0444 soon covers all three.
  const files = [path, `${path}-wal`, `${path}-shm`].flatMap((file) => {
    const st = refused(file);
    return st === null ? [] : [{ file, st }];
  });
  const folder = files.length === 0 ? refused(dir) : null;
  const first = files[0] ?? (folder === null ? null : { file: dir, st: folder });
  if (first === null) return null;
  const { st } = first;
  const others = files.slice(1).map((f) => basename(f.file));
  const what = folder !== null ? `the folder ${dir}, where SQLite keeps ${path} and its -wal and -shm,` : first.file;
  const nor = others.length > 0 ? ` (nor ${others.join(' nor ')} beside it)` : '';
  const owned = `owned by uid ${st.uid} (gid ${st.gid}, mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`;
  const fix =
    folder === null && files.every((f) => f.st.uid === uid)
      ? `make them writable: chmod u+w ${files.map((f) => f.file).join(' ')}`
      : `give the buffer's folder to the agent's user: chown -R ${uid}:${gid} ${dir} (the container image runs as uid 1000)`;
  return new BufferError(
    error.code,
    `opening the buffer: ${what} is ${owned} and this agent runs as uid ${uid} (gid ${gid}), which may not write it${nor}; the volume is not read-only: ${fix} (${(error.cause as Error | undefined)?.message ?? error.message})`,
    { cause: error.cause },
  );
}

/**
 * Whether this process may write `file`: access(2) (ACLs included), and the mode bits for the
 * effective uid and gid, since access(2) checks the real ones (a process that changed only its
 * effective uid passes it). A read-only volume (EROFS) counts as writable here: not a permission.
 */
function writableBy(file: string, st: Stats, uid: number, gid: number): boolean {
  try {
    accessSync(file, constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') return false;
    return true;
  }
  if (uid === 0) return true;
  if (st.uid === uid) return (st.mode & 0o200) !== 0;
  if (st.gid === gid || (process.getgroups?.() ?? []).includes(st.gid)) return (st.mode & 0o020) !== 0;
  return (st.mode & 0o002) !== 0;
}

/**
 * Why SQLite could not open a file (SQLITE_CANTOPEN), told by its folder. On a read-only volume a
 * buffer closed cleanly (no -wal, no -shm left) fails at `journal_mode = WAL` with CANTOPEN, as
 * SQLite cannot create the -shm beside it: that was reported as PW_BUFFER_CANNOT_OPEN ("fix the
 * path or its permissions"), though it is the volume, and the buffer opens by itself once the volume
 * is writable again (the agent retries every 30 s). Null when the folder says nothing more.
 */
function folderProblem(path: string, error: BufferError): BufferError | null {
  const dir = dirname(path);
  try {
    accessSync(dir, constants.W_OK);
    return null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const options = { cause: error.cause };
    if (code === 'EROFS') {
      return new BufferError('PW_BUFFER_READONLY', `opening the buffer: the volume holding ${dir} is read-only, so SQLite cannot create ${basename(path)}-wal and -shm beside ${path} (${error.message})`, options);
    }
    if (code === 'EACCES' || code === 'EPERM') {
      return new BufferError('PW_BUFFER_CANNOT_OPEN', `opening the buffer: this process may not write in ${dir}, where SQLite keeps ${basename(path)}-wal and -shm (${error.message})`, options);
    }
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      return new BufferError('PW_BUFFER_CANNOT_OPEN', `opening the buffer: the folder ${dir} does not exist (${error.message})`, options);
    }
    return null;
  }
}

/**
 * A file SQLite could only open read-only (chmod 0444, an immutable file, a read-only mount) still
 * opens and reads; it fails at the first write. Writing once in a rolled-back transaction makes
 * that failure happen here, at start-up, instead of on the first reading.
 */
function probeWritable(db: Database.Database): void {
  db.exec('BEGIN IMMEDIATE');
  try {
    db.prepare('UPDATE schema_version SET version = version').run();
  } finally {
    if (db.inTransaction) db.exec('ROLLBACK');
  }
}

function closeQuietly(db: Database.Database | null): void {
  try {
    db?.close();
  } catch {
    // already failing: the original error is the one to report
  }
}
