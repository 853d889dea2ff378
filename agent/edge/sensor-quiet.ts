/**
 * The quiet time of `sensor-frozen` alerts, per pump and sensor (`alerts.sensorMinIntervalSeconds`).
 * A sensor that thaws for one reading and freezes again is found frozen again after another full
 * bound: a transmitter that flickers once a minute at a bound of 60 readings at 1 Hz made ~1 440
 * alerts a day. A finding of a sensor within the quiet time after its last alert is counted, not
 * alerted; when the quiet time ends with findings counted, the publisher alerts the sensor again
 * if it is still frozen (agent/edge/alerts.ts), and otherwise its next finding carries the count.
 *
 * Kept in the buffer's meta (SENT_KEY's way): per pump and sensor, the wall-clock time of its last
 * alert and the findings counted since, so a restart keeps both. Only the entries that still matter
 * are kept: a quiet time running, or findings counted that can still be alerted (prune).
 */
import type { KeyValueStore } from '../../inference/model-state.js';
import { safeErrorMessage } from '../../sync/redact.js';
import type { Logger } from '../logger.js';

export const SENSORS_KEY = 'alerts.sensors';

interface Entry {
  /** Monotonic time of the sensor's last alert; null when the stored time had expired at a restart (the wall clock was stepped back). */
  at: number | null;
  /** Gateway (wall) time of that alert, as stored. */
  wallAt: number;
  /** Findings not alerted since. */
  suppressed: number;
}

/** A sensor with findings held back, as /status shows it. */
export interface SensorSuppressedView {
  suppressedSinceLast: number;
  lastAlertAt: string;
  /** When its quiet time ends (or ended), by the gateway clock now; null when the stored alert time had expired at a restart. */
  quietUntil: string | null;
}

export interface SensorQuietDeps {
  kv: KeyValueStore;
  /** False for a pump the agent no longer tracks, or a sensor its model no longer bounds (a swap): its entry is dropped. */
  bounded: (pumpId: string, feature: string) => boolean;
  intervalMs: () => number;
  clock: () => number;
  monotonic: () => number;
  logger: Logger;
}

export class SensorQuiet {
  /** Per pump, per sensor. */
  private readonly entries = new Map<string, Map<string, Entry>>();
  /** Findings not alerted since start (the /metrics counter). */
  suppressedTotal = 0;

  constructor(private readonly deps: SensorQuietDeps) {}

  /**
   * Loads the last alert of each sensor: a time later than the gateway clock now (stepped back since)
   * has expired. False (nothing logged) when the buffer could not be read (not open yet): call again once it is, before
   * anything is saved, or the first save overwrites the last run's entries. A stored value that does
   * not parse is logged and counts as restored (it would not parse later either).
   */
  restore(): boolean {
    let text: string | null;
    try {
      text = this.deps.kv.getMeta(SENSORS_KEY);
    } catch {
      return false; // the publisher says so (alerts.ts restore)
    }
    try {
      const stored = JSON.parse(text ?? '{}') as Record<string, Record<string, { at: number; suppressed: number }>>;
      const now = this.deps.clock();
      const mono = this.deps.monotonic();
      this.entries.clear();
      for (const [pumpId, sensors] of Object.entries(stored)) {
        for (const [feature, s] of Object.entries(sensors)) {
          if (typeof s.at !== 'number' || !Number.isFinite(s.at)) continue;
          const suppressed = Number.isInteger(s.suppressed) && s.suppressed > 0 ? s.suppressed : 0;
          this.pump(pumpId).set(feature, { at: s.at <= now ? mono - (now - s.at) : null, wallAt: s.at, suppressed });
        }
      }
    } catch (err) {
      this.deps.logger.warn({ err: { message: safeErrorMessage(err) } }, 'quiet times of sensor alerts could not be restored');
    }
    return true;
  }

  /** True while the sensor's quiet time after its last alert runs. */
  quiet(pumpId: string, feature: string): boolean {
    const at = this.entries.get(pumpId)?.get(feature)?.at;
    return at !== undefined && at !== null && this.deps.monotonic() - at < this.deps.intervalMs();
  }

