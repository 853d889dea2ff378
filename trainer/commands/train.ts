/** `pumpwatch-trainer train`: the cloud job for one source (train/pipeline.ts). */
import { describeStoppedRule, MAX_WINDOW } from '../../inference/contract.js';
import { ALGORITHM_NAMES, DEFAULT_ALGORITHM } from '../algorithms/index.js';
import { DRIFT_DEFAULTS } from '../drift/compare.js';
import { formatAgentView } from '../eval/as-agent.js';
import { describeAlarms } from '../eval/alarms.js';
import { formatEvaluation, MIN_LABELLED_EPISODES, MIN_LABELLED_ROWS, type Evaluation } from '../eval/criterion.js';
import { checkWritable } from '../files.js';
import { algorithmNamed } from '../fit.js';
import { createProgress } from '../progress.js';
import { writeReport } from '../report/report.js';
import { parseStoppedWhenOption, recordedStoppedRule } from '../data/stopped.js';
import { TRAIN_DEFAULTS, trainSource, type TrainOutcome, type TrainRequest } from '../train/pipeline.js';
import { headline, labelsLine, recordedLine } from '../report/headline.js';
import { ensureRegistryContainer } from '../registry/register.js';
import { optionalInteger, optionalList, optionalNumber, parseOptions, requireSource, requireVersion, timeRange, type Command, type Io } from './command.js';
import { checkHubAnswers, hubHost } from '../deploy/reach.js';
import { deployOptions, deployPendingBest, DEPLOY_OPTION_HELP, prepareDeploy, type RunVersion } from './deploy.js';

