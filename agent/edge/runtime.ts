/**
 * IoT Edge in the agent: the module client (with commit-then-acknowledge inputs), the twin
 * (settings and models), reported properties, and alerts. Built by agent/wiring/edge.ts.
 */
import device from 'azure-iot-device';
import { TWIN_SETTINGS, type Config } from '../config.js';
import { stopEach, type AgentParts as Agent } from '../wiring/part.js';
import type { Logger } from '../logger.js';
import { AlertPublisher, ALERTS_OUTPUT, messageType, type Alert } from './alerts.js';
import { configuredSource, createModuleClient, startLocalHub, type ClientSource, type LocalHubHandle } from './client.js';
import { EdgeConnection, STOP_WAIT_MS, type ModuleClient } from './connection.js';
import { InputHandler } from './inputs.js';
import { schemaVersionOf } from './message-schema.js';
import { createModelUpdater, type ModelUpdateOptions } from './model-updates.js';
import { PumpActivity } from './pump-activity.js';
import { bufferedPumps } from './pump-silence.js';
import { StatusMessages } from './status-messages.js';
import { Reporter, type ReportedTwin } from './reported.js';
import { AckGate, commitAckTransport } from './transport.js';
import { TwinSync } from './twin.js';
import { safeErrorMessage } from '../../sync/redact.js';
import { backoffDelay, sleep, type BackoffPolicy } from '../../inference/backoff.js';

type Twin = Awaited<ReturnType<ModuleClient['getTwin']>>;

/**
 * How long a twin read waits for its answer. The SDK sends the read at QoS 0 and never fails one
 * whose answer was lost (with its connection, or by the hub), and the desired patches that land
 * during a read wait for it (TwinSync): unbounded, one lost answer held every later patch (model
 * deployments, settings) until a restart. IoT Hub answers within seconds.
 */
export const TWIN_READ_TIMEOUT_MS = 30_000;
/** The waits between twin reads left unanswered on one connection. */
const TWIN_READ_BACKOFF: BackoffPolicy = { baseMs: 1_000, capMs: 60_000 };

export interface EdgeRuntimeOptions extends ModelUpdateOptions {
  /** Timing of reconnect attempts. */
  connectBackoff?: BackoffPolicy;
  /** How often the buffer/sync summary is reported (default 60 s). */
  stateReportMs?: number;
  sendTimeoutMs?: number;
  /** A pump without readings for this long is no longer reported in `pumps` (default 30 days). */
  pumpsForgetAfterMs?: number;
  /** How often pumps are checked for silence (`alerts.silentAfterSeconds`; default 5 s). */
  silenceCheckMs?: number;
}

export class EdgeRuntime {
  readonly gate = new AckGate();
  readonly updater;
  readonly twinSync: TwinSync;
  readonly reporter: Reporter;
  readonly alerts: AlertPublisher;
  /** agent-health, pump-not-scored and pump-scored on output `alerts` (status-messages.ts). */
  readonly statusMessages: StatusMessages;
  readonly inputs: InputHandler;
  readonly pumpActivity: PumpActivity;
  connection: EdgeConnection | null = null;
  private localHub: LocalHubHandle | null = null;
  private twin: Twin | null = null;
  /** Full twin reads the transport completed (see connected()). */
  private twinReads = 0;
  /** (Re)connects seen by connected(): a twin read left unanswered is read again only on its own connection. */
  private connectEpoch = 0;
  private readonly stopping = new AbortController();
  /** Whether the transport could hold acknowledgements; asked at the first connection. */
  private transportHooked: (() => boolean) | null = null;
  private timers: NodeJS.Timeout[] = [];
  private readonly settingsListeners: Array<() => void> = [];
  private readonly log: Logger;

