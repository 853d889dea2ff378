/**
 * A version's model.onnx against the size and sha256 its model.json records: read whole
 * (readModelBytes, for a model that is then used), or streamed and hashed (hashModelBlob, for a
 * model that is only handed to gateways, which check the sha256 of what they download:
 * checkModelBlob for `deploy`, which keeps the bytes to read the model's contract, and
 * deploy/refresh.ts against a twin entry for `refresh-urls`, which keeps nothing but the hash).
 */
import type { ContainerClient } from '@azure/storage-blob';
import { createHash } from 'node:crypto';
import { TrainerError } from '../errors.js';
import type { ModelRecord } from './records.js';
import { download, fromRegistry, readBody } from './storage.js';

/** The model bytes, checked against the size and sha256 of its record. */
export async function readModelBytes(container: ContainerClient, record: Pick<ModelRecord, 'model'>): Promise<Uint8Array> {
  const buf = await download(container, record.model.blob, record.model.size);
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
 * and a copied blob brings its own), so the bytes are read and hashed (models are at most a few
 * MiB). Returns them: deploy reads the model's contract from them (deploy/agent-reads.ts).
 */
export async function checkModelBlob(container: ContainerClient, record: Pick<ModelRecord, 'model'>): Promise<Uint8Array> {
  const name = record.model.blob;
  const content = await hashModelBlob(container, name, record.model.size, true);
  if (content.kind === 'missing') throw new TrainerError('PW_TRAINER_NO_MODEL', `${name} does not exist (its model.json does)`, { cause: content.cause });
  if (content.kind === 'length') throw new TrainerError('PW_TRAINER_REGISTRY_INVALID', `${name} has ${String(content.length)} bytes, its model.json says ${record.model.size}`);
  if (content.sha256 !== record.model.sha256) throw shaMismatch(record, content.sha256);
  return content.bytes ?? new Uint8Array();
}

/** What a model blob holds, read against the size expected of it. */
export type ModelBlobContent =
  | { kind: 'missing'; cause: unknown }
  /** Another length than expected: the bytes were not read. */
  | { kind: 'length'; length: number | undefined }
  /** `bytes`: the blob's bytes, when asked to keep them. */
  | { kind: 'bytes'; sha256: string; bytes?: Uint8Array };

/**
 * The sha256 of a model blob's bytes when its length is `size` (else its length, the bytes not
 * read), streamed and hashed: the one reading of a model blob before a gateway is sent to it,
 * for `deploy` (checkModelBlob) and `refresh-urls` (deploy/refresh.ts). A body cut mid-transfer
 * is downloaded again (readBody), then is PW_TRAINER_STORAGE, as is any failure of Blob Storage
 * but a missing blob.
 */
export async function hashModelBlob(container: ContainerClient, name: string, size: number, keep = false): Promise<ModelBlobContent> {
  try {
    return await readBody(container, name, (w) => fromRegistry(name, () => container.getBlockBlobClient(name).download(0, undefined, w)), async (res): Promise<ModelBlobContent> => {
      const body = res.readableStreamBody;
      if (res.contentLength !== size) {
        (body as { destroy?: () => void } | undefined)?.destroy?.();
        return { kind: 'length', length: res.contentLength };
      }
      const hash = createHash('sha256');
      const kept: Buffer[] = [];
      let received = 0;
      if (body) {
        for await (const chunk of body) {
          const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
          received += bytes.length;
          hash.update(bytes);
          if (keep) kept.push(bytes);
        }
      }
      // The blob's length was the expected one (checked above): a shorter body is a transfer that stopped, not a damaged blob.
      if (received !== size) throw new Error(`the download ended after ${received} of its ${size} bytes`);
      return { kind: 'bytes', sha256: hash.digest('hex'), ...(keep ? { bytes: new Uint8Array(Buffer.concat(kept)) } : {}) };
    });
  } catch (err) {
    if (err instanceof TrainerError && err.code === 'PW_TRAINER_NO_MODEL') return { kind: 'missing', cause: err.cause };
    throw err;
  }
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
