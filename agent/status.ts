import type { BufferStore } from '../buffer/store.js';
import { redactSecrets, safeErrorMessage } from '../sync/redact.js';
import type { ModelManager } from '../inference/models.js';
import type { AgentMetrics } from './metrics.js';
import type { AuthFailureView } from './http/auth-failures.js';
import type { CertificateView } from './http/certificate-watch.js';
import type { SystemHealth } from './system-health.js';
import type { PumpRefusalsStatus } from './ingest/pump-refusals.js';
import type { GenericRangeView } from './http/generic-range.js';

export interface SyncStatus {
  state: string;
  /** Why the sync is off when the configuration did not ask for it (standalone without Azurite), else absent or null. */
  reason?: string | null;
  lastSuccessAt: string | null;
  lastAttemptAt: string | null;
  lastError: string | null;
  /** When `lastError` happened; an upload that succeeded later (`lastSuccessAt`) makes it a past one. */
  lastErrorAt?: string | null;
  uploadedRows: number;
  uploadedBlobs: number;
  /** Where the sync uploads: account/container at host (never a key or a SAS token). */
  target?: string | null;
  pendingBatches?: number;
  failedBatches?: number;
  /** Refused items uploaded to `rejected/` since start (rows), and those in the buffer still to go. */
  rejectedUploaded?: number;
  rejectedPending?: number;
  /** What is wrong with the sync target's SAS permissions (more than the sync uses, or less), letters named, never the token. */
  credentialWarnings?: string[];
}

export interface Connectivity {
  hub: string;
  blob: string;
  /**
   * Why the agent's reported properties are not reaching the hub (refused, or the connection
   * failed), since when and how many attempts; null when the last update went through. A hub that
   * refuses them while `hub` says connected leaves the cloud's view of this gateway as it was.
   */
  hubReportedError: string | null;
  /**
   * Since when the IoT hub is unreachable (when the agent was last connected to it, or started), for
   * the page's "alerts not yet delivered … since"; null while connected or without the IoT Edge client.
   */
  hubUnreachableSince: string | null;
}

type Link = 'hub' | 'blob';


export interface HealthCheck {
  name: string;
  /** `degraded`: the part works, but something is lost or off that a person should know (ok stays true). */
  check: () => { ok: boolean; error?: string; degraded?: string };
}

/** What a part reports, or its failure named: /status answers either way. */
function named<T>(fn: () => T): T | { error: string } {
  try {
    return fn();
  } catch (err) {
    return { error: safeErrorMessage(err) };
  }
}

/** Longest text of one check in /healthz. */
const MAX_CHECK_TEXT = 500;

/** Everything `/status`, `/healthz` and `/readyz` report, gathered from the parts that own it. */
export class AgentStatus {
  private readonly checks: HealthCheck[] = [];
  private syncStatus: () => SyncStatus | null = () => null;
  private pumpRefusals: () => PumpRefusalsStatus | null = () => null;
  private outsideGenericRange: () => Record<string, GenericRangeView> = () => ({});
  private pumpStateCounts: () => Record<string, number> | null = () => null;
  private sensorFaults: () => Record<string, unknown[]> = () => ({});
  private alerts: (() => Record<string, unknown>) | null = null;
  private firstModels: (() => unknown) | null = null;
  private simulator: (() => unknown) | null = null;
  private readonly startedMono = performance.now();
  private readonly connectivity: Record<Link, () => string> = { hub: () => 'not configured', blob: () => 'not configured' };
  private hubReportedError: () => string | null = () => null;
  private hubUnreachableSince: () => string | null = () => null;
  private certificate: () => CertificateView | null = () => null;
  private authFailures: () => AuthFailureView | null = () => null;

  constructor(
    private readonly deps: {
      deviceId: string;
      agentVersion: string;
      startedAt: number;
      standalone: boolean;
      buffer: BufferStore;
      models: ModelManager;
      metrics: AgentMetrics;
      system: SystemHealth;
    },
  ) {}

  addHealthCheck(check: HealthCheck): void {
    this.checks.push(check);
  }

