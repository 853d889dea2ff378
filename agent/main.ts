import { join } from 'node:path';
import { MIN_RECORDED_STEP_MS, SyncBatches } from '../buffer/batches.js';
import { BufferError } from '../buffer/errors.js';
import { BufferStore, type BufferStats } from '../buffer/store.js';
import { MAX_FEATURES } from '../inference/contract.js';
import { InferenceEngine } from '../inference/engine.js';
import { ModelFileError } from '../inference/model-file.js';
import { ModelManager } from '../inference/models.js';
import { ModelStore } from '../inference/model-store.js';
import { monotonicNow } from '../sync/clock.js';
import { safeErrorMessage } from '../sync/redact.js';
import { CONFIG_KEYS, ConfigError, type Config } from './config.js';
import { prepareDataDir } from './data-dir.js';
import { EvictionWatch } from './eviction-watch.js';
import { FirstModelStates } from './first-model/state.js';
import { HousekeepingThread } from './housekeeping.js';
import { AuthFailures } from './http/auth-failures.js';
import { registerCoreRoutes } from './http/core-routes.js';
import { listenConfigError } from './http/listen-error.js';
import { sensorFaultView, type SensorFaultView } from './http/pump-board.js';
import { registerReadingsRoute } from './http/readings-route.js';
import { StatusServer } from './http/server.js';
import { shortTokenProblem } from './http/auth.js';
import { CertificateWatch } from './http/certificate-watch.js';
import { readStatusTls, type StatusTls } from './http/tls.js';
import { PumpRoster } from './ingest/pump-roster.js';
import { IngestPipeline } from './ingest/pipeline.js';
import type { Logger } from './logger.js';
import { MetricsRegistry, createAgentMetrics, type AgentMetrics } from './metrics.js';
import { agentVersion, bundledModelPath } from './paths.js';
import { RepeatLog } from './repeat-log.js';
import { formatDuration, Scheduler } from './scheduler.js';
import { SimulatedSource } from './simulated-source.js';
import { AgentStatus } from './status.js';
import { SystemHealth } from './system-health.js';
import { wireEdge } from './wiring/edge.js';
import { wireFirstModel, type FirstModelWiringOptions } from './wiring/first-model.js';
import { wirePage } from './wiring/page.js';
import { stopEach, type AgentParts, type Part } from './wiring/part.js';
import { wireSync } from './wiring/sync.js';

export interface AgentOptions {
  config: Config;
  logger: Logger;
  /** The model loaded as `default` when none is active (the bundled one by default). */
  defaultModelPath?: string;
  clock?: () => number;
  /**
   * The monotonic clock the page's pump board measures arrivals and staleness on (default
   * performance.now, via sync/clock.ts): a test moves it with `clock` to stand for readings received
   * minutes ago.
   */
  monotonic?: () => number;
  /** The first-model check's timing (tests). */
  firstModel?: FirstModelWiringOptions;
}

/** Rows read back per pump at start-up, in multiples of the history it needs (see seedWindows). */
const SEED_ROWS_FACTOR = 4;

/**
 * The composition root: builds every part with its dependencies, starts them in order
 * (the status endpoint's certificate, read first → store → models → inference → sync → edge
 * client → status server) and stops them in reverse, each step on its own, the SQLite store closed
 * last. Constructors only assign; start() does I/O.
 */
