/**
 * Rewrites of registry documents that exist, each conditional on the ETag they were read with, so
 * that two runs never overwrite each other unseen: best.json moves (a promotion, a rollback, the
 * pending-deploy mark) and a version's model.json (its decision, the rollback marks). A new version
 * is written once by register.ts.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { bestModelBlobName, modelBlobName } from '../../sync/layout.js';
import { TrainerError } from '../errors.js';
import { ModelRecordSchema, type BestPointer, type ModelRecord } from './records.js';
import { checkRecordNames, type BestState } from './read.js';
import { downloadText, parse, registryError, statusOf, uploadBlob } from './storage.js';

/**
 * Rewrites a version's model.json through `change`, conditional on the ETag it was read with, a
 * few times when it changed meanwhile. For the rollback marks (rollback.ts): the caller says what
 * it could not record.
 */
export async function updateRecord(container: ContainerClient, source: string, version: string, change: (record: ModelRecord) => ModelRecord): Promise<void> {
  const name = modelBlobName(source, version, 'model.json');
  for (let attempt = 1; ; attempt++) {
    const { text, etag } = await downloadText(container, name);
    const record = parse(ModelRecordSchema, text, name);
    checkRecordNames(record, source, version, name);
    if (await rewriteRecord(container, change(record), etag)) return;
    if (attempt >= 3) throw new TrainerError('PW_TRAINER_REGISTRY_CONFLICT', `${name} kept changing while this run rewrote it`);
  }
}

/**
 * Rewrites model.json as `record` if it is still at `etag` (the version's own model.json, as
 * registerVersion left it). False when it changed meanwhile: another run settled it.
 */
export async function rewriteRecord(container: ContainerClient, record: ModelRecord, etag: string): Promise<boolean> {
  const name = modelBlobName(record.source, record.version, 'model.json');
  const body = recordBody(record);
  try {
    await uploadBlob(container, name, body, { conditions: { ifMatch: etag }, blobHTTPHeaders: { blobContentType: 'application/json' } });
    return true;
  } catch (err) {
    if (statusOf(err) === 412 || statusOf(err) === 409) return false;
    throw registryError(`writing ${name}`, err);
  }
}

export const recordBody = (record: ModelRecord) => Buffer.from(`${JSON.stringify(record, null, 2)}\n`);

/** Moves best.json to `pointer` if it is still at `etag` (null: if there is none yet). */
export async function writeBest(container: ContainerClient, pointer: BestPointer, etag: string | null): Promise<void> {
  await putBest(container, pointer, etag);
}

/** writeBest, returning best.json as written (its new ETag: the next conditional write of this run starts from it). */
export async function putBest(container: ContainerClient, pointer: BestPointer, etag: string | null): Promise<BestState> {
  const name = bestModelBlobName(pointer.source);
  const body = Buffer.from(`${JSON.stringify(pointer, null, 2)}\n`);
  try {
    const res = await uploadBlob(container, name, body, {
      conditions: etag === null ? { ifNoneMatch: '*' } : { ifMatch: etag },
      blobHTTPHeaders: { blobContentType: 'application/json' },
    });
    return { pointer, etag: res.etag ?? '' };
  } catch (err) {
    const status = statusOf(err);
    // Neutral: every caller that can lose this race (a promotion, a rollback) says what happened in its own words.
    if (status === 412 || status === 409) {
      throw new TrainerError('PW_TRAINER_REGISTRY_CONFLICT', `${name} changed since this run read it (another run moved it); this run did not write it`, { cause: err });
    }
    throw registryError(`writing ${name}`, err);
  }
}

/**
 * Sets (or clears) the pending-deploy mark of best.json, if best.json is still as `state` was read
 * (conditional on its ETag, like every write of best.json). False when it changed meanwhile: a
 * newer promotion, whose own mark must neither be cleared nor overwritten, or another run that
 * settled it. The caller reads best.json before it deploys, so a clear never covers a version
 * made best during the deploy. A cleared pointer has no `deployPending` field at all.
 */
export async function setDeployPending(container: ContainerClient, state: BestState, pending: boolean): Promise<boolean> {
  return (await rewriteDeployPending(container, state, pending)) !== null;
}

/**
 * setDeployPending, returning best.json as written (its new ETag), or null when it changed
 * meanwhile. It always writes, even a mark that is already there: the new ETag is what makes a
 * clear conditional on the ETag read before (by a run that is deploying) fail.
 */
export async function rewriteDeployPending(container: ContainerClient, state: BestState, pending: boolean): Promise<BestState | null> {
  const { deployPending: _old, ...pointer } = state.pointer;
  try {
    return await putBest(container, pending ? { ...pointer, deployPending: true } : pointer, state.etag);
  } catch (err) {
    if (err instanceof TrainerError && err.code === 'PW_TRAINER_REGISTRY_CONFLICT') return null;
    throw err;
  }
}
