/**
 * The module client's life cycle: create, open with our own retry (the SDK fails a first open at
 * once, and reports a refused connection as UnauthorizedError), re-read the twin on every
 * (re)connect (the SDK does not), and recreate the client when the SDK gives up and emits
 * `disconnect` (after about four minutes offline). Everything is visible through `status()`.
 *
 * A connection the hub closes within a minute of accepting it is a flap (flaps.ts): IoT Hub closes
 * the older connection when a second client opens one with the same identity, and the SDK's own
 * retry reconnects at once (its first retry waits 0 ms, and every loss starts a new retry), so two
 * agents under one identity took each other's connection over thousands of times a minute. On a
 * flap the client's retry policy declines, the SDK gives up and emits `disconnect`, and the agent
 * builds a new client after a delay that grows with each flap in a row.
 */
import type device from 'azure-iot-device';
import { backoffDelay, sleep, type BackoffPolicy } from '../../inference/backoff.js';
import { monotonicNow } from '../../sync/clock.js';
import { safeErrorMessage } from '../../sync/redact.js';
import type { Logger } from '../logger.js';
import { FlapTracker, flapReason, FLAP_WINDOW_MS, type Flap } from './flaps.js';

export type ModuleClient = InstanceType<typeof device.ModuleClient>;

/**
 * How long a stop waits for each step that needs the hub (the last report, a connection attempt
 * under way, the client's close): a hub that accepts the connection and never answers (frozen, a
 * half-open link, a tarpit) must not hold the stop past IoT Edge's grace period, nor keep the
 * steps after it (sync, buffer close, final checkpoint) from running.
 */
export const STOP_WAIT_MS = 2_000;
/** What a socket error code means, for a technician: the hub's host, its port, or the network between. */
const NETWORK_CAUSES: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name not found',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ECONNRESET: 'connection reset',
};
const NETWORK_ERROR = new RegExp(String.raw`(?:\b(?:connect|getaddrinfo|read|write) )?\b(${Object.keys(NETWORK_CAUSES).join('|')})\b(?: [^\s)]+)?`);

/**
 * The hub connection's error in words, secrets removed. The SDK words a first open() with the
 * broker down as "Failure on first connection (Not authorized): connect ECONNREFUSED …", which sent a
 * technician hunting for keys: when the cause is a network error, the message says the hub could
 * not be reached and why, with the socket's own words. A real authorization failure (a wrong key)
 * has no such code and keeps the SDK's wording.
 */
export function hubErrorMessage(err: unknown): string {
  const message = safeErrorMessage(err);
  const m = NETWORK_ERROR.exec(message);
  if (m === null) return message;
  return `the IoT hub (edgeHub) could not be reached: ${NETWORK_CAUSES[m[1]!]} (${m[0]})`;
}

export type HubState = 'connecting' | 'connected' | 'reconnecting' | 'disconnected' | 'stopped';

export interface HubStatus {
  state: HubState;
  since: string;
  /**
   * When the agent was last connected to the hub, while it is not (the connection's loss, or the
   * agent's start when it never connected): `since` moves at each attempt, this does not. Null while connected.
   */
  downSince: string | null;
  lastError: string | null;
  connects: number;
  /** Clients recreated after the SDK gave up. */
  recreated: number;
  /** Connections in a row the hub closed within a minute of opening them (0 once one lasts). */
  flaps: number;
  /** Why the agent itself waits before connecting again (a streak of flaps), else null. */
  reason: string | null;
  /** When the agent connects again, while it waits; else null. */
  nextAttemptAt: string | null;
}

/** The part of the SDK's RetryPolicy the client consults (azure-iot-common). */
interface RetryPolicy {
  shouldRetry(err: Error): boolean;
  nextRetryTimeout(retryCount: number, throttled: boolean): number;
}

export interface ConnectionOptions {
  /** Makes a new, unopened client (with its transport and CA). */
  create: () => Promise<ModuleClient>;
  /** Registers per-client listeners (inputs) before open. */
  attach: (client: ModuleClient) => void;
  /** Runs after every (re)connect: read the whole twin, flush pending messages. */
  onConnected: (client: ModuleClient) => Promise<void>;
  /** Destroys the connection of a client the stop gives up on (its socket, which close() left open). */
  abandon?: () => void;
  logger: Logger;
  backoff?: BackoffPolicy;
  /** The delays after flaps (default FLAP_BACKOFF). */
  flapBackoff?: BackoffPolicy;
  clock?: () => number;
  /** Monotonic ms for the flap window (default performance.now()). */
  monotonic?: () => number;
}

