/**
 * Anomaly alerts on output `alerts`: decided right after each commit (pump, time, score,
 * threshold, model version, top contributing features), at most one per pump per
 * `alertsMinIntervalSeconds`. Alerts not yet handed to edgeHub are kept in SQLite (meta) and sent
 * after a reconnect or a restart; the last alert sent per pump is recorded there too, and the
 * alerted reading's row gets `alerted_at`. Once
 * edgeHub has an alert, it stores and forwards it through offline periods.
 *
 * A sensor found frozen (inference/frozen.ts) makes one alert of kind `sensor-frozen` when it is
 * found, outside the anomalies' rate limit (it comes once per fault, not once per reading), and
 * under a quiet time of its own per pump and sensor, `sensorMinIntervalSeconds` (sensor-quiet.ts):
 * a sensor that thaws for a reading and freezes again is found again and again. A finding in the
 * quiet time is counted; when the quiet time ends with findings counted and the sensor is still
 * frozen, it is alerted at the pump's next commit, with the count (a continuing fault is never left
 * unalerted); thawed by then, its next finding carries the count. The
 * `kind` field is optional in the message: consumers that predate it read every alert as an
 * anomaly alert, and the message property `type` (`anomaly` or `sensor-fault`) tells them apart
 * for routes; anomaly alerts keep every field they had.
 */
import type { PredictionRow } from '../../buffer/types.js';
import type { InferenceEngine } from '../../inference/engine.js';
import type { KeyValueStore } from '../../inference/model-state.js';
import { monotonicNow } from '../../sync/clock.js';
import { safeErrorMessage } from '../../sync/redact.js';
import type { Logger } from '../logger.js';
import { SensorQuiet, type SensorSuppressedView } from './sensor-quiet.js';

export const ALERTS_OUTPUT = 'alerts';
const PENDING_KEY = 'alerts.pending';
const SENT_KEY = 'alerts.sent';

/** What an alert is about: an anomaly score over the threshold, or a sensor found frozen. Absent in alerts of agents before it: `anomaly`. */
export type AlertKind = 'anomaly' | 'sensor-frozen';

/** The sensor of a `sensor-frozen` alert: it has read `value` for `readings` readings in a row since `since`; `after` is its model's bound. */
export interface FrozenSensorAlert {
  feature: string;
  value: number;
  since: string;
  readings: number;
  after: number;
}

export interface Alert {
  kind?: AlertKind;
  deviceId: string;
  pumpId: string;
  seq: number;
  ts: string;
  /** The reading's anomaly score; a `sensor-frozen` alert's reading may be unscored: null. */
  score: number | null;
  threshold: number | null;
  modelVersion: string | null;
  topFeatures: Array<{ feature: string; contribution: number }>;
  /**
   * `anomaly`: anomalies of this pump not alerted since its previous anomaly alert (rate limit).
   * `sensor-frozen`: findings of this sensor not alerted since its previous alert (quiet time).
   */
  suppressedSinceLast: number;
  /** `sensor-frozen` only: the sensor's run as it was found, or as it is when a quiet time ends (its findings held back, still frozen). */
  sensor?: FrozenSensorAlert;
}

export interface AlertDeps {
  engine: InferenceEngine;
  kv: KeyValueStore;
  deviceId: string;
  /** Hands one alert to edgeHub; rejects when offline. */
  send: (alert: Alert) => Promise<void>;
  minIntervalMs: () => number;
  /** Quiet time of `sensor-frozen` alerts per pump and sensor. */
  sensorMinIntervalMs: () => number;
  logger: Logger;
  /** Wall clock: the times stored with alerts. */
  clock?: () => number;
  /** Monotonic ms for the rate limit (default performance.now()); NTP steps the wall clock. */
  monotonic?: () => number;
  /** Marks the alerted reading in the buffer once edgeHub took the alert. */
  markAlerted?: (seq: number, at: number) => void;
  /** Alerts kept while offline at most (the oldest are dropped first, and counted). */
  maxPending?: number;
}

export function topFeatures(contributions: Record<string, number> | null | undefined, n = 3): Alert['topFeatures'] {
  if (!contributions) return [];
  return Object.entries(contributions)
    .filter(([, v]) => Number.isFinite(v))
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([feature, contribution]) => ({ feature, contribution }));
}

/** The last alert sent of a pump, as kept in SQLite: `sensor` names a `sensor-frozen` alert's sensor. */
interface SentRecord {
  at: number;
  seq?: number;
  sensor?: string;
  /**
   * The gateway time of the pump's last anomaly alert, when the last alert sent was a sensor's
   * (the rate limit is of anomalies: restore takes it from here, or from `at` of an anomaly alert).
   */
  anomalyAt?: number;
}

