import cron, { type ScheduledTask } from 'node-cron';
import { monotonicNow } from '../sync/clock.js';
import type { Logger } from './logger.js';

/** How often the wall clock is checked against the monotonic one, and the step that counts. */
const CLOCK_CHECK_MS = 5_000;
const CLOCK_STEP_MS = 2_000;
/**
 * The longest a job's timer waits before the wall clock is read again: after a backward step an
 * hourly job re-plans within this, instead of waiting for the wall clock to reach its old slot.
 */
const REPLAN_MS = 60_000;

/**
 * How long stop() waits for jobs still running. A job stuck on the OS (a system sample behind a
 * hung mount) is abandoned after it: the rest of the stop (SQLite closed last) must fit in IoT
 * Edge's and Docker's 10 s grace period.
 */
const STOP_WAIT_MS = 1_000;

export interface SchedulerOptions {
  /** How often the clocks are compared (default CLOCK_CHECK_MS). */
  clockCheckMs?: number;
  /** How long stop() waits for running jobs (default STOP_WAIT_MS). */
  stopWaitMs?: number;
  /** The longest wait before a job's next run is planned again from the wall clock (default REPLAN_MS). */
  replanMs?: number;
}

/** One comparison of the wall clock with the monotonic one (at start() and every `clockCheckMs`). */
export interface ClockCheck {
  /** How far the wall clock stepped since the last check (ms, positive forward); null at start() and below the step that counts. */
  stepMs: number | null;
  /** The wall clock at the check. */
  wallNow: number;
}

interface Job {
  name: string;
  /** node-cron's task for the pattern: never started, only asked for the next matching time. */
  task: ScheduledTask;
  job: () => Promise<void> | void;
  timer: NodeJS.Timeout | null;
  /** The slot (wall ms) the timer waits for, and whether the timer ends at it or only re-plans (capped). */
  slot: number;
  capped: boolean;
  /** When the slot is due on the monotonic clock; how late the run comes tells runs missed with the event loop held. */
  slotMonotonic: number;
  /** The gap to the slot after it (ms), to count the slots a late run covers. */
  periodMs: number;
  /** The last slot run: never run twice, should the wall clock read a little behind the monotonic one. */
  lastSlot: number | null;
}

/**
 * Periodic jobs on six-field cron patterns (with seconds). A job never overlaps itself (a run due
 * while the last one still runs is skipped); its failures are logged, never thrown into the event
 * loop. `stop()` waits for running jobs, for a bounded time.
 *
 * node-cron validates the patterns and says when each next matches the wall clock, but its own
 * heartbeat is never started: after a forward step of the wall clock (a gateway booted at 1970
 * that NTP sets right) node-cron 4 walks every slot it skipped, synchronously (7 million a year for
 * a 10-s job), holding the event loop for minutes and growing memory. Each job waits on its own
 * timer instead, which runs on the monotonic clock, for the next match but at most `replanMs`
 * before reading the wall clock again: a step either way costs one re-plan. The scheduler also
 * compares the two clocks every `clockCheckMs`; after a step it re-plans every job from the new
 * time at once and logs one line. A step either way moves the jobs onto the new time's slots: the
 * slots a step forward jumps over are not caught up (each job misses at most the one run that was
 * due), and after a step back a job waits for its next slot on the new time. Runs missed because
 * the event loop was held up are counted in one warning per check.
 */
export class Scheduler {
  private readonly jobs = new Map<string, Job>();
  /** A job's run in progress, by name: a replaced job's new version waits for it too, and stop() does. */
  private readonly runs = new Map<string, Promise<void>>();
  private started = false;
  private clockTimer: NodeJS.Timeout | null = null;
  private lastCheck: { wall: number; monotonic: number } | null = null;
  private missed = 0;
  private readonly stepListeners: Array<(stepMs: number, wallNow: number) => void> = [];
  private readonly checkListeners: Array<(check: ClockCheck) => void> = [];

  constructor(
    private readonly logger: Logger,
    private readonly options: SchedulerOptions = {},
  ) {}

