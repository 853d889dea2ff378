/**
 * A raise dropped from a full pending list (alerts.ts trimPending, while the hub is unreachable)
 * must not leave its episode's later alerts naming a raise the control room never saw. The oldest
 * alert of the episode still pending becomes its raise: its `episode`, and that of the episode's
 * later pending alerts (a clear's `raisedAt` too), become its seq, and the open alarm follows
 * (OpenAlarms.reRaised). When only the episode's clear is left, it is dropped as well: a clear of
 * an alarm never raised. When nothing of it is left and the alarm is still open, the alarm is
 * unannounced: its next alert is sent as a raise (OpenAlarms.unannounce). Alert ids hold no
 * episode (alerts.ts idOf): they stay as they were.
 */
import type { OpenAlarms } from './open-alarms.js';

/** The fields of a pending alert a dropped raise changes. */
export interface EpisodeAlert {
  kind?: string;
  pumpId: string;
  seq: number;
  ts: string;
  episode?: number;
  raisedAt?: string;
}

/** An `anomaly` alert that raises its episode. */
export const isRaise = (a: EpisodeAlert): boolean => (a.kind ?? 'anomaly') === 'anomaly' && a.episode !== undefined && a.episode === a.seq;

/**
 * `gone`: alerts taken off the list unsent (oldest first); `pending`: the list without them. Returns
 * the pending clears to drop too (their raise is gone and nothing of their episode is left).
 */
export function afterDroppedRaises<P extends { alert: EpisodeAlert }>(gone: readonly P[], pending: readonly P[], alarms: OpenAlarms): Set<P> {
  const clears = new Set<P>();
  for (const { alert: raise } of gone) {
    if (!isRaise(raise)) continue;
    const episode = raise.episode!;
    const rest = pending.filter((p) => p.alert.pumpId === raise.pumpId && p.alert.episode === episode && !clears.has(p));
    const heir = rest[0];
    if (heir === undefined) alarms.unannounce(raise.pumpId, episode);
    else if (heir.alert.kind === 'anomaly-cleared') clears.add(heir);
    else {
      for (const p of rest) {
        p.alert.episode = heir.alert.seq;
        if (p.alert.kind === 'anomaly-cleared') p.alert.raisedAt = heir.alert.ts;
      }
      alarms.reRaised(raise.pumpId, episode, heir.alert.seq, heir.alert.ts);
    }
  }
  return clears;
}
