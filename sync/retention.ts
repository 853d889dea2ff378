/**
 * Retention of synced rows: they stay in the buffer for the technician page for `retentionHours`
 * after they were received, then go. Unsynced rows are never touched here (the buffer's disk cap
 * decides about those).
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { RETENTION_STEP_ROWS, type SyncBatches } from '../buffer/batches.js';

/**
 * Deletes in steps of RETENTION_STEP_ROWS, each its own transaction, and lets the event loop run
 * between them (setImmediate comes after pending I/O): scoring and HTTP wait one step, not the
 * whole backlog. `stopped`: checked between steps (the agent stopping closes the buffer).
 */
export async function deleteExpiredSynced(batches: SyncBatches, retentionHours: number, now: number, stopped: () => boolean = () => false): Promise<{ deleted: number; cutoff: number }> {
  const cutoff = now - Math.max(0, retentionHours) * 3_600_000;
  // Where the search may stop (the first row received at or after the cutoff), found in steps too.
  let below = Number.MAX_SAFE_INTEGER;
  for (let after = 0; ; ) {
    const { bound, last } = batches.retentionBoundStep(cutoff, after);
    if (bound !== null) below = bound;
    if (bound !== null || last === null) break;
    after = last;
    await nextTurn();
    if (stopped()) return { deleted: 0, cutoff };
  }
  let deleted = 0;
  for (;;) {
    const n = batches.deleteSyncedBefore(cutoff, RETENTION_STEP_ROWS, below);
    deleted += n;
    if (n < RETENTION_STEP_ROWS) return { deleted, cutoff };
    await nextTurn();
    if (stopped()) return { deleted, cutoff };
  }
}
