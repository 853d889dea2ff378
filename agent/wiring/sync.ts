import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AfterReadings } from '../../sync/after-readings.js';
import { SyncBatches } from '../../buffer/batches.js';
import type { BlobTarget } from '../../sync/client.js';
import { SyncError } from '../../sync/errors.js';
import { deleteExpiredSynced } from '../../sync/retention.js';
import { safeErrorMessage } from '../../sync/redact.js';
import { sasLifetimeProblem, sasPermissionsProblem, sasScopeProblem, type SasGrants } from '../../sync/sas-grants.js';
import type { BlobUploader, UploaderSpec } from '../../sync/uploader.js';
import { SyncWorker, type BlobConnectivity, type SyncSettings } from '../../sync/worker.js';
import { AzuriteError, azuriteBlobMain, startAzurite, type AzuriteHandle } from '../azurite.js';
import { CONFIG_KEYS, type Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { BufferStore } from '../../buffer/store.js';
import { LATENCY_BUCKETS, type MetricsRegistry } from '../metrics.js';
import { agentVersion } from '../paths.js';
import type { AgentParts as Agent, Part } from './part.js';

/** The file in the standalone Azurite's folder that holds its connection string. */
export const LOCAL_CONNECTION_STRING_FILE = 'connection-string';

/** Live sync settings, read from the configuration in force at every cycle. */
export function syncSettings(c: Config): SyncSettings {
  const maxMs = c.syncBackoffMaxSeconds * 1000;
  return {
    intervalMs: c.syncIntervalSeconds * 1000,
    maxBytesPerSecond: c.syncMaxBytesPerSecond,
    batchMaxRows: c.syncBatchMaxRows,
    batchMaxBytes: c.syncBatchMaxBytes,
    anomalyContextRows: c.syncAnomalyContextRows,
    threadAboveRows: c.syncThreadAboveRows,
    backoff: { initialMs: Math.min(1000, maxMs), maxMs, slowMs: c.syncSlowRetrySeconds * 1000 },
  };
}

/** The configured target; 'local' for the standalone Azurite; null when nothing is configured. */
export function configuredTarget(c: Config): BlobTarget | 'local' | null {
  if (c.blobSasUrl) return { kind: 'sas-url', sasUrl: c.blobSasUrl };
  if (c.blobConnectionString) return { kind: 'connection-string', connectionString: c.blobConnectionString, container: c.blobContainer };
  return c.standalone ? 'local' : null;
}

/**
 * Why a standalone agent has no sync target, or null when the local Azurite can be started.
 * Azurite is a development dependency: the container image (`npm ci --omit=dev`) has none, and
 * run there with nothing configured (to look at the page before deploying, say) the agent has
 * nowhere to upload and nothing a retry would change. That is sync off, said once, not a health
 * failure: the container's HEALTHCHECK would mark it unhealthy forever. A gateway under IoT Edge
 * is never standalone, so a missing target there is not hidden by this.
 */
function localAzuriteMissing(): string | null {
  try {
    azuriteBlobMain();
    return null;
  } catch (err) {
    if (!(err instanceof AzuriteError)) throw err;
    return 'sync is off: no blob target is configured and the local Azurite of the standalone mode (a development dependency) is not installed, as in the container image; readings stay in the buffer (oldest evicted first under PUMPWATCH_BUFFER_MAX_BYTES). To upload, set PUMPWATCH_BLOB_CONNECTION_STRING or PUMPWATCH_BLOB_SAS_URL; PUMPWATCH_SYNC=off says the same without this warning';
  }
}

/**
 * Why a gateway under IoT Edge (or with a module connection string) has no sync target: nothing
 * it buffers is ever uploaded, which was said nowhere (`sync.state` "not configured", no reason, no
 * log line, /healthz ok) while the buffer filled and evicted. Said once and in /status, not as a
 * health failure, as PW_AZURITE_MISSING is; a misspelt blob variable set instead is named.
 */
function noBlobTarget(c: Config): string {
  const targets: string[] = [CONFIG_KEYS.blobSasUrl.env, CONFIG_KEYS.blobConnectionString.env];
  const misspelt = c.unknownVariables.filter((v) => v.nearest !== null && targets.includes(v.nearest));
  const hint = misspelt.map((v) => ` (${v.name} is set, but the agent reads ${v.nearest})`).join('');
  return `sync is not configured: no blob target is set on this IoT Edge gateway${hint}, so readings stay in the buffer and are never uploaded (the oldest are evicted under PUMPWATCH_BUFFER_MAX_BYTES). Set ${targets.join(' or ')} in the module's environment; PUMPWATCH_SYNC=off says this is intended, without this warning`;
}

/**
 * The labels and refused items of `buffer` (the agent's, or a file `pumpwatch-agent drain` empties)
 * uploaded under `deviceId` after each cycle's readings, in the batch caps of the config in force.
 */
export function afterReadingsFor(buffer: BufferStore, deviceId: string, config: () => Config, logger: Logger): AfterReadings {
  return new AfterReadings(buffer, {
    deviceId,
    agentVersion: agentVersion(),
    caps: () => ({ maxRows: config().syncBatchMaxRows, maxBytes: config().syncBatchMaxBytes }),
    logger,
  });
}

const CONNECTIVITY_STATES: BlobConnectivity[] = ['unknown', 'online', 'offline', 'throttled', 'unauthorized', 'container-missing'];

/**
 * Store-and-forward to Blob Storage (issue 3): the parts it adds to the agent, in start order.
 * The Blob Storage SDK is imported when the sync part starts (sync/client.ts and sync/uploader.ts
 * are the only modules that load it), so an agent with sync off never carries it.
 */
export function wireSync(agent: Agent): Part[] {
  const { config } = agent;
  const logger = agent.logger.child({ component: 'sync' });
  scheduleRetention(agent);
  const configured = config.sync === 'off' ? 'off' : configuredTarget(config);
  const noLocalTarget = configured === 'local' ? localAzuriteMissing() : null;
  if (configured === 'off' || configured === null || noLocalTarget !== null) {
    const state = configured === null ? 'not configured' : 'off';
    if (noLocalTarget !== null) logger.warn({ code: 'PW_AZURITE_MISSING' }, noLocalTarget);
    const noTarget = configured === null ? noBlobTarget(config) : null;
    if (noTarget !== null) logger.warn({ code: 'PW_SYNC_NOT_CONFIGURED' }, noTarget);
    const reason = noLocalTarget ?? noTarget;
    agent.status.setSyncStatus(() => ({ state, reason, lastSuccessAt: null, lastAttemptAt: null, lastError: null, uploadedRows: 0, uploadedBlobs: 0, rejectedUploaded: 0 }));
    agent.status.setConnectivity('blob', () => state);
    agent.buffer.setUploads(false); // evicting the oldest is then the design, not a loss to report
    return [];
  }
  let target: BlobTarget | null = configured === 'local' ? null : configured;
  const after = afterReadingsFor(agent.buffer, config.resolvedDeviceId, () => agent.config, logger);
  const rejectedRows = agent.registry.counter('pumpwatch_sync_uploaded_rejected_rows_total', 'Refused items uploaded to rejected/ in Blob Storage');
  let rejectedUploaded = 0;
  let uploaderFor: ((spec: UploaderSpec) => BlobUploader) | null = null;
  let targetText: string | null = null;
  let expiresAt: number | null = null;
  let credentialWarnings: string[] = [];
  const worker = new SyncWorker({
    buffer: agent.buffer,
    uploader: () => {
      if (target === null) throw new SyncError('PW_SYNC_NOT_CONFIGURED', 'no blob target: the local Azurite did not start (see the log)');
      if (uploaderFor === null) throw new SyncError('PW_SYNC_NOT_CONFIGURED', 'the sync part has not started');
      return uploaderFor({ target, client: { userAgent: `pumpwatch-agent/${agentVersion()}` }, createContainer: config.syncCreateContainer });
    },
    deviceId: config.resolvedDeviceId,
    agentVersion: agentVersion(),
    settings: () => syncSettings(agent.config),
    // A refusal after the SAS credential's expiry says so at once, not at the hourly check.
    credentialExpiresAt: () => expiresAt,
    logger,
    ...syncMetrics(agent.registry),
    // Technicians' verdicts go to labels/ for the trainer, idempotently, after each cycle's readings.
    // Then the items it refused go to rejected/, a few batches a cycle (sync/rejected-upload.ts).
    afterReadings: async (uploader, signal, bucket) => {
      const done = await after.upload(uploader, signal, bucket);
      rejectedUploaded += done.rejected.rows;
      rejectedRows.inc(done.rejected.rows);
      return { contacted: done.contacted };
    },
  });
  registerGauges(agent.registry, worker);
  agent.status.setSyncStatus(() => ({ ...worker.status(), rejectedUploaded, rejectedPending: after.rejected.pending(), target: targetText, targetExpiresAt: expiresAt === null ? null : new Date(expiresAt).toISOString(), credentialWarnings }));
  agent.status.setConnectivity('blob', () => worker.blobConnectivity());
  agent.status.addHealthCheck({ name: 'sync', check: () => worker.health() });
  // Alerts first: a committed anomaly starts a cycle now instead of at the next interval.
  agent.pipeline.onCommit((rows) => {
    if (rows.some((r) => r.anomaly === true)) worker.kick();
  });
  const parts: Part[] = [];
  if (configured === 'local') {
    let azurite: AzuriteHandle | null = null;
    parts.push({
      name: 'azurite',
      start: async () => {
        try {
          azurite = await startAzurite({ location: join(config.dataDir, 'azurite') });
          target = { kind: 'connection-string', connectionString: azurite.connectionString, container: config.blobContainer };
          // For the trainer to read what this agent uploaded (README, "The trainer"): the key is
          // Azurite's published development key, and the port changes with every start.
          const file = join(azurite.location, LOCAL_CONNECTION_STRING_FILE);
          await writeFile(file, `${azurite.connectionString}\n`, { mode: 0o600 });
          logger.info({ port: azurite.port, location: azurite.location, connectionStringFile: file }, 'local Azurite started (the standalone sync target)');
        } catch (err) {
          logger.error({ err: { message: safeErrorMessage(err) } }, 'local Azurite did not start: readings stay in the buffer');
        }
      },
      stop: async () => {
        await azurite?.stop();
      },
    });
  }
  parts.push({
    name: 'sync',
    start: async () => {
      ({ uploaderFor } = await import('../../sync/uploader.js'));
      const { describeTarget, targetGrants } = await import('../../sync/client.js');
      targetText = target ? describeTarget(target) : null;
      const grants = target ? targetGrants(target) : null;
      expiresAt = grants?.expiresAt ?? null;
      if (target) logger.info({ target: targetText, via: target.kind }, 'sync to Blob Storage');
      credentialWarnings = permissionWarnings(logger, grants);
      if (expiresAt !== null) {
        const warnExpiry = expiryWarner(logger, expiresAt);
        warnExpiry(Date.now());
        agent.scheduler.every('sas-expiry', '0 0 * * * *', () => warnExpiry(Date.now()));
      }
      worker.start();
    },
    stop: () => worker.stop(),
  });
  return parts;
}

/**
 * A SAS credential granting more than the sync uses (delete, list, …: whoever takes it from the
 * gateway could list and delete the uploads) or lacking what it needs (PW_SYNC_SAS_PERMISSIONS),
 * reaching more than the uploads' container (an account SAS: the registry too; PW_SYNC_SAS_SCOPE),
 * or living longer than a year (PW_SYNC_SAS_LIFETIME), said at start in the log and in /status
 * (`sync.credentialWarnings`), naming the letters, the scope or the date, never the token. A
 * warning, not a refusal: a gateway upgraded with the SAS it had keeps uploading.
 * deployment/render.sh refuses such a SAS in a new manifest.
 */
function permissionWarnings(logger: Logger, grants: SasGrants | null): string[] {
  if (grants === null) return [];
  const warnings: string[] = [];
  const say = (code: string, problem: string | null): void => {
    if (problem === null) return;
    const warning = `the SAS credential of the sync target: ${problem}`;
    logger.warn({ code, permissions: grants.permissions, resource: grants.resource }, warning);
    warnings.push(warning);
  };
  say('PW_SYNC_SAS_PERMISSIONS', grants.permissions === null ? null : sasPermissionsProblem(grants.permissions));
  say('PW_SYNC_SAS_SCOPE', sasScopeProblem(grants));
  // Expired: the expiry warner says it (and when), as it does every day before.
  say('PW_SYNC_SAS_LIFETIME', sasLifetimeProblem(grants, Date.now()));
  return warnings;
}

/** A SAS credential's expiry is said ahead, this long before. */
const SAS_EXPIRY_WARN_MS = 7 * 86_400_000;

/**
 * Says when the target's SAS credential expires within SAS_EXPIRY_WARN_MS (once a day), and once
 * when it has expired: uploads are refused from then on, and the credential is a restart-only
 * setting, so an operator must replace it before.
 */
function expiryWarner(logger: Logger, expiresAt: number): (now: number) => void {
  let lastWarned = -Infinity;
  let expiredSaid = false;
  return (now) => {
    const at = new Date(expiresAt).toISOString();
    if (now >= expiresAt) {
      if (!expiredSaid) logger.error({ expiresAt: at }, `the SAS credential of the sync target expired at ${at}: uploads are refused until it is replaced (a restart-only setting); readings stay in the buffer`);
      expiredSaid = true;
      return;
    }
    if (expiresAt - now > SAS_EXPIRY_WARN_MS || now - lastWarned < 86_400_000) return;
    lastWarned = now;
    const days = (expiresAt - now) / 86_400_000;
    logger.warn({ expiresAt: at }, `the SAS credential of the sync target expires at ${at} (in ${days < 1 ? `${Math.round(days * 24)} h` : `${days.toFixed(1)} days`}): replace it before (a restart-only setting)`);
  };
}

/** Deletes synced rows past the retention time, every 10 minutes (the scheduler); the disk cap still rules. */
function scheduleRetention(agent: Agent): void {
  const batches = new SyncBatches(agent.buffer);
  agent.scheduler.every('sync-retention', '0 */10 * * * *', async () => {
    const { deleted, cutoff } = await deleteExpiredSynced(batches, agent.config.retentionHours, Date.now(), () => !agent.scheduler.running);
    if (deleted > 0) agent.logger.info({ component: 'sync', deleted, receivedBefore: new Date(cutoff).toISOString() }, 'retention: synced rows deleted');
  });
}

function syncMetrics(registry: MetricsRegistry): Pick<ConstructorParameters<typeof SyncWorker>[0], 'onUploaded' | 'onFailure' | 'onEncoded' | 'onEncoderThreadStarted'> {
  const rows = registry.counter('pumpwatch_sync_uploaded_rows_total', 'Rows uploaded to Blob Storage');
  const blobs = registry.counter('pumpwatch_sync_uploaded_blobs_total', 'Blobs uploaded (outcome: created, or already-present after a retry)');
  const bytes = registry.counter('pumpwatch_sync_uploaded_bytes_total', 'Compressed bytes uploaded');
  const raw = registry.counter('pumpwatch_sync_uploaded_raw_bytes_total', 'Uncompressed JSON bytes uploaded');
  const seconds = registry.histogram('pumpwatch_sync_upload_seconds', 'Duration of one blob upload', LATENCY_BUCKETS);
  const failures = registry.counter('pumpwatch_sync_failures_total', 'Failed sync cycles and batches, by kind');
  const encoded = registry.counter('pumpwatch_sync_encoded_batches_total', 'Batches read and encoded, by where (on: thread, the encoder thread; main, the scoring thread)');
  const threadStarts = registry.counter('pumpwatch_sync_encoder_thread_starts_total', 'Times the encoder thread (a second V8 isolate) was started');
  return {
    onUploaded: (e) => {
      rows.inc(e.rows);
      blobs.inc(1, { outcome: e.outcome });
      bytes.inc(e.bytes);
      raw.inc(e.rawBytes);
      seconds.observe(e.seconds);
    },
    onFailure: (f) => failures.inc(1, { kind: f.kind }),
    onEncoded: (on) => encoded.inc(1, { on }),
    onEncoderThreadStarted: () => threadStarts.inc(1),
  };
}

function registerGauges(registry: MetricsRegistry, worker: SyncWorker): void {
  registry.gauge('pumpwatch_sync_blob_connectivity', 'Blob Storage connectivity: 1 for the current state', () =>
    CONNECTIVITY_STATES.map((state) => ({ labels: { state }, value: worker.blobConnectivity() === state ? 1 : 0 })),
  );
  registry.gauge('pumpwatch_sync_failed_batches', 'Planned batches that can never upload (their blob name holds other content)', () => worker.status().failedBatches);
  registry.gauge('pumpwatch_sync_last_success_timestamp_seconds', 'When a blob was last uploaded (0: never)', () => {
    const at = worker.status().lastSuccessAt;
    return at === null ? 0 : Date.parse(at) / 1000;
  });
}
