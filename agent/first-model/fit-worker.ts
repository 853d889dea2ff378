/**
 * Entry of the first-model fit's worker thread (started by fit-thread.ts): one fit of the packed
 * rows it is given, its result posted back (the model's bytes transferred), then the thread ends.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { lowerThreadPriority } from '../../lib/thread-priority.js';
import { fitPacked } from './fit-core.js';
import type { PackedFitRequest } from './types.js';
import type { FitThreadReply } from './fit-thread.js';

const port = parentPort!;
lowerThreadPriority(); // a fit is background work: live scoring on the main thread runs first

try {
  const result = await fitPacked(workerData as PackedFitRequest);
  if (result.kind === 'fitted') {
    // Its own buffer (the encoder's may be a view on a larger one), safe to transfer.
    const bytes = new Uint8Array(result.bytes);
    port.postMessage({ ok: true, result: { ...result, bytes } } satisfies FitThreadReply, [bytes.buffer]);
  } else port.postMessage({ ok: true, result } satisfies FitThreadReply);
} catch (err) {
  // The message and where it was thrown (a defect: the fit itself answers every problem of the rows).
  const where = err instanceof Error ? /\n\s*(at .*)/.exec(err.stack ?? '')?.[1] : undefined;
  port.postMessage({ ok: false, error: `${err instanceof Error ? err.message : String(err)}${where ? ` (${where})` : ''}` } satisfies FitThreadReply);
}
