/**
 * A simulated centrifugal pump on a water-circulation testbed like SKAB's: the same eight sensors
 * with SKAB's units, magnitudes and resolution, physically coupled, plus injected faults whose
 * onsets and ends are recorded. Deterministic for a given seed.
 *
 * Model (quantities relative to the design point unless a unit is given):
 * - operating point: each pump has its own duty point (speed, and the system resistance that sets
 *   its flow on its curve), drawn from its seed, with rare steps in demand along the curve; speed n
 *   (a little) and system resistance r drift slowly about it (Ornstein–Uhlenbeck); pipe fouling
 *   raises r over days;
 * - hydraulics: pump curve h = n²(1+α) − αq², system curve h = hs + r(1−hs)q², solved for q;
 * - power: shaft ∝ q·h/η(q) → current (no-load share plus load share), supply voltage sags
 *   under current; motor temperature and water temperature follow power with thermal lags, from
 *   ambient at the pump's start (the first reading);
 * - vibration RMS: √Σ of 1×, 2×, blade-pass (grows off the best efficiency point), bearing and
 *   cavitation components, weighted differently at the two accelerometers;
 * - each accelerometer and the flow also wander on their own (the accelerometers share a frame and
 *   part of their 1-s noise), tuned to SKAB's anomaly-free recording;
 * - measurement: white noise per sensor, slow sensor drift, SKAB's 0.33-bar pressure steps and its
 *   integer flow counter averaged over three samples;
 * - stops (optional): the pump switched off turns no more: no flow, no current, vibration at the
 *   ambient floor, pressure at the static head, motor and water cooling towards ambient; restarted,
 *   it runs at once and warms up again from there.
 *
 * This module is the public face; the code lives in `./simulator/`: options.ts (names, options,
 * errors, validation), rng.ts (seeded PRNG), faults.ts (fault schedule), duty.ts (duty point and
 * steps in demand), stops.ts (stop schedule), physics.ts (model constants and helpers) and pump.ts
 * (`PumpSimulator`).
 */
export {
  FAULT_KINDS,
  SIMULATED_FEATURES,
  SimulatorError,
  randomStopsProblem,
  type FaultEvent,
  type FaultKind,
  type FaultPlan,
  type RandomStops,
  type SimulatorOptions,
  type StopEvent,
  type StopPlan,
} from './simulator/options.js';
export { DESIGN_DUTY, VALVE_MAX_DROP, type DutyPoint } from './simulator/physics.js';
export { Rng } from './simulator/rng.js';
export type { DemandStep } from './simulator/duty.js';
export { PumpSimulator } from './simulator/pump.js';
export type { FaultNow } from './simulator/faults.js';