export class Agent implements AgentParts {
  readonly config: Config;
  readonly logger: Logger;
  readonly registry = new MetricsRegistry();
  readonly metrics: AgentMetrics;
  readonly buffer: BufferStore;
  readonly engine: InferenceEngine;
  readonly pipeline: IngestPipeline;
  readonly models: ModelManager;
  readonly modelStore: ModelStore;
  readonly firstModels: FirstModelStates;
  readonly scheduler: Scheduler;
  readonly system: SystemHealth;
  /** One helper thread for the buffer's WAL checkpoints and the system samples (agent/housekeeping.ts). */
  readonly housekeeping: HousekeepingThread;
  readonly status: AgentStatus;
  readonly server: StatusServer;
  /** Warns when unsynced readings were evicted under the disk cap (polled by the scheduler). */
  readonly evictionWatch: EvictionWatch;
  /** The status endpoint's certificate by the gateway's clock (its expiry while the agent runs for months). */
  readonly certificateWatch: CertificateWatch;
  /** Failed micro-batches: logged once, then at most once a minute, and when commits work again. */
  private readonly ingestLog: RepeatLog;
  private simulator: SimulatedSource | null = null;
  private readonly parts: Part[] = [];
  private started: Part[] = [];
  /** The start() running, if any, and the stop() running, if any (see stop). */
  private starting: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;
  private bufferError: string | null = null;
  /** Attempts to open the buffer since it was last open. */
  private bufferAttempts = 0;
  private statsCache: { at: number; stats: BufferStats } | null = null;
  /** Requests the status endpoint refused for their token or origin: logged, counted on /metrics and /status. */
  private readonly authFailures: AuthFailures;
  /** The status endpoint's certificate and key (PUMPWATCH_HTTP_TLS_*), read first at start; null: plain HTTP. */
  private statusTls: StatusTls | null = null;

  /** The pump board's monotonic clock (AgentOptions.monotonic); undefined: performance.now. */
  readonly monotonic: (() => number) | undefined;

  constructor(private readonly options: AgentOptions) {
    const { config, logger } = options;
    this.monotonic = options.monotonic;
    const clock = options.clock ?? Date.now;
    this.config = config;
    this.logger = logger;
    this.metrics = createAgentMetrics(this.registry);
    this.housekeeping = new HousekeepingThread({
      checkpointIntervalMs: config.checkpointIntervalMs,
      onError: (job, message) => logger.warn({ component: 'housekeeping', job, err: { message } }, 'housekeeping thread: job failed'),
    });
    this.buffer = new BufferStore({
      path: join(config.dataDir, 'buffer.sqlite'),
      maxBytes: config.bufferMaxBytes,
      startCheckpoints: this.housekeeping.startCheckpoints,
      // The buffer file deleted or replaced under the agent, and what was done about it.
      onFileEvent: (message) => this.logger.error({ component: 'buffer' }, message),
      onWarning: (message) => this.logger.warn({ component: 'buffer' }, message),
      // An upgrade's schema step: before it, /healthz and the ingest wait without a word otherwise.
      onMigration: (message, fields) => this.logger.info({ component: 'buffer', event: 'buffer-migration', ...fields }, message),
    });
    // A faulty model (run error, non-finite scores) is rolled back by the model manager.
    this.engine = new InferenceEngine((fault) => this.models.handleFault(fault));
    this.pipeline = new IngestPipeline({
      engine: this.engine,
      buffer: this.buffer,
      metrics: this.metrics,
      clock,
      maxBatch: config.batchMaxReadings,
      limits: () => ({ maxFutureMs: this.config.maxFutureSeconds * 1000, maxPastMs: this.config.maxPastSeconds * 1000, maxValues: MAX_FEATURES }),
      pumps: new PumpRoster(() => this.config.maxPumps, () => this.buffer.pumpIds()),
      onError: (err) => this.ingestLog.failed({ err }),
    });
    this.ingestLog = new RepeatLog({
      failure: (fields, msg) => logger.error({ component: 'ingest', ...fields }, msg),
      recovery: (fields, msg) => logger.info({ component: 'ingest', ...fields }, msg),
      message: 'micro-batch failed; its readings were not acknowledged',
      recovered: 'micro-batches commit again',
    });
    this.evictionWatch = new EvictionWatch({
      counts: () => this.buffer.stats().evicted,
      // the cap in force, as /metrics gives it
      maxBytes: () => this.bufferStat('diskLimitBytes') || this.config.bufferMaxBytes,
      logger: logger.child({ component: 'buffer' }),
    });
    this.certificateWatch = new CertificateWatch({ clock, logger: logger.child({ component: 'http' }) });
    this.modelStore = new ModelStore(join(config.dataDir, 'models'));
    this.models = new ModelManager({
      engine: this.engine,
      afterCurrentBatch: () => this.pipeline.afterCurrentBatch(),
      clock,
      store: this.modelStore,
      kv: this.buffer,
      log: (level, msg, fields) => logger[level](fields, msg),
    });
    this.firstModels = new FirstModelStates({ kv: this.buffer, clock, logger: logger.child({ component: 'first-model' }) });
    this.scheduler = new Scheduler(logger.child({ component: 'scheduler' }));
    this.system = new SystemHealth(config.dataDir, this.housekeeping);
    this.status = new AgentStatus({
      deviceId: config.resolvedDeviceId,
      agentVersion: agentVersion(),
      startedAt: clock(),
      standalone: config.standalone,
      buffer: this.buffer,
      models: this.models,
      metrics: this.metrics,
      system: this.system,
    });
    this.authFailures = new AuthFailures({ logger: logger.child({ component: 'http' }), clock, monotonic: options.monotonic });
    this.server = new StatusServer({ token: config.statusToken, logger: logger.child({ component: 'http' }), authFailures: this.authFailures });
    this.compose();
  }

