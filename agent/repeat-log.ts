/**
 * Log lines for a failure that repeats while its cause lasts (the buffer down, the disk full): the
 * first occurrence is logged, then at most one summary per interval with the number of repeats
 * not logged since, and one line when it works again. A failure every tick of every pump would
 * otherwise write a line or two per second for as long as the outage lasts.
 */
import { monotonicNow } from '../sync/clock.js';

type Write = (fields: object, msg: string) => void;

export interface RepeatLogOptions {
  /** Writes the first failure and the summaries (e.g. logger.error or logger.warn). */
  failure: Write;
  /**
   * Writes the recovery line (e.g. logger.info). None for what has no recovery to tell (refused
   * input, repeating while a sender keeps sending it): succeeded() is then never called.
   */
  recovery?: Write;
  /** The message of the failure lines. */
  message: string;
  /** The message of the recovery line, followed by "after N failures". */
  recovered?: string;
  /** Default 60 s. */
  intervalMs?: number;
  /** Monotonic ms for the interval (default performance.now()). */
  monotonic?: () => number;
}

export class RepeatLog {
  /** Failures since the last success (0: working). */
  private failures = 0;
  /** Failures not logged since the last line. */
  private unlogged = 0;
  private lastLineAt = 0;
  private readonly intervalMs: number;
  private readonly monotonic: () => number;

  constructor(private readonly options: RepeatLogOptions) {
    this.intervalMs = options.intervalMs ?? 60_000;
    this.monotonic = options.monotonic ?? monotonicNow;
  }

  failed(fields: object): void {
    this.failures++;
    const now = this.monotonic();
    if (this.failures === 1) {
      this.lastLineAt = now;
      this.options.failure(fields, this.options.message);
      return;
    }
    this.unlogged++;
    if (now - this.lastLineAt < this.intervalMs) return;
    const seconds = Math.round((now - this.lastLineAt) / 1000);
    this.options.failure({ ...fields, repeats: this.unlogged, failures: this.failures }, `${this.options.message} (${this.unlogged} more in the last ${seconds} s)`);
    this.lastLineAt = now;
    this.unlogged = 0;
  }

  succeeded(): void {
    if (this.failures === 0) return;
    const n = this.failures;
    this.options.recovery?.({ failures: n }, `${this.options.recovered ?? 'works again'} after ${n} failure${n === 1 ? '' : 's'}`);
    this.failures = 0;
    this.unlogged = 0;
  }
}

/**
 * One RepeatLog per kind of a repeating failure (a refusal's kind, a reason), made at its first
 * occurrence with the options `optionsOf(key)` gives: each kind has its own first line and summaries.
 */
export class RepeatLogs<K> {
  private readonly logs = new Map<K, RepeatLog>();

  constructor(private readonly optionsOf: (key: K) => RepeatLogOptions) {}

  of(key: K): RepeatLog {
    let log = this.logs.get(key);
    if (!log) {
      log = new RepeatLog(this.optionsOf(key));
      this.logs.set(key, log);
    }
    return log;
  }
}
