/** Typed trainer errors; `code` is stable, messages say what is wrong and where. */
import { SyncError } from '../sync/errors.js';
import { plainCode, safeErrorMessage, safeFirstLine } from '../sync/redact.js';

export class UsageError extends Error {
  readonly code = 'PW_TRAINER_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export class CsvError extends Error {
  readonly code = 'PW_TRAINER_CSV';
  constructor(
    message: string,
    readonly line?: number,
    readonly column?: string,
  ) {
    super(message);
    this.name = 'CsvError';
  }
}

/**
 * The rows cannot give a model. `option`: the option they do not fit (a `--window` longer than
 * every run of them), which a person changes; without it the rows themselves are too few or too
 * flat (`train` tells that as PW_TRAINER_NO_DATA of its range).
 */
export class FitError extends Error {
  readonly code = 'PW_TRAINER_FIT';
  constructor(
    message: string,
    readonly option?: '--window',
  ) {
    super(message);
    this.name = 'FitError';
  }
}

/** Errors the CLI reports as bad input (exit code 2) rather than as a crash. */
export function isInputError(err: unknown): err is UsageError | CsvError | FitError {
  return err instanceof UsageError || err instanceof CsvError || err instanceof FitError;
}

/**
 * Exit codes of the trainer CLI. `dataFailed` (train-all): sources failed, each on its own data or
 * registry (failsAgain), and nothing else went wrong: a retry of the shard fails the same way, so
 * a Kubernetes Job fails that index at once (podFailurePolicy FailIndex) instead of retrying it.
 * `inconclusive` (drift): nothing judged drifted, but some features could not be judged on the rows given.
 */
export const EXIT = { ok: 0, failure: 1, usage: 2, drifted: 3, dataFailed: 4, inconclusive: 5 } as const;

/**
 * The codes of a source's failure that a rerun of the same range repeats, whatever the storage,
 * the network or the other runs do: its readings (too few usable rows, a blob that is not what
 * its metadata says, a line that does not decode), the options as they meet its readings (a
 * sensor --exclude or --stopped-when names that its readings lack, the live model's rule naming
 * a sensor since removed: PW_TRAINER_USAGE; a fit the rows cannot give, as a window longer than
 * every run of rows: PW_TRAINER_FIT) or its registry (a document a person must repair) need a
 * person. Every other failure (storage, no answer, a conflict, a deploy, one without a code) may
 * pass on a retry.
 */
export const REPEATING_CODES: readonly string[] = ['PW_TRAINER_NO_DATA', 'PW_TRAINER_DATA_CONFLICT', 'PW_TRAINER_USAGE', 'PW_TRAINER_FIT', 'PW_TRAINER_REGISTRY_INVALID', 'PW_TRAINER_REGISTRY_MOVED', 'PW_SYNC_BLOB_CORRUPT', 'PW_SYNC_BAD_LINE'];

/** A failure that a retry of the same run repeats (REPEATING_CODES). */
export function failsAgain(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && REPEATING_CODES.includes(code);
}

