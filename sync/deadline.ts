/**
 * Time limits of each request the sync sends (and the trainer's reads and writes of Blob Storage:
 * sync/reader.ts, sync/labels-upload.ts, trainer/registry/storage.ts). The SDK's own "timeout" (retryOptions.tryTimeoutInMs)
 * only adds Azure's server-side `?timeout=` parameter: nothing on the gateway ends a request whose
 * connection stays up while answers stop (a carrier proxy holding it, a half-dead NAT), and one
 * such request held the sync in "uploading" forever, with /healthz saying all was well.
 *
 * So each request gets an abort signal of its own (the SDK destroys the socket on abort), fired
 * when no byte has moved for `idleMs` (re-armed by upload progress, so a slow link that keeps
 * moving is never cut), and in any case after a cap that grows with the bytes to send. The
 * failure is a SyncError `PW_SYNC_NO_ANSWER`: an outage that heals (backoff, connectivity offline).
 */
import { SyncError } from './errors.js';

/** Default: a request with no byte moving for this long is given up. */
export const DEFAULT_IDLE_MS = 60_000;
/** The slowest link the cap allows for: a request may take 2 idle windows plus 1 s per this many bytes. */
export const FLOOR_BYTES_PER_SECOND = 500;

/** Longest time one request may take, whatever moves: 2 idle windows plus the bytes at the floor rate. */
export function requestCapMs(bytes: number, idleMs = DEFAULT_IDLE_MS): number {
  return 2 * idleMs + Math.ceil((Math.max(0, bytes) * 1000) / FLOOR_BYTES_PER_SECOND);
}

export interface RequestWatch {
  /** The signal to give the SDK: the caller's (a stop) or this watch's (no answer). */
  signal: AbortSignal;
  /** The SDK's onProgress: each call is a byte moved, so the idle window starts again. */
  onProgress: (e: { loadedBytes: number }) => void;
}

const seconds = (ms: number): string => (ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`);

/**
 * Runs one request under the limits: `what` names it in the failure ("uploading readings/…").
 * `bytes` is the body it sends (0 for none). Rejects with PW_SYNC_NO_ANSWER when a limit fired,
 * with the caller's own reason when `parent` aborted, else as the request did.
 *
 * Once the whole body is handed to the socket, bytes may still wait in the system's send buffer
 * with no progress to show: the wait for the answer then gets the idle window plus the time the
 * body would take at the floor rate, so a slow link draining its buffer is not taken for a stall.
 */
export async function watched<T>(
  what: string,
  limits: { idleMs?: number; bytes?: number; parent?: AbortSignal },
  run: (watch: RequestWatch) => Promise<T>,
): Promise<T> {
  const idleMs = limits.idleMs ?? DEFAULT_IDLE_MS;
  const bytes = limits.bytes ?? 0;
  const capMs = requestCapMs(bytes, idleMs);
  const own = new AbortController();
  const state: { fired: SyncError | null } = { fired: null };
  const fire = (message: string): void => {
    if (state.fired !== null) return;
    state.fired = new SyncError('PW_SYNC_NO_ANSWER', message);
    own.abort(state.fired);
  };
  let idle: NodeJS.Timeout | null = null;
  let idleFor = idleMs;
  const arm = (ms: number): void => {
    if (idle !== null) clearTimeout(idle);
    idleFor = ms;
    idle = setTimeout(() => fire(`no answer from Blob Storage for ${seconds(idleFor)} (${what}): the connection stalled, the request was given up`), ms);
  };
  const cap = setTimeout(() => fire(`Blob Storage took longer than ${seconds(capMs)} (${what}, ${bytes} bytes; the limit is ${seconds(2 * idleMs)} plus 1 s per ${FLOOR_BYTES_PER_SECOND} bytes): the request was given up`), capMs);
  arm(idleMs);
  // The caller's abort (a stop) aborts this request too. By hand: AbortSignal.any needs Node 20.3, and the package runs on any Node 20.
  const parent = limits.parent;
  const followParent = (): void => own.abort(parent!.reason);
  if (parent?.aborted) followParent();
  else parent?.addEventListener('abort', followParent, { once: true });
  const signal = own.signal;
  // Settles on an abort even if the request itself never did (the SDK rejects, but the cycle must end whatever it does).
  let onAbort: (() => void) | null = null;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(state.fired ?? (signal.reason instanceof Error ? signal.reason : new Error('aborted')));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => undefined);
  const onProgress = (e: { loadedBytes: number }): void => {
    if (state.fired !== null) return;
    arm(bytes > 0 && e.loadedBytes >= bytes ? idleMs + Math.ceil((bytes * 1000) / FLOOR_BYTES_PER_SECOND) : idleMs);
  };
  try {
    return await Promise.race([run({ signal, onProgress }), aborted]);
  } catch (err) {
    if (state.fired !== null) throw state.fired; // the SDK's "The operation was aborted" says less than why
    throw err;
  } finally {
    if (idle !== null) clearTimeout(idle);
    clearTimeout(cap);
    if (onAbort !== null) signal.removeEventListener('abort', onAbort);
    parent?.removeEventListener('abort', followParent);
  }
}

/**
 * The pages of a listing, the request of each page under the limits of `watched` (`what` names
 * the listing in the failure: "listing readings/pump-1/2026/01/01/"). `list` starts the listing
 * with the abort signal its every page request gets (the SDK's listBlobsFlat(…).byPage()): the
 * signal of the page in flight is passed on to it. A listing answer has no progress to follow:
 * each page gets the idle window, and a cap of two.
 */
export async function* watchedPages<P>(what: string, limits: { idleMs?: number; parent?: AbortSignal }, list: (abortSignal: AbortSignal) => AsyncIterator<P>): AsyncGenerator<P> {
  const listing = new AbortController();
  const pages = list(listing.signal);
  for (;;) {
    const next = await watched(what, limits, (w) => {
      const follow = (): void => listing.abort(w.signal.reason);
      if (w.signal.aborted) follow();
      else w.signal.addEventListener('abort', follow, { once: true });
      return pages.next().finally(() => w.signal.removeEventListener('abort', follow));
    });
    if (next.done === true) return;
    yield next.value;
  }
}
