/**
 * Technicians' labels in Blob Storage: the agent uploads them (one small JSON blob per label,
 * `labels/{deviceId}/{yyyy}/{mm}/{dd}/{id}.json`) and the trainer reads them back as targets.
 *
 * For the trainer: `readLabels(container)` returns every label not withdrawn (or one device's, or
 * those of some pumps, told by the `pumpid` metadata every agent writes on its label blobs), and
 * `labelTargetAt(labels, pumpId, ts)` says what a reading at `ts` is: `anomaly` inside a confirmed
 * fault, `normal` at a false alarm, `exclude` inside a maintenance window (readings there are
 * not normal operation and not a fault), `null` when no label covers it. The latest label wins.
 * `labelTargets(labels, pumpId, timestamps)` answers the same for many readings at once (the
 * trainer's: a range of readings against every label), and `labelOwners` names the label that
 * decided each one.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { z } from 'zod';
import { withdrawalFields, type LabelWithdrawal } from '../buffer/label-withdrawals.js';
import { FAULT_TYPES, LABEL_KINDS, labelFields, type Label, type LabelStore, type SetAsideLabel } from '../buffer/labels.js';
import { watched, watchedPages } from './deadline.js';
import { dayPath, labelsPrefix } from './layout.js';
import { mapLimited } from './reader.js';
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
 * A label withdrawn (DELETE /labels/:id on the agent), stored beside the labels under the same
 * prefix: the trainer drops the label it names (`withdraws`, a label id) before labels are applied.
 * `kind: "withdrawal"` is no label kind, so a trainer from before withdrawals skips the record as
 * an invalid label, with its warning, and keeps the label (what it did before withdrawals existed).
 */
export const WithdrawalRecordSchema = z.object({
  schema: z.literal(LABEL_SCHEMA_VERSION),
  kind: z.literal('withdrawal'),
  id: z.string().min(1),
  deviceId: z.string().min(1),
  withdraws: z.string().min(1),
  pumpId: z.string().min(1),
  author: z.string().min(1),
  note: z.string().nullable(),
  createdAt: z.iso.datetime({ offset: true }),
});
export type WithdrawalRecord = z.infer<typeof WithdrawalRecordSchema>;

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

/** `labels/{deviceId}/{yyyy}/{mm}/{dd}/{id}.json`, dated by the label's (or withdrawal's) creation (UTC). */
export function labelBlobName(deviceId: string, label: Pick<Label, 'id' | 'createdAt'>): string {
  return `${labelsPrefix(deviceId)}${dayPath(label.createdAt)}/${label.id}.json`;
}

export function toLabelRecord(deviceId: string, l: Omit<Label, 'followsEpisode'>): LabelRecord {
  return { schema: LABEL_SCHEMA_VERSION, deviceId, ...labelFields(l) };
}

export function toWithdrawalRecord(deviceId: string, w: LabelWithdrawal): WithdrawalRecord {
  return { schema: LABEL_SCHEMA_VERSION, kind: 'withdrawal', deviceId, ...withdrawalFields(w) };
}

function isAlreadyThere(err: unknown): boolean {
  const e = err as { statusCode?: number; code?: string };
  return e.statusCode === 409 && (e.code === undefined || e.code === 'BlobAlreadyExists');
}

/**
 * Uploads every label not yet uploaded, then every withdrawal of a label (same prefix, named by
 * the withdrawal's id), and marks each synced. Idempotent: names are fixed by the
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
  const setAside = labels.setAsideInvalid(opts.now ?? Date.now());
  if (setAside.length > 0) opts.onSetAside?.(setAside);
  const done = { uploaded: 0, alreadyPresent: 0 };
  await uploadEach(container, done, 'labels', opts, {
    pending: (n) => labels.unsynced(n),
    mark: (ids) => labels.markSynced(ids),
    blob: (l) => ({ name: labelBlobName(deviceId, l), record: toLabelRecord(deviceId, l), kind: l.kind }),
  });
  // After the labels, so a withdrawal never reaches the lake before the label it names.
  await uploadEach(container, done, 'label withdrawals', opts, {
    pending: (n) => labels.withdrawals.unsynced(n),
    mark: (ids) => labels.withdrawals.markSynced(ids),
    blob: (w) => ({ name: labelBlobName(deviceId, w), record: toWithdrawalRecord(deviceId, w), kind: 'withdrawal' }),
  });
  return done;
}

/** Labels or withdrawals not yet uploaded, their blobs, and how to mark them uploaded. */
interface PendingBlobs<T extends { id: string; pumpId: string }> {
  pending(limit: number): T[];
  mark(ids: readonly string[]): void;
  blob(item: T): { name: string; record: unknown; kind: string };
}

