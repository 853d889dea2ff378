/**
 * The version the model.json records show was made best last, which a lost or unreadable
 * best.json is restored to (best-record.ts, read.ts): a file of its own so that read.ts, which
 * best-record.ts builds on, can name it too.
 */
import type { ModelRecord } from './records.js';

/**
 * The version the records show was made best last: by a train (`promoted: true`, at its
 * `createdAt`, which is best.json's `promotedAt`) or by a rollback (`restoredAt`), unless a
 * rollback moved best.json away from it since. Every move of best.json is one of these, so
 * when every record is from a trainer that marks rollbacks, this is the version best.json named.
 */
export function lastMadeBest(records: readonly ModelRecord[]): { version: string; how: string } | null {
  let found: { version: string; how: string; at: number } | null = null;
  for (const r of records) {
    const promoted = r.decision.promoted ? timeOf(r.createdAt) : -Infinity;
    const restored = r.restoredAt !== undefined ? timeOf(r.restoredAt) : -Infinity;
    const at = Math.max(promoted, restored);
    if (at === -Infinity || (r.rolledBack !== undefined && timeOf(r.rolledBack.at) >= at)) continue;
    if (found === null || at > found.at || (at === found.at && r.version > found.version)) {
      found = { version: r.version, at, how: restored >= promoted ? `by a rollback at ${r.restoredAt as string}` : `promoted by train at ${r.createdAt}` };
    }
  }
  return found === null ? null : { version: found.version, how: found.how };
}

/** Epoch ms of an ISO time; -Infinity for none (a hand-made record): never "in flight", never newest. */
export function timeOf(iso: string): number {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? t : -Infinity;
}