  /** Adds (or replaces, for a live configuration change) a job; started now if the scheduler runs. */
  every(name: string, pattern: string, job: () => Promise<void> | void): void {
    if (!cron.validate(pattern)) throw new Error(`job ${name}: invalid cron pattern "${pattern}"`);
    // Anything node-cron says goes to our log, not as coloured text on stderr.
    const task = cron.createTask(pattern, () => undefined, { name, logger: this.cronLogger });
    const entry: Job = { name, task, job, timer: null, slot: 0, capped: false, slotMonotonic: 0, periodMs: 0, lastSlot: null };
    const old = this.jobs.get(name);
    if (old) this.drop(old);
    this.jobs.set(name, entry);
    if (this.started) this.plan(entry);
  }

  /**
   * Called after each clock step the scheduler notices, with the step (ms, positive forward) and
   * the wall clock then; a listener's failure is logged.
   */
  onClockStep(listener: (stepMs: number, wallNow: number) => void): void {
    this.stepListeners.push(listener);
  }

  /**
   * Called at every comparison of the clocks, in the same turn of the event loop: at start() and
   * every `clockCheckMs`, with the step noticed, if any. What a listener notes at a check (the
   * buffer's newest row) surely came before a step the next check notices. A listener's failure is
   * logged.
   */
  onClockCheck(listener: (check: ClockCheck) => void): void {
    this.checkListeners.push(listener);
  }

  /** False once stop() began: a job in steps (retention) checks it between them. */
  get running(): boolean {
    return this.started;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    for (const entry of this.jobs.values()) this.plan(entry);
    this.lastCheck = { wall: Date.now(), monotonic: monotonicNow() };
    this.notifyCheck({ stepMs: null, wallNow: this.lastCheck.wall });
    this.clockTimer ??= setInterval(() => this.checkClock(), this.options.clockCheckMs ?? CLOCK_CHECK_MS);
    this.clockTimer.unref();
  }

