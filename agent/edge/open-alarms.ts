/**
 * The anomaly alarm of each pump (ISA-18.2's alarm with a return to normal): open from its raise,
 * the first `anomaly` alert of an episode, until CLEAR_AFTER_NORMALS normal scored readings in a row
 * clear it (the page's off-delay of its Anomaly state: one normal reading amid a fault does not
 * clear it), and no sooner than the alerts' rate-limit interval after its last alert. Unscored readings (a stopped pump, a missing sensor) neither count nor reset the run, so
 * a stopped pump stays in alarm, latched, as on the page. Kept in the buffer's meta (`alerts.open`)
 * with the anomalies held back by the rate limit since the episode's last alert: a restart neither
 * raises an open alarm again nor forgets its clear or its count.
 */
import type { KeyValueStore } from '../../inference/model-state.js';
import { safeErrorMessage } from '../../sync/redact.js';
import { CLEAR_AFTER_NORMALS } from '../http/pump-board.js';
import type { Logger } from '../logger.js';

const OPEN_KEY = 'alerts.open';

export interface OpenAlarm {
  /** The seq of the raise: the episode's first `anomaly` alert. */
  episode: number;
  /** The raise's reading time (ISO). */
  raisedAt: string;
  /** Normal scored readings in a row since the last anomalous one. */
  normalsInRow: number;
  /** Anomalies held back by the rate limit since the episode's last alert. */
  suppressed: number;
  /**
   * Its raise was dropped from a full pending list with no other alert of the episode left to take
   * its place (dropped-raises.ts): the control room never heard of it. Its next alert is sent as a
   * raise (announce), and a clear before that is not sent.
   */
  unannounced?: true;
}

/** An open alarm as /status shows it: the anomalies held back are the next alert's (suppressedSinceLast). */
export type OpenAlarmView = Pick<OpenAlarm, 'episode' | 'raisedAt' | 'normalsInRow'>;

/** What an alert in the pending list says of its pump's alarm (a raise, a clear, or nothing). */
export interface AlarmDecision {
  pumpId: string;
  kind?: string;
  seq: number;
  ts: string;
  episode?: number;
}

export class OpenAlarms {
  private readonly open = new Map<string, OpenAlarm>();
  private changed = false;

  constructor(private readonly deps: { kv: KeyValueStore; logger: Logger }) {}

  /**
   * Loads the open alarms of the last run, then applies the raises and clears of its saved pending
   * list (`decided`, oldest first). The publisher writes the list and the alarms in one transaction
   * (alerts.ts saveState), but agents before it wrote the list first, then the alarms: a process of
   * theirs killed between the two (or a write of the alarms that failed) left its last decisions
   * only in the list. False when the buffer could not be read.
   */
  restore(decided: readonly AlarmDecision[]): boolean {
    let text: string | null;
    try {
      text = this.deps.kv.getMeta(OPEN_KEY);
    } catch {
      return false;
    }
    try {
      for (const [pumpId, alarm] of Object.entries(JSON.parse(text ?? '{}') as Record<string, OpenAlarm>)) this.open.set(pumpId, alarm);
    } catch (err) {
      this.deps.logger.warn({ err: { message: safeErrorMessage(err) } }, 'open anomaly alarms of the last run could not be restored');
    }
    for (const d of decided) {
      const alarm = this.open.get(d.pumpId);
      if (d.kind === 'anomaly-cleared' && alarm?.episode === d.episode) this.close(d.pumpId);
      else if ((d.kind ?? 'anomaly') === 'anomaly' && d.episode === d.seq && (alarm === undefined || alarm.episode < d.seq)) this.raise(d.pumpId, d.seq, d.ts);
    }
    if (this.changed) this.save();
    return true;
  }

  get(pumpId: string): OpenAlarm | undefined {
    return this.open.get(pumpId);
  }

