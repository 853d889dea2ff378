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

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop?.catch(() => undefined);
    const client = this.client;
    this.client = null;
    this.setState('stopped');
    if (client) await closeQuietly(client);
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
      this.setState('disconnected');
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

async function closeQuietly(client: ModuleClient): Promise<void> {
  try {
    await client.close();
  } catch {
    // closing a client that never connected can fail; nothing to do
  }
}