const HELP = `Usage: pumpwatch-trainer train --source ID (--from DATE --to DATE | --days N) [options]

Reads the source's readings of the range from Blob Storage (each reading once), cleans them,
holds out the most recent part, fits a challenger on the rest, scores it and the live model on
the same held-out rows (technicians' fault labels when that part has enough of them, at least
${MIN_LABELLED_ROWS} rows in ${MIN_LABELLED_EPISODES} episodes; else synthetic sensor faults, with the labelled rows as
further positives), and promotes the challenger only when its balanced accuracy
1 - (FAR + MAR)/2 is better by the margin, under a false-alarm ceiling: a live model that
flags more than --max-far % of the normal held-out rows, or raises more false alarms (runs of
flagged normal rows) than --max-alarms-per-day allows, is replaced by a challenger within it,
and a challenger above it never replaces a live model within it. A range whose newest
reading is older than the live model's newest is compared but never promoted (--allow-older).
Writes models/<source>/<version>/model.onnx and model.json; moves best.json only on promotion.
Every run's evaluation (models/<source>/<version>/evaluations/) lists the labels and withdrawals
its comparison used; the "labels" line says how many and names that blob.
A label blob that is not a valid label is skipped with a warning that names it.

Options:
  --source ID         data source (pump) id (required)
  --from DATE         first day (YYYY-MM-DD, UTC) or ISO date-time, inclusive
                      (2026-11-23T10:00:00+02:00; without an offset it is UTC)
  --to DATE           end, exclusive
  --days N            instead of --from/--to: the N whole UTC days before today
                      (today excluded)
  --algo NAME         ${ALGORITHM_NAMES.join(' | ')} (default: ${DEFAULT_ALGORITHM})
  --window W          readings per window (default: the algorithm's)
  --exclude a,b       value names never used as features (features that only grow,
                      such as running hours, are left out without it)
  --holdout SHARE     share of the most recent rows held out (default ${TRAIN_DEFAULTS.holdoutFraction})
  --margin X          score the challenger must gain over the live model (default ${TRAIN_DEFAULTS.margin})
  --max-far P         false-alarm ceiling: % of the normal held-out rows a model may flag
                      and still keep or take the place (default ${TRAIN_DEFAULTS.maxFar})
  --max-alarms-per-day R
                      alarm ceiling: a model whose runs of flagged normal held-out rows
                      (each an alert) are more than a model raising R a day would raise
                      in their running hours (p < 0.01, and at least 3) is over the
                      ceiling too (default ${TRAIN_DEFAULTS.maxAlarmsPerDay}; 0: no alarm ceiling)
  --seed N            seed of the synthetic faults (default ${TRAIN_DEFAULTS.seed})
  --version V         model version (default: training date + hash of data and options);
                      1-128 letters, digits, . _ : - starting with a letter or digit
  --allow-older       promote by the comparison even when the range's newest reading is
                      older than the live model's newest (default: never promote then)
  --if-drifted        train only when the range, or its most recent part (the held-out rows,
                      the rows after the live model's data), drifted from the live model's
                      baseline, judged as drift judges (the readings as received, the
                      model's empirical null); a run that trains prints
                      "retrained: drift in <part>: <features>", and a warning when the
                      drift is in the held-out rows only (the challenger did not train on it);
                      when nothing drifted but a part had features neither PSI nor KS could
                      judge (too few rows), it skips: "skipped: inconclusive: …", naming
                      them, the part and the rows that would judge them
  --psi X, --ks X     drift thresholds for --if-drifted (default ${DRIFT_DEFAULTS.psi}, ${DRIFT_DEFAULTS.ks};
                      raised as for drift), also those of the report's drift table
  --stopped-when "FEATURE<NUMBER [& FEATURE<NUMBER ...]"
                      the pump is stopped while FEATURE is below NUMBER (e.g. "Current<0.5"),
                      or every one of several (e.g. "Current<0.2 & Volume Flow RateRMS<5": a
                      dead current sensor on a running pump is then no stop): those rows are left out of training and of the comparison (for both
                      models), and the rule goes into the model, so the agent stores such
                      readings unscored. Without it the live model's rule is inherited (said
                      in the output); "none": no rule
  --after-start S     with --stopped-when: a warm-up of S seconds (0-86400, default 0) after
                      the last stopped reading, treated as stopped
  --report FILE       write a self-contained HTML report (scores, thresholds, labels, drift)
  --deploy            after a promotion, deploy the new best model (options below; the
                      IoT Hub settings and these options are checked before training).
                      The promotion marks its deploy pending in best.json until every
                      module has it, and every run with --deploy, whatever it decides,
                      also pushes a best model whose deploy is pending: a re-run after
                      a failed deploy deploys it. A challenger that is the live model
                      itself (the same data and options: the same version, which a run
                      without --deploy may have promoted) is marked and deployed as a
                      promotion is. Exit 1 while the deploy stays pending, with the
                      exact "deploy" command that pushes it
${DEPLOY_OPTION_HELP}
  -h, --help          this help

Environment: PUMPWATCH_BLOB_CONNECTION_STRING (+ PUMPWATCH_BLOB_CONTAINER) or
PUMPWATCH_BLOB_SAS_URL; PUMPWATCH_IOTHUB_CONNECTION_STRING for --deploy.
Exit codes: 0 done (promoted, kept or skipped; with --deploy, no deploy left pending),
1 failure (a PW_TRAINER_* code says which;
PW_TRAINER_NO_DATA: too little data in the range, or too few rows because the pump was stopped
by the stopped-when rule: "was stopped for N of M readings ..."; train-all skips such a source),
2 bad usage.`;

export const TRAIN_OPTIONS = {
  source: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  days: { type: 'string' },
  algo: { type: 'string' },
  window: { type: 'string' },
  holdout: { type: 'string' },
  margin: { type: 'string' },
  'max-far': { type: 'string' },
  'max-alarms-per-day': { type: 'string' },
  seed: { type: 'string' },
  version: { type: 'string' },
  exclude: { type: 'string' },
  'if-drifted': { type: 'boolean' },
  'allow-older': { type: 'boolean' },
  psi: { type: 'string' },
  ks: { type: 'string' },
  report: { type: 'string' },
  deploy: { type: 'boolean' },
  'stopped-when': { type: 'string' },
  'after-start': { type: 'string' },
  ...deployOptions,
} as const;

type TrainValues = ReturnType<typeof parseOptions<typeof TRAIN_OPTIONS>>;

