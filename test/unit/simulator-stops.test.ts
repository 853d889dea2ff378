/**
 * The simulator's stops (agent/simulator/stops.ts and the stopped physics in pump.ts): what a
 * stopped pump reads, how it cools and warms up again, that the stops are the seed's alone, and
 * that a pump without stops reads exactly as before.
 */
import { describe, expect, it } from 'vitest';
import { DESIGN_DUTY, PumpSimulator, SimulatorError, type FaultKind, type SimulatorOptions } from '../../agent/simulator.js';
import { isStopped, type StopCondition } from '../../inference/contract.js';

const T0 = Date.UTC(2026, 0, 1);
const MIN = 60_000;
const HOUR = 3_600_000;
const FLOW = 'Volume Flow RateRMS';

type Out = ReturnType<PumpSimulator['next']>;

function run(opts: Partial<SimulatorOptions>, rows: number): { sim: PumpSimulator; out: Out[] } {
  const sim = new PumpSimulator({ pumpId: 'p1', seed: 3, startTs: T0, duty: DESIGN_DUTY, ...opts });
  return { sim, out: Array.from({ length: rows }, () => sim.next()) };
}

const col = (rows: readonly Out[], f: string): number[] => rows.map((r) => r.reading.values[f] as number);
const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('simulated stops', () => {
  // running 2 h, stopped 2 h (from 02:00), running 4 h; and the same pump never stopped
  const STOP = { startTs: T0 + 2 * HOUR, durationMs: 2 * HOUR };
  const stopped = run({ stops: [STOP] }, 8 * 3600).out;
  const never = run({}, 8 * 3600).out;
  const [from, to] = [2 * 3600, 4 * 3600]; // indexes of the stop's first reading and of the restart
  const during = stopped.slice(from, to);
  const running = never.slice(from, to);

  it('marks the readings of a stop and only those, and labels them normal', () => {
    expect(stopped.map((r, i) => r.stopped === (i >= from && i < to))).not.toContain(false);
    expect(during.every((r) => r.fault === null)).toBe(true);
  });

  it('reads no flow (meter noise only), ~0 A never below 0, vibration at the ambient floor, the supply voltage', () => {
    expect(Math.max(...col(during.slice(3), FLOW))).toBeLessThanOrEqual(1); // the counter's 3-sample average lets the last flow go first
    expect(mean(col(during.slice(3), FLOW))).toBeLessThan(0.2);
    const amps = col(during, 'Current');
    expect(Math.min(...amps)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...amps)).toBeLessThan(0.05);
    for (const acc of ['Accelerometer1RMS', 'Accelerometer2RMS']) {
      // SKAB's slowest running pump (valve1, at about a third of its speed) reads 0.026 g at least
      expect(Math.max(...col(during, acc))).toBeLessThan(0.025);
      expect(Math.min(...col(during, acc))).toBeGreaterThan(0.002);
      expect(mean(col(running, acc))).toBeGreaterThan(15 * mean(col(during, acc)));
    }
    // no current, no sag on the line (1.5 Ω × ~2.4 A): the voltage stays, a little higher
    const rise = mean(col(during, 'Voltage')) - mean(col(running, 'Voltage'));
    expect(rise).toBeGreaterThan(1.5);
    expect(rise).toBeLessThan(6);
  });

  it('lets the pressure fall to the static head (the pump head gone, a check valve holding the column)', () => {
    const drop = mean(col(running, 'Pressure')) - mean(col(during, 'Pressure'));
    // the design head of ~2 bar less its static 30 %: ~1.4 bar
    expect(drop).toBeGreaterThan(1.2);
    expect(drop).toBeLessThan(1.6);
  });

  it('cools the motor (τ 20 min) and the water (τ 2 h) towards ambient, the same time constants as a cold start', () => {
    const motor = col(stopped, 'Temperature');
    const water = col(stopped, 'Thermocouple');
    const ambient = mean(col(run({ start: 'cold' }, 60).out, 'Temperature').slice(0, 10));
    const share = (xs: number[], after: number): number => ((xs[from - 1] as number) - (xs[from + after] as number)) / ((xs[from - 1] as number) - ambient);
    expect(share(motor, 1200)).toBeGreaterThan(0.5); // 1 − e⁻¹ = 0.63 after one time constant
    expect(share(motor, 1200)).toBeLessThan(0.75);
    expect(motor[to - 1]! - ambient).toBeLessThan(3); // six time constants: at ambient (±its daily swing)
    const waterDrop = (water[from - 1]! - water[to - 1]!) / (water[from - 1]! - ambient);
    expect(waterDrop).toBeGreaterThan(0.45);
    expect(waterDrop).toBeLessThan(0.8);
    const minutes = (xs: number[]): number[] => Array.from({ length: 120 }, (_, m) => mean(xs.slice(from + 60 * m, from + 60 * m + 60)));
    const falls = (xs: number[]): number => minutes(xs).slice(1).filter((x, m) => x < minutes(xs)[m]!).length;
    expect(falls(motor)).toBeGreaterThan(100);
  });

  it('restarts at once and warms up from where it got to; vibration, current, pressure and voltage read as if it never stopped', () => {
    const motor = col(stopped, 'Temperature');
    const warm = mean(col(never, 'Temperature').slice(to, to + 600));
    expect(Math.abs(motor[to]! - motor[to - 1]!)).toBeLessThan(1);
    const regained = (motor[to + 1200]! - motor[to - 1]!) / (warm - motor[to - 1]!);
    expect(regained).toBeGreaterThan(0.5);
    expect(regained).toBeLessThan(0.8);
    // the water is still below its running temperature hours later (τ 2 h)
    expect(mean(col(stopped, 'Thermocouple').slice(-600))).toBeLessThan(mean(col(never, 'Thermocouple').slice(-600)));
    for (const f of ['Accelerometer1RMS', 'Accelerometer2RMS', 'Current', 'Pressure', 'Voltage']) {
      expect(col(stopped, f).slice(to), f).toEqual(col(never, f).slice(to));
    }
    expect(col(stopped, FLOW).slice(to + 3)).toEqual(col(never, FLOW).slice(to + 3)); // after the counter's three samples
    expect(stopped.slice(0, from)).toEqual(never.slice(0, from));
  });

  it('is stopped by a stopped-when rule on its current, its flow, or both (the bundled model: Current < 0.2 & flow < 5), never while running; the flow from a stop\'s third reading', () => {
    const { out } = run({ seed: 11, duty: 'seeded', periodMs: 10_000, stops: { perDay: 8, minMinutes: 5, maxMinutes: 90 }, faults: 'random' }, 6 * 8640);
    const current: StopCondition = { feature: 'Current', below: 0.2 };
    const flow: StopCondition = { feature: FLOW, below: 5 };
    const by = (...when: StopCondition[]): boolean[] => out.map((r) => isStopped({ when, afterStartSeconds: 0 }, r.reading.values));
    expect(out.filter((r) => r.stopped).length).toBeGreaterThan(1000);
    expect(by(current)).toEqual(out.map((r) => r.stopped));
    // the flow counter's 3-sample average carries the running flow over a stop's first two readings: stopped by the flow from the third
    const fromThird = out.map((r, i) => r.stopped && out[i - 1]?.stopped === true && out[i - 2]?.stopped === true);
    expect(by(flow)).toEqual(fromThird);
    expect(by(current, flow)).toEqual(fromThird);
  });

  it('draws random stops from the seed alone: about perDay a day, each within its minutes, at least 10 min of running apart, the same at any period', () => {
    const stops = { perDay: 6, minMinutes: 10, maxMinutes: 60 };
    const days = 20;
    const at1s = run({ seed: 7, stops, duty: 'seeded' }, 2 * 86_400).sim.stopLog;
    const { sim } = run({ seed: 7, stops, duty: 'seeded', periodMs: 10_000 }, days * 8640);
    const log = sim.stopLog;
    expect(log.length).toBeGreaterThan(days * 6 * 0.75);
    expect(log.length).toBeLessThan(days * 6 * 1.25);
    for (const s of log) {
      expect(s.endTs - s.startTs).toBeGreaterThanOrEqual(10 * MIN);
      expect(s.endTs - s.startTs).toBeLessThanOrEqual(60 * MIN);
    }
    log.slice(1).forEach((s, i) => expect(s.startTs - log[i]!.endTs).toBeGreaterThanOrEqual(10 * MIN));
    expect(log.slice(0, at1s.length)).toEqual(at1s);
    expect(run({ seed: 7, stops, duty: 'seeded' }, 2 * 86_400).out).toEqual(run({ seed: 7, stops, duty: 'seeded' }, 2 * 86_400).out);
    expect(run({ seed: 8, stops, duty: 'seeded' }, 2 * 86_400).sim.stopLog).not.toEqual(at1s);
  });

  it('moves no other draw: without stops (none, [], or absent) the readings are the same; with them, the duty point and the fault schedule too', () => {
    const opts: Partial<SimulatorOptions> = { seed: 5, duty: 'seeded', faults: 'random', meanFaultIntervalMs: HOUR };
    const base = run(opts, 20_000);
    expect(run({ ...opts, stops: 'none' }, 20_000).out).toEqual(base.out);
    expect(run({ ...opts, stops: [] }, 20_000).out).toEqual(base.out);
    const withStops = run({ ...opts, stops: { perDay: 12, minMinutes: 10, maxMinutes: 40 } }, 20_000);
    expect(withStops.sim.stopLog.length).toBeGreaterThan(0);
    expect(withStops.sim.faultLog).toEqual(base.sim.faultLog);
    expect(withStops.sim.dutyPoint).toEqual(base.sim.dutyPoint);
  });

  it('a fault under way through a stop shows nothing then: its stopped readings are labelled normal, those before and after with the fault', () => {
    const leak = { kind: 'leak' as FaultKind, startTs: T0 + HOUR, durationMs: HOUR };
    const { out, sim } = run({ faults: [leak], stops: [{ startTs: T0 + HOUR + 20 * MIN, durationMs: 20 * MIN }] }, 2.5 * 3600);
    const labels = out.map((r) => r.fault);
    expect(labels.slice(3600, 3600 + 1200).every((l) => l === 'leak')).toBe(true);
    expect(labels.slice(4800, 6000).every((l) => l === null)).toBe(true);
    expect(labels.slice(6000, 7200).every((l) => l === 'leak')).toBe(true);
    expect(sim.faultLog).toEqual([{ kind: 'leak', pumpId: 'p1', startTs: leak.startTs, endTs: leak.startTs + leak.durationMs }]);
  });

  it('refuses bad stops with a stable code and a message that names what is wrong', () => {
    const bad: Array<[SimulatorOptions['stops'], RegExp]> = [
      [{ perDay: 0, minMinutes: 10, maxMinutes: 20 }, /perDay must be > 0/],
      [{ perDay: 4, minMinutes: 30, maxMinutes: 20 }, /maxMinutes must be ≥ minMinutes/],
      [{ perDay: 40, minMinutes: 30, maxMinutes: 40 }, /less than 10 min of running between stops/],
      [[{ startTs: T0, durationMs: 0 }], /stop plan 0: durationMs must be > 0/],
      [[{ startTs: T0, durationMs: HOUR }, { startTs: T0 + MIN, durationMs: MIN }], /starts before the one before it ends/],
    ];
    for (const [stops, message] of bad) {
      let err: unknown;
      try {
        new PumpSimulator({ pumpId: 'p1', seed: 1, startTs: T0, stops });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SimulatorError);
      expect((err as SimulatorError).code).toBe('PW_SIM_BAD_OPTION');
      expect((err as Error).message).toMatch(message);
    }
  });
});
