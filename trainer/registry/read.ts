/**
 * Reads of the model registry in Blob Storage (DESIGN.md "Blob layout"): best.json as stored (with
 * its ETag, for a conditional move), the versions of a source, and a version's model.json, checked
 * to describe the version it is stored as. best.json checked against its model.json, and refused
 * when it is missing but should not be, is best-record.ts; the model bytes, model-blob.ts.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { bestModelBlobName, modelBlobName } from '../../sync/layout.js';
import { TrainerError } from '../errors.js';
import { lastMadeBest } from './last-best.js';
import { refuseUnmovedRegistry } from './old-location.js';
import { BestPointerSchema, ModelRecordSchema, type BestPointer, type ModelRecord } from './records.js';
import { containerMissing, download, listUnder, parse, readBody, registryError, statusOf, streamToBuffer } from './storage.js';

export interface BestState {
  pointer: BestPointer;
  etag: string;
}

export async function readBest(container: ContainerClient, source: string): Promise<BestState | null> {
  const name = bestModelBlobName(source);
  const blob = container.getBlockBlobClient(name);
  let stored: { text: string; etag: string };
  try {
    stored = await readBody(container, name, (w) => blob.download(0, undefined, w), async (res) => ({ text: (await streamToBuffer(res.readableStreamBody)).toString('utf8'), etag: res.etag ?? '' }));
  } catch (err) {
    if (statusOf(err) === 404) {
      // No best.json here: one that was never moved from the old place must stop the command, not read as a new source.
      await refuseUnmovedRegistry(container, source);
      return null;
    }
    if (err instanceof TrainerError) throw err;
    throw registryError(`reading ${name}`, err);
  }
  let pointer: BestPointer;
  try {
    pointer = parse(BestPointerSchema, stored.text, name);
  } catch (err) {
    throw await unreadableBest(container, source, stored.etag, (err as Error).message);
  }
  if (pointer.source !== source) throw await unreadableBest(container, source, stored.etag, `${name} names source "${pointer.source}", not "${source}"`);
  return { pointer, etag: stored.etag };
}

/**
 * best.json is there but cannot be used (not JSON, not a pointer of this trainer, another
 * source's): `etag` is the unreadable blob's, which `rollback --version` replaces on that
 * condition only (rollback.ts), as it restores a missing one.
 */
export class UnreadableBest extends TrainerError {
  constructor(
    message: string,
    readonly etag: string,
  ) {
    super('PW_TRAINER_REGISTRY_INVALID', message);
  }
}

/** The refusal of an unreadable best.json, with the repair to run: before, it named none, and only deleting the blob by hand led on. */
async function unreadableBest(container: ContainerClient, source: string, etag: string, problem: string): Promise<UnreadableBest> {
  const records = await readRegisteredRecords(container, source).then(
    (r) => r.records,
    () => [],
  );
  const live = lastMadeBest(records);
  const which = live === null ? 'V the version that should be live' : `${live.version}, the version the model.json records show made best last (${live.how}): check that it was the live one`;
  const version = live === null ? 'V' : live.version;
  return new UnreadableBest(
    `${problem}: nothing is compared, promoted or rolled back while it cannot be read. Restore it from a copy, or replace it with: ` +
      `pumpwatch-trainer rollback --source ${source} --version ${version} --no-deploy (it checks that version's model.onnx and replaces the unreadable best.json, unless it changed meanwhile; ${which})`,
    etag,
  );
}

/**
 * The versions of a source that have a model.json (one listing of models/<source>/), sorted by
 * name; none while the registry's container does not exist. A model.onnx without its model.json (a run killed between the two writes) is not counted:
 * the next run of that version writes the record.
 */
export async function listVersions(container: ContainerClient, source: string): Promise<string[]> {
  const prefix = bestModelBlobName(source).replace(/best\.json$/, '');
  const versions: string[] = [];
  try {
    for await (const item of listUnder(container, prefix)) {
      const rest = item.name.slice(prefix.length).split('/');
      if (rest.length === 2 && rest[1] === 'model.json' && rest[0]) versions.push(decodeSegment(rest[0]));
    }
  } catch (err) {
    // the registry's own container, made at the first version written (register.ts): none yet
    if (containerMissing(err)) return [];
    throw registryError(`listing ${prefix}`, err);
  }
  return versions.sort();
}

/** The versions with a model.json, and those of their records that can be read (a damaged one says nothing either way). */
export async function readRegisteredRecords(container: ContainerClient, source: string): Promise<{ versions: string[]; records: ModelRecord[] }> {
  const versions = await listVersions(container, source);
  const records: ModelRecord[] = [];
  for (const version of versions) {
    const record = await readModelRecord(container, source, version).catch((err: unknown) => {
      if (err instanceof TrainerError && (err.code === 'PW_TRAINER_REGISTRY_INVALID' || err.code === 'PW_TRAINER_NO_MODEL')) return null;
      throw err;
    });
    if (record) records.push(record);
  }
  return { versions, records };
}

export async function readModelRecord(container: ContainerClient, source: string, version: string): Promise<ModelRecord> {
  const name = modelBlobName(source, version, 'model.json');
  const record = parse(ModelRecordSchema, (await download(container, name)).toString('utf8'), name);
  checkRecordNames(record, source, version, name);
  return record;
}

/** A model.json must describe the version it is stored as (a copied one would deploy another blob). */
export function checkRecordNames(record: ModelRecord, source: string, version: string, name: string): void {
  const blob = modelBlobName(source, version, 'model.onnx');
  if (record.source !== source || record.version !== version || record.model.blob !== blob) {
    throw new TrainerError('PW_TRAINER_REGISTRY_INVALID', `${name} describes ${record.source} ${record.version} (${record.model.blob}), not ${source} ${version} (${blob})`);
  }
}

/** `models/<source>/<version>/`: what to delete to retrain a version. */
export function versionFolder(source: string, version: string): string {
  return modelBlobName(source, version, 'model.json').replace(/model\.json$/, '');
}

function decodeSegment(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
