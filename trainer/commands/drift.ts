/** `pumpwatch-trainer drift`: recent data against the live model's baseline statistics. */
import { describeStoppedRule } from '../../inference/contract.js';
import { recordedStoppedRule } from '../data/stopped.js';
import { compareWithBaseline, DRIFT_DEFAULTS, driftedNames, driftNotes, featureStatus, noNullWarning, type DriftReport } from '../drift/compare.js';
import { notJudgedLines, observedInterval, verdictLine } from '../drift/verdict.js';
import { EXIT, TrainerError } from '../errors.js';
import { createProgress, finishing } from '../progress.js';
import { readBestRecord } from '../registry/best-record.js';
import { noUsableRows, prepareData, removedIn, skippedLabelWarning, type Uncleaned } from '../train/prepare.js';
import { dataWarnings } from '../train/warnings.js';
import { optionalNumber, parseOptions, requireSource, timeRange, type Command, type Io } from './command.js';

const HELP = `Usage: pumpwatch-trainer drift --source ID (--from DATE --to DATE | --days N) [--psi X] [--ks X]

Compares the source's readings of the range, as the agent received them (maintenance-labelled
rows left out, and the rows the model's stopped-when rule calls stopped or starting: a pump that
stopped more often has not drifted; nothing else removed), with the baseline statistics stored with its best model
(model.json): per feature the population stability index over the baseline's deciles and the
Kolmogorov-Smirnov distance. Prints a table. On few rows both are noisy, the recent n and the
N training rows the baseline was made of: a threshold is raised to what independent unchanged
rows stay below 99.9 % of the time with n_eff = n*N/(n+N) (KS 1.95/sqrt(n_eff); PSI
chi-square(9 df, 0.999)/n_eff = 27.88/n_eff for deciles), and PSI is not judged below 50 rows
(5 per decile) on either side. Readings are correlated in time, so each threshold is also at
least 1.5 x how far blocks of about n of the model's own training rows strayed from its
baseline (model.json driftNull; a model without it is judged as before, with a warning). The
table shows n and the thresholds used. A feature with more than 5 % of its values in stuck
runs or outliers (what cleaning removes before training: a frozen or dead sensor) drifted;
cleaning's warnings go to stderr. A feature whose median lies beyond the training values'
range by more than its width drifted, whatever PSI and KS say (PSI cannot exceed what the rows
reach all in one bin: a threshold above that reads "PSI not judged").
A feature of the model missing from the data (MISSING) and a feature of the data that the
model lacks (NEW: a sensor added or renamed, one that a retrain would use: in at least half
of the readings and in the recent ones, not a counter, not left out by the model's --exclude)
count as drift: the model cannot score, or cannot watch, what the pump now reports.

Options:
  --source ID         data source (pump) id (required)
  --from DATE, --to DATE, --days N   the range (as for train)
  --psi X             PSI above which a feature drifted (default ${DRIFT_DEFAULTS.psi}; raised on few rows)
  --ks X              KS distance above which a feature drifted (default ${DRIFT_DEFAULTS.ks}; raised on few rows)
  -h, --help          this help

A feature neither PSI nor KS can call drift in on these rows (and that no other rule found
drifted) is "not judged": a line before the verdict names it and says why: too few recent rows
(how many would do, and how long a window that is at the pump's observed interval), or a
baseline no window can be judged against (retrain on a longer range, or on more rows).

Exit codes: 0 no drift (every feature judged), ${EXIT.drifted} drift above a threshold, by another rule or a MISSING or NEW
feature (whatever was not judged), ${EXIT.inconclusive} inconclusive (nothing judged drifted, some features not judged),
1 failure (a PW_TRAINER_* code says which; PW_TRAINER_NO_DATA: no usable reading in the range), 2 bad usage.`;