  private compose(): void {
    const { config } = this;
    this.parts.push(
      // First: a certificate or key that cannot be used stops the agent before anything else starts.
      {
        name: 'http-tls',
        start: async () => {
          this.statusTls = await readStatusTls(config);
        },
        stop: () => undefined,
      },
      // Before the buffer and the model store make folders in it (agent/data-dir.ts says why).
      { name: 'data-dir', start: () => prepareDataDir(config.dataDir), stop: () => undefined },
      {
        name: 'buffer',
        start: () => {
          this.openBuffer();
        },
        stop: async () => {
          try {
            this.evictionWatch.flush(); // evictions the once-a-minute limit still held
            this.buffer.close();
          } finally {
            // After the buffer's last checkpoint, which it runs; at most 3 s (see exitHeldBy).
            await this.housekeeping.close();
            const held = this.housekeeping.held;
            if (held !== null) this.logger.warn({ component: 'housekeeping' }, `${held}: abandoned`);
          }
        },
      },
      {
        name: 'models',
        start: async () => {
          // The models persisted by the last run, before the bundled default; they live in the buffer.
          if (this.bufferError === null) await this.models.restore();
          else this.logger.warn({ component: 'models' }, 'buffer not open: the persisted models will be restored when it opens; starting on the default model');
          await this.loadDefaultModel();
        },
        stop: () => this.models.releaseAll(),
      },
      { name: 'ingest', start: () => this.seedWindows(), stop: () => this.pipeline.idle() },
    );
    this.pipeline.onCommit(() => this.ingestLog.succeeded());
    // Each feature wires its own parts and routes (sync → edge client → page), then the rest starts.
    this.parts.push(...wireSync(this), ...wireEdge(this), ...wirePage(this), ...wireFirstModel(this, this.options.firstModel));
    this.parts.push(
      {
        name: 'scheduler',
        start: () => this.scheduleJobs(),
        stop: async () => {
          await this.scheduler.stop();
          await this.system.close();
        },
      },
      {
        name: 'http',
        start: async () => {
          const tls = this.statusTls;
          const addr = await this.server.start(config.httpHost, config.httpPort, tls ?? undefined).catch((err: unknown) => {
            throw listenConfigError(err, config.httpHost, config.httpPort) ?? err;
          });
          this.logger.info({ component: 'http', host: addr.address, port: addr.port, tls: tls !== null }, tls ? 'status endpoint listening (HTTPS)' : 'status endpoint listening (plain HTTP)');
          // A warning, not a refusal: a gateway upgraded with the token it had keeps serving.
          const short = config.statusToken === undefined ? null : shortTokenProblem(config.statusToken);
          if (short !== null) this.logger.warn({ component: 'http', code: 'PW_STATUS_TOKEN_SHORT' }, short);
          this.certificateWatch.serve(tls);
        },
        stop: () => this.server.stop(),
      },
      { name: 'simulator', start: () => this.startSimulator(), stop: () => this.simulator?.stop() },
    );
    this.status.setCertificate(() => this.certificateWatch.view());
    this.status.setAuthFailures(() => this.authFailures.view());
    this.registry.counterFrom('pumpwatch_http_auth_failures_total', 'Requests refused by the access checks of the status endpoint, by reason (missing-token, wrong-token, not-loopback, host-name, cross-origin)', () =>
      this.authFailures.samples(),
    );
    if (config.httpTlsCertFile !== undefined) this.status.addHealthCheck({ name: 'http-tls', check: () => this.certificateWatch.health() });
    this.status.addHealthCheck({
      name: 'buffer',
      check: () => (this.bufferError ? { ok: false, error: this.bufferError } : this.buffer.health()),
    });
    registerCoreRoutes(this.server, { status: this.status, models: this.models, buffer: this.buffer, registry: this.registry });
    registerReadingsRoute(this.server, {
      pipeline: this.pipeline,
      maxBodyBytes: () => this.config.maxBodyBytes,
      maxReadings: () => this.config.maxReadingsPerRequest,
    });
    this.registry.gauge('pumpwatch_buffer_rows', 'Rows in the buffer', () => this.bufferStat('rows'));
    this.registry.gauge('pumpwatch_buffer_unsynced_rows', 'Rows not yet uploaded', () => this.bufferStat('unsynced'));
    this.registry.gauge('pumpwatch_buffer_bytes', 'Bytes used by the buffer', () => this.bufferStat('bytes'));
    // the cap in force: on a small volume the disk's free space, not the setting (a review saw 1 GiB reported while 3 MB evicted)
    this.registry.gauge('pumpwatch_buffer_max_bytes', "Disk cap of the buffer in force (the setting, or the disk's limit when tighter)", () => this.bufferStat('diskLimitBytes') || this.config.bufferMaxBytes);
    this.registry.counterFrom('pumpwatch_buffer_evicted_total', 'Rows evicted to stay under the disk cap', () => this.bufferStat('evicted'));
    this.registry.gauge('pumpwatch_buffer_unreadable_rows', 'Rows a damaged page of the buffer file keeps from being read, set aside by the sync (never uploaded)', () => this.bufferStat('unreadableRows'));
    this.registry.gauge('pumpwatch_buffer_unreadable_ranges', 'Seq ranges of such rows', () => this.bufferStat('unreadableRanges'));
    this.registry.counterFrom(
      'pumpwatch_buffer_rows_without_contributions_total',
      'Rows uploaded since start without their contributions, the stored contributions undecodable (values, score and verdict as stored)',
      () => this.bufferStat('withoutContributions'),
    );
    this.status.setSensorFaults(() => this.sensorFaults());
    this.registry.gauge('pumpwatch_sensors_frozen', 'Sensors found frozen now (a run of identical readings on a running pump as long as its model bounds), per pump', () =>
      Object.entries(this.sensorFaults()).map(([pump, faults]) => ({ labels: { pump }, value: faults.length })),
    );
    this.registry.gauge('pumpwatch_process_memory_bytes', 'Memory of the agent process by kind (process.memoryUsage of the main thread)', () => {
      const m = process.memoryUsage();
      const kinds = { rss: m.rss, heap_total: m.heapTotal, heap_used: m.heapUsed, external: m.external, array_buffers: m.arrayBuffers };
      return Object.entries(kinds).map(([kind, value]) => ({ labels: { kind }, value }));
    });
  }

