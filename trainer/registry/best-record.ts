/**
 * best.json as the commands that train, evaluate, watch drift or deploy rely on it: checked against
 * the model.json of the version it names, and refused when it is missing although registered
 * versions show that one was made best (a lost best.json would drop every guard of a promotion),
 * with the repair to run: a `rollback --version` of the version the records show was live last,
 * or, for a first promotion that did not finish, a rerun of the run that made it.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { bestModelBlobName, modelBlobName } from '../../sync/layout.js';
import { TrainerError } from '../errors.js';
import type { ModelRecord } from './records.js';
import { lastMadeBest, timeOf } from './last-best.js';
import { readBest, readModelRecord, readRegisteredRecords, versionFolder, type BestState } from './read.js';

/**
 * best.json and the model.json of the version it names, checked against each other (a
 * hand-edited or half-copied pointer is refused, not deployed or defended): same source and
 * version, same sha256 and size of model.onnx. Null when no model was promoted; refused when
 * best.json is missing but should not be (missingBest).
 */
export async function readBestRecord(container: ContainerClient, source: string, now: Date = new Date()): Promise<{ state: BestState; record: ModelRecord } | null> {
  const read = await readBestOrUnfinished(container, source, now);
  if (read.unfinished !== null) throw read.unfinished.refusal;
  return read.best;
}

/**
 * A first promotion that did not finish: the one version of the source, promoted by its
 * model.json, and no best.json (missingBest). Only the version itself can finish it: a run
 * whose challenger is `record.version` (the same data and options give the same version) writes
 * best.json (If-None-Match: *) as that run would have; any other run is refused with `refusal`.
 */
export interface UnfinishedPromotion {
  record: ModelRecord;
  refusal: TrainerError;
}

/**
 * readBestRecord for `train`, which may finish a first promotion: the best version with its
 * record, or the unfinished promotion instead of its refusal (every other refusal is thrown).
 */
export async function readBestOrUnfinished(
  container: ContainerClient,
  source: string,
  now: Date = new Date(),
): Promise<{ best: { state: BestState; record: ModelRecord } | null; unfinished: UnfinishedPromotion | null }> {
  const state = await readBest(container, source);
  if (!state) {
    const missing = await missingBest(container, source, now);
    if (missing === null) return { best: null, unfinished: null };
    if (missing.unfinished === null) throw missing.refusal;
    return { best: null, unfinished: { record: missing.unfinished, refusal: missing.refusal } };
  }
  const { pointer } = state;
  const record = await readModelRecord(container, source, pointer.version).catch((err: unknown) => {
    // A damaged model.json of the live version: every train, drift and deploy stops here; rollback does not need it.
    if (err instanceof TrainerError && err.code === 'PW_TRAINER_REGISTRY_INVALID') {
      throw new TrainerError(
        'PW_TRAINER_REGISTRY_INVALID',
        `${err.message}; best.json names ${pointer.version}: restore that model.json, or roll back away from it (pumpwatch-trainer rollback --source ${source}, which does not need it), then delete ${versionFolder(source, pointer.version)} to retrain that version`,
        { cause: err },
      );
    }
    throw err;
  });
  const name = bestModelBlobName(source);
  if (pointer.sha256 !== record.model.sha256 || pointer.size !== record.model.size) {
    throw new TrainerError('PW_TRAINER_REGISTRY_INVALID', `${name} does not match ${modelBlobName(source, pointer.version, 'model.json')}: sha256/size ${pointer.sha256.slice(0, 12)}…/${pointer.size} in best.json, ${record.model.sha256.slice(0, 12)}…/${record.model.size} in model.json`);
  }
  return { best: { state, record }, unfinished: null };
}

/**
 * How long a first promotion may be in flight: from its model.json (written with `promoted: true`
 * and `createdAt` just before) to its best.json write, a few blob writes. Generous, for clock skew
 * between pods.
 */
export const FIRST_PROMOTION_IN_FLIGHT_MS = 10 * 60_000;

/** best.json is missing and should not be: see missingBest. */
export async function refuseMissingBest(container: ContainerClient, source: string, now: Date = new Date()): Promise<void> {
  const missing = await missingBest(container, source, now);
  if (missing !== null) throw missing.refusal;
}

