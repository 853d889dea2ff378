/**
 * A new version in the registry: model.onnx, then model.json, both written once (If-None-Match: *).
 * A version already there is settled: the same bytes are a rerun; a damaged model.onnx whose
 * model.json records this run's model is replaced (conditional on its ETag); anything else, and a
 * model.json that cannot be read, is refused with what to delete to retrain the version.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { modelBlobName } from '../../sync/layout.js';
import { TrainerError } from '../errors.js';
import { sha256 } from './model-blob.js';
import { ModelRecordSchema, type ModelRecord } from './records.js';
import { checkRecordNames, readBest, readModelRecord, versionFolder } from './read.js';
import { containerMissing, downloadText, fromRegistry, parse, readBody, registryError, statusOf, streamToBuffer, uploadBlob } from './storage.js';
import { recordBody } from './write.js';

/** What registerVersion found or wrote: the model.json of the version and its ETag. */
export interface Registered {
  created: boolean;
  /** ETag of model.json as this call wrote or read it (for a conditional rewrite). */
  etag: string;
  /** The model.json an earlier run had written (kept), or null when this call wrote it. */
  existing: ModelRecord | null;
}

/**
 * Writes a new version. Idempotent: a re-run that produced the same bytes finds them there; a
 * model.json already written is kept (the first evaluation of a version is its record), except
 * that the promotion (train/publish.ts) rewrites its decision with `rewriteRecord` once best.json
 * has (or has not) moved.
 */
export async function registerVersion(container: ContainerClient, record: ModelRecord, bytes: Uint8Array): Promise<Registered> {
  const onnx = (await createOnce(container, record.model.blob, bytes, 'application/octet-stream')) !== null;
  if (!onnx) await settleExistingModel(container, record, bytes);
  const name = modelBlobName(record.source, record.version, 'model.json');
  const etag = await createOnce(container, name, recordBody(record), 'application/json');
  if (etag !== null) return { created: true, etag, existing: null };
  const { text, etag: existingEtag } = await downloadText(container, name);
  let existing: ModelRecord;
  try {
    existing = parse(ModelRecordSchema, text, name);
    checkRecordNames(existing, record.source, record.version, name);
  } catch (err) {
    throw await damagedRecordError(container, record, err);
  }
  return { created: onnx, etag: existingEtag, existing };
}

/**
 * The version's model.json cannot be read (not JSON, not a record of this trainer, or one of
 * another version): a rerun of its range would stop here every time (train-all has no --version
 * to go around it). Not rewritten with this run's record: it was the version's own evaluation and
 * decision (and its rollback marks), which this run cannot know. Names what to delete, and
 * whether best.json names the version (then it is rolled back from first).
 */
async function damagedRecordError(container: ContainerClient, record: ModelRecord, err: unknown): Promise<unknown> {
  if (!(err instanceof TrainerError) || err.code !== 'PW_TRAINER_REGISTRY_INVALID') return err;
  const folder = versionFolder(record.source, record.version);
  const best = await readBest(container, record.source).catch(() => null);
  const named =
    best === null
      ? '(check first that best.json does not name it: a rollback away from it comes before)'
      : best.pointer.version === record.version
        ? `after rolling back away from it (best.json names it): pumpwatch-trainer rollback --source ${record.source}`
        : `(best.json names ${best.pointer.version}, not this version)`;
  return new TrainerError(
    'PW_TRAINER_REGISTRY_INVALID',
    `${err.message}: version ${record.version} of "${record.source}" cannot be registered again over it; delete ${folder} (model.onnx and model.json) to retrain that version ${named}`,
    { cause: err },
  );
}

/**
 * The version's model.onnx was there already. The same bytes: a rerun, nothing to do. Other bytes:
 * - its model.json records this run's sha256 and size: the stored model.onnx is damaged
 *   (overwritten, truncated), and this run made the very model the record describes (the same data
 *   and options give the same bytes). It is replaced, conditional on the ETag it was read with, so
 *   the version is whole again and a rerun of the range is not refused forever (train-all has no
 *   --version to go around it). When it changed meanwhile (another run repaired it), it is checked again;
 * - its model.json records the stored bytes: a consistent version of another model under this
 *   name (other data, options or trainer, or a reused --version): never overwritten, refused;
 * - its model.json records neither, or there is none (a run killed between the two writes, or one
 *   writing its model.json right now): not replaced (it may be what best.json or another run's
 *   record names), refused, naming the blob and how to clear it.
 */