  /** Per pump with a sensor found frozen now, those sensors (`since` ISO), for /status and /metrics. */
  private sensorFaults(): Record<string, SensorFaultView[]> {
    const out: Record<string, SensorFaultView[]> = {};
    for (const pumpId of this.engine.pumpIds()) {
      const faults = this.engine.sensorFaults(pumpId);
      if (faults.length > 0) out[pumpId] = faults.map(sensorFaultView);
    }
    return out;
  }

  /** One buffer.stats() per /metrics render (its gauges ask within the same millisecond), not one per gauge. */
  private bufferStat(name: 'rows' | 'unsynced' | 'bytes' | 'evicted' | 'unreadableRows' | 'unreadableRanges' | 'withoutContributions' | 'diskLimitBytes'): number {
    try {
      const now = performance.now();
      if (this.statsCache === null || now - this.statsCache.at > 100) this.statsCache = { at: now, stats: this.buffer.stats() };
      const s = this.statsCache.stats;
      if (name === 'evicted') return s.evicted.total;
      if (name === 'unreadableRows') return s.unreadable.rows;
      if (name === 'unreadableRanges') return s.unreadable.ranges;
      if (name === 'withoutContributions') return s.withoutContributions.rows;
      if (name === 'diskLimitBytes') return s.diskLimitBytes ?? 0;
      return s[name];
    } catch {
      this.statsCache = null;
      return Number.NaN;
    }
  }

