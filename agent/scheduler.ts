import cron, { type ScheduledTask } from 'node-cron';
import { monotonicNow } from '../sync/clock.js';
import type { Logger } from './logger.js';

/** How often the wall clock is checked against the monotonic one, and the step that counts. */
const CLOCK_CHECK_MS = 5_000;
const CLOCK_STEP_MS = 2_000;

/**
 * How long stop() waits for jobs still running. A job stuck on the OS (a system sample behind a
 * hung mount) is abandoned after it: the rest of the stop (SQLite closed last) must fit in IoT
 * Edge's and Docker's 10 s grace period.
 */
const STOP_WAIT_MS = 1_000;

export interface SchedulerOptions {
  /** How often the clocks are compared (default CLOCK_CHECK_MS). The wall clock is Date's, the one node-cron plans on. */
  clockCheckMs?: number;
  /** How long stop() waits for running jobs (default STOP_WAIT_MS). */
  stopWaitMs?: number;
}

/**
 * Periodic jobs (node-cron, six-field patterns with seconds). A job never overlaps itself (a run
 * due while the last one still runs is skipped); its failures are logged, never thrown into the
 * event loop. `stop()` waits for running jobs, for a bounded time.
 *
 * node-cron plans each next run on the wall clock. When NTP steps it back (a gateway that booted
 * with its clock ahead) every job waits until the wall clock reaches its old next run, hours at
 * worst; stepped forward, it reports each skipped run on stdout. The scheduler notices a step
 * (the wall clock moved more, or less, than the monotonic one) and restarts the jobs from the new
 * time, with one log line; skipped runs are counted in that line, not printed one by one. Runs
 * missed without a step (the event loop held up) are counted in one warning per check.
 */
export class Scheduler {
  private readonly tasks = new Map<string, { task: ScheduledTask; running: Promise<void> | null }>();
  private started = false;
  private clockTimer: NodeJS.Timeout | null = null;
  private lastCheck: { wall: number; monotonic: number } | null = null;
  private missed = 0;

  constructor(
    private readonly logger: Logger,
    private readonly options: SchedulerOptions = {},
  ) {}

  /** Adds (or replaces, for a live configuration change) a job; started now if the scheduler runs. */
  every(name: string, pattern: string, job: () => Promise<void> | void): void {
    if (!cron.validate(pattern)) throw new Error(`job ${name}: invalid cron pattern "${pattern}"`);
    const entry: { task: ScheduledTask; running: Promise<void> | null } = { task: null as unknown as ScheduledTask, running: null };
    entry.task = cron.createTask(
      pattern,
      async () => {
        if (entry.running) return;
        entry.running = Promise.resolve()
          .then(job)
          .catch((err: unknown) => this.logger.warn({ err, job: name }, 'scheduled job failed'))
          .finally(() => {
            entry.running = null;
          });
        await entry.running;
      },
      // Our own guard above skips overlapping runs; node-cron's noOverlap would also print a warning
      // per skipped run on stderr (colour codes, outside the JSON log). Anything node-cron says goes to our log.
      { name, logger: this.cronLogger },
    );
    // A listener keeps node-cron from printing each missed run on stdout (outside the log).
    entry.task.on('execution:missed', () => {
      this.missed++;
    });
    const old = this.tasks.get(name);
    if (old) void Promise.resolve(old.task.destroy());
    this.tasks.set(name, entry);
    if (this.started) void Promise.resolve(entry.task.start());
  }

  /** False once stop() began: a job in steps (retention) checks it between them. */
  get running(): boolean {
    return this.started;
  }

  start(): void {
    this.started = true;
    for (const { task } of this.tasks.values()) void Promise.resolve(task.start());
    this.lastCheck = { wall: Date.now(), monotonic: monotonicNow() };
    this.clockTimer ??= setInterval(() => this.checkClock(), this.options.clockCheckMs ?? CLOCK_CHECK_MS);
    this.clockTimer.unref();
  }

  /** Stops every job; waits for those running at most `stopWaitMs`, then abandons them (named in a warning). */
  async stop(): Promise<void> {
    this.started = false;
    if (this.clockTimer) clearInterval(this.clockTimer);
    this.clockTimer = null;
    for (const { task } of this.tasks.values()) await task.destroy();
    const running = [...this.tasks.entries()].filter(([, e]) => e.running !== null);
    this.tasks.clear();
    if (running.length === 0) return;
    const waitMs = this.options.stopWaitMs ?? STOP_WAIT_MS;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), waitMs);
    });
    try {
      if ((await Promise.race([Promise.all(running.map(([, e]) => e.running!)), late])) !== 'late') return;
    } finally {
      clearTimeout(timer);
    }
    // A job's entry goes back to null as its run settles (see every()): those still set are running.
    const abandoned = running.filter(([, e]) => e.running !== null).map(([name]) => name);
    this.logger.warn({ jobs: abandoned, waitedMs: waitMs }, `stopped without waiting any longer for ${abandoned.join(', ')} (still running after ${waitMs} ms)`);
  }

  /** node-cron's own messages (a failed start, say), as log lines of ours instead of coloured text on stderr. */
  private readonly cronLogger = {
    info: (message: string) => this.logger.debug({ from: 'node-cron' }, message),
    warn: (message: string) => this.logger.warn({ from: 'node-cron' }, message),
    error: (message: string | Error, err?: Error) => this.logger.error({ from: 'node-cron', err: err ?? (message instanceof Error ? message : undefined) }, String(message instanceof Error ? message.message : message)),
    debug: (message: string | Error) => this.logger.debug({ from: 'node-cron' }, String(message instanceof Error ? message.message : message)),
  };

  /** Restarts every job from the current wall time when the wall clock stepped since the last check. */
  private checkClock(): void {
    const now = { wall: Date.now(), monotonic: monotonicNow() };
    const last = this.lastCheck;
    this.lastCheck = now;
    if (last === null || !this.started) return;
    const step = now.wall - last.wall - (now.monotonic - last.monotonic);
    if (Math.abs(step) < CLOCK_STEP_MS) {
      // Runs missed without a clock step: the event loop was held up (at most one line per check).
      if (this.missed > 0) this.logger.warn({ missedRuns: this.missed }, `${this.missed} scheduled run(s) missed: the event loop was held up (a long commit, a slow disk, CPU)`);
      this.missed = 0;
      return;
    }
    for (const { task } of this.tasks.values()) {
      void Promise.resolve(task.stop()).then(() => (this.started ? task.start() : undefined));
    }
    const missed = this.missed;
    this.missed = 0;
    this.logger.warn(
      { stepSeconds: Math.round(step / 1000), jobs: this.tasks.size, missedRuns: missed },
      `the system clock stepped ${step > 0 ? 'forward' : 'back'} by ${formatDuration(Math.abs(step))}; scheduled jobs restarted from the new time`,
    );
  }
}

/** A clock step or a lag in log lines: `45 s` below 2 minutes, `60 min` below 2 hours, else `24.0 h`. */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}
