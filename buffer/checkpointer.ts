import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * WAL checkpoints on a second connection in a worker thread. With autocheckpoint, whichever commit
 * crosses the threshold copies the WAL into the database and fsyncs it, on the main thread: live
 * readings then wait behind a checkpoint (seen as p99 spikes while a sync drain rewrites rows). Here
 * a PASSIVE checkpoint runs every `intervalMs` beside the writer; autocheckpoint on the main
 * connection stays as a distant safety net (BufferStore sets it).
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.sqlite);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma('busy_timeout = 1000');
db.pragma('cache_size = -256');
let failed = false;
const checkpoint = () => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
    failed = false;
  } catch (err) {
    if (!failed) parentPort.postMessage({ error: String((err && err.message) || err) });
    failed = true;
  }
};
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  checkpoint();
  db.close();
  parentPort.close();
});
`;

/** V8 heap limits of the checkpoint thread (MB). */
const THREAD_LIMITS = { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 8 };

export class Checkpointer {
  private worker: Worker | null = null;
  private lastError: string | null = null;

  constructor(
    private readonly path: string,
    private readonly intervalMs = 500,
  ) {}

  start(): void {
    if (this.worker) return;
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { sqlite, path: this.path, intervalMs: this.intervalMs },
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

  /** The last checkpoint failure, if any (the main connection's autocheckpoint still bounds the WAL). */
  error(): string | null {
    return this.lastError;
  }

  /** Asks the thread to checkpoint once more and close its connection; it ends on its own. */
  stop(): void {
    this.worker?.postMessage('stop');
    this.worker = null;
  }
}
