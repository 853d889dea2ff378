/**
 * Technicians' labels in Blob Storage: the agent uploads them (one small JSON blob per label,
 * `labels/{deviceId}/{yyyy}/{mm}/{dd}/{id}.json`) and the trainer reads them back as targets.
 *
 * For the trainer: `readLabels(container)` returns every label (or one device's), and
 * `labelTargetAt(labels, pumpId, ts)` says what a reading at `ts` is: `anomaly` inside a confirmed
 * fault, `normal` at a false alarm, `exclude` inside a maintenance window (readings there are
 * not normal operation and not a fault), `null` when no label covers it. The latest label wins.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { z } from 'zod';
import { FAULT_TYPES, LABEL_KINDS, labelFields, type Label, type LabelStore, type SetAsideLabel } from '../buffer/labels.js';
import { watched } from './deadline.js';
import { dayPath, labelsPrefix } from './layout.js';
import { safeErrorMessage } from './redact.js';

export const LABEL_SCHEMA_VERSION = 1;
const BATCH = 100;

/**
 * One label as stored in Blob Storage (times as ISO 8601; the agent writes UTC with `Z`, and an
 * offset such as `+00:00` or `+02:00` is read too). A label whose `to` is before its `from` is
 * refused, as the agent refuses it when a technician creates it (agent/http/labels-routes.ts,
 * "to is before from"): it would cover no reading.
 */
export const LabelRecordSchema = z
  .object({
    schema: z.literal(LABEL_SCHEMA_VERSION),
    id: z.string().min(1),
    deviceId: z.string().min(1),
    pumpId: z.string().min(1),
    kind: z.enum(LABEL_KINDS),
    faultType: z.enum(FAULT_TYPES).nullable(),
    note: z.string().nullable(),
    alertSeq: z.number().int().nullable(),
    from: z.iso.datetime({ offset: true }),
    to: z.iso.datetime({ offset: true }),
    author: z.string().min(1),
    createdAt: z.iso.datetime({ offset: true }),
  })
  .refine((l) => Date.parse(l.to) >= Date.parse(l.from), { path: ['to'], message: 'to is before from' });
export type LabelRecord = z.infer<typeof LabelRecordSchema>;

/**
 * A label upload that failed: `summary` says how far it got, `cause` is the service's (or the
 * network's) error, which sync/backoff.ts classifies (a 403 is not an outage).
 */
export class LabelUploadError extends Error {
  readonly code = 'PW_LABEL_UPLOAD_FAILED';
  constructor(
    readonly summary: string,
    options?: { cause?: unknown },
  ) {
    super(options?.cause === undefined ? summary : `${summary}: ${safeErrorMessage(options.cause)}`, options);
    this.name = 'LabelUploadError';
  }
}

/** `labels/{deviceId}/{yyyy}/{mm}/{dd}/{id}.json`, dated by the label's creation (UTC). */
export function labelBlobName(deviceId: string, label: Pick<Label, 'id' | 'createdAt'>): string {
  return `${labelsPrefix(deviceId)}${dayPath(label.createdAt)}/${label.id}.json`;
}

export function toLabelRecord(deviceId: string, l: Label): LabelRecord {
  return { schema: LABEL_SCHEMA_VERSION, deviceId, ...labelFields(l) };
}

function isAlreadyThere(err: unknown): boolean {
  const e = err as { statusCode?: number; code?: string };
  return e.statusCode === 409 && (e.code === undefined || e.code === 'BlobAlreadyExists');
}

/**
 * Uploads every label not yet uploaded and marks it synced. Idempotent: names are fixed by the
 * label's id and the upload is conditional (If-None-Match: *), so a label uploaded before a crash
 * (but not marked) is found already there and simply marked. Labels uploaded before a failure stay
 * marked; the failure is thrown as a LabelUploadError (no secrets in its message). A stored label
 * whose times are not dates is first moved to the rejected table (LabelStore.setAsideInvalid) and
 * passed to `onSetAside`, for the caller to log: it can never be uploaded, and must not hold up
 * the labels after it. Each upload runs under sync/deadline.ts's limits (`idleMs`, default 60 s),
 * so a stalled connection ends the cycle as an outage instead of holding it.
 */
