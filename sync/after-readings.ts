/**
 * The smaller uploads that follow a sync cycle's readings: technicians' labels to labels/, then
 * the items the agent refused to rejected/ (a few batches a cycle). One function for the agent's
 * sync (agent/wiring/sync.ts) and `pumpwatch-agent drain` (agent/drain.ts), so a moved-aside
 * buffer's labels and refusals go up under the same names, with the same bytes, as the agent's.
 */
import { LabelStore } from '../buffer/labels.js';
import { RejectedSync } from '../buffer/rejected-sync.js';
import type { BufferStore } from '../buffer/store.js';
import type { TokenBucket } from './bandwidth.js';
import type { SyncLogger } from './cycle.js';
import { uploadPendingLabels } from './labels-upload.js';
import { uploadPendingRejected } from './rejected-upload.js';
import type { BlobUploader } from './uploader.js';

export interface AfterReadingsOptions {
  deviceId: string;
  agentVersion: string;
  /** PUMPWATCH_SYNC_BATCH_MAX_ROWS and _BYTES, read at every cycle (live settings). */
  caps: () => { maxRows: number; maxBytes: number };
  logger: SyncLogger;
}

export interface AfterReadingsDone {
  labels: number;
  rejected: { rows: number; blobs: number };
  /** A label or a batch the service took (or already had): news of the target, as an uploaded batch is. */
  contacted: boolean;
}

/** A buffer's labels and refused items, uploaded under `deviceId` after each cycle's readings (SyncWorkerDeps.afterReadings). */
export class AfterReadings {
  readonly labels: LabelStore;
  readonly rejected: RejectedSync;

  constructor(
    buffer: BufferStore,
    private readonly opts: AfterReadingsOptions,
  ) {
    this.labels = new LabelStore(buffer);
    this.rejected = new RejectedSync(buffer);
  }

  async upload(uploader: BlobUploader, signal: AbortSignal, bucket: TokenBucket): Promise<AfterReadingsDone> {
    const { logger, deviceId, agentVersion } = this.opts;
    const { uploaded, alreadyPresent } = await uploadPendingLabels(uploader.containerClient, this.labels, deviceId, {
      idleMs: uploader.idleTimeoutMs,
      signal,
      onSetAside: (bad) => logger.warn({ labels: bad }, `${bad.length} stored label(s) have times that are not dates: moved to the rejected table, not uploaded`),
    });
    if (uploaded > 0) logger.info({ uploaded }, 'labels uploaded');
    const { maxRows, maxBytes } = this.opts.caps();
    const refused = await uploadPendingRejected(uploader, this.rejected, { deviceId, agentVersion, maxRows, maxBytes, bucket, signal, logger });
    return { labels: uploaded + alreadyPresent, rejected: refused, contacted: uploaded + alreadyPresent + refused.blobs > 0 };
  }
}
