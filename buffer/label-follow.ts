import type { EpisodeExtent, episodeExtent } from './episodes.js';
import { MAX_LABEL_RANGE_MS, type LabelStore, type OpenLabel } from './labels.js';
import type { BufferStore } from './store.js';

/**
 * Labels that follow a running alarm. A label given on an alert, with no range, while the alert's
 * episode still runs covers that episode up to its end, not up to the moment it was given: before,
 * a confirmed fault labelled at 08:35 on an episode that ran on to 08:41 covered 5 of its 17
 * alerts, and the other 12 were uploaded unlabelled and trained as normal. Such a label is stored
 * open (labels.follows_episode, migration 13); a job moves its range to the episode's extent every
 * few seconds and closes it once the episode has ended; only then is it uploaded, once.
 */

/**
 * How long after an episode's last alert (by reading time, against the gateway clock) a label may
 * still follow it, whatever the pump's readings say: a pump that went silent in alarm (its sensor
 * module stopped, the link down) sends no reading that ends the episode, and must not hold a label
 * back from the trainer for ever. Ten minutes is ten times the gap that ends an episode, and long
 * against the few seconds a link or a sensor module restarts in; a pump that comes back in alarm
 * after a silence longer than the gap starts an episode of its own anyway, which the closed label
 * never covered.
 */
export const FOLLOW_HOLD_MS = 10 * 60_000;

/**
 * Open labels moved per run of the job at most (oldest first): a handful are open at a time (one
 * per alarm a technician labels while it runs), so more says something is wrong, and the walks
 * must stay few per run all the same. The rest wait for the next runs (said in a warning).
 */
export const FOLLOW_CAP = 100;

/**
 * Rows of the pump stored after an episode's last alert looked at, at most, for one that ends it.
 * While the episode runs they are those of less than the gap (60 at 1 Hz); once it ended the walk
 * stops at the first reading past the gap.
 */
const AFTER_ROWS = 10_000;

/**
 * A reading of the pump, stored after the episode's last alert, whose reading time is at least the
 * gap after it: the episode has ended (no alert came in that gap, or it would be the last). Read in
 * seq order on (pump_id, seq): the readings have no index on time (one would cost every commit), and
 * a pump's readings are stored in about their time order.
 */
const ENDED_SQL = `SELECT 1 FROM (SELECT ts FROM readings WHERE pump_id = ? AND seq > ? ORDER BY seq LIMIT ${AFTER_ROWS}) WHERE ts >= ? LIMIT 1`;

/**
 * Whether an episode is still running at `now` (the gateway clock): its last alert is less than
 * `gapMs` before the pump's newest reading (by reading time) and less than `holdMs` before `now`.
 */
export function episodeRunning(store: BufferStore, extent: EpisodeExtent, now: number, gapMs: number, holdMs = FOLLOW_HOLD_MS): boolean {
  if (now - extent.last.ts >= holdMs) return false;
  return store.db.prepare(ENDED_SQL).get(extent.pumpId, extent.last.seq, extent.last.ts + gapMs) === undefined;
}

/** One walk of an alert's episode: LabelStore.episode, or the agent's one-at-a-time queue of them. */
export type EpisodeWalk = (seq: number) => ReturnType<typeof episodeExtent>;

/** What a run of followOpenLabels did. */
export interface FollowRun {
  /** Labels still open after the run, moved to their episode's extent. */
  following: number;
  /** Labels closed: their episode ended (or `end` was asked), with their final range. */
  closed: OpenLabel[];
  /** Labels closed with the range they had because the alert they name is no longer in the buffer (evicted). */
  lost: OpenLabel[];
  /** Labels closed with the range they had because their episode grew longer than a year. */
  tooLong: OpenLabel[];
  /** Open labels left for a later run (more than `cap`). */
  left: number;
}

/**
 * Moves each open label (oldest first, at most `cap`) to the extent of its alert's episode as it
 * stands (its `from` earlier when older alerts arrived late; never narrower than it was: alerts
 * evicted from an episode's edges may be uploaded already), and closes it when the episode has
 * ended, or at once with `end` (the drain: no reading comes into that file again). A label
 * uploaded or withdrawn by an agent that did not know open labels is closed as it stands, so views
 * and the lake keep the range uploaded. A walk stopped is tried again at the next run.
 */
export async function followOpenLabels(
  labels: LabelStore,
  store: BufferStore,
  opts: { now: () => number; gapMs: number; walk: EpisodeWalk; holdMs?: number; cap?: number; end?: boolean },
): Promise<FollowRun> {
  const cap = opts.cap ?? FOLLOW_CAP;
  const open = labels.following(cap + 1);
  const run: FollowRun = { following: 0, closed: [], lost: [], tooLong: [], left: Math.max(0, open.length - cap) };
  for (const label of open.slice(0, cap)) {
    if (label.synced || label.withdrawn || label.alertSeq === null) {
      labels.closeOpen(label.id);
      continue;
    }
    const found = await opts.walk(label.alertSeq);
    if (found.extent === null) {
      if (found.reason === 'stopped') continue;
      if (labels.closeOpen(label.id)) run.lost.push(label);
      continue;
    }
    const { first, last } = found.extent;
    const fromTs = Math.min(label.fromTs, first.ts);
    const toTs = Math.max(label.toTs, last.ts);
    if (toTs - fromTs > MAX_LABEL_RANGE_MS) {
      if (labels.closeOpen(label.id)) run.tooLong.push(label);
      continue;
    }
    const stillOpen = opts.end !== true && episodeRunning(store, found.extent, opts.now(), opts.gapMs, opts.holdMs);
    if (!labels.moveOpen(label.id, fromTs, toTs, stillOpen)) continue;
    if (stillOpen) run.following++;
    else run.closed.push({ ...label, fromTs, toTs, followsEpisode: false });
  }
  return run;
}
