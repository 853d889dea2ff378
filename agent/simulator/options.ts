import { DAY_MS, headMargin, type DutyPoint } from './physics.js';

/**
 * The simulator's public vocabulary and its input checks: the eight SKAB sensor names it produces,
 * the fault kinds with their logged events and plans, the options a simulator is built from, the
 * typed `SimulatorError`, and the validation of those options (shared with the fault schedule).
 */
export const SIMULATED_FEATURES: readonly string[] = Object.freeze([
  'Accelerometer1RMS',
  'Accelerometer2RMS',
  'Current',
  'Pressure',
  'Temperature',
  'Thermocouple',
  'Voltage',
  'Volume Flow RateRMS',
]);

export type FaultKind = 'cavitation' | 'bearing-wear' | 'leak' | 'valve';
export const FAULT_KINDS: readonly FaultKind[] = Object.freeze(['cavitation', 'bearing-wear', 'leak', 'valve']);

/**
 * A fault that began; it covers readings with startTs ≤ ts < endTs. A bearing wear may overlap the
 * other kinds (a reading under both is labelled with the other one).
 */
export interface FaultEvent {
  kind: FaultKind;
  pumpId: string;
  startTs: number;
  endTs: number;
}

export interface FaultPlan {
  kind: FaultKind;
  startTs: number;
  durationMs: number;
  /**
   * Severity the fault reaches, in (0, 1]; default 1 (full). A valve fault at peak p cuts the
   * flow by about p × 23 %, the largest drop of SKAB's valve1 experiments (1–23 %, median 6 %).
   */
  peak?: number;
}

/** A planned stop: the pump is off for readings with startTs ≤ ts < startTs + durationMs. */
export interface StopPlan {
  startTs: number;
  durationMs: number;
}

/**
 * Random stops: on average `perDay` a day, each lasting `minMinutes`–`maxMinutes` (uniform), with
 * at least 10 minutes of running between two (MIN_RUN_MS).
 */
export interface RandomStops {
  perDay: number;
  minMinutes: number;
  maxMinutes: number;
}

/** A stop that began: the pump is off for readings with startTs ≤ ts < endTs. */
export interface StopEvent {
  pumpId: string;
  startTs: number;
  endTs: number;
}

export interface SimulatorOptions {
  pumpId: string;
  seed: number;
  /** Timestamp of the first reading (epoch ms). */
  startTs: number;
  /** Time between readings (ms); default 1000. */
  periodMs?: number;
  /**
   * `random`: a fault starts 10 min (or `meanFaultIntervalMs`, when shorter) plus on average
   * `meanFaultIntervalMs` after the previous one ended: one fault per that interval plus 10 min
   * plus a fault's length, on average.
   * Default `none`.
   */
  faults?: 'none' | 'random' | FaultPlan[];
  /** Mean gap from the end of one random fault to the start of the next (ms); default 3 hours. */
  meanFaultIntervalMs?: number;
  /**
   * `seeded` (default): the pump's own duty point, drawn from its seed (speed 0.8–1 of the design
   * speed, flow 70–115 % of the best-efficiency flow at that speed), with a step in demand every
   * few hours to days. A duty point (speed and flow relative to the design point, e.g.
   * `DESIGN_DUTY`, SKAB's anomaly-free recording): that point, fixed.
   */
  duty?: 'seeded' | DutyPoint;
  /**
   * `running` (default): the pump is already running at its first reading, at its running
   * temperatures (a gateway starts watching a pump that was running; an agent restart does not
   * cool it). `cold`: the first reading is the pump's start, its motor and water at ambient,
   * warming up over tens of minutes (motor) and hours (water).
   */
  start?: 'running' | 'cold';
  /**
   * `none` (default): the pump never stops. Random stops, or planned ones: while stopped the pump
   * turns no more (no flow, no current, vibration at the ambient floor, pressure down to the
   * static head, motor and water cooling towards ambient, the supply voltage still there); at the
   * restart it runs at once (the run-up takes seconds) and warms up again from the temperatures it
   * reached. A reading of a stopped pump is labelled normal (no fault) whatever fault spans it:
   * nothing of the fault shows (see README, "Simulated pumps").
   * Drawn from a stream of their own: no other draw moves.
   */
  stops?: 'none' | RandomStops | StopPlan[];
}