/** The request of a `train` (or `train-all`, with the source filled in per source) invocation. */
export function trainRequest(command: string, v: TrainValues, source: string, now: Date): TrainRequest {
  const { from, to } = timeRange(command, v, now);
  // Checked with the other options, not only once the range has been read.
  if (typeof v.algo === 'string') algorithmNamed(v.algo);
  return {
    source,
    from,
    to,
    holdoutFraction: optionalNumber(v.holdout, '--holdout', 0.05, 0.5) ?? TRAIN_DEFAULTS.holdoutFraction,
    margin: optionalNumber(v.margin, '--margin', 0, 1) ?? TRAIN_DEFAULTS.margin,
    maxFar: optionalNumber(v['max-far'], '--max-far', 0, 100) ?? TRAIN_DEFAULTS.maxFar,
    maxAlarmsPerDay: optionalNumber(v['max-alarms-per-day'], '--max-alarms-per-day', 0, 1440) ?? TRAIN_DEFAULTS.maxAlarmsPerDay,
    seed: optionalInteger(v.seed, '--seed', 0) ?? TRAIN_DEFAULTS.seed,
    algorithm: typeof v.algo === 'string' ? v.algo : undefined,
    window: optionalInteger(v.window, '--window', 1, MAX_WINDOW),
    version: v.version === undefined ? undefined : requireVersion('train', v.version),
    allowOlder: v['allow-older'] === true,
    deployPending: v.deploy === true,
    exclude: optionalList(v.exclude),
    ...stoppedWhenOf(v),
    ifDrifted:
      v['if-drifted'] === true
        ? { psi: optionalNumber(v.psi, '--psi', 0, 100) ?? DRIFT_DEFAULTS.psi, ks: optionalNumber(v.ks, '--ks', 0, 1) ?? DRIFT_DEFAULTS.ks }
        : undefined,
  };
}

/** `stoppedWhen` of the request: absent without the options (the live model's rule is inherited). */
function stoppedWhenOf(v: TrainValues): Pick<TrainRequest, 'stoppedWhen'> {
  const rule = parseStoppedWhenOption(v['stopped-when'], v['after-start']);
  return rule === undefined ? {} : { stoppedWhen: rule };
}

export const trainCommand: Command = {
  name: 'train',
  summary: 'train a challenger for one source from its blobs, compare, promote when better',
  help: HELP,
  async run(args, io, ctx) {
    const v = parseOptions('train', args, TRAIN_OPTIONS);
    if (v.help === true) {
      io.out(HELP);
      return 0;
    }
    const source = requireSource('train', v.source);
    const req = trainRequest('train', v, source, ctx.now());
    // Checked before training: a promotion that cannot be deployed must not happen at all.
    const deploy = v.deploy === true ? prepareDeploy(ctx, v) : null;
    // And the hub answers: a promotion whose deploy fails is left pending until a later run pushes it.
    if (deploy) await checkHubAnswers(deploy.registry, deploy.target, hubHost(ctx.env.PUMPWATCH_IOTHUB_CONNECTION_STRING));
    if (typeof v.report === 'string') await checkWritable(v.report, 'the report');
    const progress = createProgress({ raw: io.raw, line: io.err }, ctx.isTTY, `train ${source}`);
    const models = ctx.models();
    await ensureRegistryContainer(models);
    const outcome = await trainSource({ data: ctx.container(), models }, req, progress, () => ctx.now());
    printOutcome(outcome, io);
    if (typeof v.report === 'string') {
      await writeReport(v.report, outcome);
      io.out(`  report   ${v.report}`);
    }
    // Whatever the outcome: a best version whose deploy an earlier run left pending is pushed too.
    if (deploy) return deployPendingBest(ctx, deploy, source, runVersionOf(outcome), io);
    return 0;
  },
};

/**
 * The version a `--deploy` run deploys as its own: the one it promoted, or its challenger when
 * that is the live model itself (kept: the same data and options gave the same version). The
 * latter is deployed as its promotion would have been: a hand `train` without --deploy may have
 * promoted it a moment before, and nothing else would ever deploy it.
 */
export function runVersionOf(outcome: TrainOutcome): RunVersion | null {
  const r = outcome.record;
  if (!r) return null;
  if (outcome.status === 'promoted') return { version: r.version, how: 'promoted' };
  return r.evaluation.championVersion === r.version ? { version: r.version, how: 'live' } : null;
}

