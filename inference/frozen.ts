/**
 * Frozen sensors: a transmitter that repeats its last value (a dead 4–20 mA loop the PLC holds, a
 * stuck float, a hung Modbus register). Its value sits inside the normal range, so the models do
 * not see it. A model's `pumpwatch.stuck_after` (inference/contract.ts StuckAfter) names the
 * features that were noisy analog signals in its training rows and, for each, how many identical
 * readings in a row make the sensor frozen. Per pump, the run of identical values of each such
 * feature is counted while the pump runs: a reading its model's stopped-when rule calls stopped
 * ends every run (a stopped pump's current may sit at 0; one held as a stop's possible beginning,
 * `pump stopping`, counts as running: a stop after it ends the run anyway), and so does a pause
 * in the readings; a missing value neither extends a run nor ends it. A run reaching its bound is a frozen sensor
 * until the value changes. Scoring goes on as before: this only says so.
 */
import type { StuckAfter } from './contract.js';
import type { Values } from './history.js';

/** A sensor frozen now: since the first reading of its run (epoch ms), the readings in the run so far, the value it holds. */
export interface FrozenSensor {
  feature: string;
  kind: 'frozen';
  since: number;
  readings: number;
  value: number;
  /** The model's bound: this many identical readings in a row make it frozen. */
  after: number;
}

/** What observe returns at nearly every reading: no sensor became frozen (shared, not allocated per reading). */
const NONE: readonly FrozenSensor[] = Object.freeze([]);

interface Run {
  value: number;
  since: number;
  count: number;
  /** Told (returned by observe) once: a run is found frozen once, whatever bound is in force after. */
  found: boolean;
}

/** One pump's runs of identical values, per feature the pump's model bounds. */
export class FrozenWatch {
  private runs = new Map<string, Run>();

  /**
   * A reading of the pump at `ts`: `running` false when its model's stopped-when rule calls it
   * stopped. Returns the sensors that became frozen at this reading (empty almost always): a run
   * at or past its bound not found before, so a swap to a model with a lower bound finds a run
   * already past it at its next reading (it never equals the bound then). A run found stays found
   * until it ends: a swap to a higher bound does not find it a second time.
   *
   * `told` false: a reading read back at a restart that the pump's current model did not score
   * (engine.seed): a run reaching the bound there is returned but not marked found, as what was
   * told before the restart under another model's bound is unknown; it is found at the next reading.
   */
  observe(bounds: StuckAfter | undefined, values: Values, ts: number, running: boolean, told = true): readonly FrozenSensor[] {
    if (!running) {
      this.runs.clear();
      return NONE;
    }
    if (bounds === undefined) return NONE;
    let began: FrozenSensor[] | null = null;
    for (const feature in bounds) {
      const v = values[feature];
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      const run = this.runs.get(feature);
      if (run !== undefined && run.value === v) {
        run.count++;
        if (!run.found && run.count >= (bounds[feature] as number)) {
          run.found = told;
          (began ??= []).push(frozen(feature, run, bounds[feature] as number));
        }
      } else if (run !== undefined) {
        // a new run, in the old one's object: a noisy sensor starts one at nearly every reading,
        // and an object per feature per reading was garbage enough to grow the agent's heap by ~20 MB
        run.value = v;
        run.since = ts;
        run.count = 1;
        run.found = false;
      } else this.runs.set(feature, { value: v, since: ts, count: 1, found: false });
    }
    return began ?? NONE;
  }

  /** The pump's sensors frozen now by `bounds` (its model's), in the model's order. */
  faults(bounds: StuckAfter | undefined): FrozenSensor[] {
    if (bounds === undefined) return [];
    const out: FrozenSensor[] = [];
    for (const feature in bounds) {
      const run = this.runs.get(feature);
      const after = bounds[feature] as number;
      if (run !== undefined && run.count >= after) out.push(frozen(feature, run, after));
    }
    return out;
  }

  /** Forgets every run (a pause in the readings, the pump's clock moved back). */
  clear(): void {
    this.runs.clear();
  }

  /** A copy of the runs, to go back to when the readings just observed are forgotten (their commit failed). */
  snapshot(): Map<string, Run> {
    return new Map([...this.runs].map(([f, r]) => [f, { ...r }]));
  }

  restore(runs: Map<string, Run>): void {
    this.runs = runs;
  }
}

function frozen(feature: string, run: Run, after: number): FrozenSensor {
  return { feature, kind: 'frozen', since: run.since, readings: run.count, value: run.value, after };
}
