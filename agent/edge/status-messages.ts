/**
 * What the agent is NOT doing, on output `alerts` beside the alerts (alerts.ts): a control room
 * watching that output must never read "not scoring" as "normal". Three kinds:
 * - `agent-health`: the agent's health as /healthz computes it (ok / degraded / failing, with the
 *   checks at fault), sent when it changes, and once after each (re)connection to the hub, so the
 *   consumer always holds the current state;
 * - `pump-not-scored`: a pump that keeps sending has had none of its readings scored for
 *   `notScoredAfterMs` (warm-up after a start, a missing sensor, refused readings, no model, a
 *   buffer that stores nothing), with the reason;
 * - `pump-scored`: a reading of a pump alerted `pump-not-scored` was scored again.
 *
 * These messages are kept in memory only, one per pump and one for the health (the newest state
 * wins: a `pump-scored` that replaces an unsent `pump-not-scored` carries its episode). Not in
 * SQLite, on purpose: a failing buffer is one of the things they report, and the pending list of
 * alerts.ts lives in it. A restart loses those unsent, and says the rest again: the agent-health
 * sent at the connection lists the pumps not scored then.
 */
import { randomUUID } from 'node:crypto';
import type { PredictionRow } from '../../buffer/types.js';
import { leftOutOfHistory } from '../../inference/engine.js';
import { isStoppedReason } from '../../inference/stopped.js';
import { monotonicNow } from '../../sync/clock.js';
import { safeErrorMessage } from '../../sync/redact.js';
import type { RefusedReading } from '../ingest/pipeline.js';
import type { Logger } from '../logger.js';
import { ALERTS_SCHEMA_VERSION } from './message-schema.js';
import type { UnstoredArrival } from './pump-silence.js';

export type HealthState = 'ok' | 'degraded' | 'failing';
export type StatusKind = 'agent-health' | 'pump-not-scored' | 'pump-scored' | 'agent-heartbeat';

/** What /healthz computes (Status.health()). */
export interface HealthView {
  checks: Record<string, string>;
  failing: string[];
  degraded: string[];
}

interface Head {
  /** The output's contract version (message-schema.ts), the alerts' own. */
  schemaVersion: number;
  kind: StatusKind;
  /** Unique per message: a consumer drops a message it already holds (edgeHub delivers at least once). */
  id: string;
  deviceId: string;
  ts: string;
}

export interface AgentHealthMessage extends Head {
  kind: 'agent-health';
  status: HealthState;
  /** The checks at fault, failing first, with /healthz's text of each (public there, no secret in it). */
  problems: Array<{ check: string; state: 'failing' | 'degraded'; detail: string }>;
  /** Why it was sent: its health changed, or the agent (re)connected to the hub. */
  reason: 'changed' | 'connected';
  /** The pumps alerted `pump-not-scored` and not scored since, now. */
  notScoredPumps: string[];
  agentStartedAt: string;
}

export interface PumpScoringMessage extends Head {
  kind: 'pump-not-scored' | 'pump-scored';
  pumpId: string;
  /** When its readings stopped being scored (gateway clock: the first unscored one after its last scored one). */
  notScoredSince: string;
  /** Why, as the pump's last unscored reading said (its `unscoredReason`), or its refusal, or the buffer's failure. */
  reason: string;
  /** `pump-scored` only: how long none of its readings was scored. */
  notScoredSeconds?: number;
}

/** Every `heartbeatMs` (off by default): the agent is there, its health, its pumps by state. */
export interface HeartbeatMessage extends Head {
  kind: 'agent-heartbeat';
  status: HealthState;
  problems: AgentHealthMessage['problems'];
  /** Pumps per /pumps state (only the states some pump is in); null when the board cannot be read (a failing buffer). */
  pumps: Record<string, number> | null;
  notScoredPumps: string[];
  agentStartedAt: string;
  intervalSeconds: number;
}

export type StatusMessage = AgentHealthMessage | PumpScoringMessage | HeartbeatMessage;

export interface StatusMessageDeps {
  deviceId: string;
  health: () => HealthView;
  /** Hands one message to edgeHub (output `alerts`); rejects when offline. */
  send: (message: StatusMessage) => Promise<void>;
  /** 0 = pump-not-scored off. */
  notScoredAfterMs: () => number;
  logger: Logger;
  clock?: () => number;
  monotonic?: () => number;
  /** agent-heartbeat every this many ms; 0 = off. */
  heartbeatMs?: () => number;
  /** Pumps per /pumps state, for the heartbeat. */
  pumpStates?: () => Record<string, number> | null;
  /** Pumps followed at most (PUMPWATCH_MAX_PUMPS): what is kept is bounded. */
  maxPumps: number;
}

