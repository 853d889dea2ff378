/**
 * The simulated pump's duty point over time: its own point on its pump curve, drawn from its seed
 * (or fixed by the options), and rare steps in demand that move it along the curve at its speed,
 * drawn in time order from a stream of their own: the same seed gives the same set points at any
 * reading period and with skipped ticks. The steps met are logged (`log`), so a bench can tell
 * what happened after one.
 */
import { DAY_MS, DEMAND_INTERVAL_MS, DEMAND_STEP_SD, DUTY_BEP_SHARE, drawDuty, type DutyPoint } from './physics.js';
import type { Rng } from './rng.js';

/** A step in demand: at `ts` the duty point asked for moved from `from` to `to` (the flow follows with a lag). */
export interface DemandStep {
  ts: number;
  from: DutyPoint;
  to: DutyPoint;
}

export class DutySchedule {
  /** The steps in demand met so far, in time order. */
  readonly log: DemandStep[] = [];
  /** The duty point the demand asks for now (the pump follows it with a lag). */
  private current: DutyPoint;
  private readonly base: DutyPoint;
  private readonly meanIntervalMs: number;
  private nextTs: number;

  constructor(
    fixed: DutyPoint | null,
    startTs: number,
    private readonly rng: Rng,
  ) {
    this.base = fixed ?? drawDuty(rng);
    this.current = this.base;
    const [lo, hi] = DEMAND_INTERVAL_MS;
    this.meanIntervalMs = lo * (hi / lo) ** rng.uniform();
    this.nextTs = fixed ? Number.POSITIVE_INFINITY : this.after(startTs);
  }

  /** The pump's own duty point, before any step in demand. */
  get own(): Readonly<DutyPoint> {
    return this.base;
  }

  at(ts: number): Readonly<DutyPoint> {
    while (ts >= this.nextTs) {
      const baseShare = this.base.flow / this.base.speed;
      const share = Math.min(DUTY_BEP_SHARE[1], Math.max(DUTY_BEP_SHARE[0], baseShare * Math.exp(DEMAND_STEP_SD * this.rng.normal())));
      const to = { speed: this.base.speed, flow: this.base.speed * share };
      this.log.push({ ts: this.nextTs, from: this.current, to });
      this.current = to;
      this.nextTs = this.after(this.nextTs);
    }
    return this.current;
  }

  /** The next step in demand: exponential gaps, at least a quarter of an hour apart. */
  private after(ts: number): number {
    return Math.round(ts + Math.min(DAY_MS / 96, this.meanIntervalMs) - this.meanIntervalMs * Math.log(1 - this.rng.uniform()));
  }
}
