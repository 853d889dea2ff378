import { randomUUID } from 'node:crypto';
import { episodeExtent } from './episodes.js';
import { classifySqliteError } from './errors.js';
import { LabelWithdrawals, NOT_WITHDRAWN_SQL, markSynced } from './label-withdrawals.js';
import { ROW_COLUMNS, fromDbRow, readRows } from './rows.js';
import type { BufferStore } from './store.js';
import type { StoredRow } from './types.js';

/** The pumps that have an alert: a skip along readings_anomalies_pump_ts (pump_id, ts), one seek per pump. */
const ALERT_PUMPS_SQL = `WITH RECURSIVE pumps(id) AS (
    SELECT (SELECT pump_id FROM readings INDEXED BY readings_anomalies_pump_ts WHERE anomaly = 1 ORDER BY pump_id LIMIT 1)
    UNION ALL
    SELECT (SELECT pump_id FROM readings INDEXED BY readings_anomalies_pump_ts WHERE anomaly = 1 AND pump_id > pumps.id ORDER BY pump_id LIMIT 1)
    FROM pumps WHERE pumps.id IS NOT NULL)
  SELECT id FROM pumps WHERE id IS NOT NULL`;

/**
 * The newest alerts (ts ≥ since) by reading time, ties by seq, of every pump or of one (`pump` is
 * `AND pump_id = ?`): down the anomaly-time index (migrations.ts OPEN_INDEXES; its entries are in
 * (ts, seq) order), reading exactly the rows answered, whatever `since` matches. In seq order, as
 * before, a `since` matching few alerts walked every alert (0.5-0.9 s of SQLite holding the event
 * loop with 400 000 anomalies) unless read by time from these indexes, and a pump's alerts needed a
 * pump-first seq index besides, which every anomaly's commit wrote a page of per pump.
 */
const newestByTime = (pump: string, part: 'all' | 'tie' | 'older') =>
  `SELECT ${ROW_COLUMNS} FROM readings INDEXED BY ${pump ? 'readings_anomalies_pump_ts' : 'readings_anomalies_ts'}
    WHERE anomaly = 1 ${pump} AND ts >= ?${BEFORE_PART[part]} ORDER BY ts DESC, seq DESC LIMIT ?`;
/**
 * A page after a cursor (ts, seq) is read in two seeks: the alerts of the cursor's own time below
 * its seq, then those of older times. One statement `ts <= ? AND (ts < ? OR seq < ?)` seeks on the
 * time alone, and read again every alert of a time shared by thousands (a sender whose clock stood
 * still) at every page.
 */
const BEFORE_PART = { all: '', tie: ' AND ts = ? AND seq < ?', older: ' AND ts < ?' } as const;
const PUMP = 'AND pump_id = ?';

/**
 * The alerts after a seq in seq order (a poll): a range of readings_anomalies_seq_pump (seq, pump_id),
 * the anomalies' only seq index since schema 9, reading exactly the rows answered (plus one, to tell
 * `more`). Seq is the buffer's insertion order, so a poller that follows it sees every alert kept
 * once, whatever the senders' clocks said (a store-and-forward burst of old readings, a clock
 * stepped back), which a poll by reading time (`since`) misses.
 */
const ALERTS_AFTER_SQL = `SELECT ${ROW_COLUMNS} FROM readings INDEXED BY readings_anomalies_seq_pump
  WHERE anomaly = 1 AND seq > ? ORDER BY seq LIMIT ?`;
/**
 * One pump's alerts after a seq: the pump is read from the same index's entries (no pump-first seq
 * index is kept, as each one cost every anomaly's commit a page per pump, migrations.ts step 9), so
 * a poll passes over the other pumps' alerts; at most ALERTS_AFTER_WALK of them, so a quiet pump's
 * poll behind another pump's flood stays bounded, and `next` moves past those it passed over.
 */
const PUMP_ALERTS_AFTER_SQL = `SELECT ${ROW_COLUMNS} FROM readings WHERE seq IN (
    SELECT seq FROM (SELECT seq, pump_id FROM readings INDEXED BY readings_anomalies_seq_pump
      WHERE anomaly = 1 AND seq > ? ORDER BY seq LIMIT ?) WHERE pump_id = ? ORDER BY seq LIMIT ?) ORDER BY seq`;
/** How far such a walk went: the index entries alone, no row read. */
const WALKED_SQL = `SELECT count(*) AS n, max(seq) AS last FROM (SELECT seq FROM readings INDEXED BY readings_anomalies_seq_pump
  WHERE anomaly = 1 AND seq > ? ORDER BY seq LIMIT ?)`;