async function settleExistingModel(container: ContainerClient, record: ModelRecord, bytes: Uint8Array): Promise<void> {
  const name = record.model.blob;
  const json = modelBlobName(record.source, record.version, 'model.json');
  const folder = name.replace(/model\.onnx$/, '');
  for (let attempt = 1; ; attempt++) {
    const res = await readBody(container, name, (w) => fromRegistry(name, () => container.getBlockBlobClient(name).download(0, undefined, w)), async (r) => ({ etag: r.etag, bytes: await streamToBuffer(r.readableStreamBody) }));
    const stored = sha256(res.bytes);
    if (stored === record.model.sha256) return;
    const recorded = await readModelRecord(container, record.source, record.version).catch(async (err: unknown) => {
      if (err instanceof TrainerError && err.code === 'PW_TRAINER_NO_MODEL') return null;
      throw await damagedRecordError(container, record, err);
    });
    if (recorded && recorded.model.sha256 === record.model.sha256 && recorded.model.size === record.model.size) {
      if (await replaceIfUnchanged(container, name, bytes, res.etag ?? '')) return;
      if (attempt >= 3) throw new TrainerError('PW_TRAINER_REGISTRY_CONFLICT', `${name} is damaged (its bytes hash to ${stored}, ${json} records ${record.model.sha256}) and kept changing while this run replaced it with this run's bytes; run again`);
      continue;
    }
    const ours = `this run's model hashes to ${record.model.sha256}`;
    if (recorded === null) {
      throw new TrainerError('PW_TRAINER_REGISTRY_INVALID', `${name} exists without its ${json} and holds other bytes (sha256 ${stored}; ${ours}): left by an interrupted run of other data or options; delete that model.onnx to register this version`);
    }
    if (recorded.model.sha256 === stored) {
      throw new TrainerError(
        'PW_TRAINER_REGISTRY_INVALID',
        `version ${record.version} of "${record.source}" is registered as another model (${name} hashes to ${stored}, as ${json} records; ${ours}): other data, options or trainer gave the same version name; ` +
          `it is never overwritten: delete ${folder} to register this run's model under that name (roll back first if best.json names it), or train it under another --version`,
      );
    }
    throw new TrainerError(
      'PW_TRAINER_REGISTRY_INVALID',
      `${name} is damaged: its bytes hash to ${stored}, not to the sha256 ${json} records (${recorded.model.sha256}), and ${ours}, not that one either: ` +
        `delete ${folder} (model.onnx and model.json) to retrain that version (roll back first if best.json names it)`,
    );
  }
}

/**
 * Makes sure the registry's container exists before a training run reads any data. A connection
 * string creates it (as the first version written would); a SAS URL cannot create a container,
 * and a run finding that out at its first write would have loaded and fitted for nothing.
 * One listing of at most one blob tells whether it exists (a container SAS may list, where it may
 * not read the container's properties).
 */
export async function ensureRegistryContainer(container: ContainerClient): Promise<void> {
  try {
    await container.listBlobsFlat({ prefix: 'models/' }).byPage({ maxPageSize: 1 }).next();
    return;
  } catch (err) {
    if (!containerMissing(err)) throw registryError(`listing the registry's container "${container.containerName}"`, err);
  }
  await container.createIfNotExists().catch((err: unknown) => {
    const name = container.containerName;
    const failed = registryError(`creating the registry's container "${name}", which does not exist,`, err);
    const hint = `a SAS URL cannot create a container: create it once (e.g. \`az storage container create --name ${name}\`) or give PUMPWATCH_BLOB_CONNECTION_STRING`;
    throw new TrainerError(failed.code, `${failed.message}; ${hint}`, { cause: err });
  });
}

/** Overwrites a blob if it still has `etag`; false when it changed meanwhile. */
async function replaceIfUnchanged(container: ContainerClient, name: string, body: Uint8Array, etag: string): Promise<boolean> {
  try {
    await uploadBlob(container, name, body, { conditions: { ifMatch: etag }, blobHTTPHeaders: { blobContentType: 'application/octet-stream' } });
    return true;
  } catch (err) {
    if (statusOf(err) === 412 || statusOf(err) === 409 || statusOf(err) === 404) return false;
    throw registryError(`writing ${name}`, err);
  }
}

/** Creates a blob unless it exists; the new blob's ETag when this call created it, else null. */
export async function createOnce(container: ContainerClient, name: string, body: Uint8Array, contentType: string, madeContainer = false): Promise<string | null> {
  try {
    const res = await uploadBlob(container, name, body, { conditions: { ifNoneMatch: '*' }, blobHTTPHeaders: { blobContentType: contentType } });
    return res.etag ?? '';
  } catch (err) {
    const status = statusOf(err);
    if (status === 409 || status === 412) return null;
    if (containerMissing(err) && !madeContainer) {
      // the registry's own container (cloud/context.ts), missing at the first version written
      await container.createIfNotExists().catch((e: unknown) => {
        throw registryError(`creating the registry's container "${container.containerName}"`, e);
      });
      return createOnce(container, name, body, contentType, true);
    }
    throw registryError(`writing ${name}`, err);
  }
}