  /**
   * The clocks, the buffer file and its newest seq at the buffer's last open: the rows this run
   * receives into that file are above the seq (recordClockStep's fromSeq), and a step made before
   * the scheduler's first comparison of the clocks is measured from the clocks (scheduleJobs).
   */
  private lastOpen: { wall: number; monotonic: number; seq: number | null; file: string | null } | null = null;

  /** A buffer that cannot open (read-only, full, corrupt) leaves the agent up and unhealthy, not crash-looping. */
  private openBuffer(): boolean {
    this.bufferAttempts++;
    try {
      this.buffer.open();
    } catch (err) {
      if (!(err instanceof BufferError)) throw err;
      this.bufferError = `${err.code}: ${err.message}`;
      this.logger.error({ component: 'buffer', err }, 'buffer unavailable; readings are refused until it opens (retried every 30 s)');
      return false;
    }
    if (this.bufferError !== null) this.logger.info({ component: 'buffer', attempts: this.bufferAttempts }, `buffer opened after ${this.bufferAttempts} attempts`);
    this.bufferError = null;
    this.bufferAttempts = 0;
    this.evictionWatch.opened(); // the baseline now, before the first commit can evict
    this.checkDiskRoom();
    this.checkClockAgainstBuffer();
    return true;
  }

  /**
   * Says when the gateway clock reads earlier than the newest reading the buffer received: it was
   * stepped back since, or is wrong now (a gateway without a clock battery boots in the past), and
   * readings are judged against it (`PUMPWATCH_MAX_FUTURE_SECONDS`) until NTP sets it. Notes the
   * newest seq of the file opened (a step this run notices corrects only the rows above it) and
   * the clocks, for a step made before the scheduler's first comparison.
   */
  private checkClockAgainstBuffer(): void {
    const newest = this.buffer.newestReceivedAt();
    const now = (this.options.clock ?? Date.now)();
    this.lastOpen = { wall: Date.now(), monotonic: monotonicNow(), seq: newestSeq(new SyncBatches(this.buffer)), file: this.buffer.openFile() };
    if (newest === null) return;
    if (newest - now >= CLOCK_BEHIND_WARN_MS) {
      this.logger.warn(
        { component: 'buffer', now: new Date(now).toISOString(), newestReceivedAt: new Date(newest).toISOString() },
        `the gateway clock reads ${new Date(now).toISOString()}, ${formatDuration(newest - now)} earlier than the newest reading this buffer received (${new Date(newest).toISOString()}): it is wrong now or was before; readings are judged against it (PUMPWATCH_MAX_FUTURE_SECONDS) until it is set`,
      );
    }
  }

  /** Says once per open when the disk cannot hold the buffer's cap: it then fills before the cap rules. */
  private checkDiskRoom(): void {
    const room = this.buffer.diskCapacityBytes();
    const cap = this.buffer.maxBytesSetting;
    if (room === null || room >= cap) return;
    this.logger.warn(
      { component: 'buffer', maxBytes: cap, diskRoomBytes: room },
      `the disk can hold ${formatMiB(room)} of buffer, less than its cap of ${formatMiB(cap)} (PUMPWATCH_BUFFER_MAX_BYTES): when the disk is full the oldest unsent normal readings are evicted as under the cap; lower the cap to keep room for the rest of the gateway`,
    );
  }

  /** The scheduler's retry of a buffer that could not open; once it opens, the persisted models come back. */
  async reopenBuffer(): Promise<void> {
    if (this.bufferError === null || !this.openBuffer()) return;
    await this.models.restore();
    this.seedWindows();
  }

