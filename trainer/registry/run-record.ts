/**
 * train-all's outcome record of one source for one range, in the registry's container under
 * runs/{from}_{to}/{source}.json (sync/layout.ts runRecordBlobName): what the pod's log said of
 * the source (promoted, kept, skipped and why, failed with its code), kept after the log is gone,
 * and what `train-all --resume` reads to leave a source done by an earlier attempt of the same
 * range alone. Written by every attempt that reaches the source's outcome, replacing the one
 * before: it is the latest outcome of that range, and a failed source that a retry then trains
 * must not stay recorded as failed (nor a done one as done when a later run failed it).
 */
import type { ContainerClient } from '@azure/storage-blob';
import { z } from 'zod';
import { runRecordBlobName } from '../../sync/layout.js';
import { TrainerError } from '../errors.js';
import { parse, readBody, registryError, statusOf, streamToBuffer, uploadBlob } from './storage.js';

export const RUN_RECORD_SCHEMA = 1;

/** The reasons a source is skipped, as stable words (train/request.ts TrainOutcome `skipKind`). */
export type SkipKind = 'no-readings' | 'stopped' | 'no-drift' | 'inconclusive';

export const RunRecordSchema = z.object({
  schema: z.literal(RUN_RECORD_SCHEMA),
  source: z.string(),
  /** The range trained, ISO; the blob's folder says the same. */
  range: z.object({ from: z.string(), to: z.string() }),
  outcome: z.enum(['promoted', 'kept', 'skipped', 'failed']),
  /** Any word, not only SkipKind's: a record of a newer trainer (a kind added) is still read by --resume. */
  skipKind: z.string().optional(),
  /** A failure's PW_* code. */
  code: z.string().optional(),
  /** One line: the decision, the skip's or the failure's reason, with secrets removed as printed. */
  reason: z.string(),
  /** The challenger's version (trained or, with the same data and options, the live model itself). */
  version: z.string().optional(),
  /** The live version once the source was done (the promoted one, or the one kept). */
  live: z.string().optional(),
  /** The blob of this run's evaluation (registry/evaluation.ts), when it compared. */
  evaluation: z.string().optional(),
  /** With --deploy: the deploy of the best version was left pending (best.json's deployPending). */
  deployPending: z.boolean().optional(),
  /** The train options that change the outcome, with their defaults filled in, and their hash. */
  options: z.record(z.string(), z.unknown()),
  optionsHash: z.string(),
  /**
   * The ids of the source's labels and withdrawals whose span overlaps the range (a withdrawal:
   * its label's), as this attempt read them, sorted: --resume trains the source again when the
   * labels read then have others (train-all-stale.ts). Absent from records written before
   * 2026-12-08: such a record is resumed whatever the labels say, as it was then.
   */
  labelIds: z.array(z.string()).optional(),
  /** The trainer's build (lib/build-info.ts), as model.json records it. */
  build: z.string(),
  startedAt: z.string(),
  finishedAt: z.string(),
  /** `I/N` of the run. */
  shard: z.string(),
});
export type RunRecord = z.infer<typeof RunRecordSchema>;

/** The record of `source` for the range, or null when none was written. A record that does not parse is PW_TRAINER_REGISTRY_INVALID. */
export async function readRunRecord(container: ContainerClient, from: number, to: number, source: string): Promise<RunRecord | null> {
  const name = runRecordBlobName(from, to, source);
  let text: string;
  try {
    text = await readBody(container, name, (w) => container.getBlockBlobClient(name).download(0, undefined, w), async (res) => (await streamToBuffer(res.readableStreamBody)).toString('utf8'));
  } catch (err) {
    if (statusOf(err) === 404) return null;
    throw registryError(`reading ${name}`, err);
  }
  const record = parse(RunRecordSchema, text, name);
  if (record.source !== source) throw new TrainerError('PW_TRAINER_REGISTRY_INVALID', `${name} is the record of source "${record.source}", not "${source}"`);
  return record;
}

/** Writes `record` over any earlier one of its source and range (see the top of this file for why). Returns its blob name. */
export async function writeRunRecord(container: ContainerClient, record: RunRecord): Promise<string> {
  const name = runRecordBlobName(Date.parse(record.range.from), Date.parse(record.range.to), record.source);
  const body = Buffer.from(`${JSON.stringify(record, null, 2)}\n`);
  try {
    await uploadBlob(container, name, body, { blobHTTPHeaders: { blobContentType: 'application/json' } });
  } catch (err) {
    throw registryError(`writing ${name}`, err);
  }
  return name;
}
