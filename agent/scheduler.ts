import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from './logger.js';

/**
 * Periodic jobs (node-cron, six-field patterns with seconds). A job never overlaps itself;
 * its failures are logged, never thrown into the event loop. `stop()` waits for running jobs.
 */
export class Scheduler {
  private readonly tasks = new Map<string, { task: ScheduledTask; running: Promise<void> | null }>();

  constructor(private readonly logger: Logger) {}

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
    this.tasks.get(name)?.task.destroy();
    this.tasks.set(name, entry);
  }

  /** Replaces a job's pattern (live configuration change). */
  reschedule(name: string, pattern: string, job: () => Promise<void> | void): void {
    const old = this.tasks.get(name);
    this.every(name, pattern, job);
    if (old) void Promise.resolve(old.task.destroy());
    void this.tasks.get(name)!.task.start();
  }

  start(): void {
    for (const { task } of this.tasks.values()) void task.start();
  }

  async stop(): Promise<void> {
    for (const { task } of this.tasks.values()) await task.destroy();
    await Promise.all([...this.tasks.values()].map((e) => e.running));
    this.tasks.clear();
  }
}

/** A cron pattern that fires every `seconds` seconds (1–59 s; whole minutes above). */
export function everySeconds(seconds: number): string {
  if (seconds < 60) return `*/${Math.max(1, Math.round(seconds))} * * * * *`;
  const minutes = Math.max(1, Math.round(seconds / 60));
  return minutes < 60 ? `0 */${minutes} * * * *` : `0 0 */${Math.min(23, Math.round(minutes / 60))} * * *`;
}
