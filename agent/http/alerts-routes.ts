import { labelFields, type AlertCursor, type Label, type LabelStore } from '../../buffer/labels.js';
import type { StoredRow } from '../../buffer/types.js';
import type { InferenceEngine } from '../../inference/engine.js';
import type { ModelManager } from '../../inference/models.js';
import { HttpError } from './errors.js';
import { parseLimit, parseSeq, parseSince } from './query.js';
import type { StatusServer } from './server.js';

const MAX_PER_PUMP = 1000;

/**
 * Alerts of one pump at most this far apart are one episode (a minute): the page groups its lists so
 * (agent/page/alerts.js EPISODE_GAP_MS, held equal by test/integration/alerts-episode.test.ts), and GET
 * /alerts/:seq/episode bounds an episode so.
 */
export const EPISODE_GAP_MS = 60_000;

/**
 * A label as the API shows it (times as ISO 8601). `episodeOpen`: it follows its alert's episode,
 * still running (buffer/label-follow.ts): its range grows with it, and it is uploaded once it ends.
 */
export function labelJson(l: Label): Record<string, unknown> {
  return { ...labelFields(l), synced: l.synced, episodeOpen: l.followsEpisode };
}

/** The threshold of the model that scored a row, when that model is still known to the agent. */
function thresholdOf(row: StoredRow, engine: InferenceEngine, models: ModelManager): number | null {
  const live = engine.modelFor(row.pumpId);
  if (live && live.meta.version === row.modelVersion) return live.meta.threshold;
  for (const s of Object.values(models.status())) if (s.version === row.modelVersion && s.threshold !== null) return s.threshold;
  return null;
}

/** `before`: the `next` of a previous answer, `<ts epoch ms>:<seq>`; null when absent. */
function parseBefore(url: URL): AlertCursor | null {
  const text = url.searchParams.get('before');
  if (text === null || text === '') return null;
  const m = /^(-?\d{1,16}):(\d{1,16})$/.exec(text);
  const cursor = m ? { ts: Number(m[1]), seq: Number(m[2]) } : null;
  if (!cursor || !Number.isSafeInteger(cursor.ts) || !Number.isSafeInteger(cursor.seq)) {
    throw new HttpError(400, 'PW_BAD_QUERY', `before must be the "next" of a previous answer, <reading time in epoch ms>:<seq> (got ${JSON.stringify(text.slice(0, 40))})`);
  }
  if (url.searchParams.has('perPump')) throw new HttpError(400, 'PW_BAD_QUERY', 'before and perPump cannot be combined: page one list with limit (and pumpId)');
  return cursor;
}

/** `perPump`: an integer from 1 to MAX_PER_PUMP, or null when absent; it replaces `limit`, never combines with it. */
function parsePerPump(url: URL): number | null {
  const text = url.searchParams.get('perPump');
  if (text === null || text === '') return null;
  if (url.searchParams.has('limit')) throw new HttpError(400, 'PW_BAD_QUERY', 'perPump and limit cannot be combined: perPump already bounds the answer per pump');
  return parseLimit(text, 0, MAX_PER_PUMP, 'perPump');
}

/**
 * `afterSeq`: a poll in seq order, undefined when absent. It answers the alerts stored after a seq,
 * whatever their reading times, so the parameters that select by reading time mean nothing with it.
 */
function parseAfterSeq(url: URL): number | undefined {
  const afterSeq = parseSeq(url.searchParams.get('afterSeq'), 'afterSeq');
  if (afterSeq === undefined) return undefined;
  const conflict = (['before', 'perPump', 'since'] as const).find((k) => url.searchParams.has(k));
  if (conflict !== undefined) {
    throw new HttpError(400, 'PW_BAD_QUERY', `afterSeq and ${conflict} cannot be combined: afterSeq reads the alerts stored after a seq, oldest first, whatever their reading times (poll with the "next" of each answer)`);
  }
  return afterSeq;
}

/**
 * Walks of alerts' episodes (LabelStore.episode with EPISODE_GAP_MS), one at a time: a press
 * repeated, several pages open or an integration posting labels cannot multiply the SQLite work.
 * GET /alerts/:seq/episode and POST /labels (a label on an alert alone covers its episode) share one.
 */
export function episodeWalker(labels: LabelStore): EpisodeWalker {
  let walks: Promise<unknown> = Promise.resolve();
  return (seq, stopped = () => false) => {
    const walk = walks.then(() => labels.episode(seq, EPISODE_GAP_MS, stopped));
    walks = walk.catch(() => undefined);
    return walk;
  };
}
export type EpisodeWalker = (seq: number, stopped?: () => boolean) => ReturnType<LabelStore['episode']>;

type AlertsDeps = { labels: LabelStore; engine: InferenceEngine; models: ModelManager; episodes: EpisodeWalker };

/** An alert as the API shows it (GET /alerts, and an episode's peak). */
function alertJson(r: StoredRow, label: Label | undefined, deps: AlertsDeps): Record<string, unknown> {
  return {
    seq: r.seq,
    pumpId: r.pumpId,
    ts: new Date(r.ts).toISOString(),
    score: r.score,
    threshold: thresholdOf(r, deps.engine, deps.models),
    modelVersion: r.modelVersion,
    values: r.values,
    contributions: r.contributions ?? null,
    label: label ? labelJson(label) : null,
  };
}

