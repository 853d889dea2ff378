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
 * Turns a SQLite (or file system) failure into a BufferError a technician can act on.
 * `path` is the database file, named in the message (it holds no secret). A BufferError passes
 * through unchanged, so wrapping twice never hides its code.
 */
export function classifySqliteError(err: unknown, path: string, action: string): BufferError {
  if (err instanceof BufferError) return err;
  const code = (err as { code?: string }).code ?? '';
  const message = (err as Error).message ?? String(err);
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || /ENOSPC/.test(message)) {
    return new BufferError('PW_BUFFER_DISK_FULL', `${action}: the disk holding ${path} is full`, { cause: err });
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
  return new BufferError('PW_BUFFER_IO', `${action}: ${message}`, { cause: err });
}
