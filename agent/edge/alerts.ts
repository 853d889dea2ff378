/**
 * Anomaly alerts on output `alerts`: decided right after each commit (pump, time, score,
 * threshold, model version, top contributing features). A pump's first raises its alarm
 * (open-alarms.ts), which repeats at most once per `alertsMinIntervalSeconds` and clears with one
 * `anomaly-cleared` alert after the page's off-delay of normal readings; both carry the raise's seq
 * (`episode`). Every alert has an `id` (idOf), the consumers' dedup key: `seq` is the reading's. Alerts not yet handed to edgeHub are kept in SQLite (meta) and sent
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
 * anomaly alert, and the message property `type` (messageType: `anomaly`, `anomaly-cleared`,
 * `sensor-fault`, `pump-silent`, `pump-resumed`) tells them apart for routes; anomaly alerts keep every field they had.
 *
 * A pump that stops sending makes one alert of kind `pump-silent` after `silentAfterMs`, and one
 * `pump-resumed` when it is heard again (pump-silence.ts); both are decided on a timer (checkSilence)
 * or at a commit, a refusal or a reading the buffer could not store, outside the anomalies' rate
 * limit, and leave it as it was. A silence alert dropped from a full pending list leaves no pump
 * alerted by it (trimPending).
 */
import { BUFFER_ID_KEY } from '../../buffer/migrations.js';
import type { PredictionRow } from '../../buffer/types.js';
import type { InferenceEngine } from '../../inference/engine.js';
import type { AtomicKeyValueStore } from '../../inference/model-state.js';
import { monotonicNow } from '../../sync/clock.js';
import { safeErrorMessage } from '../../sync/redact.js';
import type { Logger } from '../logger.js';
import { afterDroppedRaises, carryDroppedRepeats, dropRank, isRaise } from './dropped-raises.js';
import { ALERTS_SCHEMA_VERSION } from './message-schema.js';
import { OpenAlarms, type OpenAlarm, type OpenAlarmView } from './open-alarms.js';
import { PumpSilence, type BufferedPump, type SilenceEvent, type SilentPumpView, type UnstoredArrival } from './pump-silence.js';
import { SensorQuiet, type SensorSuppressedView } from './sensor-quiet.js';

export const ALERTS_OUTPUT = 'alerts';
const PENDING_KEY = 'alerts.pending';
const SENT_KEY = 'alerts.sent';

/**
 * What an alert is about: an anomaly score over the threshold, a pump's anomaly alarm returned to
 * normal (open-alarms.ts), a sensor found frozen, a pump that stopped sending, or one heard again
 * after its `pump-silent` alert. Absent in alerts of agents before it: `anomaly`.
 */
export type AlertKind = 'anomaly' | 'anomaly-cleared' | 'sensor-frozen' | 'pump-silent' | 'pump-resumed';

type SilenceKind = 'pump-silent' | 'pump-resumed';
const isSilenceKind = (kind: AlertKind | undefined): kind is SilenceKind => kind === 'pump-silent' || kind === 'pump-resumed';

/** The message property `type` of an alert of this kind, for routes (a `kind` absent is an anomaly). */
export function messageType(kind: AlertKind | undefined): string {
  return kind === 'sensor-frozen' ? 'sensor-fault' : (kind ?? 'anomaly');
}

/** The silence of a `pump-silent` or `pump-resumed` alert (pump-silence.ts). */
export interface PumpSilenceAlert {
  /** When the pump was last heard before the silence (gateway clock): its last reading's receive time, or a refused reading's. */
  since: string;
  /** Its last reading before the silence: its own time and when it reached the agent. */
  lastReading: { seq: number; ts: string; receivedAt: string };
  /**
   * `pump-silent`: how long it had been silent; `pump-resumed`: how long the silence lasted. On
   * the monotonic clock: from the agent's start when `beganBeforeRestart` (the time the agent was
   * down is not measurable on it; `since` says when the silence began by the gateway clock).
   */
  silentSeconds: number;
  beganBeforeRestart: boolean;
  /** The pump's usual interval (the median of its last intervals), when known. */
  intervalSeconds?: number;
  /** `pump-resumed`: readings its own times skip at that interval; absent when unknown (or only refused readings came back). */
  missedReadings?: number;
}

/** The sensor of a `sensor-frozen` alert: it has read `value` for `readings` readings in a row since `since`; `after` is its model's bound. */
export interface FrozenSensorAlert {
  feature: string;
  value: number;
  since: string;
  readings: number;
  after: number;
}

