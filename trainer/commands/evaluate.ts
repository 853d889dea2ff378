/** `pumpwatch-trainer evaluate`: score one model on a source's range with the train comparison's metric. */
import { readFile } from 'node:fs/promises';
import { TrainerError, UsageError } from '../errors.js';
import { formatAgentView, scoreAsAgent, type RawReadings } from '../eval/as-agent.js';
import { describeStoppedRule, readModelMetadata } from '../../inference/contract.js';
import { alarmsRule, describeAlarms, tooManyAlarms } from '../eval/alarms.js';
import { evaluate, faultSpreads, formatEvaluation, MIN_LABELLED_EPISODES, MIN_LABELLED_ROWS, planEvaluation, RANGE_ROWS } from '../eval/criterion.js';
import { OnnxScorer } from '../eval/score.js';
import { readProblem } from '../files.js';
import { createProgress, finishing } from '../progress.js';
import { readBestRecord } from '../registry/best-record.js';
import { readModelBytes } from '../registry/model-blob.js';
import { readModelRecord } from '../registry/read.js';
import { comparisonLoad, noUsableRows, prepareData, skippedLabelWarning } from '../train/prepare.js';
import { optionalInteger, parseOptions, requireSource, requireVersion, timeRange, type Command } from './command.js';

const HELP = `Usage: pumpwatch-trainer evaluate --source ID (--from DATE --to DATE | --days N) [--version V | --model FILE] [--seed N]

Scores a model on every cleaned reading of the source in the range (none held out), as "train"
scores the challenger and the live model on its held-out rows: technicians' fault labels when
the range has enough of them (${MIN_LABELLED_ROWS} rows in ${MIN_LABELLED_EPISODES} episodes), else synthetic sensor faults in the
features the model watches, with the labelled rows as further positives. The range is read as
"train" reads it (counters left out unless the model uses them); values the model does not use
are not cleaned and cost it no row. Prints the decision metric (balanced accuracy), F1, FAR, MAR
and the counts; then what the field got: every raw reading of the range (before cleaning) scored
as the agent scores it, and the share of normal readings it flags.

Options:
  --source ID         data source (pump) id (required)
  --from DATE, --to DATE, --days N   the range (as for train)
  --version V         a registered version (default: the best one)
  --model FILE        a local ONNX model instead (e.g. written by "fit")
  --seed N            seed of the synthetic faults (default 1)
  -h, --help          this help

Exit codes: 0 scored, 1 failure (a PW_TRAINER_* code says which; PW_TRAINER_NO_DATA: no usable
reading in the range), 2 bad usage.`;

export const evaluateCommand: Command = {
  name: 'evaluate',
  summary: 'score a registered or local model on a range of a source',
  help: HELP,
  async run(args, io, ctx) {
    const v = parseOptions('evaluate', args, {
      source: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      days: { type: 'string' },
      version: { type: 'string' },
      model: { type: 'string' },
      seed: { type: 'string' },
    });
    if (v.help === true) {
      io.out(HELP);
      return 0;
    }
    const source = requireSource('evaluate', v.source);
    const { from, to } = timeRange('evaluate', v, ctx.now());
    const seed = optionalInteger(v.seed, '--seed', 0) ?? 1;
    if (v.version !== undefined) requireVersion('evaluate', v.version);
    const container = ctx.container();
    let bytes: Uint8Array;
    if (typeof v.model === 'string') bytes = await readModelFile(v.model);
    else {
      const record = typeof v.version === 'string' ? await readModelRecord(ctx.models(), source, v.version) : (await readBestRecord(ctx.models(), source, ctx.now()))?.record;
      if (record === undefined) throw new TrainerError('PW_TRAINER_NO_MODEL', `no model was promoted for "${source}"; pass --version or --model`);
      bytes = await readModelBytes(ctx.models(), record);
    }
    const { features, stoppedWhen } = readModelMetadata(bytes);
    const progress = createProgress({ raw: io.raw, line: io.err }, ctx.isTTY, `evaluate ${source}`);
    // Read as train reads it; the values the model does not use cost it no row and get no fault.
    // Rows the model's stopped-when rule calls stopped or starting are left out, as train's comparison leaves them out.
    const options = { raw: true, load: comparisonLoad([], features), watched: features, stoppedWhen };
    const { loaded, cleaned, raw, skippedLabels } = await finishing(progress, () => prepareData(container, { source, from, to }, progress, options));
    for (const s of skippedLabels) io.err(`warning: ${skippedLabelWarning(s)}`);
    if (cleaned.series.rows.length === 0) throw await noUsableRows(container, { source, from, to }, loaded.readings);
    const scorer = await OnnxScorer.load(bytes);
    try {
      const plan = planEvaluation(cleaned, 0, faultSpreads(cleaned.series.rows, cleaned.series.features, scorer.metadata.features), seed, RANGE_ROWS);
      const e = await evaluate(scorer, plan);
      const m = scorer.metadata;
      io.out(`${source}: model ${m.version} (${m.algorithm}, window ${m.window}, threshold ${m.threshold}) on ${cleaned.series.rows.length} rows`);
      io.out(`  ${plan.description}${stoppedWhen ? `; rows where the pump is stopped or starting by its stopped-when rule (${describeStoppedRule(stoppedWhen)}) left out` : ''}`);
      io.out(`  ${formatEvaluation(e, true)}`);
      // The figure train's alarm ceiling judges (--max-alarms-per-day).
      if (e.alarms) io.out(`  alarms   ${describeAlarms(e.alarms)} on the normal rows${tooManyAlarms(e.alarms.runs, e.alarms.hours) ? `: ${alarmsRule()}, above train's default alarm ceiling` : ''}`);
    } finally {
      await scorer.release();
    }
    // What the field would have got: every raw reading of the range, scored as the agent scores it.
    const view = await scoreAsAgent(bytes, source, raw as RawReadings, 0);
    io.out(`  as agent every raw reading of the range, ${view.readings} of them: ${formatAgentView(view)}`);
    return 0;
  },
};

async function readModelFile(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new UsageError(`cannot read the model "${path}": ${await readProblem(path, err)}`);
  }
}
