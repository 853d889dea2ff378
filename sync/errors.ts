/** Typed errors of the sync, each with a stable `code`; messages never hold secrets. */
export type SyncErrorCode =
  | 'PW_SYNC_NOT_CONFIGURED'
  | 'PW_SYNC_BAD_TARGET'
  | 'PW_SYNC_BLOB_CONFLICT'
  | 'PW_SYNC_BLOB_CORRUPT'
  | 'PW_SYNC_BAD_LINE'
  | 'PW_SYNC_BAD_BLOB_NAME'
  | 'PW_SYNC_BAD_RANGE'
  | 'PW_SYNC_CONTAINER_MISSING'
  | 'PW_SYNC_NO_ANSWER';

export class SyncError extends Error {
  constructor(
    readonly code: SyncErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SyncError';
  }
}
