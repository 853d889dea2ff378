/**
 * Warns when readings were evicted before they were uploaded (the disk cap reached while the
 * uploads lag, e.g. offline for days): that data is lost for good. The buffer counts evictions
 * (/status `buffer.evictedByKind`, /metrics) but a person reading the log should hear of it too.
 * Polled on a scheduler tick; at most one line a minute, with the count since the last line.
 * The baseline is taken when the buffer opens (`opened`), not at the first tick up to 10 s later:
 * the first seconds are when edgeHub replays its backlog and a cap lowered at restart evicts, and
 * evictions before that tick went into the baseline and were never told. What the rate limit still
 * holds at a stop is told then (`flush`).
 */
import type { EvictionCounts } from '../buffer/eviction.js';
import { monotonicNow } from '../sync/clock.js';

type LostKinds = Pick<EvictionCounts, 'unsynced' | 'anomalies'>;

export interface EvictionWatchOptions {
  /** The buffer's eviction counters since it was created (throws while it is not open). */
  counts: () => EvictionCounts;
  maxBytes: () => number;
  logger: { warn(obj: object, msg: string): void };
  /** Monotonic ms for the interval (default performance.now()). */
  monotonic?: () => number;
  /** Default 60 s. */
  intervalMs?: number;
}

export class EvictionWatch {
  /** The counts at the last check; null until the buffer could be read once (the baseline). */
  private seen: LostKinds | null = null;
  private unlogged: LostKinds = { unsynced: 0, anomalies: 0 };
  private lastLineAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: EvictionWatchOptions) {}

  /** The buffer opened: its counts now are the baseline (kept if one was taken before a reopen: the counts persist). */
  opened(): void {
    if (this.seen === null) this.check();
  }

  /** Tells what is not told yet, whatever the rate limit (the agent stops). */
  flush(): void {
    this.check(true);
  }

  check(force = false): void {
    let now: EvictionCounts;
    try {
      now = this.options.counts();
    } catch {
      return; // the buffer is not open: its own health check says so
    }
    const seen = this.seen;
    this.seen = { unsynced: now.unsynced, anomalies: now.anomalies };
    if (seen === null) return;
    this.unlogged.unsynced += Math.max(0, now.unsynced - seen.unsynced);
    this.unlogged.anomalies += Math.max(0, now.anomalies - seen.anomalies);
    const lost = this.unlogged.unsynced + this.unlogged.anomalies;
    const at = (this.options.monotonic ?? monotonicNow)();
    if (lost === 0 || (!force && at - this.lastLineAt < (this.options.intervalMs ?? 60_000))) return;
    this.options.logger.warn(
      { evicted: lost, evictedByKind: this.unlogged, evictedUnsyncedTotal: now.unsynced + now.anomalies, maxBytes: this.options.maxBytes() },
      `${lost} readings were evicted before they were uploaded, to keep the buffer under its disk cap; they are lost`,
    );
    this.unlogged = { unsynced: 0, anomalies: 0 };
    this.lastLineAt = at;
  }
}
