/**
 * A version's model.onnx against the size and sha256 its model.json records: read whole
 * (readModelBytes, for a model that is then used), or streamed and hashed without keeping the bytes
 * (checkModelBlob, for a model that is only handed to gateways, which check the sha256 of what they
 * download).
 */
import type { ContainerClient } from '@azure/storage-blob';
import { createHash } from 'node:crypto';
import { TrainerError } from '../errors.js';
import type { ModelRecord } from './records.js';
import { download, readBody, registryError, statusOf } from './storage.js';

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

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