export class EdgeConnection {
  private client: ModuleClient | null = null;
  private state: HubState = 'disconnected';
  private since: number;
  private downSince: number | null;
  private lastError: string | null = null;
  private connects = 0;
  private recreated = 0;
  private loop: Promise<void> | null = null;
  private readonly stopping = new AbortController();
  private readonly flaps: FlapTracker;
  /** The flap that lost the current client's connection, until the client is replaced. */
  private flap: Flap | null = null;
  /** When the agent connects again after a flap (wall clock), while it waits. */
  private nextAttemptAt: number | null = null;
  private settleTimer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: ConnectionOptions) {
    this.since = this.now();
    this.downSince = this.since;
    this.flaps = new FlapTracker({ backoff: opts.flapBackoff });
  }

  /** Starts connecting in the background (after `delayMs`); the agent runs (and scores) while it is offline. */
  start(delayMs = 0): void {
    this.loop ??= this.connectLoop(delayMs);
  }

  /** The open client, or null while offline. */
  current(): ModuleClient | null {
    return this.state === 'connected' ? this.client : null;
  }

  status(): HubStatus {
    const flaps = this.flaps.count(this.monotonic());
    const waiting = this.nextAttemptAt !== null && this.state === 'reconnecting';
    return {
      state: this.state,
      since: new Date(this.since).toISOString(),
      downSince: this.downSince === null ? null : new Date(this.downSince).toISOString(),
      lastError: this.lastError,
      connects: this.connects,
      recreated: this.recreated,
      flaps,
      reason: waiting ? flapReason(flaps) : null,
      nextAttemptAt: waiting ? new Date(this.nextAttemptAt!).toISOString() : null,
    };
  }

  /** A person should know: the streak of flaps points at another client with this identity (null: no). */
  identityConflict(): string | null {
    const now = this.monotonic();
    return this.flaps.suspicious(now) ? flapReason(this.flaps.count(now)) : null;
  }

  /**
   * Called by the transport when the link drops (before the SDK's own handler, which asks the
   * retry policy whether to reconnect); the SDK retries on its own for a while, unless it was a flap.
   */
  transportLost(err: unknown): void {
    if (this.state !== 'connected') return;
    this.lastError = err ? hubErrorMessage(err) : 'connection lost';
    this.flap = this.flaps.lost(this.monotonic());
    this.setState('reconnecting');
  }

  /**
   * Stops connecting and closes the client, waiting at most STOP_WAIT_MS for a connection attempt
   * under way and as long for the close: past that the client is abandoned (our listeners dropped,
   * its socket destroyed) and the stop goes on.
   */
  async stop(): Promise<void> {
    this.stopping.abort();
    if (this.settleTimer) clearTimeout(this.settleTimer);
    const loop = this.loop;
    const attemptEnded = loop === null || (await settlesWithin(loop, STOP_WAIT_MS));
    const client = this.client;
    this.client = null;
    this.setState('stopped');
    if (!client) return;
    if (attemptEnded && (await settlesWithin(closeQuietly(client), STOP_WAIT_MS))) return;
    detach(client);
    this.opts.abandon?.();
    this.opts.logger.warn(
      { waitedMs: STOP_WAIT_MS },
      attemptEnded ? 'IoT Edge client did not close in time (the hub does not answer): abandoned' : 'IoT Edge client still connecting (the hub does not answer): abandoned',
    );
  }

  private async connectLoop(delayMs: number): Promise<void> {
    try {
      if (delayMs > 0) {
        this.setState('reconnecting');
        await sleep(delayMs, this.stopping.signal);
      }
      this.nextAttemptAt = null;
      for (let attempt = 1; !this.stopping.signal.aborted; attempt++) {
        this.setState(attempt === 1 ? 'connecting' : 'reconnecting');
        if (await this.openOnce()) return;
        const delay = backoffDelay(this.opts.backoff ?? { baseMs: 1_000, capMs: 60_000 }, attempt);
        this.opts.logger.warn({ err: { message: this.lastError }, retryInMs: delay, attempt }, 'IoT Edge client could not connect; retrying');
        await sleep(delay, this.stopping.signal);
      }
    } catch {
      // stopped while waiting
    } finally {
      this.loop = null;
    }
  }

  private async openOnce(): Promise<boolean> {
    let client: ModuleClient | null = null;
    try {
      client = await this.opts.create();
      this.client = client;
      this.flap = null;
      this.declineRetriesAfterFlaps(client);
      client.on('connect', () => void this.connected(client!));
      client.on('disconnect', () => this.gaveUp(client!));
      client.on('error', (err: Error) => {
        this.lastError = hubErrorMessage(err);
        this.opts.logger.warn({ err: { message: this.lastError } }, 'IoT Edge client error');
      });
      this.opts.attach(client);
      await client.open();
      if (this.stopping.signal.aborted) await closeQuietly(client);
      return true;
    } catch (err) {
      this.lastError = hubErrorMessage(err);
      if (client) {
        detach(client);
        await closeQuietly(client);
      }
      if (this.client === client) this.client = null;
      if (!this.stopping.signal.aborted) this.setState('disconnected');
      return false;
    }
  }

  private async connected(client: ModuleClient): Promise<void> {
    if (client !== this.client || this.stopping.signal.aborted) return;
    this.connects++;
    this.lastError = null;
    this.flaps.connected(this.monotonic());
    this.setState('connected');
    this.opts.logger.info({ connects: this.connects }, 'IoT Edge client connected');
    this.watchSettle(client);
    try {
      await this.opts.onConnected(client);
    } catch (err) {
      this.lastError = hubErrorMessage(err);
      this.opts.logger.warn({ err: { message: this.lastError } }, 'reading the module twin after connecting failed');
    }
  }

  /** The SDK stopped retrying (or declined to, after a flap): drop this client and build a new one. */
  private gaveUp(client: ModuleClient): void {
    if (client !== this.client || this.stopping.signal.aborted) return;
    const flap = this.flap;
    this.client = null;
    this.recreated++;
    detach(client);
    if (flap) {
      this.nextAttemptAt = this.now() + flap.delayMs;
      this.setState('reconnecting');
      this.warnFlaps(flap);
    } else {
      this.opts.logger.warn({ err: { message: this.lastError } }, 'IoT Edge client gave up reconnecting; recreating it');
      this.setState('disconnected');
    }
    void closeQuietly(client).then(() => this.start(flap?.delayMs ?? 0));
  }

  /**
   * Wraps the client's retry policy so that the SDK does not reconnect on its own after a flap
   * (its first retry is immediate): it gives up and emits `disconnect`, and gaveUp waits the flap's
   * delay. Every other decision on the current client stays the SDK's. A client without the (protected) field keeps the
   * SDK's behaviour: its flaps are still counted, and waited out whenever the SDK gives up.
   */
  private declineRetriesAfterFlaps(client: ModuleClient): void {
    const inner = (client as unknown as { _retryPolicy?: RetryPolicy })._retryPolicy;
    if (!inner || typeof inner.shouldRetry !== 'function') return;
    client.setRetryPolicy({
      // A client already replaced never retries either: an operation of it still under way would
      // otherwise reconnect it, and that connection would take over the current one's.
      shouldRetry: (err: Error) => client === this.client && this.flap === null && inner.shouldRetry(err),
      nextRetryTimeout: (retryCount: number, throttled: boolean) => inner.nextRetryTimeout(retryCount, throttled),
    } as never);
  }

  /** Once a streak looks like a duplicated identity: said at warn, then at most every FLAP_WARN_INTERVAL_MS. */
  private warnFlaps(flap: Flap): void {
    if (!this.flaps.warnNow(this.monotonic())) return;
    const retryInS = Math.round(flap.delayMs / 100) / 10;
    this.opts.logger.warn(
      { flaps: flap.flaps, retryInMs: flap.delayMs, err: { message: this.lastError } },
      `${flapReason(flap.flaps)}; reconnecting in ${retryInS} s`,
    );
  }

  /** Says once that a streak of flaps is over, when a connection after it has lasted the window. */
  private watchSettle(client: ModuleClient): void {
    if (this.settleTimer) clearTimeout(this.settleTimer);
    this.settleTimer = null;
    if (this.flaps.count(this.monotonic()) === 0) return;
    this.settleTimer = setTimeout(() => {
      this.settleTimer = null;
      if (client !== this.client || this.state !== 'connected') return;
      const n = this.flaps.settle(this.monotonic());
      if (n > 0) this.opts.logger.info({ flaps: n }, `IoT Edge connection held for ${FLAP_WINDOW_MS / 1000} s after ${n} closed soon after opening: reconnects back to normal`);
    }, FLAP_WINDOW_MS + 1_000);
    this.settleTimer.unref();
  }

  private setState(state: HubState): void {
    if (this.state === state) return;
    this.state = state;
    this.since = this.now();
    if (state === 'connected') this.downSince = null;
    else this.downSince ??= this.since;
  }

  private now(): number {
    return (this.opts.clock ?? Date.now)();
  }

  private monotonic(): number {
    return (this.opts.monotonic ?? monotonicNow)();
  }
}

/** Drops our listeners; a late 'error' from a dropped client must not crash the process. */
function detach(client: ModuleClient): void {
  client.removeAllListeners();
  client.on('error', () => undefined);
}

/** Whether `p` settles within `ms` (how, and with what, does not matter here). */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

async function closeQuietly(client: ModuleClient): Promise<void> {
  try {
    await client.close();
  } catch {
    // closing a client that never connected can fail; nothing to do
  }
}
