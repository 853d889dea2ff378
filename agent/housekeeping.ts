/**
 * The agent's one helper thread for periodic housekeeping: the buffer's WAL checkpoints and the
 * systeminformation samples. Both must stay off the main thread (a checkpoint fsyncs the database;
 * systeminformation runs shell commands with spawnSync/execSync), and each V8 isolate costs the
 * process several MB of RSS, so they share one thread instead of one each (bench/ingest measures it).
 *
 * Each job runs in its own try/catch inside the thread, and the thread reports (instead of dying
 * on) an exception that escapes a job, so a failing systeminformation call leaves checkpoints
 * running. If the thread itself ends (out of its heap limits, killed), pending samples get the
 * error, the next sample starts a new thread, and checkpoints resume on it within `restartMs`.
 * A long sample delays the next PASSIVE checkpoint by as much, and the other way round: both are
 * periodic, and the main connection's autocheckpoint still bounds the WAL.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { CHECKPOINT_JOB_SOURCE, checkpointJobData, waitJobClosed, type CheckpointJobData, type CheckpointRunner, type ShrinkTarget } from '../buffer/checkpointer.js';

/**
 * One systeminformation sample as the thread sends it back (plain data, structured-cloned): the
 * figures that came, and `errors` naming those that did not; `error` when the sample as a whole failed.
 * (The data dir's disk is read by SystemHealth with statfs: no `df` child that a hung mount holds.)
 */
export interface RawSample {
  error?: string;
  errors?: string[];
  load?: { currentLoad: number; cores: number };
  mem?: { total: number; available: number };
  temp?: { main: number | null; max: number | null };
}

type ToThread =
  | { kind: 'checkpoint-start'; data: CheckpointJobData }
  | { kind: 'checkpoint-stop' }
  | { kind: 'sample'; id: number; now: number }
  | { kind: 'exit' };

type FromThread =
  | { kind: 'sample'; id: number; sample: RawSample }
  | { kind: 'checkpoint-stopped' }
  | { kind: 'error'; job: 'checkpoint' | 'thread'; error: string };

/** How long a sample waits for each figure; one that hangs leaves the others their answer. */
const FIGURE_TIMEOUT_MS = 5_000;

/**
 * The longest a command systeminformation runs synchronously (execSync: `cat` of the thermal
 * zones, of /proc/stat) may take before it is killed. Below FIGURE_TIMEOUT_MS: while it runs, the
 * thread's timers, its other figures and its checkpoints all wait.
 */
const COMMAND_TIMEOUT_MS = 3_000;

/**
 * A command killed (see COMMAND_TIMEOUT_MS) is run again this long after, doubling at each kill or
 * each look that finds a process it started still running, up to `maxMs`.
 */
const COMMAND_RETRY = { firstMs: 10 * 60_000, maxMs: 6 * 3_600_000 };

/**
 * systeminformation is required on the first sample, so an error loading it is that sample's error.
 * Each figure is asked on its own, and never twice at once: a call that has not returned (a
 * command stuck on the OS) is waited for again by the next sample instead of being started beside
 * it, so a hang costs one call, not one more every sample.
 */
