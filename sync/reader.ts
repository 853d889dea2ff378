/**
 * The other side of the sync (used by the trainer): lists one pump's reading blobs by day prefix
 * for a time range, downloads and checks them (sha256 from the blob metadata), decodes the lines
 * and yields each reading once (by device, buffer id and seq: see Seen), in time order.
 *
 * Order: readings are yielded day by day, sorted by `ts` within what has been read so far. A blob
 * is dated by its first reading, and the agent ends a batch at midnight UTC, so its readings lie in
 * its day; blobs of agents before that rule could run into the next day, so the day before `from`
 * is listed too. A reading whose `ts` lies before a day already yielded comes with the next day's.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { watched, watchedPages } from './deadline.js';
import { decodeBatch, sha256Hex, type ReadingLine } from './encoder.js';
import { SyncError } from './errors.js';
import { parseReadingsBlobName, readingsDayPrefix, type ReadingsBlobRef } from './layout.js';

const DAY_MS = 86_400_000;

export interface ReadRange {
  pumpId: string;
  /** Inclusive start (epoch ms, Date, or ISO text). */
  from: number | Date | string;
  /** Exclusive end (epoch ms, Date, or ISO text). */
  to: number | Date | string;
  /** Only this gateway's readings; default: every device. */
  deviceId?: string;
}

export interface ReadOptions {
  /** Compare each blob's content with its sha256 metadata (default true). */
  verify?: boolean;
  /** Blobs downloaded at once (default 4). */
  concurrency?: number;
  /**
   * A listing or download with no byte moving for this long is given up, PW_SYNC_NO_ANSWER
   * (sync/deadline.ts; default 60 s): a connection that stays up while answers stop (a proxy
   * or NAT holding it) must not hold the reader, and the run that waits on it, for good.
   */
  idleMs?: number;
}

export interface ListedBlob extends ReadingsBlobRef {
  name: string;
  size: number;
  sha256: string | null;
}

function toMs(t: number | Date | string, what: string): number {
  const ms = typeof t === 'number' ? t : typeof t === 'string' ? Date.parse(t) : t.getTime();
  if (!Number.isFinite(ms)) throw new SyncError('PW_SYNC_BAD_RANGE', `${what} "${String(t)}" is not a valid time`);
  return ms;
}

const dayStart = (ms: number): number => Math.floor(ms / DAY_MS) * DAY_MS;

/** The pump's readings blobs of one UTC day (all devices, or one), in name order; each page of the listing under `idleMs` (ReadOptions). */
export async function listDay(container: ContainerClient, pumpId: string, day: number, deviceId?: string, limits: { idleMs?: number } = {}): Promise<ListedBlob[]> {
  const out: ListedBlob[] = [];
  const prefix = readingsDayPrefix(pumpId, day);
  for await (const page of watchedPages(`listing ${prefix}`, limits, (abortSignal) => container.listBlobsFlat({ prefix, includeMetadata: true, abortSignal }).byPage())) {
    for (const item of page.segment.blobItems) {
      const ref = parseReadingsBlobName(item.name);
      if (ref === null || (deviceId !== undefined && ref.deviceId !== deviceId)) continue;
      out.push({ ...ref, name: item.name, size: item.properties.contentLength ?? 0, sha256: item.metadata?.sha256 ?? null });
    }
  }
  return out;
}

/**
 * Downloads, checks and decodes one blob; the download under `idleMs` (ReadOptions), its cap
 * grown by the blob's listed size as an upload's is by its body.
 */
export async function readBlob(container: ContainerClient, blob: Pick<ListedBlob, 'name' | 'sha256'> & { size?: number }, verify = true, limits: { idleMs?: number } = {}): Promise<ReadingLine[]> {
  const body = await watched(`downloading ${blob.name}`, { idleMs: limits.idleMs, bytes: blob.size ?? 0 }, (w) =>
    container.getBlockBlobClient(blob.name).downloadToBuffer(0, undefined, { abortSignal: w.signal, onProgress: w.onProgress }),
  );
  if (verify && blob.sha256 !== null && (await sha256Hex(body)) !== blob.sha256) {
    throw new SyncError('PW_SYNC_BLOB_CORRUPT', `blob ${blob.name}: content does not match its sha256 metadata`);
  }
  return decodeBatch(body, `blob ${blob.name}`);
}

