/**
 * Retries of the sync: a classifier says *whether* a failure can heal by itself (a network outage,
 * throttling, a server error) or needs a person (wrong credentials, a missing container, a request
 * the service refuses); a policy says *when* to try again: exponential backoff with jitter and a
 * cap for the first kind, a slow fixed pace for the second, and never sooner than Retry-After.
 */
import { BufferError } from '../buffer/errors.js';
import { MAX_RETRY_AFTER_MS, parseRetryAfter as parseRetryAfterHeader, parseRetryAfterMs } from '../lib/retry-after.js';
import { SyncError } from './errors.js';
import { plainCode, safeErrorMessage, safeFirstLine } from './redact.js';

export type FailureKind =
  | 'offline' // no answer: refused, reset, timed out, name not resolved, a request that stalled
  | 'throttled' // 429 / 503: the service asks us to slow down
  | 'server' // 408, other 5xx
  | 'unauthorized' // 401 / 403: credentials or SAS wrong, expired or lacking a permission (or the gateway clock far off: that one heals)
  | 'container-missing' // 404 ContainerNotFound, and we may not (or could not) create it
  | 'conflict' // a different blob already has a planned batch's name
  | 'rejected' // another 4xx: the request itself is refused
  | 'misconfigured' // the target cannot be used as configured (malformed connection string or URL)
  | 'buffer' // the buffer could not be read or written (a corrupt page, locked, I/O): not the network
  | 'local'; // another failure on the gateway (encoding)

export interface SyncFailure {
  kind: FailureKind;
  /** True when the failure can go away without anyone changing anything. */
  heals: boolean;
  status?: number;
  /** The service's error code (AuthorizationFailure, ContainerNotFound, …) or the socket error code. */
  code?: string;
  retryAfterMs?: number;
  /** What went wrong, secrets removed. */
  message: string;
  /** A buffer failure's own words (message without the sync's wording), for the buffer's health check. */
  detail?: string;
}

const HEALS: Record<FailureKind, boolean> = {
  offline: true,
  throttled: true,
  server: true,
  unauthorized: false,
  'container-missing': false,
  conflict: false,
  rejected: false,
  misconfigured: false,
  buffer: true, // by its code: see BUFFER_STAYS
  local: true,
};

/** Buffer failures that stay until someone acts (the file itself is wrong); the others pass (a lock, a full disk). */
const BUFFER_STAYS = new Set(['PW_BUFFER_CORRUPT', 'PW_BUFFER_SCHEMA_NEWER', 'PW_BUFFER_INVALID_ROW', 'PW_BUFFER_CANNOT_OPEN']);

/**
 * A failure of the buffer met by the sync (its reads on the encoder thread or the main thread, its
 * plans and marks). It once read "Blob Storage is unreachable … database disk image is malformed"
 * and left connectivity and /healthz saying all was well while one bad page stopped every upload.
 */
function bufferFailure(code: string, message: string): SyncFailure {
  const detail = safeFirstLine(message);
  return { kind: 'buffer', heals: !BUFFER_STAYS.has(code), code, message: `the buffer failed (${code}): ${detail}`, detail };
}

/** A SQLite error not yet classified by the buffer (better-sqlite3's SqliteError, code SQLITE_…). */
export function isSqliteError(err: unknown): err is Error & { code: string } {
  const code = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('SQLITE_');
}

interface HttpLikeError {
  name?: string;
  code?: string;
  statusCode?: number;
  message?: string;
  response?: { headers?: { get(name: string): string | undefined } };
}

/** Milliseconds from an x-ms-retry-after-ms or Retry-After header (lib/retry-after.ts: capped at an hour). */
export function parseRetryAfter(err: unknown, now = Date.now()): number | undefined {
  const headers = (err as HttpLikeError | null)?.response?.headers;
  if (!headers || typeof headers.get !== 'function') return undefined;
  return parseRetryAfterMs(headers.get('x-ms-retry-after-ms')) ?? parseRetryAfterHeader(headers.get('retry-after'), now) ?? undefined;
}

