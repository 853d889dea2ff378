import { redactSecrets } from '../../sync/redact.js';
import type { RefusedReading } from './pipeline.js';
import { WindowCounts } from '../window-counts.js';

/** Refusals are counted over this span ("N readings refused in the last 5 min"). */
export const REFUSAL_WINDOW_MS = 5 * 60_000;
/**
 * Pumps with no accepted reading that are followed at most (a pump over PUMPWATCH_MAX_PUMPS, or
 * one whose every reading is refused). Refusals of pumps with accepted readings are bounded by the
 * pumps themselves; these are not, so a flood of made-up ids could otherwise grow memory and cards.
 */
export const MAX_REFUSED_ONLY_PUMPS = 32;
/** A refusal reason is kept and shown cut to this many characters. */
export const MAX_REASON_CHARS = 200;
/** A pump known only from refusals is forgotten when none arrived for this long. */
const FORGET_AFTER_MS = 60 * 60_000;
/** Refusals counted in 30 s buckets. */
const BUCKETS = 10;

interface Entry {
  total: number;
  /** Monotonic ms of the last refusal. */
  lastAt: number;
  /** Wall-clock time the last refusal was received. */
  lastReceivedAt: number;
  lastReason: string;
  overLimit: boolean;
  /** Monotonic ms of the first refusal since the pump's last accepted reading; null when one was accepted after it. */
  streakSince: number | null;
  /** Whether the pump has accepted readings, or counts against PUMPWATCH_MAX_PUMPS (its entry does not count against MAX_REFUSED_ONLY_PUMPS). */
  known: boolean;
  /** Refusals over the window. */
  recent: WindowCounts;
}

/** What the page and /status show of one pump's refusals. */
export interface PumpRefusalView {
  /** Refused readings in the last REFUSAL_WINDOW_MS (to the resolution of 30 s). */
  recent: number;
  /** Refused readings since the agent started. */
  total: number;
  /** When the last one was received (gateway clock). */
  lastAt: string;
  /** Why the last one was refused: a validation message, redacted and cut to MAX_REASON_CHARS. */
  lastReason: string;
  /** The last one was refused because the gateway is at PUMPWATCH_MAX_PUMPS. */
  overLimit: boolean;
}

/** Per-pump refused readings, so a pump whose readings are all refused is told apart from a silent one (/status, the page). */
export interface PumpRefusalsStatus {
  byPump: Record<string, PumpRefusalView>;
  /** Refused readings of pumps beyond those followed (a flood of made-up ids is counted, not kept). */
  untrackedReadings: number;
}

/**
 * Per-pump refused readings, for the technician's page: a pump whose every reading is refused is
 * not silent, and must not look it. Bounded: pumps with accepted readings (at most
 * PUMPWATCH_MAX_PUMPS) plus MAX_REFUSED_ONLY_PUMPS others; the refusals of further pumps are only
 * counted (`untracked`).
 */
export class PumpRefusals {
  private readonly entries = new Map<string, Entry>();
  private refusedOnly = 0;
  private untrackedReadings = 0;

  /**
   * @param known whether a pump has accepted readings (then its entry is not capped), besides
   *   those the pipeline says are counted against PUMPWATCH_MAX_PUMPS (`knownPump`)
   */
  constructor(private readonly known: (pumpId: string) => boolean) {}

  /** Records refused readings that arrived at monotonic `now`. */
  record(refused: readonly RefusedReading[], now: number): void {
    for (const r of refused) {
      const e = this.entries.get(r.pumpId) ?? this.add(r.pumpId, r.knownPump, now);
      if (!e) {
        this.untrackedReadings++;
        continue;
      }
      if (r.knownPump) this.markKnown(e);
      e.total++;
      e.lastAt = now;
      e.lastReceivedAt = r.receivedAt;
      e.lastReason = r.reason.length > MAX_REASON_CHARS ? `${r.reason.slice(0, MAX_REASON_CHARS - 1)}…` : r.reason;
      e.overLimit = r.overLimit;
      e.streakSince ??= now;
      e.recent.add(now);
    }
  }