/** Alerts of every pump one poll of one pump's alerts passes over at most: index entries only, about 4 ms here. */
export const ALERTS_AFTER_WALK = 5_000;

/** A poll's answer: the alerts, the `afterSeq` of the next poll, and whether more are there now. */
export interface AlertsAfter {
  rows: StoredRow[];
  next: number;
  more: boolean;
}

/** Where a page of an alert list ended: its last alert's reading time and seq (the next page starts after it). */
export interface AlertCursor {
  ts: number;
  seq: number;
}

/** Newest first by reading time, ties by seq: the order of every alert list. */
const newestFirst = (a: StoredRow, b: StoredRow): number => b.ts - a.ts || b.seq - a.seq;

/** What a technician can say about an alert (or a stretch of time) on the status page. */
export const LABEL_KINDS = ['confirmed-fault', 'false-alarm', 'maintenance'] as const;
export type LabelKind = (typeof LABEL_KINDS)[number];

/** The short list of fault types a technician picks from when confirming a fault. */
export const FAULT_TYPES = [
  'bearing',
  'cavitation',
  'seal-leak',
  'impeller',
  'blockage',
  'dry-running',
  'motor-electrical',
  'sensor-fault',
  'other',
] as const;
export type FaultType = (typeof FAULT_TYPES)[number];

export interface NewLabel {
  pumpId: string;
  kind: LabelKind;
  /** Set for `confirmed-fault` only. */
  faultType: FaultType | null;
  note: string | null;
  /** Sequence number of the alert (anomalous reading) the label answers, if any. */
  alertSeq: number | null;
  /**
   * Time range the label covers (epoch ms, inclusive), as the trainer reads it: the alert's whole
   * episode when POST /labels names an alert and no range, a lone reading's own time.
   */
  fromTs: number;
  toTs: number;
  /** Who labelled it (the technician's name or id, as typed on the page). */
  author: string;
  /**
   * Whether it follows the episode of `alertSeq`, still running when it was given: its range is
   * moved to the episode's extent until the episode ends (buffer/label-follow.ts), and it is
   * uploaded only then. Default false.
   */
  followsEpisode?: boolean;
}

export interface Label extends NewLabel {
  /** A random UUID: unique across buffer resets, so blob names never collide. */
  id: string;
  createdAt: number;
  synced: boolean;
  followsEpisode: boolean;
}

/** An open label as the follower reads it: whether it was uploaded or withdrawn meanwhile (by an agent of schema 12). */
export interface OpenLabel extends Label {
  withdrawn: boolean;
}

/** The longest time range a label may cover (a year): POST /labels refuses longer, and a label stops following there. */
export const MAX_LABEL_RANGE_MS = 366 * 86_400_000;

/**
 * A label's fields with times as ISO 8601: the one mapping the API and the uploaded record share
 * (whether it follows its episode is not one: an uploaded label never does).
 */
export function labelFields(l: Omit<Label, 'followsEpisode'>) {
  return {
    id: l.id,
    pumpId: l.pumpId,
    kind: l.kind,
    faultType: l.faultType,
    note: l.note,
    alertSeq: l.alertSeq,
    from: new Date(l.fromTs).toISOString(),
    to: new Date(l.toTs).toISOString(),
    author: l.author,
    createdAt: new Date(l.createdAt).toISOString(),
  };
}

interface LabelRow {
  id: string;
  pump_id: string;
  kind: LabelKind;
  fault_type: FaultType | null;
  note: string | null;
  alert_seq: number | null;
  from_ts: number;
  to_ts: number;
  author: string;
  created_at: number;
  synced: number;
  follows_episode: number;
}

const COLUMNS = 'id, pump_id, kind, fault_type, note, alert_seq, from_ts, to_ts, author, created_at, synced, follows_episode';

/** Largest epoch ms a JavaScript Date holds (year 275760): a time beyond it has no ISO form. */
export const MAX_DATE_MS = 8_640_000_000_000_000;

/**
 * SQL true when a label's stored times are all dates. A row that is not (stored before the route
 * bounded `from` and `to`: a client sending epoch microseconds) is never read as a label: one such
 * row made every GET /labels fail and stopped every later label's upload. setAsideInvalid moves it
 * to the rejected table.
 */
const VALID_TIMES_SQL = `abs(from_ts) <= ${MAX_DATE_MS} AND abs(to_ts) <= ${MAX_DATE_MS} AND abs(created_at) <= ${MAX_DATE_MS}`;

/**
 * The newest label of a pump whose time range meets a range of time, withdrawn ones left out (the
 * one under a withdrawn label applies again, as for the trainer). Parameters: the pump, the
 * range's end, its start (for the label covering one alert, the alert's time for both).
 */
