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
  /**
   * True once the thread's connection is closed after stop() (a runner without a connection of its
   * own may leave it out). SQLite deletes the `-wal` by its name when the last connection to a file
   * closes, so a new file must not be put at the path before then (BufferStore's restore).
   */
  closed?(): boolean;
  /**
   * Blocks the calling thread until the connection is closed after stop(), at most `timeoutMs`;
   * true once it is (or when there was none). BufferStore's close() waits so that its own
   * connection closes last: the last one to close checkpoints the log and deletes the `-wal`.
   */
  waitClosed?(timeoutMs: number): boolean;
}

/**
 * Where BufferStore tells the checkpoint job how far to shrink the database file, live (a
 * SharedArrayBuffer, so a lowered cap needs no message): `[SHRINK_TO_PAGES]` is the most pages the
 * file should have (0: leave it), `[SHRINK_STEP_PAGES]` the most pages one step may move, and
 * `[SHRINK_SLACK_PAGES]` how far past SHRINK_TO_PAGES the file may be before shrinking starts.
 */
export type ShrinkTarget = Int32Array;
export const SHRINK_TO_PAGES = 0;
export const SHRINK_STEP_PAGES = 1;
export const SHRINK_SLACK_PAGES = 2;

export function newShrinkTarget(): ShrinkTarget {
  return new Int32Array(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT));
}

/** Starts checkpoints of the SQLite file at `path`; BufferStore's default is a Checkpointer thread of its own. */
export type StartCheckpoints = (path: string, shrink?: ShrinkTarget) => CheckpointRunner;

/** Plain data the checkpoint job needs in its thread (structured-cloned; `shrink` and `closed` are shared). */
export interface CheckpointJobData {
  sqlite: string;
  path: string;
  intervalMs: number;
  shrink?: ShrinkTarget;
  /** `[0]` set to 1 by the thread once its connection is closed (or could not be opened), with Atomics.notify. */
  closed: Int32Array;
}

/** Between two PASSIVE checkpoints by default (see the agent's PUMPWATCH_CHECKPOINT_INTERVAL_MS). */
export const CHECKPOINT_INTERVAL_MS = 500;

/** How often the checkpoint job looks whether the file should shrink, whatever the checkpoint interval. */
const SHRINK_TICK_MS = 500;

export function checkpointJobData(path: string, intervalMs = CHECKPOINT_INTERVAL_MS, shrink?: ShrinkTarget): CheckpointJobData {
  const closed = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
  return { sqlite: createRequire(import.meta.url).resolve('better-sqlite3'), path, intervalMs, shrink, closed };
}

/**
 * Waits (Atomics.wait: the calling thread blocks, the checkpoint thread runs on) until the job of
 * `data` has closed its connection, at most `timeoutMs`; true once it has.
 */
