/**
 * Pumps that stop sending (`alerts.silentAfterSeconds`): a PLC link down, a cable cut, a poller
 * crashed. The page shows such a pump as stale, but nothing told the cloud; a SCADA system raises
 * "communication lost". A pump this agent has heard (a reading committed, or one in the buffer at
 * start-up) that then sends nothing for the setting's time is silent: the publisher alerts it once
 * (`pump-silent`), and once more when it is heard again (`pump-resumed`). Every reading that
 * reaches the agent counts, accepted, refused, or not stored because the buffer failed (a full
 * disk): a pump whose readings are all refused is not silent (the page says it is refused), nor is
 * one whose readings the agent could not store. Silence is judged by when readings arrive (not
 * by their own times), on the monotonic clock, as the page's "stale" is: a step of the gateway
 * clock neither raises nor hides it.
 *
 * Kept in the buffer's meta (`alerts.silent`, as sensor-quiet.ts keeps its own): the pumps alerted
 * silent and not yet resumed, so a restart neither alerts them again nor forgets their
 * `pump-resumed`. The time the agent was down is not measurable on the monotonic clock: after a
 * restart a pump is silent from the agent's start (`beganBeforeRestart`, `since` its last reading's
 * receive time), and a pump last heard more than DECOMMISSIONED_AFTER_MS before the start is not
 * followed (a pump taken out of service), alerted silent or not; nor is one silent that long while
 * the agent runs (logged, and followed again once it sends, as a new pump).
 */
import type { BufferStore } from '../../buffer/store.js';
import { GAP_INTERVALS, sortedMedian } from '../../inference/contract.js';
import type { KeyValueStore } from '../../inference/model-state.js';
import { safeErrorMessage } from '../../sync/redact.js';
import type { Logger } from '../logger.js';

export const SILENT_KEY = 'alerts.silent';
/** A pump not heard for longer than this (at start-up, or while running) is not followed (decommissioned). */
export const DECOMMISSIONED_AFTER_MS = 7 * 86_400_000;

/** A stored reading, as the silence alerts give it: its seq, its own time and when it reached the agent (gateway clock). */
export interface HeardReading {
  seq: number;
  ts: number;
  receivedAt: number;
}

/** A pump in the buffer at start-up, with its newest rows (oldest first; the last is its last reading). */
export interface BufferedPump {
  pumpId: string;
  rows: readonly HeardReading[];
}

/** Rows read back per pump at start-up: its last reading, and its usual interval (the median of GAP_INTERVALS). */
const READ_BACK = GAP_INTERVALS + 1;

/**
 * The pumps of the buffer with their newest rows before `beforeSeq` (PumpSilenceDeps.buffered); a
 * pump with no row before it has none. Throws while the buffer is not open.
 */
export function bufferedPumps(buffer: Pick<BufferStore, 'pumpIds' | 'heardTimes'>, beforeSeq?: number): BufferedPump[] {
  return buffer.pumpIds().map((pumpId) => ({ pumpId, rows: buffer.heardTimes(pumpId, READ_BACK, beforeSeq) }));
}

/** A reading that reached the agent and was not stored: refused (`ts` unknown), or the buffer failed (`ts` its own time). */
export interface UnstoredArrival {
  pumpId: string;
  receivedAt: number;
  ts?: number | null;
}

interface Track {
  /** The pump's last reading committed (by seq). */
  last: HeardReading;
  /** The newest reading time seen (intervals and missed readings are counted on the pump's own times). */
  newestTs: number;
  /** Its last intervals (ms, positive), at most GAP_INTERVALS, oldest first. */
  intervals: number[];
  /** Monotonic ms when it was last heard; the agent's start for a pump not heard since. */
  heardAt: number;
  /** Gateway time it was last heard: its last reading's receive time, or a refused reading's. */
  heardWall: number;
  /** Not heard since the agent started: `heardAt` is the start, the silence began before it. */
  beganBeforeRestart: boolean;
  /** Gateway time of its `pump-silent` alert; null while it is not alerted silent. */
  alertedAt: number | null;
}

/** What is stored per pump alerted silent. */
interface Stored {
  seq: number;
  ts: number;
  receivedAt: number;
  since: number;
  alertedAt: number;
  intervalMs: number | null;
}