const NEWEST_OVERLAPPING_SQL = `SELECT ${COLUMNS} FROM labels WHERE pump_id = ? AND from_ts <= ? AND to_ts >= ? AND ${VALID_TIMES_SQL}
  AND ${NOT_WITHDRAWN_SQL} ORDER BY created_at DESC, rowid DESC LIMIT 1`;

/** A label kept out of the labels (times that are not dates), with why. */
export interface SetAsideLabel {
  id: string;
  reason: string;
}

function fromRow(r: LabelRow): Label {
  return {
    id: r.id,
    pumpId: r.pump_id,
    kind: r.kind,
    faultType: r.fault_type,
    note: r.note,
    alertSeq: r.alert_seq,
    fromTs: r.from_ts,
    toTs: r.to_ts,
    author: r.author,
    createdAt: r.created_at,
    synced: r.synced === 1,
    followsEpisode: r.follows_episode === 1,
  };
}

/**
 * Technicians' labels and the alerts they answer, in the buffer's SQLite file (migration 3).
 * Labels are never evicted with readings: they are small and the most valuable training targets.
 */
export class LabelStore {
  /** Withdrawals of these labels (DELETE /labels/:id), uploaded after them. */
  readonly withdrawals: LabelWithdrawals;

  constructor(private readonly buffer: BufferStore) {
    this.withdrawals = new LabelWithdrawals(buffer, VALID_TIMES_SQL);
  }

  /** Stores a label with a new id and `createdAt = now`; throws a BufferError when nothing was stored. */
  add(label: NewLabel, now: number): Label {
    const stored: Label = { ...label, id: randomUUID(), createdAt: now, synced: false, followsEpisode: label.followsEpisode === true };
    try {
      this.buffer.db
        .prepare(`INSERT INTO labels (${COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,0,?)`)
        .run(stored.id, stored.pumpId, stored.kind, stored.faultType, stored.note, stored.alertSeq, stored.fromTs, stored.toTs, stored.author, stored.createdAt, stored.followsEpisode ? 1 : 0);
    } catch (err) {
      throw classifySqliteError(err, this.buffer.path, 'storing a label');
    }
    return stored;
  }

  /** Labels newest first, optionally of one pump and created from a time on; withdrawn ones only with `withdrawn`. */
  list(opts: { pumpId?: string; sinceTs?: number; limit: number; withdrawn?: boolean }): Label[] {
    const where: string[] = ['created_at >= ?', VALID_TIMES_SQL];
    if (opts.withdrawn !== true) where.push(NOT_WITHDRAWN_SQL);
    const args: unknown[] = [opts.sinceTs ?? 0];
    if (opts.pumpId !== undefined) {
      where.push('pump_id = ?');
      args.push(opts.pumpId);
    }
    const sql = `SELECT ${COLUMNS} FROM labels WHERE ${where.join(' AND ')} ORDER BY created_at DESC, rowid DESC LIMIT ?`;
    return (this.buffer.db.prepare(sql).all(...args, opts.limit) as LabelRow[]).map(fromRow);
  }

  /**
   * How many labels and withdrawals are not uploaded yet (labels whose times are not dates included:
   * the upload sets them aside). A withdrawn label is counted too: it is uploaded before its
   * withdrawal, so the lake keeps what was said and that it was undone, and the trainer drops both.
   */
  unsyncedCount(): number {
    const labels = (this.buffer.db.prepare('SELECT count(*) AS n FROM labels WHERE synced = 0').get() as { n: number }).n;
    return labels + this.withdrawals.unsyncedCount();
  }

  /**
   * Labels to upload now, oldest first: not uploaded yet and not following a running episode (an
   * open label's range still moves: it goes up once, when closed, with its final range).
   */
  unsynced(limit: number): Label[] {
    const sql = `SELECT ${COLUMNS} FROM labels WHERE synced = 0 AND follows_episode = 0 AND ${VALID_TIMES_SQL} ORDER BY created_at, rowid LIMIT ?`;
    return (this.buffer.db.prepare(sql).all(limit) as LabelRow[]).map(fromRow);
  }

  /** The labels following an episode, oldest first, at most `limit` (a scan of the labels: migrations.ts step 13). */
  following(limit: number): OpenLabel[] {
    const sql = `SELECT ${COLUMNS}, NOT (${NOT_WITHDRAWN_SQL}) AS withdrawn FROM labels
      WHERE follows_episode = 1 ORDER BY created_at, rowid LIMIT ?`;
    return (this.buffer.db.prepare(sql).all(limit) as Array<LabelRow & { withdrawn: number }>).map((r) => ({ ...fromRow(r), withdrawn: r.withdrawn === 1 }));
  }

