/**
 * Uploads one planned batch exactly once. The blob is created only if absent (If-None-Match: *);
 * when it already exists (a retry after a crash, or anything else), its content decides: the same
 * bytes (sha256) or the same rows (sha256 of the uncompressed lines) count as done, different
 * content is a conflict that is reported and never overwritten. A missing container is created
 * when allowed. Every request runs under sync/deadline.ts's limits: one that stalls is given up.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { containerClient, type BlobTarget, type ClientOptions } from './client.js';
import { DEFAULT_IDLE_MS, watched } from './deadline.js';
import { sha256Hex, type EncodedBatch } from './encoder.js';
import { SyncError } from './errors.js';
import { besideName } from './layout.js';

const gunzipAsync = promisify(gunzip);
/** An existing blob larger than this is not downloaded to compare: it cannot be one of ours. */
const MAX_COMPARE_BYTES = 256 * 1024 * 1024;

/** `created-beside`: the planned name held other content, and the batch went to `besideName` (layout.ts). */
export type UploadOutcome = 'created' | 'already-present' | 'created-beside';

export interface UploadRequest {
  blobName: string;
  encoded: EncodedBatch;
  metadata: Record<string, string>;
}

export interface UploaderOptions {
  /** Create the container when it is missing (needs account-level rights). */
  createContainer: boolean;
  /** Overrides the spec's ClientOptions.idleTimeoutMs (an uploader built from a client only). */
  idleTimeoutMs?: number;
}

/**
 * What an uploader is built from, as plain data: sync's encoder thread builds its own uploader
 * from it (a client cannot cross threads). It holds the credentials: never log it.
 */
export interface UploaderSpec extends UploaderOptions {
  target: BlobTarget;
  client?: ClientOptions;
}

/** An uploader for a target; it keeps its spec, so the encoder thread can upload to the same place. */
export function uploaderFor(spec: UploaderSpec): BlobUploader {
  return new BlobUploader(containerClient(spec.target, spec.client), { createContainer: spec.createContainer }, spec);
}

/**
 * A body handed to the socket in pieces of this size, so upload progress follows the bytes the
 * connection takes (a Buffer given whole counts as sent at once, and a slow link would look stalled).
 */
const PIECE = 16 * 1024;

function* pieces(body: Buffer): Generator<Buffer> {
  for (let at = 0; at < body.length; at += PIECE) yield body.subarray(at, at + PIECE);
}

const statusOf = (err: unknown): number | undefined => (err as { statusCode?: number }).statusCode;
const codeOf = (err: unknown): string | undefined => (err as { code?: string }).code;

export class BlobUploader {
  constructor(
    private readonly container: ContainerClient,
    private readonly options: UploaderOptions,
    /** How to build the same uploader on another thread; null when built from a client only. */
    readonly spec: UploaderSpec | null = null,
  ) {}

  /** The container itself, for the small uploads that follow the readings (labels). */
  get containerClient(): ContainerClient {
    return this.container;
  }

  get containerName(): string {
    return this.container.containerName;
  }

  /** How long a request may go without a byte moving (ClientOptions.idleTimeoutMs), for other requests to the same target. */
  get idleTimeoutMs(): number {
    return this.options.idleTimeoutMs ?? this.spec?.client?.idleTimeoutMs ?? DEFAULT_IDLE_MS;
  }

  async upload(req: UploadRequest, signal?: AbortSignal): Promise<UploadOutcome> {
    try {
      return await this.createOrVerify(req, signal);
    } catch (err) {
      if (!(statusOf(err) === 404 && codeOf(err) === 'ContainerNotFound')) throw err;
      await this.createContainer(signal);
      return this.createOrVerify(req, signal);
    }
  }

