/**
 * The simulator's stops: when the pump is switched off and on again (level control in a well, a
 * duty/standby pair changing over, a night shutdown). Planned stops (validated, sorted,
 * non-overlapping) or random ones drawn in time order from a stream of their own, so the same seed
 * gives the same stops at any reading period and with skipped ticks, and no other draw moves.
 * `StopSchedule` tells whether the pump is stopped at a reading's timestamp and logs the stops met.
 */
import { MIN_RUN_MS, badOption, type RandomStops, type SimulatorOptions, type StopEvent, type StopPlan } from './options.js';
import { DAY_MS } from './physics.js';
import type { Rng } from './rng.js';

interface Span {
  startTs: number;
  endTs: number;
}

function plannedStops(plans: readonly StopPlan[]): Span[] {
  const spans = plans.map((plan, i) => {
    if (plan === null || typeof plan !== 'object') throw badOption(`stop plan ${i}: must be an object {startTs, durationMs}`);
    if (!Number.isFinite(plan.startTs)) throw badOption(`stop plan ${i}: startTs must be epoch ms, got ${String(plan.startTs)}`);
    if (!(Number.isFinite(plan.durationMs) && plan.durationMs > 0)) throw badOption(`stop plan ${i}: durationMs must be > 0, got ${String(plan.durationMs)}`);
    return { startTs: plan.startTs, endTs: plan.startTs + plan.durationMs };
  });
  spans.sort((a, b) => a.startTs - b.startTs);
  for (let i = 1; i < spans.length; i++) {
    const [prev, cur] = [spans[i - 1] as Span, spans[i] as Span];
    if (cur.startTs < prev.endTs) throw badOption(`stop plan: the stop at ${new Date(cur.startTs).toISOString()} starts before the one before it ends`);
  }
  return spans;
}

/** Whether the pump is stopped at a timestamp; logs the stops met. Timestamps must not go back. */
export class StopSchedule {
  readonly log: StopEvent[] = [];
  private readonly queue: Span[];
  private readonly random: RandomStops | null;
  private readonly pumpId: string;
  private current: Span | null = null;

  constructor(
    opts: SimulatorOptions,
    private readonly rng: Rng,
  ) {
    const stops = opts.stops ?? 'none';
    this.pumpId = opts.pumpId;
    this.random = stops !== 'none' && !Array.isArray(stops) ? stops : null;
    this.queue = Array.isArray(stops) ? plannedStops(stops) : [];
    if (this.random) this.queue.push(this.draw(opts.startTs));
  }

  at(ts: number): boolean {
    if (this.current && ts >= this.current.endTs) this.current = null;
    for (let s = this.queue[0]; !this.current && s && ts >= s.startTs; s = this.queue[0]) {
      this.queue.shift();
      if (this.random) this.queue.push(this.draw(s.endTs));
      if (ts >= s.endTs) continue; // began and ended between two readings: never observed
      this.current = s;
      this.log.push({ pumpId: this.pumpId, startTs: s.startTs, endTs: s.endTs });
    }
    return this.current !== null;
  }

  /** The next random stop after a run from `afterTs`: runs are at least MIN_RUN_MS, exponential beyond it. */
  private draw(afterTs: number): Span {
    const r = this.random as RandomStops;
    const meanStopMs = ((r.minMinutes + r.maxMinutes) / 2) * 60_000;
    const extraRunMs = DAY_MS / r.perDay - meanStopMs - MIN_RUN_MS;
    const startTs = Math.round(afterTs + MIN_RUN_MS - extraRunMs * Math.log(1 - this.rng.uniform()));
    const durationMs = Math.round((r.minMinutes + (r.maxMinutes - r.minMinutes) * this.rng.uniform()) * 60_000);
    return { startTs, endTs: startTs + durationMs };
  }
}
