/**
 * `PumpSimulator`, the simulated pump itself: it owns the random streams, the fault schedule, the
 * duty schedule and the drifting operating state, turns active faults into effects on the physics,
 * and steps hydraulics, electrics, temperatures, vibration and measurement into one SKAB-like
 * reading. By default the pump is already running at its first reading (the gateway starts
 * watching a pump that was running: an agent restart does not cool it); with `start: 'cold'` the
 * first reading is the pump's start, and the motor and the water warm up from ambient. With
 * `stops`, the pump is switched off and on again: stopped, it turns no more (no flow, no current,
 * vibration at the ambient floor, pressure at the static head), its motor and water cool towards
 * ambient, and at the restart they warm up again from where they got to, as after a cold start.
 */
import type { Reading } from '../../buffer/types.js';
import { DutySchedule, type DemandStep } from './duty.js';
import { FaultSchedule, type FaultNow } from './faults.js';
import { SimulatorError, validateOptions, type FaultEvent, type FaultKind, type SimulatorOptions, type StopEvent } from './options.js';
import {
  ALPHA,
  DAY_MS,
  DEMAND_TAU_S,
  ETA_DROOP,
  FOULING_TAU_MS,
  H_STATIC,
  LINE_OHMS,
  NO_LOAD,
  VALVE_MAX_DROP,
  drawParams,
  dutyResistance,
  lag,
  ou,
  quantisePressure,
  round,
  rss,
  valveResistance,
  type DutyPoint,
  type PumpParams,
} from './physics.js';
import { Rng } from './rng.js';
import { StopSchedule } from './stops.js';

/** Fault effects on the physics, from a fault kind and its current severity (0–1). */
interface Effects {
  headLoss: number;
  resistance: number;
  leak: number;
  bearing: number;
  cavitation: number;
}

const NO_EFFECTS: Effects = { headLoss: 0, resistance: 1, leak: 0, bearing: 0, cavitation: 0 };

/**
 * How far the sensors wander, tuned to SKAB's anomaly-free recording: its swings (sd of minute
 * means minus their 15-minute moving average, % of the mean) are Acc1 0.54, Acc2 0.23, flow 0.48,
 * correlated Acc1–Acc2 0.41, Acc1–flow 0.23, pressure–flow −0.05; its 1-s differences Acc1–Acc2
 * 0.42. The pump's speed moves every sensor at once, so it wanders little; each accelerometer and
 * the flow wander mostly on their own; the two accelerometers share a frame (a wander over
 * minutes) and part of their 1-s noise. (Until 2026-12-06 the speed alone moved them: swings
 * correlated 0.97–1.00.)
 */
const SPEED_SD = 0.0022;
interface Wander {
  sd: number;
  tauS: number;
}
/** Accelerometer 1, accelerometer 2, flow, and both accelerometers together (the frame they share). */
const OWN_WANDER: readonly Wander[] = [
  { sd: 0.018, tauS: 1800 },
  { sd: 0.012, tauS: 8 * 3600 }, // slow: SKAB's Acc2 swings little (0.23 %) but its level moves (sd 1.5 %)
  { sd: 0.0165, tauS: 1800 },
  { sd: 0.0021, tauS: 120 },
];
const ACC_NOISE = 0.005;
/**
 * Thermal time constants (s): the motor housing, and the water of the loop (with the pump's heat
 * in it). From a start at ambient the water then rises at ~0.6–0.8 °C/h two hours in, as SKAB's
 * thermocouple late in its anomaly-free run (~0.8 °C/h).
 */
const MOTOR_TAU_S = 1200;
const WATER_TAU_S = 7200;
/** Correlation of the two accelerometers' 1-s noise. */
const ACC_NOISE_SHARED = 0.65;
/**
 * A stopped pump: what each accelerometer picks up from its surroundings (g RMS; the running pump's
 * 0.2–0.27 g are 20–30 times more), varying by this share from second to second; and the current
 * transmitter's noise about its zero (A; a reading below zero reads zero).
 */
const VIB_FLOOR: readonly [number, number] = [0.009, 0.011];
const VIB_FLOOR_NOISE = 0.15;
const CURRENT_ZERO_NOISE = 0.01;

