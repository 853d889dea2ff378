/**
 * Upload bandwidth cap for metered links: a token bucket of bytes refilled at `rate()` bytes per
 * second holding at most one second's worth. A blob larger than the bucket is let through and
 * paid back by waiting, so the average stays at the cap whatever the blob size.
 */
import { monotonicNow } from './clock.js';

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** A cancellable sleep on the global timers (so tests can drive it with fake timers). */
export const sleep: Sleep = (ms, signal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

export class TokenBucket {
  private tokens = 0;
  private last: number;
  private lastRate = 0;

  constructor(
    /** Bytes per second; 0 or less: no cap. Read at every call (a live setting). */
    private readonly rate: () => number,
    /** Monotonic ms; a clock that steps back adds no bytes (and takes none away). */
    private readonly clock: () => number = monotonicNow,
    private readonly wait: Sleep = sleep,
  ) {
    this.last = clock();
  }

  /** Resolves when `bytes` may be sent without exceeding the cap on average. */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    const rate = this.rate();
    const now = this.clock();
    if (rate <= 0) {
      this.lastRate = 0;
      this.last = now;
      return;
    }
    if (rate !== this.lastRate) {
      // A new cap starts with a full bucket of the new size.
      this.tokens = rate;
      this.lastRate = rate;
    } else {
      this.tokens = Math.min(rate, this.tokens + (Math.max(0, now - this.last) * rate) / 1000);
    }
    this.last = now;
    this.tokens -= bytes;
    if (this.tokens < 0) await this.wait(Math.ceil((-this.tokens / rate) * 1000), signal);
  }
}