  /**
   * Moves an open label to [fromTs, toTs] and keeps it open or closes it; false when it is no longer
   * one to move (closed meanwhile: withdrawn, uploaded by an older agent). A closed label's range never changes again.
   */
  moveOpen(id: string, fromTs: number, toTs: number, open: boolean): boolean {
    try {
      const done = this.buffer.db
        .prepare(`UPDATE labels SET from_ts = ?, to_ts = ?, follows_episode = ? WHERE id = ? AND follows_episode = 1 AND synced = 0 AND ${NOT_WITHDRAWN_SQL}`)
        .run(fromTs, toTs, open ? 1 : 0, id);
      return done.changes === 1;
    } catch (err) {
      throw classifySqliteError(err, this.buffer.path, 'moving a label that follows its episode');
    }
  }

  /** Closes an open label with the range it has (uploaded once, with it); false when it was closed already. */
  closeOpen(id: string): boolean {
    try {
      return this.buffer.db.prepare('UPDATE labels SET follows_episode = 0 WHERE id = ? AND follows_episode = 1').run(id).changes === 1;
    } catch (err) {
      throw classifySqliteError(err, this.buffer.path, 'closing a label that followed its episode');
    }
  }

  /**
   * Moves labels whose stored times are not dates to the rejected table (source `label`, the row
   * as JSON, the reason), as refused readings are kept: such a label can be neither shown nor
   * uploaded, and must not stop the others. Returns what was moved. Two steps (the rejected row is
   * committed first), so a crash in between keeps the label twice, never loses it.
   */
  setAsideInvalid(now: number): SetAsideLabel[] {
    const db = this.buffer.db;
    const rows = db.prepare(`SELECT ${COLUMNS} FROM labels WHERE NOT (${VALID_TIMES_SQL}) ORDER BY rowid`).all() as LabelRow[];
    if (rows.length === 0) return [];
    const out = rows.map((r) => ({ id: r.id, reason: invalidTimes(r) }));
    this.buffer.appendRejected(
      rows.map((r, i) => ({
        source: 'label',
        raw: JSON.stringify(r),
        reason: out[i]!.reason,
        receivedAt: Math.abs(r.created_at) <= MAX_DATE_MS ? r.created_at : now,
      })),
    );
    const remove = db.prepare('DELETE FROM labels WHERE id = ?');
    try {
      db.transaction(() => {
        for (const r of rows) remove.run(r.id);
      })();
    } catch (err) {
      throw classifySqliteError(err, this.buffer.path, 'moving labels with impossible times to the rejected table');
    }
    return out;
  }

  markSynced(ids: readonly string[]): void {
    markSynced(this.buffer, 'labels', ids, 'marking labels as uploaded');
  }

  counts(): { total: number; unsynced: number } {
    const r = this.buffer.db.prepare('SELECT count(*) AS total, coalesce(sum(synced = 0), 0) AS unsynced FROM labels').get() as { total: number; unsynced: number };
    return { total: r.total, unsynced: r.unsynced };
  }

  /**
   * Anomalous readings (alerts) newest first by reading time (ties: the later committed first),
   * optionally of one pump and from a time on.
   */
  alerts(opts: { pumpId?: string; sinceTs?: number; before?: AlertCursor; limit: number }): StoredRow[] {
    return this.newestAlerts(opts.pumpId, opts.sinceTs, opts.limit, opts.before);
  }

  /**
   * The alerts after `afterSeq` (of every pump or of one), oldest first in seq order, at most
   * `limit`; `next` is the last one's seq, or (one pump) the last alert of any pump passed over, else
   * `afterSeq`; `more` says alerts may follow now (the poller asks again at once).
   */
  alertsAfter(opts: { pumpId?: string; afterSeq: number; limit: number; walk?: number }): AlertsAfter {
    const db = this.buffer.db;
    const { pumpId, afterSeq, limit } = opts;
    const walk = opts.walk ?? ALERTS_AFTER_WALK;
    const rows = (
      pumpId === undefined
        ? readRows(db.prepare(ALERTS_AFTER_SQL), this.buffer.contributionNames, afterSeq, limit + 1)
        : readRows(db.prepare(PUMP_ALERTS_AFTER_SQL), this.buffer.contributionNames, afterSeq, walk, pumpId, limit + 1)
    ).map(fromDbRow);
    if (rows.length > limit) {
      rows.pop();
      return { rows, next: rows.at(-1)!.seq, more: true };
    }
    if (pumpId === undefined) return { rows, next: rows.at(-1)?.seq ?? afterSeq, more: false };
    // Fewer than asked: none of the pump's alerts lies between its last one and the walk's end.
    const walked = db.prepare(WALKED_SQL).get(afterSeq, walk) as { n: number; last: number | null };
    return { rows, next: walked.last ?? afterSeq, more: walked.n === walk };
  }

