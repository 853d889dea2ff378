/**
 * Retry timing: exponential backoff with full jitter and a cap (the *when*). Whether to retry is
 * the caller's classifier. Used by model downloads and the IoT Edge client.
 */
export interface BackoffPolicy {
  /** First delay (ms). */
  baseMs: number;
  /** Longest delay (ms). */
  capMs: number;
  /** Random source in [0, 1); injectable so tests are deterministic. */
  random?: () => number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1_000, capMs: 60_000 };

/** Delay before retry number `attempt` (1 = first retry): uniform in [d/2, d], d = min(cap, base·2^(attempt-1)). */
export function backoffDelay(policy: BackoffPolicy, attempt: number): number {
  const d = Math.min(policy.capMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  const r = (policy.random ?? Math.random)();
  return Math.round(d / 2 + (d / 2) * r);
}

/** Resolves after `ms`, or rejects with the signal's reason when it is aborted first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
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
}