export interface Alert {
  /**
   * Unique per gateway (deviceId): the dedup key, with deviceId, of a consumer that may be handed an
   * alert twice (a restart in the middle of a send). Absent in alerts of agents before it (and added
   * at restore to those they left pending). See idOf.
   */
  id?: string;
  /** The output's contract version (message-schema.ts); absent in alerts of agents before it (those they left pending are of version 1). */
  schemaVersion?: number;
  kind?: AlertKind;
  deviceId: string;
  pumpId: string;
  seq: number;
  ts: string;
  /**
   * When the agent decided the alert, on the gateway's clock (ISO): `ts` is the reading's time, on
   * the sender's clock, which may be hours off (a reading up to a day ahead is accepted). Absent in
   * alerts of agents before it (added at restore to those they left pending, from when they were decided).
   */
  detectedAt?: string;
  /**
   * The reading's anomaly score; a `sensor-frozen` alert's reading may be unscored: null. A silence
   * alert's reading (`pump-silent`: the last one before it; `pump-resumed`: the first one back, or
   * the last before it when only refused readings came back) is given by seq and ts only: null.
   */
  score: number | null;
  threshold: number | null;
  modelVersion: string | null;
  topFeatures: Array<{ feature: string; contribution: number }>;
  /**
   * `anomaly`: anomalies of this pump not alerted since its episode's previous alert (rate limit);
   * `anomaly-cleared`: those since the episode's last alert (the count ends with the episode).
   * `sensor-frozen`: findings of this sensor not alerted since its previous alert (quiet time).
   */
  suppressedSinceLast: number;
  /** `sensor-frozen` only: the sensor's run as it was found, or as it is when a quiet time ends (its findings held back, still frozen). */
  sensor?: FrozenSensorAlert;
  /** `pump-silent` and `pump-resumed` only. */
  silence?: PumpSilenceAlert;
  /** `anomaly` and `anomaly-cleared`: the seq of the episode's raise (its first `anomaly` alert); a raise's own seq. */
  episode?: number;
  /** `anomaly-cleared` only: the raise's reading time. */
  raisedAt?: string;
}

/**
 * An alert's id: its kind, its buffer and its reading (seq), which tell apart the alerts of one
 * reading but for a frozen sensor's (one per sensor: its feature added) and silence alerts (a pump
 * silent again with no reading in between has the same seq: the decision time `at` added). The
 * buffer's id (meta `buffer.id`) because seqs start again at 1 in a new file (a replaced data
 * volume, a buffer moved aside): without it a control room deduplicating on (deviceId, id) would
 * drop the new file's first alarms as repeats of the old one's.
 */
export function idOf(alert: Alert, at: number, bufferId: string): string {
  const kind = alert.kind ?? 'anomaly';
  const reading = `${kind}:${bufferId}:${alert.seq}`;
  if (alert.sensor) return `${reading}:${alert.sensor.feature}`;
  return isSilenceKind(kind) ? `${reading}:${at}` : reading;
}

export interface AlertDeps {
  engine: InferenceEngine;
  /** The buffer's meta: the pending list is written in one transaction with the alarms and silent pumps it decided (saveState). */
  kv: AtomicKeyValueStore;
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
  /** Alerts other than silence alerts (anomalies, frozen sensors) kept while offline at most (the oldest are dropped first, and counted); default 1000. */
  maxPending?: number;
  /**
   * `pump-silent` and `pump-resumed` alerts kept while offline at most, besides (the oldest dropped
   * first, counted); default maxPending. Room for two per pump: every pump silent at once and back.
   */
  maxPendingSilence?: number;
  /** A pump heard and then silent this long is alerted `pump-silent`; 0 (default) = off. */
  silentAfterMs?: () => number;
  /** The pumps in the buffer with their newest rows (before `beforeSeq`), followed for silence from the start (default none); throws while it is closed. */
  buffered?: (beforeSeq?: number) => BufferedPump[];
}

export function topFeatures(contributions: Record<string, number> | null | undefined, n = 3): Alert['topFeatures'] {
  if (!contributions) return [];
  return Object.entries(contributions)
    // A sensor that added nothing is no "top" feature: with few sensors in play the list was padded with zeros.
    .filter(([, v]) => Number.isFinite(v) && v > 0)
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([feature, contribution]) => ({ feature, contribution }));
}

/**
 * The last alert sent of a pump, as kept in SQLite: `sensor` names a `sensor-frozen` alert's
 * sensor, `kind` a silence alert's kind or a clear's.
 */
interface SentRecord {
  at: number;
  seq?: number;
  /** The alert's reading time, and when edgeHub took it (for a person reading the buffer). */
  ts?: string;
  sentAt?: string;
  sensor?: string;
  kind?: SilenceKind | 'anomaly-cleared';
  /**
   * The gateway time of the pump's last anomaly alert, when the last alert sent was not an anomaly
   * (the rate limit is of anomalies: restore takes it from here, or from `at` of an anomaly alert).
   */
  anomalyAt?: number;
}

