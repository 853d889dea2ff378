/**
 * Building blocks of the simulated pump's physics: the model constants (pump and system curves,
 * efficiency, electrics, SKAB's pressure grid, fouling time scale), the per-pump parameters drawn
 * from the seed, and the small numeric helpers (Ornstein–Uhlenbeck step, thermal lag, RSS,
 * rounding, pressure quantisation) that `PumpSimulator` composes.
 */
import type { Rng } from './rng.js';

export const ALPHA = 0.5; // droop of the pump curve
export const H_STATIC = 0.3; // static share of the system head at the design point
export const ETA_DROOP = 0.35; // efficiency η = 1 − κ(q/n − 1)²
export const NO_LOAD = 0.35; // share of rated current drawn without hydraulic load
export const LINE_OHMS = 1.5; // supply line resistance (voltage sag under current)
const PRESSURE_STEP = 0.327927; // SKAB's pressure resolution (bar)
const PRESSURE_GRID0 = 0.054711;
export const DAY_MS = 86_400_000;
export const FOULING_TAU_MS = 10 * DAY_MS;

/**
 * Flow drop of a valve fault at full severity: the largest of SKAB's 16 valve1 experiments (their
 * drops range over 1–23 % of the flow, median 6 %).
 */
export const VALVE_MAX_DROP = 0.23;

/** The factor on the system resistance that cuts the flow at the design point by `drop` (0–1). */
export function valveResistance(drop: number): number {
  const q = 1 - drop;
  return ((1 + ALPHA - H_STATIC) / (q * q) - ALPHA) / (1 - H_STATIC);
}

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