export class PumpSimulator {
  readonly pumpId: string;
  readonly periodMs: number;
  private readonly rng: Rng; // base stream: a fixed number of draws per reading
  private readonly faultRng: Rng; // noise while a fault lasts (its draws depend on the readings taken)
  private readonly sensorRng: Rng; // each sensor's own wander: a fixed number of draws per reading
  private readonly params: PumpParams;
  private readonly schedule: FaultSchedule;
  private readonly duty: DutySchedule;
  private readonly stops: StopSchedule;
  private readonly startTs: number;
  private lastTs: number | null = null;
  /** Wander of the speed about its set point, and of the system resistance about the duty's. */
  private n: number;
  private r: number;
  /** The system resistance of the duty point, following steps in demand with a lag. */
  private dutyR = Number.NaN;
  private supply: number;
  private pressureDrift: number;
  private thermoDrift: number;
  private flowDrift: number;
  /** Relative wander of accelerometer 1, accelerometer 2, the flow, and both accelerometers (OWN_WANDER). */
  private readonly own: number[];
  private cavitationPhase = 0;
  private motorT = Number.NaN;
  /** `start: 'cold'`: the first reading is the pump's start from ambient temperature. */
  private readonly cold: boolean;
  private waterT = Number.NaN;
  private readonly counts: [number, number, number] = [Number.NaN, Number.NaN, Number.NaN];

  constructor(opts: SimulatorOptions) {
    validateOptions(opts);
    this.pumpId = opts.pumpId;
    this.periodMs = opts.periodMs ?? 1000;
    this.startTs = opts.startTs;
    this.cold = opts.start === 'cold';
    this.rng = new Rng(opts.seed);
    this.faultRng = new Rng(opts.seed, 0x5eee);
    // a stream of its own: the schedule is then the seed's alone, whatever the period or skipped ticks
    this.schedule = new FaultSchedule(opts, new Rng(opts.seed, 0x5eed));
    this.duty = new DutySchedule(opts.duty === undefined || opts.duty === 'seeded' ? null : opts.duty, opts.startTs, new Rng(opts.seed, 0xd07));
    this.stops = new StopSchedule(opts, new Rng(opts.seed, 0x5709));
    this.params = drawParams(this.rng);
    this.n = 1 + 0.012 * this.rng.normal();
    this.r = 1 + 0.015 * this.rng.normal();
    this.supply = this.params.supply + 2 * this.rng.normal();
    this.pressureDrift = 0.02 * this.rng.normal();
    this.thermoDrift = 0.15 * this.rng.normal();
    this.flowDrift = 0.01 * this.rng.normal();
    this.sensorRng = new Rng(opts.seed, 0x5e75);
    this.own = OWN_WANDER.map((w) => w.sd * this.sensorRng.normal());
  }

  /** The pump's own duty point (speed and flow relative to the design point), before any step in demand. */
  get dutyPoint(): Readonly<DutyPoint> {
    return this.duty.own;
  }

  /** Faults that have begun, with their (planned) end; a fault covers startTs ≤ ts < endTs. */
  get faultLog(): readonly FaultEvent[] {
    return this.schedule.log;
  }

  /** Faults under way at the last reading, with their peak and their severity then (the demo's /status). */
  get faultsUnderWay(): readonly FaultNow[] {
    return this.schedule.underWay;
  }

  /** Stops that have begun, with their end; a stop covers startTs ≤ ts < endTs. */
  get stopLog(): readonly StopEvent[] {
    return this.stops.log;
  }

  /** Steps in demand met so far (the duty point asked for, before and after; the flow follows within seconds). */
  get demandLog(): readonly DemandStep[] {
    return this.duty.log;
  }