const anySilence = (alerts: Iterable<{ alert: Alert }>): boolean => {
  for (const p of alerts) if (isSilenceKind(p.alert.kind)) return true;
  return false;
};

/** The limit a pending alert counts against (AlertPublisher.trimPending). */
const categoryOf = (p: { alert: Alert }): 'silence' | 'other' => (isSilenceKind(p.alert.kind) ? 'silence' : 'other');

/**
 * The pending alerts of a category in the order a full list drops them: silence alerts oldest
 * first; the others by dropped-raises.ts dropRank (repeats first, clears last), oldest first
 * within a rank.
 */
function dropOrder(pending: readonly Pending[], category: 'silence' | 'other'): Pending[] {
  const own = pending.map((p, i) => ({ p, i, rank: category === 'other' ? dropRank(p.alert) : 0 })).filter(({ p }) => categoryOf(p) === category);
  return own.sort((a, b) => a.rank - b.rank || a.i - b.i).map(({ p }) => p);
}

/** The time of the pump's last anomaly alert a sent record gives (the rate limit's). */
const anomalyAtOf = (s: SentRecord): number | undefined => (s.sensor === undefined && s.kind === undefined ? s.at : s.anomalyAt);

/**
 * What tells apart the alerts of one reading (its seq): a frozen sensor's feature; a silence alert's
 * kind and decision time (a pump silent again with no reading in between has the same seq); null
 * for the anomaly (a reading is anomalous or normal: no clear shares its seq).
 */
const identityOf = (alert: Alert, at: number): string | null =>
  alert.sensor ? `sensor:${alert.sensor.feature}` : isSilenceKind(alert.kind) ? `${alert.kind}@${at}` : alert.kind === 'anomaly-cleared' ? alert.kind : null;
const sentIdentityOf = (s: SentRecord): string | null =>
  s.sensor !== undefined ? `sensor:${s.sensor}` : s.kind === 'anomaly-cleared' ? s.kind : s.kind !== undefined ? `${s.kind}@${s.at}` : null;

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
    if (p.alert.seq < s.seq || identityOf(p.alert, p.at) === sentIdentityOf(s)) cut.set(p.alert.pumpId, i);
  });
  return pending.filter((p, i) => i > (cut.get(p.alert.pumpId) ?? -1));
}

/** An alert not yet handed to edgeHub, with the gateway time it was decided. */
interface Pending {
  alert: Alert;
  at: number;
}

export class AlertPublisher {
  /** Alerts not yet handed to edgeHub, oldest first. */
  private pending: Pending[] = [];
  /** The alert on its way to edgeHub now, if any (trimPending may drop it from `pending` meanwhile). */
  private inFlight: Pending | null = null;
  /** Monotonic time of each pump's last alert. */
  private readonly lastAt = new Map<string, number>();
  /** Each pump's open anomaly alarm, with the anomalies its rate limit held back (suppressedSinceLast). */
  private readonly alarms: OpenAlarms;
  private sending: Promise<void> | null = null;
  readonly counts = { sent: 0, suppressed: 0, dropped: 0, failed: 0, sensorFaults: 0, silentAlerts: 0, resumedAlerts: 0 };
  private lastError: string | null = null;
  private readonly sensorQuiet: SensorQuiet;
  private readonly silence: PumpSilence;
  /**
   * What of the last run's state restore could not read yet (null before restore is called): a
   * buffer that cannot open at start-up opens later (agent/main.ts reopenBuffer), and what restore
   * could not read then is read at the first commit or flush after, before anything is saved over
   * it; nothing commits while the buffer is closed, so nothing of this run is decided meanwhile.
   */
  private owed: { alerts: boolean; sensors: boolean; silence: boolean } | null = null;
  /** Restores that found the buffer unreadable. */
  private failedRestores = 0;

  /** The buffer's id, read once (it is the file's for its life); null until a read found the buffer open. */
  private bufferId: string | null = null;

  constructor(private readonly deps: AlertDeps) {
    this.sensorQuiet = new SensorQuiet({ kv: deps.kv, bounded: (pumpId, feature) => deps.engine.boundsSensor(pumpId, feature), intervalMs: deps.sensorMinIntervalMs, clock: () => this.now(), monotonic: () => this.monotonic(), logger: deps.logger });
    this.alarms = new OpenAlarms({ kv: deps.kv, logger: deps.logger });
    this.silence = new PumpSilence({ kv: deps.kv, buffered: deps.buffered ?? (() => []), silentAfterMs: deps.silentAfterMs ?? (() => 0), clock: () => this.now(), monotonic: () => this.monotonic(), logger: deps.logger });
  }

