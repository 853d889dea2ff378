/**
 * `pumpwatch-agent drain --buffer FILE`: uploads what a buffer file moved out of an agent's data
 * directory still holds (unsent readings, refused items, labels), after an agent was rolled back
 * across a buffer schema step and the older agent started an empty buffer (deployment/README.md,
 * section 9). It runs the agent's own sync (sync/worker.ts, sync/after-readings.ts) on that file,
 * so the blobs are those the agent would have made: the same names (under the device id the file's
 * plans carry), lines, metadata, If-None-Match and beside-a-blob-of-other-content rules; plans
 * persisted before a kill go up again byte for byte, and progress is marked in the file. A label
 * that followed an alarm still running when the agent left the file is closed first (the agent
 * uploads a label only once closed), over its episode as the file holds it.
 *
 * It never deletes the file; it says when nothing is left unsent (exit 0). Exit 1: something is
 * left (storage unreachable or refusing after the sync's retries, --timeout reached, a batch that
 * can never upload); exit 2: nothing was tried (bad arguments or settings, a file refused).
 */
import pino from 'pino';
import { parseReadingsBlobName } from '../sync/layout.js';
import { SyncBatches } from '../buffer/batches.js';
import { BufferError } from '../buffer/errors.js';
import { followOpenLabels } from '../buffer/label-follow.js';
import { probeBufferFile } from '../buffer/probe.js';
import { BufferStore } from '../buffer/store.js';
import { describeTarget } from '../sync/client.js';
import { safeErrorMessage } from '../sync/redact.js';
import type { SyncFailure } from '../sync/backoff.js';
import { uploaderFor } from '../sync/uploader.js';
import { SyncWorker } from '../sync/worker.js';
import { CONFIG_KEYS, ConfigError, loadConfig, unknownVariableWarning, type Config } from './config.js';
import { EPISODE_GAP_MS } from './http/alerts-routes.js';
import { createLogger } from './logger.js';
import { agentVersion } from './paths.js';
import { afterReadingsFor, configuredTarget, syncSettings } from './wiring/sync.js';

/** Default --timeout in seconds: a day's backlog of a busy gateway is minutes at a LAN's speed. */
const DEFAULT_TIMEOUT_S = 600;

export const DRAIN_HELP = `pumpwatch-agent drain: upload what a moved-aside buffer file still holds.

Usage:
  pumpwatch-agent drain --buffer FILE [--timeout SECONDS]

  --buffer FILE        the buffer.sqlite moved out of an agent's data directory (its -wal and
                       -shm beside it); no agent may have it open
  --timeout SECONDS    give up after this long (default ${DEFAULT_TIMEOUT_S}; 1-86400): what was
                       uploaded stays marked in the file, a re-run goes on from there

The target is the agent's: PUMPWATCH_BLOB_CONNECTION_STRING or PUMPWATCH_BLOB_SAS_URL,
PUMPWATCH_BLOB_CONTAINER, and the PUMPWATCH_SYNC_* settings (pumpwatch-agent --help). Blobs go
under the device id the file's own plans carry (PUMPWATCH_DEVICE_ID only for a file that never
planned one). The file is migrated to this build's schema when older, as the agent would; it is
never deleted: the last line says when it may be.

Exit 0: nothing left unsent. 1: something left (the reason on stderr). 2: nothing tried.
`;

/** A refusal before anything was tried: one line on stderr with its code, exit 2. */
class DrainRefused extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface DrainArgs {
  buffer: string;
  timeoutMs: number;
}