/** A pump found silent (pump-silent) or heard again after its alert (pump-resumed), as the publisher alerts it. */
export interface SilenceEvent {
  pumpId: string;
  /** pump-silent: its last reading; pump-resumed: the first reading back (its last one when only refused readings came). */
  reading: HeardReading;
  /** Its last reading before the silence. */
  lastReading: HeardReading;
  since: number;
  silentMs: number;
  beganBeforeRestart: boolean;
  /** The pump's usual interval (median of its last ones), when known. */
  intervalMs: number | null;
  /** pump-resumed: readings the pump's own times skip at that interval; null when not known. */
  missedReadings: number | null;
}

/** A silent pump, as /status shows it. */
export interface SilentPumpView {
  since: string;
  silentSeconds: number;
  alerted: boolean;
  beganBeforeRestart: boolean;
}

export interface PumpSilenceDeps {
  kv: KeyValueStore;
  /** The pumps in the buffer with their newest rows (before `beforeSeq`, when given); throws while the buffer is not open. */
  buffered: (beforeSeq?: number) => BufferedPump[];
  silentAfterMs: () => number;
  clock: () => number;
  monotonic: () => number;
  logger: Logger;
}

export class PumpSilence {
  private readonly tracks = new Map<string, Track>();
  private restored = false;

  constructor(private readonly deps: PumpSilenceDeps) {}

  /**
   * Follows the pumps of the buffer, silent from now, and the pumps the last run alerted silent.
   * False (nothing logged) when the buffer could not be read: call again once it is, before
   * anything is saved. A stored value that does not parse is logged and counts as restored.
   * `beforeSeq`: the first seq of a commit the restore runs in (a buffer that opened late); the
   * rows of that commit are not the last run's, they are heard after it.
   */
  restore(beforeSeq?: number): boolean {
    let text: string | null;
    let buffered: BufferedPump[];
    try {
      text = this.deps.kv.getMeta(SILENT_KEY);
      buffered = this.deps.buffered(beforeSeq);
    } catch {
      return false; // the publisher says so (alerts.ts restore)
    }
    const now = this.deps.clock();
    const mono = this.deps.monotonic();
    let stored: Record<string, Stored> = {};
    try {
      stored = JSON.parse(text ?? '{}') as Record<string, Stored>;
    } catch (err) {
      this.deps.logger.warn({ err: { message: safeErrorMessage(err) } }, 'pumps alerted silent by the last run could not be restored');
    }
    // Taken out of service: last heard (its last reading, or its silence's `since` when alerted) too long before the start.
    const sinceOf = (pumpId: string): number | null => (typeof stored[pumpId]?.since === 'number' ? stored[pumpId].since : null);
    const decommissioned = (heardWall: number): boolean => now - heardWall > DECOMMISSIONED_AFTER_MS;
    const forgotten = new Set<string>();
    for (const { pumpId, rows } of buffered) {
      const last = rows.at(-1);
      if (last === undefined || this.tracks.has(pumpId)) continue;
      if (decommissioned(Math.max(last.receivedAt, sinceOf(pumpId) ?? -Infinity))) {
        if (stored[pumpId] !== undefined) forgotten.add(pumpId);
        continue;
      }
      const t = this.track(pumpId, last, mono, last.receivedAt);
      t.newestTs = rows[0]!.ts;
      for (const row of rows.slice(1)) this.interval(t, row.ts);
      t.beganBeforeRestart = true;
    }
    for (const [pumpId, s] of Object.entries(stored)) {
      if (typeof s?.seq !== 'number' || typeof s.alertedAt !== 'number' || this.tracks.get(pumpId)?.alertedAt != null) continue;
      if (forgotten.has(pumpId) || (!this.tracks.has(pumpId) && decommissioned(s.since))) {
        forgotten.add(pumpId);
        continue;
      }
      const t = this.tracks.get(pumpId) ?? this.track(pumpId, { seq: s.seq, ts: s.ts, receivedAt: s.receivedAt }, mono, s.since);
      if (t.intervals.length === 0 && typeof s.intervalMs === 'number') t.intervals.push(s.intervalMs);
      Object.assign(t, { heardWall: s.since, beganBeforeRestart: true, alertedAt: s.alertedAt });
    }
    this.restored = true;
    for (const pumpId of forgotten) this.logForgotten(pumpId, sinceOf(pumpId), true);
    if (forgotten.size > 0) this.save(); // alerts.silent no longer lists them
    return true;
  }

  /**
   * A `pump-silent` alert found in the last run's unsent alerts, or `pump-resumed` one: the state
   * saved with it (in a second write by agents before saveState's one transaction, which a kill may
   * have missed) follows the alert.
   */
  alertedBefore(pumpId: string, kind: 'pump-silent' | 'pump-resumed', at: number): boolean {
    const t = this.tracks.get(pumpId);
    if (t === undefined) return false;
    const before = t.alertedAt;
    if (kind === 'pump-silent') t.alertedAt ??= at;
    else t.alertedAt = null;
    return t.alertedAt !== before;
  }