/** Maps with at most `limit` calls in flight, results in input order. */
export async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

/** Yields the pump's readings in [from, to), each once (see Seen), in time order (see above). */
export async function* readReadings(container: ContainerClient, range: ReadRange, options: ReadOptions = {}): AsyncGenerator<ReadingLine> {
  const from = toMs(range.from, 'from');
  const to = toMs(range.to, 'to');
  if (to <= from) return;
  const seen: Seen = new Map();
  let pool: Array<{ line: ReadingLine; ts: number }> = [];
  for (let day = dayStart(from) - DAY_MS; day < to; day += DAY_MS) {
    const limits = { idleMs: options.idleMs };
    const blobs = await listDay(container, range.pumpId, day, range.deviceId, limits);
    const decoded = await mapLimited(blobs, options.concurrency ?? 4, (b) => readBlob(container, b, options.verify ?? true, limits));
    for (const lines of decoded) {
      for (const line of lines) {
        const ts = Date.parse(line.ts);
        if (ts < from || ts >= to || !firstTime(seen, line, ts)) continue;
        pool.push({ line, ts });
      }
    }
    const dayEnd = day + DAY_MS;
    const ready = pool.filter((r) => r.ts < dayEnd).sort(byTimeThenSeq);
    pool = pool.filter((r) => r.ts >= dayEnd);
    for (const r of ready) yield r.line;
  }
  for (const r of pool.sort(byTimeThenSeq)) yield r.line;
}

/** All of `readReadings` in one array. */
export async function readAllReadings(container: ContainerClient, range: ReadRange, options: ReadOptions = {}): Promise<ReadingLine[]> {
  const out: ReadingLine[] = [];
  for await (const line of readReadings(container, range, options)) out.push(line);
  return out;
}

/**
 * Per device and sequence number, the readings read with it: its time, and the id of the buffer
 * that numbered it (null in lines written before lines carried one). A device whose buffer started
 * again at sequence 1 (a replaced data volume, a deleted buffer file) reuses the numbers for other
 * readings, which are kept; a blob uploaded twice holds the same ones, which are not. Two lines are
 * the same reading when their device and seq are the same and
 * - both carry a buffer id: it is the same (whatever their times: two lives of a buffer can give
 *   other readings the same seq and time, and these are kept);
 * - either carries none: their times are the same (the rule before buffer ids; it also matches a
 *   batch uploaded once by an agent before them and once, re-encoded after an upgrade, with one).
 */
type Known = { ts: number; bufferId: string | null };
type Seen = Map<string, Map<number, Known | Known[]>>;

const sameReading = (a: Known, b: Known): boolean => (a.bufferId !== null && b.bufferId !== null ? a.bufferId === b.bufferId : a.ts === b.ts);

function firstTime(seen: Seen, line: ReadingLine, ts: number): boolean {
  let bySeq = seen.get(line.deviceId);
  if (!bySeq) {
    bySeq = new Map();
    seen.set(line.deviceId, bySeq);
  }
  const read: Known = { ts, bufferId: typeof line.bufferId === 'string' ? line.bufferId : null };
  const known = bySeq.get(line.seq);
  if (known === undefined) {
    bySeq.set(line.seq, read);
    return true;
  }
  const all = Array.isArray(known) ? known : [known];
  if (all.some((k) => sameReading(k, read))) return false;
  bySeq.set(line.seq, [...all, read]);
  return true;
}

function byTimeThenSeq(a: { line: ReadingLine; ts: number }, b: { line: ReadingLine; ts: number }): number {
  return a.ts - b.ts || (a.line.deviceId < b.line.deviceId ? -1 : a.line.deviceId > b.line.deviceId ? 1 : a.line.seq - b.line.seq);
}