  /**
   * Each pump's last readings from the buffer go back into its scoring history, so after a restart
   * its window is full at its first reading (unless that reading comes after a pause: see GAP_FACTOR):
   * as many as the models loaded need (the engine's historyNeeded: the longest window and the
   * readings a missing value may be carried over; 256 at least). Read SEED_ROWS_FACTOR times that
   * many rows: rows left out of the history when they came (a replayed backlog, resends) are
   * left out again, and must not crowd out the live ones. More when a model's frozen-sensor bound
   * (`pumpwatch.stuck_after`) is longer, so a sensor frozen before the restart is known frozen again
   * at once, and not alerted a second time.
   */
  private seedWindows(): void {
    if (this.bufferError !== null) return;
    try {
      // Enough rows too to count a frozen sensor's run up to its model's bound again (engine.frozenReadBack).
      const limit = Math.max(SEED_ROWS_FACTOR * this.engine.historyNeeded(), this.engine.frozenReadBack() + 1);
      for (const pumpId of this.buffer.pumpIds()) this.engine.seed(pumpId, this.buffer.predictions(pumpId, { limit }));
    } catch (err) {
      this.logger.warn({ component: 'ingest', err }, 'could not read the last readings back: windows fill again from the next readings');
    }
  }

  /** The `default` model file: a configured one that cannot be used is a configuration error (exit 2). */
  private async loadDefaultModel(): Promise<void> {
    const configured = this.options.defaultModelPath === undefined ? this.config.defaultModel : undefined;
    try {
      await this.models.loadBundledDefault(this.options.defaultModelPath ?? configured ?? bundledModelPath());
    } catch (err) {
      if (!(err instanceof ModelFileError) || configured === undefined) throw err;
      throw new ConfigError([`${CONFIG_KEYS.defaultModel.env}=${JSON.stringify(configured)}: ${err.reason}`]);
    }
  }

  private scheduleJobs(): void {
    this.scheduler.every('system-health', '*/10 * * * * *', async () => {
      await this.system.sample();
    });
    this.scheduler.every('buffer-reopen', '*/30 * * * * *', () => this.reopenBuffer());
    this.scheduler.every('eviction-watch', '*/10 * * * * *', () => this.evictionWatch.check());
    // An agent that runs for months passes its certificate's expiry: said once it comes within 14 days, and once it passed.
    if (this.statusTls !== null) this.scheduler.every('tls-expiry', '0 0 * * * *', () => this.certificateWatch.check());
    // Retention measures a row's age from its receive time: rows received before a step are on a
    // clock that was behind (ahead), recorded with the step (buffer/batches.ts recordClockStep). The
    // rows up to the newest at the last check of the clocks surely came before a step the next check
    // notices: only those since (5 s of readings, however many) are told apart by receive time. The
    // seq belongs to the file open then: after a restored backup or a reset (seqs start lower), it
    // says nothing of the rows of the file open now, and every row is told apart by receive time.
    const clockSteps = new SyncBatches(this.buffer);
    let checked: { seq: number | null; file: string | null } = { seq: null, file: null };
    let first = true;
    this.scheduler.onClockCheck(({ stepMs, wallNow }) => {
      // At the first comparison (stepMs null), the step since the buffer opened at start-up, if any:
      // without it, NTP setting the clock while the agent starts went unseen, and the rows received
      // on the old clock kept its times.
      const opened = first ? this.lastOpen : null;
      first = false;
      const before = opened ?? checked;
      const file = this.bufferError === null ? this.buffer.openFile() : null;
      checked = { seq: file === null ? null : newestSeq(clockSteps), file };
      const step = stepMs ?? (opened === null ? null : wallNow - opened.wall - (monotonicNow() - opened.monotonic));
      if (step !== null) this.recordClockStep(clockSteps, step, wallNow, before.file !== null && before.file === file ? before.seq : null);
    });
    this.scheduler.start();
    void this.system.sample();
  }

