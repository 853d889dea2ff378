/**
 * The model registry in Blob Storage: versions are written once (model.onnx, then model.json,
 * both with If-None-Match: *), and best.json moves only by a conditional write on the ETag read
 * before the decision, so two trainers can never promote over each other unseen.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { createHash } from 'node:crypto';
import { bestModelBlobName, modelBlobName } from '../../sync/layout.js';
import { safeErrorMessage } from '../../sync/redact.js';
import { storageError, TrainerError } from '../errors.js';
import { BestPointerSchema, ModelRecordSchema, type BestPointer, type ModelRecord } from './records.js';

export interface BestState {
  pointer: BestPointer;
  etag: string;
}

const statusOf = (err: unknown): number | undefined => (err as { statusCode?: number }).statusCode;

export async function readBest(container: ContainerClient, source: string): Promise<BestState | null> {
  const name = bestModelBlobName(source);
  const blob = container.getBlockBlobClient(name);
  let state: BestState;
  try {
    const res = await blob.download();
    const text = (await streamToBuffer(res.readableStreamBody)).toString('utf8');
    state = { pointer: parse(BestPointerSchema, text, name), etag: res.etag ?? '' };
  } catch (err) {
    if (statusOf(err) === 404) return null;
    if (err instanceof TrainerError) throw err;
    throw registryError(`reading ${name}`, err);
  }
  if (state.pointer.source !== source) throw new TrainerError('PW_TRAINER_REGISTRY_INVALID', `${name} names source "${state.pointer.source}", not "${source}"`);
  return state;
}

/**
 * best.json and the model.json of the version it names, checked against each other (a
 * hand-edited or half-copied pointer is refused, not deployed or defended): same source and
 * version, same sha256 and size of model.onnx. Null when no model was promoted.
 */
export async function readBestRecord(container: ContainerClient, source: string): Promise<{ state: BestState; record: ModelRecord } | null> {
  const state = await readBest(container, source);
  if (!state) return null;
  const { pointer } = state;
  const record = await readModelRecord(container, source, pointer.version);
  const name = bestModelBlobName(source);
  if (pointer.sha256 !== record.model.sha256 || pointer.size !== record.model.size) {
    throw new TrainerError('PW_TRAINER_REGISTRY_INVALID', `${name} does not match ${modelBlobName(source, pointer.version, 'model.json')}: sha256/size ${pointer.sha256.slice(0, 12)}…/${pointer.size} in best.json, ${record.model.sha256.slice(0, 12)}…/${record.model.size} in model.json`);
  }
  return { state, record };
}

export async function readModelRecord(container: ContainerClient, source: string, version: string): Promise<ModelRecord> {
  const name = modelBlobName(source, version, 'model.json');
  const record = parse(ModelRecordSchema, (await download(container, name)).toString('utf8'), name);
  checkRecordNames(record, source, version, name);
  return record;
}

/** A model.json must describe the version it is stored as (a copied one would deploy another blob). */
function checkRecordNames(record: ModelRecord, source: string, version: string, name: string): void {
  const blob = modelBlobName(source, version, 'model.onnx');
  if (record.source !== source || record.version !== version || record.model.blob !== blob) {
    throw new TrainerError('PW_TRAINER_REGISTRY_INVALID', `${name} describes ${record.source} ${record.version} (${record.model.blob}), not ${source} ${version} (${blob})`);
  }
}

/** The model bytes, checked against the size and sha256 of its record. */
export async function readModelBytes(container: ContainerClient, record: Pick<ModelRecord, 'model'>): Promise<Uint8Array> {
  const buf = await download(container, record.model.blob);
  if (buf.length !== record.model.size) throw new TrainerError('PW_TRAINER_REGISTRY_INVALID', `${record.model.blob} has ${buf.length} bytes, its model.json says ${record.model.size}`);
  if (sha256(buf) !== record.model.sha256) throw new TrainerError('PW_TRAINER_REGISTRY_INVALID', `${record.model.blob} does not match the sha256 of its model.json`);
  return new Uint8Array(buf);
}

/**
 * The model blob exists with the size its record says (one HEAD request; deploy checks this
 * before it signs a URL and writes twins, so no gateway is sent to a blob that is not there).
 */
export async function checkModelBlob(container: ContainerClient, record: Pick<ModelRecord, 'model'>): Promise<void> {
  let size: number | undefined;
  try {
    size = (await container.getBlockBlobClient(record.model.blob).getProperties()).contentLength;
  } catch (err) {
    if (statusOf(err) === 404) throw new TrainerError('PW_TRAINER_NO_MODEL', `${record.model.blob} does not exist (its model.json does)`, { cause: err });
    throw registryError(`reading ${record.model.blob}`, err);
  }
  if (size !== record.model.size) throw new TrainerError('PW_TRAINER_REGISTRY_INVALID', `${record.model.blob} has ${String(size)} bytes, its model.json says ${record.model.size}`);
}

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
 * that the promotion (train/pipeline.ts) rewrites its decision with `rewriteRecord` once best.json
 * has (or has not) moved.
 */