const SAMPLE_JOB_SOURCE = `
let si = null;
const inFlight = {};
// systeminformation runs commands with execSync and no time limit (each of its files takes
// child_process.execSync when it is loaded, so this comes before it): a \`cat\` of a /sys file the
// kernel never answers held the thread for good (no figure, no checkpoint, and node's exit waits
// for the thread). Its reads of /sys files with fs.readFile run on node's thread pool, where no
// kill reaches a read the kernel never answers, and node's exit waits for that too: they go
// through \`cat\` instead. Each command is killed after COMMAND_TIMEOUT_MS and run again only after
// a back-off, once nothing it started is left: a command killed while its own children are still
// stuck in the kernel would leave one more at each run; one only slow once must not lose its
// figure until the agent restarts.
const childProcess = require('node:child_process');
const fs = require('node:fs');
const execSyncUnbounded = childProcess.execSync;
const readFileDirect = fs.readFile;
/** Commands killed, by command line: { pgid (its process group, null when nothing of it can be left), tries, retryAt }. */
const killedCommands = new Map();
/** \`cat\`s of /sys files started and not yet ended (execFile's callback comes once cat has exited). */
const readsRunning = new Set();
let sampleNow = null; // the clock of the sample asking (HousekeepingOptions.now)
const clock = () => (sampleNow === null ? Date.now() : sampleNow);
const backoffMs = (tries) => Math.min(workerData.commandRetry.maxMs, workerData.commandRetry.firstMs * 2 ** (tries - 1));
function noteKilled(key, pgid) {
  const tries = ((killedCommands.get(key) || {}).tries || 0) + 1;
  killedCommands.set(key, { pgid, tries, retryAt: clock() + backoffMs(tries) });
}
/**
 * Whether a process of a killed command is still there. execSync starts each command in a process
 * group of its own (detached) and its timeout kills only the shell: its children stay in the group
 * unless they leave it. A zombie (ended, not yet reaped when no init reaps orphans) does not count.
 */
function stillRunning(entry) {
  if (entry.pgid === null) return false;
  try {
    process.kill(-entry.pgid, 0);
  } catch (err) {
    return err.code !== 'ESRCH';
  }
  try {
    for (const pid of fs.readdirSync('/proc')) {
      if (!/^[0-9]+$/.test(pid)) continue;
      let stat;
      try { stat = fs.readFileSync('/proc/' + pid + '/stat', 'utf8'); } catch { continue; }
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === entry.pgid && state !== 'Z' && state !== 'X') return true;
    }
    return false;
  } catch {
    return true; // cannot tell: as if it were
  }
}
const hhmm = (ms) => new Date(ms).toISOString().slice(11, 16) + ' UTC';
function killedMessage(key, entry) {
  const shown = key.length > 80 ? key.slice(0, 79) + '…' : key;
  const when = stillRunning(entry)
    ? 'a process it started is still running, and it is not run again before that ends (looked at again at ' + hhmm(entry.retryAt) + ')'
    : 'retried at ' + hhmm(entry.retryAt);
  return 'a command gave no answer in ${COMMAND_TIMEOUT_MS / 1000} s and was killed; ' + when + ': ' + shown;
}
/** Why a command killed before may not run now, else null: its back-off has passed and nothing of it is left. */
function refusal(key) {
  const entry = killedCommands.get(key);
  if (!entry) return null;
  if (clock() >= entry.retryAt) {
    if (!stillRunning(entry)) return null;
    entry.tries++;
    entry.retryAt = clock() + backoffMs(entry.tries);
  }
  return killedMessage(key, entry);
}
childProcess.execSync = function execSyncBounded(command, options) {
  const key = String(command);
  const refused = refusal(key);
  if (refused !== null) throw new Error(refused);
  try {
    const out = execSyncUnbounded.call(this, command, { ...(options || {}), timeout: ${COMMAND_TIMEOUT_MS}, killSignal: 'SIGKILL', detached: true });
    killedCommands.delete(key);
    return out;
  } catch (err) {
    if (err && err.code === 'ETIMEDOUT') noteKilled(key, typeof err.pid === 'number' && err.pid > 0 ? err.pid : null);
    else killedCommands.delete(key); // it ended (with an error): nothing of it is left
    throw err;
  }
};
fs.readFile = function readFileBounded(path, ...rest) {
  const done = rest[rest.length - 1];
  if (typeof path !== 'string' || !path.startsWith('/sys/') || typeof done !== 'function') return readFileDirect.call(this, path, ...rest);
  const options = rest.length > 1 ? rest[0] : undefined;
  const encoding = typeof options === 'string' ? options : options && options.encoding;
  const key = 'cat ' + path;
  const refused = readsRunning.has(key) ? 'an earlier run of this command has not ended: ' + key : refusal(key);
  if (refused !== null) return process.nextTick(done, new Error(refused));
  readsRunning.add(key);
  childProcess.execFile('cat', [path], { timeout: ${COMMAND_TIMEOUT_MS}, killSignal: 'SIGKILL', encoding: 'buffer' }, (err, stdout) => {
    readsRunning.delete(key);
    if (err && err.killed) noteKilled(key, null); // cat itself, which has exited: nothing of it is left
    else killedCommands.delete(key);
    if (err) done(err);
    else done(null, encoding ? stdout.toString(encoding) : stdout);
  });
};
function figure(name, call) {
  if (!inFlight[name]) {
    const started = Promise.resolve().then(call);
    inFlight[name] = started;
    const done = () => { if (inFlight[name] === started) inFlight[name] = null; };
    started.then(done, done);
  }
  const running = inFlight[name];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(name + ': no answer in ${FIGURE_TIMEOUT_MS / 1000} s')), ${FIGURE_TIMEOUT_MS});
    running.then(
      (v) => { clearTimeout(timer); resolve(v); },
      (err) => { clearTimeout(timer); reject(new Error(name + ': ' + message(err))); },
    );
  });
}
async function sampleSystem(siPath, now) {
  sampleNow = now;
  si = si || require(siPath);
  const [load, mem, temp] = await Promise.allSettled([
    figure('cpu', () => si.currentLoad()),
    figure('memory', () => si.mem()),
    figure('temperature', () => si.cpuTemperature()),
  ]);
  const out = { errors: [] };
  for (const r of [load, mem, temp]) if (r.status === 'rejected') out.errors.push(message(r.reason));
  for (const [key, entry] of killedCommands) out.errors.push(killedMessage(key, entry)); // systeminformation swallows their errors
  if (load.status === 'fulfilled') out.load = { currentLoad: load.value.currentLoad, cores: (load.value.cpus || []).length };
  if (mem.status === 'fulfilled') out.mem = { total: mem.value.total, available: mem.value.available };
  if (temp.status === 'fulfilled') out.temp = { main: temp.value.main, max: temp.value.max };
  return out;
}
`;

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
${CHECKPOINT_JOB_SOURCE}
${SAMPLE_JOB_SOURCE}
const message = (err) => String((err && err.message) || err);
const report = (job, err) => parentPort.postMessage({ kind: 'error', job, error: message(err) });
// A stray exception of one job (a callback inside systeminformation) must not end the other's thread.
process.on('uncaughtException', (err) => report('thread', err));
process.on('unhandledRejection', (err) => report('thread', err));
let stopCheckpoints = null;
const endCheckpoints = () => {
  if (!stopCheckpoints) return;
  const stop = stopCheckpoints;
  stopCheckpoints = null;
  try { stop(); } catch (err) { report('checkpoint', err); }
};
parentPort.on('message', (m) => {
  if (m.kind === 'checkpoint-start') {
    endCheckpoints();
    try { stopCheckpoints = startCheckpoints(m.data, (error) => report('checkpoint', error)); } catch (err) { report('checkpoint', err); }
  } else if (m.kind === 'checkpoint-stop') {
    endCheckpoints();
    // Also when no job ran (its start failed): the main side waits for this before a new file goes at the path.
    parentPort.postMessage({ kind: 'checkpoint-stopped' });
  } else if (m.kind === 'sample') {
    sampleSystem(workerData.si, m.now).then(
      (sample) => parentPort.postMessage({ kind: 'sample', id: m.id, sample }),
      (err) => parentPort.postMessage({ kind: 'sample', id: m.id, sample: { error: message(err) } }),
    );
  } else if (m.kind === 'exit') {
    endCheckpoints();
    process.exit(0);
  }
});
`;

/**
 * V8 heap limits of the thread (MB). Without them its isolate's young generation grows like the
 * main thread's (to 32 MB); systeminformation's samples need the larger of the two former threads'
 * limits. Running out ends the thread with an error (see restarts above).
 */
const THREAD_LIMITS = { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 };

const SAMPLE_TIMEOUT_MS = 20_000;

/**
 * How long close() waits for the thread to end once asked. One held in a call the OS does not
 * answer (a read on the thread pool, which no kill reaches) is then abandoned, and `held` says so:
 * node's exit waits for every thread, so the agent's exit must not (agent/cli-main.ts).
 */
const CLOSE_WAIT_MS = 2_000;
/** Then, after terminate(), before the thread is abandoned. */
const TERMINATE_WAIT_MS = 1_000;

/** `done`'s value, or false when it has not settled within `ms`. */
async function within(done: Promise<true>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([done, late]);
  } finally {
    clearTimeout(timer);
  }
}

export interface HousekeepingOptions {
  /** Between two PASSIVE checkpoints. */
  checkpointIntervalMs?: number;
  /** After the thread ended on its own, checkpoints resume on a new one this much later. */
  restartMs?: number;
  /** Module path of systeminformation (resolved from here by default). */
  systeminformation?: string;
  /** Back-off before a killed command is run again (COMMAND_RETRY by default; tests shorten it). */
  commandRetry?: { firstMs: number; maxMs: number };
  /** The clock of the back-off above (Date.now by default; tests move it). */
  now?: () => number;
  /** Told of each failure: a checkpoint, a stray exception in the thread, the thread ending. */
  onError?: (job: 'checkpoint' | 'thread', message: string) => void;
}

export class HousekeepingThread {
  private worker: Worker | null = null;
  private checkpoints: CheckpointJobData | null = null;
  private checkpointError: string | null = null;
  /** Checkpoint jobs stopped whose connection the thread has not yet said is closed. */
  private closing = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  private nextId = 0;
  private readonly waiting = new Map<number, (s: RawSample) => void>();
  private pendingSample: Promise<RawSample> | null = null;
  /** Threads close() abandoned that have not ended since (see held). */
  private readonly abandoned = new Set<Worker>();

  constructor(private readonly options: HousekeepingOptions = {}) {}

  /** True while a thread is running (for tests). */
  get running(): boolean {
    return this.worker !== null;
  }

  /** BufferStore's `startCheckpoints`: checkpoints of `path` on this thread until the runner is stopped. */
  readonly startCheckpoints = (path: string, shrink?: ShrinkTarget): CheckpointRunner => {
    const data = checkpointJobData(path, this.options.checkpointIntervalMs, shrink);
    const worker = this.ensureWorker();
    this.checkpoints = data; // after ensureWorker, which starts them itself on a thread it restarts
    worker.postMessage({ kind: 'checkpoint-start', data } satisfies ToThread);
    let stopped = false;
    let asked = false;
    return {
      stop: () => {
        if (this.checkpoints !== data) return;
        this.checkpoints = null;
        stopped = true;
        if (this.worker === null) return;
        this.closing++;
        asked = true;
        this.worker.postMessage({ kind: 'checkpoint-stop' } satisfies ToThread);
      },
      error: () => this.checkpointError,
      // A thread that ended has no connection left; else it says so after each stop, in order.
      closed: () => stopped && (this.closing === 0 || Atomics.load(data.closed, 0) === 1),
      // Through shared memory: the thread's message saying so cannot arrive while this one waits.
      waitClosed: (timeoutMs) => !asked || this.worker === null || waitJobClosed(data, timeoutMs),
    };
  };

  /**
   * One systeminformation sample; failures come back as `{ error }`, never as a rejection. While a
   * sample is pending, callers share it: a thread held up never gets a queue of them.
   */
  sample(): Promise<RawSample> {
    this.pendingSample ??= this.requestSample().finally(() => {
      this.pendingSample = null;
    });
    return this.pendingSample;
  }

  private requestSample(): Promise<RawSample> {
    const worker = this.ensureWorker();
    const id = this.nextId++;
    return new Promise<RawSample>((done) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        done({ error: `systeminformation gave no answer in ${SAMPLE_TIMEOUT_MS / 1000} s` });
      }, SAMPLE_TIMEOUT_MS);
      timer.unref();
      this.waiting.set(id, (s) => {
        clearTimeout(timer);
        done(s);
      });
      worker.postMessage({ kind: 'sample', id, now: (this.options.now ?? Date.now)() } satisfies ToThread);
    });
  }

  /**
   * Why the process cannot end normally: a thread close() abandoned that has still not ended (held
   * in a call the OS does not answer), else null. Node's exit would wait for it forever.
   */
  get held(): string | null {
    const waited = (CLOSE_WAIT_MS + TERMINATE_WAIT_MS) / 1000;
    return this.abandoned.size > 0 ? `the housekeeping thread did not end within ${waited} s of being asked (a call the OS does not answer holds it)` : null;
  }

  /**
   * Ends the thread after its last checkpoint (idempotent); a later call to either job starts a new
   * one. Waits CLOSE_WAIT_MS for it, then terminates it and waits TERMINATE_WAIT_MS more: a thread
   * still held then is abandoned (it ends when the call holding it returns, if ever) and named by
   * `held`.
   */
  async close(): Promise<void> {
    this.checkpoints = null;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    const w = this.worker;
    this.worker = null;
    this.closing = 0;
    this.failWaiting('stopped');
    if (!w) return;
    let hasExited = false;
    const exited = new Promise<true>((done) =>
      w.once('exit', () => {
        hasExited = true;
        this.abandoned.delete(w);
        done(true);
      }),
    );
    w.postMessage({ kind: 'exit' } satisfies ToThread);
    if (await within(exited, CLOSE_WAIT_MS)) return;
    // Busy in JavaScript or in a call that returns soon (a long checkpoint): terminate ends it.
    void w.terminate().catch(() => undefined);
    if (await within(exited, TERMINATE_WAIT_MS)) return;
    if (!hasExited) this.abandoned.add(w);
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const si = this.options.systeminformation ?? createRequire(import.meta.url).resolve('systeminformation');
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { si, commandRetry: this.options.commandRetry ?? COMMAND_RETRY }, resourceLimits: THREAD_LIMITS });
    worker.unref();
    worker.on('message', (m: FromThread) => this.onMessage(m));
    worker.on('error', (err) => this.ended(worker, err.message));
    worker.on('exit', (code) => this.ended(worker, `the housekeeping thread exited with code ${code}`));
    this.worker = worker;
    if (this.checkpoints) worker.postMessage({ kind: 'checkpoint-start', data: this.checkpoints } satisfies ToThread);
    return worker;
  }

  private onMessage(m: FromThread): void {
    if (m.kind === 'checkpoint-stopped') {
      this.closing = Math.max(0, this.closing - 1);
      return;
    }
    if (m.kind === 'sample') {
      const done = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      done?.(m.sample);
      return;
    }
    if (m.job === 'checkpoint') this.checkpointError = m.error;
    this.options.onError?.(m.job, m.error);
  }

  /** The thread ended without close(): fail its samples, resume checkpoints on a new one later. */
  private ended(worker: Worker, message: string): void {
    if (this.worker !== worker) return; // closed on purpose, or already handled ('error' then 'exit')
    this.worker = null;
    this.closing = 0;
    this.failWaiting(message);
    if (this.checkpoints) this.checkpointError = message;
    this.options.onError?.('thread', message);
    if (this.checkpoints && !this.restartTimer) {
      this.restartTimer = setTimeout(() => {
        this.restartTimer = null;
        if (this.checkpoints) this.ensureWorker();
      }, this.options.restartMs ?? 10_000);
      this.restartTimer.unref();
    }
  }

  private failWaiting(error: string): void {
    for (const done of this.waiting.values()) done({ error });
    this.waiting.clear();
  }
}