  /** A finding held back in the quiet time. */
  suppress(pumpId: string, feature: string): void {
    const e = this.entries.get(pumpId)?.get(feature);
    if (e) e.suppressed++;
    this.suppressedTotal++;
  }

  /** The sensor is alerted now: its quiet time starts; returns the findings held back since its previous alert. */
  alerted(pumpId: string, feature: string): number {
    const suppressed = this.entries.get(pumpId)?.get(feature)?.suppressed ?? 0;
    this.pump(pumpId).set(feature, { at: this.deps.monotonic(), wallAt: this.deps.clock(), suppressed: 0 });
    return suppressed;
  }

  /**
   * The sensors of the pump with findings held back whose quiet time is over: alerted again if still
   * frozen. Asked right after prune() (AlertPublisher.onCommit), so each is bounded by the pump's model.
   */
  due(pumpId: string): string[] {
    const sensors = this.entries.get(pumpId);
    if (sensors === undefined) return [];
    const out: string[] = [];
    for (const [feature, e] of sensors) if (e.suppressed > 0 && !this.quiet(pumpId, feature)) out.push(feature);
    return out;
  }

  /**
   * Drops the findings held back of sensors no model bounds now (the pump's model swapped for one
   * without that sensor's bound, or a pump the agent no longer tracks: none of its rows was left in
   * the buffer at the restart, and it has not sent since): they can never be alerted, and would
   * stay in /status and the buffer for ever. True when any was dropped (to be saved).
   */
  prune(): boolean {
    let dropped = false;
    for (const [pumpId, sensors] of this.entries) {
      for (const [feature, e] of sensors) {
        if (e.suppressed > 0 && !this.deps.bounded(pumpId, feature)) {
          sensors.delete(feature);
          dropped = true;
        }
      }
      if (sensors.size === 0) this.entries.delete(pumpId);
    }
    return dropped;
  }

  /** True when any pump has a sensor with findings held back (the publisher looks for due sensors only then). */
  owing(): boolean {
    for (const sensors of this.entries.values()) for (const e of sensors.values()) if (e.suppressed > 0) return true;
    return false;
  }

  /** Stores the entries that still matter (quiet time running, or findings held back), forgetting the others. */
  save(): void {
    const out: Record<string, Record<string, { at: number; suppressed: number }>> = {};
    for (const [pumpId, sensors] of this.entries) {
      for (const [feature, e] of sensors) {
        if (e.suppressed === 0 && !this.quiet(pumpId, feature)) sensors.delete(feature);
        else (out[pumpId] ??= {})[feature] = { at: e.wallAt, suppressed: e.suppressed };
      }
      if (sensors.size === 0) this.entries.delete(pumpId);
    }
    try {
      this.deps.kv.setMeta(SENSORS_KEY, JSON.stringify(out));
    } catch (err) {
      this.deps.logger.warn({ err: { message: safeErrorMessage(err) } }, 'quiet times of sensor alerts not persisted');
    }
  }

  /** Per pump, its sensors with findings held back since their last alert. */
  status(): Record<string, Record<string, SensorSuppressedView>> {
    const out: Record<string, Record<string, SensorSuppressedView>> = {};
    const interval = this.deps.intervalMs();
    const now = this.deps.clock();
    const mono = this.deps.monotonic();
    for (const [pumpId, sensors] of this.entries) {
      for (const [feature, e] of sensors) {
        if (e.suppressed === 0) continue;
        const quietUntil = e.at === null ? null : new Date(now + (e.at + interval - mono)).toISOString();
        (out[pumpId] ??= {})[feature] = { suppressedSinceLast: e.suppressed, lastAlertAt: new Date(e.wallAt).toISOString(), quietUntil };
      }
    }
    return out;
  }

  private pump(pumpId: string): Map<string, Entry> {
    let sensors = this.entries.get(pumpId);
    if (sensors === undefined) this.entries.set(pumpId, (sensors = new Map()));
    return sensors;
  }
}