/** One small JSON blob per item, conditional (If-None-Match: *), marked as it goes: see uploadPendingLabels. */
async function uploadEach<T extends { id: string; pumpId: string }>(
  container: ContainerClient,
  count: { uploaded: number; alreadyPresent: number },
  what: string,
  opts: { idleMs?: number; signal?: AbortSignal },
  items: PendingBlobs<T>,
): Promise<void> {
  let tried = 0;
  for (;;) {
    const pending = items.pending(BATCH);
    if (pending.length === 0) break;
    const done: string[] = [];
    try {
      for (const item of pending) {
        const { name, record, kind } = items.blob(item);
        const body = JSON.stringify(record);
        const bytes = Buffer.byteLength(body);
        try {
          await watched(`uploading ${name}`, { idleMs: opts.idleMs, bytes, parent: opts.signal }, (w) =>
            container.getBlockBlobClient(name).upload(body, bytes, {
              conditions: { ifNoneMatch: '*' },
              blobHTTPHeaders: { blobContentType: 'application/json' },
              metadata: { schema: String(LABEL_SCHEMA_VERSION), pumpid: encodeURIComponent(item.pumpId), kind },
              abortSignal: w.signal,
              onProgress: w.onProgress,
            }),
          );
          count.uploaded++;
        } catch (err) {
          if (!isAlreadyThere(err)) throw err;
          count.alreadyPresent++;
        }
        tried++;
        done.push(item.id);
      }
    } catch (err) {
      throw new LabelUploadError(`uploading ${what} failed after ${tried} of them`, { cause: err });
    } finally {
      items.mark(done);
    }
    if (pending.length < BATCH) break;
  }
}

export interface ReadLabelsOptions {
  /** Called for each blob read that is not a valid label record (in name order), which is skipped. */
  onInvalid?: (blobName: string, reason: string) => void;
  /**
   * Only the labels of these pumps: a blob whose `pumpid` metadata names another pump is not
   * downloaded. One without that metadata (written by another tool, or copied without it) is
   * read whatever pump it is of: its body says. Default: every pump's.
   */
  pumps?: readonly string[];
  /** Blobs downloaded at once (default 8). */
  concurrency?: number;
  /** A listing or download with no byte moving for this long is given up (sync/deadline.ts, default 60 s). */
  idleMs?: number;
  /**
   * Called for each valid withdrawal read (in name order), with the label it withdraws when that
   * label was read too (null: not read, or not a valid label): the trainer records which
   * withdrawals changed the labels of its range.
   */
  onWithdrawal?: (withdrawal: WithdrawalRecord, label: LabelRecord | null) => void;
}

/**
 * The pump a label blob's metadata names (`pumpid`, percent-encoded, as uploadPendingLabels
 * writes it: every agent since labels were first uploaded), or null when it names none or one
 * that does not decode. Metadata names are case-insensitive in Blob Storage.
 */
function metadataPump(metadata: Record<string, string> | undefined): string | null {
  const key = Object.keys(metadata ?? {}).find((k) => k.toLowerCase() === 'pumpid');
  const value = key === undefined ? undefined : metadata?.[key];
  if (value === undefined || value === '') return null;
  try {
    return decodeURIComponent(value);
  } catch {
    return null;
  }
}

/**
 * Reads the labels in Blob Storage (all devices, or one; all pumps, or some: `pumps`), oldest
 * first, `concurrency` downloads at once, leaving out every label a withdrawal record names (a
 * withdrawal is uploaded under its label's device and with its label's `pumpid`, so any read that
 * takes the label takes its withdrawals too). A blob that is not a valid label record is skipped and
 * reported through `onInvalid` (it never stops a training run); one that cannot be downloaded
 * throws (the storage failed, not the label), and so does a listing or download with no byte
 * moving for `idleMs`.
 */
export async function readLabels(container: ContainerClient, deviceId?: string, opts: ReadLabelsOptions = {}): Promise<LabelRecord[]> {
  const prefix = deviceId === undefined ? 'labels/' : labelsPrefix(deviceId);
  const pumps = opts.pumps === undefined ? null : new Set(opts.pumps);
  const wanted: Array<{ name: string; size: number }> = [];
  const pages = watchedPages(`listing ${prefix}`, { idleMs: opts.idleMs }, (abortSignal) => container.listBlobsFlat({ prefix, includeMetadata: true, abortSignal }).byPage());
  for await (const page of pages) {
    for (const blob of page.segment.blobItems) {
      if (!blob.name.endsWith('.json')) continue;
      const pump = metadataPump(blob.metadata);
      if (pumps !== null && pump !== null && !pumps.has(pump)) continue;
      wanted.push({ name: blob.name, size: blob.properties.contentLength ?? 0 });
    }
  }
  // A download that fails is a storage failure, thrown as such: a run without a confirmed fault
  // it could not read would judge its models on the wrong rows.
  // One GET each (downloadToBuffer asks for the properties first: two requests per small blob).
  const bodies = await mapLimited(wanted, opts.concurrency ?? 8, (blob) =>
    watched(`downloading ${blob.name}`, { idleMs: opts.idleMs, bytes: blob.size }, async (w) => {
      const res = await container.getBlobClient(blob.name).download(0, undefined, { abortSignal: w.signal, onProgress: w.onProgress });
      const chunks: Buffer[] = [];
      for await (const chunk of res.readableStreamBody ?? []) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
      return Buffer.concat(chunks);
    }),
  );
  const out: LabelRecord[] = [];
  const withdrawals: WithdrawalRecord[] = [];
  for (const [i, blob] of wanted.entries()) {
    let value: unknown;
    try {
      value = JSON.parse((bodies[i] as Buffer).toString('utf8'));
    } catch (err) {
      opts.onInvalid?.(blob.name, `not JSON: ${safeErrorMessage(err).split('\n')[0]}`);
      continue;
    }
    const isWithdrawal = (value as { kind?: unknown } | null)?.kind === 'withdrawal';
    const parsed = isWithdrawal ? WithdrawalRecordSchema.safeParse(value) : LabelRecordSchema.safeParse(value);
    if (!parsed.success) opts.onInvalid?.(blob.name, parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; '));
    else if ('withdraws' in parsed.data) withdrawals.push(parsed.data);
    else out.push(parsed.data);
  }
  const withdrawn = new Set(withdrawals.map((w) => w.withdraws));
  if (opts.onWithdrawal) {
    const byId = new Map(out.filter((l) => withdrawn.has(l.id)).map((l) => [l.id, l]));
    for (const w of withdrawals) opts.onWithdrawal(w, byId.get(w.withdraws) ?? null);
  }
  // A withdrawn label is no label: the one under it (an older label covering the same readings) applies again.
  // Label ids are random UUIDs, unique across devices, so the id alone names it.
  // By time, not by text: with offsets the text order is not the time order.
  return out.filter((l) => !withdrawn.has(l.id)).sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt) || a.id.localeCompare(b.id));
}

