/**
 * Fault detection as in the field, on the project's own simulated pumps: each algorithm fitted on
 * three fault-free days of one pump (as `train` fits a pump on its range: several days, so the
 * daily cycle and the operating point's wander are in it), then the next seven days scored by the
 * agent's own engine as it scores a pump live. Those days hold a slot every six hours for a fault
 * (cavitation, a bearing-wear slot left empty, leak, valve, in turn, each at a seeded time in the
 * first 3.5 h of its slot), one bearing wear per pump (over `WEAR_DAYS` whole days at a place of its
 * own in the week, growing until the bearing is replaced: real wear grows over days to weeks; no
 * other fault or offset meanwhile, so that each is found on its own) and, in the last two hours of
 * each slot, half an hour in which one sensor reads
 * `--bias-sd` (2) of its training standard deviations off: a transmitter out of calibration, the
 * pump itself fine (the sensors in turn, each up and down in turn; 2 is the size of `train`'s
 * smallest synthetic fault). Kinds and sensors move on by one slot every day, so each comes at
 * every time of day. Cavitation, bearing wear and leaks come at the simulator's full severity (the
 * wear reaches it at its end);
 * valve faults in turn at three sizes, the middles of the thirds of SKAB's valve1 flow drops
 * (2.5, 6 and 12 % of the flow; SKAB's range 1–23 %), and are also counted by size.
 *
 * SKAB's protocol (bench/quality) trains on 400 rows, about 7 minutes: a model then cannot know
 * the pump's normal range. This is the other regime, the one `train` works in; neither alone says
 * which algorithm is best for the product. Figures only: nothing passes or fails, and nothing here
 * was tuned.
 *
 * `--fleet`: the pumps have no model of their own (a gateway before the first `train`): the agent's
 * bundled default model scores the standalone agent's own simulated pumps (sim-pump-1, …, one
 * reading a second), and beside it an mset fitted on the same readings.
 *
 * `--stops`: the pumps stop and start (on average `STOPS.perDay` stops a day of `STOPS.minMinutes`–
 * `STOPS.maxMinutes` minutes, random from each pump's seed), the training days too. The per-pump
 * models are fitted with a stopped-when rule (`--stopped-when`, default "Current<0.2 & Volume Flow
 * RateRMS<5", and `--after-start`, default 1800 s: the bundled model's), parsed by the trainer's own option parser
 * and applied by its own fit (the stopped and starting rows left out), and one more mset without a
 * rule (`mset-norule`) shows what the rule does; `--fleet --stops` scores the bundled model (its own
 * rule, its warm-up set to `--after-start` seconds when that is given) and the fleet mset fitted with
 * the rule. Reported too: false alarms during stops, during
 * warm-ups (the first `--after-start` seconds after a restart) and while running, the readings left
 * unscored as stopped or starting, and the faults that overlapped a stop or a warm-up.
 *
 * `--dead`: the sensor half-hours read the sensor's floor (0: a transmitter failed to its floor) on
 * the running pump instead of an offset ("sensor dead"). Per-pump models have no stopped-when rule
 * unless `--stopped-when` gives one; `--fleet --dead` scores the bundled model with its own.
 * `--stuck`: they repeat the value the sensor read just before instead ("sensor stuck": frozen).
 * Either way the sensor repeats one value over its half-hour, so the agent's frozen-sensor check
 * (the model's `pumpwatch.stuck_after`) may find it: counted per sensor beside the models, and
 * with `--dead` also found by the model or the check (the models' own figures unchanged).
 *
 * `--first-model HOURS` (or a list, `24,48,72`): the agent's first model fitted on the gateway
 * (README, "A first model fitted on the gateway"), with `--fleet`'s pumps and bundled model. The
 * bundled model scores each pump from its first reading, as the agent would; its rows (scores,
 * flags, stop reasons) are what the buffer would hold; the agent's check every 10 minutes of
 * reading time fits the pump's first model through the agent's own `fitFirstModelHere` on them
 * once they span HOURS of running (bench/field-first.ts: the job's own rules, so the hold-out check
 * may refuse it, and the pump is tried again after another HOURS), and the engine that scored the
 * pump switches the first model in. The pump's first hours are assumed normal: no fault or offset
 * is planned before the first fit that does not wait for more readings (or 2 × HOURS, if it still
 * waits then); the seven days from there are scored both by that gateway (`first-Nh`: the bundled
 * model until the first model is in) and by the bundled model alone, on the same readings. Also
 * counted: the fits refused, and the false alarms in the day after each step in demand of the
 * simulator (its `demandLog`: the flow asked for moves along the pump's curve, every few hours to
 * days), against those at other times.
 *
 *   node dist/bench/field.js [--pumps 5] [--period-s 10] [--bias-sd 2] [--stops] [--dead | --stuck] [--stopped-when RULE --after-start S]
 *   node dist/bench/field.js --fleet [--pumps 3] [--period-s 1] [--bias-sd 2] [--stops [--after-start S]] [--dead | --stuck]
 *   node dist/bench/field.js --first-model 24,48,72 [--pumps 3] [--period-s 1] [--bias-sd 2] [--stops [--after-start S]] [--dead | --stuck]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FAULT_KINDS, PumpSimulator, SIMULATED_FEATURES, VALVE_MAX_DROP, type FaultKind, type FaultPlan } from '../agent/simulator.js';
import { packageRoot } from '../agent/paths.js';
import { simulatedPumpSeed } from '../agent/simulated-source.js';
import type { PredictionRow, Reading } from '../buffer/types.js';
import { META_KEYS, describeStoppedRule, readModelMetadata, stoppedRuleToJson, type StoppedRule } from '../inference/contract.js';
import { DEFAULT_MODEL_KEY, InferenceEngine } from '../inference/engine.js';
import { LoadedModel } from '../inference/model.js';
import { isStartingReason, isStoppedReason, isStoppingReason } from '../inference/stopped.js';
import type { CsvTable } from '../trainer/csv.js';
import { parseStoppedWhenOption } from '../trainer/data/stopped.js';
import { mulberry32 } from '../trainer/eval/criterion.js';
import { lowerBound } from '../trainer/linalg/stats.js';
import { fitTable } from '../trainer/fit.js';
import { ModelProto } from '../trainer/onnx/proto.js';
import { FIRST_MODEL_CHECK_MS, GatewayPump, describeFit, emptyStepCounts, tallySteps, type StepAt, type StepCounts } from './field-first.js';
import { fitSimulated, fmt } from './support.js';

const { values: args } = parseArgs({
  options: {
    pumps: { type: 'string' },
    'period-s': { type: 'string' },
    'bias-sd': { type: 'string', default: '2' },
    fleet: { type: 'boolean', default: false },
    stops: { type: 'boolean', default: false },
    dead: { type: 'boolean', default: false },
    stuck: { type: 'boolean', default: false },
    'stopped-when': { type: 'string' },
    'after-start': { type: 'string' },
    'first-model': { type: 'string' },
  },
});
/** `--first-model HOURS[,HOURS…]`: each pump's first model fitted on the gateway after that many hours of running (the agent's 1–720). */
const FIRST_HOURS = firstHoursOf(args['first-model']);
/** `--fleet`: no per-pump model; the agent's bundled default model, and an mset fitted on the same recipe, score the standalone pumps. */
const FLEET = args.fleet === true || FIRST_HOURS !== null;
/** `--stops`: the pumps stop and start, training days too (random stops from each pump's own seed). */
const STOPS = args.stops === true;
const STOP_PLAN = { perDay: 4, minMinutes: 10, maxMinutes: 120 } as const;
/** `--dead`: the sensor half-hours read 0 (a dead transmitter) instead of an offset; `--stuck`: the value it read last before. */
const DEAD = args.dead === true;
const STUCK = args.stuck === true;
/** The sensor half-hours repeat one value (`--dead`: 0; `--stuck`: the last read), which the frozen-sensor check is there to find. */
const REPEATS = DEAD || STUCK;
if (DEAD && STUCK) {
  process.stderr.write('bench/field: --dead and --stuck are two ways a sensor fails in its half-hours: give one\n');
  process.exit(2);
}
/**
 * The per-pump models' (and the fleet mset's) stopped-when rule, as `fit --stopped-when` takes it:
 * by default the bundled model's with `--stops` (and `--fleet --dead`), none otherwise. Two
 * conditions, as a rule on one sensor takes that sensor dying for a stop (a dead current
 * transmitter on a running pump reads 0 A: unscored, no alarm); a stop needs the flow low too.
 * The simulated flow meter averages its last three counts, so the first two readings of a stop
 * still carry the running flow (about 2/3 and 1/3 of it, well over 5 l/min): the stop counts from
 * the third (0–1 l/min from there on), those two are scored as running.
 */
