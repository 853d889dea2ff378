import { headMargin, type DutyPoint } from './physics.js';

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
  const faults = o.faults ?? 'none';
  if (faults !== 'none' && faults !== 'random' && !Array.isArray(faults)) {
    throw badOption(`simulator faults must be 'none', 'random' or a list of fault plans, got ${String(faults)}`);
  }
}
