/**
 * How the registry reads and writes its blobs: every request under the idle limit of the run
 * (sync/deadline.ts; trainer/cloud/blob-limits.ts), so a connection that stops answering fails
 * the source instead of holding the run; a download whose body is cut mid-transfer is
 * downloaded again from the start (readBody), a missing blob is PW_TRAINER_NO_MODEL
 * (fromRegistry), every other failure of Blob Storage (no answer included) is PW_TRAINER_STORAGE
 * (registryError), and a registry document is parsed through its zod schema (parse). No registry
 * semantics here: the reads (read.ts), writes (write.ts, register.ts) and model checks
 * (model-blob.ts) build on it.
 */
import type { BlockBlobUploadOptions, ContainerClient } from '@azure/storage-blob';
import { watched, watchedPages, type RequestWatch } from '../../sync/deadline.js';
import { SyncError } from '../../sync/errors.js';
import { safeErrorMessage } from '../../sync/redact.js';
import { idleLimitOf } from '../cloud/blob-limits.js';
import { storageError, TrainerError } from '../errors.js';

export const statusOf = (err: unknown): number | undefined => (err as { statusCode?: number }).statusCode;

/** The registry's own container does not exist (yet: register.ts makes it at the first version written). */
export const containerMissing = (err: unknown): boolean => statusOf(err) === 404 && (err as { code?: string }).code === 'ContainerNotFound';

/** A registry read: a missing blob is PW_TRAINER_NO_MODEL, any other failure as registryError says. */
export async function fromRegistry<T>(name: string, read: () => Promise<T>): Promise<T> {
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
export function registryError(what: string, err: unknown): TrainerError {
  if (err instanceof TrainerError) return err;
  const storage = storageError(what, err);
  if (storage instanceof TrainerError) return storage;
  return new TrainerError('PW_TRAINER_STORAGE', `${what} failed: ${safeErrorMessage(err)}`, { cause: err });
}

/** Attempts at a download whose body is cut mid-transfer (readBody). */
const BODY_ATTEMPTS = 3;

export type Download = Awaited<ReturnType<ReturnType<ContainerClient['getBlockBlobClient']>['download']>>;

/** What `open` gives the SDK's download: the abort signal and progress callback of the attempt's limits. */
export interface DownloadWatch {
  abortSignal: AbortSignal;
  onProgress: RequestWatch['onProgress'];
}

/**
 * `open` (a download, given `DownloadWatch` for the SDK's options) and `consume` (the reading of
 * its body), each attempt under the idle limit of `container`'s run: no byte moving for that
 * long is PW_TRAINER_STORAGE ("no answer from Blob Storage for 60 s (reading …)"), not retried.
 * A body cut mid-transfer (a connection reset or aborted: the SDK's own stream retry gives up at
 * once on an abort, and is off by default) is downloaded again from the start, BODY_ATTEMPTS
 * times in all, then is PW_TRAINER_STORAGE. Each attempt is one whole GET, so what is consumed
 * is one version of the blob. `open`'s own failure, and a TrainerError of `consume` (a document
 * that does not parse, a length that is not the recorded one), are not retried. `bytes`: the
 * size expected, when known (the cap of an attempt grows with it, as an upload's does).
 */
export async function readBody<T>(container: ContainerClient, name: string, open: (w: DownloadWatch) => Promise<Download>, consume: (res: Download) => Promise<T>, bytes = 0): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    let opened = false;
    try {
      return await watched(`reading ${name}`, { idleMs: idleLimitOf(container), bytes }, async (w) => {
        const res = await open({ abortSignal: w.signal, onProgress: w.onProgress });
        opened = true;
        return consume(res);
      });
    } catch (err) {
      if (isNoAnswer(err)) throw registryError(`reading ${name}`, err);
      if (!opened || err instanceof TrainerError) throw err;
      if (attempt >= BODY_ATTEMPTS) throw registryError(`reading ${name}`, err);
    }
  }
}

/** A request given up by sync/deadline.ts: no byte moved for the idle limit, or it took longer than its cap. */
export const isNoAnswer = (err: unknown): boolean => err instanceof SyncError && err.code === 'PW_SYNC_NO_ANSWER';

/** A small registry document as text, with its ETag (for a conditional rewrite). */
export async function downloadText(container: ContainerClient, name: string): Promise<{ text: string; etag: string }> {
  return readBody(container, name, (w) => fromRegistry(name, () => container.getBlockBlobClient(name).download(0, undefined, w)), async (res) => ({ text: (await streamToBuffer(res.readableStreamBody)).toString('utf8'), etag: res.etag ?? '' }));
}

export async function download(container: ContainerClient, name: string, bytes = 0): Promise<Buffer> {
  return readBody(container, name, (w) => fromRegistry(name, () => container.getBlockBlobClient(name).download(0, undefined, w)), (res) => streamToBuffer(res.readableStreamBody), bytes);
}

/**
 * Uploads a registry blob under the idle limit of `container`'s run (its cap grown by the body);
 * the SDK's error, or the PW_SYNC_NO_ANSWER of a write given up, is the caller's to tell
 * (statusOf for a condition that failed, registryError for the rest).
 */
export async function uploadBlob(container: ContainerClient, name: string, body: Uint8Array, options: BlockBlobUploadOptions): Promise<{ etag?: string }> {
  return watched(`writing ${name}`, { idleMs: idleLimitOf(container), bytes: body.length }, (w) =>
    container.getBlockBlobClient(name).upload(body, body.length, { ...options, abortSignal: w.signal, onProgress: w.onProgress }),
  );
}

/** The blobs under `prefix`, each page of the listing under the idle limit of `container`'s run. */
export async function* listUnder(container: ContainerClient, prefix: string): AsyncGenerator<{ name: string }> {
  for await (const page of watchedPages(`listing ${prefix}`, { idleMs: idleLimitOf(container) }, (abortSignal) => container.listBlobsFlat({ prefix, abortSignal }).byPage())) {
    yield* page.segment.blobItems;
  }
}

export function parse<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } } }, text: string, name: string): T {
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

export async function streamToBuffer(stream: NodeJS.ReadableStream | undefined): Promise<Buffer> {
  if (!stream) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks);
}