interface Track {
  heardAt: number;
  /** Monotonic and gateway time of the first unscored reading since the last scored one (or stop); null while scored. */
  unscored: { at: number; wall: number } | null;
  reason: string;
  /** Set once alerted pump-not-scored (until a reading is scored). */
  alerted: { wall: number; at: number; reason: string } | null;
}

export class StatusMessages {
  private readonly tracks = new Map<string, Track>();
  /** Unsent, in the order decided; key `health` or a pump id: a newer message of the same key replaces it. */
  private readonly pending = new Map<string, StatusMessage>();
  private lastHealth: string | null = null;
  /** Monotonic time of the last heartbeat decided (the first comes one interval after the start). */
  private lastBeat: number | null = null;
  private sending: Promise<void> | null = null;
  private readonly startedAt: number;
  readonly counts = { sent: 0, failed: 0, replaced: 0, notScored: 0, scored: 0, untracked: 0 };

  constructor(private readonly deps: StatusMessageDeps) {
    this.startedAt = this.now();
  }

  onCommit(rows: readonly PredictionRow[]): void {
    const at = this.monotonic();
    for (const row of rows) {
      const t = this.track(row.pumpId, at);
      if (!t) continue;
      if (row.score !== null) this.scored(row.pumpId, t, at);
      // A stopped pump has no process to watch: its readings are not a failure to score, and its
      // warm-up after the start counts from its end.
      else if (isStoppedReason(row.unscoredReason)) t.unscored = null;
      // A late reading or a resend says nothing of the pump's scoring now.
      else if (!leftOutOfHistory(row.unscoredReason)) this.unscored(t, at, row.unscoredReason ?? 'not scored');
    }
  }

  onRefuse(refused: readonly RefusedReading[]): void {
    const at = this.monotonic();
    for (const r of refused) {
      // A pump over PUMPWATCH_MAX_PUMPS is not followed (bounded); its refusal says so on /pumps.
      if (r.overLimit) continue;
      const t = this.track(r.pumpId, at);
      if (t) this.unscored(t, at, `readings refused: ${r.reason}`);
    }
  }

  onUnstored(unstored: readonly UnstoredArrival[]): void {
    const at = this.monotonic();
    for (const u of unstored) {
      const t = this.track(u.pumpId, at);
      if (t) this.unscored(t, at, 'buffer failing: readings arrive but cannot be stored, nor scored (GET /healthz says why)');
    }
  }

  /** On a timer: the health changed, pumps not scored for the setting, a heartbeat due. */
  check(): void {
    this.checkHealth('changed');
    this.checkHeartbeat();
    const after = this.deps.notScoredAfterMs();
    if (after > 0) {
      const at = this.monotonic();
      for (const [pumpId, t] of this.tracks) {
        // A pump that stopped sending is pump-silent's (alerts.ts), not this one's.
        if (t.alerted || !t.unscored || at - t.unscored.at < after || at - t.heardAt >= after) continue;
        t.alerted = { wall: t.unscored.wall, at: t.unscored.at, reason: t.reason };
        this.counts.notScored++;
        this.deps.logger.warn({ pumpId, reason: t.reason }, `pump ${pumpId}: no reading scored for ${Math.round((at - t.unscored.at) / 1000)} s (${t.reason}); pump-not-scored`);
        this.queue(pumpId, { ...this.head('pump-not-scored'), pumpId, notScoredSince: iso(t.unscored.wall), reason: t.reason });
      }
    }
    this.flush();
  }

  /** After each (re)connection to the hub: the current health again, whatever was sent before. */
  connected(): void {
    this.checkHealth('connected');
    this.flush();
  }

  flush(): void {
    this.sending ??= this.drain().finally(() => {
      this.sending = null;
    });
  }

  async idle(): Promise<void> {
    while (this.sending) await this.sending;
  }

  status(): { pending: number; sent: number; failed: number; replaced: number; notScoredPumps: string[] } {
    return { pending: this.pending.size, sent: this.counts.sent, failed: this.counts.failed, replaced: this.counts.replaced, notScoredPumps: this.notScoredPumps() };
  }

