import type Database from 'better-sqlite3';

/**
 * Steps of the wall clock recorded in the buffer (`clock_steps`, schemas 7 and 8): NTP setting a gateway
 * that booted at 1970 or years behind, noticed by the agent's run that received the rows before it. A row's stored receive time is on the clock of its time; the
 * steps recorded after it say how far that clock was off from today's. The one rule for retention
 * (how old a synced row is) and the technician page (how long ago a pump last reported, after a
 * restart): both read it from here.
 */

/**
 * Rows with seq ≤ upTo (and above the previous segment's) were received on a clock `behindMs` behind
 * today's (ahead when negative), and no later than `latest` on today's clock: before the steps after
 * them were noticed (their `recorded_at`, on today's clock).
 */
export interface ClockSegment {
  upTo: number;
  behindMs: number;
  latest: number;
}

/** A row's receive time on today's clock, from its seq and its stored receive time. */
export type ReceiveTimeCorrection = (seq: number, receivedAt: number) => number;

/**
 * The recorded clock steps as stretches of seqs, lowest first. A step corrects the rows of the run
 * that noticed it (above its `from_seq`, the newest row when that run opened the buffer, up to its
 * `after_seq`): rows of earlier runs were on the clock of their own run, which that step says
 * nothing of (a gateway without a clock battery that reboots at 1970 after running on the right
 * clock: NTP's step corrects the 1970 rows, not those before the reboot, which read 56 years in the
 * future when it did; `from_seq` reaches further down only for a step of years, over an earlier
 * boot in that era: batches.ts recordClockStep). A row before several steps of its run was on a
 * clock behind by all of them.
 * Its corrected time is capped at the first of them being noticed: a row came before the step was.
 */
export function clockSegments(db: Database.Database): ClockSegment[] {
  const steps = db
    .prepare('SELECT after_seq AS afterSeq, delta_ms AS deltaMs, recorded_at AS recordedAt, from_seq AS fromSeq FROM clock_steps ORDER BY after_seq DESC, rowid DESC')
    .all() as Array<{ afterSeq: number; deltaMs: number; recordedAt: number; fromSeq: number }>;
  if (steps.length === 0) return [];
  // Every step's range begins and ends on a bound: between two bounds the same steps cover every row.
  const bounds = [...new Set(steps.flatMap((s) => [s.fromSeq, s.afterSeq]))].sort((a, b) => a - b);
  const out: ClockSegment[] = [];
  for (let k = 1; k < bounds.length; k++) {
    const lo = bounds[k - 1]!;
    const hi = bounds[k]!;
    let behindMs = 0;
    let latest = Number.POSITIVE_INFINITY;
    // Latest step first: recorded_at is on the clock after that step, behind today's by the steps after it.
    for (const s of steps) {
      if (s.fromSeq > lo || s.afterSeq < hi) continue;
      latest = Math.min(latest, s.recordedAt + behindMs);
      behindMs += s.deltaMs;
    }
    out.push({ upTo: hi, behindMs, latest });
  }
  // Rows at or below the lowest bound: no step covers them (an empty first stretch keeps the search simple).
  out.unshift({ upTo: bounds[0]!, behindMs: 0, latest: Number.POSITIVE_INFINITY });
  return out;
}

/** The segment of row `seq`: how far behind today's clock its clock was, and the latest it can have come (none after the last step). */
function segmentAt(segments: readonly ClockSegment[], seq: number): ClockSegment | undefined {
  // The first segment reaching up to seq (segments are few: one per step still covering a row).
  let lo = 0;
  let hi = segments.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (segments[mid]!.upTo < seq) lo = mid + 1;
    else hi = mid;
  }
  return segments[lo];
}

/** Receive times corrected by `segments`: the stored time plus the steps recorded after the row, no later than the first of them was noticed. */
export function receiveTimeCorrection(segments: readonly ClockSegment[]): ReceiveTimeCorrection {
  return (seq, receivedAt) => {
    const s = segmentAt(segments, seq);
    return s === undefined ? receivedAt : Math.min(receivedAt + s.behindMs, s.latest);
  };
}

/**
 * The seq of the last row received on the clock before a step of `deltaMs` noticed at `now` (the
 * new clock), given `checkedSeq`: the newest seq when the clocks were last compared, before the
 * step (null when unknown: then every row may be looked at). Rows up to it were received before the
 * step; only those since (a few seconds of readings) are told apart by receive time: after a step
 * forward, a row before it reads no later than the old clock can have read at `now`, `now -
 * deltaMs`; after a step back, a row before it reads later than `now` (the old clock was ahead by
 * more than the seconds since). Walked back from the newest row down to `checkedSeq`, so the search
 * is bounded by the rows since that check, however many: a busy gateway (thousands of readings a
 * second) is no exception (a window of the newest 10 000 rows missed the step there). Null when no
 * row left in the buffer was received before the step (nothing to correct).
 */
export function lastSeqBeforeStep(db: Database.Database, deltaMs: number, now: number, checkedSeq: number | null): number | null {
  const floor = checkedSeq ?? -1;
  const since = db
    .prepare(`SELECT seq FROM readings WHERE seq > ? AND received_at ${deltaMs > 0 ? '<=' : '>'} ? ORDER BY seq DESC LIMIT 1`)
    .get(floor, deltaMs > 0 ? now - deltaMs : now) as { seq: number } | undefined;
  if (since !== undefined) return since.seq;
  // The newest row at the check (a row that is still there: never a seq the buffer has not used yet).
  const checked = db.prepare('SELECT seq FROM readings WHERE seq <= ? ORDER BY seq DESC LIMIT 1').get(floor) as { seq: number } | undefined;
  return checked?.seq ?? null;
}
