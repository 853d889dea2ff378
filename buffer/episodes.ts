import type { BufferStore } from './store.js';

/**
 * An episode: a run of one pump's alerts (anomalous readings) in reading-time order, each at most
 * `gapMs` after the one before it. The agent's readers of alerts group them so: the page's lists
 * (agent/page/alerts.js EPISODE_GAP_MS) and GET /alerts/:seq/episode.
 */
export interface EpisodeExtent {
  pumpId: string;
  /** The oldest alert of the episode and the newest (by reading time, ties by seq). */
  first: { seq: number; ts: number };
  last: { seq: number; ts: number };
  /** The alert with the highest score (ties: the newest of them). */
  peak: { seq: number; ts: number; score: number | null };
  /** How many alerts it holds. */
  count: number;
}

/** Alerts read per statement at most: about 2 ms of SQLite on the event loop, then the loop runs again. */
export const EPISODE_CHUNK = 1000;
/** Alerts read by a walk's first statement (then four times more at each, up to EPISODE_CHUNK). */
const FIRST_CHUNK = 16;

interface Step {
  seq: number;
  ts: number;
  score: number | null;
}

/**
 * The statements of one direction's walk along readings_anomalies_pump_ts (pump_id, ts; its entries
 * end in the rowid, seq): the pump's next alerts after the cursor (ts, seq), older first going back,
 * newer first going on. The alerts of the cursor's own time come from a seek on (pump_id, ts, seq),
 * then those of the next times from a seek on (pump_id, ts): one statement `ts <= ? AND (ts < ? OR
 * seq < ?)` seeks on the time alone, and rescanned every alert of a time shared by thousands (a
 * sender whose clock stood still) at each step: 200 000 of them took 5.4 s in pieces growing to
 * 40 ms, against 0.4 s in pieces of at most 3 ms so. Exported for the test of their query plans.
 */
export const WALK_SQL = {
  back: `SELECT seq, ts, score FROM (
      SELECT * FROM (SELECT seq, ts, score FROM readings INDEXED BY readings_anomalies_pump_ts
        WHERE anomaly = 1 AND pump_id = @pump AND ts = @ts AND seq < @seq ORDER BY seq DESC LIMIT @n)
      UNION ALL
      SELECT * FROM (SELECT seq, ts, score FROM readings INDEXED BY readings_anomalies_pump_ts
        WHERE anomaly = 1 AND pump_id = @pump AND ts < @ts ORDER BY ts DESC, seq DESC LIMIT @n))
    ORDER BY ts DESC, seq DESC LIMIT @n`,
  on: `SELECT seq, ts, score FROM (
      SELECT * FROM (SELECT seq, ts, score FROM readings INDEXED BY readings_anomalies_pump_ts
        WHERE anomaly = 1 AND pump_id = @pump AND ts = @ts AND seq > @seq ORDER BY seq ASC LIMIT @n)
      UNION ALL
      SELECT * FROM (SELECT seq, ts, score FROM readings INDEXED BY readings_anomalies_pump_ts
        WHERE anomaly = 1 AND pump_id = @pump AND ts > @ts ORDER BY ts ASC, seq ASC LIMIT @n))
    ORDER BY ts ASC, seq ASC LIMIT @n`,
};

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Whether `a` comes after `b` in reading-time order (ties: the later committed). */
const newer = (a: Step, b: Step): boolean => a.ts > b.ts || (a.ts === b.ts && a.seq > b.seq);

/**
 * The episode holding the alert `seq`, read whole from the buffer: walked from that alert back and
 * on until the next alert is more than `gapMs` away (or none is kept), EPISODE_CHUNK alerts per
 * statement with the event loop let run between them, so an episode of a million alerts holds up
 * the scoring for a few milliseconds at a time. Null when the buffer keeps no reading `seq`, it is
 * not an alert, or `stopped()` turned true at a pause (the asker went away): `reason` says which.
 * Alerts committed or evicted meanwhile are seen or not as the walk passes them: the answer is the
 * episode as it stood when each part of it was read.
 */
export async function episodeExtent(
  store: BufferStore,
  seq: number,
  gapMs: number,
  { pause = nextTurn, stopped = () => false }: { pause?: () => Promise<void>; stopped?: () => boolean } = {},
): Promise<{ extent: EpisodeExtent } | { extent: null; reason: 'not-kept' | 'not-alert' | 'stopped'; pumpId?: string }> {
  const start = store.db.prepare('SELECT seq, ts, score, pump_id AS pumpId, anomaly FROM readings WHERE seq = ?').get(seq) as
    | (Step & { pumpId: string; anomaly: number | null })
    | undefined;
  if (start === undefined) return { extent: null, reason: 'not-kept' };
  if (start.anomaly !== 1) return { extent: null, reason: 'not-alert', pumpId: start.pumpId };
  const alert: Step = { seq: start.seq, ts: start.ts, score: start.score };
  let count = 1;
  let peak = alert;
  const seen = (a: Step): void => {
    count += 1;
    const s = a.score ?? -Infinity;
    const p = peak.score ?? -Infinity;
    if (s > p || (s === p && newer(a, peak))) peak = a;
  };
  /** Walks one way from the alert; returns the last alert of the episode that way, null when stopped. */
  const walk = async (way: 'back' | 'on'): Promise<Step | null> => {
    let end = alert;
    // most episodes end a few alerts in: the first statements read few, then up to EPISODE_CHUNK
    for (let chunk = FIRST_CHUNK; ; chunk = Math.min(EPISODE_CHUNK, chunk * 4)) {
      // prepared on each step: the store may have reopened its file (a replaced or restored one) meanwhile
      const rows = store.db.prepare(WALK_SQL[way]).raw().all({ pump: start.pumpId, ts: end.ts, seq: end.seq, n: chunk }) as Array<[number, number, number | null]>;
      for (const [seq, ts, score] of rows) {
        if (Math.abs(ts - end.ts) > gapMs) return end;
        end = { seq, ts, score };
        seen(end);
      }
      if (rows.length < chunk) return end;
      await pause();
      if (stopped()) return null;
    }
  };
  const first = await walk('back');
  if (first !== null) await pause();
  const last = first === null || stopped() ? null : await walk('on');
  if (first === null || last === null) return { extent: null, reason: 'stopped', pumpId: start.pumpId };
  const at = (a: Step) => ({ seq: a.seq, ts: a.ts });
  return { extent: { pumpId: start.pumpId, first: at(first), last: at(last), peak: { ...peak }, count } };
}
