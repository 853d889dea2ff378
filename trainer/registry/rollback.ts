/**
 * Rollback: best.json goes back to the version promoted before the current one. In two steps so
 * that the command can check everything else (the deploy's modules) before anything moves:
 * `planRollback` reads and checks, `commitRollback` moves best.json (conditional on its ETag).
 * A rollback that deploys moves best.json with its deploy pending (records.ts deployPending).
 */
import type { ContainerClient } from '@azure/storage-blob';
import { bestModelBlobName } from '../../sync/layout.js';
import { TrainerError } from '../errors.js';
import { RECORD_SCHEMA, type BestPointer, type ModelRecord } from './records.js';
import { putBest, readBest, readModelBytes, readModelRecord, type BestState } from './registry.js';

export interface RollbackPlan {
  /** The current best version. */
  from: string;
  /** best.json's ETag as read: the move is conditional on it. */
  etag: string;
  /** The version rolled back to, its model.onnx read and checked (size, sha256). */
  record: ModelRecord;
  to: BestPointer;
}

/**
 * Reads best.json (its source, and its sha256 against the current model.json when that is still
 * there), picks the previous version (history entries equal to the current version are skipped),
 * and checks that version's model.json and model.onnx (present, recorded size and sha256): a
 * rollback never points best.json at a model that cannot be deployed. Changes nothing.
 */
export async function planRollback(container: ContainerClient, source: string, now: Date, deployPending = false): Promise<RollbackPlan> {
  const best = await readBest(container, source);
  if (!best) throw new TrainerError('PW_TRAINER_NO_MODEL', `no model was promoted for "${source}": nothing to roll back`);
  const current = best.pointer;
  const currentRecord = await readModelRecord(container, source, current.version).catch((err: unknown) => {
    // Rolling back away from a version whose model.json is gone or broken is what a rollback is for.
    if (err instanceof TrainerError && (err.code === 'PW_TRAINER_NO_MODEL' || err.code === 'PW_TRAINER_REGISTRY_INVALID')) return null;
    throw err;
  });
  if (currentRecord && (currentRecord.model.sha256 !== current.sha256 || currentRecord.model.size !== current.size)) {
    throw new TrainerError('PW_TRAINER_REGISTRY_INVALID', `${bestModelBlobName(source)} does not match the model.json of ${current.version} (sha256 or size differ): fix best.json before rolling back`);
  }
  const [previous, ...older] = current.history.filter((h) => h.version !== current.version);
  if (!previous) throw new TrainerError('PW_TRAINER_NO_MODEL', `"${source}" has no earlier best model than ${current.version}: nothing to roll back to`);
  const record = await readModelRecord(container, source, previous.version);
  await readModelBytes(container, record);
  return {
    from: current.version,
    etag: best.etag,
    record,
    to: {
      schema: RECORD_SCHEMA,
      source,
      version: record.version,
      algorithm: record.algorithm,
      sha256: record.model.sha256,
      size: record.model.size,
      promotedAt: now.toISOString(),
      reason: `rollback from ${current.version}`,
      history: older,
      // A rollback that deploys marks it in the move itself (records.ts deployPending), cleared once every module has it.
      ...(deployPending ? { deployPending: true } : {}),
    },
  };
}

/** Moves best.json as planned (PW_TRAINER_REGISTRY_CONFLICT when it changed since it was read); best.json as written. */
export async function commitRollback(container: ContainerClient, plan: RollbackPlan): Promise<BestState> {
  return putBest(container, plan.to, plan.etag);
}