export type TrainerErrorCode =
  /** Blob Storage or IoT Hub is not configured (environment variables). */
  | 'PW_TRAINER_NOT_CONFIGURED'
  /** Too little usable data in the range to train or compare. */
  | 'PW_TRAINER_NO_DATA'
  /**
   * Two devices sent readings of the source over the same time (data/collect.ts devicesOverlap):
   * one pump id on two gateways, whose readings cannot be told apart: nothing is trained or judged on them.
   */
  | 'PW_TRAINER_DATA_CONFLICT'
  /** No model registered for the source (drift, deploy, rollback need one). */
  | 'PW_TRAINER_NO_MODEL'
  /** best.json changed under us (another run promoted or rolled back meanwhile). */
  | 'PW_TRAINER_REGISTRY_CONFLICT'
  /**
   * A registry blob is not what the trainer wrote (does not parse, does not match its pointer or
   * record: a model.onnx read whole with other bytes), or best.json is missing while versions are
   * registered and one of them shows that it existed (registry/best-record.ts missingBest).
   */
  | 'PW_TRAINER_REGISTRY_INVALID'
  /**
   * The registry holds no best.json for a source but the uploads' container does: the registry
   * of a trainer older than 2026-12-07, not moved to its own container yet (registry/old-location.ts).
   */
  | 'PW_TRAINER_REGISTRY_MOVED'
  /** The IoT Hub twin update or query failed. */
  | 'PW_TRAINER_DEPLOY'
  /**
   * The module's agent does not read the model's contract or one of its rules (by what it reports
   * in its twin's `state`; an agent that reports nothing reads contract 1 only): its twin is not
   * updated, unless --force-old-agents (deploy/agent-reads.ts).
   */
  | 'PW_TRAINER_AGENT_TOO_OLD'
  /** A twin update would grow the module twin's desired properties past IoT Hub's 32 KB; nothing was written. */
  | 'PW_TRAINER_TWIN_FULL'
  /**
   * A desired model entry's blob is not the model the entry names (another size, or bytes that
   * hash to another sha256): the blob was overwritten since the deploy, or the entry edited; every
   * gateway would refuse it, so refresh-urls does not sign its URL again.
   */
  | 'PW_TRAINER_ENTRY_MISMATCH'
  /**
   * Blob Storage refused or failed a read of readings, labels or the list of sources, or a read or
   * write of the registry (a download cut mid-transfer, too), or did not answer it: no byte moved
   * for the idle limit (sync/deadline.ts, 60 s; trainer/cloud/blob-limits.ts).
   */
  | 'PW_TRAINER_STORAGE';

/**
 * The code a command prints first on a failure's line: the error's own PW_ code (a TrainerError, a
 * SyncError), else `fallback`, the kind of failure the step that failed can only have (a twin
 * update: PW_TRAINER_DEPLOY), so that every failure line can be told apart by its code.
 */
export function failureCode(err: unknown, fallback: TrainerErrorCode): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^PW_[A-Z0-9_]+$/.test(code) ? code : fallback;
}

/** `CODE: message` (secrets removed) of a failure that a command prints on a target's line and goes on. */
export function failureDetail(err: unknown, fallback: TrainerErrorCode): string {
  return `${failureCode(err, fallback)}: ${safeErrorMessage(err)}`;
}

/** A failure of the cloud side (storage, registry, hub) with a stable code; never holds secrets. */
export class TrainerError extends Error {
  constructor(
    readonly code: TrainerErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TrainerError';
  }
}

/**
 * An error of the Blob Storage SDK (a RestError: an HTTP answer or no answer), or a request given
 * up for want of an answer (PW_SYNC_NO_ANSWER, sync/deadline.ts), as a PW_TRAINER_STORAGE
 * TrainerError; other errors (the trainer's own, a corrupt blob) are returned as they are. Told by status and
 * service code, and except for a refusal (4xx) by the first line of the message with secrets
 * removed: the SDK's message is the response body, which a proxy may fill with the request (its
 * signature, its SharedKey authorization), over several lines.
 */
export function storageError(what: string, err: unknown): unknown {
  if (err instanceof SyncError && err.code === 'PW_SYNC_NO_ANSWER') return new TrainerError('PW_TRAINER_STORAGE', `${what} failed: ${err.message}`, { cause: err });
  const e = (typeof err === 'object' && err !== null ? err : {}) as { name?: unknown; statusCode?: unknown; code?: unknown };
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  if (e.name !== 'RestError' && status === undefined) return err;
  const code = plainCode(e.code);
  const detail = status !== undefined && status >= 400 && status < 500 ? '' : safeFirstLine(err);
  const answer = status === undefined ? (code ?? '') : `Blob Storage answered ${status}${code ? ` ${code}` : ''}`;
  const text = [answer, detail].filter((t) => t !== '').join(': ');
  return new TrainerError('PW_TRAINER_STORAGE', `${what} failed: ${text || 'no detail'}`, { cause: err });
}

/** Runs a read of Blob Storage; an SDK error comes out as a PW_TRAINER_STORAGE TrainerError (storageError). */
export async function fromStorage<T>(what: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    throw storageError(what, err);
  }
}
