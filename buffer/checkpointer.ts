import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * WAL checkpoints on a second connection in a worker thread. With autocheckpoint, whichever commit
 * crosses the threshold copies the WAL into the database and fsyncs it, on the main thread: live
 * readings then wait behind a checkpoint (seen as p99 spikes while a sync drain rewrites rows). Here
 * a PASSIVE checkpoint runs every `intervalMs` beside the writer; autocheckpoint on the main
 * connection stays as a distant safety net (BufferStore sets it).
 */

/** What BufferStore needs of whoever runs its checkpoints: started after open, stopped before close. */
export interface CheckpointRunner {
  /** Checkpoints once more, then closes the second connection (the thread ends on its own). */
  stop(): void;
  /** The last checkpoint failure, if any (the main connection's autocheckpoint still bounds the WAL). */
  error(): string | null;
}

/** Starts checkpoints of the SQLite file at `path`; BufferStore's default is a Checkpointer thread of its own. */
export type StartCheckpoints = (path: string) => CheckpointRunner;

/** Plain data the checkpoint job needs in its thread (structured-cloned). */
export interface CheckpointJobData {
  sqlite: string;
  path: string;
  intervalMs: number;
}

export function checkpointJobData(path: string, intervalMs = 500): CheckpointJobData {
  return { sqlite: createRequire(import.meta.url).resolve('better-sqlite3'), path, intervalMs };
}

/**
 * The job itself, as CommonJS source for an eval'd worker: `startCheckpoints(data, report)` opens
 * the second connection, checkpoints every `data.intervalMs` and returns the function that stops
 * it; `report(message)` is called once per run of failures. A host thread that runs other jobs
 * beside it (agent/housekeeping.ts) includes the same source, so there is one checkpoint job.
 */
export const CHECKPOINT_JOB_SOURCE = `
function startCheckpoints(data, report) {
  const Database = require(data.sqlite);
  const db = new Database(data.path, { fileMustExist: true });
  db.pragma('busy_timeout = 1000');
  db.pragma('cache_size = -256');
  let failed = false;
  const checkpoint = () => {
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
      failed = false;
    } catch (err) {
      if (!failed) report(String((err && err.message) || err));
      failed = true;
    }
  };
  const timer = setInterval(checkpoint, data.intervalMs);
  return () => {
    clearInterval(timer);
    checkpoint();
    db.close();
  };
}
`;

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
${CHECKPOINT_JOB_SOURCE}
const stop = startCheckpoints(workerData, (error) => parentPort.postMessage({ error }));
parentPort.on('message', (m) => {
  if (m !== 'stop') return;
  stop();
  parentPort.close();
});
`;

/** V8 heap limits of the checkpoint thread (MB). */
const THREAD_LIMITS = { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 8 };

/** A thread of its own that only checkpoints (BufferStore's default; the agent shares one, see agent/housekeeping.ts). */
export class Checkpointer implements CheckpointRunner {
  private worker: Worker | null = null;
  private lastError: string | null = null;

  constructor(
    private readonly path: string,
    private readonly intervalMs = 500,
  ) {}

  start(): void {
    if (this.worker) return;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: checkpointJobData(this.path, this.intervalMs),
      // The thread only runs a pragma every interval: a small heap (V8 would otherwise let the
      // young generation of every isolate grow to 32 MB). Running out of it ends the thread with
      // an error (kept in error()); the main connection's autocheckpoint still bounds the WAL.
      resourceLimits: THREAD_LIMITS,
    });
    worker.unref();
    worker.on('message', (m: { error?: string }) => {
      if (m.error) this.lastError = m.error;
    });
    worker.on('error', (err) => {
      this.lastError = err.message;
      this.worker = null;
    });
    this.worker = worker;
  }

  error(): string | null {
    return this.lastError;
  }

  /** Asks the thread to checkpoint once more and close its connection; it ends on its own. */
  stop(): void {
    this.worker?.postMessage('stop');
    this.worker = null;
  }
}

/** BufferStore's default: a Checkpointer thread per open buffer. */
export const ownCheckpointThread: StartCheckpoints = (path) => {
  const c = new Checkpointer(path);
  c.start();
  return c;
};