function kindOf(err: HttpLikeError): FailureKind {
  const status = err.statusCode;
  if (status === undefined) return err.name === 'SyncError' ? 'local' : 'offline';
  if (status === 401 || status === 403) return 'unauthorized';
  if (status === 404 && err.code === 'ContainerNotFound') return 'container-missing';
  if (status === 429 || status === 503) return 'throttled';
  // A container deleted a moment ago cannot be created again for a while: it passes by itself.
  if (status === 409 && (err.code === 'ContainerBeingDeleted' || err.code === 'ContainerBeingDisabled')) return 'throttled';
  if (status === 408 || status >= 500) return 'server';
  return 'rejected';
}

/** A failure classified where it happened (sync's encoder thread), carried across as data and rethrown as it was. */
export class ClassifiedFailure extends Error {
  constructor(readonly failure: SyncFailure) {
    super(failure.message);
    this.name = 'ClassifiedFailure';
  }
}

/** What kind of failure an error is, with a message safe to log and show. */
export function classifyFailure(err: unknown, now = Date.now()): SyncFailure {
  if (err instanceof ClassifiedFailure) return { ...err.failure };
  // By name too: the same class loaded twice (sources and dist/ side by side) is still the buffer's.
  if (err instanceof BufferError || (err instanceof Error && err.name === 'BufferError')) return bufferFailure((err as BufferError).code, err.message);
  if (isSqliteError(err)) return bufferFailure(err.code, err.message);
  // A label upload wraps the service's error: its kind is the service's (a 403 is not an outage).
  if (err instanceof Error && err.name === 'LabelUploadError' && err.cause !== undefined) {
    const inner = classifyFailure(err.cause, now);
    return { ...inner, message: `${safeFirstLine((err as Error & { summary?: string }).summary ?? 'uploading labels failed')}: ${inner.message}` };
  }
  if (err instanceof SyncError) {
    const kinds: Partial<Record<string, FailureKind>> = {
      PW_SYNC_BLOB_CONFLICT: 'conflict',
      PW_SYNC_CONTAINER_MISSING: 'container-missing',
      PW_SYNC_BAD_TARGET: 'misconfigured',
      PW_SYNC_NOT_CONFIGURED: 'misconfigured',
      PW_SYNC_NO_ANSWER: 'offline', // sync/deadline.ts gave up a request that stalled
    };
    const kind = kinds[err.code] ?? 'local';
    return { kind, heals: HEALS[kind], code: err.code, message: safeErrorMessage(err) };
  }
  const e = (typeof err === 'object' && err !== null ? err : { message: String(err) }) as HttpLikeError;
  const kind = kindOf(e);
  const failure: SyncFailure = { kind, heals: HEALS[kind], message: describe(kind, e) };
  const skew = kind === 'unauthorized' ? clockSkew(e, now) : null;
  if (skew !== null) {
    // Not the credentials' fault: NTP usually sets the clock within minutes, so retry at the normal pace.
    failure.heals = true;
    failure.message = `Blob Storage refused the request (${statusAndCode(e)}): ${skew}: fix the clock (NTP); the credentials may be fine.`;
  }
  if (e.statusCode !== undefined) failure.status = e.statusCode;
  if (e.code !== undefined) failure.code = e.code;
  const retryAfterMs = parseRetryAfter(err, now);
  if (retryAfterMs !== undefined) failure.retryAfterMs = retryAfterMs;
  return failure;
}

/**
 * Azure refuses a request signed with the account key whose x-ms-date is more than 15 minutes off
 * its own time (403 AuthenticationFailed, "Request date header too old"), and a SAS whose start or
 * expiry the gateway computed from a wrong clock: both read as wrong credentials, and an operator
 * rotated a key that was fine. The answer's Date header is the service's own time (no secret).
 */
export const CLOCK_SKEW_MS = 10 * 60_000;

function clockSkew(e: HttpLikeError, now: number): string | null {
  const headers = e.response?.headers;
  const value = headers && typeof headers.get === 'function' ? headers.get('date') : undefined;
  const theirs = value === undefined ? NaN : Date.parse(value);
  if (!Number.isFinite(theirs) || Math.abs(now - theirs) <= CLOCK_SKEW_MS) return null;
  const gap = Math.abs(now - theirs) / 60_000;
  const apart = gap < 120 ? `${Math.round(gap)} min` : `${(gap / 60).toFixed(1)} h`;
  const at = (ms: number): string => `${new Date(ms).toISOString().slice(0, 16)}Z`;
  return `the gateway clock reads ${at(now)}, Blob Storage's ${at(theirs)} (${apart} apart)`;
}