  /** Stops every job; waits for those running at most `stopWaitMs`, then abandons them (named in a warning). */
  async stop(): Promise<void> {
    this.started = false;
    if (this.clockTimer) clearInterval(this.clockTimer);
    this.clockTimer = null;
    for (const entry of this.jobs.values()) this.drop(entry);
    this.jobs.clear();
    const running = [...this.runs.entries()];
    if (running.length === 0) return;
    const waitMs = this.options.stopWaitMs ?? STOP_WAIT_MS;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), waitMs);
    });
    try {
      if ((await Promise.race([Promise.all(running.map(([, p]) => p)), late])) !== 'late') return;
    } finally {
      clearTimeout(timer);
    }
    // A run leaves `runs` as it settles (see run()): those still there are running.
    const abandoned = running.filter(([name]) => this.runs.has(name)).map(([name]) => name);
    this.logger.warn({ jobs: abandoned, waitedMs: waitMs }, `stopped without waiting any longer for ${abandoned.join(', ')} (still running after ${waitMs} ms)`);
  }

  /** node-cron's own messages (a bad pattern, say), as log lines of ours instead of coloured text on stderr. */
  private readonly cronLogger = {
    info: (message: string) => this.logger.debug({ from: 'node-cron' }, message),
    warn: (message: string) => this.logger.warn({ from: 'node-cron' }, message),
    error: (message: string | Error, err?: Error) => this.logger.error({ from: 'node-cron', err: err ?? (message instanceof Error ? message : undefined) }, String(message instanceof Error ? message.message : message)),
    debug: (message: string | Error) => this.logger.debug({ from: 'node-cron' }, String(message instanceof Error ? message.message : message)),
  };

  /** Clears a job's timer and forgets its node-cron task (which leaves node-cron's registry). */
  private drop(entry: Job): void {
    if (entry.timer !== null) clearTimeout(entry.timer);
    entry.timer = null;
    void Promise.resolve(entry.task.destroy());
  }

  /** Sets the job's timer for its next slot on the wall clock as it reads now (at most `replanMs` ahead). */
  private plan(entry: Job): void {
    if (entry.timer !== null) clearTimeout(entry.timer);
    const now = Date.now();
    // Two matches, both found forward from now (node-cron never walks the slots in between).
    const [first, second] = entry.task.getNextRuns(2).map((d) => d.getTime()) as [number, number];
    const slot = first === entry.lastSlot ? second : first;
    entry.periodMs = slot === first ? second - first : entry.task.getNextRuns(3)[2]!.getTime() - second;
    const delay = Math.max(0, slot - now);
    const cap = this.options.replanMs ?? REPLAN_MS;
    entry.slot = slot;
    entry.capped = delay > cap;
    entry.slotMonotonic = monotonicNow() + delay;
    entry.timer = setTimeout(() => this.fire(entry), Math.min(delay, cap));
  }

  private fire(entry: Job): void {
    entry.timer = null;
    if (!this.started || this.jobs.get(entry.name) !== entry) return;
    const late = monotonicNow() - entry.slotMonotonic;
    if (entry.capped && late < 0) {
      // Only the cap elapsed: read the wall clock again (it may have stepped either way).
      this.plan(entry);
      return;
    }
    // The wait for the slot elapsed on the monotonic clock: the slot is due, whatever the wall clock
    // did meanwhile. Coming this late means the event loop was held: count the slots it covered.
    if (entry.periodMs > 0 && late >= entry.periodMs) this.missed += Math.floor(late / entry.periodMs);
    entry.lastSlot = entry.slot;
    this.run(entry);
    this.plan(entry);
  }

  /** Runs the job unless its last run still runs; failures become a log line. */
  private run(entry: Job): void {
    if (this.runs.has(entry.name)) return;
    const run: Promise<void> = Promise.resolve()
      .then(entry.job)
      .catch((err: unknown) => this.logger.warn({ err, job: entry.name }, 'scheduled job failed'))
      .finally(() => {
        if (this.runs.get(entry.name) === run) this.runs.delete(entry.name);
      });
    this.runs.set(entry.name, run);
  }

  /** Re-plans every job from the current wall time when the wall clock stepped since the last check. */
  private checkClock(): void {
    const now = { wall: Date.now(), monotonic: monotonicNow() };
    const last = this.lastCheck;
    this.lastCheck = now;
    if (last === null || !this.started) return;
    const step = now.wall - last.wall - (now.monotonic - last.monotonic);
    const missed = this.missed;
    this.missed = 0;
    if (Math.abs(step) < CLOCK_STEP_MS) {
      // Runs missed without a clock step: the event loop was held up (at most one line per check).
      if (missed > 0) this.logger.warn({ missedRuns: missed }, `${missed} scheduled run(s) missed: the event loop was held up (a long commit, a slow disk, CPU)`);
      this.notifyCheck({ stepMs: null, wallNow: now.wall });
      return;
    }
    // Each job's next slot as the new time reads (a job whose timer was about to end waits for it).
    for (const entry of this.jobs.values()) this.plan(entry);
    this.logger.warn(
      { stepSeconds: Math.round(step / 1000), jobs: this.jobs.size, missedRuns: missed },
      `the system clock stepped ${step > 0 ? 'forward' : 'back'} by ${formatDuration(Math.abs(step))}; scheduled jobs restarted from the new time`,
    );
    for (const listener of this.stepListeners) {
      try {
        listener(step, now.wall);
      } catch (err) {
        this.logger.warn({ err }, 'a clock step listener failed');
      }
    }
    this.notifyCheck({ stepMs: step, wallNow: now.wall });
  }

  private notifyCheck(check: ClockCheck): void {
    for (const listener of this.checkListeners) {
      try {
        listener(check);
      } catch (err) {
        this.logger.warn({ err }, 'a clock check listener failed');
      }
    }
  }
}

/** A clock step or a lag in log lines: `45 s` below 2 minutes, `60 min` below 2 hours, else `24.0 h`. */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}