  constructor(
    private readonly agent: Agent,
    private readonly opts: EdgeRuntimeOptions = {},
  ) {
    const { config, logger } = agent;
    this.log = logger.child({ component: 'edge' });
    this.updater = createModelUpdater(agent, opts).updater;
    const startupSettings = snapshotSettings(config);
    this.twinSync = new TwinSync({
      updater: this.updater,
      models: agent.models,
      applySettings: (values) => this.applySettings(values),
      startupSettings,
      logger: this.log,
      changed: () => this.reporter.changed(),
    });
    this.reporter = new Reporter({
      models: agent.models,
      twinSync: this.twinSync,
      status: agent.status,
      logger: this.log,
      pumps: () => this.pumpActivity.recent(),
    });
    agent.status.setHubReportedError(() => this.reportedFailure());
    agent.status.setHubUnreachableSince(() => this.connection?.status().downSince ?? null);
    agent.status.addHealthCheck({ name: 'hub-reported', check: () => this.reportedHealth() });
    agent.status.addHealthCheck({ name: 'hub', check: () => this.identityHealth() });
    this.pumpActivity = new PumpActivity({
      known: () => agent.engine.pumpIds(),
      lastReceived: (pumpId) => {
        try {
          return agent.buffer.predictions(pumpId, { limit: 1 })[0]?.receivedAt ?? null;
        } catch {
          return null; // the buffer is not open: counted from now
        }
      },
      forgetAfterMs: opts.pumpsForgetAfterMs,
    });
    // A pump seen for the first time (or again after being forgotten) changes what the gateway serves: report it.
    agent.pipeline.onCommit((rows) => {
      if (this.pumpActivity.active(rows.map((r) => r.pumpId))) this.reporter.changed();
    });
    agent.models.onChange(() => this.reporter.changed());
    this.alerts = new AlertPublisher({
      engine: agent.engine,
      kv: agent.buffer,
      deviceId: config.resolvedDeviceId,
      send: (alert) => this.sendAlert(alert),
      minIntervalMs: () => agent.config.alertsMinIntervalSeconds * 1000,
      sensorMinIntervalMs: () => agent.config.alertsSensorMinIntervalSeconds * 1000,
      markAlerted: (seq, at) => agent.buffer.markAlerted(seq, at),
      logger: this.log,
      // The page's clock: silence is measured on it as "stale" is.
      monotonic: agent.monotonic,
      silentAfterMs: () => agent.config.alertsSilentAfterSeconds * 1000,
      buffered: (beforeSeq) => bufferedPumps(agent.buffer, beforeSeq),
      maxPendingSilence: maxPendingSilenceAlerts(config.maxPumps),
    });
    agent.pipeline.onCommit((rows, seqs) => this.alerts.onCommit(rows, seqs));
    agent.pipeline.onRefuse((refused) => this.alerts.onRefuse(refused));
    // Readings the buffer could not store (a full disk) reached the agent: their pumps are not silent.
    agent.pipeline.onUnstored((unstored) => this.alerts.onUnstored(unstored));
    this.statusMessages = new StatusMessages({
      deviceId: config.resolvedDeviceId,
      health: () => agent.status.health(),
      send: (m) => this.sendOutput(m, m.kind, 'pumpId' in m ? m.pumpId : undefined),
      notScoredAfterMs: () => agent.config.alertsNotScoredAfterSeconds * 1000,
      heartbeatMs: () => agent.config.alertsHeartbeatSeconds * 1000,
      pumpStates: () => agent.status.pumpStates(),
      logger: this.log,
      // The page's clock, as silence: NTP steps neither raise nor hide a pump not scored.
      monotonic: agent.monotonic,
      maxPumps: config.maxPumps,
    });
    agent.pipeline.onCommit((rows) => this.statusMessages.onCommit(rows));
    agent.pipeline.onRefuse((refused) => this.statusMessages.onRefuse(refused));
    agent.pipeline.onUnstored((unstored) => this.statusMessages.onUnstored(unstored));
    this.inputs = new InputHandler({
      pipeline: agent.pipeline,
      gate: this.gate,
      logger: this.log,
      messages: agent.registry.counter('pumpwatch_edge_input_messages_total', 'Input messages handled, by result'),
      monotonic: agent.monotonic,
    });
    agent.status.addHealthCheck({ name: 'inputs', check: () => this.inputs.health(() => !agent.buffer.health().ok) });
    agent.registry.counterFrom('pumpwatch_alerts_sent_total', 'Alerts handed to edgeHub', () => this.alerts.status().sent);
    agent.registry.counterFrom('pumpwatch_alerts_suppressed_total', 'Anomalies not alerted (rate limit per pump)', () => this.alerts.status().suppressed);
    agent.registry.counterFrom('pumpwatch_alerts_sensor_suppressed_total', 'Frozen-sensor findings not alerted (quiet time per pump and sensor)', () => this.alerts.status().sensorSuppressed);
    // The alarms as the control room holds them, and whether the status messages go out or wait: a
    // technician and a scrape see what the output `alerts` said, not only what the page shows.
    agent.status.setAlerts(() => ({ ...this.alerts.status(), openAlarms: this.alerts.openAlarms(), statusMessages: this.statusMessages.status() }));
    agent.registry.gauge('pumpwatch_alerts_pending', 'Alerts waiting for the hub connection', () => this.alerts.status().pending);
    agent.registry.gauge('pumpwatch_pumps_silent', 'Pumps heard before that have sent no reading for alerts.silentAfterSeconds (alerted pump-silent, not resumed)', () => this.alerts.status().pumpsSilent);
    agent.registry.gauge('pumpwatch_alarms_open', 'Pumps with an open anomaly alarm (raised, not cleared by anomaly-cleared)', () => Object.keys(this.alerts.openAlarms()).length);
    agent.registry.counterFrom('pumpwatch_status_messages_sent_total', 'agent-health, pump-not-scored, pump-scored and agent-heartbeat messages handed to edgeHub', () => this.statusMessages.counts.sent);
    agent.registry.counterFrom('pumpwatch_status_messages_replaced_total', 'Status messages replaced by a newer state of the same pump (or health, or heartbeat) before they were sent', () => this.statusMessages.counts.replaced);
    agent.registry.gauge('pumpwatch_status_messages_pending', 'Status messages waiting for the hub connection (one per pump, one health, one heartbeat at most)', () => this.statusMessages.status().pending);
  }