/**
 * A refusal of a SAS credential whose known expiry (`se`) has passed says so, so the failure itself
 * names the cause instead of the hourly expiry check. A refusal put down to the clock stays as it is.
 */
export function explainExpiry(failure: SyncFailure, expiresAt: number | null, now: number): SyncFailure {
  if (failure.kind !== 'unauthorized' || failure.heals || expiresAt === null || now < expiresAt) return failure;
  const what = [failure.status, plainCode(failure.code)].filter((v) => v !== undefined).join(' ');
  return {
    ...failure,
    message: `Blob Storage refused the credentials (${what || 'unauthorized'}): the SAS expired at ${new Date(expiresAt).toISOString()}; replace it (a restart-only setting).`,
  };
}

function statusAndCode(e: HttpLikeError): string {
  const code = plainCode(e.code);
  return `${e.statusCode ?? code ?? 'error'}${e.statusCode !== undefined && code ? ` ${code}` : ''}`;
}

/**
 * The message of a failure. A refusal (401/403, another 4xx) is told by its status and code alone:
 * its body may come from a proxy that echoes the request, signature included, in a form no pattern
 * foresees, and it ends up in the log, /status, the public /healthz and the buffer's batch record.
 */
function describe(kind: FailureKind, e: HttpLikeError): string {
  const what = statusAndCode(e);
  // The agent reads, creates and writes blobs, never lists (README, "Credentials"): a container SAS needs sp=rcw.
  if (kind === 'unauthorized') return `Blob Storage refused the credentials (${what}): check the connection string or SAS URL (key, expiry; a container SAS needs permissions rcw).`;
  if (kind === 'rejected') return `Blob Storage refused the request (${what}).`;
  const detail = safeFirstLine(e.message ?? '');
  switch (kind) {
    case 'container-missing':
      return `the blob container does not exist (${what}) and cannot be created with these settings. ${detail}`;
    case 'offline':
      return `Blob Storage is unreachable (${what}). ${detail}`;
    case 'local':
      return `a failure on the gateway (${what}): ${detail}`;
    default:
      return `Blob Storage answered ${what}. ${detail}`;
  }
}

export interface BackoffOptions {
  /** First delay after a failure that heals. */
  initialMs: number;
  /** Cap of the exponential delays. */
  maxMs: number;
  /** Pace of retries after a failure that needs a person (credentials, container). */
  slowMs: number;
  factor?: number;
  /**
   * Share of each exponential delay taken off at random (0–1), so a fleet of gateways does not
   * retry in step. The slow pace is never shortened: it only gets up to SLOW_SPREAD added (0 when this is 0).
   */
  jitter?: number;
  /** A Retry-After beyond this is not trusted further. */
  maxRetryAfterMs?: number;
}

/** Most that is added at random to the slow pace (10 %), so a fleet blocked together does not retry in step. */
const SLOW_SPREAD = 0.1;

/** When to try again: call `next()` after each failure, `reset()` after a success. */
export class Backoff {
  private failures = 0;

  constructor(
    private options: BackoffOptions,
    private readonly random: () => number = Math.random,
  ) {}

  get consecutiveFailures(): number {
    return this.failures;
  }

  /** Changes the policy (a live setting); the count of failures stays. */
  configure(options: BackoffOptions): void {
    this.options = options;
  }

  /** Milliseconds to wait before the next attempt after `failure`. */
  next(failure: Pick<SyncFailure, 'heals' | 'retryAfterMs'>): number {
    const { initialMs, maxMs, slowMs, factor = 2, jitter = 0.5, maxRetryAfterMs = MAX_RETRY_AFTER_MS } = this.options;
    this.failures++;
    const share = Math.min(1, Math.max(0, jitter));
    const delay = failure.heals
      ? Math.min(maxMs, initialMs * factor ** Math.min(this.failures - 1, 60)) * (1 - share * this.random())
      : Math.max(slowMs, initialMs) * (1 + Math.min(SLOW_SPREAD, share) * this.random()); // never sooner than the slow pace
    const retryAfter = Math.min(failure.retryAfterMs ?? 0, maxRetryAfterMs);
    return Math.round(Math.max(delay, retryAfter));
  }

  reset(): void {
    this.failures = 0;
  }
}