  /**
   * The next reading: at the previous timestamp + periodMs (the first at startTs), or at `atTs`
   * when given (real-time sources); `atTs` must be later than the previous reading. `fault` labels
   * it (null: normal; a stopped pump's reading is normal, as nothing of a fault shows then);
   * `stopped`: the pump was off.
   */
  next(atTs?: number): { reading: Reading; fault: FaultKind | null; stopped: boolean } {
    const ts = atTs ?? (this.lastTs === null ? this.startTs : this.lastTs + this.periodMs);
    if (!Number.isFinite(ts) || (this.lastTs !== null && !(ts > this.lastTs))) {
      const msg = `simulator ${this.pumpId}: reading time ${String(ts)} is not after the previous one (${String(this.lastTs)})`;
      throw new SimulatorError('PW_SIM_TS_NOT_INCREASING', msg);
    }
    const dtS = this.lastTs === null ? this.periodMs / 1000 : (ts - this.lastTs) / 1000;
    this.lastTs = ts;
    const { fault, wear } = this.schedule.at(ts);
    const effects = fault ? this.effects(fault.kind, fault.severity, dtS, this.duty.at(ts)) : NO_EFFECTS;
    // a worn bearing stays worn whatever else happens; the reading is labelled with the other fault, if any
    const fx = wear === null ? effects : { ...effects, bearing: Math.max(effects.bearing, wear) };
    const stopped = this.stops.at(ts);
    // a fault that spans a stop goes on (its severity grows with time) but shows nothing while stopped
    const label = stopped ? null : (fault?.kind ?? (wear === null ? null : 'bearing-wear'));
    return { reading: { pumpId: this.pumpId, ts, values: this.step(ts, dtS, fx, !stopped) }, fault: label, stopped };
  }

