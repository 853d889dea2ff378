/**
 * Connections the hub closes shortly after it accepted them ("flaps"). IoT Hub (and the local hub)
 * closes the older connection when another client opens one with the same identity, so two agents
 * under one module identity take each other's connection over; with the SDK reconnecting at once,
 * that was thousands of connections a minute, and IoT Hub throttles a device that reconnects that
 * often. Consecutive flaps are waited out with a growing delay; a connection that lasts the window
 * ends the streak. Pure bookkeeping on a monotonic clock: the connection does the waiting.
 */
import { backoffDelay, type BackoffPolicy } from '../../inference/backoff.js';

/** A connection lost within this long of being made is a flap. */
export const FLAP_WINDOW_MS = 60_000;
/** Delay before the reconnect after the n-th flap in a row: 1 s doubling, with jitter, at most 5 min. */
export const FLAP_BACKOFF: BackoffPolicy = { baseMs: 1_000, capMs: 5 * 60_000 };
/**
 * Flaps in a row before the log, /status and /healthz name another client with the same identity
 * as the likely cause: one or two can be a hub restart or a network cut.
 */
export const FLAPS_BEFORE_WARNING = 3;
/** While the flaps go on, the warning is repeated at most this often (with the count since). */
export const FLAP_WARN_INTERVAL_MS = 10 * 60_000;

export interface Flap {
  /** Flaps in a row, this one included. */
  flaps: number;
  /** How long to wait before connecting again. */
  delayMs: number;
}

export class FlapTracker {
  private connectedAt: number | null = null;
  private flaps = 0;
  private lastWarnAt: number | null = null;

  constructor(private readonly opts: { backoff?: BackoffPolicy; windowMs?: number } = {}) {}

  connected(now: number): void {
    this.connectedAt = now;
  }

  /** The connection was lost: the flap, with the delay to wait, or null for a connection that lasted. */
  lost(now: number): Flap | null {
    const at = this.connectedAt;
    this.connectedAt = null;
    if (at === null) return null;
    if (now - at >= this.windowMs) {
      this.flaps = 0;
      return null;
    }
    this.flaps++;
    return { flaps: this.flaps, delayMs: backoffDelay(this.opts.backoff ?? FLAP_BACKOFF, this.flaps) };
  }

  /** Flaps in a row now: 0 once the current connection has lasted the window. */
  count(now: number): number {
    if (this.connectedAt !== null && now - this.connectedAt >= this.windowMs) return 0;
    return this.flaps;
  }

  /** Whether a streak this long is reason to name a duplicated identity. */
  suspicious(now: number): boolean {
    return this.count(now) >= FLAPS_BEFORE_WARNING;
  }

  /** Whether the warning is due for this flap: the first suspicious one, then at most every FLAP_WARN_INTERVAL_MS. */
  warnNow(now: number): boolean {
    if (!this.suspicious(now)) return false;
    if (this.lastWarnAt !== null && now - this.lastWarnAt < FLAP_WARN_INTERVAL_MS) return false;
    this.lastWarnAt = now;
    return true;
  }

  /**
   * Ends a streak the current connection has outlasted; returns its length (0: there was none, or
   * the connection is still young), so the caller can say once that it is over.
   */
  settle(now: number): number {
    if (this.flaps === 0 || this.count(now) !== 0) return 0;
    const n = this.flaps;
    this.flaps = 0;
    this.lastWarnAt = null;
    return n;
  }

  private get windowMs(): number {
    return this.opts.windowMs ?? FLAP_WINDOW_MS;
  }
}

/** What /status, /healthz and the log say of a streak of `flaps`. */
export function flapReason(flaps: number): string {
  const what = `the hub closed this module's connection ${flaps} time${flaps === 1 ? '' : 's'} in a row within a minute of opening it`;
  if (flaps < FLAPS_BEFORE_WARNING) return what;
  return `${what}: another client is probably connected with the same identity (PUMPWATCH_MODULE_CONNECTION_STRING / the IoT Edge module)`;
}