export const driftCommand: Command = {
  name: 'drift',
  summary: "compare recent data with the best model's baseline (PSI, KS); exit 3 on drift, 5 when inconclusive",
  help: HELP,
  async run(args, io, ctx) {
    const v = parseOptions('drift', args, { source: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, days: { type: 'string' }, psi: { type: 'string' }, ks: { type: 'string' } });
    if (v.help === true) {
      io.out(HELP);
      return 0;
    }
    const source = requireSource('drift', v.source);
    const { from, to } = timeRange('drift', v, ctx.now());
    const thresholds = { psi: optionalNumber(v.psi, '--psi', 0, 100) ?? DRIFT_DEFAULTS.psi, ks: optionalNumber(v.ks, '--ks', 0, 1) ?? DRIFT_DEFAULTS.ks };
    const container = ctx.container();
    const best = await readBestRecord(ctx.models(), source, ctx.now());
    if (!best) throw new TrainerError('PW_TRAINER_NO_MODEL', `no model was promoted for "${source}": no baseline to compare with`);
    const { record } = best;
    const progress = createProgress({ raw: io.raw, line: io.err }, ctx.isTTY, `drift ${source}`);
    // Read as train reads it (counters and the model's --exclude left out, the model's features kept), so that a NEW feature is one a retrain would use.
    const load = { exclude: record.data.excludedFeatures ?? [], leaveOutCounters: true, keep: Object.keys(record.baseline) };
    // The live model's stopped-when rule (its training run's record): its baseline holds no stop, nor should the rows judged against it.
    const stop = record.data.stopped;
    const stoppedWhen = stop ? recordedStoppedRule(stop) : undefined;
    const { loaded, cleaned, skippedLabels, uncleaned, stopped } = await finishing(progress, () => prepareData(container, { source, from, to }, progress, { load, uncleaned: true, stoppedWhen }));
    for (const s of skippedLabels) io.err(`warning: ${skippedLabelWarning(s)}`);
    const u = uncleaned as Uncleaned;
    if (u.rows.length === 0) throw await noUsableRows(container, { source, from, to }, loaded.readings);
    // What cleaning would remove (a frozen or dead sensor's readings above all) is said, and judged below: never dropped unseen.
    for (const w of dataWarnings(loaded, cleaned.stats, [])) io.err(`warning: ${w}`);
    if (!record.driftNull) io.err(`warning: ${noNullWarning(record.version)}`);
    const report = compareWithBaseline(record.baseline, u.features, u.rows, thresholds, loaded.leftOutButKept, { driftNull: record.driftNull ?? null, removed: removedIn(u) });
    printDrift(io, source, record.version, u.rows.length, report, observedInterval(u.timestamps));
    if (stoppedWhen && stopped) io.out(`  stopped  ${stopped.stopped + stopped.starting + stopped.stopping} rows left out by ${record.version}'s stopped-when rule (${describeStoppedRule(stoppedWhen)}): ${stopped.stopped} stopped, ${stopped.starting} starting${stopped.stopping > 0 ? `, ${stopped.stopping} stopping` : ''}`);
    return report.verdict === 'drift' ? EXIT.drifted : report.verdict === 'inconclusive' ? EXIT.inconclusive : EXIT.ok;
  },
};

/** The table, the notes, what was not judged and why, and the verdict last. `intervalMs`: the pump's observed time between readings, to say how long a window would judge what was not. */
export function printDrift(io: Io, source: string, version: string, rows: number, report: DriftReport, intervalMs = NaN): void {
  io.out(`${source}: ${rows} recent rows against the baseline of ${version} (PSI > ${report.thresholds.psi} or KS > ${report.thresholds.ks}, higher for few rows, or a median far outside the trained range = drift)`);
  for (const line of driftNotes(rows, report)) io.out(`  ${line}`);
  // The feature column as wide as the longest name (at least 24), so that every row lines up.
  const added = report.added;
  const width = Math.max(24, ...report.features.map((f) => f.feature.length), ...report.missing.map((m) => m.length), ...added.map((a) => a.length));
  io.out(`  ${'feature'.padEnd(width)} ${'PSI'.padStart(8)} ${'KS'.padStart(7)} ${'baseline mean'.padStart(14)} ${'recent mean'.padStart(12)} ${'n'.padStart(7)} ${'PSI >'.padStart(7)} ${'KS >'.padStart(6)}  status`);
  for (const f of report.features) {
    const psiLimit = f.effective.psi === null ? '-' : f.effective.psi.toFixed(3);
    io.out(
      `  ${f.feature.padEnd(width)} ${f.psi.toFixed(3).padStart(8)} ${f.ks.toFixed(3).padStart(7)} ${fmt(f.baselineMean).padStart(14)} ${fmt(f.recentMean).padStart(12)} ` +
        `${String(f.recentCount).padStart(7)} ${psiLimit.padStart(7)} ${f.effective.ks.toFixed(3).padStart(6)}  ${featureStatus(f)}`,
    );
  }
  for (const m of report.missing) io.out(`  ${m.padEnd(width)} ${'-'.padStart(8)} ${'-'.padStart(7)} ${''.padStart(14)} ${''.padStart(12)} ${'0'.padStart(7)} ${''.padStart(7)} ${''.padStart(6)}  MISSING (not in the recent data)`);
  for (const a of added) io.out(`  ${a.padEnd(width)} ${'-'.padStart(8)} ${'-'.padStart(7)} ${''.padStart(14)} ${''.padStart(12)} ${''.padStart(7)} ${''.padStart(7)} ${''.padStart(6)}  NEW (in the data, not in the model: a retrain would use it)`);
  for (const line of notJudgedLines(report, intervalMs)) io.out(`  ${line}`);
  io.out(`  ${verdictLine(report, driftedNames(report))}`);
}

function fmt(x: number): string {
  return Math.abs(x) >= 1000 || (Math.abs(x) < 0.01 && x !== 0) ? x.toExponential(3) : x.toFixed(4);
}