export function printOutcome(o: TrainOutcome, io: Io): void {
  const r = o.record;
  if (!r) {
    io.out(`${o.source}: ${o.status}: ${o.reason}`);
    for (const w of o.warnings) io.out(`  warning  ${w}`);
    return;
  }
  const d = r.data;
  const c = d.cleaning as Record<string, unknown>;
  const sum = (x: unknown) => Object.values((x ?? {}) as Record<string, number>).reduce((a, b) => a + b, 0);
  // The features with a count, as `Flow 20, Pressure 6` ('' when none): `26 outliers (Flow 20, Pressure 6)`.
  const perFeature = (x: unknown) =>
    Object.entries((x ?? {}) as Record<string, number>)
      .filter(([, v]) => v > 0)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
  const inBrackets = (x: unknown) => (perFeature(x) ? ` (${perFeature(x)})` : '');
  const lacking = perFeature(c.missingByFeature);
  const e = r.evaluation;
  io.out(`${o.source}: ${headline(o, r)}`);
  io.out(`  data     ${d.from} → ${d.to}: ${d.readings} readings${d.repeatedReadings ? ` (${d.repeatedReadings} repeats of earlier ones dropped)` : ''} from ${d.devices.join(', ') || 'no device'}${d.excludedFeatures?.length ? ` (${d.excludedFeatures.join(', ')} left out by --exclude)` : ''}; ${d.trainRows} rows trained${d.faultRowsLeftOut ? ` (${d.faultRowsLeftOut} inside confirmed faults left out)` : ''}, ${d.holdoutRows} held out from ${d.holdoutFrom}`);
  io.out(
    `  cleaning ${sum(c.outliers)} outliers${inBrackets(c.outliers)}, ${sum(c.stuckValues)} stuck values${inBrackets(c.stuckValues)}, ${String(c.carriedValues)} carried forward, ` +
      `${String(c.droppedMissing)} rows dropped (missing${lacking ? `: ${lacking}` : ''}), ${String(c.droppedMaintenance)} (maintenance), ${String(c.gaps)} gaps${c.gapsByCleaning ? ` (${String(c.gapsByCleaning)} left by dropped rows)` : ''}`,
  );
  if (d.stopped) {
    const { from, stoppedRows, startingRows } = d.stopped;
    const stoppingRows = d.stopped.stoppingRows ?? 0;
    const rule = describeStoppedRule(recordedStoppedRule(d.stopped));
    io.out(
      `  stopped  ${rule} (${from === '--stopped-when' ? 'given by --stopped-when' : `inherited from ${from}`}): ${stoppedRows + startingRows + stoppingRows} rows left out of training and of the comparison (${stoppedRows} stopped, ${startingRows} starting${stoppingRows > 0 ? `, ${stoppingRows} stopping` : ''}); the rule is written into ${r.version}`,
    );
  }
  // With the alarms each raised on the normal held-out rows: the figure --max-alarms-per-day judges.
  const judged = (ev: Evaluation) => `${formatEvaluation(ev)}${ev.alarms ? `, ${describeAlarms(ev.alarms)}` : ''}`;
  io.out(`  compare  ${e.criterion}: challenger ${judged(e.challenger)}${e.champion ? `; live ${e.championVersion}: ${judged(e.champion)}` : e.championVersion ? `; live ${e.championVersion}: not scorable` : '; no live model'}`);
  if (e.asAgent) {
    const live = e.asAgent.champion ? `; live: ${formatAgentView(e.asAgent.champion)}` : '';
    io.out(`  as agent raw held-out readings from ${e.asAgent.from}, ${e.asAgent.challenger.readings} of them: challenger ${formatAgentView(e.asAgent.challenger)}${live}`);
  }
  if (o.retrained) io.out(`  drift    retrained: ${o.retrained}`);
  io.out(`  decision ${o.reason}`);
  for (const w of o.warnings) io.out(`  warning  ${w}`);
  io.out(`  registry ${r.model.blob}${o.status === 'promoted' ? `; best.json → ${r.version}` : ''}`);
  const recorded = recordedLine(o);
  if (recorded) io.out(`  recorded ${recorded}`);
  const labels = labelsLine(o);
  if (labels) io.out(`  labels   ${labels}`);
}
