/**
 * Entry of sync's encoder thread (started by sync/encoder-thread.ts): reads a batch's rows on its
 * own read-only connection, sizes a new batch with the planner's rule, serialises and compresses
 * it, and either posts the bytes back (transferred, not copied) or holds them until the main
 * thread, having persisted the plan, asks for the upload. Uploads use this thread's own Blob
 * Storage client; their failures are classified here and sent back as data. Nothing here writes
 * to the buffer: the main thread persists plans and marks them synced.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { lowerThreadPriority } from '../lib/thread-priority.js';
import { fitRows, storedLineBytes } from '../buffer/batches.js';
import { undecodableSeq } from '../buffer/contributions.js';
import { BufferReader } from '../buffer/reader.js';
import type { DbRow } from '../buffer/rows.js';
import { RowsUnreadableError } from '../buffer/unreadable.js';
import { classifyFailure, type SyncFailure } from './backoff.js';
import { encodeRawRowsSync, rowsExtent, sourceJson, type EncodedBatch } from './encoder.js';
import { safeFirstLine } from './redact.js';
import type { EncodeReply, EncodeRequest, ThreadMessage, UploadHeldRequest } from './encoder-thread.js';
import { uploaderFor, type BlobUploader } from './uploader.js';

const port = parentPort!;
lowerThreadPriority(); // sync is background work: live scoring on the main thread runs first
const reader = new BufferReader((workerData as { path: string }).path); // opens at its first use

/**
 * Bytes held for uploads to come, by encode request id. The main thread uploads or releases each;
 * beyond this many (a cycle that ended without releasing) the oldest are dropped, and their
 * upload, should it come, is answered `lost` (the main thread then encodes that batch itself).
 */
const held = new Map<number, EncodedBatch>();
const MAX_HELD = 4;
const uploads = new Map<number, AbortController>();
let uploader: { key: string; client: BlobUploader } | null = null;

function encode(req: EncodeRequest): EncodeReply {
  // The store's open files, from the main thread: a restored or replaced buffer is read from here on,
  // and a file at the path the store has not moved to yet is never read (the main thread reads this batch).
  if (!reader.follow(req.file)) {
    return { id: req.id, ok: false, elsewhere: true, error: `the file at ${reader.path} is not the buffer file the store has open (deleted or replaced, not yet dealt with): this batch is read on the main thread` };
  }
  let rows: DbRow[];
  reader.takeUndecodable(); // what an earlier read that failed left
  if (req.kind === 'plan') {
    rows = reader.candidates(req.pumpId, req.from, req.bound, req.maxRows);
    const sourceBytes = Buffer.byteLength(sourceJson(req.deviceId, req.bufferId ?? null));
    rows.length = fitRows(rows, req.maxBytes, (r) => storedLineBytes(r, sourceBytes));
  } else {
    rows = reader.range(req.pumpId, req.firstSeq, req.lastSeq);
  }
  if (rows.length === 0) return { id: req.id, ok: true, batch: null };
  const encoded = encodeRawRowsSync(rows, req.deviceId, req.bufferId ?? null);
  const { sha256, rawSha256, rawBytes } = encoded;
  // Rows of this batch uploaded with `contributions: null` (those a plan read past its size are not in it).
  const last = rows[rows.length - 1]!.seq;
  const undecodable = reader.takeUndecodable().filter((e) => (undecodableSeq(e) ?? Infinity) <= last);
  const summary = { ...rowsExtent(rows), sha256, rawSha256, rawBytes, bytes: encoded.body.length, ...(undecodable.length > 0 ? { undecodable } : {}) };
  if (req.hold) {
    hold(req.id, encoded);
    return { id: req.id, ok: true, batch: { ...summary, body: null } };
  }
  return { id: req.id, ok: true, batch: { ...summary, body: new Uint8Array(encoded.body) } }; // its own ArrayBuffer, safe to transfer
}

function hold(id: number, encoded: EncodedBatch): void {
  held.set(id, encoded);
  for (const oldest of held.keys()) {
    if (held.size <= MAX_HELD) break;
    held.delete(oldest);
  }
}

async function upload(req: UploadHeldRequest): Promise<EncodeReply> {
  const encoded = held.get(req.bodyId);
  held.delete(req.bodyId);
  if (encoded === undefined) return { id: req.id, ok: false, lost: true, error: `the encoder thread no longer holds the bytes of ${req.blobName}` };
  const abort = new AbortController();
  uploads.set(req.id, abort);
  try {
    const outcome = await uploaderOf(req).upload({ blobName: req.blobName, encoded, metadata: req.metadata }, abort.signal);
    return { id: req.id, ok: true, outcome };
  } catch (err) {
    const failure = classifyFailure(err);
    return { id: req.id, ok: false, error: failure.message, failure };
  } finally {
    uploads.delete(req.id);
  }
}

/** One client per target, kept while the target stays the same (a twin may change it). */
function uploaderOf(req: UploadHeldRequest): BlobUploader {
  const key = JSON.stringify(req.spec);
  if (uploader?.key !== key) uploader = { key, client: uploaderFor(req.spec) };
  return uploader.client;
}

function reply(r: EncodeReply): void {
  port.postMessage(r, r.ok && 'batch' in r && r.batch?.body ? [r.batch.body.buffer as ArrayBuffer] : []);
}

port.on('message', (m: ThreadMessage) => {
  switch (m.kind) {
    case 'stop':
      for (const a of uploads.values()) a.abort(new Error('the encoder thread is stopping'));
      reader.close();
      process.exit(0); // idle keep-alive sockets of the storage client must not keep the thread alive
      break;
    case 'abort':
      uploads.get(m.id)?.abort(new Error('upload aborted'));
      break;
    case 'release':
      held.delete(m.bodyId);
      break;
    case 'upload':
      void upload(m).then(reply);
      break;
    default:
      try {
        reply(encode(m));
      } catch (err) {
        // Rows a damaged page keeps from being read: the main thread sets them aside (or drops the plan).
        if (err instanceof RowsUnreadableError) reply({ id: m.id, ok: false, error: err.message, unreadable: err.run });
        else {
          const failure = encodeFailure(err);
          reply({ id: m.id, ok: false, error: failure.message, failure });
        }
      }
  }
});

/**
 * A failure to read or encode a batch, classified here: a read failure is the buffer's (a corrupt
 * page, a lock, I/O: BufferReader words it as a BufferError) and crosses with its code, so the main
 * thread reports the buffer, not an unreachable Blob Storage; anything else is the gateway's.
 */
function encodeFailure(err: unknown): SyncFailure {
  const failure = classifyFailure(err);
  if (failure.kind === 'buffer') return failure;
  return { kind: 'local', heals: true, message: `encoding a batch failed: ${safeFirstLine(err)}` };
}
