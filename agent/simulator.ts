/**
 * A simulated centrifugal pump on a water-circulation testbed like SKAB's: the same eight sensors
 * with SKAB's units, magnitudes and resolution, physically coupled, plus injected faults whose
 * onsets and ends are recorded. Deterministic for a given seed.
 *
 * Model (quantities relative to the design point unless a unit is given):
 * - operating point: speed n and system resistance r drift slowly (Ornstein–Uhlenbeck);
 *   pipe fouling raises r over days;
 * - hydraulics: pump curve h = n²(1+α) − αq², system curve h = hs + r(1−hs)q², solved for q;
 * - power: shaft ∝ q·h/η(q) → current (no-load share plus load share), supply voltage sags
 *   under current; motor temperature and water temperature follow power with thermal lags;
 * - vibration RMS: √Σ of 1×, 2×, blade-pass (grows off the best efficiency point), bearing and
 *   cavitation components, weighted differently at the two accelerometers;
 * - measurement: white noise per sensor, slow sensor drift, SKAB's 0.33-bar pressure steps and its
 *   integer flow counter averaged over three samples.
 */
import type { Reading } from '../buffer/types.js';

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

/** A fault that began; it covers readings with startTs ≤ ts < endTs. */
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
}

export interface SimulatorOptions {
  pumpId: string;
  seed: number;
  /** Timestamp of the first reading (epoch ms). */
  startTs: number;
  /** Time between readings (ms); default 1000. */
  periodMs?: number;
  /** `random`: about one fault per `meanFaultIntervalMs` of simulated time. Default `none`. */
  faults?: 'none' | 'random' | FaultPlan[];
  /** Mean gap between random faults (ms); default 3 hours. */
  meanFaultIntervalMs?: number;
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

/** Seeded PRNG: mulberry32 uniforms, Box–Muller (polar) normals; `stream` selects an independent sequence. */
export class Rng {
  private state: number;
  private spare = Number.NaN;

