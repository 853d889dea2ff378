/**
 * The registry's part of a run: the version registered (model.json and model.onnx, always), best.json
 * moved to it when it was promoted (a conditional write on the ETag read first), and this run's
 * evaluation recorded (registry/evaluation.ts), whatever became of the promotion.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { bestModelBlobName, modelBlobName } from '../../sync/layout.js';
import { TrainerError } from '../errors.js';
import type { Progress } from '../progress.js';
import { recordEvaluation } from '../registry/evaluation.js';
import { readBest, type BestState } from '../registry/read.js';
import { describeMove, evaluationOf, nextPointer, type ModelRecord } from '../registry/records.js';
import { registerVersion, type Registered } from '../registry/register.js';
import { rewriteRecord, writeBest } from '../registry/write.js';

export interface Published {
  /** The blob this run's evaluation was written to. */
  evaluationBlob: string;
  /** When the version was registered before and its model.json keeps that run's evaluation: that run's time. */
  firstEvaluatedAt?: string;
}

/**
 * Registers `record` with its model `bytes`, clears the progress bar, promotes the version when
 * `record.decision` says so (`best`: best.json as read before the decision; `deployPending`:
 * `--deploy`), and records the evaluation. A run that lost the race to best.json fails with
 * PW_TRAINER_REGISTRY_CONFLICT once its evaluation is recorded.
 */
export async function publish(container: ContainerClient, record: ModelRecord, bytes: Uint8Array, best: BestState | null, deployPending: boolean, progress: Progress): Promise<Published> {
  const decision = record.decision;
  const registered = await registerVersion(container, record, bytes);
  progress.finish();
  const settled = decision.promoted ? await promote(container, record, best, registered, deployPending) : { lost: null, rewritten: false };
  // Written after the promotion settled: a run that lost the race to best.json records itself as not promoted.
  const evaluationBlob = await recordEvaluation(container, evaluationOf(record, settled.lost ? { ...decision, promoted: false, reason: settled.lost.reason } : decision));
  if (settled.lost) throw new TrainerError('PW_TRAINER_REGISTRY_CONFLICT', `${settled.lost.message}; this run's evaluation is in ${evaluationBlob}`, { cause: settled.lost.cause });
  return { evaluationBlob, ...(registered.existing !== null && !settled.rewritten ? { firstEvaluatedAt: registered.existing.createdAt } : {}) };
}

/**
 * Moves best.json to `record` (conditional on the ETag read before the decision) and keeps the
 * version's model.json truthful about it.
 *
 * model.json is written first, by registerVersion, with this run's decision: best.json must
 * never name a version without a record. Then:
 * - the move fails (another run promoted first): model.json is rewritten, conditional on its
 *   own ETag, as not promoted, "another run promoted X first", and `lost` says so, for the
 *   conflict error that names this version as registered but not best (a record an earlier run
 *   wrote, when this version was best once, is left as it is). Unless X is this very version
 *   (two runs of the same data): it is best, the record is true as it stands, and the run succeeded;
 * - the move succeeds on a version whose model.json an earlier run had written as not promoted
 *   (it lost such a race, or kept the live model): model.json is rewritten with this run's record
 *   (`rewritten`).
 * A conditional rewrite that finds model.json changed leaves it: another run settled it since.
 * The one state this cannot exclude: a process killed between the model.json write and the move
 * leaves `promoted: true` on a version best.json never named; a later run of that version that
 * promotes it or loses the race rewrites it. No lock, no second document: best.json alone says
 * which version is live, model.json says what became of its run. The caller throws `lost` once
 * it has recorded this run's evaluation (registry/evaluation.ts) as not promoted.
 */
async function promote(
  container: ContainerClient,
  record: ModelRecord,
  best: BestState | null,
  registered: Registered,
  deployPending: boolean,
): Promise<{ lost: { reason: string; message: string; cause: unknown } | null; rewritten: boolean }> {
  try {
    await writeBest(container, nextPointer(record, best?.pointer ?? null, record.createdAt, record.decision.reason, deployPending), best?.etag ?? null);
  } catch (err) {
    if (!(err instanceof TrainerError) || err.code !== 'PW_TRAINER_REGISTRY_CONFLICT') throw err;
    const now = await readBest(container, record.source).then(
      (s) => s?.pointer ?? null,
      () => null,
    );
    const winner = now?.version ?? null;
    // Two runs of the same data: the other one promoted this very version, which is best.
    if (winner === record.version) return { lost: null, rewritten: false };
    const json = modelBlobName(record.source, record.version, 'model.json');
    // A rollback is named as one: "promoted" would hide that someone took a model off the gateways meanwhile.
    const reason = now === null ? 'best.json changed while this run was deciding (another run moved it)' : `${describeMove(now)} first`;
    // Only the record this run wrote: an earlier run's (this version was best once) stays as it was.
    const rewritten = registered.existing === null && (await rewriteRecord(container, { ...record, decision: { ...record.decision, promoted: false, reason } }, registered.etag));
    const message = `${bestModelBlobName(record.source)} changed while this run was deciding: ${reason}; ${record.version} is registered (${json}${registered.existing === null ? ', not promoted' : ''}) but is not best; run again to compare it with the live model`;
    return { lost: { reason, message, cause: err }, rewritten };
  }
  if (registered.existing !== null && !registered.existing.decision.promoted) return { lost: null, rewritten: await rewriteRecord(container, record, registered.etag) };
  return { lost: null, rewritten: false };
}
