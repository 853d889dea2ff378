/**
 * Building blocks of the simulated pump's physics: the model constants (pump and system curves,
 * efficiency, electrics, SKAB's pressure grid, fouling time scale), the per-pump parameters drawn
 * from the seed, and the small numeric helpers (Ornstein–Uhlenbeck step, thermal lag, RSS,
 * rounding, pressure quantisation) that `PumpSimulator` composes.
 */
import type { Rng } from './rng.js';

export const DAY_MS = 86_400_000;
export const ALPHA = 0.5; // droop of the pump curve
export const H_STATIC = 0.3; // static share of the system head at the design point
export const ETA_DROOP = 0.35; // efficiency η = 1 − κ(q/n − 1)²
export const NO_LOAD = 0.35; // share of rated current drawn without hydraulic load
export const LINE_OHMS = 1.5; // supply line resistance (voltage sag under current)
const PRESSURE_STEP = 0.327927; // SKAB's pressure resolution (bar)
const PRESSURE_GRID0 = 0.054711;
export const FOULING_TAU_MS = 10 * DAY_MS;

/**
 * Flow drop of a valve fault at full severity: the largest of SKAB's 16 valve1 experiments (their
 * drops range over 1–23 % of the flow, median 6 %).
 */
export const VALVE_MAX_DROP = 0.23;

/**
 * A duty point: the pump's speed and its flow, both relative to the design point (1, 1). The flow
 * at a speed is set by the system's resistance (a valve's position, the demand), so any point on
 * the pump's curve h = n²(1+α) − αq² above the static head is one: head, efficiency, power,
 * current, vibration and temperatures follow from it through the same physics.
 */
export interface DutyPoint {
  speed: number;
  flow: number;
}

/** The design point itself: SKAB's anomaly-free recording (flow ~125 l/min, current ~2.4 A). */
export const DESIGN_DUTY: Readonly<DutyPoint> = Object.freeze({ speed: 1, flow: 1 });

/** Head left above the static head at a duty point (relative); a duty point needs it > 0. */
export function headMargin(d: DutyPoint): number {
  return d.speed * d.speed * (1 + ALPHA) - ALPHA * d.flow * d.flow - H_STATIC;
}

/** The system resistance (relative to the design point's) that puts the pump at this duty point. */
export function dutyResistance(d: DutyPoint): number {
  return headMargin(d) / ((1 - H_STATIC) * d.flow * d.flow);
}

/** The factor on the system resistance that cuts the flow at a duty point by `drop` (0–1). */
export function valveResistance(drop: number, at: DutyPoint = DESIGN_DUTY): number {
  return dutyResistance({ speed: at.speed, flow: at.flow * (1 - drop) }) / dutyResistance(at);
}

/**
 * Spread of duty points between pumps: the speed (pumps on frequency converters, or impellers
 * trimmed for their site) and the flow as a share of the best-efficiency flow at that speed, over
 * the usual preferred operating region (about 70–115 % of it). At the extremes: 0.8 × 0.7 → 56 %
 * of the design flow at ~1.6 A; 1.0 × 1.15 → 115 % at ~2.4 A.
 */
export const DUTY_SPEED: readonly [number, number] = [0.8, 1];
export const DUTY_BEP_SHARE: readonly [number, number] = [0.7, 1.15];

/** A pump's own duty point, drawn from its seed's stream. */
export function drawDuty(rng: Rng): DutyPoint {
  const speed = DUTY_SPEED[0] + (DUTY_SPEED[1] - DUTY_SPEED[0]) * rng.uniform();
  const share = DUTY_BEP_SHARE[0] + (DUTY_BEP_SHARE[1] - DUTY_BEP_SHARE[0]) * rng.uniform();
  return { speed, flow: speed * share };
}

/**
 * Set-point changes: a step in demand moves the flow to another share of the best-efficiency flow
 * (the speed stays), about the pump's own (sd 8 %), kept inside the preferred operating region.
 * Steps come at random, on average once per the pump's own interval, drawn between a few hours and
 * a few days.
 */
export const DEMAND_STEP_SD = 0.08;
export const DEMAND_INTERVAL_MS: readonly [number, number] = [4 * 3_600_000, 4 * DAY_MS];
/** How fast the flow follows a step in demand (a valve moving): seconds. */
export const DEMAND_TAU_S = 20;

/** Per-pump constants: pumps of one make differ a little (a few of their own noise sigmas). */
export interface PumpParams {
  flow: number; // l/min at the design point
  headBar: number;
  pressureZero: number; // transducer offset: nominal reading ≈ 0.11 bar like SKAB
  current: number; // A at the design point
  supply: number; // V
  ambient: number; // °C
  motorRise: number; // °C of motor heating at rated current
  waterRise: number; // °C of loop heating at design power
  fouling: number; // final resistance increase from fouling
  vib: number; // scale of all vibration amplitudes (g RMS)
}

export function drawParams(rng: Rng): PumpParams {
  const k = (sd: number): number => 1 + sd * rng.normal();
  const headBar = 2 * k(0.015);
  return {
    flow: 125 * k(0.015),
    headBar,
    pressureZero: headBar - 0.11,
    current: 2.4 * k(0.02),
    supply: 230 * k(0.005),
    ambient: 24 + 0.5 * rng.normal(),
    motorRise: 65.5 * k(0.015),
    waterRise: 4.5 * k(0.05),
    fouling: 0.03 + 0.07 * rng.uniform(),
    vib: k(0.04),
  };
}

/** Ornstein–Uhlenbeck step, exact for any dt. */
export function ou(x: number, mean: number, sd: number, tauS: number, dtS: number, z: number): number {
  const a = Math.exp(-dtS / tauS);
  return mean + (x - mean) * a + sd * Math.sqrt(1 - a * a) * z;
}

export function lag(x: number, target: number, tauS: number, dtS: number): number {
  return target + (x - target) * Math.exp(-dtS / tauS);
}

/** Root of the sum of squares: the RMS of components at different frequencies. */
export function rss(a: number, b: number, c: number, d: number, e: number): number {
  return Math.sqrt(a * a + b * b + c * c + d * d + e * e);
}

export function round(x: number, factor: number): number {
  return Math.round(x * factor) / factor;
}

export function quantisePressure(bar: number): number {
  return round(PRESSURE_GRID0 + PRESSURE_STEP * Math.round((bar - PRESSURE_GRID0) / PRESSURE_STEP), 1e6);
}