  /** Records a clock step for retention; one that cannot be recorded is said, never dropped silently. */
  private recordClockStep(clockSteps: SyncBatches, stepMs: number, now: number, checkedSeq: number | null): void {
    if (Math.abs(stepMs) < MIN_RECORDED_STEP_MS) return;
    const unrecorded = (why: string, err?: unknown): void =>
      this.logger.warn(
        { component: 'buffer', stepSeconds: Math.round(stepMs / 1000), err },
        `the clock step of ${formatDuration(Math.abs(stepMs))} could not be recorded (${why}): ${
          stepMs > 0 ? 'retention may delete synced rows received before it early' : `retention may keep synced rows received before it ${formatDuration(-stepMs)} longer than PUMPWATCH_RETENTION_HOURS`
        }`,
      );
    if (this.bufferError !== null) {
      unrecorded('the buffer is not open');
      return;
    }
    try {
      // A file this run did not open (cannot happen: every open notes it) would be corrected whole.
      const open = this.lastOpen;
      const run = open !== null && open.file !== null && open.file === this.buffer.openFile() ? (open.seq ?? 0) : 0;
      clockSteps.recordClockStep(stepMs, now, checkedSeq, run);
    } catch (err) {
      unrecorded(err instanceof BufferError ? err.code : 'an error', err);
    }
  }

  private startSimulator(): void {
    const pumps = this.config.resolvedSimulate;
    if (pumps <= 0) return;
    this.simulator = new SimulatedSource({
      pumps,
      ratePerPumpHz: this.config.simulateRateHz,
      faults: 'random',
      meanFaultIntervalMs: this.config.simulateFaultIntervalMinutes * 60_000,
      sink: (readings) => this.pipeline.ingest(readings, 'simulator'),
      logger: this.logger.child({ component: 'simulator' }),
    });
    const simulator = this.simulator;
    this.status.setSimulator(() => ({ faults: 'random', pumps: simulator.faults }));
    this.simulator.start();
  }

  async start(): Promise<void> {
    const starting = this.startParts();
    this.starting = starting;
    try {
      await starting;
    } finally {
      if (this.starting === starting) this.starting = null;
    }
  }

  /** Starts the parts in order; a stop asked for meanwhile lets the part starting finish, and no other. */
  private async startParts(): Promise<void> {
    for (const part of this.parts) {
      if (this.stopping !== null) return;
      await part.start();
      this.started.push(part);
    }
  }

  /**
   * Stops in reverse order; every step runs even when an earlier one fails. A stop during start()
   * (a SIGTERM while the agent starts) waits for the part starting, then stops what started; a
   * second call meanwhile waits for the same stop.
   */
  stop(): Promise<void> {
    this.stopping ??= this.stopParts().finally(() => {
      this.stopping = null;
    });
    return this.stopping;
  }

  private async stopParts(): Promise<void> {
    await this.starting?.catch(() => undefined); // its failure is start()'s to report
    const parts = this.started.reverse();
    this.started = [];
    await stopEach(parts, (name, err) => this.logger.error({ component: name, err: { message: safeErrorMessage(err) } }, 'stop step failed'));
  }

  /**
   * After stop(): calls the OS has not answered that node's exit would wait for forever (a thread
   * held in the kernel), each named; empty when the process can exit normally (agent/cli-main.ts).
   */
  exitHeldBy(): string[] {
    return [this.housekeeping.held, this.system.held()].filter((h): h is string => h !== null);
  }

  /** Where the status endpoint listens, and whether it speaks HTTPS. */
  httpAddress(): { host: string; port: number; tls: boolean } | null {
    const a = this.server.address();
    return a ? { host: a.address, port: a.port, tls: this.statusTls !== null } : null;
  }
}

/** The buffer's newest seq, null when it cannot be read (then a step's rows are all compared by time). */
function newestSeq(batches: SyncBatches): number | null {
  try {
    return batches.lastSeq();
  } catch {
    return null;
  }
}

function formatMiB(bytes: number): string {
  return `${(bytes / 1048576).toFixed(0)} MiB`;
}

/** A gateway clock this far behind the buffer's newest reading is worth a warning at open. */
const CLOCK_BEHIND_WARN_MS = 5 * 60_000;