  private async createOrVerify(req: UploadRequest, signal?: AbortSignal, beside = false): Promise<UploadOutcome> {
    const body = req.encoded.body;
    try {
      await watched(`uploading ${req.blobName}`, { idleMs: this.idleTimeoutMs, bytes: body.length, parent: signal }, (w) =>
        this.container.getBlockBlobClient(req.blobName).upload(() => Readable.from(pieces(body)), body.length, {
          conditions: { ifNoneMatch: '*' },
          metadata: req.metadata,
          blobHTTPHeaders: { blobContentType: 'application/gzip' },
          abortSignal: w.signal,
          onProgress: w.onProgress,
        }),
      );
      return beside ? 'created-beside' : 'created';
    } catch (err) {
      const status = statusOf(err);
      if (status === 409 || status === 412) return this.verifyExisting(req, signal, beside);
      throw err;
    }
  }

  /**
   * The blob exists: done when it holds the same rows. Other content under the planned name (a
   * device id reused by a buffer that started again at sequence 1, or an earlier upload of this
   * batch whose answer was lost and whose bytes differ now) is never overwritten: the batch
   * goes beside it (`besideName`), where a retry finds it again. Only other content there too is a
   * conflict.
   */
  private async verifyExisting(req: UploadRequest, signal: AbortSignal | undefined, beside: boolean): Promise<UploadOutcome> {
    const blob = this.container.getBlockBlobClient(req.blobName);
    const idleMs = this.idleTimeoutMs;
    const props = await watched(`reading the properties of ${req.blobName}`, { idleMs, parent: signal }, (w) => blob.getProperties({ abortSignal: w.signal }));
    const ours = req.encoded;
    if (props.metadata?.sha256 === ours.sha256 && props.contentLength === ours.body.length) return 'already-present';
    const size = props.contentLength ?? 0;
    if (size <= MAX_COMPARE_BYTES) {
      // Its size counts as bytes to move: the cap grows with it as an upload's does.
      const content = await watched(`downloading ${req.blobName} to compare`, { idleMs, bytes: size, parent: signal }, (w) =>
        blob.downloadToBuffer(0, undefined, { abortSignal: w.signal, onProgress: w.onProgress }),
      );
      if ((await sha256Hex(content)) === ours.sha256) return 'already-present';
      const raw = await gunzipAsync(content).catch(() => null);
      if (raw !== null && (await sha256Hex(raw)) === ours.rawSha256) return 'already-present';
    }
    if (!beside) return this.createOrVerify({ ...req, blobName: besideName(req.blobName, ours.sha256) }, signal, true);
    throw new SyncError(
      'PW_SYNC_BLOB_CONFLICT',
      `blob ${req.blobName} in container ${this.container.containerName} already exists with different content ` +
        `(${size} bytes, sha256 ${props.metadata?.sha256?.slice(0, 12) ?? 'unknown'}…; ours ${ours.body.length} bytes, ` +
        `sha256 ${ours.sha256.slice(0, 12)}…), and so does the batch's planned name: neither is overwritten; move this one away, and the batch is tried again at the agent's next start`,
    );
  }

  private async createContainer(signal?: AbortSignal): Promise<void> {
    const name = this.container.containerName;
    if (!this.options.createContainer) {
      throw new SyncError('PW_SYNC_CONTAINER_MISSING', `blob container "${name}" does not exist (creating it is disabled: PUMPWATCH_SYNC_CREATE_CONTAINER=0)`);
    }
    try {
      await watched(`creating container ${name}`, { idleMs: this.idleTimeoutMs, parent: signal }, (w) => this.container.createIfNotExists({ abortSignal: w.signal }));
    } catch (err) {
      const status = statusOf(err);
      if (status === 401 || status === 403 || status === 404) {
        throw new SyncError(
          'PW_SYNC_CONTAINER_MISSING',
          `blob container "${name}" does not exist and these credentials may not create it (${status} ${codeOf(err) ?? ''}): ` +
            'create it, or use a connection string with account rights',
          { cause: err },
        );
      }
      throw err;
    }
  }
}