const RULE_TEXT = args['stopped-when'] ?? (STOPS || (FLEET && DEAD) ? 'Current<0.2 & Volume Flow RateRMS<5' : undefined);
const AFTER_START_TEXT = args['after-start'] ?? (RULE_TEXT === undefined ? undefined : '1800');
const RULE = ruleOf(RULE_TEXT, AFTER_START_TEXT);
/**
 * `--fleet --after-start S`: the bundled model scores with its own rule but a warm-up of S seconds
 * (its metadata rewritten in memory; the model file is not touched). Without it, its own 1 800 s.
 */
const BUNDLED_AFTER_START = FLEET && args['after-start'] !== undefined ? RULE?.afterStartSeconds : undefined;
/** How long after a restart the bench counts a warm-up (the rule's warm-up; the bundled model's 1 800 s without one). */
const WARM_UP_MS = Number(AFTER_START_TEXT ?? '1800') * 1000;
/** Running false alarms that begin this soon after a warm-up ended are counted apart (the water takes hours to warm up). */
const AFTER_WARM_UP_MS = 2 * 3_600_000;
const PUMPS = Number(args.pumps ?? (FLEET ? 3 : 5));
/** The standalone agent's pumps read once a second; per-pump models are compared at the 10 s of a typical field gateway. */
const PERIOD_MS = Number(args['period-s'] ?? (FLEET ? 1 : 10)) * 1000;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 5, 1);
const TRAIN_DAYS = 3;
/**
 * Each pump starts this long before its training days (readings before T0 are dropped): a pump
 * trained on its range has been running for a while. (The simulator's pumps are running at their
 * first reading unless started cold; the figures of 2026-12-06 were measured with this preroll.)
 */
const PREROLL_MS = 3 * 3_600_000;
const SCORE_DAYS = 7;
const SLOT_MS = 6 * 3_600_000;
/** Fault durations: the middle of the simulator's random ranges (agent/simulator/faults.ts). */
const DURATION_MIN: Record<FaultKind, number> = { cavitation: 12, 'bearing-wear': 75, leak: 25, valve: 6 };
/**
 * A bearing wears this long before it is replaced (its severity grows from nothing to full over
 * it), over slots of its own (nothing else then): from the second, third, … day on each pump. Until
 * 2026-12-06 each bearing-wear slot held a 75-minute wear that grew and healed within it.
 */
const WEAR_DAYS = 2;
/** `mset-norule` (with `--stops`): an mset fitted on the same days with no stopped-when rule. */
const ALGORITHMS = FLEET ? ['bundled', 'mset-fleet'] : ['mset', 'mset-rel', 'pca', ...(STOPS ? ['mset-norule'] : [])];
const BIAS_SD = Number(args['bias-sd']);
const BIAS: 'sensor off' | 'sensor dead' | 'sensor stuck' = DEAD ? 'sensor dead' : STUCK ? 'sensor stuck' : 'sensor off';
const BIAS_MS = 30 * 60_000;
type Kind = FaultKind | 'sensor off' | 'sensor dead' | 'sensor stuck';
const KINDS: readonly Kind[] = [...FAULT_KINDS, BIAS];
const AFTERMATH_MS = 2 * 3_600_000;
/** Valve faults' flow drops, in turn: the middles of the thirds of SKAB's 16 valve1 drops (0.9–3.3, 4.5–8.3, 9.8–23 %). */
const VALVE_DROPS = [0.025, 0.06, 0.12] as const;
const dropLabel = (drop: number): string => `${fmt(100 * drop, 1)} %`;

/** `--first-model`'s hours, each as PUMPWATCH_FIRST_MODEL_AFTER_HOURS takes it (1 to 720); a bad one ends the bench with its message. */
function firstHoursOf(text: string | undefined): number[] | null {
  if (text === undefined) return null;
  const hours = text.split(',').map((h) => Number(h.trim()));
  if (hours.length === 0 || hours.some((h) => !(Number.isFinite(h) && h >= 1 && h <= 720))) {
    process.stderr.write(`bench/field: --first-model must be hours from 1 to 720 (as PUMPWATCH_FIRST_MODEL_AFTER_HOURS), or a list of them like 24,48,72; got ${JSON.stringify(text)}\n`);
    process.exit(2);
  }
  return hours;
}