  setSyncStatus(fn: () => SyncStatus | null): void {
    this.syncStatus = fn;
  }

  /** Per-pump refusals, reported by the part that follows them (the page's board). */
  setPumpRefusals(fn: () => PumpRefusalsStatus | null): void {
    this.pumpRefusals = fn;
  }

  /** How many pumps are in each state of the /pumps board, from the part that follows them (the page's board). */
  setPumpStates(fn: () => Record<string, number> | null): void {
    this.pumpStateCounts = fn;
  }

  /** Pumps per /pumps state (`normal`, `anomaly`, `not-scored`…; only the states some pump is in); null when not known (no board, or the buffer cannot be read). */
  pumpStates(): Record<string, number> | null {
    try {
      return this.pumpStateCounts();
    } catch {
      return null;
    }
  }

  /** The pumps outside the generic default model's range, reported by the part that follows them (the page's board). */
  setOutsideGenericRange(fn: () => Record<string, GenericRangeView>): void {
    this.outsideGenericRange = fn;
  }

  /** The pumps with sensors found frozen now (the inference engine's, inference/frozen.ts). */
  setSensorFaults(fn: () => Record<string, unknown[]>): void {
    this.sensorFaults = fn;
  }

  /** The alerts on output `alerts` (agent/edge/alerts.ts), reported by the IoT Edge part; none without it. */
  setAlerts(fn: () => Record<string, unknown>): void {
    this.alerts = fn;
  }

  /** The first models fitted on the gateway (agent/first-model), reported by the part that fits them. */
  setFirstModels(fn: () => unknown): void {
    this.firstModels = fn;
  }

  /** The faults the simulated pumps were given (agent/simulated-faults.ts); /status has no `simulator` without it. */
  setSimulator(fn: () => unknown): void {
    this.simulator = fn;
  }

  /** As alertsNow. */
  private firstModelsNow(): unknown {
    return this.firstModels === null ? null : named(this.firstModels);
  }

  /** As outsideGenericRangeNow: a failure is named, /status answers. */
  private alertsNow(): Record<string, unknown> | null {
    return this.alerts === null ? null : named(this.alerts);
  }

  /** Each link (IoT hub, Blob Storage) is reported by the part that owns it. */
  setConnectivity(link: Link, fn: () => string): void {
    this.connectivity[link] = fn;
  }

  /** The status endpoint's certificate (null: plain HTTP), reported by its watch. */
  setCertificate(fn: () => CertificateView | null): void {
    this.certificate = fn;
  }

  /** Requests the status endpoint's access checks refused (agent/http/auth-failures.ts). */
  setAuthFailures(fn: () => AuthFailureView): void {
    this.authFailures = fn;
  }

  /** Reported by the part that sends the reported properties. */
  setHubReportedError(fn: () => string | null): void {
    this.hubReportedError = fn;
  }

  /** Reported by the part that holds the hub connection. */
  setHubUnreachableSince(fn: () => string | null): void {
    this.hubUnreachableSince = fn;
  }

  connectivityNow(): Connectivity {
    const reported = this.hubReportedError();
    return {
      hub: this.connectivity.hub(),
      blob: this.connectivity.blob(),
      hubReportedError: reported === null ? null : redactSecrets(reported),
      hubUnreachableSince: this.hubUnreachableSince(),
    };
  }

  /**
   * What each part says of its health. Public (/healthz answers without a token), so each text is
   * passed through the redactor and cut short, whatever the part put in it.
   */
  health(): { ok: boolean; checks: Record<string, string>; failing: string[]; degraded: string[] } {
    const checks: Record<string, string> = {};
    const failing: string[] = [];
    const degraded: string[] = [];
    for (const c of this.checks) {
      let r: { ok: boolean; error?: string; degraded?: string };
      try {
        r = c.check();
      } catch (err) {
        r = { ok: false, error: safeErrorMessage(err) };
      }
      const text = r.ok ? (r.degraded ?? 'ok') : (r.error ?? 'failing');
      checks[c.name] = text === 'ok' ? text : redactSecrets(text).slice(0, MAX_CHECK_TEXT);
      if (!r.ok) failing.push(c.name);
      else if (r.degraded !== undefined) degraded.push(c.name);
    }
    return { ok: failing.length === 0, checks, failing, degraded };
  }

