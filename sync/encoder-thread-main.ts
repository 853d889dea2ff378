/**
 * Entry of sync's encoder thread (started by sync/encoder-thread.ts): reads a batch's rows on its
 * own read-only connection, sizes a new batch with the planner's rule, serialises and compresses
 * it, and posts the bytes back (transferred, not copied). Nothing here writes to the buffer: the
 * main thread persists the plan, uploads, and marks it.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { fitRows, storedValuesLength } from '../buffer/batches.js';
import { BufferReader } from '../buffer/reader.js';
import type { DbRow } from '../buffer/rows.js';
import { encodeRawRowsSync, rowsExtent } from './encoder.js';
import type { EncodeReply, EncodeRequest } from './encoder-thread.js';

const port = parentPort!;
lowerPriority();
const reader = new BufferReader((workerData as { path: string }).path);

function handle(req: EncodeRequest): EncodeReply {
  let rows: DbRow[];
  if (req.kind === 'plan') {
    rows = reader.candidates(req.pumpId, req.from, req.bound, req.maxRows);
    rows.length = fitRows(rows, req.maxBytes, storedValuesLength);
  } else {
    rows = reader.range(req.pumpId, req.firstSeq, req.lastSeq);
  }
  if (rows.length === 0) return { id: req.id, ok: true, batch: null };
  const encoded = encodeRawRowsSync(rows, req.deviceId);
  const body = new Uint8Array(encoded.body); // its own ArrayBuffer, safe to transfer
  return {
    id: req.id,
    ok: true,
    batch: {
      ...rowsExtent(rows),
      body,
      sha256: encoded.sha256,
      rawSha256: encoded.rawSha256,
      rawBytes: encoded.rawBytes,
    },
  };
}

port.on('message', (req: EncodeRequest | 'stop') => {
  if (req === 'stop') {
    reader.close();
    port.close();
    return;
  }
  try {
    const reply = handle(req);
    port.postMessage(reply, reply.ok && reply.batch ? [reply.batch.body.buffer as ArrayBuffer] : []);
  } catch (err) {
    port.postMessage({ id: req.id, ok: false, error: err instanceof Error ? err.message : String(err) } satisfies EncodeReply);
  }
});

/**
 * Sync is background work: on Linux this thread asks for a lower CPU priority (nice 10; raising
 * niceness needs no privilege), so on a busy gateway live scoring on the main thread runs first.
 * Elsewhere, or if refused, it runs at normal priority.
 */
function lowerPriority(): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, 10);
  } catch {
    // not Linux, or not permitted: normal priority
  }
}