/** The rule `--stopped-when` and `--after-start` give, through the trainer's own parser; a bad one ends the bench with its message. */
function ruleOf(text: string | undefined, afterStart: string | undefined): StoppedRule | undefined {
  try {
    return parseStoppedWhenOption(text, afterStart) ?? undefined;
  } catch (err) {
    process.stderr.write(`bench/field: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  }
}

/** Where a reading falls: the pump stopped, in the warm-up after a restart, or running. */
type Phase = 'stop' | 'warm-up' | 'running';
const PHASES: readonly Phase[] = ['stop', 'warm-up', 'running'];

interface StopCounts {
  /** False-alarm episodes by the phase they begin in; `afterWarmUp`: running ones within AFTER_WARM_UP_MS after a warm-up. */
  episodes: Record<Phase, number>;
  afterWarmUp: number;
  readings: Record<Phase, number>;
  /** Readings left unscored as stopped, and as starting (the rule's warm-up). */
  unscoredStopped: number;
  unscoredStarting: number;
  /** Faults (sensor offsets aside) with a reading in a stop or warm-up: found, all; missed with every reading unscored by the rule. */
  overlapFound: number;
  overlapAll: number;
  hidden: number;
}

interface KindCounts {
  events: number;
  detected: number;
  delaysMin: number[];
  readings: number;
  flagged: number;
}

interface Tally {
  normal: number;
  falseFlags: number;
  falseEpisodes: number;
  /** False alarms that begin within AFTERMATH_MS after a process fault ended (temperatures lag the fault by tens of minutes). */
  aftermathEpisodes: number;
  kinds: Record<Kind, KindCounts>;
  /** Sensor-bias events found / events, per sensor. */
  biasBySensor: Map<string, [number, number]>;
  /** Valve faults found / events, per flow drop. */
  valveBySize: Map<string, [number, number]>;
  stops: StopCounts;
  /** The agent's frozen-sensor check (the model's `pumpwatch.stuck_after`): see tallyFrozen. */
  frozen: FrozenCounts;
  /** When each false-alarm episode began (reading time), in the order counted. */
  falseEpisodeTs: number[];
}

interface FrozenCounts {
  /** Sensor half-hours found by the check / all, per sensor (meaningful with --dead or --stuck). */
  bySensor: Map<string, [number, number]>;
  /** Sensor half-hours found by the model (a flag, as `tally` counts it) or the check / all, per sensor. */
  eitherBySensor: Map<string, [number, number]>;
  /** Minutes from a half-hour's start to the check's finding. */
  delaysMin: number[];
  /** Findings outside a dead or frozen half-hour of that sensor: false ones. */
  falseFinds: number;
  falseBySensor: Map<string, number>;
}

interface PlannedEvent {
  kind: Kind;
  startTs: number;
  durationMs: number;
  /** The sensor that reads off (sensor bias only). */
  feature?: string;
  /** The flow drop at the fault's peak (valve only), as labelled in the output. */
  valveSize?: string;
}

interface Bias {
  startTs: number;
  durationMs: number;
  feature: string;
  /** Added to the sensor's readings: ±BIAS_SD of its training standard deviation. */
  offset: number;
}

/** Four faults a day after the training days, kinds in turn, each early in its six-hour slot, and a sensor bias late in each slot. */
function faultPlan(seed: number, sd: Readonly<Record<string, number>>, pump: number, from = T0 + TRAIN_DAYS * DAY): { plans: FaultPlan[]; biases: Bias[] } {
  const r = mulberry32(seed);
  const plans: FaultPlan[] = [];
  const biases: Bias[] = [];
  const biasesOf: Record<string, number> = {};
  const slotsPerDay = DAY / SLOT_MS;
  const wearFrom = slotsPerDay * (1 + ((pump - 1) % (SCORE_DAYS - WEAR_DAYS)));
  const wearTo = wearFrom + WEAR_DAYS * slotsPerDay;
  for (let slot = 0; slot < (SCORE_DAYS * DAY) / SLOT_MS; slot++) {
    if (slot >= wearFrom && slot < wearTo) continue; // the bearing wears: nothing else
    // Shifted by one every day, so each kind and each sensor comes at every time of day, not always in the same slot.
    const day = Math.floor((slot * SLOT_MS) / DAY);
    const kind = FAULT_KINDS[(slot + day) % FAULT_KINDS.length] as FaultKind;
    const durationMs = DURATION_MIN[kind] * 60_000;
    const slotTs = from + slot * SLOT_MS;
    const startTs = slotTs + Math.floor(r() * (3.5 * 3_600_000 - durationMs));
    if (kind === 'bearing-wear') {
      // the slot stays empty: the pump's one bearing wear runs over days (planned after this loop)
    } else if (kind === 'valve') {
      // Sizes in turn, starting elsewhere on each pump.
      const nthValve = plans.filter((p) => p.kind === 'valve').length;
      const drop = VALVE_DROPS[(nthValve + pump) % VALVE_DROPS.length] as number;
      plans.push({ kind, startTs, durationMs, peak: drop / VALVE_MAX_DROP });
    } else plans.push({ kind, startTs, durationMs });
    // Offset by the pump too: 28 slots do not divide among 8 sensors, and each pump starts the turn elsewhere.
    const feature = SIMULATED_FEATURES[(slot + day + pump) % SIMULATED_FEATURES.length] as string;
    // Each sensor up, then down, then up, … at its successive half-hours (starting down on every other pump).
    const nth = (biasesOf[feature] = (biasesOf[feature] ?? 0) + 1);
    biases.push({ startTs: slotTs + 4 * 3_600_000 + Math.floor(r() * (2 * 3_600_000 - BIAS_MS - 600_000)), durationMs: BIAS_MS, feature, offset: ((nth + pump) % 2 === 0 ? 1 : -1) * BIAS_SD * (sd[feature] as number) });
  }
  plans.push({ kind: 'bearing-wear', startTs: from + wearFrom * SLOT_MS, durationMs: WEAR_DAYS * DAY });
  return { plans, biases };
}

/** Standard deviation of each sensor over the training days (`spanMs` from T0) of the pump with this seed. */
function trainingSpread(seed: number, spanMs = TRAIN_DAYS * DAY): Record<string, number> {
  const sim = new PumpSimulator({ pumpId: 'spread', seed, startTs: T0 - PREROLL_MS, periodMs: PERIOD_MS, faults: 'none' });
  for (let i = 0; i < PREROLL_MS / PERIOD_MS; i++) sim.next();
  const sum: Record<string, number> = {};
  const sq: Record<string, number> = {};
  const n = spanMs / PERIOD_MS;
  for (let i = 0; i < n; i++) {
    for (const [f, v] of Object.entries(sim.next().reading.values)) {
      sum[f] = (sum[f] ?? 0) + (v as number);
      sq[f] = (sq[f] ?? 0) + (v as number) ** 2;
    }
  }
  return Object.fromEntries(Object.keys(sum).map((f) => [f, Math.sqrt(Math.max(0, (sq[f] as number) / n - ((sum[f] as number) / n) ** 2))]));
}

function emptyTally(): Tally {
  const kinds = Object.fromEntries(KINDS.map((k) => [k, { events: 0, detected: 0, delaysMin: [], readings: 0, flagged: 0 }])) as unknown as Record<Kind, KindCounts>;
  const valveBySize = new Map(VALVE_DROPS.map((d): [string, [number, number]] => [dropLabel(d), [0, 0]]));
  const zero = (): Record<Phase, number> => ({ stop: 0, 'warm-up': 0, running: 0 });
  const stops: StopCounts = { episodes: zero(), afterWarmUp: 0, readings: zero(), unscoredStopped: 0, unscoredStarting: 0, overlapFound: 0, overlapAll: 0, hidden: 0 };
  return { normal: 0, falseFlags: 0, falseEpisodes: 0, aftermathEpisodes: 0, kinds, biasBySensor: new Map(), valveBySize, stops, frozen: { bySensor: new Map(), eitherBySensor: new Map(), delaysMin: [], falseFinds: 0, falseBySensor: new Map() }, falseEpisodeTs: [] };
}

/**
 * The models of `--fleet`, fitted once: the agent's bundled default (agent/assets/default-model.onnx:
 * pca on one day of each of six other simulated pumps at 1 Hz, by make-default-model.sh), and an
 * mset fitted on the same readings.
 */
function fleetModels(): Map<string, Uint8Array> {
  const sims = Array.from({ length: 6 }, (_, i) => new PumpSimulator({ pumpId: `train-${i + 1}`, seed: 9001 + i, startTs: Date.UTC(2026, 0, 1 + i), faults: 'none' }));
  return new Map([
    ['bundled', bundledModel()],
    ['mset-fleet', fitSimulated(sims, DAY / 1000, { source: 'default', version: 'fleet-mset', algorithm: 'mset', ...ruleOptions() })],
  ]);
}

const bundledFile = (): Uint8Array => readFileSync(join(packageRoot(), 'agent', 'assets', 'default-model.onnx'));

/** The warm-up of the bundled model's own rule (seconds). */
function bundledOwnWarmUp(): number | undefined {
  return readModelMetadata(bundledFile()).stoppedWhen?.afterStartSeconds;
}

/** The agent's bundled default model, its warm-up set to `--after-start` when that is given. */
function bundledModel(): Uint8Array {
  const bytes = bundledFile();
  return BUNDLED_AFTER_START === undefined ? bytes : withWarmUp(bytes, BUNDLED_AFTER_START);
}

/**
 * The model's bytes with the warm-up of its stopped-when rule (metadata `pumpwatch.stopped_when`)
 * set to `seconds`, the conditions, the graph and every other key as they were. The bytes are
 * re-encoded through the trainer's ONNX subset: refused unless that gives back the same bytes
 * unchanged (nothing the subset lacks would be dropped), and unless the model has a rule.
 */
function withWarmUp(bytes: Uint8Array, seconds: number): Uint8Array {
  const rule = readModelMetadata(bytes).stoppedWhen;
  if (!rule) throw new Error('bench/field: --after-start: the bundled model has no stopped-when rule to set a warm-up on');
  const model = ModelProto.decode(bytes) as unknown as { metadata_props: Array<{ key: string; value: string }> };
  if (Buffer.compare(ModelProto.encode(model).finish(), bytes) !== 0) throw new Error('bench/field: --after-start: the bundled model does not re-encode to its own bytes');
  const value = JSON.stringify(stoppedRuleToJson({ ...rule, afterStartSeconds: seconds }));
  model.metadata_props = model.metadata_props.map((e) => (e.key === META_KEYS.stoppedWhen ? { key: e.key, value } : e));
  return ModelProto.encode(model).finish();
}

/** The fit options of the stopped-when rule (`fit --stopped-when`: the stopped and starting rows left out), none without one. */
function ruleOptions(): { stoppedWhen: StoppedRule; leaveOutStopped: true } | Record<string, never> {
  return RULE ? { stoppedWhen: RULE, leaveOutStopped: true } : {};
}

/** Each reading's phase, in time order, from the simulator's own stops; `restartTs`: the last restart before the first. */
class PhaseTracker {
  private restartTs = Number.NEGATIVE_INFINITY;
  private wasStopped = false;

  at(ts: number, stopped: boolean): { phase: Phase; sinceRestartMs: number } {
    if (!stopped && this.wasStopped) this.restartTs = ts;
    this.wasStopped = stopped;
    const since = ts - this.restartTs;
    return { phase: stopped ? 'stop' : since < WARM_UP_MS ? 'warm-up' : 'running', sinceRestartMs: since };
  }
}

async function runPump(index: number, tallies: Map<string, Tally>, fitMs: Map<string, number[]>, fleet: Map<string, Uint8Array> | null): Promise<void> {
  // --fleet scores the standalone agent's own pumps (sim-pump-1, …); per-pump models, pumps of their own.
  const seed = FLEET ? simulatedPumpSeed(1, index - 1) : 5000 + index;
  // The training days are fault-free whatever the plan (its faults come after them): their spread is known first.
  const { plans, biases } = faultPlan(seed, trainingSpread(seed), index);
  const valves = (p: FaultPlan): Pick<PlannedEvent, 'valveSize'> => (p.kind === 'valve' ? { valveSize: dropLabel((p.peak ?? 1) * VALVE_MAX_DROP) } : {});
  const plan: PlannedEvent[] = [...plans.map((p) => ({ kind: p.kind, startTs: p.startTs, durationMs: p.durationMs, ...valves(p) })), ...biases.map((b) => ({ kind: BIAS, startTs: b.startTs, durationMs: b.durationMs, feature: b.feature }))];
  const pumpId = FLEET ? `sim-pump-${index}` : `field-${index}`;
  const sim = new PumpSimulator({ pumpId, seed, startTs: T0 - PREROLL_MS, periodMs: PERIOD_MS, faults: plans, stops: STOPS ? STOP_PLAN : 'none' });
  const phases = new PhaseTracker();
  for (let i = 0; i < PREROLL_MS / PERIOD_MS; i++) {
    const s = sim.next();
    phases.at(s.reading.ts, s.stopped);
  }
  const trainRows = (TRAIN_DAYS * DAY) / PERIOD_MS;
  const table: CsvTable = { features: [...SIMULATED_FEATURES], rows: [], timestamps: [], timestampColumn: 'datetime', ignoredColumns: [] };
  const history: Reading[] = [];
  for (let i = 0; i < trainRows; i++) {
    const { reading, stopped } = sim.next();
    phases.at(reading.ts, stopped);
    if (!fleet) {
      table.rows.push(Float64Array.from(SIMULATED_FEATURES.map((f) => reading.values[f] ?? Number.NaN)));
      table.timestamps.push(reading.ts);
    }
    // The engine is given the last 256 readings before the scored days, as the agent seeds a pump from its buffer.
    history.push(reading);
    if (history.length > 256) history.shift();
  }
  const scored = scoredDays(sim, phases, biases, history[history.length - 1] as Reading);

  for (const algorithm of ALGORITHMS) {
    const started = performance.now();
    const rule = algorithm === 'mset-norule' ? {} : ruleOptions();
    const fitted = (): Uint8Array => fitTable(table, { source: `field-${index}`, algorithm: algorithm.replace(/-norule$/, ''), version: `field-${index}-${algorithm}`, ...rule }).bytes;
    const bytes = fleet?.get(algorithm) ?? fitted();
    fitMs.set(algorithm, [...(fitMs.get(algorithm) ?? []), performance.now() - started]);
    const model = await LoadedModel.fromBytes(bytes, 'bench');
    if (index === 1) console.log(`${algorithm} (pump 1): stuck_after ${JSON.stringify(model.meta.stuckAfter ?? null)}`);
    const engine = new InferenceEngine();
    engine.setModel(DEFAULT_MODEL_KEY, model);
    engine.seed(pumpId, history);
    const outcome = new Outcome();
    for (let start = 0; start < scored.length; start += 4096) outcome.add(await engine.score(scored.slice(start, start + 4096).map((s) => s.reading), 0));
    await model.release();
    outcome.tallyInto(tallies.get(algorithm) as Tally, scored, plan, model.meta.window);
  }
}

const HOUR_MS = 3_600_000;

/** One pump of a `--first-model` gateway: its fits and what scored its days. */
interface GatewayReport {
  pumpId: string;
  /** The fault plan's start: the first fit that did not wait (or 2 × the hours), from the agent's start. */
  planFromHours: number;
  attempts: GatewayPump['attempts'];
  installedAtHours: number | null;
  invalidReason: string | null;
  /** The last `waiting` when the pump was never fitted. */
  waiting: string | null;
  /** Share of the scored readings the first model scored (the rest: the bundled model, before it was in). */
  firstShare: number;
  /** Relative changes of the flow asked for at the steps in demand in the scored days. */
  stepChanges: number[];
  /** Steps in demand before the fault plan (in the readings its first model could be fitted on). */
  stepsBefore: number;
  /** False-alarm episodes over the scored days: the bundled model alone's, the gateway's. */
  falseAlarms: [number, number];
  /** The gateway's false-alarm episodes in each day of the scored days (from the first scored reading). */
  falseByDay: number[];
}

/** False alarms after steps in demand: in the day after each (the trust question), and in the hour after. */
interface AfterSteps {
  day: StepCounts;
  hour: StepCounts;
}

/**
 * `--first-model`: one pump on a gateway with PUMPWATCH_FIRST_MODEL_AFTER_HOURS = `hours`, from the
 * agent's first reading; the same readings scored by the bundled model alone (`names[0]`) and by
 * the gateway (`names[1]`), tallied over the seven days from the first fit that did not wait.
 */
async function runPumpFirst(index: number, hours: number, names: readonly [string, string], tallies: Map<string, Tally>, steps: Map<string, AfterSteps>, bundledBytes: Uint8Array): Promise<GatewayReport> {
  const seed = simulatedPumpSeed(1, index - 1);
  const pumpId = `sim-pump-${index}`;
  const stopPlan = STOPS ? STOP_PLAN : 'none';
  const bundled = await LoadedModel.fromBytes(bundledBytes, 'bench');
  const alone = new InferenceEngine();
  alone.setModel(DEFAULT_MODEL_KEY, bundled);
  const agent = new InferenceEngine();
  agent.setModel(DEFAULT_MODEL_KEY, bundled);
  const gateway = new GatewayPump(pumpId, hours, agent, bundled);
  try {
    // The first hours: no fault planned yet, the agent's check every 10 min until a fit does not wait.
    const quiet = new PumpSimulator({ pumpId, seed, startTs: T0 - PREROLL_MS, periodMs: PERIOD_MS, faults: 'none', stops: stopPlan });
    const phases = new PhaseTracker();
    let generated = 0;
    let last: Reading | null = null;
    for (let i = 0; i < PREROLL_MS / PERIOD_MS; i++, generated++) {
      const s = quiet.next();
      phases.at(s.reading.ts, s.stopped);
    }
    let nextCheck = T0 + FIRST_MODEL_CHECK_MS;
    let planFrom: number | null = null;
    while (planFrom === null) {
      const batch: Reading[] = [];
      // the readings up to the check's time (the first at T0)
      for (let ts = T0 - PREROLL_MS + generated * PERIOD_MS; ts <= nextCheck; ts += PERIOD_MS, generated++) {
        const s = quiet.next();
        phases.at(s.reading.ts, s.stopped);
        batch.push(s.reading);
      }
      if (batch.length > 0) {
        last = batch[batch.length - 1] as Reading;
        gateway.buffer(await agent.score(batch, 0));
        await alone.score(batch, 0);
      }
      const attempt = await gateway.check(nextCheck);
      if ((attempt !== null && attempt.result.kind !== 'waiting') || nextCheck >= T0 + 2 * hours * HOUR_MS) planFrom = nextCheck;
      nextCheck += FIRST_MODEL_CHECK_MS;
    }

    // The same pump with its faults planned from there: the same readings up to it (the faults come after).
    const { plans, biases } = faultPlan(seed, trainingSpread(seed, planFrom - T0), index, planFrom);
    const valves = (p: FaultPlan): Pick<PlannedEvent, 'valveSize'> => (p.kind === 'valve' ? { valveSize: dropLabel((p.peak ?? 1) * VALVE_MAX_DROP) } : {});
    const plan: PlannedEvent[] = [...plans.map((p) => ({ kind: p.kind, startTs: p.startTs, durationMs: p.durationMs, ...valves(p) })), ...biases.map((b) => ({ kind: BIAS, startTs: b.startTs, durationMs: b.durationMs, feature: b.feature }))];
    const sim = new PumpSimulator({ pumpId, seed, startTs: T0 - PREROLL_MS, periodMs: PERIOD_MS, faults: plans, stops: stopPlan });
    let same: Reading | null = null;
    for (let i = 0; i < generated; i++) same = sim.next().reading;
    if (JSON.stringify(same) !== JSON.stringify(last)) throw new Error(`bench/field: ${pumpId}'s readings before its faults differ from those without them`);
    const scored = scoredDays(sim, phases, biases, last as Reading);

    const outcomes = [new Outcome(), new Outcome()] as const;
    for (let i = 0; i < scored.length; ) {
      // Up to the gateway's next check while it may still fit; then in batches as bench/field scores.
      let end = i + 1;
      if (gateway.settled) end = Math.min(scored.length, i + 4096);
      else while (end < scored.length && (scored[end] as Scored).reading.ts <= nextCheck) end++;
      const batch = scored.slice(i, end).map((s) => s.reading);
      outcomes[0].add(await alone.score(batch, 0));
      const rows = await agent.score(batch, 0);
      outcomes[1].add(rows);
      if (!gateway.settled) {
        gateway.buffer(rows);
        if ((batch[batch.length - 1] as Reading).ts >= nextCheck) {
          await gateway.check(nextCheck);
          nextCheck += FIRST_MODEL_CHECK_MS;
        }
      }
      i = end;
    }
    const first = gateway.model;
    if (index === 1) for (const [name, model] of [[names[0], bundled], [names[1], first]] as const) if (model) console.log(`${name} (pump 1): stuck_after ${JSON.stringify(model.meta.stuckAfter ?? null)}`);
    const fromTs = (scored[0] as Scored).reading.ts;
    const toTs = (scored[scored.length - 1] as Scored).reading.ts + PERIOD_MS;
    const stepsAt: StepAt[] = sim.demandLog.map((d) => ({ ts: d.ts, change: d.to.flow / d.from.flow - 1 }));
    const windows = [bundled.meta.window, Math.max(bundled.meta.window, first?.meta.window ?? 0)];
    const falseAlarms: [number, number] = [0, 0];
    const falseByDay: number[] = Array.from({ length: Math.ceil((toTs - fromTs) / DAY) }, () => 0);
    names.forEach((name, k) => {
      const t = tallies.get(name) as Tally;
      const before = t.falseEpisodeTs.length;
      (outcomes[k] as Outcome).tallyInto(t, scored, plan, windows[k] as number);
      const after = steps.get(name) as AfterSteps;
      tallySteps(after.day, stepsAt, t.falseEpisodeTs.slice(before), fromTs, toTs, DAY);
      tallySteps(after.hour, stepsAt, t.falseEpisodeTs.slice(before), fromTs, toTs, HOUR_MS);
      falseAlarms[k] = t.falseEpisodeTs.length - before;
      if (k === 1) for (const ts of t.falseEpisodeTs.slice(before)) falseByDay[Math.floor((ts - fromTs) / DAY)]! += 1;
    });
    const firstRows = first === null ? 0 : outcomes[1].versions.filter((v) => v === first.meta.version).length;
    const waiting = gateway.lastWaiting;
    return {
      pumpId,
      planFromHours: (planFrom - T0) / HOUR_MS,
      attempts: gateway.attempts,
      installedAtHours: gateway.installedAt === null ? null : (gateway.installedAt - T0) / HOUR_MS,
      invalidReason: gateway.invalidReason,
      waiting: gateway.settled || waiting === null ? null : describeFit(waiting),
      firstShare: firstRows / scored.length,
      stepChanges: stepsAt.filter((d) => d.ts >= fromTs && d.ts < toTs).map((d) => d.change),
      stepsBefore: stepsAt.filter((d) => d.ts < planFrom).length,
      falseAlarms,
      falseByDay,
    };
  } finally {
    await gateway.release();
    await bundled.release();
  }
}

/** One line per pump: its fits (refused, fitted, still waiting), when its faults began, how much of its days the first model scored. */
function gatewayLine(r: GatewayReport, names: readonly [string, string]): string {
  const fits = r.attempts.map((a) => `${fmt((a.at - T0) / HOUR_MS, 1)} h: ${describeFit(a.result)}, ${fmt(a.ms / 1000, 1)} s`);
  const after = r.invalidReason !== null ? `; refused by validation: ${r.invalidReason}` : r.waiting !== null ? `; still ${r.waiting}` : '';
  return `${r.pumpId}: ${fits.length > 0 ? fits.join('; ') : 'no fit'}${after}; faults planned from ${fmt(r.planFromHours, 1)} h (${r.stepsBefore} steps in demand before); ${names[1]}'s first model scored ${fmt(100 * r.firstShare, 1)} % of the scored readings; false alarms ${names[0]} ${r.falseAlarms[0]}, ${names[1]} ${r.falseAlarms[1]} (by day: ${r.falseByDay.join('/')})`;
}

/** A `--first-model` run's own lines: fits, refusals, and the false alarms in the day after a step in demand. */
function printGateways(names: readonly [string, string], reports: readonly GatewayReport[], steps: ReadonlyMap<string, AfterSteps>): void {
  const attempts = reports.flatMap((r) => r.attempts);
  const refused = attempts.filter((a) => a.result.kind === 'refused').length;
  const fitted = reports.filter((r) => r.installedAtHours !== null).length;
  const at = reports.flatMap((r) => (r.installedAtHours === null ? [] : [r.installedAtHours]));
  console.log(
    `${names[1]}: first model in on ${fitted}/${reports.length} pumps (median ${at.length ? fmt(median(at), 1) : '-'} h after the start), fits refused ${refused} (on ${reports.filter((r) => r.attempts.some((a) => a.result.kind === 'refused')).length} pumps), ` +
      `fitted but refused by validation ${reports.filter((r) => r.invalidReason !== null).length}, still waiting ${reports.filter((r) => r.waiting !== null).length}; ` +
      `the first model scored ${fmt((100 * reports.reduce((a, r) => a + r.firstShare, 0)) / reports.length, 1)} % of the scored readings`,
  );
  const changes = reports.flatMap((r) => r.stepChanges).map((c) => 100 * Math.abs(c));
  console.log(
    `demand steps in the scored days: ${changes.length} (the flow asked for moved by median ${changes.length ? fmt(median(changes), 1) : '-'} %, max ${changes.length ? fmt(Math.max(...changes), 1) : '-'} %); ` +
      'false alarms/day beginning in the day after a step, and at other times; steps followed by a false alarm within the day; the same for the hour after a step',
  );
  const rate = (n: number, ms: number): string => `${ms > 0 ? fmt(n / (ms / DAY), 2) : '-'}/day (${n} in ${fmt(ms / DAY, 1)} pump-days)`;
  for (const name of names) {
    const { day, hour } = steps.get(name) as AfterSteps;
    console.log(
      `${name}: in the day after a step ${rate(day.inDayAfter, day.dayAfterMs)}, at other times ${rate(day.elsewhere, day.elsewhereMs)}; steps followed by a false alarm within the day ${day.stepsWithAlarm}/${day.steps}; ` +
        `in the hour after a step ${rate(hour.inDayAfter, hour.dayAfterMs)}, at other times ${rate(hour.elsewhere, hour.elsewhereMs)}; within the hour ${hour.stepsWithAlarm}/${hour.steps}`,
    );
  }
}

/** `--first-model`: per hours asked for, a gateway fitting first models beside the bundled model alone, then a summary. */
async function mainFirstModels(hoursList: readonly number[]): Promise<void> {
  const stops = STOPS ? `; the pumps stop ${STOP_PLAN.perDay} times a day on average for ${STOP_PLAN.minMinutes}–${STOP_PLAN.maxMinutes} min (random, their first hours too)` : '';
  console.log(
    `bench/field --first-model: ${PUMPS} simulated pumps (the standalone agent's), one reading every ${PERIOD_MS / 1000} s, scored from their first reading by the agent's bundled default model; ` +
      `the agent's first-model check every ${FIRST_MODEL_CHECK_MS / 60_000} min of reading time fits each pump's first model on its buffered rows (fitFirstModelHere on the newest 7 days, at most 250 000 rows) ` +
      "once they span the hours asked for of running, and the pump's engine switches it in; " +
      `the pump's first hours are assumed normal: from its first fit that does not wait for more readings (refused or fitted; or from 2 × the hours if it still waits), ${planText()}, ` +
      `scored by the agent's engine on that gateway (first-Nh: the bundled model until the first model is in) and by the bundled model alone, on the same readings${stops}${bundledWarmUpText()}`,
  );
  const bundledBytes = bundledModel();
  const summary: string[] = [];
  for (const hours of hoursList) {
    const names = ['bundled', `first-${hours}h`] as const;
    const tallies = new Map<string, Tally>(names.map((n) => [n, emptyTally()]));
    const steps = new Map<string, AfterSteps>(names.map((n) => [n, { day: emptyStepCounts(), hour: emptyStepCounts() }]));
    const reports: GatewayReport[] = [];
    console.log(`\n== PUMPWATCH_FIRST_MODEL_AFTER_HOURS=${hours} ==`);
    for (let p = 1; p <= PUMPS; p++) {
      const report = await runPumpFirst(p, hours, names, tallies, steps, bundledBytes);
      console.log(gatewayLine(report, names));
      reports.push(report);
    }
    printTallies(names, tallies);
    printGateways(names, reports, steps);
    const refused = reports.flatMap((r) => r.attempts).filter((a) => a.result.kind === 'refused').length;
    for (const name of names) summary.push(summaryRow(name, hours, tallies.get(name) as Tally, (steps.get(name) as AfterSteps).day, name === names[1] ? `${reports.filter((r) => r.installedAtHours !== null).length}/${reports.length}, ${refused}` : '-'));
  }
  console.log(`\nsummary (${PUMPS} pumps × ${SCORE_DAYS} days after each fit; found / planned; false alarms per pump-day, in brackets within ${AFTERMATH_MS / HOUR_MS} h after a fault; bearing wear: median minutes to the first flag)`);
  console.log(SUMMARY_HEADER);
  for (const row of summary) console.log(row);
}

const SUMMARY_HEADER = `${'hours'.padEnd(6)}${'model'.padEnd(11)}${'FA/day'.padStart(12)}${'day after step'.padStart(16)}${'elsewhere'.padStart(11)}  ${'cav'.padEnd(6)}${'leak'.padEnd(6)}${'valve 2.5/6/12 %'.padEnd(18)}${'bearing'.padEnd(14)}${'off'.padEnd(7)}fitted, refused`;

function summaryRow(name: string, hours: number, t: Tally, s: StepCounts, fits: string): string {
  const k = (kind: Kind): string => `${t.kinds[kind].detected}/${t.kinds[kind].events}`;
  const valves = [...t.valveBySize.values()].map(([found, all]) => `${found}/${all}`).join(' ');
  const wear = t.kinds['bearing-wear'];
  const bearing = `${k('bearing-wear')}${wear.delaysMin.length ? ` ${fmt(median(wear.delaysMin), 0)}` : ''}`;
  const perDay = (n: number, ms: number): string => (ms > 0 ? fmt(n / (ms / DAY), 2) : '-');
  return (
    `${String(hours).padEnd(6)}${name.padEnd(11)}${`${fmt(t.falseEpisodes / (PUMPS * SCORE_DAYS), 2)} (${fmt(t.aftermathEpisodes / (PUMPS * SCORE_DAYS), 2)})`.padStart(12)}` +
    `${perDay(s.inDayAfter, s.dayAfterMs).padStart(16)}${perDay(s.elsewhere, s.elsewhereMs).padStart(11)}  ${k('cavitation').padEnd(6)}${k('leak').padEnd(6)}${valves.padEnd(18)}${bearing.padEnd(14)}${k(BIAS).padEnd(7)}${fits}`
  );
}

/**
 * The scored days' readings from `sim` (its faults labelled), each sensor half-hour of `biases`
 * applied (--dead: the sensor reads 0; --stuck: the value it read just before, `previous` the
 * reading before the first; else its offset), with each reading's phase.
 */
function scoredDays(sim: PumpSimulator, phases: PhaseTracker, biases: readonly Bias[], previous: Reading): Scored[] {
  const scored: Scored[] = [];
  /** --stuck: each sensor half-hour's frozen value, the sensor's reading just before it. */
  const frozen = new Map<Bias, number>();
  for (let i = 0; i < (SCORE_DAYS * DAY) / PERIOD_MS; i++) {
    const s = sim.next();
    const { phase, sinceRestartMs } = phases.at(s.reading.ts, s.stopped);
    const bias = biases.find((b) => s.reading.ts >= b.startTs && s.reading.ts < b.startTs + b.durationMs);
    if (bias && STUCK && !frozen.has(bias)) frozen.set(bias, previous.values[bias.feature] as number);
    previous = s.reading;
    if (bias) {
      // --dead: the transmitter reads its floor; --stuck: its last value; else it reads off by its offset
      const value = DEAD ? 0 : STUCK ? (frozen.get(bias) as number) : (s.reading.values[bias.feature] as number) + bias.offset;
      scored.push({ reading: { ...s.reading, values: { ...s.reading.values, [bias.feature]: value } }, fault: BIAS, phase, sinceRestartMs });
    } else scored.push({ reading: s.reading, fault: s.fault, phase, sinceRestartMs });
  }
  return scored;
}

/** What an engine made of the scored days, row by row, then counted into a tally. */
class Outcome {
  readonly flags: boolean[] = [];
  readonly reasons: Array<string | null> = [];
  readonly versions: Array<string | null> = [];
  private readonly frozenFinds: Array<{ ts: number; feature: string }> = [];

  add(rows: readonly PredictionRow[]): void {
    for (const row of rows) {
      this.flags.push(row.anomaly === true);
      this.reasons.push(row.unscoredReason);
      this.versions.push(row.modelVersion);
      for (const f of row.sensorFaultsBegan ?? []) this.frozenFinds.push({ ts: row.ts, feature: f.feature });
    }
  }

  tallyInto(t: Tally, scored: readonly Scored[], plan: readonly PlannedEvent[], window: number): void {
    const flagged = tally(t, scored, this.flags, plan, window);
    tallyFrozen(t.frozen, this.frozenFinds, plan, flagged);
    tallyStops(t.stops, scored, this.flags, this.reasons, plan, window);
  }
}

interface Scored {
  reading: Reading;
  fault: Kind | null;
  phase: Phase;
  /** Time since the pump's last restart (ms; +∞ before its first stop). */
  sinceRestartMs: number;
}

/**
 * The agent's frozen-sensor check: each sensor half-hour (with --dead the sensor reads 0, with
 * --stuck its last value: one value repeated either way) found when the check names its sensor
 * during it; `flagged`, the half-hours the model found, makes the count found by either. A finding
 * outside such a half-hour of its sensor is a false one (normal readings, or another sensor's
 * half-hour), and so is every finding without --dead or --stuck (a sensor read off by an offset
 * still moves: it is not frozen).
 */
function tallyFrozen(t: FrozenCounts, finds: ReadonlyArray<{ ts: number; feature: string }>, plan: readonly PlannedEvent[], flagged: ReadonlySet<PlannedEvent>): void {
  const halfHours = plan.filter((f) => f.feature !== undefined);
  for (const f of halfHours) {
    const feature = f.feature as string;
    const hit = finds.find((d) => d.feature === feature && d.ts >= f.startTs && d.ts < f.startTs + f.durationMs);
    const [found, all] = t.bySensor.get(feature) ?? [0, 0];
    t.bySensor.set(feature, [found + (hit ? 1 : 0), all + 1]);
    if (hit) t.delaysMin.push((hit.ts - f.startTs) / 60_000);
    const [either, allEither] = t.eitherBySensor.get(feature) ?? [0, 0];
    t.eitherBySensor.set(feature, [either + (flagged.has(f) || (REPEATS && hit) ? 1 : 0), allEither + 1]);
  }
  for (const d of finds) {
    // Without --dead or --stuck no sensor repeats a value: every finding is false.
    if (REPEATS && halfHours.some((f) => f.feature === d.feature && d.ts >= f.startTs && d.ts < f.startTs + f.durationMs)) continue;
    t.falseFinds++;
    t.falseBySensor.set(d.feature, (t.falseBySensor.get(d.feature) ?? 0) + 1);
  }
}

/** Stops and warm-ups: the readings the model's rule left unscored, and the faults met in a stop or a warm-up. */
function tallyStops(t: StopCounts, scored: readonly Scored[], flags: readonly boolean[], reasons: ReadonlyArray<string | null>, plan: readonly PlannedEvent[], window: number): void {
  scored.forEach((s, i) => {
    t.readings[s.phase]++;
    if (isStoppedReason(reasons[i])) t.unscoredStopped++;
    if (isStartingReason(reasons[i])) t.unscoredStarting++;
  });
  const times = scored.map((s) => s.reading.ts);
  for (const f of plan) {
    if (f.feature !== undefined) continue;
    const end = f.startTs + f.durationMs + (window - 1) * PERIOD_MS;
    const span: number[] = [];
    for (let i = lowerBound(times, f.startTs); i < times.length && (times[i] as number) < end; i++) span.push(i);
    if (span.every((i) => (scored[i] as Scored).phase === 'running')) continue;
    t.overlapAll++;
    if (span.some((i) => flags[i])) t.overlapFound++;
    else if (span.every((i) => isStoppedReason(reasons[i]) || isStartingReason(reasons[i]) || isStoppingReason(reasons[i]))) t.hidden++;
  }
}

/**
 * Readings within `window` after a fault still have fault readings in their window: counted neither way.
 * Returns the planned events the model found (a flag while it lasts or in the windows that still hold it).
 */
function tally(t: Tally, scored: readonly Scored[], flags: readonly boolean[], plan: readonly PlannedEvent[], window: number): Set<PlannedEvent> {
  let settling = 0;
  let inEpisode = false;
  let lastProcessFaultTs = -Infinity;
  scored.forEach((s, i) => {
    if (s.fault !== null) {
      settling = window - 1;
      if (s.fault !== BIAS) lastProcessFaultTs = s.reading.ts;
      const k = t.kinds[s.fault];
      k.readings++;
      if (flags[i]) k.flagged++;
      inEpisode = false;
      return;
    }
    if (settling > 0) {
      settling--;
      return;
    }
    t.normal++;
    if (flags[i]) {
      t.falseFlags++;
      if (!inEpisode) {
        t.falseEpisodes++;
        t.falseEpisodeTs.push(s.reading.ts);
        if (s.reading.ts - lastProcessFaultTs <= AFTERMATH_MS) t.aftermathEpisodes++;
        // by where it begins: in a stop, a warm-up, or running (and then soon after a warm-up, or not)
        t.stops.episodes[s.phase]++;
        if (s.phase === 'running' && s.sinceRestartMs < WARM_UP_MS + AFTER_WARM_UP_MS) t.stops.afterWarmUp++;
      }
    }
    inEpisode = flags[i] === true;
  });
  const times = scored.map((s) => s.reading.ts);
  const found = new Set<PlannedEvent>();
  for (const f of plan) {
    const k = t.kinds[f.kind];
    k.events++;
    // Detected: a flag while the fault lasts, or in the windows that still hold its readings.
    const end = f.startTs + f.durationMs + (window - 1) * PERIOD_MS;
    let first = -1;
    for (let i = lowerBound(times, f.startTs); i < times.length && (times[i] as number) < end; i++) {
      if (flags[i]) {
        first = i;
        break;
      }
    }
    if (f.feature !== undefined) {
      const [found, all] = t.biasBySensor.get(f.feature) ?? [0, 0];
      t.biasBySensor.set(f.feature, [found + (first >= 0 ? 1 : 0), all + 1]);
    }
    if (f.valveSize !== undefined) {
      const [found, all] = t.valveBySize.get(f.valveSize) ?? [0, 0];
      t.valveBySize.set(f.valveSize, [found + (first >= 0 ? 1 : 0), all + 1]);
    }
    if (first >= 0) {
      found.add(f);
      k.detected++;
      k.delaysMin.push(((scored[first] as { reading: Reading }).reading.ts - f.startTs) / 60_000);
    }
  }
  return found;
}

/** Half-hours found / all, summed over the sensors, and per sensor as `Current 14/14, …`. */
function perSensorText(bySensor: ReadonlyMap<string, readonly [number, number]>): [number, number, string] {
  const counts = [...bySensor.values()];
  const text = [...bySensor].map(([f, [found, all]]) => `${f} ${found}/${all}`).join(', ');
  return [counts.reduce((a, [n]) => a + n, 0), counts.reduce((a, [, n]) => a + n, 0), text];
}

function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** What the sensor half-hours do, as the headline says it. */
function sensorsText(): string {
  return DEAD
    ? `4 half-hours a day with one sensor of the running pump reading 0 ("${BIAS}": a transmitter failed to its floor, each sensor in turn)`
    : STUCK
      ? `4 half-hours a day with one sensor repeating the value it read last before ("${BIAS}": a transmitter frozen, each sensor in turn)`
      : `4 half-hours a day with one sensor reading ${BIAS_SD} training standard deviations off ("${BIAS}": each sensor in turn, up and down in turn)`;
}

/** The scored days' plan of faults and offsets, as the headline says it. */
function planText(): string {
  return (
    `${SCORE_DAYS} days with a fault slot every 6 h (${FAULT_KINDS.filter((k) => k !== 'bearing-wear').map((k) => `${k} ${DURATION_MIN[k]} min`).join(', ')} and an empty slot, in turn), a bearing wear per pump growing over ${WEAR_DAYS} days in slots of its own (` +
    `valve faults cutting the flow by ${VALVE_DROPS.map(dropLabel).join(', ')} in turn, the others at full severity) ` +
    `and ${sensorsText()}`
  );
}

const bundledWarmUpText = (): string => (BUNDLED_AFTER_START === undefined ? '' : `; the bundled model's warm-up set to ${BUNDLED_AFTER_START} s (--after-start; its own ${bundledOwnWarmUp()} s)`);

async function main(): Promise<void> {
  if (FIRST_HOURS !== null) {
    await mainFirstModels(FIRST_HOURS);
    return;
  }
  const tallies = new Map(ALGORITHMS.map((a) => [a, emptyTally()]));
  const fitMs = new Map<string, number[]>();
  const fleet = FLEET ? fleetModels() : null;
  const fitted = FLEET
    ? "no model of their own: the agent's bundled default model (pca on six other pumps) and an mset fitted on the same readings score them over"
    : `each algorithm fitted on ${TRAIN_DAYS} fault-free days of each pump${RULE ? ` with the stopped-when rule ${describeStoppedRule(RULE)} (its stopped and starting rows left out${STOPS ? '; mset-norule: no rule' : ''})` : ''}, then`;
  const stops = STOPS
    ? `; the pumps stop ${STOP_PLAN.perDay} times a day on average for ${STOP_PLAN.minMinutes}–${STOP_PLAN.maxMinutes} min (random, training days too)${FLEET && RULE ? `, the fleet mset with the stopped-when rule ${describeStoppedRule(RULE)}` : ''}`
    : FLEET && RULE ? `; the fleet mset with the stopped-when rule ${describeStoppedRule(RULE)}` : '';
  console.log(`bench/field: ${PUMPS} simulated pumps, one reading every ${PERIOD_MS / 1000} s; ${fitted} ${planText()}, scored by the agent's engine${stops}${bundledWarmUpText()}`);
  for (let p = 1; p <= PUMPS; p++) await runPump(p, tallies, fitMs, fleet);
  printTallies(ALGORITHMS, tallies);
  if (!FLEET) {
    const fits = ALGORITHMS.map((a) => `${a} ${fmt(median(fitMs.get(a) ?? []), 0)} ms`).join(', ');
    console.log(`\nmedian fit time per pump (${(TRAIN_DAYS * DAY) / PERIOD_MS} rows): ${fits}`);
  }
}


/** The figures of each algorithm (or gateway) over the pumps' scored days. */
function printTallies(algorithms: readonly string[], tallies: ReadonlyMap<string, Tally>): void {
  const pumpDays = PUMPS * SCORE_DAYS;
  console.log('');
  console.log('per kind: events found / events, % of its readings flagged, median minutes from onset to the first flag');
  console.log(`bearing wear: one per pump, growing over ${WEAR_DAYS} days (no other fault or offset meanwhile) until the bearing is replaced`);
  console.log(`false alarms/day: episodes of flagged normal readings per pump and day (in brackets: those beginning within ${AFTERMATH_MS / 3_600_000} h after a process fault ended)`);
  console.log(`${'algorithm'.padEnd(11)} ${'FAR %'.padStart(7)} ${'false alarms/day'.padStart(17)}  ${KINDS.map((k) => k.padEnd(22)).join(' | ')}`);
  for (const algorithm of algorithms) {
    const t = tallies.get(algorithm) as Tally;
    const kinds = KINDS.map((k) => {
      const c = t.kinds[k];
      return `${c.detected}/${c.events}, ${fmt((100 * c.flagged) / Math.max(1, c.readings), 1)} %, ${Number.isNaN(median(c.delaysMin)) ? '-' : fmt(median(c.delaysMin), 1)}`.padEnd(22);
    });
    const perDay = `${fmt(t.falseEpisodes / pumpDays, 2)} (${fmt(t.aftermathEpisodes / pumpDays, 2)})`;
    console.log(`${algorithm.padEnd(11)} ${fmt((100 * t.falseFlags) / Math.max(1, t.normal), 2).padStart(7)} ${perDay.padStart(17)}  ${kinds.join(' | ')}`);
  }
  for (const algorithm of algorithms) {
    const bySensor = [...(tallies.get(algorithm) as Tally).biasBySensor].map(([f, [found, all]]) => `${f} ${found}/${all}`);
    console.log(`${algorithm}: ${BIAS} found, per sensor: ${bySensor.join(', ')}`);
  }
  for (const algorithm of algorithms) {
    const t = (tallies.get(algorithm) as Tally).frozen;
    const falses = [...t.falseBySensor].map(([f, n]) => `${f} ${n}`).join(', ');
    const falseText = `false findings ${t.falseFinds} (${fmt(t.falseFinds / pumpDays, 2)} per pump-day)${falses ? `: ${falses}` : ''}`;
    if (REPEATS) {
      const [found, all, bySensor] = perSensorText(t.bySensor);
      console.log(`${algorithm}: frozen-sensor check (the model's stuck_after) found ${found}/${all}, median ${Number.isNaN(median(t.delaysMin)) ? '-' : fmt(median(t.delaysMin), 1)} min after the ${DEAD ? 'sensor died' : 'freeze'} (max ${t.delaysMin.length ? fmt(Math.max(...t.delaysMin), 1) : '-'}), per sensor: ${bySensor}; ${falseText}`);
    } else console.log(`${algorithm}: frozen-sensor check (the model's stuck_after): ${falseText}`);
  }
  // --dead: a dead transmitter is found when the model flags it or the check finds it (--stuck's output stays as it was).
  if (DEAD) {
    for (const algorithm of algorithms) {
      const [found, all, bySensor] = perSensorText((tallies.get(algorithm) as Tally).frozen.eitherBySensor);
      console.log(`${algorithm}: ${BIAS} found by the model or the check ${found}/${all}, per sensor: ${bySensor}`);
    }
  }
  for (const algorithm of algorithms) {
    const bySize = [...(tallies.get(algorithm) as Tally).valveBySize].map(([size, [found, all]]) => `${size} ${found}/${all}`);
    console.log(`${algorithm}: valve found, per flow drop: ${bySize.join(', ')}`);
  }
  if (STOPS) {
    console.log(
      `\nstops: false alarms/day by where they begin: during a stop, in the warm-up (the first ${WARM_UP_MS / 1000} s after a restart), running (in brackets: in the ${AFTER_WARM_UP_MS / 3_600_000} h after a warm-up); ` +
        'readings left unscored as stopped or starting by the model\'s rule; faults (offsets aside) with a reading in a stop or warm-up: found / all, and missed with every reading unscored',
    );
    for (const algorithm of algorithms) {
      const t = (tallies.get(algorithm) as Tally).stops;
      const total = PHASES.reduce((a, p) => a + t.readings[p], 0);
      const perDay = (n: number): string => fmt(n / pumpDays, 2);
      console.log(
        `${algorithm}: false alarms/day during stops ${perDay(t.episodes.stop)}, warm-ups ${perDay(t.episodes['warm-up'])}, running ${perDay(t.episodes.running)} (${perDay(t.afterWarmUp)}); ` +
          `unscored: stopped ${fmt((100 * t.unscoredStopped) / total, 1)} %, starting ${fmt((100 * t.unscoredStarting) / total, 1)} % of ${total} readings (stopped ${fmt((100 * t.readings.stop) / total, 1)} %, in warm-ups ${fmt((100 * t.readings['warm-up']) / total, 1)} %); ` +
          `faults in a stop or warm-up found ${t.overlapFound}/${t.overlapAll}, missed unscored ${t.hidden}`,
      );
    }
  }
}

await main();