  /** Each pump's open alarm, copied: what the control room holds as raised and not cleared. */
  view(): Record<string, OpenAlarmView> {
    const view: Record<string, OpenAlarmView> = {};
    for (const [pumpId, { episode, raisedAt, normalsInRow }] of this.open) view[pumpId] = { episode, raisedAt, normalsInRow };
    return view;
  }

  raise(pumpId: string, seq: number, ts: string): OpenAlarm {
    const alarm: OpenAlarm = { episode: seq, raisedAt: ts, normalsInRow: 0, suppressed: 0 };
    this.open.set(pumpId, alarm);
    this.changed = true;
    return alarm;
  }

  /**
   * The episode's raise was dropped unsent and its alert `seq` (reading time `ts`) raises it in its
   * place: the episode is named after it (when the alarm is still the episode `from`).
   */
  reRaised(pumpId: string, from: number, seq: number, ts: string): void {
    const alarm = this.open.get(pumpId);
    if (alarm?.episode !== from) return;
    Object.assign(alarm, { episode: seq, raisedAt: ts });
    this.changed = true;
  }

  /** The episode's raise was dropped unsent with nothing of it left pending: see OpenAlarm.unannounced. True when the alarm is still open. */
  unannounce(pumpId: string, episode: number): boolean {
    const alarm = this.open.get(pumpId);
    if (alarm?.episode !== episode) return false;
    alarm.unannounced = true;
    this.changed = true;
    return true;
  }

  /** The next alert of an unannounced alarm: it raises the alarm, at `seq`. */
  announce(alarm: OpenAlarm, seq: number, ts: string): OpenAlarm {
    Object.assign(alarm, { episode: seq, raisedAt: ts });
    delete alarm.unannounced;
    this.changed = true;
    return alarm;
  }

  /** An anomalous reading of an open alarm: the off-delay starts again; `held` when the rate limit held its alert back. */
  anomalous(alarm: OpenAlarm, held: boolean): void {
    alarm.normalsInRow = 0;
    if (held) alarm.suppressed++;
    this.changed = true;
  }

  /** Anomalies of the open episode `episode` not alerted after all (a repeat dropped from a full pending list): its next alert carries them. */
  heldBack(pumpId: string, episode: number, n: number): void {
    const alarm = this.open.get(pumpId);
    if (alarm?.episode !== episode) return;
    alarm.suppressed += n;
    this.changed = true;
  }

  /** The episode's count of anomalies held back, taken by an alert that carries it. */
  takeSuppressed(alarm: OpenAlarm): number {
    const n = alarm.suppressed;
    alarm.suppressed = 0;
    this.changed = true;
    return n;
  }

  /**
   * A normal scored reading: the alarm it clears (taken off), if any. `intervalOver`: the rate
   * limit's interval has passed since the alarm's last alert; until then the run goes on counting
   * and the clear waits (bounding a chattering pump to a raise and a clear per interval).
   */
  normal(pumpId: string, intervalOver = true): OpenAlarm | null {
    const alarm = this.open.get(pumpId);
    if (!alarm) return null;
    this.changed = true;
    if (++alarm.normalsInRow < CLEAR_AFTER_NORMALS || !intervalOver) return null;
    this.close(pumpId);
    return alarm;
  }

  /** Saves the alarms when they changed since the last save. */
  save(): void {
    const entry = this.entry();
    if (entry === null) return;
    try {
      this.deps.kv.setMeta(...entry);
      this.persisted();
    } catch (err) {
      this.deps.logger.warn({ err: { message: safeErrorMessage(err) } }, 'open anomaly alarms not persisted');
    }
  }

  /** The meta entry that saves the alarms, when they changed since the last save (for a write with other keys: call persisted() once it is written). */
  entry(): [string, string] | null {
    return this.changed ? [OPEN_KEY, JSON.stringify(Object.fromEntries(this.open))] : null;
  }

  persisted(): void {
    this.changed = false;
  }

  private close(pumpId: string): void {
    this.open.delete(pumpId);
    this.changed = true;
  }
}