  /** `connectivity.hub` in /status. */
  hubStatus(): string {
    if (!this.connection) return 'not configured';
    const s = this.connection.status();
    const local = this.localHub ? ` (local hub on port ${this.localHub.port})` : '';
    if (s.reason && s.nextAttemptAt) return `${s.state}${local}: ${s.reason}; next attempt at ${s.nextAttemptAt}`;
    const detail = s.lastError && s.state !== 'connected' ? `: ${s.lastError}` : '';
    return `${s.state}${local}${detail}`;
  }

  /**
   * The `hub` check of /healthz: degraded (200, nothing restarts the module) while the hub keeps
   * closing this module's fresh connections, as it does when another client has the same identity.
   * Not a failure: scoring and buffering go on, and a restart would not remove the other client.
   * But a person must act: the other client receives the inputs and twin patches meant for this
   * module, and its reported properties overwrite this one's in the cloud's view of the gateway.
   */
  private identityHealth(): { ok: boolean; degraded?: string } {
    const conflict = this.connection?.identityConflict() ?? null;
    return conflict === null ? { ok: true } : { ok: true, degraded: conflict };
  }

  /** `connectivity.hubReportedError` in /status. */
  reportedFailure(): string | null {
    const f = this.reporter.failure();
    if (!f) return null;
    return `not sent since ${f.since} (${f.attempts} attempt${f.attempts === 1 ? '' : 's'}): ${f.error}`;
  }

  /**
   * The `hub-reported` check of /healthz: failing while the hub, connected, refuses the reported
   * properties. The cloud's view of the gateway is then frozen (model statuses, acknowledgements,
   * the `pumps` by which the trainer's deploy finds it), and that needs a person. Being offline is
   * not a failure (the update waits for the connection), nor is a refusal seen only on a connection
   * before the current one: the whole document is sent again at every reconnect.
   */
  private reportedHealth(): { ok: boolean; error?: string } {
    const f = this.reporter.failure();
    if (!f || !f.onCurrentTwin || this.connection?.status().state !== 'connected') return { ok: true };
    const attempts = `${f.attempts} attempt${f.attempts === 1 ? '' : 's'} since ${f.since}`;
    return { ok: false, error: `the connected hub does not take the reported properties (${attempts}): ${f.error}; acknowledgements, model statuses and the pumps list do not reach the cloud` };
  }

  async start(): Promise<void> {
    const { config } = this.agent;
    let source: ClientSource | null = await configuredSource(config);
    if (!source && config.standalone && config.hub === 'auto') {
      this.localHub = await startLocalHub(config.resolvedDeviceId, config.moduleId, this.log);
      source = this.localHub?.source ?? null;
    }
    this.alerts.restore();
    // Decided offline too (kept pending, as anomalies are), so /status shows silent pumps whatever the hub does.
    this.every(this.opts.silenceCheckMs ?? 5_000, () => this.alerts.checkSilence());
    // Decided offline too (kept in memory, newest state wins), sent once the hub is reachable.
    this.every(this.opts.silenceCheckMs ?? 5_000, () => this.statusMessages.check());
    if (!source) return;
    const transport = commitAckTransport({
      gate: this.gate,
      onTransportDisconnect: (err) => this.connection?.transportLost(err),
      onTwinRead: (desired) => {
        // A late answer to a read already given up (timed out, TwinSync told) is not a read in flight.
        if (!this.twinSync.reading) return;
        this.twinReads++;
        this.twinSync.readCompleted(desired);
      },
    });
    const clientSource = source;
    this.connection = new EdgeConnection({
      create: () => createModuleClient(clientSource, transport),
      attach: (client) => this.inputs.attach(client),
      onConnected: (client) => this.connected(client),
      abandon: () => transport.destroyConnection(),
      logger: this.log,
      backoff: this.opts.connectBackoff,
    });
    this.connection.start();
    // Known once a client exists: under IoT Edge the SDK builds it (and its transport) only after the
    // trust bundle came back from the workload socket, after start() returned.
    this.transportHooked = () => transport.ackAfterCommit();
    this.every(this.opts.stateReportMs ?? 60_000, () => this.reporter.changed());
    this.every(30_000, () => this.alerts.flush());
  }

