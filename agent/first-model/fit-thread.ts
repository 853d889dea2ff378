/**
 * The first-model fit on a worker thread of its own (fit-worker.ts), started for one fit and
 * ended by it, so a day of readings at 1 Hz (86 400 rows, seconds of fitting) never holds up
 * scoring or commits on the main thread. The rows cross as columns, transferred, not copied; the
 * model's bytes come back the same way. The thread asks for a lower CPU priority, as sync's
 * encoder thread does. A thread that dies (out of its memory limit, a crash) rejects the fit with
 * a message that says so; an abort ends the thread.
 */
import { Worker, type ResourceLimits } from 'node:worker_threads';
import type { FirstModelFitResult, PackedFitRequest } from './types.js';

export interface FitThreadOptions {
  /** Ends the thread and rejects with the signal's reason (the agent stopping). */
  signal?: AbortSignal;
  /** V8 heap limits of the thread (default FIT_THREAD_LIMITS). */
  resourceLimits?: ResourceLimits;
  /** The thread's script (tests); default the compiled fit-worker.js. */
  entry?: URL;
}

/**
 * The thread's V8 heap limits (MB). The agent's check at 250 000 rows of 8 sensors (the most it
 * gives one fit), the rows read and packed page by page on the main thread then fitted on this
 * thread, raised the process's RSS by 150–200 MB in all (bench/first-model.ts and a fresh process,
 * 2026-12-06; 300 MB while the rows were all held as objects before packing), a day at 1 Hz by
 * 80–90 MB; past the limit the thread alone ends, with ERR_WORKER_OUT_OF_MEMORY, not the agent.
 */
export const FIT_THREAD_LIMITS: ResourceLimits = { maxYoungGenerationSizeMb: 16, maxOldGenerationSizeMb: 512 };

/** What the thread posts back. */
export type FitThreadReply = { ok: true; result: FirstModelFitResult } | { ok: false; error: string };

/** The compiled entry: beside this file in dist/, or in dist/ when the sources run under the test runner. */
function entryUrl(): URL {
  const here = import.meta.url;
  return here.endsWith('.ts') ? new URL('../../dist/agent/first-model/fit-worker.js', here) : new URL('./fit-worker.js', here);
}

export function fitOnThread(req: PackedFitRequest, options: FitThreadOptions = {}): Promise<FirstModelFitResult> {
  const who = `the first-model fit of pump "${req.pumpId}"`;
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(signal.reason instanceof Error ? signal.reason : new Error(`${who} was aborted`));
  return new Promise<FirstModelFitResult>((resolve, reject) => {
    let settled = false;
    const transfer = [req.rows.ts.buffer, req.rows.values.buffer, req.rows.anomaly.buffer] as ArrayBuffer[];
    const worker = new Worker(options.entry ?? entryUrl(), { workerData: req, transferList: transfer, resourceLimits: options.resourceLimits ?? FIT_THREAD_LIMITS });
    const onAbort = (): void => {
      void worker.terminate();
      fail(signal?.reason instanceof Error ? signal.reason : new Error(`${who} was aborted`));
    };
    const done = (): void => {
      settled = true;
      signal?.removeEventListener('abort', onAbort);
    };
    const fail = (err: Error): void => {
      if (settled) return;
      done();
      reject(err);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (reply: FitThreadReply) => {
      if (settled) return;
      if (reply.ok) {
        done();
        resolve(reply.result);
      } else fail(new Error(`${who} failed on its worker thread: ${reply.error}`));
    });
    worker.on('error', (err: Error & { code?: string }) => {
      const why = err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `ran out of its memory limit (${limitText(options.resourceLimits ?? FIT_THREAD_LIMITS)})` : `crashed: ${err.message}`;
      fail(new Error(`${who}: its worker thread ${why}`, { cause: err }));
    });
    worker.on('exit', (code) => fail(new Error(`${who}: its worker thread exited (code ${code}) before it gave a result`)));
  });
}

function limitText(limits: ResourceLimits): string {
  return `${limits.maxOldGenerationSizeMb ?? 'default'} MB old generation`;
}