/** A list of alerts as the API shows them, each with the label that applies to it. */
function alertsJson(rows: StoredRow[], deps: AlertsDeps): Array<Record<string, unknown>> {
  const labels = deps.labels.labelsFor(rows);
  return rows.map((r) => alertJson(r, labels.get(r.seq), deps));
}

/**
 * `GET /alerts?pumpId=&since=&limit=&before=` (or `perPump=` instead of `limit`): recent anomalies,
 * newest first, each with its label if any; a full page of one list gives `next`, the `before` of
 * the page after it. With `afterSeq=` instead (no `since`, `before` or `perPump`): the alerts stored
 * after that seq, oldest first, with `next` and `more`, for a poller that must see every one.
 *
 * `GET /alerts/:seq/episode[?pumpId=]`: the whole episode holding the alert `seq` (its first and last
 * alert, its count, its peak alert and its label), read by the agent however long it is, so a label
 * can cover all of it without the page reading it page by page. One is read at a time.
 */
export function registerAlertsRoutes(server: StatusServer, deps: AlertsDeps): void {
  server.route('GET', '/alerts', ({ url }) => {
    const pumpId = url.searchParams.get('pumpId') || undefined;
    const afterSeq = parseAfterSeq(url);
    if (afterSeq !== undefined) {
      // A poll: `next` is the afterSeq of the following one, `more` asks for it at once.
      const { rows, next, more } = deps.labels.alertsAfter({ pumpId, afterSeq, limit: parseLimit(url.searchParams.get('limit'), 50, 1000) });
      return { status: 200, json: { count: rows.length, alerts: alertsJson(rows, deps), next, more } };
    }
    const sinceTs = parseSince(url.searchParams.get('since'));
    const before = parseBefore(url);
    const perPump = parsePerPump(url);
    const limit = parseLimit(url.searchParams.get('limit'), 50, 1000);
    const rows =
      perPump === null
        ? deps.labels.alerts({ pumpId, sinceTs, limit, ...(before ? { before } : {}) })
        : pumpId !== undefined
          ? deps.labels.alerts({ pumpId, sinceTs, limit: perPump })
          : deps.labels.alertsPerPump({ sinceTs, perPump });
    const alerts = alertsJson(rows, deps);
    // A full page of one list may have more after it: `next` asks for them (`before`).
    const last = rows.at(-1);
    const next = perPump === null && last !== undefined && rows.length === limit ? `${last.ts}:${last.seq}` : null;
    return { status: 200, json: { count: alerts.length, alerts, next } };
  });

  server.route('GET', '/alerts/:seq/episode', async ({ url, params, req, res }) => {
    const seq = parseSeq(params.seq ?? null, 'seq in /alerts/:seq/episode');
    if (seq === undefined) throw new HttpError(400, 'PW_BAD_QUERY', 'seq in /alerts/:seq/episode: the sequence number of an alert is missing');
    const pumpId = url.searchParams.get('pumpId') || undefined;
    // an asker gone (a page's timeout, a closed tab) stops its walk, or skips it while it waits its turn
    let gone = false;
    res.once('close', () => {
      gone = true;
    });
    // a response queued behind another on the same connection (HTTP/1.1 pipelining) never closes: its request does
    req.once('close', () => {
      if (!res.writableFinished) gone = true;
    });
    const found = await deps.episodes(seq, () => gone);
    if (found.extent === null) {
      // not a failure of the agent's (logged as one from 500 on): the asker left, and reads no answer
      if (found.reason === 'stopped') throw new HttpError(499, 'PW_STOPPED', `alert ${seq}: the walk of its episode stopped, as its request was closed`);
      const what = found.reason === 'not-kept' ? 'the buffer keeps no reading with that seq (never stored, or evicted since)' : `reading ${seq} of pump ${found.pumpId} is not an alert`;
      throw new HttpError(404, 'PW_ALERT_NOT_FOUND', `alert ${seq}: ${what}`);
    }
    const e = found.extent;
    if (pumpId !== undefined && e.pumpId !== pumpId) throw new HttpError(404, 'PW_ALERT_NOT_FOUND', `alert ${seq} is of pump ${e.pumpId}, not of ${pumpId}`);
    const peak = deps.labels.reading(e.peak.seq);
    const at = (a: { seq: number; ts: number }) => ({ seq: a.seq, ts: new Date(a.ts).toISOString() });
    return {
      status: 200,
      json: {
        pumpId: e.pumpId,
        gapMs: EPISODE_GAP_MS,
        count: e.count,
        first: at(e.first),
        last: at(e.last),
        // evicted since the walk passed it: its seq, time and score stand for it
        peak: peak ? alertJson(peak, deps.labels.labelsFor([peak]).get(peak.seq), deps) : { ...at(e.peak), score: e.peak.score },
        // the episode's label (the newest meeting its time range), though no alert listed may carry it
        label: ((l) => (l ? labelJson(l) : null))(deps.labels.newestOverlapping(e.pumpId, e.first.ts, e.last.ts)),
      },
    };
  });
}