export async function registerVersion(container: ContainerClient, record: ModelRecord, bytes: Uint8Array): Promise<Registered> {
  const onnx = (await createOnce(container, record.model.blob, bytes, 'application/octet-stream')) !== null;
  if (!onnx) {
    const existing = await download(container, record.model.blob);
    if (sha256(existing) !== record.model.sha256) {
      throw new TrainerError('PW_TRAINER_REGISTRY_INVALID', `version ${record.version} of "${record.source}" exists with different model bytes; choose another --version`);
    }
  }
  const name = modelBlobName(record.source, record.version, 'model.json');
  const etag = await createOnce(container, name, recordBody(record), 'application/json');
  if (etag !== null) return { created: true, etag, existing: null };
  const res = await fromRegistry(name, () => container.getBlockBlobClient(name).download());
  const existing = parse(ModelRecordSchema, (await streamToBuffer(res.readableStreamBody)).toString('utf8'), name);
  return { created: onnx, etag: res.etag ?? '', existing };
}

/**
 * Rewrites model.json as `record` if it is still at `etag` (the version's own model.json, as
 * registerVersion left it). False when it changed meanwhile: another run settled it.
 */
export async function rewriteRecord(container: ContainerClient, record: ModelRecord, etag: string): Promise<boolean> {
  const name = modelBlobName(record.source, record.version, 'model.json');
  const body = recordBody(record);
  try {
    await container.getBlockBlobClient(name).upload(body, body.length, { conditions: { ifMatch: etag }, blobHTTPHeaders: { blobContentType: 'application/json' } });
    return true;
  } catch (err) {
    if (statusOf(err) === 412 || statusOf(err) === 409) return false;
    throw registryError(`writing ${name}`, err);
  }
}

const recordBody = (record: ModelRecord) => Buffer.from(`${JSON.stringify(record, null, 2)}\n`);

/** Moves best.json to `pointer` if it is still at `etag` (null: if there is none yet). */
export async function writeBest(container: ContainerClient, pointer: BestPointer, etag: string | null): Promise<void> {
  await putBest(container, pointer, etag);
}

/** writeBest, returning best.json as written (its new ETag: the next conditional write of this run starts from it). */
export async function putBest(container: ContainerClient, pointer: BestPointer, etag: string | null): Promise<BestState> {
  const name = bestModelBlobName(pointer.source);
  const body = Buffer.from(`${JSON.stringify(pointer, null, 2)}\n`);
  try {
    const res = await container.getBlockBlobClient(name).upload(body, body.length, {
      conditions: etag === null ? { ifNoneMatch: '*' } : { ifMatch: etag },
      blobHTTPHeaders: { blobContentType: 'application/json' },
    });
    return { pointer, etag: res.etag ?? '' };
  } catch (err) {
    const status = statusOf(err);
    if (status === 412 || status === 409) {
      throw new TrainerError('PW_TRAINER_REGISTRY_CONFLICT', `${name} changed while this run was deciding (another trainer promoted a model); nothing was promoted, run again`, { cause: err });
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

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Creates a blob unless it exists; the new blob's ETag when this call created it, else null. */
async function createOnce(container: ContainerClient, name: string, body: Uint8Array, contentType: string): Promise<string | null> {
  try {
    const res = await container.getBlockBlobClient(name).upload(body, body.length, { conditions: { ifNoneMatch: '*' }, blobHTTPHeaders: { blobContentType: contentType } });
    return res.etag ?? '';
  } catch (err) {
    const status = statusOf(err);
    if (status === 409 || status === 412) return null;
    throw registryError(`writing ${name}`, err);
  }
}

/** A registry read: a missing blob is PW_TRAINER_NO_MODEL, any other failure as registryError says. */
async function fromRegistry<T>(name: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (statusOf(err) === 404) throw new TrainerError('PW_TRAINER_NO_MODEL', `${name} does not exist`, { cause: err });
    throw registryError(`reading ${name}`, err);
  }
}

/**
 * A failed registry read or write. Blob Storage refusing or failing it (a SAS without the
 * permission, an expired one, an outage: an SDK error) is PW_TRAINER_STORAGE, told by status and
 * service code like every other storage error, so that nobody "repairs" a registry that is fine
 * when a credential needs renewing; anything else is PW_TRAINER_REGISTRY_INVALID.
 */
function registryError(what: string, err: unknown): TrainerError {
  const storage = storageError(what, err);
  if (storage instanceof TrainerError) return storage;
  return new TrainerError('PW_TRAINER_REGISTRY_INVALID', `${what} failed: ${safeErrorMessage(err)}`, { cause: err });
}

async function download(container: ContainerClient, name: string): Promise<Buffer> {
  return fromRegistry(name, () => container.getBlockBlobClient(name).downloadToBuffer());
}

function parse<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } } }, text: string, name: string): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new TrainerError('PW_TRAINER_REGISTRY_INVALID', `${name} is not JSON`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new TrainerError('PW_TRAINER_REGISTRY_INVALID', `${name} is not a registry document of this trainer: ${issue ? `${issue.path.map(String).join('.')}: ${issue.message}` : 'invalid'}`);
  }
  return parsed.data;
}

async function streamToBuffer(stream: NodeJS.ReadableStream | undefined): Promise<Buffer> {
  if (!stream) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks);
}
