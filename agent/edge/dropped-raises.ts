/**
 * Which alerts a full pending list drops, and what a drop leaves right (alerts.ts trimPending).
 *
 * **The order** (dropRank): an open alarm's repeats first, then frozen-sensor alerts, then raises,
 * clears last, each oldest first. A repeat says only "still anomalous", which the open alarm says
 * already, and its count is carried on (carryDroppedRepeats); a clear dropped after its raise was
 * delivered would leave the control room holding an alarm that never clears. Before 2026-12-07
 * (late evening) the oldest went first whatever they were: an outage's repeats pushed out clears.
 *
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

/** The fields of a pending alert a dropped raise or repeat changes. */
export interface EpisodeAlert {
  kind?: string;
  pumpId: string;
  seq: number;
  ts: string;
  episode?: number;
  raisedAt?: string;
  suppressedSinceLast?: number;
}

/** A repeat of an open alarm: an `anomaly` alert of an episode raised before it. */
const isRepeat = (a: EpisodeAlert): boolean => (a.kind ?? 'anomaly') === 'anomaly' && a.episode !== undefined && a.episode !== a.seq;

/**
 * Lower goes first when the list is over its limit: repeats, frozen-sensor alerts, raises (an
 * older agent's anomaly alert without `episode` is one), clears.
 */
export function dropRank(a: EpisodeAlert): number {
  if (isRepeat(a)) return 0;
  const kind = a.kind ?? 'anomaly';
  return kind === 'anomaly' ? 2 : kind === 'anomaly-cleared' ? 3 : 1;
}

/**
 * Repeats taken off the list unsent (`gone`): each one, with the anomalies held back before it
 * (its `suppressedSinceLast`), is added to the count of the next alert of its episode still pending
 * (a repeat or the clear), else to its open alarm's count, which the episode's next alert carries.
 * So `suppressedSinceLast` still counts every anomalous reading not alerted. Returns the repeats.
 */
export function carryDroppedRepeats<P extends { alert: EpisodeAlert }>(gone: readonly P[], pending: readonly P[], alarms: OpenAlarms): number {
  let repeats = 0;
  for (const { alert } of gone) {
    if (!isRepeat(alert)) continue;
    repeats++;
    const held = (alert.suppressedSinceLast ?? 0) + 1;
    const next = pending.find((p) => p.alert.pumpId === alert.pumpId && p.alert.episode === alert.episode && p.alert.seq > alert.seq);
    if (next) next.alert.suppressedSinceLast = (next.alert.suppressedSinceLast ?? 0) + held;
    else alarms.heldBack(alert.pumpId, alert.episode!, held);
  }
  return repeats;
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
