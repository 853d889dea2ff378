/**
 * A start time for readings a test builds by the second: 01:00 UTC yesterday. Recent enough for
 * anything that looks at a reading's age (retention, the status page's windows, the agent's ingest),
 * and 23 hours from a UTC midnight, where the sync starts a new blob (blob names hold the day).
 * `Date.now() - 1 h` crossed midnight when the suite ran between 00:00 and 01:00 UTC, and the tests
 * that count batches or blobs then counted one more.
 */
export function recentStartOffMidnight(now = Date.now()): number {
  const DAY = 86_400_000;
  return Math.floor(now / DAY) * DAY - DAY + 3_600_000;
}
