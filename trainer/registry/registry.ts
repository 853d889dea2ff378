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
    state = await readBody(name, () => blob.download(), async (res) => ({ pointer: parse(BestPointerSchema, (await streamToBuffer(res.readableStreamBody)).toString('utf8'), name), etag: res.etag ?? '' }));
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
export async function readBestRecord(container: ContainerClient, source: string, now: Date = new Date()): Promise<{ state: BestState; record: ModelRecord } | null> {
  const state = await readBest(container, source);
  if (!state) {
    await refuseMissingBest(container, source, now);
    return null;
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
  return { state, record };
}

/**
 * The versions of a source that have a model.json (one listing of models/<source>/), sorted by
 * name. A model.onnx without its model.json (a run killed between the two writes) is not counted:
 * the next run of that version writes the record.
 */
export async function listVersions(container: ContainerClient, source: string): Promise<string[]> {
  const prefix = bestModelBlobName(source).replace(/best\.json$/, '');
  const versions: string[] = [];
  try {
    for await (const item of container.listBlobsFlat({ prefix })) {
      const rest = item.name.slice(prefix.length).split('/');
      if (rest.length === 2 && rest[1] === 'model.json' && rest[0]) versions.push(decodeSegment(rest[0]));
    }
  } catch (err) {
    throw registryError(`listing ${prefix}`, err);
  }
  return versions.sort();
}

/**
 * How long a first promotion may be in flight: from its model.json (written with `promoted: true`
 * and `createdAt` just before) to its best.json write, a few blob writes. Generous, for clock skew
 * between pods.
 */
export const FIRST_PROMOTION_IN_FLIGHT_MS = 10 * 60_000;

/**
 * best.json is absent: fine when no version is registered (a new source), refused when a
 * registered model.json shows that best.json existed, and was deleted or lost (by hand, a
 * lifecycle rule, a half-done copy): one trained against a live model (it names a
 * `championVersion`), one a rollback marked (`rolledBack`, `restoredAt`), or one promoted
 * (`promoted: true`) longer than FIRST_PROMOTION_IN_FLIGHT_MS ago. Going on as if nothing was
 * ever promoted would drop the older-data guard, the comparison with the live model and the
 * rollback history, and promote whatever this run trains. Left to go on as a first run: versions
 * none of which was promoted (every first run so far lost or failed), and a first promotion in
 * flight (its model.json is written before best.json; a second run starting meanwhile must not
 * fail): its best.json write (If-None-Match: *) settles any race. A first run killed between the
 * two writes is refused once its time is up, with the same repair.
 */
export async function refuseMissingBest(container: ContainerClient, source: string, now: Date = new Date()): Promise<void> {
  const { versions, records } = await readRegisteredRecords(container, source);
  if (versions.length === 0) return;
  const inFlight = (r: ModelRecord) => now.getTime() - timeOf(r.createdAt) < FIRST_PROMOTION_IN_FLIGHT_MS;
  const existed = records.some((r) => r.evaluation.championVersion !== null || r.rolledBack !== undefined || r.restoredAt !== undefined || (r.decision.promoted && !inFlight(r)));
  if (!existed) return;
  const name = bestModelBlobName(source);
  const shown = versions.length > 5 ? `${versions.slice(-5).join(', ')} and ${versions.length - 5} older` : versions.join(', ');
  const live = lastMadeBest(records);
  const rolledBack = records.filter((r) => r.rolledBack !== undefined).map((r) => r.version);
  const lost = `; the restored best.json has no history of earlier bests (a plain rollback then has nowhere to go: use --version)${
    rolledBack.length > 0 ? `, and takes the versions rolled back from (${rolledBack.join(', ')}) from their model.json` : ''
  }`;
  const repair =
    live === null
      ? `pumpwatch-trainer rollback --source ${source} --version V --no-deploy, V the version that was live (no readable model.json says it was made best by a train or a rollback and not rolled back from since${lost})`
      : `pumpwatch-trainer rollback --source ${source} --version ${live.version} --no-deploy (it checks that version's model.onnx; ${live.version} is the version the model.json records show made best last, ${live.how}, and not rolled back from since: ` +
        `check that it was the live one when records written by older trainers, which do not record rollbacks, are involved${lost})`;
  throw new TrainerError(
    'PW_TRAINER_REGISTRY_INVALID',
    `${name} is missing but ${versions.length} version(s) of "${source}" are registered (${shown}): nothing is compared or promoted without it. ` +
      `Restore it (undelete it, or copy it back), or make the version that should be live best again with: ${repair}`,
  );
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

/**
 * The version the records show was made best last: by a train (`promoted: true`, at its
 * `createdAt`, which is best.json's `promotedAt`) or by a rollback (`restoredAt`), unless a
 * rollback moved best.json away from it since. Every move of best.json is one of these, so
 * when every record is from a trainer that marks rollbacks, this is the version best.json named.
 */
export function lastMadeBest(records: readonly ModelRecord[]): { version: string; how: string } | null {
  let found: { version: string; how: string; at: number } | null = null;
  for (const r of records) {
    const promoted = r.decision.promoted ? timeOf(r.createdAt) : -Infinity;
    const restored = r.restoredAt !== undefined ? timeOf(r.restoredAt) : -Infinity;
    const at = Math.max(promoted, restored);
    if (at === -Infinity || (r.rolledBack !== undefined && timeOf(r.rolledBack.at) >= at)) continue;
    if (found === null || at > found.at || (at === found.at && r.version > found.version)) {
      found = { version: r.version, at, how: restored >= promoted ? `by a rollback at ${r.restoredAt as string}` : `promoted by train at ${r.createdAt}` };
    }
  }
  return found === null ? null : { version: found.version, how: found.how };
}

/** Epoch ms of an ISO time; -Infinity for none (a hand-made record): never "in flight", never newest. */
function timeOf(iso: string): number {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? t : -Infinity;
}

/** `models/<source>/<version>/`: what to delete to retrain a version. */
function versionFolder(source: string, version: string): string {
  return modelBlobName(source, version, 'model.json').replace(/model\.json$/, '');
}

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
  const hash = sha256(buf);
  if (hash !== record.model.sha256) throw shaMismatch(record, hash);
  return new Uint8Array(buf);
}

/** A model blob whose bytes hash to `actual`, not to the sha256 its model.json records. */
function shaMismatch(record: Pick<ModelRecord, 'model'>, actual: string): TrainerError {
  return new TrainerError('PW_TRAINER_REGISTRY_INVALID', `${record.model.blob} does not match the sha256 of its model.json: its bytes hash to ${actual}, model.json records ${record.model.sha256}`);
}

/**
 * The model blob exists with the size and the sha256 its record says. deploy checks this before it
 * signs a URL and writes twins: every agent checks the sha256 of what it downloads against the
 * twin entry (which is model.json's), so a blob of the right size but other bytes (a copy into
 * the wrong folder, bytes flipped) would be refused by the whole fleet while deploy said "ok".
 * The size and the MD5 of the blob's properties cannot tell (same size; MD5 is not the sha256,
 * and a copied blob brings its own), so the bytes are streamed and hashed (models are at most a
 * few MiB; nothing is held in memory but the hash).
 */
export async function checkModelBlob(container: ContainerClient, record: Pick<ModelRecord, 'model'>): Promise<void> {
  const name = record.model.blob;
  const open = () =>
    container
      .getBlockBlobClient(name)
      .download()
      .catch((err: unknown) => {
        if (statusOf(err) === 404) throw new TrainerError('PW_TRAINER_NO_MODEL', `${name} does not exist (its model.json does)`, { cause: err });
        throw registryError(`reading ${name}`, err);
      });
  const actual = await readBody(name, open, async (res) => {
    const body = res.readableStreamBody;
    if (res.contentLength !== record.model.size) {
      (body as { destroy?: () => void } | undefined)?.destroy?.();
      throw new TrainerError('PW_TRAINER_REGISTRY_INVALID', `${name} has ${String(res.contentLength)} bytes, its model.json says ${record.model.size}`);
    }
    const hash = createHash('sha256');
    let size = 0;
    if (body) {
      for await (const chunk of body) {
        const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
        size += bytes.length;
        hash.update(bytes);
      }
    }
    // The blob's length was the recorded one (checked above): a shorter body is a transfer that stopped, not a damaged blob.
    if (size !== record.model.size) throw new Error(`the download ended after ${size} of its ${record.model.size} bytes`);
    return hash.digest('hex');
  });
  if (actual !== record.model.sha256) throw shaMismatch(record, actual);
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
    const res = await readBody(name, () => fromRegistry(name, () => container.getBlockBlobClient(name).download()), async (r) => ({ etag: r.etag, bytes: await streamToBuffer(r.readableStreamBody) }));
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

/** Overwrites a blob if it still has `etag`; false when it changed meanwhile. */
async function replaceIfUnchanged(container: ContainerClient, name: string, body: Uint8Array, etag: string): Promise<boolean> {
  try {
    await container.getBlockBlobClient(name).upload(body, body.length, { conditions: { ifMatch: etag }, blobHTTPHeaders: { blobContentType: 'application/octet-stream' } });
    return true;
  } catch (err) {
    if (statusOf(err) === 412 || statusOf(err) === 409 || statusOf(err) === 404) return false;
    throw registryError(`writing ${name}`, err);
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
 * A failed registry read or write: PW_TRAINER_STORAGE. Blob Storage refusing or failing it (a SAS
 * without the permission, an expired one, an outage: an SDK error) is told by status and service
 * code like every other storage error; a transfer that broke off (a connection reset or aborted
 * mid-body: no status, not a RestError) by its message. Never PW_TRAINER_REGISTRY_INVALID, which
 * says a document or a blob that was read whole is wrong: nobody should "repair" (delete) a
 * version that is fine when a credential needs renewing or a proxy cut a download.
 */
function registryError(what: string, err: unknown): TrainerError {
  if (err instanceof TrainerError) return err;
  const storage = storageError(what, err);
  if (storage instanceof TrainerError) return storage;
  return new TrainerError('PW_TRAINER_STORAGE', `${what} failed: ${safeErrorMessage(err)}`, { cause: err });
}

/** Attempts at a download whose body is cut mid-transfer (readBody). */
const BODY_ATTEMPTS = 3;

type Download = Awaited<ReturnType<ReturnType<ContainerClient['getBlockBlobClient']>['download']>>;

/**
 * `open` (a download) and `consume` (the reading of its body); a body cut mid-transfer (a
 * connection reset or aborted: the SDK's own stream retry gives up at once on an abort, and is off
 * by default) is downloaded again from the start, BODY_ATTEMPTS times in all, then is
 * PW_TRAINER_STORAGE. Each attempt is one whole GET, so what is consumed is one version of the
 * blob. `open`'s own failure, and a TrainerError of `consume` (a document that does not parse, a
 * length that is not the recorded one), are not retried.
 */
async function readBody<T>(name: string, open: () => Promise<Download>, consume: (res: Download) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const res = await open();
    try {
      return await consume(res);
    } catch (err) {
      if (err instanceof TrainerError) throw err;
      if (attempt >= BODY_ATTEMPTS) throw registryError(`reading ${name}`, err);
    }
  }
}

/** A small registry document as text, with its ETag (for a conditional rewrite). */
async function downloadText(container: ContainerClient, name: string): Promise<{ text: string; etag: string }> {
  return readBody(name, () => fromRegistry(name, () => container.getBlockBlobClient(name).download()), async (res) => ({ text: (await streamToBuffer(res.readableStreamBody)).toString('utf8'), etag: res.etag ?? '' }));
}

async function download(container: ContainerClient, name: string): Promise<Buffer> {
  return readBody(name, () => fromRegistry(name, () => container.getBlockBlobClient(name).download()), (res) => streamToBuffer(res.readableStreamBody));
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

function decodeSegment(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

async function streamToBuffer(stream: NodeJS.ReadableStream | undefined): Promise<Buffer> {
  if (!stream) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks);
}