  /**
   * The newest `perPump` alerts (ts ≥ sinceTs) of every pump that has any, newest first by reading
   * time: one pump stuck in anomaly cannot push the others out of a list. The pumps are found by
   * skipping along the readings_anomalies_pump_ts index (pump_id, ts), one seek per pump, and each
   * pump's newest alerts are a seek on the same index: O(pumps · (log rows + perPump)), whatever
   * one pump's flood (a window function would rank every anomaly: 102 ms against 2 ms with 50 000
   * alerts of one pump).
   */
  alertsPerPump(opts: { sinceTs?: number; perPump: number }): StoredRow[] {
    const pumps = this.buffer.db.prepare(ALERT_PUMPS_SQL).pluck().all() as string[];
    return pumps.flatMap((p) => this.newestAlerts(p, opts.sinceTs, opts.perPump)).sort(newestFirst);
  }

  /**
   * The newest `limit` alerts with ts ≥ sinceTs, of one pump or all, newest first by reading time;
   * with `before`, those after it in that order (the next page: a range of the same index).
   */
  private newestAlerts(pumpId: string | undefined, sinceTs: number | undefined, limit: number, before?: AlertCursor): StoredRow[] {
    const read = (part: keyof typeof BEFORE_PART, args: unknown[], n: number): StoredRow[] => {
      const stmt = this.buffer.db.prepare(newestByTime(pumpId === undefined ? '' : PUMP, part));
      const all = [sinceTs ?? 0, ...args, n];
      return readRows(stmt, this.buffer.contributionNames, ...(pumpId === undefined ? all : [pumpId, ...all])).map(fromDbRow);
    };
    if (before === undefined) return read('all', [], limit);
    const rows = read('tie', [before.ts, before.seq], limit);
    return rows.length < limit ? rows.concat(read('older', [before.ts], limit - rows.length)) : rows;
  }

  /** The whole episode holding the alert `seq`, alerts at most `gapMs` apart (buffer/episodes.ts). */
  episode(seq: number, gapMs: number, stopped?: () => boolean): ReturnType<typeof episodeExtent> {
    return episodeExtent(this.buffer, seq, gapMs, { stopped });
  }

  /**
   * The newest label of `pumpId` whose time range meets [fromTs, toTs] (epoch ms): an episode's
   * label, wherever in the episode it was made (a label saved while the pump was still in alarm
   * covers the episode up to then, and none of the alerts after it carry it).
   */
  newestOverlapping(pumpId: string, fromTs: number, toTs: number): Label | null {
    const row = this.buffer.db.prepare(NEWEST_OVERLAPPING_SQL).get(pumpId, toTs, fromTs) as LabelRow | undefined;
    return row ? fromRow(row) : null;
  }

  /** The reading with this sequence number, if the buffer still holds it. */
  reading(seq: number): StoredRow | null {
    return this.buffer.rowsBySeq(seq, seq)[0] ?? null;
  }

  /**
   * The label that applies to each alert: the newest label of its pump whose stored time range
   * covers the alert's time (a verdict on its episode, a maintenance window), the one the trainer
   * takes for that reading (sync/labels-upload.ts labelTargets). Before, a label naming the alert
   * (`alert_seq`) came first: it showed over a newer label the trainer took, and on an alert its
   * range did not cover.
   */
  labelsFor(alerts: readonly StoredRow[]): Map<number, Label> {
    const out = new Map<number, Label>();
    if (alerts.length === 0) return out;
    const covering = this.buffer.db.prepare(NEWEST_OVERLAPPING_SQL);
    for (const a of alerts) {
      const row = covering.get(a.pumpId, a.ts, a.ts) as LabelRow | undefined;
      if (row) out.set(a.seq, fromRow(row));
    }
    return out;
  }
}

/** Which stored times of a label are not dates, for the rejected table. */
function invalidTimes(r: LabelRow): string {
  const bad = (['from_ts', 'to_ts', 'created_at'] as const).filter((k) => !(Math.abs(r[k]) <= MAX_DATE_MS)).map((k) => `${k} ${r[k]}`);
  const what = bad.length > 1 ? 'are not times' : 'is not a time';
  return `label ${r.id}: ${bad.join(' and ')} ${what} (epoch ms beyond ±${MAX_DATE_MS}, the year 275760): it can be neither shown nor uploaded`;
}