  /** As outsideGenericRangeNow: a failure is named, /status answers. */
  private sensorFaultsNow(): Record<string, unknown> {
    return named(this.sensorFaults);
  }

  /** A failure here must not take /status down with it: it is named instead. */
  private outsideGenericRangeNow(): Record<string, unknown> {
    return named(this.outsideGenericRange);
  }

  private sync(): SyncStatus {
    const sync = this.syncStatus() ?? { state: 'not configured', lastSuccessAt: null, lastAttemptAt: null, lastError: null, uploadedRows: 0, uploadedBlobs: 0 };
    return sync.lastError === null ? sync : { ...sync, lastError: redactSecrets(sync.lastError) };
  }

  snapshot(): Record<string, unknown> {
    const { metrics: m, buffer } = this.deps;
    let bufferStatus: Record<string, unknown>;
    try {
      const b = buffer.stats();
      bufferStatus = {
        rows: b.rows,
        unsynced: b.unsynced,
        bytes: b.bytes,
        walBytes: b.walBytes,
        fileBytes: b.fileBytes,
        maxBytes: b.maxBytes,
        diskLimitBytes: b.diskLimitBytes,
        fileEvent: b.fileEvent,
        evicted: b.evicted.total,
        evictedByKind: { synced: b.evicted.synced, unsynced: b.evicted.unsynced, anomalies: b.evicted.anomalies, rejected: b.evicted.rejected },
        unsentEvicted: { sinceStart: b.unsentEvicted.sinceStart, lastAt: b.unsentEvicted.lastAt === null ? null : new Date(b.unsentEvicted.lastAt).toISOString() },
        rejectedStored: b.rejected,
        rejectedUnsentEvicted: b.rejectedUnsentEvicted,
        oldestUnsyncedTs: b.oldestUnsyncedTs === null ? null : new Date(b.oldestUnsyncedTs).toISOString(),
        checkpointError: b.checkpointError === null ? null : safeErrorMessage(b.checkpointError),
        unreadable: {
          rows: b.unreadable.rows,
          ranges: b.unreadable.ranges,
          recent: b.unreadable.recent.map((r) => ({ ...r, foundAt: new Date(r.foundAt).toISOString(), error: safeErrorMessage(r.error) })),
        },
        withoutContributions: {
          rows: b.withoutContributions.rows,
          recent: b.withoutContributions.recent.map((r) => ({ ...r, foundAt: new Date(r.foundAt).toISOString(), error: safeErrorMessage(r.error) })),
        },
      };
    } catch (err) {
      bufferStatus = { error: safeErrorMessage(err) };
    }
    const refusals = this.pumpRefusals();
    return {
      device: this.deps.deviceId,
      agentVersion: this.deps.agentVersion,
      standalone: this.deps.standalone,
      startedAt: new Date(this.deps.startedAt).toISOString(),
      uptimeSeconds: Math.round((performance.now() - this.startedMono) / 1000), // not on the wall clock, which NTP steps
      models: this.deps.models.status(),
      firstModels: this.firstModelsNow(),
      outsideGenericRange: this.outsideGenericRangeNow(),
      sensorFaults: this.sensorFaultsNow(),
      buffer: bufferStatus,
      readings: {
        accepted: m.accepted.get(),
        rejected: m.rejected.get(),
        scored: m.scored.get(),
        unscored: m.unscored.get(),
        anomalies: m.anomalies.get(),
        imputed: m.imputed.get(),
        refusedByPump: refusals?.byPump ?? {},
        refusedUntracked: refusals?.untrackedReadings ?? 0,
      },
      sync: this.sync(),
      alerts: this.alertsNow(),
      connectivity: this.connectivityNow(),
      tls: this.certificate(),
      authFailures: this.authFailures(),
      system: this.deps.system.latest(),
      health: this.health(),
      ...(this.simulator === null ? {} : { simulator: named(this.simulator) }),
    };
  }
}