export class SimulatorError extends Error {
  constructor(
    readonly code: 'PW_SIM_BAD_OPTION' | 'PW_SIM_FAULT_OVERLAP' | 'PW_SIM_TS_NOT_INCREASING',
    message: string,
  ) {
    super(message);
    this.name = 'SimulatorError';
  }
}

export function badOption(message: string): SimulatorError {
  return new SimulatorError('PW_SIM_BAD_OPTION', message);
}

/**
 * Least running time between two random stops: motors are kept from cycling faster (makers allow a
 * few starts an hour; level controls have a band; duty/standby pairs change over after a run).
 */
export const MIN_RUN_MS = 10 * 60_000;

/** What is wrong with random stops (null: nothing): they must leave MIN_RUN_MS of running between them on average. */
export function randomStopsProblem(s: RandomStops): string | null {
  if (s === null || typeof s !== 'object') return 'must be an object {perDay, minMinutes, maxMinutes}';
  if (!(Number.isFinite(s.perDay) && s.perDay > 0)) return `perDay must be > 0, got ${String(s.perDay)}`;
  if (!(Number.isFinite(s.minMinutes) && s.minMinutes > 0)) return `minMinutes must be > 0, got ${String(s.minMinutes)}`;
  if (!(Number.isFinite(s.maxMinutes) && s.maxMinutes >= s.minMinutes)) return `maxMinutes must be ≥ minMinutes (${String(s.minMinutes)}), got ${String(s.maxMinutes)}`;
  const meanRunMs = DAY_MS / s.perDay - ((s.minMinutes + s.maxMinutes) / 2) * 60_000;
  if (meanRunMs < MIN_RUN_MS) {
    return `${s.perDay} stops a day of ${s.minMinutes}–${s.maxMinutes} min leave less than ${MIN_RUN_MS / 60_000} min of running between stops on average`;
  }
  return null;
}

export function validateOptions(o: SimulatorOptions): void {
  if (typeof o.pumpId !== 'string' || o.pumpId === '') throw badOption('simulator pumpId must be a non-empty string');
  if (!Number.isFinite(o.seed)) throw badOption(`simulator seed must be a finite number, got ${String(o.seed)}`);
  if (!Number.isFinite(o.startTs)) throw badOption(`simulator startTs must be epoch ms, got ${String(o.startTs)}`);
  const period = o.periodMs ?? 1000;
  if (!(Number.isFinite(period) && period > 0)) throw badOption(`simulator periodMs must be > 0, got ${String(period)}`);
  const mean = o.meanFaultIntervalMs ?? 1;
  if (!(Number.isFinite(mean) && mean > 0)) throw badOption(`simulator meanFaultIntervalMs must be > 0, got ${String(mean)}`);
  const duty = o.duty ?? 'seeded';
  if (duty !== 'seeded') {
    const ok = typeof duty === 'object' && Number.isFinite(duty.speed) && Number.isFinite(duty.flow) && duty.speed > 0 && duty.flow > 0;
    if (!ok || headMargin(duty) <= 0) {
      throw badOption(`simulator duty must be 'seeded' or a speed and flow > 0 on the pump's curve above its static head, got ${JSON.stringify(duty)}`);
    }
  }
  if (o.start !== undefined && o.start !== 'running' && o.start !== 'cold') {
    throw badOption(`simulator start must be 'running' or 'cold', got ${JSON.stringify(o.start)}`);
  }
  const stops = o.stops ?? 'none';
  if (stops !== 'none' && !Array.isArray(stops)) {
    const problem = randomStopsProblem(stops);
    if (problem !== null) throw badOption(`simulator stops must be 'none', a list of stop plans or {perDay, minMinutes, maxMinutes}: ${problem}`);
  }
  const faults = o.faults ?? 'none';
  if (faults !== 'none' && faults !== 'random' && !Array.isArray(faults)) {
    throw badOption(`simulator faults must be 'none', 'random' or a list of fault plans, got ${String(faults)}`);
  }
}