export async function uploadPendingLabels(
  container: ContainerClient,
  labels: LabelStore,
  deviceId: string,
  opts: { onSetAside?: (labels: SetAsideLabel[]) => void; now?: number; idleMs?: number; signal?: AbortSignal } = {},
): Promise<{ uploaded: number; alreadyPresent: number }> {
  let uploaded = 0;
  let alreadyPresent = 0;
  const setAside = labels.setAsideInvalid(opts.now ?? Date.now());
  if (setAside.length > 0) opts.onSetAside?.(setAside);
  for (;;) {
    const pending = labels.unsynced(BATCH);
    if (pending.length === 0) break;
    const done: string[] = [];
    try {
      for (const label of pending) {
        const body = JSON.stringify(toLabelRecord(deviceId, label));
        const name = labelBlobName(deviceId, label);
        const bytes = Buffer.byteLength(body);
        try {
          await watched(`uploading ${name}`, { idleMs: opts.idleMs, bytes, parent: opts.signal }, (w) =>
            container.getBlockBlobClient(name).upload(body, bytes, {
              conditions: { ifNoneMatch: '*' },
              blobHTTPHeaders: { blobContentType: 'application/json' },
              metadata: { schema: String(LABEL_SCHEMA_VERSION), pumpid: encodeURIComponent(label.pumpId), kind: label.kind },
              abortSignal: w.signal,
              onProgress: w.onProgress,
            }),
          );
          uploaded++;
        } catch (err) {
          if (!isAlreadyThere(err)) throw err;
          alreadyPresent++;
        }
        done.push(label.id);
      }
    } catch (err) {
      throw new LabelUploadError(`uploading labels failed after ${uploaded + alreadyPresent} of them`, { cause: err });
    } finally {
      labels.markSynced(done);
    }
    if (pending.length < BATCH) break;
  }
  return { uploaded, alreadyPresent };
}

/**
 * Reads the labels in Blob Storage (all devices, or one), oldest first. A blob that is not a
 * valid label record is skipped and reported through `onInvalid` (it never stops a training run);
 * one that cannot be downloaded throws (the storage failed, not the label).
 */
export async function readLabels(
  container: ContainerClient,
  deviceId?: string,
  opts: { onInvalid?: (blobName: string, reason: string) => void } = {},
): Promise<LabelRecord[]> {
  const prefix = deviceId === undefined ? 'labels/' : labelsPrefix(deviceId);
  const out: LabelRecord[] = [];
  for await (const blob of container.listBlobsFlat({ prefix })) {
    if (!blob.name.endsWith('.json')) continue;
    // A download that fails is a storage failure, thrown as such: a run without a confirmed fault
    // it could not read would judge its models on the wrong rows.
    const buf = await container.getBlobClient(blob.name).downloadToBuffer();
    let value: unknown;
    try {
      value = JSON.parse(buf.toString('utf8'));
    } catch (err) {
      opts.onInvalid?.(blob.name, `not JSON: ${safeErrorMessage(err).split('\n')[0]}`);
      continue;
    }
    const parsed = LabelRecordSchema.safeParse(value);
    if (parsed.success) out.push(parsed.data);
    else opts.onInvalid?.(blob.name, parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  }
  // By time, not by text: with offsets the text order is not the time order.
  return out.sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt) || a.id.localeCompare(b.id));
}

export type LabelTarget = 'anomaly' | 'normal' | 'exclude';

const TARGET: Record<LabelRecord['kind'], LabelTarget> = {
  'confirmed-fault': 'anomaly',
  'false-alarm': 'normal',
  maintenance: 'exclude',
};

/** The target the labels give a reading of `pumpId` at `ts` (epoch ms), or null when none covers it. */
export function labelTargetAt(labels: readonly LabelRecord[], pumpId: string, ts: number): LabelTarget | null {
  let best: LabelRecord | null = null;
  for (const l of labels) {
    if (l.pumpId !== pumpId || ts < Date.parse(l.from) || ts > Date.parse(l.to)) continue;
    if (best === null || Date.parse(l.createdAt) >= Date.parse(best.createdAt)) best = l;
  }
  return best === null ? null : TARGET[best.kind];
}
