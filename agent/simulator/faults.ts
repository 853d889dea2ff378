/**
 * The simulator's fault schedule: planned faults (validated, sorted, non-overlapping) or random
 * ones drawn from a stream of their own (the schedule is the seed's alone), each kind's severity
 * over its course, and `FaultSchedule`, which tells which fault is active at a reading's timestamp
 * and logs fault onsets.
 *
 * Bearing wear is a condition, not an event: it grows over its whole span (random ones last days
 * to weeks) and ends only with the span (the bearing replaced), and other faults may come while a
 * bearing wears. Wear spans do not overlap one another; the other kinds do not overlap one another.
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

/**
 * Durations of random faults (minutes): a worn bearing runs for days to weeks until it is replaced
 * (until 2026-12-06: 30–120 minutes, then gone), a stuck valve is cleared fast.
 */
const RANDOM_DURATION_MIN: Record<FaultKind, readonly [number, number]> = {
  cavitation: [5, 20],
  'bearing-wear': [3 * 1440, 21 * 1440],
  leak: [10, 40],
  valve: [2, 10],
};
const MIN_FAULT_GAP_MS = 10 * 60_000;
/** A new bearing lasts: a random bearing wear drawn sooner than this after the last one ended is not drawn. */
const NEW_BEARING_MS = 30 * 86_400_000;
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
  for (const group of [faults.filter((f) => f.kind !== 'bearing-wear'), faults.filter((f) => f.kind === 'bearing-wear')]) {
    for (let i = 1; i < group.length; i++) {
      const [prev, cur] = [group[i - 1], group[i]];
      if (prev && cur && cur.startTs < prev.endTs) {
        const at = new Date(cur.startTs).toISOString();
        const message = `fault plan: ${cur.kind} at ${at} starts before the ${prev.kind} before it ends`;
        throw new SimulatorError('PW_SIM_FAULT_OVERLAP', message);
      }
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
      // grows from nothing over the whole span, faster as it goes, and stays until the span ends
      // (maintenance); until 2026-12-06 a tenth of it came at once, at the onset
      return f.peak * (elapsed / duration) ** 1.5;
    case 'leak':
      return f.peak * Math.min(1, 0.15 + elapsed / (0.3 * duration));
    case 'valve':
      return f.peak * Math.min(1, elapsed / VALVE_RAMP_MS);
  }
}

/** What is wrong at a reading: the fault under way (other than wear) and the bearing wear's severity. */
export interface ActiveFaults {
  fault: { kind: FaultKind; severity: number } | null;
  /** Severity of the bearing wear under way, or null when the bearing is sound. */
  wear: number | null;
}

/** A fault under way: its plan, and its severity at the last reading. */
export interface FaultNow {
  kind: FaultKind;
  startTs: number;
  /** Planned end (exclusive). */
  endTs: number;
  /** Severity the fault reaches (0–1). */
  peak: number;
  severity: number;
}

/** Which faults are active at a timestamp; logs onsets. Timestamps must not go back. */
export class FaultSchedule {
  readonly log: FaultEvent[] = [];
  private readonly queue: ScheduledFault[];
  /** Bearing wears to come (planned, or the one random wear drawn), in time order. */
  private readonly wears: ScheduledFault[];
  private readonly meanIntervalMs: number | null;
  private readonly pumpId: string;
  private active: ScheduledFault | null = null;
  private wear: ScheduledFault | null = null;
  /** End of the last random wear drawn (none: −∞). */
  private lastWearEndTs = Number.NEGATIVE_INFINITY;
  private lastTs = Number.NaN;

  constructor(
    opts: SimulatorOptions,
    private readonly rng: Rng,
  ) {
    const faults = opts.faults ?? 'none';
    this.pumpId = opts.pumpId;
    this.meanIntervalMs = faults === 'random' ? (opts.meanFaultIntervalMs ?? DEFAULT_FAULT_INTERVAL_MS) : null;
    const planned = Array.isArray(faults) ? plannedFaults(faults) : [];
    this.queue = planned.filter((f) => f.kind !== 'bearing-wear');
    this.wears = planned.filter((f) => f.kind === 'bearing-wear');
    this.scheduleAfter(opts.startTs);
  }

  at(ts: number): ActiveFaults {
    this.lastTs = ts;
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
      this.onset(f);
    }
    if (this.wear && ts >= this.wear.endTs) this.wear = null;
    for (let w = this.wears[0]; !this.wear && w && ts >= w.startTs; w = this.wears[0]) {
      this.wears.shift();
      if (ts >= w.endTs) continue;
      this.wear = w;
      this.onset(w);
    }
    return {
      fault: this.active ? { kind: this.active.kind, severity: severity(this.active, ts) } : null,
      wear: this.wear ? severity(this.wear, ts) : null,
    };
  }

  /** The faults under way at the last reading (a wear first), for those who show what was injected. */
  get underWay(): FaultNow[] {
    const ts = this.lastTs;
    return [this.wear, this.active].flatMap((f) => (f === null ? [] : [{ ...f, severity: severity(f, ts) }]));
  }

  /** Logs a fault's onset, in order of onset (a wear and another fault may begin between two readings). */
  private onset(f: ScheduledFault): void {
    this.log.push({ kind: f.kind, pumpId: this.pumpId, startTs: f.startTs, endTs: f.endTs });
    this.log.sort((a, b) => a.startTs - b.startTs);
  }

  /**
   * Random faults: the next one after `ts`. A bearing wear drawn goes beside the others (the next
   * is drawn from its onset), unless the bearing is still wearing or new.
   */
  private scheduleAfter(ts: number): void {
    if (this.meanIntervalMs === null) return;
    for (let f = this.draw(ts); ; f = this.draw(f.startTs)) {
      if (f.kind !== 'bearing-wear') {
        this.queue.push(f);
        return;
      }
      if (f.startTs >= this.lastWearEndTs + NEW_BEARING_MS) {
        this.wears.push(f);
        this.lastWearEndTs = f.endTs;
      }
    }
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