  /**
   * A `pump-silent` alert decided at `at` was dropped from the pending list (full): a pump still
   * alerted by it is not alerted any more, and is decided again at the next check (call save()).
   * True when the pump was.
   */
  dropped(pumpId: string, at: number): boolean {
    const t = this.tracks.get(pumpId);
    if (t === undefined || t.alertedAt !== at) return false;
    t.alertedAt = null;
    return true;
  }

  /** Committed readings: each pump is heard now; those alerted silent are returned (pump-resumed). Call save() after alerting them. */
  heard(rows: ReadonlyArray<{ pumpId: string; ts: number; receivedAt: number }>, seqs: readonly number[]): SilenceEvent[] {
    const mono = this.deps.monotonic();
    const resumed: Resumed = new Map();
    for (let i = 0; i < rows.length; i++) {
      const { pumpId, ts, receivedAt } = rows[i]!;
      const row = { seq: seqs[i]!, ts, receivedAt };
      const t = this.tracks.get(pumpId);
      if (t === undefined) {
        this.track(pumpId, row, mono, receivedAt);
        continue;
      }
      this.hear(resumed, pumpId, t, row, ts, receivedAt, mono);
      if (row.seq > t.last.seq) t.last = row;
    }
    return [...resumed.values()].map((r) => r.event);
  }

  /**
   * Readings of pumps that reached the agent and were not stored: refused, or the buffer failed (a
   * full disk). A pump followed is heard (not silent); one alerted silent is returned (pump-resumed,
   * at its last reading stored, with the readings missed before the first one with a time).
   */
  notStored(arrived: readonly UnstoredArrival[]): SilenceEvent[] {
    if (!this.restored) return [];
    const mono = this.deps.monotonic();
    const resumed: Resumed = new Map();
    for (const r of arrived) {
      const t = this.tracks.get(r.pumpId);
      if (t === undefined) continue; // never heard: not followed
      this.hear(resumed, r.pumpId, t, t.last, r.ts ?? null, r.receivedAt, mono);
    }
    return [...resumed.values()].map((r) => r.event);
  }

  /**
   * A reading of a pump followed, its own time `ts` when known: the pump is heard now. One alerted
   * silent is resumed (once per call) at `reading`, with the readings its times skip from its
   * newest before the silence to the first one after.
   */
  private hear(resumed: Resumed, pumpId: string, t: Track, reading: HeardReading, ts: number | null, receivedAt: number, mono: number): void {
    if (t.alertedAt !== null && !resumed.has(pumpId)) resumed.set(pumpId, { event: this.resumedEvent(pumpId, t, reading, mono), newestTs: t.newestTs });
    if (ts !== null) {
      const back = resumed.get(pumpId);
      if (back && ts > back.newestTs) back.event.missedReadings = minNullable(back.event.missedReadings, missed(ts - back.newestTs, back.event.intervalMs));
      this.interval(t, ts);
    }
    Object.assign(t, { heardAt: mono, heardWall: receivedAt, beganBeforeRestart: false, alertedAt: null });
  }

  /**
   * The pumps silent for the setting's time and not alerted yet: each is alerted now (pump-silent),
   * at `now` (the gateway time its alert is decided: see dropped()).
   */
  due(now: number): SilenceEvent[] {
    const after = this.deps.silentAfterMs();
    if (after <= 0 || !this.restored) return [];
    const mono = this.deps.monotonic();
    const out: SilenceEvent[] = [];
    for (const [pumpId, t] of this.tracks) {
      if (t.alertedAt !== null || mono - t.heardAt < after) continue;
      t.alertedAt = now;
      const intervalMs = median(t.intervals);
      out.push({ pumpId, reading: t.last, lastReading: t.last, since: t.heardWall, silentMs: mono - t.heardAt, beganBeforeRestart: t.beganBeforeRestart, intervalMs, missedReadings: null });
    }
    return out;
  }