export function waitJobClosed(data: CheckpointJobData, timeoutMs: number): boolean {
  return Atomics.wait(data.closed, 0, 0, timeoutMs) !== 'timed-out';
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
  // Said through shared memory, so a main thread blocked waiting for it (BufferStore.close) sees it.
  const closed = () => {
    Atomics.store(data.closed, 0, 1);
    Atomics.notify(data.closed, 0);
  };
  let db;
  try {
    db = new Database(data.path, { fileMustExist: true });
  } catch (err) {
    closed(); // no connection to wait for
    throw err;
  }
  db.pragma('busy_timeout = 1000');
  db.pragma('cache_size = -256');
  let failed = false;
  // A file made with auto_vacuum = INCREMENTAL (2) gives its free pages back to the file system:
  // a bounded pass per tick moves pages from its end into free ones, and the checkpoint that copies
  // the pass truncates the file. Here, not on the writer: an idle agent shrinks too. A file still
  // without it (made before 2026-12-05) is converted by BufferStore with one VACUUM.
  // Steps of at most SHRINK_STEP_PAGES, each checkpointed so the next reuses the WAL from its start,
  // up to 8 MiB of 4 KiB pages or 100 ms a tick: the file shrinks by up to 16 MiB/s, and a commit
  // waits for one step at most (the write lock is released between steps).
  // Shrinking starts past the target by the slack (at a steady cap the file passes its share by
  // about one commit before eviction: pages the next commits reuse, not worth moving) and goes
  // down to the target.
  let shrinking = false;
  const shrink = () => {
    const target = data.shrink ? Atomics.load(data.shrink, ${SHRINK_TO_PAGES}) : 0;
    if (target <= 0 || db.pragma('auto_vacuum', { simple: true }) !== 2) return;
    if (!shrinking && db.pragma('page_count', { simple: true }) - target <= Atomics.load(data.shrink, ${SHRINK_SLACK_PAGES})) return;
    shrinking = true;
    const start = Date.now();
    for (let moved = 0; moved < 2048 && Date.now() - start < 100; ) {
      const over = db.pragma('page_count', { simple: true }) - target;
      const free = db.pragma('freelist_count', { simple: true });
      const pages = Math.min(over, free, Atomics.load(data.shrink, ${SHRINK_STEP_PAGES}));
      if (pages <= 0) {
        shrinking = false;
        return;
      }
      db.pragma('incremental_vacuum(' + pages + ')');
      db.pragma('wal_checkpoint(PASSIVE)');
      moved += pages;
    }
  };
  // Each checkpoint copies every page the log holds into the database file and fsyncs it: the
  // few pages each commit touches (the table's last leaf, each index's) are written again at every
  // checkpoint, so on an SD card fewer of them mean less wear (bench/wear). Shrinking still looks
  // every ${SHRINK_TICK_MS} ms, so a longer interval does not slow it down.
  // A shrink step's own checkpoint truncates the file only when it copies the whole log; a commit
  // landing meanwhile leaves the file at its old length, which the next checkpoint cuts: that one
  // must not wait for the interval (the file would stay over the cap).
  const { statSync } = require('node:fs');
  const fileLonger = () => {
    const size = statSync(data.path, { throwIfNoEntry: false });
    return size !== undefined && size.size > db.pragma('page_count', { simple: true }) * db.pragma('page_size', { simple: true });
  };
  let lastCheckpoint = Date.now();
  const checkpoint = (force) => {
    try {
      shrink();
      if (!force && Date.now() - lastCheckpoint < data.intervalMs && !fileLonger()) return;
      db.pragma('wal_checkpoint(PASSIVE)');
      lastCheckpoint = Date.now();
      failed = false;
    } catch (err) {
      if (!failed) report(String((err && err.message) || err));
      failed = true;
    }
  };
  const timer = setInterval(() => checkpoint(false), Math.min(data.intervalMs, ${SHRINK_TICK_MS}));
  return () => {
    clearInterval(timer);
    try {
      checkpoint(true);
      db.close();
    } finally {
      closed();
    }
  };
}
`;

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
${CHECKPOINT_JOB_SOURCE}
const stop = startCheckpoints(workerData, (error) => parentPort.postMessage({ error }));
parentPort.on('message', (m) => {
  if (m !== 'stop') return;
  try { stop(); } finally { parentPort.close(); }
});
`;

/** V8 heap limits of the checkpoint thread (MB). */
const THREAD_LIMITS = { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 8 };

/** A thread of its own that only checkpoints (BufferStore's default; the agent shares one, see agent/housekeeping.ts). */
export class Checkpointer implements CheckpointRunner {
  private worker: Worker | null = null;
  private data: CheckpointJobData | null = null;
  private lastError: string | null = null;
  private ended = false;

  constructor(
    private readonly path: string,
    private readonly intervalMs = CHECKPOINT_INTERVAL_MS,
    private readonly shrink?: ShrinkTarget,
  ) {}

  start(): void {
    if (this.worker) return;
    this.data = checkpointJobData(this.path, this.intervalMs, this.shrink);
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: this.data,
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
      this.data = null;
    });
    worker.on('exit', () => {
      this.ended = true;
    });
    this.worker = worker;
  }

  error(): string | null {
    return this.lastError;
  }

  closed(): boolean {
    return this.ended || (this.data !== null && Atomics.load(this.data.closed, 0) === 1);
  }

  waitClosed(timeoutMs: number): boolean {
    // A thread that failed has no connection left (its 'error' event cleared the data's use).
    return this.ended || this.data === null || waitJobClosed(this.data, timeoutMs);
  }

  /** Asks the thread to checkpoint once more and close its connection; it ends on its own. */
  stop(): void {
    this.worker?.postMessage('stop');
    this.worker = null;
  }
}

/** BufferStore's default: a Checkpointer thread per open buffer. */
export const ownCheckpointThread: StartCheckpoints = (path, shrink) => {
  const c = new Checkpointer(path, CHECKPOINT_INTERVAL_MS, shrink);
  c.start();
  return c;
};
