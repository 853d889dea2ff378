import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from './logger.js';

/**
 * Periodic jobs (node-cron, six-field patterns with seconds). A job never overlaps itself;
 * its failures are logged, never thrown into the event loop. `stop()` waits for running jobs.
 */
export class Scheduler {
  private readonly tasks = new Map<string, { task: ScheduledTask; running: Promise<void> | null }>();
  private started = false;

  constructor(private readonly logger: Logger) {}

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
      { name, noOverlap: true },
    );
    const old = this.tasks.get(name);
    if (old) void Promise.resolve(old.task.destroy());
    this.tasks.set(name, entry);
    if (this.started) void Promise.resolve(entry.task.start());
  }

  start(): void {
    this.started = true;
    for (const { task } of this.tasks.values()) void Promise.resolve(task.start());
  }

  async stop(): Promise<void> {
    this.started = false;
    for (const { task } of this.tasks.values()) await task.destroy();
    await Promise.all([...this.tasks.values()].map((e) => e.running ?? Promise.resolve()));
    this.tasks.clear();
  }
}