/**
 * best.json is absent: fine (null) when no version is registered (a new source), refused when a
 * registered model.json shows that a version was made best: one trained against a live model (it
 * names a `championVersion`), one a rollback marked (`rolledBack`, `restoredAt`), or one promoted
 * (`promoted: true`) longer than FIRST_PROMOTION_IN_FLIGHT_MS ago. Going on as if nothing was
 * ever promoted would drop the older-data guard, the comparison with the live model and the
 * rollback history, and promote whatever this run trains. Left to go on as a first run: versions
 * none of which was promoted (every first run so far lost or failed), and a first promotion in
 * flight (its model.json is written before best.json; a second run starting meanwhile must not
 * fail): its best.json write (If-None-Match: *) settles any race.
 *
 * What the refusal says depends on what the records show. A champion or a rollback mark proves
 * that best.json was written: it was lost, and restoring it is the first repair. Promotions alone
 * do not: the run that promoted may have stopped between its model.json and its best.json (a pod
 * killed there), and there is nothing to restore. When that run's version is the only one
 * registered (`unfinished`), a rerun of it may finish the promotion (readBestOrUnfinished).
 */
async function missingBest(container: ContainerClient, source: string, now: Date): Promise<{ refusal: TrainerError; unfinished: ModelRecord | null } | null> {
  const { versions, records } = await readRegisteredRecords(container, source);
  if (versions.length === 0) return null;
  const inFlight = (r: ModelRecord) => now.getTime() - timeOf(r.createdAt) < FIRST_PROMOTION_IN_FLIGHT_MS;
  const wasBest = (r: ModelRecord) => r.evaluation.championVersion !== null || r.rolledBack !== undefined || r.restoredAt !== undefined;
  const existed = records.some((r) => wasBest(r) || (r.decision.promoted && !inFlight(r)));
  if (!existed) return null;
  const name = bestModelBlobName(source);
  const shown = versions.length > 5 ? `${versions.slice(-5).join(', ')} and ${versions.length - 5} older` : versions.join(', ');
  const live = lastMadeBest(records);
  const missing = `${name} is missing but ${versions.length} version(s) of "${source}" are registered (${shown}): nothing is compared or promoted without it. `;
  if (!records.some(wasBest)) {
    // Promotions only: best.json may never have been written. A version all records are readable for, and the only one: a rerun of it finishes.
    const only = versions.length === 1 && records.length === 1 ? (records[0] as ModelRecord) : null;
    const made = live === null ? 'V, the version that should be live' : live.version;
    const rerun = only === null ? '' : `a train of the range that made it with the options of that run (pumpwatch-trainer train --source ${source} --from ${only.data.from} --to ${only.data.to}: the same data and options give the same version) writes best.json for it, as that run would have; or `;
    return {
      unfinished: only,
      refusal: new TrainerError(
        'PW_TRAINER_REGISTRY_INVALID',
        missing +
          `No model.json shows that best.json was ever written (none names a live model it was compared with, none records a rollback)${live === null ? '' : `: ${live.version} was ${live.how}, and that run may have stopped before writing best.json`}. ` +
          `To finish it, ${rerun}make ${made} best with: pumpwatch-trainer rollback --source ${source} --version ${made} --no-deploy (it checks that version's model.onnx and writes best.json)`,
      ),
    };
  }
  const rolledBack = records.filter((r) => r.rolledBack !== undefined).map((r) => r.version);
  const lost = `; the restored best.json has no history of earlier bests (a plain rollback then has nowhere to go: use --version)${
    rolledBack.length > 0 ? `, and takes the versions rolled back from (${rolledBack.join(', ')}) from their model.json` : ''
  }`;
  const repair =
    live === null
      ? `pumpwatch-trainer rollback --source ${source} --version V --no-deploy, V the version that was live (no readable model.json says it was made best by a train or a rollback and not rolled back from since${lost})`
      : `pumpwatch-trainer rollback --source ${source} --version ${live.version} --no-deploy (it checks that version's model.onnx; ${live.version} is the version the model.json records show made best last, ${live.how}, and not rolled back from since: ` +
        `check that it was the live one when records written by older trainers, which do not record rollbacks, are involved${lost})`;
  return { unfinished: null, refusal: new TrainerError('PW_TRAINER_REGISTRY_INVALID', `${missing}Restore it (undelete it, or copy it back), or make the version that should be live best again with: ${repair}`) };
}
