/**
 * Retention of synced rows: they stay in the buffer for the technician page for `retentionHours`
 * after they were received, then go. Unsynced rows are never touched here (the buffer's disk cap
 * decides about those).
 */
import type { SyncBatches } from '../buffer/batches.js';

export function deleteExpiredSynced(batches: SyncBatches, retentionHours: number, now: number): { deleted: number; cutoff: number } {
  const cutoff = now - Math.max(0, retentionHours) * 3_600_000;
  return { deleted: batches.deleteSyncedBefore(cutoff), cutoff };
}
