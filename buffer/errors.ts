import { statfsSync } from 'node:fs';
import { dirname } from 'node:path';

/** Typed errors of the buffer, each with a stable `code`. */
export class BufferError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BufferError';
  }
}

/**
 * Free space under which a SQLite I/O error on the buffer's volume is taken for a full disk: a
 * write needs a few pages of the WAL, the -shm grows by 32 KiB, so an I/O error with less than
 * this left is, on any volume seen so far, ENOSPC that SQLite reported without its cause.
 */
export const NO_ROOM_BYTES = 1 << 20;

/** The bytes an unprivileged process may still write on the volume holding `path` (statfs); null when it cannot say. */
export function freeBytesBeside(path: string): number | null {
  try {
    const fs = statfsSync(dirname(path));
    return fs.bavail * fs.bsize;
  } catch {
    return null;
  }
}

/**
 * Turns a SQLite (or file system) failure into a BufferError a technician can act on.
 * `path` is the database file, named in the message (it holds no secret). A BufferError passes
 * through unchanged, so wrapping twice never hides its code.
 *
 * SQLite reports some writes that ran out of room as I/O errors, not SQLITE_FULL: growing the
 * -shm index of a buffer opened on a full volume is SQLITE_IOERR_SHMSIZE ("disk I/O error"),
 * which a technician reads as a failing SD card. That code, and any other SQLITE_IOERR_* while
 * the volume has less than NO_ROOM_BYTES free, is PW_BUFFER_DISK_FULL: it clears once there is
 * room (the agent reopens the buffer every 30 s).
 */
export function classifySqliteError(err: unknown, path: string, action: string): BufferError {
  if (err instanceof BufferError) return err;
  const code = (err as { code?: string }).code ?? '';
  const message = (err as Error).message ?? String(err);
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || /ENOSPC/.test(message)) {
    return new BufferError('PW_BUFFER_DISK_FULL', `${action}: the disk holding ${path} is full`, { cause: err });
  }
  if (code.startsWith('SQLITE_IOERR')) {
    const full = ioErrorForLackOfRoom(code, path, message);
    if (full !== null) return new BufferError('PW_BUFFER_DISK_FULL', `${action}: ${full}`, { cause: err });
  }
  if (code.startsWith('SQLITE_READONLY') || code === 'EROFS' || /EROFS|read-only|readonly/i.test(message)) {
    return new BufferError('PW_BUFFER_READONLY', `${action}: ${path} is read-only (${message})`, { cause: err });
  }
  if (code.startsWith('SQLITE_CANTOPEN') || /^E(ACCES|NOENT|PERM|NOTDIR|EXIST|ISDIR)$/.test(code) || /EACCES|ENOENT|EPERM|ENOTDIR/.test(message)) {
    return new BufferError('PW_BUFFER_CANNOT_OPEN', `${action}: cannot open ${path} (${message})`, { cause: err });
  }
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    return new BufferError('PW_BUFFER_CORRUPT', `${action}: ${path} is not a valid database (${message})`, { cause: err });
  }
  if (code.startsWith('SQLITE_CONSTRAINT')) {
    return new BufferError('PW_BUFFER_INVALID_ROW', `${action}: a row breaks the schema (${message})`, { cause: err });
  }
  return new BufferError('PW_BUFFER_IO', `${action}: ${message} (${path})`, { cause: err });
}

/** What an SQLITE_IOERR_* says when the volume is out of room (see classifySqliteError); null when it is not. */
function ioErrorForLackOfRoom(code: string, path: string, message: string): string | null {
  const free = freeBytesBeside(path);
  const sqlite = `SQLite: ${message}, ${code}`;
  if (free !== null && free < NO_ROOM_BYTES) return `the disk holding ${path} is full (${free} bytes free; ${sqlite})`;
  if (code !== 'SQLITE_IOERR_SHMSIZE') return null;
  // The -shm could not grow though the volume shows room: a disk quota or a file size limit.
  const shown = free === null ? 'its free space unknown' : `${(free / 1048576).toFixed(1)} MiB free on the volume`;
  return `the disk holding ${path} is full for this process: SQLite could not grow ${path}-shm (${shown}: a disk quota or a file size limit may be what is full; ${sqlite})`;
}