  private effects(kind: FaultKind, severity: number, dtS: number, duty: DutyPoint): Effects {
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
        // a valve closing part way: the system resistance rises until the flow is down by severity × 23 %
        return { ...NO_EFFECTS, resistance: valveResistance(VALVE_MAX_DROP * severity, duty) };
    }
  }

  /**
   * One reading. Every random stream draws the same numbers whether the pump runs or not (`fxDrawn`
   * decides the fault's draws): a stop changes its own readings and the temperatures after it, nothing else.
   */
  private step(ts: number, dtS: number, fxDrawn: Effects, running: boolean): Record<string, number> {
    const fx = running ? fxDrawn : NO_EFFECTS;
    const p = this.params;
    const z = this.rng;
    this.n = ou(this.n, 1, SPEED_SD, 900, dtS, z.normal());
    this.r = ou(this.r, 1, 0.015, 1800, dtS, z.normal());
    this.supply = ou(this.supply, p.supply, 2, 600, dtS, z.normal());
    this.pressureDrift = ou(this.pressureDrift, 0, 0.02, 86_400, dtS, z.normal());
    this.thermoDrift = ou(this.thermoDrift, 0, 0.15, 86_400, dtS, z.normal());
    this.flowDrift = ou(this.flowDrift, 0, 0.01, 3 * 86_400, dtS, z.normal());
    const own = this.own;
    OWN_WANDER.forEach((w, i) => (own[i] = ou(own[i] as number, 0, w.sd, w.tauS, dtS, this.sensorRng.normal())));
    const [acc1Own, acc2Own, flowOwn, accShared] = own as [number, number, number, number];
    const accNoiseShared = this.sensorRng.normal(); // what both accelerometers pick up at the same instant

    // hydraulics: a leak between pump and flow meter lets a share of the pump's flow escape
    // the duty point: the speed set, and the system resistance that gives the flow asked for
    const duty = this.duty.at(ts);
    const targetR = dutyResistance(duty);
    this.dutyR = Number.isNaN(this.dutyR) ? targetR : lag(this.dutyR, targetR, DEMAND_TAU_S, dtS);
    const speed = running ? duty.speed * this.n : 0;
    const fouling = 1 + p.fouling * (1 - Math.exp(-(ts - this.startTs) / FOULING_TAU_MS));
    const pumpHead = speed * speed * (1 + ALPHA) * (1 - fx.headLoss);
    const resistance = this.dutyR * this.r * fouling * fx.resistance * (1 - fx.leak) ** 2;
    const q2 = Math.max(0, (pumpHead - H_STATIC) / (ALPHA + resistance * (1 - H_STATIC)));
    const q = Math.sqrt(q2);
    // stopped: no flow; a check valve holds the system's static head on the discharge side
    const h = running ? pumpHead - ALPHA * q2 : H_STATIC;
    const offDesign = running ? q / speed - 1 : 0;
    const eta = Math.max(0.3, 1 - ETA_DROOP * offDesign * offDesign);
    const shaft = running ? ((q * h) / eta) * (1 + 0.06 * fx.bearing) : 0;

    // electrics: constant-power share draws more current on a weak supply; a stopped motor draws none
    const current = running ? p.current * (NO_LOAD + (1 - NO_LOAD) * shaft) * (p.supply / this.supply) : 0;
    const volts = this.supply - LINE_OHMS * current;
    const iRel = current / p.current;

    // thermal: motor housing follows copper losses (and bearing friction), water follows pump power
    const ambient = p.ambient + 1.5 * Math.sin(2 * Math.PI * (ts / DAY_MS - 0.375));
    // stopped: no losses, no pump power: both cool towards ambient with the same time constants
    const motorTarget = running ? ambient + p.motorRise * (0.65 + 0.35 * iRel * iRel) + 8 * fx.bearing : ambient;
    const waterTarget = ambient + p.waterRise * shaft;
    // first reading: already running (at its running temperatures), or a cold start from ambient
    const first = this.cold ? ambient : null;
    this.motorT = lag(Number.isNaN(this.motorT) ? (first ?? motorTarget) : this.motorT, motorTarget, MOTOR_TAU_S, dtS);
    this.waterT = lag(Number.isNaN(this.waterT) ? (first ?? waterTarget) : this.waterT, waterTarget, WATER_TAU_S, dtS);

    // vibration: shaft harmonics ∝ n², blade-pass grows off design, bearing tones, cavitation noise
    const n2 = speed * speed;
    const bladePass = n2 * (1 + 4 * offDesign * offDesign);
    const broadband = fxDrawn.cavitation > 0 ? fx.cavitation * (1 + 0.6 * Math.abs(this.faultRng.normal())) : 0;
    // stopped: the ambient floor, which a running pump's 20–30 times stronger vibration drowns
    const acc1 = running ? p.vib * rss(0.19 * n2, 0.06 * n2, 0.07 * bladePass, 0.25 * fx.bearing, 0.15 * broadband) : VIB_FLOOR[0];
    const acc2 = running ? p.vib * rss(0.2 * n2, 0.14 * n2, 0.12 * bladePass, 0.12 * fx.bearing, 0.18 * broadband) : VIB_FLOOR[1];

    // measurement
    const sampling = z.normal(); // shared by current and voltage: same sampling instant
    const cavitationFlow = fxDrawn.cavitation > 0 ? 3 * fx.cavitation * this.faultRng.normal() : 0;
    const flowTrue = p.flow * q * (1 - fx.leak) * (1 + this.flowDrift) * (1 + flowOwn);
    const accNoiseSd = running ? ACC_NOISE : VIB_FLOOR_NOISE;
    const accNoise = (zOwn: number): number =>
      1 + accNoiseSd * (ACC_NOISE_SHARED * accNoiseShared + Math.sqrt(1 - ACC_NOISE_SHARED ** 2) * zOwn);
    // stopped: the current transmitter's own noise about zero (the running motor's spread goes with its load)
    const currentReading = (zi: number): number =>
      Math.max(0, running ? current * (1 + 0.08 * sampling) + (0.14 + 0.153 * current) * bounded(zi) : CURRENT_ZERO_NOISE * bounded(zi));
    const values: Record<string, number> = {
      Accelerometer1RMS: round(acc1 * (1 + acc1Own + accShared) * accNoise(z.normal()), 1e6),
      Accelerometer2RMS: round(acc2 * (1 + acc2Own + accShared) * accNoise(z.normal()), 1e6),
      Current: round(currentReading(z.normal()), 1e5),
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

/**
 * A normal draw bounded smoothly to ±2.5 (2.5·tanh(z/2.5): sd 0.88, nearly z within ±1.5). SKAB's
 * motor current spreads with its level (sd 0.49 A at 2.4 A in anomaly-free.csv, 0.27 A at 1.0 A in
 * valve1) and its lower tail is light (lowest readings 3.2 and 2.4 sd below the mean): a running
 * motor never reads 0 A. Unbounded, a pump at 1.6 A read 0 A about once in 15 000 readings, which a
 * stopped-when rule (inference/stopped.ts) calls a stop.
 */
function bounded(z: number): number {
  return 2.5 * Math.tanh(z / 2.5);
}