function parseArgs(argv: string[]): DrainArgs | 'help' {
  let buffer: string | undefined;
  let timeout = DEFAULT_TIMEOUT_S;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') return 'help';
    const [name, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (name !== '--buffer' && name !== '--timeout') throw new DrainRefused('PW_DRAIN_USAGE', `unknown argument "${arg}" (pumpwatch-agent drain --help)`);
    const value = inline ?? argv[++i];
    if (value === undefined || value === '') throw new DrainRefused('PW_DRAIN_USAGE', `${name} needs a value`);
    if (name === '--buffer') buffer = value;
    else {
      timeout = Number(value);
      if (!/^\d+$/.test(value) || timeout < 1 || timeout > 86_400) throw new DrainRefused('PW_DRAIN_USAGE', `--timeout ${JSON.stringify(value)}: a whole number of seconds from 1 to 86400`);
    }
  }
  if (buffer === undefined) throw new DrainRefused('PW_DRAIN_USAGE', '--buffer FILE is required: the moved-aside buffer.sqlite');
  return { buffer, timeoutMs: timeout * 1000 };
}

const say = (line: string): void => {
  process.stdout.write(`drain: ${line}\n`);
};

/** What is left unsent in the file. */
interface Left {
  readings: number;
  refused: number;
  labels: number;
  /** Batches refused for good (a blob of other content under the name and beside it). */
  failedBatches: number;
  /** Rows a damaged page keeps from being read: never uploaded. */
  unreadable: number;
}

const nothingLeft = (l: Left): boolean => l.readings === 0 && l.refused === 0 && l.labels === 0;

function leftText(l: Left): string {
  const parts = [`${l.readings} reading(s)`, `${l.refused} refused item(s)`, `${l.labels} label(s)`];
  if (l.unreadable > 0) parts.push(`${l.unreadable} of the readings unreadable (a damaged page: never uploaded)`);
  if (l.failedBatches > 0) parts.push(`${l.failedBatches} batch(es) that cannot be uploaded (other content under their names: see the log)`);
  return parts.join(', ');
}

export async function runDrainCli(argv: string[]): Promise<number> {
  try {
    const args = parseArgs(argv);
    if (args === 'help') {
      process.stdout.write(DRAIN_HELP);
      return 0;
    }
    return await drain(args);
  } catch (err) {
    if (err instanceof DrainRefused || err instanceof ConfigError || err instanceof BufferError) {
      process.stderr.write(`pumpwatch-agent drain: ${err.code}: ${safeErrorMessage(err)}\n`);
      return 2;
    }
    throw err;
  }
}

/** The configured blob target; the drain has no local Azurite to fall back on. */
function target(config: Config): NonNullable<Exclude<ReturnType<typeof configuredTarget>, 'local'>> {
  const t = configuredTarget(config);
  if (t === null || t === 'local') {
    throw new DrainRefused(
      'PW_SYNC_NOT_CONFIGURED',
      `no blob target: set ${CONFIG_KEYS.blobConnectionString.env} (with ${CONFIG_KEYS.blobContainer.env}) or ${CONFIG_KEYS.blobSasUrl.env} as in the agent's module settings`,
    );
  }
  return t;
}

/**
 * The device id of the file's blobs: the one its newest planned batch is named under, so readings
 * numbered by this file stay under one device folder whatever host runs the drain. A file that never
 * planned a batch takes PUMPWATCH_DEVICE_ID (or IOTEDGE_DEVICEID), never the host name: under
 * `docker run` that is the container's id.
 */
function deviceIdOf(planNames: readonly string[], config: Config): { id: string; from: string } {
  for (const name of planNames) {
    const ref = parseReadingsBlobName(name);
    if (ref !== null) return { id: ref.deviceId, from: "the file's planned batches" };
  }
  const set = config.deviceId ?? process.env.IOTEDGE_DEVICEID;
  if (set !== undefined) return { id: set, from: config.deviceId !== undefined ? CONFIG_KEYS.deviceId.env : 'IOTEDGE_DEVICEID' };
  throw new DrainRefused(
    'PW_DRAIN_DEVICE_UNKNOWN',
    `the buffer never planned a batch, so it does not say which device id its blobs go under: set ${CONFIG_KEYS.deviceId.env} to the gateway's device id (the one its agent uploads under)`,
  );
}