  /** The alert with its id first, as the message carries it (idOf). */
  private withId(alert: Alert, at: number): Pending {
    if (this.bufferId === null) {
      try {
        this.bufferId = this.deps.kv.getMeta(BUFFER_ID_KEY);
      } catch {
        // the buffer is closed (a silence alert decided while it fails): the id says so, not a wrong file
      }
    }
    return { alert: { id: idOf(alert, at, this.bufferId ?? 'no-buffer'), ...alert, detectedAt: new Date(at).toISOString() }, at };
  }

  /**
   * Loads alerts left unsent by the previous run, the time of each pump's last alert, each
   * sensor's (sensor-quiet.ts), and the pumps followed for silence (pump-silence.ts). What the
   * buffer could not give (not open yet) is loaded at the next commit or flush that finds it open:
   * until then nothing is saved over it. `beforeSeq`: the first seq of the commit the restore runs
   * in, whose rows are this run's, not the last run's.
   */
  restore(beforeSeq?: number): void {
    const retry = this.failedRestores > 0;
    const owed = (this.owed ??= { alerts: true, sensors: true, silence: true });
    if (owed.sensors) owed.sensors = !this.sensorQuiet.restore();
    if (owed.silence) owed.silence = !this.silence.restore(beforeSeq);
    // After the silence: the unsent silence alerts restored say which pumps were alerted.
    if (owed.alerts && !owed.silence) owed.alerts = !this.restoreAlerts();
    if (owed.sensors || owed.alerts || owed.silence) {
      // Said once, not at each retry (every flush, each 30 s).
      if (this.failedRestores++ === 0) this.deps.logger.warn('unsent alerts, quiet times of sensor alerts and silent pumps of the last run not restored yet: the buffer could not be read; they are once it opens');
    } else if (retry) this.deps.logger.info({ attempts: this.failedRestores + 1 }, 'unsent alerts, quiet times of sensor alerts and silent pumps of the last run restored: the buffer opened');
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
      const saved = text ? (JSON.parse(text) as Pending[]) : [];
      // The whole list, sent or not: its raises and clears are decisions the alarms may not have saved yet.
      if (!this.alarms.restore(saved.map((p) => p.alert))) return false;
      // Those an older agent left have no id: given theirs now.
      const unsent = unsentOf(saved, sent).map((p) => (p.alert.id === undefined ? this.withId(p.alert, p.at) : p));
      this.pending = [...unsent, ...this.pending];
      // A silence alert pending whose state a kill kept from being saved (an older agent's second write, see PumpSilence.save):
      // saved now, or a restart after this alert was sent would alert the same silence again.
      let silenceChanged = false;
      for (const p of unsent) if (isSilenceKind(p.alert.kind)) silenceChanged = this.silence.alertedBefore(p.alert.pumpId, p.alert.kind, p.at) || silenceChanged;
      if (silenceChanged) this.silence.save();
      // The rate limit is of anomalies: a sensor-frozen or silence alert, sent or pending, does not start it.
      const lastAt = new Map<string, number>();
      for (const [pumpId, s] of Object.entries(sent)) {
        const at = anomalyAtOf(s);
        if (at !== undefined) lastAt.set(pumpId, at);
      }
      for (const p of this.pending) if ((p.alert.kind ?? 'anomaly') === 'anomaly') lastAt.set(p.alert.pumpId, Math.max(p.at, lastAt.get(p.alert.pumpId) ?? 0));
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
    // A buffer that opened late: the last run's state, without this commit's rows (heard just below).
    const restoredNow = this.restoreIfNot(seqs[0]);
    const now = this.now();
    const mono = this.monotonic();
    // Pumps alerted silent that are heard again: pump-resumed, ahead of the alerts of their readings.
    const resumed = this.silence.heard(rows, seqs);
    const resumedEntries = resumed.map((e) => this.withId(this.silenceAlertOf('pump-resumed', e), now));
    this.pending.push(...resumedEntries);
    let added = resumed.length;
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
        this.pending.push(this.withId(this.frozenAlertOf(row, seqs[i]!, sensor, this.sensorQuiet.alerted(row.pumpId, sensor.feature)), now));
        added++;
      }
      // The rate limit's interval since the pump's last alert: it holds back an open alarm's repeats,
      // and its clear (a pump flickering with runs of normal readings then makes at most one raise
      // and one clear per interval, not a pair per run).
      const last = this.lastAt.get(row.pumpId);
      const intervalOver = last === undefined || mono - last >= this.deps.minIntervalMs();
      if (row.anomaly === false) {
        const cleared = this.alarms.normal(row.pumpId, intervalOver);
        if (cleared?.unannounced) this.unannouncedClear(row.pumpId, cleared.episode);
        else if (cleared) {
          this.pending.push(this.withId(this.clearedAlertOf(row, seqs[i]!, cleared), now));
          added++;
        }
      }
      if (row.anomaly !== true || row.score === null) continue;
      // An open alarm's repeats are rate-limited; a pump with none raises one at once (its clear
      // was the off-delay: a new episode is news, not a repeat).
      const open = this.alarms.get(row.pumpId);
      // An alarm whose raise was dropped unsent (dropped-raises.ts) is raised by its next alert, at once.
      const held = open !== undefined && !intervalOver && open.unannounced === undefined;
      if (open) this.alarms.anomalous(open, held);
      if (held) {
        this.counts.suppressed++;
        continue;
      }
      this.lastAt.set(row.pumpId, mono);
      const ts = new Date(row.ts).toISOString();
      const alarm = open === undefined ? this.alarms.raise(row.pumpId, seqs[i]!, ts) : open.unannounced ? this.alarms.announce(open, seqs[i]!, ts) : open;
      this.pending.push(this.withId(this.alertOf(row, seqs[i]!, alarm), now));
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
      this.alarms.save(); // the off-delays counted, the anomalies held back
      if (restoredNow && this.pending.length > 0) this.flush(); // the last run's, restored just now
      return;
    }
    const dropped = this.trimPending();
    const decided = resumed.filter((_, i) => !dropped.has(resumedEntries[i]!));
    this.saveState(decided.length > 0 || anySilence(dropped));
    this.silenceDecided('pump-resumed', decided);
    this.flush();
  }

  /** Refusal listener: a refused reading is a reading; a pump alerted silent is heard again (pump-resumed). */
  onRefuse(refused: ReadonlyArray<{ pumpId: string; receivedAt: number }>): void {
    this.queueSilence('pump-resumed', this.silence.notStored(refused), this.now());
  }

  /**
   * Listener of readings the buffer could not store (a full disk): they reached the agent, so their
   * pump is not silent; one alerted silent is heard again (pump-resumed).
   */
  onUnstored(unstored: readonly UnstoredArrival[]): void {
    this.queueSilence('pump-resumed', this.silence.notStored(unstored), this.now());
  }

  /**
   * The timer's check: pumps not heard for 7 days are no longer followed; pumps silent for
   * `silentAfterMs`, not alerted yet, are alerted `pump-silent`.
   */
  checkSilence(): void {
    this.silence.forgetDecommissioned();
    const now = this.now();
    this.queueSilence('pump-silent', this.silence.due(now), now);
  }

  private queueSilence(kind: SilenceKind, events: readonly SilenceEvent[], now: number): void {
    if (events.length === 0) return;
    const entries = events.map((e) => this.withId(this.silenceAlertOf(kind, e), now));
    this.pending.push(...entries);
    const dropped = this.trimPending();
    const decided = events.filter((_, i) => !dropped.has(entries[i]!));
    this.saveState(decided.length > 0 || anySilence(dropped));
    this.silenceDecided(kind, decided);
    this.flush();
  }

  /** Once their alerts are saved in the pending list, with the silent pumps (saveState): counted and logged. */
  private silenceDecided(kind: SilenceKind, events: readonly SilenceEvent[]): void {
    for (const e of events) {
      const fields = { pumpId: e.pumpId, since: new Date(e.since).toISOString(), silentSeconds: Math.round(e.silentMs / 1000), beganBeforeRestart: e.beganBeforeRestart };
      if (kind === 'pump-silent') {
        this.counts.silentAlerts++;
        this.deps.logger.warn(fields, `pump ${e.pumpId} silent: no reading for ${fields.silentSeconds} s${e.beganBeforeRestart ? ' since the agent started (and before it)' : ''}; alert pump-silent`);
      } else {
        this.counts.resumedAlerts++;
        this.deps.logger.info({ ...fields, missedReadings: e.missedReadings }, `pump ${e.pumpId} sends again after ${fields.silentSeconds} s of silence${e.beganBeforeRestart ? ' (at least: it began before the agent started)' : ''}; alert pump-resumed`);
      }
    }
  }

  /**
   * Drops the oldest pending alerts over their limit (counted): anomalies and sensor alerts over
   * maxPending, silence alerts over maxPendingSilence, each kind apart (a long outage's anomalies
   * do not push out the silence of the pumps, nor make the list, saved at each alert, grow with the
   * pumps). Returns those dropped. A silence alert dropped leaves no pump alerted by it, a raise
   * dropped no episode without its raise (see discarded). The alert on its way is settled when
   * edgeHub answers (drain).
   */
  private trimPending(): Set<Pending> {
    const limit = { other: this.deps.maxPending ?? 1000, silence: this.maxPendingSilence() };
    if (this.pending.length <= Math.min(limit.other, limit.silence)) return new Set();
    const over = { other: -limit.other, silence: -limit.silence };
    for (const p of this.pending) over[categoryOf(p)]++;
    if (over.other <= 0 && over.silence <= 0) return new Set();
    const drop = new Set([...dropOrder(this.pending, 'silence').slice(0, Math.max(0, over.silence)), ...dropOrder(this.pending, 'other').slice(0, Math.max(0, over.other))]);
    const dropped = this.pending.filter((p) => drop.has(p));
    this.pending = this.pending.filter((p) => !drop.has(p));
    this.counts.dropped += dropped.length;
    return this.discarded(dropped.filter((p) => p !== this.inFlight), dropped);
  }

  private maxPendingSilence(): number {
    return this.deps.maxPendingSilence ?? this.deps.maxPending ?? 1000;
  }

  /** discarded() of alerts a drain took off the list unsent; true when a silence alert was among them (the list and the silent pumps to save). */
  private discardedSilence(gone: readonly Pending[]): boolean {
    this.discarded(gone);
    return anySilence(gone);
  }

  /**
   * Pending alerts taken off the list unsent (`gone`, oldest first): a `pump-silent` among them
   * leaves its pump not alerted (decided again at the next check: PumpSilence.dropped), and the
   * `pump-resumed` of the same silence, still pending after it, is dropped too (counted): a
   * `pump-resumed` with no `pump-silent` before it would tell of a silence the cloud never heard of.
   * A raise among them hands its episode to the oldest alert of it left (droppedRaises), or the clear
   * left alone is dropped too, for the same reason. Returns every alert dropped (`all` and those).
   * Logged when silence alerts are among them; the caller saves the list with the silent pumps
   * (saveState).
   */
  private discarded(gone: readonly Pending[], all: readonly Pending[] = gone): Set<Pending> {
    const dropped = new Set(all);
    const silent = new Set<string>();
    let silenceAlerts = 0;
    for (const { alert, at } of gone) {
      if (!isSilenceKind(alert.kind)) continue;
      silenceAlerts++;
      if (alert.kind === 'pump-silent') {
        this.silence.dropped(alert.pumpId, at);
        silent.add(alert.pumpId);
      } else silent.delete(alert.pumpId);
    }
    if (silent.size > 0) {
      this.pending = this.pending.filter((p) => {
        if (!silent.has(p.alert.pumpId) || !isSilenceKind(p.alert.kind) || p === this.inFlight) return true;
        silent.delete(p.alert.pumpId); // its next silence alert: the resume of the one dropped, or a new silence
        if (p.alert.kind === 'pump-silent') return true;
        dropped.add(p);
        this.counts.dropped++;
        silenceAlerts++;
        return false;
      });
    }
    carryDroppedRepeats(gone, this.pending, this.alarms);
    for (const clear of this.droppedRaises(gone)) dropped.add(clear);
    if (silenceAlerts > 0) {
      const max = this.maxPendingSilence();
      this.deps.logger.warn({ dropped: silenceAlerts, maxPendingSilence: max }, `pump-silent and pump-resumed alerts not yet handed to edgeHub over ${max}: ${silenceAlerts} dropped (the oldest); a pump whose pump-silent was dropped is decided again at the next check`);
    }
    return dropped;
  }

  /**
   * Raises among alerts taken off the list unsent: the episode's oldest alert left raises it, or its
   * alarm is unannounced; a clear left alone is dropped too (counted, logged). See dropped-raises.ts.
   * Returns the clears dropped.
   */
  private droppedRaises(gone: readonly Pending[]): Pending[] {
    const raises = gone.filter((p) => isRaise(p.alert)).length;
    if (raises === 0) return [];
    const clears = afterDroppedRaises(gone, this.pending, this.alarms);
    this.pending = this.pending.filter((p) => !clears.has(p));
    this.counts.dropped += clears.size;
    const max = this.deps.maxPending ?? 1000;
    this.deps.logger.warn({ raises, clears: clears.size, maxPending: max }, `anomaly alerts not yet handed to edgeHub over ${max}: ${raises} raising an alarm dropped; the oldest alert left of each episode raises it instead (or its next one), and ${clears.size} anomaly-cleared left with no raise dropped too`);
    return [...clears];
  }

  /** An unannounced alarm (dropped-raises.ts) back to normal: its clear would name an episode never raised, so it is not sent (counted dropped, logged). */
  private unannouncedClear(pumpId: string, episode: number): void {
    this.counts.dropped++;
    this.deps.logger.warn({ pumpId, episode }, `pump ${pumpId} back to normal; no anomaly-cleared sent: the alarm's raise was dropped from a full pending list, the control room never heard of it`);
  }

  /** Sends what is pending (after a reconnect, on a timer). */
  flush(): void {
    this.restoreIfNot();
    this.sending ??= this.drain().then(
      (failed) => {
        this.sending = null;
        // An alert decided after the drain's last send, before this callback ran, found a drain
        // running and did not start one: it waited for the next flush (30 s). Unless the drain
        // stopped on a failure, what is left is sent now.
        if (!failed && this.pending.length > 0) this.flush();
      },
      () => {
        this.sending = null;
      },
    );
  }

  /** Restores what the start-up restore could not read yet (see restore for `beforeSeq`); true when it is all restored now, at this call. */
  private restoreIfNot(beforeSeq?: number): boolean {
    const owing = (): boolean => this.owed !== null && (this.owed.alerts || this.owed.sensors || this.owed.silence);
    if (!owing()) return false;
    this.restore(beforeSeq);
    return !owing();
  }

  async idle(): Promise<void> {
    while (this.sending) await this.sending;
  }

  /**
   * `suppressed`: anomalies held back by the rate limit; `sensorFaults`: frozen sensors found;
   * `sensorSuppressed`: those findings held back by a sensor's quiet time (both since start);
   * `sensorsSuppressed`: per pump, its sensors with findings held back since their last alert;
   * `silentPumps`: the pumps silent now (pump-silence.ts), `pumpsSilent` how many;
   * `silentAlerts`, `resumedAlerts`: the pump-silent and pump-resumed alerts decided since start.
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
    silentPumps: Record<string, SilentPumpView>;
    pumpsSilent: number;
    silentAlerts: number;
    resumedAlerts: number;
  } {
    const silentPumps = this.silence.status();
    return {
      sent: this.counts.sent,
      suppressed: this.counts.suppressed,
      pending: this.pending.length,
      dropped: this.counts.dropped,
      lastError: this.lastError,
      sensorFaults: this.counts.sensorFaults,
      sensorSuppressed: this.sensorQuiet.suppressedTotal,
      sensorsSuppressed: this.sensorQuiet.status(),
      silentPumps,
      pumpsSilent: Object.keys(silentPumps).length,
      silentAlerts: this.counts.silentAlerts,
      resumedAlerts: this.counts.resumedAlerts,
    };
  }

  /** The pumps whose anomaly alarm is open now, as the control room holds them (open-alarms.ts); read only. */
  openAlarms(): Record<string, OpenAlarmView> {
    return this.alarms.view();
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
        this.pending.push(this.withId(this.frozenAlertOf(row, seqs[i]!, fault, this.sensorQuiet.alerted(row.pumpId, fault.feature)), now));
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

  private silenceAlertOf(kind: SilenceKind, e: SilenceEvent): Alert {
    const iso = (ms: number): string => new Date(ms).toISOString();
    return {
      schemaVersion: ALERTS_SCHEMA_VERSION,
      kind,
      deviceId: this.deps.deviceId,
      pumpId: e.pumpId,
      seq: e.reading.seq,
      ts: iso(e.reading.ts),
      score: null,
      threshold: null,
      modelVersion: null,
      topFeatures: [],
      suppressedSinceLast: 0,
      silence: {
        since: iso(e.since),
        lastReading: { seq: e.lastReading.seq, ts: iso(e.lastReading.ts), receivedAt: iso(e.lastReading.receivedAt) },
        silentSeconds: Math.round(e.silentMs / 1000),
        beganBeforeRestart: e.beganBeforeRestart,
        ...(e.intervalMs === null ? {} : { intervalSeconds: e.intervalMs / 1000 }),
        ...(kind === 'pump-resumed' && e.missedReadings !== null ? { missedReadings: e.missedReadings } : {}),
      },
    };
  }

  private alertOf(row: PredictionRow, seq: number, alarm: OpenAlarm): Alert {
    return {
      ...this.alertHead('anomaly', row, seq),
      topFeatures: topFeatures(row.contributions),
      suppressedSinceLast: this.alarms.takeSuppressed(alarm),
      episode: alarm.episode,
    };
  }

  /** The return to normal of `alarm` at its off-delay's last normal reading; the episode's count held back ends with it. */
  private clearedAlertOf(row: PredictionRow, seq: number, alarm: OpenAlarm): Alert {
    return {
      ...this.alertHead('anomaly-cleared', row, seq),
      topFeatures: [],
      suppressedSinceLast: alarm.suppressed,
      episode: alarm.episode,
      raisedAt: alarm.raisedAt,
    };
  }

  /** The fields every alert of a reading carries, in the message's order: the reading, its score and the model that gave it. */
  private alertHead(kind: AlertKind, row: PredictionRow, seq: number): Pick<Alert, 'schemaVersion' | 'kind' | 'deviceId' | 'pumpId' | 'seq' | 'ts' | 'score' | 'threshold' | 'modelVersion'> {
    const model = this.deps.engine.modelFor(row.pumpId);
    return {
      schemaVersion: ALERTS_SCHEMA_VERSION,
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
   * recorded as sent. True when it stopped on a failure (the rest waits for the next reconnect).
   */
  private async drain(): Promise<boolean> {
    let sent = 0;
    let silenceChanged = false;
    // An alert dropped unsent here may be a raise whose episode another pending alert now raises (dropped-raises.ts): the list to save.
    let dropped = false;
    try {
      while (this.pending.length > 0) {
        const head = this.pending[0]!;
        const { alert, at } = head;
        this.inFlight = head;
        try {
          await this.deps.send(alert);
        } catch (err) {
          this.counts.failed++;
          this.lastError = safeErrorMessage(err);
          // Trimmed while on its way (counted dropped then): it is dropped now, unsent.
          if (!this.pending.includes(head)) {
            dropped = true;
            silenceChanged = this.discardedSilence([head]) || silenceChanged;
          }
          return true; // kept; sent after the next reconnect
        } finally {
          this.inFlight = null;
        }
        // Not always `alert`: an onCommit over maxPending while it was on its way trims the head,
        // `alert` first (counted dropped). It went all the same, so the next of its kind in the drop
        // order is dropped in its place: the alerts that reach edgeHub and the counts (one sent, one
        // dropped) are those of a trim that had dropped that one, and none is lost uncounted
        // (edge-alerts.test.ts). Looked up only then, not for every alert sent.
        const own = this.pending.indexOf(head);
        const i = own >= 0 ? own : this.pending.indexOf(dropOrder(this.pending, categoryOf(head))[0]!);
        if (i === -1) this.counts.dropped--; // none of its kind left to drop in its place: it was sent, not dropped
        else {
          const [gone] = this.pending.splice(i, 1);
          if (gone !== head) silenceChanged = this.discardedSilence([gone!]) || silenceChanged;
        }
        sent++;
        this.counts.sent++;
        this.lastError = null;
        this.markSent(alert, at);
      }
      return false;
    } finally {
      if (sent > 0 || dropped) this.saveState(silenceChanged);
    }
  }

  private markSent(alert: Alert, at: number): void {
    try {
      const sent = JSON.parse(this.deps.kv.getMeta(SENT_KEY) ?? '{}') as Record<string, SentRecord | undefined>;
      const previous = sent[alert.pumpId];
      // A sensor's or a silence alert keeps the time of the pump's last anomaly alert, which restore needs.
      const anomalyAt = previous === undefined ? undefined : anomalyAtOf(previous);
      const kept = anomalyAt === undefined ? {} : { anomalyAt };
      // A silence alert is about no reading of its own, a clear about a normal one: the alerted_at of a row is an anomaly's or a sensor's.
      const ofNoAlertedRow = isSilenceKind(alert.kind) || alert.kind === 'anomaly-cleared';
      const record: SentRecord = {
        seq: alert.seq,
        ts: alert.ts,
        at,
        sentAt: new Date(this.now()).toISOString(),
        ...(alert.sensor ? { sensor: alert.sensor.feature, ...kept } : isSilenceKind(alert.kind) || alert.kind === 'anomaly-cleared' ? { kind: alert.kind, ...kept } : {}),
      };
      sent[alert.pumpId] = record;
      this.deps.kv.setMeta(SENT_KEY, JSON.stringify(sent));
      if (!ofNoAlertedRow) this.deps.markAlerted?.(alert.seq, this.now());
    } catch (err) {
      this.deps.logger.warn({ err: { message: safeErrorMessage(err) } }, 'alert sent but not recorded in the buffer');
    }
  }

  /**
   * Saves the pending list with what its alerts decided, in one transaction: the open alarms when
   * they changed (a raise, a clear, a count), and the silent pumps when `silence` (a silence alert
   * decided or dropped). Two writes left a window where a kill (or a failed second write) kept the
   * list without the alarms it raised or cleared; now both land or neither does. One commit, too,
   * where there were two (the same fsyncs halved).
   */
  private saveState(silence: boolean): void {
    const alarms = this.alarms.entry();
    const entries: Array<[string, string]> = [[PENDING_KEY, JSON.stringify(this.pending)]];
    if (alarms) entries.push(alarms);
    if (silence) entries.push(this.silence.entry());
    try {
      this.deps.kv.setMetas(entries);
      this.alarms.persisted();
    } catch (err) {
      this.deps.logger.warn({ err: { message: safeErrorMessage(err) } }, `pending alerts not persisted (nor ${silence ? 'the open anomaly alarms and silent pumps' : 'the open anomaly alarms'} decided with them)`);
    }
  }

  private now(): number {
    return (this.deps.clock ?? Date.now)();
  }

  private monotonic(): number {
    return (this.deps.monotonic ?? monotonicNow)();
  }
}