/**
 * The pending alerts a stopped drain had not sent: per pump (FIFO, seqs rise), those after the
 * last one recorded as sent. One reading may make several alerts (a frozen sensor or two, and an
 * anomaly): the one sent is found by its seq and sensor, and the alerts of that seq after it stay.
 */
function unsentOf(pending: ReadonlyArray<{ alert: Alert; at: number }>, sent: Readonly<Record<string, SentRecord>>): Array<{ alert: Alert; at: number }> {
  const cut = new Map<string, number>();
  pending.forEach((p, i) => {
    const s = sent[p.alert.pumpId];
    if (s?.seq === undefined || p.alert.seq > s.seq) return;
    if (p.alert.seq < s.seq || (p.alert.sensor?.feature ?? null) === (s.sensor ?? null)) cut.set(p.alert.pumpId, i);
  });
  return pending.filter((p, i) => i > (cut.get(p.alert.pumpId) ?? -1));
}

export class AlertPublisher {
  /** Alerts not yet handed to edgeHub, with the gateway time each was decided. */
  private pending: Array<{ alert: Alert; at: number }> = [];
  /** Monotonic time of each pump's last alert. */
  private readonly lastAt = new Map<string, number>();
  private readonly suppressed = new Map<string, number>();
  private sending: Promise<void> | null = null;
  readonly counts = { sent: 0, suppressed: 0, dropped: 0, failed: 0, sensorFaults: 0 };
  private lastError: string | null = null;
  private readonly sensorQuiet: SensorQuiet;
  /**
   * What of the last run's state restore could not read yet (null before restore is called): a
   * buffer that cannot open at start-up opens later (agent/main.ts reopenBuffer), and what restore
   * could not read then is read at the first commit or flush after, before anything is saved over
   * it; nothing commits while the buffer is closed, so nothing of this run is decided meanwhile.
   */
  private owed: { alerts: boolean; sensors: boolean } | null = null;
  /** Restores that found the buffer unreadable. */
  private failedRestores = 0;

  constructor(private readonly deps: AlertDeps) {
    this.sensorQuiet = new SensorQuiet({ kv: deps.kv, bounded: (pumpId, feature) => deps.engine.boundsSensor(pumpId, feature), intervalMs: deps.sensorMinIntervalMs, clock: () => this.now(), monotonic: () => this.monotonic(), logger: deps.logger });
  }

  /**
   * Loads alerts left unsent by the previous run, the time of each pump's last alert, and each
   * sensor's (sensor-quiet.ts). What the buffer could not give (not open yet) is loaded at the next
   * commit or flush that finds it open: until then nothing is saved over it.
   */
  restore(): void {
    const retry = this.failedRestores > 0;
    const owed = (this.owed ??= { alerts: true, sensors: true });
    if (owed.sensors) owed.sensors = !this.sensorQuiet.restore();
    if (owed.alerts) owed.alerts = !this.restoreAlerts();
    if (owed.sensors || owed.alerts) {
      // Said once, not at each retry (every flush, each 30 s).
      if (this.failedRestores++ === 0) this.deps.logger.warn('unsent alerts and quiet times of sensor alerts of the last run not restored yet: the buffer could not be read; they are once it opens');
    } else if (retry) this.deps.logger.info({ attempts: this.failedRestores + 1 }, 'unsent alerts and quiet times of sensor alerts of the last run restored: the buffer opened');
  }

  private restoreAlerts(): boolean {
    let text: string | null;
    let sentText: string | null;
    try {
      text = this.deps.kv.getMeta(PENDING_KEY);
      sentText = this.deps.kv.getMeta(SENT_KEY);
    } catch {
      return false; // said by restore
    }
    try {
      const sent = JSON.parse(sentText ?? '{}') as Record<string, SentRecord>;
      // The list is saved when a drain stops, not after each alert (see drain): those a stopped
      // drain had sent are the ones up to the last recorded as sent for their pump (FIFO, seqs rise).
      // Before any of this run's (none is decided while the buffer is closed: nothing commits).
      if (text) this.pending = [...unsentOf(JSON.parse(text) as Array<{ alert: Alert; at: number }>, sent), ...this.pending];
      // The rate limit is of anomalies: a sensor-frozen alert, sent or pending, does not start it.
      const lastAt = new Map<string, number>();
      for (const [pumpId, s] of Object.entries(sent)) {
        const at = s.sensor === undefined ? s.at : s.anomalyAt;
        if (at !== undefined) lastAt.set(pumpId, at);
      }
      for (const p of this.pending) if (p.alert.kind !== 'sensor-frozen') lastAt.set(p.alert.pumpId, Math.max(p.at, lastAt.get(p.alert.pumpId) ?? 0));
      // Stored on the wall clock: a time later than now (the clock was stepped back since) has expired.
      const now = this.now();
      const mono = this.monotonic();
      for (const [pumpId, at] of lastAt) if (at <= now) this.lastAt.set(pumpId, mono - (now - at));
    } catch (err) {
      this.deps.logger.warn({ err: { message: safeErrorMessage(err) } }, 'unsent alerts could not be restored');
    }
    return true;
  }