  /** A reading of `pumpId` that arrived at monotonic `arrivedAt` was accepted: its refusal streak (if older) ends. */
  accepted(pumpId: string, arrivedAt: number): void {
    const e = this.entries.get(pumpId);
    if (!e) return;
    this.markKnown(e);
    if (e.streakSince !== null && arrivedAt >= e.streakSince) e.streakSince = null;
  }

  /** The pumps known only from refusals (pumps idle for an hour are forgotten here). */
  refusedOnlyPumps(now: number): string[] {
    const ids: string[] = [];
    for (const [id, e] of this.entries) {
      if (e.known) continue;
      if (now - e.lastAt > FORGET_AFTER_MS) {
        this.entries.delete(id);
        this.refusedOnly--;
      } else ids.push(id);
    }
    return ids;
  }

  /** The pump's refusals, or null when none is recorded. */
  view(pumpId: string, now: number): PumpRefusalView | null {
    const e = this.entries.get(pumpId);
    return e ? this.toView(e, now) : null;
  }

  /**
   * How long (ms) the pump has sent only refused readings since its last accepted one, if it still
   * sends them (the last refusal within REFUSAL_WINDOW_MS); null otherwise.
   */
  refusingFor(pumpId: string, now: number): number | null {
    const e = this.entries.get(pumpId);
    if (!e || e.streakSince === null || now - e.lastAt > REFUSAL_WINDOW_MS) return null;
    return now - e.streakSince;
  }

  /** Milliseconds since the pump's last refused reading, or null when none is recorded. */
  sinceLast(pumpId: string, now: number): number | null {
    const e = this.entries.get(pumpId);
    return e ? now - e.lastAt : null;
  }

  /** For /status: every followed pump's refusals, and the readings of pumps not followed. */
  snapshot(now: number): PumpRefusalsStatus {
    const byPump: Record<string, PumpRefusalView> = {};
    for (const [id, e] of [...this.entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) byPump[id] = this.toView(e, now);
    return { byPump, untrackedReadings: this.untrackedReadings };
  }

  private markKnown(e: Entry): void {
    if (e.known) return;
    e.known = true;
    this.refusedOnly--;
  }

  private add(pumpId: string, knownPump: boolean, now: number): Entry | null {
    const known = knownPump || this.known(pumpId);
    if (!known && this.refusedOnly >= MAX_REFUSED_ONLY_PUMPS && !this.evictIdle(now)) return null;
    const e: Entry = {
      total: 0,
      lastAt: now,
      lastReceivedAt: 0,
      lastReason: '',
      overLimit: false,
      streakSince: null,
      known,
      recent: new WindowCounts(REFUSAL_WINDOW_MS, BUCKETS, now),
    };
    this.entries.set(pumpId, e);
    if (!known) this.refusedOnly++;
    return e;
  }

  /** Makes room by dropping the refused-only pump refused longest ago, when that is outside the window. */
  private evictIdle(now: number): boolean {
    let oldest: [string, Entry] | null = null;
    for (const kv of this.entries) if (!kv[1].known && (oldest === null || kv[1].lastAt < oldest[1].lastAt)) oldest = kv;
    if (oldest === null || now - oldest[1].lastAt <= REFUSAL_WINDOW_MS) return false;
    this.entries.delete(oldest[0]);
    this.refusedOnly--;
    return true;
  }

  private toView(e: Entry, now: number): PumpRefusalView {
    return {
      recent: e.recent.sum(now),
      total: e.total,
      lastAt: new Date(e.lastReceivedAt).toISOString(),
      lastReason: redactSecrets(e.lastReason).slice(0, MAX_REASON_CHARS),
      overLimit: e.overLimit,
    };
  }
}
