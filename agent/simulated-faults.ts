/**
 * What the simulated pumps were given: each fault's onset and end, logged at info level
 * (`event: simulated-fault-onset` / `simulated-fault-end`), and per pump the fault under way and the
 * last ones ended, for /status. Without it, an operator of the demo could not tell a quiet page
 * that is right (nothing injected) from a model that missed a fault.
 */
import type { FaultKind, FaultNow } from './simulator.js';

/** Ended faults kept per pump for /status. */
export const ENDED_FAULTS_KEPT = 5;

export interface SimulatedFaultView {
  kind: FaultKind;
  since: string;
  plannedEnd: string;
  peak: number;
  severity: number;
}

export interface EndedFaultView {
  kind: FaultKind;
  since: string;
  /** The first reading the fault no longer showed on (its planned end, to a reading's period). */
  ended: string;
  peak: number;
}

export interface SimulatedPumpFaults {
  current: SimulatedFaultView[];
  /** Newest first, at most ENDED_FAULTS_KEPT. */
  recentEnded: EndedFaultView[];
}

type InfoLog = (fields: object, msg: string) => void;

const iso = (ts: number): string => new Date(ts).toISOString();
const round = (v: number): number => Math.round(v * 1000) / 1000;
const keyOf = (f: FaultNow): string => `${f.kind}@${f.startTs}`;

export class SimulatedFaultWatch {
  /** Per pump, the faults under way at its last reading, by kind and onset. */
  private readonly open = new Map<string, Map<string, FaultNow>>();
  private readonly ended = new Map<string, EndedFaultView[]>();

  constructor(private readonly info: InfoLog = () => undefined) {}

  /** A pump's reading at `ts` had these faults under way: logs those that began or ended since its last one. */
  observe(pumpId: string, ts: number, underWay: readonly FaultNow[]): void {
    const before = this.open.get(pumpId) ?? new Map<string, FaultNow>();
    const now = new Map(underWay.map((f) => [keyOf(f), f]));
    for (const [key, f] of before) if (!now.has(key)) this.end(pumpId, f, ts, 'ended');
    for (const [key, f] of now) {
      if (before.has(key)) continue;
      const fields = { event: 'simulated-fault-onset', pumpId, kind: f.kind, peak: round(f.peak), since: iso(f.startTs), plannedEnd: iso(f.endTs) };
      this.info(fields, `simulated ${f.kind} began on ${pumpId} (peak severity ${round(f.peak)}, planned end ${iso(f.endTs)})`);
    }
    this.open.set(pumpId, now);
  }

  /** The pumps' series ended at `ts` (the clock stepped back and they start anew): their faults end with them. */
  endAll(ts: number): void {
    for (const [pumpId, faults] of this.open) for (const f of faults.values()) this.end(pumpId, f, ts, 'series restarted');
    this.open.clear();
  }

  view(): Record<string, SimulatedPumpFaults> {
    const out: Record<string, SimulatedPumpFaults> = {};
    for (const pumpId of new Set([...this.open.keys(), ...this.ended.keys()])) {
      const current = [...(this.open.get(pumpId)?.values() ?? [])].map((f) => ({
        kind: f.kind,
        since: iso(f.startTs),
        plannedEnd: iso(f.endTs),
        peak: round(f.peak),
        severity: round(f.severity),
      }));
      out[pumpId] = { current, recentEnded: [...(this.ended.get(pumpId) ?? [])] };
    }
    return out;
  }

  private end(pumpId: string, f: FaultNow, ts: number, why: string): void {
    const view = { kind: f.kind, since: iso(f.startTs), ended: iso(ts), peak: round(f.peak) };
    const list = [view, ...(this.ended.get(pumpId) ?? [])].slice(0, ENDED_FAULTS_KEPT);
    this.ended.set(pumpId, list);
    const fields = { event: 'simulated-fault-end', pumpId, ...view, plannedEnd: iso(f.endTs), reason: why };
    this.info(fields, `simulated ${f.kind} on ${pumpId} ${why} (began ${view.since})`);
  }
}