  /** Commit listener: decides which anomalies become alerts. */
  onCommit(rows: readonly PredictionRow[], seqs: readonly number[]): void {
    const restoredNow = this.restoreIfNot();
    const now = this.now();
    const mono = this.monotonic();
    let added = 0;
    let sensorsChanged = false;
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      for (const sensor of row.sensorFaultsBegan ?? []) {
        this.counts.sensorFaults++;
        sensorsChanged = true;
        if (this.sensorQuiet.quiet(row.pumpId, sensor.feature)) {
          this.sensorQuiet.suppress(row.pumpId, sensor.feature);
          continue;
        }
        this.pending.push({ alert: this.frozenAlertOf(row, seqs[i]!, sensor, this.sensorQuiet.alerted(row.pumpId, sensor.feature)), at: now });
        added++;
      }
      if (row.anomaly !== true || row.score === null) continue;
      const last = this.lastAt.get(row.pumpId);
      if (last !== undefined && mono - last < this.deps.minIntervalMs()) {
        this.suppressed.set(row.pumpId, (this.suppressed.get(row.pumpId) ?? 0) + 1);
        this.counts.suppressed++;
        continue;
      }
      this.lastAt.set(row.pumpId, mono);
      this.pending.push({ alert: this.alertOf(row, seqs[i]!), at: now });
      this.suppressed.delete(row.pumpId);
      added++;
    }
    if (this.sensorQuiet.owing()) {
      sensorsChanged ||= this.sensorQuiet.prune();
      const caughtUp = this.stillFrozenAfterQuiet(rows, seqs, now);
      added += caughtUp;
      sensorsChanged ||= caughtUp > 0;
    }
    if (sensorsChanged) this.sensorQuiet.save();
    if (added === 0) {
      if (restoredNow && this.pending.length > 0) this.flush(); // the last run's, restored just now
      return;
    }
    const max = this.deps.maxPending ?? 1000;
    if (this.pending.length > max) this.counts.dropped += this.pending.splice(0, this.pending.length - max).length;
    this.savePending();
    this.flush();
  }

  /** Sends what is pending (after a reconnect, on a timer). */
  flush(): void {
    this.restoreIfNot();
    this.sending ??= this.drain().finally(() => (this.sending = null));
  }

  /** Restores what the start-up restore could not read yet; true when it is all restored now, at this call. */
  private restoreIfNot(): boolean {
    if (this.owed === null || (!this.owed.alerts && !this.owed.sensors)) return false;
    this.restore();
    return !this.owed.alerts && !this.owed.sensors;
  }

  async idle(): Promise<void> {
    while (this.sending) await this.sending;
  }

  /**
   * `suppressed`: anomalies held back by the rate limit; `sensorFaults`: frozen sensors found;
   * `sensorSuppressed`: those findings held back by a sensor's quiet time (both since start);
   * `sensorsSuppressed`: per pump, its sensors with findings held back since their last alert.
   */
  status(): {
    sent: number;
    suppressed: number;
    pending: number;
    dropped: number;
    lastError: string | null;
    sensorFaults: number;
    sensorSuppressed: number;
    sensorsSuppressed: Record<string, Record<string, SensorSuppressedView>>;
  } {
    return {
      sent: this.counts.sent,
      suppressed: this.counts.suppressed,
      pending: this.pending.length,
      dropped: this.counts.dropped,
      lastError: this.lastError,
      sensorFaults: this.counts.sensorFaults,
      sensorSuppressed: this.sensorQuiet.suppressedTotal,
      sensorsSuppressed: this.sensorQuiet.status(),
    };
  }

  /**
   * The catch-up alerts: each sensor of a pump in this commit whose quiet time is over with findings
   * held back, and which is still frozen (its run going on), is alerted now, at the pump's last
   * reading of the commit, with its run as it is. Returns how many.
   */
  private stillFrozenAfterQuiet(rows: readonly PredictionRow[], seqs: readonly number[], now: number): number {
    let added = 0;
    const seen = new Set<string>();
    for (let i = rows.length - 1; i >= 0; i--) {
      const row = rows[i]!;
      if (seen.has(row.pumpId)) continue;
      seen.add(row.pumpId);
      const due = this.sensorQuiet.due(row.pumpId);
      if (due.length === 0) continue;
      for (const fault of this.deps.engine.sensorFaults(row.pumpId)) {
        if (!due.includes(fault.feature)) continue;
        this.pending.push({ alert: this.frozenAlertOf(row, seqs[i]!, fault, this.sensorQuiet.alerted(row.pumpId, fault.feature)), at: now });
        added++;
      }
    }
    return added;
  }

  private frozenAlertOf(row: PredictionRow, seq: number, s: NonNullable<PredictionRow['sensorFaultsBegan']>[number], suppressedSinceLast: number): Alert {
    return {
      ...this.alertHead('sensor-frozen', row, seq),
      topFeatures: [],
      suppressedSinceLast,
      sensor: { feature: s.feature, value: s.value, since: new Date(s.since).toISOString(), readings: s.readings, after: s.after },
    };
  }

  private alertOf(row: PredictionRow, seq: number): Alert {
    return {
      ...this.alertHead('anomaly', row, seq),
      topFeatures: topFeatures(row.contributions),
      suppressedSinceLast: this.suppressed.get(row.pumpId) ?? 0,
    };
  }

  /** The fields every alert of a reading carries, in the message's order: the reading, its score and the model that gave it. */
  private alertHead(kind: AlertKind, row: PredictionRow, seq: number): Pick<Alert, 'kind' | 'deviceId' | 'pumpId' | 'seq' | 'ts' | 'score' | 'threshold' | 'modelVersion'> {
    const model = this.deps.engine.modelFor(row.pumpId);
    return {
      kind,
      deviceId: this.deps.deviceId,
      pumpId: row.pumpId,
      seq,
      ts: new Date(row.ts).toISOString(),
      score: row.score,
      threshold: model && model.version === row.modelVersion ? model.meta.threshold : null,
      modelVersion: row.modelVersion,
    };
  }

  /**
   * Sends the pending alerts in order. Each one sent is recorded (markSent), and the list of those
   * left is saved once, when the drain stops: saved after each alert, a drain of the 1 000 alerts
   * kept through an offline period wrote 187 MB to the buffer (the whole list each time) and
   * blocked the event loop for 13 s. A process stopped in between drops, at restore, the alerts
   * recorded as sent.
   */
  private async drain(): Promise<void> {
    let sent = 0;
    try {
      while (this.pending.length > 0) {
        const { alert, at } = this.pending[0]!;
        try {
          await this.deps.send(alert);
        } catch (err) {
          this.counts.failed++;
          this.lastError = safeErrorMessage(err);
          return; // kept; sent after the next reconnect
        }
        // Not always `alert`: an onCommit over maxPending while it was on its way trims the head,
        // `alert` first (counted dropped). It went all the same, so the oldest left is dropped in
        // its place: the alerts that reach edgeHub and the counts (one sent, one dropped) are those
        // of the oldest unsent alert dropped, and none is lost uncounted (edge-alerts.test.ts).
        this.pending.shift();
        sent++;
        this.counts.sent++;
        this.lastError = null;
        this.markSent(alert, at);
      }
    } finally {
      if (sent > 0) this.savePending();
    }
  }

  private markSent(alert: Alert, at: number): void {
    try {
      const sent = JSON.parse(this.deps.kv.getMeta(SENT_KEY) ?? '{}') as Record<string, SentRecord | undefined>;
      const previous = sent[alert.pumpId];
      // A sensor's alert keeps the time of the pump's last anomaly alert, which restore needs.
      const anomalyAt = previous === undefined ? undefined : previous.sensor === undefined ? previous.at : previous.anomalyAt;
      sent[alert.pumpId] = {
        seq: alert.seq,
        ts: alert.ts,
        at,
        sentAt: new Date(this.now()).toISOString(),
        ...(alert.sensor ? { sensor: alert.sensor.feature, ...(anomalyAt === undefined ? {} : { anomalyAt }) } : {}),
      } as SentRecord;
      this.deps.kv.setMeta(SENT_KEY, JSON.stringify(sent));
      this.deps.markAlerted?.(alert.seq, this.now());
    } catch (err) {
      this.deps.logger.warn({ err: { message: safeErrorMessage(err) } }, 'alert sent but not recorded in the buffer');
    }
  }

  private savePending(): void {
    try {
      this.deps.kv.setMeta(PENDING_KEY, JSON.stringify(this.pending));
    } catch (err) {
      this.deps.logger.warn({ err: { message: safeErrorMessage(err) } }, 'pending alerts not persisted');
    }
  }

  private now(): number {
    return (this.deps.clock ?? Date.now)();
  }

  private monotonic(): number {
    return (this.deps.monotonic ?? monotonicNow)();
  }
}
