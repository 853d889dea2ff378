/**
 * Rollback: best.json goes back to the version promoted before the current one. In two steps so
 * that the command can check everything else (the deploy's modules) before anything moves:
 * `planRollback` reads and checks, `commitRollback` moves best.json (conditional on its ETag).
 * A rollback that deploys moves best.json with its deploy pending (records.ts deployPending).
 * The version rolled back from is recorded in best.json's `rolledBack`, so that a rerun of its
 * range (the same version) does not promote it again unseen (train/decide.ts `unlessRolledBack`); a rollback past
 * several bests records each of them, as the same number of plain rollbacks would. Once best.json
 * has moved, each of those versions' model.json is marked too (`rolledBack`), and the target's
 * (`restoredAt`): best.json alone holds these, and a lost best.json would lose them
 * (best-record.ts refuseMissingBest reads the marks to name the version to restore, and a restore
 * takes the list back from them).
 */
import type { ContainerClient } from '@azure/storage-blob';
import { bestModelBlobName } from '../../sync/layout.js';
import { safeErrorMessage } from '../../sync/redact.js';
import { TrainerError, UsageError } from '../errors.js';
import { describeMove, HISTORY_LIMIT, pointerTo, type BestPointer, type ModelRecord } from './records.js';
import { refuseMissingBest } from './best-record.js';
import { readModelBytes } from './model-blob.js';
import { readBest, readModelRecord, readRegisteredRecords, UnreadableBest, type BestState } from './read.js';
import { putBest, updateRecord } from './write.js';

export interface RollbackPlan {
  /** The current best version; null when best.json is missing (`--version` restores it). */
  from: string | null;
  /** best.json's ETag as read: the move is conditional on it (null: only if there is still none). */
  etag: string | null;
  /** The version rolled back to, its model.onnx read and checked (size, sha256). */
  record: ModelRecord;
  to: BestPointer;
  /** The versions this move rolls back from (each gets a `rolledBack` entry): marked in their model.json once it is done. */
  movedPast: string[];
}

/**
 * Reads best.json (its source, and its sha256 against the current model.json when that is still
 * there), picks the previous version (history entries equal to the current version are skipped),
 * and checks that version's model.json and model.onnx (present, recorded size and sha256): a
 * rollback never points best.json at a model that cannot be deployed. Changes nothing.
 *
 * `version`: the version to make best instead of the previous one (`rollback --version V`), a
 * choice made by hand. An earlier best (in the history) is a rollback to it, as far back as that;
 * any other registered version (a newer one rolled back from, one never promoted) is made best as
 * a promotion would, the current best going to the front of the history. It is taken off
 * `rolledBack`. With best.json missing (best-record.ts refuseMissingBest) it writes a new best.json
 * naming `version`, with no history: the repair path.
 */
export async function planRollback(container: ContainerClient, source: string, now: Date, deployPending = false, version?: string): Promise<RollbackPlan> {
  // An unreadable best.json is replaced by `--version` as a missing one is restored: conditional on the unreadable blob's ETag.
  const damaged: { best: UnreadableBest | null } = { best: null };
  const best = await readBest(container, source).catch((err: unknown) => {
    if (!(err instanceof UnreadableBest) || version === undefined) throw err;
    damaged.best = err;
    return null;
  });
  if (!best) {
    if (version === undefined) {
      await refuseMissingBest(container, source, now);
      throw new TrainerError('PW_TRAINER_NO_MODEL', `no model was promoted for "${source}": nothing to roll back`);
    }
    const record = await checkedTarget(container, source, version);
    // The versions rolled back from, as their model.json records them (the history of earlier bests is not recorded there: lost with best.json).
    const marked = (await readRegisteredRecords(container, source)).records
      .filter((r) => r.rolledBack !== undefined && r.version !== version)
      .map((r) => ({ version: r.version, at: r.rolledBack!.at, to: r.rolledBack!.to }))
      .sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0))
      .slice(0, HISTORY_LIMIT);
    const was = damaged.best;
    return {
      from: null,
      etag: was === null ? null : was.etag,
      record,
      to: pointerTo(record, { promotedAt: now.toISOString(), reason: `best.json restored by rollback --version ${version} (it was ${was === null ? 'missing' : 'unreadable'})`, history: [], rolledBack: marked, deployPending }),
      movedPast: [],
    };
  }
  const current = best.pointer;
  const currentRecord = await readModelRecord(container, source, current.version).catch((err: unknown) => {
    // Rolling back away from a version whose model.json is gone or broken is what a rollback is for.
    if (err instanceof TrainerError && (err.code === 'PW_TRAINER_NO_MODEL' || err.code === 'PW_TRAINER_REGISTRY_INVALID')) return null;
    throw err;
  });
  if (currentRecord && (currentRecord.model.sha256 !== current.sha256 || currentRecord.model.size !== current.size)) {
    throw new TrainerError('PW_TRAINER_REGISTRY_INVALID', `${bestModelBlobName(source)} does not match the model.json of ${current.version} (sha256 or size differ): fix best.json before rolling back`);
  }
  const history = current.history.filter((h) => h.version !== current.version);
  if (version === current.version) throw new UsageError(`--version ${version} is the best version of "${source}" already: nothing to roll back`);
  const target = version ?? history[0]?.version;
  if (target === undefined) throw new TrainerError('PW_TRAINER_NO_MODEL', `"${source}" has no earlier best model than ${current.version}: nothing to roll back to`);
  const record = version === undefined ? await readModelRecord(container, source, target) : await checkedTarget(container, source, target);
  if (version === undefined) await readModelBytes(container, record);
  const back = history.findIndex((h) => h.version === target);
  const reason = `rollback from ${current.version}${version === undefined ? '' : ` (--version ${version})`}`;
  if (back < 0) {
    // Not an earlier best: made best by hand as a promotion would, the current best kept in the history.
    const ahead = [{ version: current.version, promotedAt: current.promotedAt }, ...history].slice(0, HISTORY_LIMIT);
    return { from: current.version, etag: best.etag, record, to: pointerTo(record, { promotedAt: now.toISOString(), reason, history: ahead, rolledBack: rolledBackWithout(current.rolledBack, target), deployPending }), movedPast: [] };
  }
  // The current best and every best between it and the target (newest first): each is rolled back from.
  const movedPast = [...new Set([current.version, ...history.slice(0, back).map((h) => h.version)])].filter((v) => v !== target);
  const at = now.toISOString();
  const rolledBack = [
    ...movedPast.map((v) => ({ version: v, at, to: target })),
    ...(rolledBackWithout(current.rolledBack, target) ?? []).filter((r) => !movedPast.includes(r.version)),
  ].slice(0, HISTORY_LIMIT);
  return { from: current.version, etag: best.etag, record, to: pointerTo(record, { promotedAt: now.toISOString(), reason, history: history.slice(back + 1), rolledBack, deployPending }), movedPast };
}