  /** Stops in reverse order; each step in its own try/catch, so one that throws never keeps the client open. */
  async stop(): Promise<void> {
    this.stopping.abort();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await stopEach(
      [
        { name: 'inputs', stop: () => this.inputs.stop() },
        { name: 'model updates', stop: () => this.updater.stop() },
        // A last report when connected, bounded: a stop must finish within IoT Edge's grace period.
        {
          name: 'last report',
          stop: async () => {
            if (this.connection?.current()) await Promise.race([this.reporter.flush(), new Promise((r) => setTimeout(r, STOP_WAIT_MS).unref())]);
          },
        },
        { name: 'reporter', stop: () => this.reporter.stop() },
        { name: 'connection', stop: () => this.connection?.stop() },
        { name: 'local hub', stop: () => this.localHub?.stop() },
      ],
      (name, err) => this.log.error({ step: name, err: { message: safeErrorMessage(err) } }, 'edge stop step failed'),
    );
  }

  /**
   * After every (re)connect: read the whole twin. Its desired document reaches TwinSync from the
   * transport as the hub sent it; patches that land meanwhile wait in TwinSync for it. The SDK
   * emits 'properties.desired' with its whole cache after a read (and to a new listener), and
   * with the delta itself for a patch: only the deltas go to TwinSync.
   *
   * A new client's Twin subscribes to desired patches only when the listener is added, after its
   * first read, and MQTT keeps nothing for a topic nobody subscribed to: a patch published between
   * the hub's answer and the subscription would reach neither. So once subscribed, the twin is read
   * once more; TwinSync keeps the newer `$version` and drops what it already holds.
   */
  private async connected(client: ModuleClient): Promise<void> {
    if (this.transportHooked && !this.transportHooked()) {
      this.log.warn('the SDK transport could not be hooked: input messages are acknowledged on receipt, not after commit');
    }
    this.transportHooked = null; // said once, at the first connection
    const epoch = ++this.connectEpoch;
    const twin = await this.readTwin(client, epoch);
    if (!twin) return; // the connection is gone: the next one reads the twin itself
    const fresh = twin !== this.twin;
    if (fresh) {
      this.twin = twin;
      // The SDK emits 'error' on the twin when it cannot subscribe to desired patches; unhandled, it would crash.
      twin.on('error', (err: Error) => this.log.warn({ err: { message: err.message } }, 'module twin error'));
      twin.on('properties.desired', (delta: Record<string, unknown>) => {
        if (delta !== twin.properties.desired) this.twinSync.patch(delta);
      });
    }
    this.reporter.attach(twin as unknown as ReportedTwin);
    this.alerts.flush();
    this.statusMessages.connected();
    if (fresh) {
      // The listener started the subscription; this waits for that one (the SDK's topic state machine defers a second call).
      await new Promise<void>((resolve, reject) => twin.enableTwinDesiredPropertiesUpdates((err) => (err ? reject(err) : resolve())));
      await this.readTwin(client, epoch);
    }
  }

  /**
   * Reads the twin until the hub answers, on this connection: a read left unanswered for
   * TWIN_READ_TIMEOUT_MS is given up (the patches waiting for it apply to the document in force)
   * and sent again after a backoff. Again on the same connection rather than by dropping it: a
   * dead link is found by MQTT's keepalive and the reconnect reads anyway, while a hub that lost
   * one answer is better asked again than disconnected (a reconnect drops the acknowledgements of
   * the inputs still held, and edgeHub sends those again).
   * Null once this connection is gone or the agent stops.
   */
  private async readTwin(client: ModuleClient, epoch: number): Promise<Twin | null> {
    for (let attempt = 1; ; attempt++) {
      const twin = await this.readTwinOnce(client);
      if (twin) {
        if (attempt > 1) this.log.info({ attempts: attempt }, 'module twin read answered; the desired properties are in force again');
        return twin;
      }
      if (!this.onConnection(client, epoch)) return null;
      const retryInMs = backoffDelay(TWIN_READ_BACKOFF, attempt);
      if (attempt === 1) {
        // Once per connection: the following attempts add nothing a person needs.
        this.log.warn({ timeoutMs: TWIN_READ_TIMEOUT_MS, retryInMs }, `the hub did not answer the module twin read within ${TWIN_READ_TIMEOUT_MS / 1000} s: desired changes that came meanwhile apply to the properties in force, and the twin is read again`);
      }
      try {
        await sleep(retryInMs, this.stopping.signal);
      } catch {
        return null; // stopping
      }
      if (!this.onConnection(client, epoch)) return null;
    }
  }

