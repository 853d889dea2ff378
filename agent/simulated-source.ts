/**
 * Simulated pumps `sim-pump-1` … `sim-pump-N` ticking in real time: each tick takes one reading
 * from every pump, stamped with the clock, and hands them to the sink as one array. Ticks never
 * overlap: while the sink is still busy with the previous array, a tick is skipped (and counted).
 */
import type { Reading } from '../buffer/types.js';
import { MIN_SIMULATE_RATE_HZ } from './config.js';
import { RepeatLog } from './repeat-log.js';
import { SimulatedFaultWatch, type SimulatedPumpFaults } from './simulated-faults.js';
import { formatDuration } from './scheduler.js';
import { PumpSimulator, SimulatorError, type FaultEvent } from './simulator.js';

export interface SimulatedSourceOptions {
  pumps: number;
  /** Readings per pump per second; default 1. */
  ratePerPumpHz?: number;
  /** Base seed; pump i uses a seed derived from it. Default 1. */
  seed?: number;
  faults?: 'none' | 'random';
  /** Mean time from the end of a random fault to the next (the simulator's default: 3 h). */
  meanFaultIntervalMs?: number;
  /** Receives one array per tick; the next tick waits for it to settle. */
  sink: (readings: Reading[]) => Promise<unknown>;
  clock?: () => number;
  /** Sink failures are logged once, then at most once a minute with a count (agent/repeat-log.ts). */
  logger?: { warn(obj: object, msg: string): void; info?(obj: object, msg: string): void };
}

export interface SimulatedSourceStats {
  ticks: number;
  skippedTicks: number;
  readings: number;
  sinkErrors: number;
}

export class SimulatedSource {
  private readonly opts: SimulatedSourceOptions;
  private readonly clock: () => number;
  private readonly intervalMs: number;
  private pumps: PumpSimulator[] = [];
  private timer: ReturnType<typeof setInterval> | null = null;
  private inFlight: Promise<void> | null = null;
  private lastTs = Number.NEGATIVE_INFINITY;
  /** The faults of series ended by a step back of the clock (faultLog keeps them). */
  private readonly retiredFaults: FaultEvent[] = [];
  private readonly counters: SimulatedSourceStats = { ticks: 0, skippedTicks: 0, readings: 0, sinkErrors: 0 };
  private readonly sinkLog: RepeatLog;
  private readonly faultWatch: SimulatedFaultWatch;

  constructor(opts: SimulatedSourceOptions) {
    const rate = opts.ratePerPumpHz ?? 1;
    if (!Number.isInteger(opts.pumps) || opts.pumps < 0) {
      throw new SimulatorError('PW_SIM_BAD_OPTION', `simulated pumps must be a whole number ≥ 0, got ${String(opts.pumps)}`);
    }
    // Slower than the minimum, 1000 / rate overflows setInterval, which then fires every millisecond.
    if (!(Number.isFinite(rate) && rate >= MIN_SIMULATE_RATE_HZ && rate <= 1000)) {
      throw new SimulatorError('PW_SIM_BAD_OPTION', `simulated ratePerPumpHz must be in [${MIN_SIMULATE_RATE_HZ}, 1000], got ${String(rate)}`);
    }
    this.opts = opts;
    this.clock = opts.clock ?? Date.now;
    this.intervalMs = 1000 / rate;
    const logger = opts.logger;
    this.faultWatch = new SimulatedFaultWatch((fields, msg) => logger?.info?.(fields, msg));
    this.sinkLog = new RepeatLog({
      failure: (fields, msg) => logger?.warn(fields, msg),
      recovery: (fields, msg) => logger?.info?.(fields, msg),
      message: 'simulated readings were not accepted by the sink',
      recovered: 'simulated readings are accepted again',
    });
  }

  /** Faults of all simulated pumps so far, oldest onset first. */
  get faultLog(): FaultEvent[] {
    return [...this.retiredFaults, ...this.pumps.flatMap((p) => p.faultLog)].sort((a, b) => a.startTs - b.startTs);
  }

  /** Per pump, the fault under way and the last ones ended (logged as they begin and end). */
  get faults(): Record<string, SimulatedPumpFaults> {
    return this.faultWatch.view();
  }

  get stats(): SimulatedSourceStats {
    return { ...this.counters };
  }

  /** Starts ticking (the pumps' simulated history begins now). Starting twice does nothing. */
  start(): void {
    if (this.timer !== null || this.opts.pumps === 0) return;
    if (this.pumps.length === 0) this.pumps = this.createPumps(this.clock());
    this.timer = setInterval(() => this.tick(), this.intervalMs);
  }

  /** Stops ticking and waits for the sink call in flight, if any. */
  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.inFlight;
  }

  private createPumps(startTs: number): PumpSimulator[] {
    const base = this.opts.seed ?? 1;
    return Array.from({ length: this.opts.pumps }, (_, i) =>
      new PumpSimulator({
        pumpId: `sim-pump-${i + 1}`,
        seed: simulatedPumpSeed(base, i),
        startTs,
        periodMs: this.intervalMs,
        faults: this.opts.faults ?? 'none',
        ...(this.opts.meanFaultIntervalMs === undefined ? {} : { meanFaultIntervalMs: this.opts.meanFaultIntervalMs }),
      }),
    );
  }

  private tick(): void {
    if (this.inFlight !== null) {
      this.counters.skippedTicks++;
      if (this.counters.skippedTicks % 100 === 1) {
        const msg = 'simulated tick skipped: the previous readings are still being handled';
        this.opts.logger?.warn({ skippedTicks: this.counters.skippedTicks }, msg);
      }
      return;
    }
    const ts = this.clock();
    if (!(ts > this.lastTs) && !(ts < this.lastTs)) return; // two ticks within a millisecond (1000 Hz): the next one stamps later
    if (ts < this.lastTs) {
      // NTP stepped the clock back. Readings are stamped with the clock, and a pump's series only
      // goes forward: the pumps start a new series from the new time (said once), rather than stay
      // silent until the clock is back where it was, hours maybe.
      this.retiredFaults.push(...this.pumps.flatMap((p) => p.faultLog));
      this.faultWatch.endAll(this.lastTs);
      this.pumps = this.createPumps(ts);
      this.opts.logger?.warn({ ts, lastTs: this.lastTs }, `the clock stepped back by ${formatDuration(this.lastTs - ts)}: the simulated pumps start a new series from the new time`);
    }
    this.lastTs = ts;
    this.counters.ticks++;
    const readings = this.pumps.map((p) => {
      const { reading } = p.next(ts);
      this.faultWatch.observe(p.pumpId, ts, p.faultsUnderWay);
      return reading;
    });
    this.inFlight = this.deliver(readings).finally(() => {
      this.inFlight = null;
    });
  }

  private async deliver(readings: Reading[]): Promise<void> {
    try {
      await this.opts.sink(readings);
      this.counters.readings += readings.length;
      this.sinkLog.succeeded();
    } catch (err) {
      this.counters.sinkErrors++;
      this.sinkLog.failed({ err, readings: readings.length });
    }
  }
}

/** The seed of simulated pump `index` (0-based: sim-pump-1 is 0) for a base seed (PUMPWATCH_SIMULATE's pumps use base 1). */
export function simulatedPumpSeed(base: number, index: number): number {
  return (Math.trunc(base) * 1_000_003 + index * 7919) | 0;
}
