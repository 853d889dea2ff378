/**
 * The module client's life cycle: create, open with our own retry (the SDK fails a first open at
 * once, and reports a refused connection as UnauthorizedError), re-read the twin on every
 * (re)connect (the SDK does not), and recreate the client when the SDK gives up and emits
 * `disconnect` (after about four minutes offline). Everything is visible through `status()`.
 */
import type device from 'azure-iot-device';
import { backoffDelay, sleep, type BackoffPolicy } from '../../inference/backoff.js';
import { safeErrorMessage } from '../../sync/redact.js';
import type { Logger } from '../logger.js';

export type ModuleClient = InstanceType<typeof device.ModuleClient>;

/**
 * How long a stop waits for each step that needs the hub (the last report, a connection attempt
 * under way, the client's close): a hub that accepts the connection and never answers (frozen, a
 * half-open link, a tarpit) must not hold the stop past IoT Edge's grace period, nor keep the
 * steps after it (sync, buffer close, final checkpoint) from running.
 */
export const STOP_WAIT_MS = 2_000;
export type HubState = 'connecting' | 'connected' | 'reconnecting' | 'disconnected' | 'stopped';

export interface HubStatus {
  state: HubState;
  since: string;
  lastError: string | null;
  connects: number;
  /** Clients recreated after the SDK gave up. */
  recreated: number;
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
  clock?: () => number;
}

export class EdgeConnection {
  private client: ModuleClient | null = null;
  private state: HubState = 'disconnected';
  private since: number;
  private lastError: string | null = null;
  private connects = 0;
  private recreated = 0;
  private loop: Promise<void> | null = null;
  private readonly stopping = new AbortController();

  constructor(private readonly opts: ConnectionOptions) {
    this.since = this.now();
  }

  /** Starts connecting in the background; the agent runs (and scores) while it is offline. */
  start(): void {
    this.loop ??= this.connectLoop();
  }

  /** The open client, or null while offline. */
  current(): ModuleClient | null {
    return this.state === 'connected' ? this.client : null;
  }

  status(): HubStatus {
    return { state: this.state, since: new Date(this.since).toISOString(), lastError: this.lastError, connects: this.connects, recreated: this.recreated };
  }

  /** Called by the transport when the link drops; the SDK retries on its own for a while. */
  transportLost(err: unknown): void {
    if (this.state !== 'connected') return;
    this.lastError = err ? safeErrorMessage(err) : 'connection lost';
    this.setState('reconnecting');
  }

  /**
   * Stops connecting and closes the client, waiting at most STOP_WAIT_MS for a connection attempt
   * under way and as long for the close: past that the client is abandoned (our listeners dropped,
   * its socket destroyed) and the stop goes on.
   */
  async stop(): Promise<void> {
    this.stopping.abort();
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

  private async connectLoop(): Promise<void> {
    try {
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
      client.on('connect', () => void this.connected(client!));
      client.on('disconnect', () => this.gaveUp(client!));
      client.on('error', (err: Error) => {
        this.lastError = safeErrorMessage(err);
        this.opts.logger.warn({ err: { message: this.lastError } }, 'IoT Edge client error');
      });
      this.opts.attach(client);
      await client.open();
      if (this.stopping.signal.aborted) await closeQuietly(client);
      return true;
    } catch (err) {
      this.lastError = safeErrorMessage(err);
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
    this.setState('connected');
    this.opts.logger.info({ connects: this.connects }, 'IoT Edge client connected');
    try {
      await this.opts.onConnected(client);
    } catch (err) {
      this.lastError = safeErrorMessage(err);
      this.opts.logger.warn({ err: { message: this.lastError } }, 'reading the module twin after connecting failed');
    }
  }

  /** The SDK stopped retrying: drop this client and build a new one. */
  private gaveUp(client: ModuleClient): void {
    if (client !== this.client || this.stopping.signal.aborted) return;
    this.opts.logger.warn({ err: { message: this.lastError } }, 'IoT Edge client gave up reconnecting; recreating it');
    this.client = null;
    this.recreated++;
    this.setState('disconnected');
    detach(client);
    void closeQuietly(client).then(() => this.start());
  }

  private setState(state: HubState): void {
    if (this.state === state) return;
    this.state = state;
    this.since = this.now();
  }

  private now(): number {
    return (this.opts.clock ?? Date.now)();
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
