import { BufferError } from '../buffer/errors.js';
import { FOLLOW_CAP, followOpenLabels } from '../buffer/label-follow.js';
import type { LabelStore, OpenLabel } from '../buffer/labels.js';
import type { BufferStore } from '../buffer/store.js';
import { EPISODE_GAP_MS, type EpisodeWalker } from './http/alerts-routes.js';
import type { Logger } from './logger.js';

/**
 * How often the labels that follow a running alarm are moved (every 5 s): every view reads a
 * label's stored range, so they are at most this far behind the episode.
 */
export const LABEL_FOLLOW_PATTERN = '*/5 * * * * *';

const when = (l: OpenLabel) => `${new Date(l.fromTs).toISOString()} – ${new Date(l.toTs).toISOString()}`;

/**
 * The scheduler's job that moves open labels to their episode's extent and closes those whose
 * episode ended (buffer/label-follow.ts). Its walks wait their turn in `episodes`, the queue GET
 * /alerts/:seq/episode and POST /labels share, so label work never piles SQLite walks on the event
 * loop; `stopped` ends a walk when the agent stops.
 */
export function labelFollowJob(deps: { labels: LabelStore; buffer: BufferStore; episodes: EpisodeWalker; logger: Logger; stopped: () => boolean; clock?: () => number }): () => Promise<void> {
  const { logger } = deps;
  let capSaid = false;
  return async () => {
    let run;
    try {
      run = await followOpenLabels(deps.labels, deps.buffer, { now: deps.clock ?? Date.now, gapMs: EPISODE_GAP_MS, walk: (seq) => deps.episodes(seq, deps.stopped) });
    } catch (err) {
      // not open (the buffer health says why; its retry reopens it): the labels follow again then
      if (err instanceof BufferError && err.code === 'PW_BUFFER_CLOSED') return;
      throw err;
    }
    for (const l of run.closed) {
      logger.info({ label: l.id, pumpId: l.pumpId, alertSeq: l.alertSeq }, `label ${l.id} followed the alarm of ${l.pumpId} to its end: it covers ${when(l)} and is uploaded so`);
    }
    // Once per label: it is closed, never followed again.
    for (const l of run.lost) {
      logger.warn({ label: l.id, pumpId: l.pumpId, alertSeq: l.alertSeq }, `label ${l.id} stopped following the alarm of ${l.pumpId}: its alert ${l.alertSeq} is no longer in the buffer (evicted); it keeps ${when(l)} and is uploaded so`);
    }
    for (const l of run.tooLong) {
      logger.warn({ label: l.id, pumpId: l.pumpId, alertSeq: l.alertSeq }, `label ${l.id} stopped following the alarm of ${l.pumpId}: the episode is longer than a year; it keeps ${when(l)} and is uploaded so`);
    }
    if (run.left > 0 && !capSaid) {
      logger.warn({ left: run.left }, `more than ${FOLLOW_CAP} labels follow running alarms (FOLLOW_CAP, buffer/label-follow.ts): the oldest ${FOLLOW_CAP} are moved every run, the others later`);
    }
    capSaid = run.left > 0;
  };
}
