/**
 * The model registry in Blob Storage: versions are written once (model.onnx, then model.json,
 * both with If-None-Match: *), and best.json moves only by a conditional write on the ETag read
 * before the decision, so two trainers can never promote over each other unseen.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { createHash } from 'node:crypto';
import { bestModelBlobName, modelBlobName } from '../../sync/layout.js';
import { safeErrorMessage } from '../../sync/redact.js';
import { TrainerError } from '../errors.js';
import { BestPointerSchema, ModelRecordSchema, type BestPointer, type ModelRecord } from './records.js';

export interface BestState {
  pointer: BestPointer;
  etag: string;
}

const statusOf = (err: unknown): number | undefined => (err as { statusCode?: number }).statusCode;

export async function readBest(container: ContainerClient, source: string): Promise<BestState | null> {
  const blob = container.getBlockBlobClient(bestModelBlobName(source));
  try {
    const res = await blob.download();
    const text = (await streamToBuffer(res.readableStreamBody)).toString('utf8');
    return { pointer: parse(BestPointerSchema, text, bestModelBlobName(source)), etag: res.etag ?? '' };
  } catch (err) {
    if (statusOf(err) === 404) return null;
    if (err instanceof TrainerError) throw err;
    throw new TrainerError('PW_TRAINER_REGISTRY_INVALID', `cannot read ${bestModelBlobName(source)}: ${safeErrorMessage(err)}`, { cause: err });
  }
}

export async function readModelRecord(container: ContainerClient, source: string, version: string): Promise<ModelRecord> {
  const name = modelBlobName(source, version, 'model.json');
  const buf = await download(container, name);
  return parse(ModelRecordSchema, buf.toString('utf8'), name);
}

/** The model bytes, checked against the sha256 of its record. */
export async function readModelBytes(container: ContainerClient, record: Pick<ModelRecord, 'model'>): Promise<Uint8Array> {
  const buf = await download(container, record.model.blob);
  if (sha256(buf) !== record.model.sha256) throw new TrainerError('PW_TRAINER_REGISTRY_INVALID', `${record.model.blob} does not match the sha256 of its model.json`);
  return new Uint8Array(buf);
}

/**
 * Writes a new version. Idempotent: a re-run that produced the same bytes finds them there; a
 * model.json already written is kept (the first evaluation of a version is its record).
 */
export async function registerVersion(container: ContainerClient, record: ModelRecord, bytes: Uint8Array): Promise<{ created: boolean }> {
  const onnx = await createOnce(container, record.model.blob, bytes, 'application/octet-stream');
  if (!onnx) {
    const existing = await download(container, record.model.blob);
    if (sha256(existing) !== record.model.sha256) {
      throw new TrainerError('PW_TRAINER_REGISTRY_INVALID', `version ${record.version} of "${record.source}" exists with different model bytes; choose another --version`);
    }
  }
  const json = await createOnce(container, modelBlobName(record.source, record.version, 'model.json'), Buffer.from(`${JSON.stringify(record, null, 2)}\n`), 'application/json');
  return { created: onnx || json };
}

/** Moves best.json to `pointer` if it is still at `etag` (null: if there is none yet). */
export async function writeBest(container: ContainerClient, pointer: BestPointer, etag: string | null): Promise<void> {
  const name = bestModelBlobName(pointer.source);
  const body = Buffer.from(`${JSON.stringify(pointer, null, 2)}\n`);
  try {
    await container.getBlockBlobClient(name).upload(body, body.length, {
      conditions: etag === null ? { ifNoneMatch: '*' } : { ifMatch: etag },
      blobHTTPHeaders: { blobContentType: 'application/json' },
    });
  } catch (err) {
    const status = statusOf(err);
    if (status === 412 || status === 409) {
      throw new TrainerError('PW_TRAINER_REGISTRY_CONFLICT', `${name} changed while this run was deciding (another trainer promoted a model); nothing was promoted, run again`, { cause: err });
    }
    throw new TrainerError('PW_TRAINER_REGISTRY_INVALID', `cannot write ${name}: ${safeErrorMessage(err)}`, { cause: err });
  }
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Creates a blob unless it exists; true when this call created it. */
async function createOnce(container: ContainerClient, name: string, body: Uint8Array, contentType: string): Promise<boolean> {
  try {
    await container.getBlockBlobClient(name).upload(body, body.length, { conditions: { ifNoneMatch: '*' }, blobHTTPHeaders: { blobContentType: contentType } });
    return true;
  } catch (err) {
    const status = statusOf(err);
    if (status === 409 || status === 412) return false;
    throw new TrainerError('PW_TRAINER_REGISTRY_INVALID', `cannot write ${name}: ${safeErrorMessage(err)}`, { cause: err });
  }
}

async function download(container: ContainerClient, name: string): Promise<Buffer> {
  try {
    return await container.getBlockBlobClient(name).downloadToBuffer();
  } catch (err) {
    if (statusOf(err) === 404) throw new TrainerError('PW_TRAINER_NO_MODEL', `${name} does not exist`, { cause: err });
    throw new TrainerError('PW_TRAINER_REGISTRY_INVALID', `cannot read ${name}: ${safeErrorMessage(err)}`, { cause: err });
  }
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