async function drain(args: DrainArgs): Promise<number> {
  const config = loadConfig();
  for (const v of config.unknownVariables) process.stderr.write(`pumpwatch-agent drain: PW_CONFIG_UNKNOWN_VARIABLE: ${unknownVariableWarning(v)}\n`);
  const blobTarget = target(config);
  const probed = probeBufferFile(args.buffer);
  const device = deviceIdOf(probed.planNames, config);
  if (probed.schema < probed.known) say(`${args.buffer} is at buffer schema ${probed.schema}: migrating it to ${probed.known}, as the agent of this build does (an agent older than schema ${probed.known} refuses it from then on)`);
  // The log (JSON, secrets redacted) goes to stderr, written before each next step: stdout is the drain's own lines.
  const log = createLogger(config.logLevel, pino.destination({ dest: 2, sync: true }));
  const logger = log.child({ component: 'sync' });
  const store = new BufferStore({
    path: args.buffer,
    maxBytes: config.bufferMaxBytes,
    onMigration: (message) => say(message),
    onWarning: (message) => log.warn({ component: 'buffer' }, message),
    onFileEvent: (message) => log.error({ component: 'buffer' }, message),
  });
  store.open();
  try {
    return await drainOpen(args, config, { target: blobTarget, device }, store, logger);
  } finally {
    store.close();
  }
}

/**
 * Labels that followed an alarm still running when the agent left the file are closed, each over
 * its episode as the file holds it (no reading comes into it again), so they are uploaded: an open
 * label is not. Said with how many, as the drain says everything it did.
 */
async function closeOpenLabels(labels: ReturnType<typeof afterReadingsFor>['labels'], store: BufferStore): Promise<void> {
  let closed = 0;
  for (;;) {
    const run = await followOpenLabels(labels, store, { now: Date.now, gapMs: EPISODE_GAP_MS, walk: (seq) => labels.episode(seq, EPISODE_GAP_MS), end: true });
    const now = run.closed.length + run.lost.length + run.tooLong.length;
    closed += now;
    // more than a run's cap are open: the next run takes the next ones (none closed: none can be)
    if (run.left === 0 || now === 0) break;
  }
  if (closed > 0) say(`closed ${closed} label(s) that followed an alarm still running when the agent left the file, with the range each had there (their episode in the file): they are uploaded so`);
}

