/**
 * Whether a range has the rows to train on: a range without a single reading, or with too few
 * rows only because the pump was stopped by the run's stopped-when rule, is skipped (train-all:
 * `skipWithoutReadings`) or fails with PW_TRAINER_NO_DATA (train); too few usable rows otherwise
 * always fail, with the figures of what cleaning dropped and why.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { describeStoppedRule } from '../../inference/contract.js';
import type { Cleaned } from '../data/clean.js';
import { TrainerError } from '../errors.js';
import { refused, type Live } from './live.js';
import { between, newerReadingsNote, noUsableRows } from './prepare.js';
import type { RowCounts, TrainRange } from './range.js';
import { skipped, type TrainOutcome, type TrainRequest } from './request.js';
import type { RunStop } from './run-stop.js';
import { MIN_HOLDOUT_ROWS, MIN_TRAIN_ROWS } from './split.js';

/** A skipped outcome for a range without readings or stopped throughout, null when there are rows enough; throws when it cannot train. */
export async function skipShortRange(container: ContainerClient, req: TrainRequest, live: Live, range: TrainRange): Promise<TrainOutcome | null> {
  const { unfinished, stop } = live;
  if (range.loaded.readings === 0) {
    if (unfinished !== null) throw unfinished.refusal;
    if (!req.skipWithoutReadings) throw await noUsableRows(container, req, 0);
    return skipped(req.source, 'no-readings', `no readings ${between(req)}${await newerReadingsNote(container, req)}`, range.labelWarnings);
  }
  // Too few rows only because the pump was stopped (a standby or seasonal pump): nothing is wrong with its data.
  const stoppedOnly = stop ? stoppedShortage(req, range.cleaned, range.counts, stop) : null;
  if (stoppedOnly !== null) {
    if (unfinished !== null) throw unfinished.refusal;
    if (!req.skipWithoutReadings) throw new TrainerError('PW_TRAINER_NO_DATA', `"${req.source}" was ${stoppedOnly}`);
    return skipped(req.source, 'stopped', stoppedOnly, range.labelWarnings);
  }
  await checkEnough(container, req, range.cleaned, range.counts, stop).catch((err: unknown) => {
    throw refused(live, err);
  });
  return null;
}

const tooFew = (c: RowCounts): boolean => c.train < MIN_TRAIN_ROWS || c.holdout < MIN_HOLDOUT_ROWS;

/** `too few running rows to train (0, need 100)`, with the held-out rows when they are short too. */
function shortOf(c: RowCounts, rows: string): string {
  const parts = [
    ...(c.train < MIN_TRAIN_ROWS ? [`train (${c.train}, need ${MIN_TRAIN_ROWS})`] : []),
    ...(c.holdout < MIN_HOLDOUT_ROWS ? [`hold out (${c.holdout}, need ${MIN_HOLDOUT_ROWS})`] : []),
  ];
  return `too few ${rows} to ${parts.join(' and to ')}`;
}

/**
 * Why the range is skipped when its rows are too few because the pump was stopped: with the rows
 * the stopped-when rule left out counted as usable (split as the others), there would be enough.
 * A pump on standby or out of season for the whole range is stopped by its model's own rule,
 * night after night: a failure there (PW_TRAINER_NO_DATA, exit 4 in train-all) failed its
 * shard every night for nothing a person could repair. null when there are enough rows, when
 * none was stopped, or when they are too few even so (checkEnough fails, with the stopped count).
 */
function stoppedShortage(req: TrainRequest, cleaned: Cleaned, c: RowCounts, stop: RunStop): string | null {
  const stopped = cleaned.stats.droppedStopped ?? 0;
  if (!tooFew(c) || stopped === 0) return null;
  const rows = cleaned.series.rows.length + stopped;
  const holdoutStart = Math.floor(rows * (1 - req.holdoutFraction));
  if (tooFew({ train: holdoutStart - c.faultRows, holdout: rows - holdoutStart, faultRows: c.faultRows })) return null;
  const from = stop.from === '--stopped-when' ? 'given by --stopped-when' : `inherited from ${stop.from}`;
  return `stopped for ${stopped} of ${cleaned.stats.inputRows} readings ${between(req)} (stop rule ${describeStoppedRule(stop.rule)}, ${from}): ${shortOf(c, 'running rows')}`;
}

async function checkEnough(container: ContainerClient, req: TrainRequest, cleaned: Cleaned, c: RowCounts, stop: RunStop | null): Promise<void> {
  if (!tooFew(c)) return;
  const s = cleaned.stats;
  const stopped = stop && s.droppedStopped ? `, ${s.droppedStopped} stopped by the stop rule ${describeStoppedRule(stop.rule)}` : '';
  throw new TrainerError(
    'PW_TRAINER_NO_DATA',
    `not enough usable rows of "${req.source}" ${between(req)}: ${c.train} to train (need ${MIN_TRAIN_ROWS}) and ${c.holdout} held out (need ${MIN_HOLDOUT_ROWS}) ` +
      `from ${s.inputRows} readings (${s.droppedMissing} dropped for missing values${missingDetail(s.missingByFeature)}, ${s.droppedMaintenance} in maintenance${stopped}` +
      `${c.faultRows > 0 ? `, ${c.faultRows} inside confirmed-fault labels, never trained on` : ''})${await newerReadingsNote(container, req)}`,
  );
}

/** `: Flow missing in 120, Pressure in 40` (most first), or '' when no row was dropped for a missing value. */
function missingDetail(byFeature: Record<string, number>): string {
  const parts = Object.entries(byFeature)
    .filter(([, rows]) => rows > 0)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  return parts.length === 0 ? '' : `: ${parts.map(([name, rows], i) => `${name}${i === 0 ? ' missing' : ''} in ${rows}`).join(', ')}`;
}
