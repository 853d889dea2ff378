/**
 * The simulator's fault schedule: planned faults (validated, sorted, non-overlapping) or random
 * ones drawn from a stream of their own (the schedule is the seed's alone), each kind's severity
 * over its course, and `FaultSchedule`, which tells which fault is active at a reading's timestamp
 * and logs fault onsets.
 */
import {
  FAULT_KINDS,
  SimulatorError,
  badOption,
  type FaultEvent,
  type FaultKind,
  type FaultPlan,
  type SimulatorOptions,
} from './options.js';
import type { Rng } from './rng.js';

interface ScheduledFault {
  kind: FaultKind;
  startTs: number;
  endTs: number;
  peak: number; // severity reached (0–1)
}

/** Durations of random faults (minutes): bearing wear develops slowly, a stuck valve is cleared fast. */
const RANDOM_DURATION_MIN: Record<FaultKind, readonly [number, number]> = {
  cavitation: [5, 20],
  'bearing-wear': [30, 120],
  leak: [10, 40],
  valve: [2, 10],
};
const MIN_FAULT_GAP_MS = 10 * 60_000;
/** A valve fault reaches its peak over this time (SKAB's valve1 flow drops ramp or step over 10–60 s). */
const VALVE_RAMP_MS = 30_000;
/** Smallest random valve fault, as a share of the largest: SKAB's smallest flow drop (1 %) of its largest (23 %). */
const VALVE_MIN_PEAK = 0.01 / 0.23;
const DEFAULT_FAULT_INTERVAL_MS = 3 * 3_600_000;

function plannedFaults(plans: FaultPlan[]): ScheduledFault[] {
  const faults = plans.map((plan, i) => {
    if (!FAULT_KINDS.includes(plan.kind)) throw badOption(`fault plan ${i}: unknown kind ${String(plan.kind)}`);
    if (!Number.isFinite(plan.startTs)) throw badOption(`fault plan ${i}: startTs must be epoch ms`);
    if (!(Number.isFinite(plan.durationMs) && plan.durationMs > 0)) throw badOption(`fault plan ${i}: durationMs must be > 0`);
    const peak = plan.peak ?? 1;
    if (!(Number.isFinite(peak) && peak > 0 && peak <= 1)) throw badOption(`fault plan ${i}: peak must be > 0 and ≤ 1, got ${String(plan.peak)}`);
    return { kind: plan.kind, startTs: plan.startTs, endTs: plan.startTs + plan.durationMs, peak };
  });
  faults.sort((a, b) => a.startTs - b.startTs);
  for (let i = 1; i < faults.length; i++) {
    const [prev, cur] = [faults[i - 1], faults[i]];
    if (prev && cur && cur.startTs < prev.endTs) {
      const at = new Date(cur.startTs).toISOString();
      const message = `fault plan: ${cur.kind} at ${at} starts before the ${prev.kind} before it ends`;
      throw new SimulatorError('PW_SIM_FAULT_OVERLAP', message);
    }
  }
  return faults;
}

/** How strong a fault is at `ts` (0–1): each kind has its own onset and growth. */
function severity(f: ScheduledFault, ts: number): number {
  const elapsed = ts - f.startTs;
  const duration = f.endTs - f.startTs;
  switch (f.kind) {
    case 'cavitation':
      return f.peak * Math.min(1, 0.2 + elapsed / 60_000);
    case 'bearing-wear':
      return f.peak * (0.1 + 0.9 * (elapsed / duration) ** 1.5);
    case 'leak':
      return f.peak * Math.min(1, 0.15 + elapsed / (0.3 * duration));
    case 'valve':
      return f.peak * Math.min(1, elapsed / VALVE_RAMP_MS);
  }
}

/** Which fault (if any) is active at a timestamp; logs onsets. Timestamps must not go back. */
export class FaultSchedule {
  readonly log: FaultEvent[] = [];
  private readonly queue: ScheduledFault[];
  private readonly meanIntervalMs: number | null;
  private readonly pumpId: string;
  private active: ScheduledFault | null = null;

  constructor(
    opts: SimulatorOptions,
    private readonly rng: Rng,
  ) {
    const faults = opts.faults ?? 'none';
    this.pumpId = opts.pumpId;
    this.meanIntervalMs = faults === 'random' ? (opts.meanFaultIntervalMs ?? DEFAULT_FAULT_INTERVAL_MS) : null;
    this.queue = Array.isArray(faults) ? plannedFaults(faults) : [];
    if (this.meanIntervalMs !== null) this.queue.push(this.draw(opts.startTs));
  }

  at(ts: number): { kind: FaultKind; severity: number } | null {
    if (this.active && ts >= this.active.endTs) {
      this.scheduleAfter(this.active.endTs);
      this.active = null;
    }
    for (let f = this.queue[0]; !this.active && f && ts >= f.startTs; f = this.queue[0]) {
      this.queue.shift();
      if (ts >= f.endTs) {
        this.scheduleAfter(f.endTs); // began and ended between two readings: never observed
        continue;
      }
      this.active = f;
      this.log.push({ kind: f.kind, pumpId: this.pumpId, startTs: f.startTs, endTs: f.endTs });
    }
    return this.active ? { kind: this.active.kind, severity: severity(this.active, ts) } : null;
  }

  private scheduleAfter(ts: number): void {
    if (this.meanIntervalMs !== null) this.queue.push(this.draw(ts));
  }

  private draw(afterTs: number): ScheduledFault {
    const mean = this.meanIntervalMs ?? DEFAULT_FAULT_INTERVAL_MS;
    const startTs = Math.round(afterTs + Math.min(MIN_FAULT_GAP_MS, mean) - mean * Math.log(1 - this.rng.uniform()));
    const kind = FAULT_KINDS[Math.floor(this.rng.uniform() * FAULT_KINDS.length)] ?? 'valve';
    const [lo, hi] = RANDOM_DURATION_MIN[kind];
    const durationMs = Math.round((lo + (hi - lo) * this.rng.uniform()) * 60_000);
    const u = this.rng.uniform();
    // valve faults span SKAB's sizes, log-uniformly (most are small); the others reach 0.6–1
    const peak = kind === 'valve' ? VALVE_MIN_PEAK ** (1 - u) : 0.6 + 0.4 * u;
    return { kind, startTs, endTs: startTs + durationMs, peak };
  }
}
