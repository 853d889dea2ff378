/**
 * The agent's model updater: the downloader bound to the live config (size limit, timeout,
 * insecure URLs for development), and validation on the pump's recent readings (kept in memory
 * from the commit stream, else read from the buffer).
 */
import type { Reading } from '../../buffer/types.js';
import { downloadModel } from '../../inference/download.js';
import { DEFAULT_MODEL_KEY } from '../../inference/engine.js';
import { RecentReadings } from '../../inference/recent.js';
import { ModelUpdater, type DesiredModel } from '../../inference/updater.js';
import type { BackoffPolicy } from '../../inference/backoff.js';
import type { AgentParts as Agent } from '../wiring/part.js';

export interface ModelUpdateOptions {
  /** Extra CA (PEM) trusted for model downloads (tests: a self-signed server). */
  ca?: string;
  /** Retry timing inside one download, and between downloads after a transient failure. */
  downloadBackoff?: BackoffPolicy;
  retryBackoff?: BackoffPolicy;
  downloadAttempts?: number;
  /**
   * Keep each pump's last readings in memory from the commit stream (default), or read them from
   * the buffer when a model is validated: an updater that only ever installs a pump's own model
   * now and then (the first-model part's, with the hub off) need not listen to every commit.
   */
  recordRecent?: boolean;
}

const RECENT_FROM_BUFFER = 128;

export function createModelUpdater(agent: Agent, opts: ModelUpdateOptions = {}): { updater: ModelUpdater; recent: RecentReadings } {
  const recent = new RecentReadings();
  if (opts.recordRecent !== false) agent.pipeline.onCommit((rows) => recent.record(rows));
  const log = agent.logger.child({ component: 'model-updater' });
  const readingsOf = (pumpId: string): Reading[] => {
    const inMemory = recent.of(pumpId);
    if (inMemory.length > 0) return inMemory;
    try {
      return agent.buffer.predictions(pumpId, { limit: RECENT_FROM_BUFFER }).map((r) => ({ pumpId: r.pumpId, ts: r.ts, values: r.values }));
    } catch {
      return [];
    }
  };
  const newestTsOf = (pumpId: string): number | null => {
    try {
      return agent.buffer.predictions(pumpId, { limit: 1 })[0]?.ts ?? null;
    } catch {
      return null;
    }
  };
  const updater = new ModelUpdater({
    manager: agent.models,
    // The first models fitted on the gateway (agent/first-model): each the entry of its pump while
    // the twin names none, and the setting is on (at 0, off, none is: they go out of service).
    local: () => (agent.config.firstModelAfterHours > 0 ? agent.firstModels.local() : new Map()),
    keepLocal: (key) => agent.firstModels.keeps(key),
    onTwinNamed: (keys) => agent.firstModels.twinNamed(keys),
    onLocalRefused: (key, version, reason) => agent.firstModels.localRefused(key, version, `${version} could not be installed: ${reason}`, agent.config.firstModelAfterHours, newestTsOf(key)),
    store: agent.modelStore,
    download: (entry: DesiredModel, signal: AbortSignal, key: string, latestUrl: () => string) =>
      downloadModel(entry, {
        latestUrl,
        // Kept in the model store: a download tried again (next round, after a restart) resumes from there.
        partialPath: agent.modelStore.downloadPathOf(key, { version: entry.version, sha256: entry.sha256 }),
        maxBytes: agent.config.modelMaxBytes,
        timeoutMs: agent.config.modelDownloadTimeoutSeconds * 1000,
        allowInsecure: agent.config.allowInsecureModelUrls,
        ca: opts.ca,
        signal,
        attempts: opts.downloadAttempts,
        backoff: opts.downloadBackoff,
        onRetry: (attempt, err, delayMs) => log.warn({ model: key, version: entry.version, attempt, code: err.code, reason: err.message, retryInMs: delayMs }, 'model download attempt failed'),
      }),
    // A model refused over these (too large, plain http) is tried again once they change.
    limits: () => JSON.stringify({ maxBytes: agent.config.modelMaxBytes, allowInsecure: agent.config.allowInsecureModelUrls }),
    recent: (key) => {
      // A pump's own model is checked on that pump; `default` on every pump that has no model of its own.
      const pumps = key === DEFAULT_MODEL_KEY ? recent.pumpIds().filter((p) => !agent.engine.model(p)) : [key];
      return new Map(pumps.map((p) => [p, readingsOf(p)]));
    },
    retry: opts.retryBackoff,
    log: (level, msg, fields) => log[level](fields, msg),
  });
  return { updater, recent };
}
