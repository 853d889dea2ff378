/** `pumpwatch-trainer drift`: recent data against the live model's baseline statistics. */
import { compareWithBaseline, DRIFT_DEFAULTS, type DriftReport } from '../drift/compare.js';
import { EXIT, TrainerError } from '../errors.js';
import { createProgress } from '../progress.js';
import { readBestRecord } from '../registry/registry.js';
import { noUsableRows, prepareData, skippedLabelWarning } from '../train/prepare.js';
import { optionalNumber, parseOptions, requireSource, timeRange, type Command, type Io } from './command.js';

const HELP = `Usage: pumpwatch-trainer drift --source ID (--from DATE --to DATE | --days N) [--psi X] [--ks X]

Compares the source's cleaned readings of the range with the baseline statistics stored with
its best model (model.json): per feature the population stability index over the baseline's
deciles and the Kolmogorov-Smirnov distance. Prints a table.

Options:
  --source ID         data source (pump) id (required)
  --from DATE, --to DATE, --days N   the range (as for train)
  --psi X             PSI above which a feature drifted (default ${DRIFT_DEFAULTS.psi})
  --ks X              KS distance above which a feature drifted (default ${DRIFT_DEFAULTS.ks})
  -h, --help          this help

Exit codes: 0 no drift, ${EXIT.drifted} drift above a threshold, 1 failure (a PW_TRAINER_* code says
which; PW_TRAINER_NO_DATA: no usable reading in the range), 2 bad usage.`;

export const driftCommand: Command = {
  name: 'drift',
  summary: "compare recent data with the best model's baseline (PSI, KS); exit 3 on drift",
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
    const best = await readBestRecord(container, source);
    if (!best) throw new TrainerError('PW_TRAINER_NO_MODEL', `no model was promoted for "${source}": no baseline to compare with`);
    const { record } = best;
    const progress = createProgress({ raw: io.raw, line: io.err }, ctx.isTTY, `drift ${source}`);
    const { loaded, cleaned, skippedLabels } = await prepareData(container, { source, from, to }, progress);
    progress.finish();
    for (const s of skippedLabels) io.err(`warning: ${skippedLabelWarning(s)}`);
    if (cleaned.series.rows.length === 0) throw await noUsableRows(container, { source, from, to }, loaded.readings);
    const report = compareWithBaseline(record.baseline, cleaned.series.features, cleaned.series.rows, thresholds);
    printDrift(io, source, record.version, cleaned.series.rows.length, report);
    return report.drifted ? EXIT.drifted : EXIT.ok;
  },
};

export function printDrift(io: Io, source: string, version: string, rows: number, report: DriftReport): void {
  io.out(`${source}: ${rows} recent rows against the baseline of ${version} (PSI > ${report.thresholds.psi} or KS > ${report.thresholds.ks} = drift)`);
  // The feature column as wide as the longest name (at least 24), so that every row lines up.
  const width = Math.max(24, ...report.features.map((f) => f.feature.length), ...report.missing.map((m) => m.length));
  io.out(`  ${'feature'.padEnd(width)} ${'PSI'.padStart(8)} ${'KS'.padStart(7)} ${'baseline mean'.padStart(14)} ${'recent mean'.padStart(12)}  status`);
  for (const f of report.features) {
    io.out(`  ${f.feature.padEnd(width)} ${f.psi.toFixed(3).padStart(8)} ${f.ks.toFixed(3).padStart(7)} ${fmt(f.baselineMean).padStart(14)} ${fmt(f.recentMean).padStart(12)}  ${f.drifted ? 'DRIFT' : 'ok'}`);
  }
  for (const m of report.missing) io.out(`  ${m.padEnd(width)} ${'-'.padStart(8)} ${'-'.padStart(7)} ${''.padStart(14)} ${''.padStart(12)}  MISSING (not in the recent data)`);
  io.out(report.drifted ? `  drift: ${[...report.features.filter((f) => f.drifted).map((f) => f.feature), ...report.missing].join(', ')}` : '  no drift');
}

function fmt(x: number): string {
  return Math.abs(x) >= 1000 || (Math.abs(x) < 0.01 && x !== 0) ? x.toExponential(3) : x.toFixed(4);
}