  /**
   * Stops following the pumps not heard for DECOMMISSIONED_AFTER_MS (on the monotonic clock, and
   * by the gateway clock for a silence that began before the start): taken out of service. Each is
   * logged; those alerted are no longer saved as silent. Followed again once one sends (a new pump,
   * no pump-resumed).
   */
  forgetDecommissioned(): void {
    if (!this.restored) return;
    const mono = this.deps.monotonic();
    const now = this.deps.clock();
    let alerted = false;
    for (const [pumpId, t] of [...this.tracks]) {
      if (mono - t.heardAt <= DECOMMISSIONED_AFTER_MS && !(t.beganBeforeRestart && now - t.heardWall > DECOMMISSIONED_AFTER_MS)) continue;
      this.tracks.delete(pumpId);
      alerted ||= t.alertedAt !== null;
      this.logForgotten(pumpId, t.heardWall, t.alertedAt !== null);
    }
    if (alerted) this.save();
  }

  private logForgotten(pumpId: string, since: number | null, alerted: boolean): void {
    const days = DECOMMISSIONED_AFTER_MS / 86_400_000;
    this.deps.logger.info(
      { pumpId, since: since === null ? null : new Date(since).toISOString(), alerted },
      `pump ${pumpId} not heard for over ${days} days: taken out of service, no longer followed for silence${alerted ? ' nor counted silent (no pump-resumed will follow)' : ''}; followed again once it sends`,
    );
  }

  /** The pumps silent now: alerted, or silent for the setting's time (alerted at the next check). */
  status(): Record<string, SilentPumpView> {
    const after = this.deps.silentAfterMs();
    const mono = this.deps.monotonic();
    const out: Record<string, SilentPumpView> = {};
    for (const [pumpId, t] of [...this.tracks].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const silentMs = mono - t.heardAt;
      if (t.alertedAt === null && (after <= 0 || silentMs < after)) continue;
      out[pumpId] = { since: new Date(t.heardWall).toISOString(), silentSeconds: Math.round(silentMs / 1000), alerted: t.alertedAt !== null, beganBeforeRestart: t.beganBeforeRestart };
    }
    return out;
  }

  /**
   * Stores the pumps alerted silent. After a change that alerts decided, the publisher writes this
   * entry in one transaction with the pending list (alerts.ts saveState): never a pump recorded
   * alerted whose alert is lost. Agents before it wrote it after the list, so a kill between the two
   * writes left an alert the restore finds (alertedBefore).
   */
  save(): void {
    try {
      this.deps.kv.setMeta(...this.entry());
    } catch (err) {
      this.deps.logger.warn({ err: { message: safeErrorMessage(err) } }, 'pumps alerted silent not persisted');
    }
  }

  /** The meta entry save() writes. */
  entry(): [string, string] {
    const out: Record<string, Stored> = {};
    for (const [pumpId, t] of this.tracks) {
      if (t.alertedAt === null) continue;
      out[pumpId] = { seq: t.last.seq, ts: t.last.ts, receivedAt: t.last.receivedAt, since: t.heardWall, alertedAt: t.alertedAt, intervalMs: median(t.intervals) };
    }
    return [SILENT_KEY, JSON.stringify(out)];
  }

  private resumedEvent(pumpId: string, t: Track, reading: HeardReading, mono: number): SilenceEvent {
    return { pumpId, reading: { ...reading }, lastReading: { ...t.last }, since: t.heardWall, silentMs: mono - t.heardAt, beganBeforeRestart: t.beganBeforeRestart, intervalMs: median(t.intervals), missedReadings: null };
  }

  private track(pumpId: string, last: HeardReading, mono: number, heardWall: number): Track {
    const t: Track = { last: { seq: last.seq, ts: last.ts, receivedAt: last.receivedAt }, newestTs: last.ts, intervals: [], heardAt: mono, heardWall, beganBeforeRestart: false, alertedAt: null };
    this.tracks.set(pumpId, t);
    return t;
  }

  /** A reading time of the pump: a step forward from its newest is one of its intervals. */
  private interval(t: Track, ts: number): void {
    if (ts > t.newestTs) {
      t.intervals.push(ts - t.newestTs);
      if (t.intervals.length > GAP_INTERVALS) t.intervals.shift();
      t.newestTs = ts;
    }
  }
}

/** The pumps resumed by one call, each with its newest reading time before the silence. */
type Resumed = Map<string, { event: SilenceEvent; newestTs: number }>;

function median(intervals: readonly number[]): number | null {
  return intervals.length === 0 ? null : sortedMedian([...intervals].sort((a, b) => a - b));
}

/** Readings skipped in a step of `stepMs` at `intervalMs` (null when the interval is not known). */
function missed(stepMs: number, intervalMs: number | null): number | null {
  return intervalMs === null || intervalMs <= 0 ? null : Math.max(0, Math.round(stepMs / intervalMs) - 1);
}

function minNullable(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.min(a, b);
}