  private checkHealth(reason: 'changed' | 'connected'): void {
    const { status, problems, key } = this.healthNow();
    if (reason === 'changed' && key === this.lastHealth) return;
    if (key !== this.lastHealth) this.deps.logger.info({ status, problems: problems.map((p) => p.check) }, `agent health ${status}; agent-health`);
    this.lastHealth = key;
    this.queue('health', { ...this.head('agent-health'), status, problems, reason, notScoredPumps: this.notScoredPumps(), agentStartedAt: iso(this.startedAt) });
  }

  private checkHeartbeat(): void {
    const every = this.deps.heartbeatMs?.() ?? 0;
    const at = this.monotonic();
    if (every <= 0) {
      this.lastBeat = null;
      return;
    }
    this.lastBeat ??= at;
    if (at - this.lastBeat < every) return;
    this.lastBeat = at;
    const { status, problems } = this.healthNow();
    let pumps: Record<string, number> | null = null;
    try {
      pumps = this.deps.pumpStates?.() ?? null;
    } catch {
      pumps = null; // the board reads the buffer: said by the health
    }
    this.queue('heartbeat', { ...this.head('agent-heartbeat'), status, problems, pumps, notScoredPumps: this.notScoredPumps(), agentStartedAt: iso(this.startedAt), intervalSeconds: every / 1000 });
  }

  /** What /healthz computes now; `key` on the checks at fault, not their texts: those hold counts and times that change every minute. */
  private healthNow(): { status: HealthState; problems: AgentHealthMessage['problems']; key: string } {
    let h: HealthView;
    try {
      h = this.deps.health();
    } catch (err) {
      h = { checks: { health: safeErrorMessage(err) }, failing: ['health'], degraded: [] };
    }
    const status: HealthState = h.failing.length > 0 ? 'failing' : h.degraded.length > 0 ? 'degraded' : 'ok';
    const problems = [
      ...h.failing.map((check) => ({ check, state: 'failing' as const, detail: h.checks[check] ?? '' })),
      ...h.degraded.map((check) => ({ check, state: 'degraded' as const, detail: h.checks[check] ?? '' })),
    ];
    return { status, problems, key: JSON.stringify([status, [...h.failing].sort(), [...h.degraded].sort()]) };
  }

  private scored(pumpId: string, t: Track, at: number): void {
    const was = t.alerted;
    t.unscored = null;
    t.alerted = null;
    if (!was) return;
    this.counts.scored++;
    const notScoredSeconds = Math.round((at - was.at) / 1000);
    this.deps.logger.info({ pumpId, notScoredSeconds }, `pump ${pumpId} scored again after ${notScoredSeconds} s; pump-scored`);
    this.queue(pumpId, { ...this.head('pump-scored'), pumpId, notScoredSince: iso(was.wall), reason: was.reason, notScoredSeconds });
    this.flush();
  }

  private unscored(t: Track, at: number, reason: string): void {
    t.unscored ??= { at, wall: this.now() };
    t.reason = reason;
  }

  private track(pumpId: string, at: number): Track | null {
    let t = this.tracks.get(pumpId);
    if (!t) {
      if (this.tracks.size >= this.deps.maxPumps) {
        this.counts.untracked++;
        return null;
      }
      this.tracks.set(pumpId, (t = { heardAt: at, unscored: null, reason: '', alerted: null }));
    }
    t.heardAt = at;
    return t;
  }

  private notScoredPumps(): string[] {
    return [...this.tracks].filter(([, t]) => t.alerted).map(([id]) => id).sort();
  }

  private queue(key: string, message: StatusMessage): void {
    if (this.pending.delete(key)) this.counts.replaced++;
    this.pending.set(key, message);
  }

  private head<K extends StatusKind>(kind: K): Head & { kind: K } {
    return { schemaVersion: ALERTS_SCHEMA_VERSION, kind, id: randomUUID(), deviceId: this.deps.deviceId, ts: iso(this.now()) };
  }

  private async drain(): Promise<void> {
    for (;;) {
      const next = this.pending.entries().next();
      if (next.done) return;
      const [key, message] = next.value;
      try {
        await this.deps.send(message);
      } catch (err) {
        this.counts.failed++;
        this.deps.logger.debug({ err: { message: safeErrorMessage(err) } }, 'status message not sent; kept for the next connection');
        return;
      }
      this.counts.sent++;
      // Replaced while on its way: the newer one stays, to be sent next.
      if (this.pending.get(key) === message) this.pending.delete(key);
    }
  }

  private now(): number {
    return (this.deps.clock ?? Date.now)();
  }

  private monotonic(): number {
    return (this.deps.monotonic ?? monotonicNow)();
  }
}

const iso = (ms: number): string => new Date(ms).toISOString();