  /** Whether `client` is connected, on the (re)connect numbered `epoch`. */
  private onConnection(client: ModuleClient, epoch: number): boolean {
    return epoch === this.connectEpoch && this.connection?.current() === client;
  }

  /** One full twin read, its desired document handed to TwinSync (patches arriving meanwhile wait for it); null when unanswered in time. */
  private async readTwinOnce(client: ModuleClient): Promise<Twin | null> {
    const readsBefore = this.twinReads;
    this.twinSync.beginRead();
    let timer: NodeJS.Timeout | undefined;
    // The SDK's read cannot be cancelled. Its late answer, if one comes, is a whole document as the
    // hub had it: it completes the read then in flight, if any (onTwinRead), and is ignored otherwise.
    const unanswered = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), TWIN_READ_TIMEOUT_MS);
      timer.unref();
    });
    let twin: Twin | null;
    try {
      twin = await Promise.race([client.getTwin(), unanswered]);
    } catch (err) {
      this.twinSync.readFailed();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    if (!twin) {
      this.twinSync.readFailed();
      return null;
    }
    if (this.twinReads === readsBefore) {
      // The transport hook did not see the read (an SDK whose Twin bypasses it): take the SDK's cache.
      this.twinSync.readCompleted(twin.properties.desired);
    }
    return twin;
  }

  private async sendAlert(alert: Alert): Promise<void> {
    await this.sendOutput(alert, messageType(alert.kind), alert.pumpId);
  }

  /**
   * Hands one JSON message to edgeHub on output `alerts`, with the message properties routes read:
   * `schemaVersion`, `type`, and `pumpId` when it is about one pump (an agent-health message is
   * about none). An alert an older agent left pending has no `schemaVersion`: it is given its own
   * (1, message-schema.ts), in the body too, so every message on the output carries one.
   */
  private async sendOutput(body: { schemaVersion?: number }, type: string, pumpId: string | undefined): Promise<void> {
    const client = this.connection?.current();
    if (!client) throw new Error('not connected to the hub');
    const schemaVersion = schemaVersionOf(body);
    const msg = new device.Message(JSON.stringify({ ...body, schemaVersion }));
    msg.contentType = 'application/json';
    msg.contentEncoding = 'utf-8';
    msg.properties.add('schemaVersion', String(schemaVersion));
    msg.properties.add('type', type);
    if (pumpId !== undefined) msg.properties.add('pumpId', pumpId);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`edgeHub did not take the ${type} message in time`)), this.opts.sendTimeoutMs ?? 30_000);
    });
    try {
      await Promise.race([client.sendOutputEvent(ALERTS_OUTPUT, msg), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Called after the module twin's settings were applied to the config (a part that acts on a change). */
  onSettingsApplied(listener: () => void): void {
    this.settingsListeners.push(listener);
  }

  private applySettings(values: Partial<Config>): void {
    const { config, buffer } = this.agent;
    const oldMax = config.bufferMaxBytes;
    Object.assign(config, values);
    for (const l of this.settingsListeners) {
      try {
        l();
      } catch (err) {
        this.log.error({ err: { message: (err as Error).message } }, 'a part could not apply the settings');
      }
    }
    if (config.bufferMaxBytes !== oldMax) {
      try {
        buffer.setMaxBytes(config.bufferMaxBytes);
      } catch (err) {
        this.log.warn({ err: { message: (err as Error).message } }, 'buffer cap applied to the config, not yet to the buffer (it is not open)');
      }
    }
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.timers.push(t);
  }
}

/**
 * `pump-silent` and `pump-resumed` alerts kept while the hub is unreachable (besides the 1 000
 * other alerts): two per pump the gateway takes (PUMPWATCH_MAX_PUMPS), 1 000 at least, so that every
 * pump going silent at once (the sensor module stopped) and coming back fits.
 */
export function maxPendingSilenceAlerts(maxPumps: number): number {
  return Math.max(1000, 2 * maxPumps);
}

function snapshotSettings(config: Config): Partial<Config> {
  const out: Record<string, unknown> = {};
  for (const section of Object.values(TWIN_SETTINGS)) for (const key of Object.values(section)) out[key] = config[key];
  return out as Partial<Config>;
}
