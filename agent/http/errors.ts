import { BufferError } from '../../buffer/errors.js';
import { safeErrorMessage } from '../../sync/redact.js';

/** An error the status server answers with a given HTTP status and a stable code. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** HTTP status of each buffer failure (nothing was committed or read). */
const BUFFER_STATUS: Record<string, number> = {
  PW_BUFFER_DISK_FULL: 507,
  PW_BUFFER_READONLY: 503,
  PW_BUFFER_CANNOT_OPEN: 503,
  PW_BUFFER_CORRUPT: 503,
  PW_BUFFER_CLOSED: 503,
  PW_BUFFER_IO: 503,
};

/** Buffer failures that do not clear by themselves, with what an operator has to do. */
const NEEDS_OPERATOR: Record<string, string> = {
  PW_BUFFER_CORRUPT: 'restore the file or move it aside (a new one is then created)',
  PW_BUFFER_READONLY: 'make the file and its volume writable',
  PW_BUFFER_CANNOT_OPEN: 'fix the path or its permissions',
  PW_BUFFER_SCHEMA_NEWER: 'run the agent version that wrote the file, or move it aside',
};

/**
 * The one place errors become HTTP answers: `{ code, error }` JSON, never a stack trace.
 * `method` words a buffer failure for a read (GET, HEAD) or a write; without it the wording fits both.
 */
export function toHttpError(err: unknown, method?: string): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof BufferError) return bufferHttpError(err, method);
  return new HttpError(500, 'PW_INTERNAL', `internal error: ${safeErrorMessage(err)}`);
}

function bufferHttpError(err: BufferError, method: string | undefined): HttpError {
  // A buffer that failed to open is answered with the open error, when the closed error carries it as its cause.
  const openError = err.code === 'PW_BUFFER_CLOSED' && err.cause instanceof BufferError ? err.cause : null;
  const failure = openError ?? err;
  let text = openError ? `the buffer is not open: ${openError.message}` : err.message;
  const cause = rootCauseCode(failure);
  if (cause !== undefined && !text.includes(cause)) text += ` [${cause}]`;
  if (failure.code === 'PW_BUFFER_CLOSED') text += ' (GET /healthz names why)';
  const outcome = method === undefined ? 'the request was not carried out' : /^(GET|HEAD)$/i.test(method) ? 'nothing could be read' : 'nothing was stored';
  const action = NEEDS_OPERATOR[failure.code];
  const advice = action === undefined ? `${outcome}, retry later` : `this needs an operator (it does not clear by itself): ${action}; ${outcome}, retry once it is fixed`;
  return new HttpError(BUFFER_STATUS[failure.code] ?? 503, failure.code, `${text}; ${advice}`);
}

/** The code of the SQLite or file system error under a BufferError (SQLITE_NOTADB, EROFS), if any. */
function rootCauseCode(err: BufferError): string | undefined {
  let cause: unknown = err.cause;
  while (cause instanceof BufferError) cause = cause.cause;
  const code = (cause as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}
