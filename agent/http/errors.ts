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

/** Buffer failures the client can retry later (nothing was committed). */
const BUFFER_STATUS: Record<string, number> = {
  PW_BUFFER_DISK_FULL: 507,
  PW_BUFFER_READONLY: 503,
  PW_BUFFER_CANNOT_OPEN: 503,
  PW_BUFFER_CORRUPT: 503,
  PW_BUFFER_CLOSED: 503,
  PW_BUFFER_IO: 503,
};

/** The one place errors become HTTP answers: `{ code, error }` JSON, never a stack trace. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof BufferError) {
    return new HttpError(BUFFER_STATUS[err.code] ?? 503, err.code, `${err.message}; nothing was stored, retry later`);
  }
  return new HttpError(500, 'PW_INTERNAL', `internal error: ${safeErrorMessage(err)}`);
}