export type LabelTarget = 'anomaly' | 'normal' | 'exclude';

const TARGET: Record<LabelRecord['kind'], LabelTarget> = {
  'confirmed-fault': 'anomaly',
  'false-alarm': 'normal',
  maintenance: 'exclude',
};

/** The target `label` gives the readings it covers. */
export function targetOf(label: Pick<LabelRecord, 'kind'>): LabelTarget {
  return TARGET[label.kind];
}

/** The target the labels give a reading of `pumpId` at `ts` (epoch ms), or null when none covers it. */
export function labelTargetAt(labels: readonly LabelRecord[], pumpId: string, ts: number): LabelTarget | null {
  return labelTargets(labels, pumpId, [ts])[0] ?? null;
}

/**
 * The target of each reading of `pumpId` at `timestamps` (epoch ms, in any order), as
 * labelTargetAt gives it: the label created last that covers the reading (`from` ≤ ts ≤ `to`), of
 * two created at the same time the later in `labels`; null when none covers it.
 *
 * Each label's times are parsed once; the labels are taken newest first, and each gives its
 * target to the readings of its span that no newer label took (two binary searches in the sorted
 * times, then a "next reading still free" pointer, path-compressed, skips those already taken).
 * N readings and L labels cost O(N + L log N) after the sort, not N·L label checks: 100,000 readings
 * against 1,000 labels took 77 s label by label (each check parsed its dates again).
 */
export function labelTargets(labels: readonly LabelRecord[], pumpId: string, timestamps: readonly number[]): Array<LabelTarget | null> {
  return Array.from(labelOwners(labels, pumpId, timestamps), (k) => (k < 0 ? null : targetOf(labels[k] as LabelRecord)));
}

/**
 * The label that gives each reading of `pumpId` at `timestamps` its target (labelTargets: that
 * label's kind), as its index in `labels`; -1 when none covers the reading. The trainer counts
 * with it which label decided which rows of its comparison.
 */
export function labelOwners(labels: readonly LabelRecord[], pumpId: string, timestamps: readonly number[]): Int32Array {
  const out = new Int32Array(timestamps.length).fill(-1);
  const own = labels
    .map((l, k) => ({ k, pumpId: l.pumpId, created: Date.parse(l.createdAt), from: Date.parse(l.from), to: Date.parse(l.to) }))
    .filter((l) => l.pumpId === pumpId)
    // Newest first; of two created at the same time, the later in the list first.
    .sort((a, b) => b.created - a.created || b.k - a.k);
  if (own.length === 0 || timestamps.length === 0) return out;
  const order = timestamps.map((_, i) => i).sort((a, b) => (timestamps[a] as number) - (timestamps[b] as number) || a - b);
  const sorted = order.map((i) => timestamps[i] as number);
  // free[j]: the first position ≥ j whose reading no label took yet (sorted.length: none).
  const free = Int32Array.from({ length: sorted.length + 1 }, (_, j) => j);
  const firstFree = (j: number): number => {
    let root = j;
    while (free[root] !== root) root = free[root] as number;
    while (free[j] !== root) {
      const next = free[j] as number;
      free[j] = root;
      j = next;
    }
    return root;
  };
  for (const l of own) {
    const end = firstAbove(sorted, l.to);
    for (let j = firstFree(firstAtOrAbove(sorted, l.from)); j < end; j = firstFree(j + 1)) {
      out[order[j] as number] = l.k;
      free[j] = j + 1;
    }
  }
  return out;
}

/** The first index whose value is ≥ x (sorted ascending; the length when none). */
function firstAtOrAbove(sorted: readonly number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((sorted[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The first index whose value is > x (sorted ascending; the length when none). */
function firstAbove(sorted: readonly number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((sorted[mid] as number) <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