  constructor(seed: number, stream = 0) {
    let h = (Math.trunc(seed) ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    this.state = (h ^ (h >>> 16)) >>> 0;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Standard normal (Box–Muller, polar form: no trigonometry). */
  normal(): number {
    if (!Number.isNaN(this.spare)) {
      const z = this.spare;
      this.spare = Number.NaN;
      return z;
    }
    let x: number;
    let y: number;
    let r2: number;
    do {
      x = 2 * this.uniform() - 1;
      y = 2 * this.uniform() - 1;
      r2 = x * x + y * y;
    } while (r2 >= 1 || r2 === 0);
    const f = Math.sqrt((-2 * Math.log(r2)) / r2);
    this.spare = y * f;
    return x * f;
  }
}

function badOption(message: string): SimulatorError {
  return new SimulatorError('PW_SIM_BAD_OPTION', message);
}

function validateOptions(o: SimulatorOptions): void {
  if (typeof o.pumpId !== 'string' || o.pumpId === '') throw badOption('simulator pumpId must be a non-empty string');
  if (!Number.isFinite(o.seed)) throw badOption(`simulator seed must be a finite number, got ${String(o.seed)}`);
  if (!Number.isFinite(o.startTs)) throw badOption(`simulator startTs must be epoch ms, got ${String(o.startTs)}`);
  const period = o.periodMs ?? 1000;
  if (!(Number.isFinite(period) && period > 0)) throw badOption(`simulator periodMs must be > 0, got ${String(period)}`);
  const mean = o.meanFaultIntervalMs ?? 1;
  if (!(Number.isFinite(mean) && mean > 0)) throw badOption(`simulator meanFaultIntervalMs must be > 0, got ${String(mean)}`);
  const faults = o.faults ?? 'none';
  if (faults !== 'none' && faults !== 'random' && !Array.isArray(faults)) {
    throw badOption(`simulator faults must be 'none', 'random' or a list of fault plans, got ${String(faults)}`);
  }
}

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
const DEFAULT_FAULT_INTERVAL_MS = 3 * 3_600_000;

function plannedFaults(plans: FaultPlan[]): ScheduledFault[] {
  const faults = plans.map((plan, i) => {
    if (!FAULT_KINDS.includes(plan.kind)) throw badOption(`fault plan ${i}: unknown kind ${String(plan.kind)}`);
    if (!Number.isFinite(plan.startTs)) throw badOption(`fault plan ${i}: startTs must be epoch ms`);
    if (!(Number.isFinite(plan.durationMs) && plan.durationMs > 0)) throw badOption(`fault plan ${i}: durationMs must be > 0`);
    return { kind: plan.kind, startTs: plan.startTs, endTs: plan.startTs + plan.durationMs, peak: 1 };
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
      return f.peak * Math.min(1, 0.5 + elapsed / 4000);
  }
}

/** Which fault (if any) is active at a timestamp; logs onsets. Timestamps must not go back. */
class FaultSchedule {
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
    return { kind, startTs, endTs: startTs + durationMs, peak: 0.6 + 0.4 * this.rng.uniform() };
  }
}

const ALPHA = 0.5; // droop of the pump curve
const H_STATIC = 0.3; // static share of the system head at the design point
const ETA_DROOP = 0.35; // efficiency η = 1 − κ(q/n − 1)²
const NO_LOAD = 0.35; // share of rated current drawn without hydraulic load
const LINE_OHMS = 1.5; // supply line resistance (voltage sag under current)
const PRESSURE_STEP = 0.327927; // SKAB's pressure resolution (bar)
const PRESSURE_GRID0 = 0.054711;
const DAY_MS = 86_400_000;
const FOULING_TAU_MS = 10 * DAY_MS;

/** Per-pump constants: pumps of one make differ a little (a few of their own noise sigmas). */
interface PumpParams {
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

function drawParams(rng: Rng): PumpParams {
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
function ou(x: number, mean: number, sd: number, tauS: number, dtS: number, z: number): number {
  const a = Math.exp(-dtS / tauS);
  return mean + (x - mean) * a + sd * Math.sqrt(1 - a * a) * z;
}

function lag(x: number, target: number, tauS: number, dtS: number): number {
  return target + (x - target) * Math.exp(-dtS / tauS);
}

/** Root of the sum of squares: the RMS of components at different frequencies. */
function rss(a: number, b: number, c: number, d: number, e: number): number {
  return Math.sqrt(a * a + b * b + c * c + d * d + e * e);
}

function round(x: number, factor: number): number {
  return Math.round(x * factor) / factor;
}

function quantisePressure(bar: number): number {
  return round(PRESSURE_GRID0 + PRESSURE_STEP * Math.round((bar - PRESSURE_GRID0) / PRESSURE_STEP), 1e6);
}

/** Fault effects on the physics, from a fault kind and its current severity (0–1). */
interface Effects {
  headLoss: number;
  resistance: number;
  leak: number;
  bearing: number;
  cavitation: number;
}

const NO_EFFECTS: Effects = { headLoss: 0, resistance: 1, leak: 0, bearing: 0, cavitation: 0 };

export class PumpSimulator {
  readonly pumpId: string;
  readonly periodMs: number;
  private readonly rng: Rng; // base stream: a fixed number of draws per reading
  private readonly faultRng: Rng; // fault schedule and fault-only noise
  private readonly params: PumpParams;
  private readonly schedule: FaultSchedule;
  private readonly startTs: number;
  private lastTs: number | null = null;
  private n: number;
  private r: number;
  private supply: number;
  private pressureDrift: number;
  private thermoDrift: number;
  private flowDrift: number;
  private cavitationPhase = 0;
  private motorT = Number.NaN;
  private waterT = Number.NaN;
  private readonly counts: [number, number, number] = [Number.NaN, Number.NaN, Number.NaN];

  constructor(opts: SimulatorOptions) {
    validateOptions(opts);
    this.pumpId = opts.pumpId;
    this.periodMs = opts.periodMs ?? 1000;
    this.startTs = opts.startTs;
    this.rng = new Rng(opts.seed);
    this.faultRng = new Rng(opts.seed, 0x5eed);
    this.schedule = new FaultSchedule(opts, this.faultRng);
    this.params = drawParams(this.rng);
    this.n = 1 + 0.012 * this.rng.normal();
    this.r = 1 + 0.015 * this.rng.normal();
    this.supply = this.params.supply + 2 * this.rng.normal();
    this.pressureDrift = 0.02 * this.rng.normal();
    this.thermoDrift = 0.15 * this.rng.normal();
    this.flowDrift = 0.01 * this.rng.normal();
  }

  /** Faults that have begun, with their (planned) end; a fault covers startTs ≤ ts < endTs. */
  get faultLog(): readonly FaultEvent[] {
    return this.schedule.log;
  }

  /**
   * The next reading: at the previous timestamp + periodMs (the first at startTs), or at `atTs`
   * when given (real-time sources); `atTs` must be later than the previous reading.
   */
  next(atTs?: number): { reading: Reading; fault: FaultKind | null } {
    const ts = atTs ?? (this.lastTs === null ? this.startTs : this.lastTs + this.periodMs);
    if (!Number.isFinite(ts) || (this.lastTs !== null && !(ts > this.lastTs))) {
      const msg = `simulator ${this.pumpId}: reading time ${String(ts)} is not after the previous one (${String(this.lastTs)})`;
      throw new SimulatorError('PW_SIM_TS_NOT_INCREASING', msg);
    }
    const dtS = this.lastTs === null ? this.periodMs / 1000 : (ts - this.lastTs) / 1000;
    this.lastTs = ts;
    const active = this.schedule.at(ts);
    const effects = active ? this.effects(active.kind, active.severity, dtS) : NO_EFFECTS;
    return { reading: { pumpId: this.pumpId, ts, values: this.step(ts, dtS, effects) }, fault: active?.kind ?? null };
  }

  private effects(kind: FaultKind, severity: number, dtS: number): Effects {
    switch (kind) {
      case 'cavitation':
        // vapour bubbles: head breakdown that flickers, broadband vibration
        this.cavitationPhase = ou(this.cavitationPhase, 0, 1, 2, dtS, this.faultRng.normal());
        return {
          ...NO_EFFECTS,
          headLoss: Math.min(0.9, Math.max(0, 0.15 * severity * (1 + 0.4 * this.cavitationPhase))),
          cavitation: severity,
        };
      case 'bearing-wear':
        return { ...NO_EFFECTS, bearing: severity };
      case 'leak':
        return { ...NO_EFFECTS, leak: 0.25 * severity };
      case 'valve':
        return { ...NO_EFFECTS, resistance: 1 + 2 * severity };
    }
  }

  private step(ts: number, dtS: number, fx: Effects): Record<string, number> {
    const p = this.params;
    const z = this.rng;
    this.n = ou(this.n, 1, 0.012, 900, dtS, z.normal());
    this.r = ou(this.r, 1, 0.015, 1800, dtS, z.normal());
    this.supply = ou(this.supply, p.supply, 2, 600, dtS, z.normal());
    this.pressureDrift = ou(this.pressureDrift, 0, 0.02, 86_400, dtS, z.normal());
    this.thermoDrift = ou(this.thermoDrift, 0, 0.15, 86_400, dtS, z.normal());
    this.flowDrift = ou(this.flowDrift, 0, 0.01, 3 * 86_400, dtS, z.normal());

    // hydraulics: a leak between pump and flow meter lets a share of the pump's flow escape
    const fouling = 1 + p.fouling * (1 - Math.exp(-(ts - this.startTs) / FOULING_TAU_MS));
    const pumpHead = this.n * this.n * (1 + ALPHA) * (1 - fx.headLoss);
    const resistance = this.r * fouling * fx.resistance * (1 - fx.leak) ** 2;
    const q2 = Math.max(0, (pumpHead - H_STATIC) / (ALPHA + resistance * (1 - H_STATIC)));
    const q = Math.sqrt(q2);
    const h = pumpHead - ALPHA * q2;
    const offDesign = q / this.n - 1;
    const eta = Math.max(0.3, 1 - ETA_DROOP * offDesign * offDesign);
    const shaft = ((q * h) / eta) * (1 + 0.06 * fx.bearing);

    // electrics: constant-power share draws more current on a weak supply
    const current = p.current * (NO_LOAD + (1 - NO_LOAD) * shaft) * (p.supply / this.supply);
    const volts = this.supply - LINE_OHMS * current;
    const iRel = current / p.current;

    // thermal: motor housing follows copper losses (and bearing friction), water follows pump power
    const ambient = p.ambient + 1.5 * Math.sin(2 * Math.PI * (ts / DAY_MS - 0.375));
    const motorTarget = ambient + p.motorRise * (0.65 + 0.35 * iRel * iRel) + 8 * fx.bearing;
    const waterTarget = ambient + p.waterRise * shaft;
    this.motorT = Number.isNaN(this.motorT) ? motorTarget : lag(this.motorT, motorTarget, 900, dtS);
    this.waterT = Number.isNaN(this.waterT) ? waterTarget : lag(this.waterT, waterTarget, 7200, dtS);

    // vibration: shaft harmonics ∝ n², blade-pass grows off design, bearing tones, cavitation noise
    const n2 = this.n * this.n;
    const bladePass = n2 * (1 + 4 * offDesign * offDesign);
    const broadband = fx.cavitation > 0 ? fx.cavitation * (1 + 0.6 * Math.abs(this.faultRng.normal())) : 0;
    const acc1 = p.vib * rss(0.19 * n2, 0.06 * n2, 0.07 * bladePass, 0.25 * fx.bearing, 0.15 * broadband);
    const acc2 = p.vib * rss(0.2 * n2, 0.14 * n2, 0.12 * bladePass, 0.12 * fx.bearing, 0.18 * broadband);

    // measurement
    const sampling = z.normal(); // shared by current and voltage: same sampling instant
    const cavitationFlow = fx.cavitation > 0 ? 3 * fx.cavitation * this.faultRng.normal() : 0;
    const flowTrue = p.flow * q * (1 - fx.leak) * (1 + this.flowDrift);
    const values: Record<string, number> = {
      Accelerometer1RMS: round(acc1 * (1 + 0.005 * z.normal()), 1e6),
      Accelerometer2RMS: round(acc2 * (1 + 0.005 * z.normal()), 1e6),
      Current: round(Math.max(0, current * (1 + 0.08 * sampling) + 0.42 * z.normal()), 1e5),
      Pressure: quantisePressure(h * p.headBar - p.pressureZero + this.pressureDrift + 0.23 * z.normal()),
      Temperature: round(this.motorT + 0.05 * z.normal(), 1e4),
      Thermocouple: round(this.waterT + this.thermoDrift + 0.01 * z.normal(), 1e4),
      Voltage: round(volts * (1 + 0.035 * sampling) + 6 * z.normal(), 1e3),
      'Volume Flow RateRMS': this.flowReading(flowTrue + 0.3 * z.normal() + cavitationFlow, z.normal()),
    };
    return values;
  }

  /** SKAB's flow channel: an integer counter averaged over the last three samples. */
  private flowReading(flow: number, jitterZ: number): number {
    const c = this.counts;
    const count = Math.max(0, Math.round(flow));
    c[0] = Number.isNaN(c[1]) ? count : c[1];
    c[1] = Number.isNaN(c[2]) ? count : c[2];
    c[2] = count;
    const mean = (c[0] + c[1] + c[2]) / 3;
    return c[0] === c[1] && c[1] === c[2] ? mean : round(mean + 0.002 * jitterZ, 1e3);
  }
}