/** The record of a version named by hand, its model.onnx read and checked. */
async function checkedTarget(container: ContainerClient, source: string, version: string): Promise<ModelRecord> {
  const record = await readModelRecord(container, source, version);
  await readModelBytes(container, record);
  return record;
}

function rolledBackWithout(list: BestPointer['rolledBack'], version: string): BestPointer['rolledBack'] {
  return list?.filter((r) => r.version !== version);
}

/**
 * Moves best.json as planned; best.json as written. When it changed since it was read (another
 * rollback, a promotion), nothing moves, and the error says what best.json names now and does
 * not say "run again": a second rollback would move best.json one more version back, which is
 * what the operator who ran this one did not ask for.
 */
export async function commitRollback(container: ContainerClient, plan: RollbackPlan): Promise<BestState & { unmarked: string[] }> {
  let moved: BestState;
  try {
    moved = await putBest(container, plan.to, plan.etag);
  } catch (err) {
    if (!(err instanceof TrainerError) || err.code !== 'PW_TRAINER_REGISTRY_CONFLICT') throw err;
    const source = plan.to.source;
    const name = bestModelBlobName(source);
    const now = await readBest(container, source).catch(() => null);
    const what = now === null ? 'it cannot be read now' : `${describeMove(now.pointer)} (${now.pointer.promotedAt}); it now names ${now.pointer.version}`;
    throw new TrainerError(
      'PW_TRAINER_REGISTRY_CONFLICT',
      `${name} changed while this rollback was being prepared: ${what}; nothing was rolled back by this run (it was to move ${plan.from ?? 'a missing or unreadable best.json'} → ${plan.to.version}). ` +
        `Read ${name} before rolling back again: another rollback would move it one more version back`,
      { cause: err },
    );
  }
  return { ...moved, unmarked: await markRecords(container, plan) };
}

/**
 * After the move: the versions rolled back from get `rolledBack` in their model.json, the target
 * `restoredAt` (and loses its own `rolledBack`). best.json has moved whatever happens here, so a
 * failure is not the rollback's: what could not be marked is returned for a warning (it matters
 * only if best.json is lost later). A model.json that cannot be read (a rollback away from a
 * broken one) is skipped the same way.
 */
async function markRecords(container: ContainerClient, plan: RollbackPlan): Promise<string[]> {
  const at = plan.to.promotedAt;
  const source = plan.to.source;
  const marks: Array<[string, (r: ModelRecord) => ModelRecord]> = [
    ...plan.movedPast.map((v): [string, (r: ModelRecord) => ModelRecord] => [v, (r) => ({ ...r, rolledBack: { at, to: plan.to.version } })]),
    [plan.to.version, ({ rolledBack: _cleared, ...r }) => ({ ...r, restoredAt: at })],
  ];
  const unmarked: string[] = [];
  for (const [version, change] of marks) {
    try {
      await updateRecord(container, source, version, change);
    } catch (err) {
      unmarked.push(`${version} (${safeErrorMessage(err)})`);
    }
  }
  return unmarked;
}