async function drainOpen(
  args: DrainArgs,
  config: Config,
  { target: blobTarget, device }: { target: ReturnType<typeof target>; device: { id: string; from: string } },
  store: BufferStore,
  logger: ReturnType<typeof createLogger>,
): Promise<number> {
  const batches = new SyncBatches(store);
  const after = afterReadingsFor(store, device.id, () => config, logger);
  const { labels, rejected } = after;
  const left = (): Left => {
    const stats = store.stats();
    return { readings: stats.unsynced, refused: rejected.pending(), labels: labels.unsyncedCount(), failedBatches: batches.failed().length, unreadable: stats.unreadable.rows };
  };
  const at = left();
  say(`${args.buffer}: buffer ${store.bufferId()}, device id ${device.id} (from ${device.from}); to upload: ${leftText(at)}; target ${describeTarget(blobTarget)}`);
  if (device.from !== CONFIG_KEYS.deviceId.env && config.deviceId !== undefined && config.deviceId !== device.id) {
    say(`${CONFIG_KEYS.deviceId.env}=${config.deviceId} is not used: this file's readings were numbered under ${device.id}`);
  }
  if (nothingLeft(at)) {
    say(`nothing to upload: every reading, refused item and label of ${args.buffer} is in Blob Storage; it may be deleted (with its -wal and -shm)`);
    return 0;
  }
  await closeOpenLabels(labels, store);
  // As the agent's sync does at each start: a batch refused before is tried again.
  batches.retryFailed();
  const done = { readings: 0, blobs: 0, refused: 0, refusedBlobs: 0, labels: 0, already: 0, beside: 0 };
  let lastSaid = performance.now();
  const progress = (): void => say(`uploaded ${done.readings} reading(s) in ${done.blobs} blob(s), ${done.refused} refused item(s), ${done.labels} label(s) so far`);
  const worker = new SyncWorker({
    buffer: store,
    uploader: () => uploaderFor({ target: blobTarget, client: { userAgent: `pumpwatch-agent/${agentVersion()} drain` }, createContainer: config.syncCreateContainer }),
    deviceId: device.id,
    agentVersion: agentVersion(),
    settings: () => syncSettings(config),
    logger,
    // Nothing is scored beside it: the main thread reads and encodes (the same bytes as the thread).
    encoderThread: null,
    onUploaded: (e) => {
      done.readings += e.rows;
      done.blobs++;
      if (e.outcome === 'already-present') done.already++;
      if (e.outcome === 'created-beside') done.beside++;
      if (performance.now() - lastSaid >= 5_000) {
        lastSaid = performance.now();
        progress();
      }
    },
    afterReadings: async (uploader, signal, bucket) => {
      const uploaded = await after.upload(uploader, signal, bucket);
      done.refused += uploaded.rejected.rows;
      done.refusedBlobs += uploaded.rejected.blobs;
      done.labels += uploaded.labels;
      return { contacted: uploaded.contacted };
    },
  });
  let timedOut = false;
  let wake: (() => void) | null = null;
  const timer = setTimeout(() => {
    timedOut = true;
    wake?.();
    void worker.stop(); // aborts an upload in flight: its batch stays planned for the next run
  }, args.timeoutMs);
  let failure: SyncFailure | null = null;
  let stuck = false;
  try {
    for (;;) {
      const before = done.readings + done.refused + done.labels;
      const r = await worker.runOnce();
      if (timedOut) break;
      if (r.failure !== null) {
        failure = r.failure;
        if (!r.failure.heals) break; // credentials, container, a refusal: a retry changes nothing
        say(`Blob Storage failed (${r.failure.kind}): ${r.failure.message}; trying again in ${Math.round(r.nextDelayMs / 1000)} s`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, r.nextDelayMs);
        });
        wake = null;
        continue;
      }
      failure = null;
      progress();
      lastSaid = performance.now();
      if (nothingLeft(left())) break;
      // A cycle that moved nothing will not move it next time (batches refused for good, unreadable rows).
      if (done.readings + done.refused + done.labels === before) {
        stuck = true;
        break;
      }
    }
  } finally {
    clearTimeout(timer);
    await worker.stop();
  }
  const rest = left();
  const notes = [done.already > 0 ? `${done.already} blob(s) were there already with the same bytes (a run stopped before it could mark them)` : '', done.beside > 0 ? `${done.beside} went beside a blob of other content under the same name (nothing overwritten; see the log)` : ''].filter((n) => n !== '');
  say(`uploaded ${done.readings} reading(s) in ${done.blobs} blob(s), ${done.refused} refused item(s) in ${done.refusedBlobs} blob(s), ${done.labels} label(s)${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`);
  if (nothingLeft(rest)) {
    say(`nothing left unsent in ${args.buffer}: it may be deleted (with its -wal and -shm)`);
    return 0;
  }
  const why = timedOut
    ? `--timeout of ${args.timeoutMs / 1000} s reached`
    : failure !== null
      ? `${failure.code ?? failure.kind}: ${failure.message}`
      : stuck
        ? 'the rest cannot be uploaded by a retry'
        : 'stopped';
  process.stderr.write(`pumpwatch-agent drain: PW_DRAIN_INCOMPLETE: left unsent: ${leftText(rest)} (${why}); keep ${args.buffer} and run the drain again: what was uploaded stays marked\n`);
  return 1;
}
