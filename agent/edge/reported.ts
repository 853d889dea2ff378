/**
 * Reported properties: per model key its status and the IoT Plug and Play acknowledgement of its
 * desired entry, the acknowledgements of the setting sections, and a summary of buffer and sync.
 * Changes are coalesced (one update at most every `debounceMs`); the whole document is sent
 * again after every reconnect, so nothing reported while offline is lost.
 */
import type { ModelManager, ModelStatus } from '../../inference/models.js';
import { safeErrorMessage } from '../../sync/redact.js';
import type { Logger } from '../logger.js';
import type { AgentStatus } from '../status.js';
import type { TwinSync } from './twin.js';

export interface ReportedTwin {
  properties: { reported: { update: (patch: object, done: (err?: Error) => void) => void; [key: string]: unknown } };
}

const AC: Record<ModelStatus['status'], number> = { active: 200, shadow: 200, downloading: 202, rejected: 400, 'rolled-back': 500 };

/**
 * One key's reported entry. The acknowledgement is about the desired entry: a shadow entry that is
 * still downloading or was refused is acknowledged as such, even while the pump's live model runs.
 * Without a desired entry, ac/av/ad are null: a reported patch merges, so an old
 * acknowledgement would otherwise stay.
 */
function modelReport(s: ModelStatus, av: number | null): Record<string, unknown> {
  const shadow = s.shadow ? { version: s.shadow.version, status: s.shadow.status, error: s.shadow.error, since: s.shadow.since } : null;
  const base: Record<string, unknown> = { version: s.version, status: s.status, error: s.error, since: s.since, activeVersion: s.activeVersion ?? null, shadow };
  if (av === null) return { ...base, ac: null, av: null, ad: null };
  const entry = s.shadow && s.shadow.status !== 'shadow' ? s.shadow : s;
  const ad = entry.status === 'active' || entry.status === 'shadow' ? entry.status : entry.error ? `${entry.status}: ${entry.error}` : entry.status;
  return { ...base, ac: AC[entry.status], av, ad };
}

export class Reporter {
  private twin: ReportedTwin | null = null;
  private timer: NodeJS.Timeout | null = null;
  private sending: Promise<void> | null = null;
  private again = false;
  private reportedKeys = new Set<string>();
  private lastError: string | null = null;

  constructor(
    private readonly deps: {
      models: ModelManager;
      twinSync: TwinSync;
      status: AgentStatus;
      logger: Logger;
      /** The pumps this gateway serves (the trainer's deploy finds gateways by them). */
      pumps?: () => string[];
      debounceMs?: number;
    },
  ) {}

  /** A (re)connected twin: report everything to it. */
  attach(twin: ReportedTwin | null): void {
    this.twin = twin;
    if (twin) {
      // Keys reported by an earlier run that no longer exist are deleted (set to null) next time.
      const models = twin.properties.reported['models'];
      this.reportedKeys = new Set(models && typeof models === 'object' ? Object.keys(models).filter((k) => !k.startsWith('$')) : []);
      this.schedule(0);
    }
  }

  /** Something changed: report soon. */
  changed(): void {
    this.schedule(this.deps.debounceMs ?? 200);
  }

  error(): string | null {
    return this.lastError;
  }

  /** Sends now and resolves when the hub has it (tests, stop). */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.send();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.twin = null;
  }

  /** The whole reported document as it stands now. */
  document(): Record<string, unknown> {
    const models: Record<string, unknown> = {};
    const status = this.deps.models.status();
    for (const [key, s] of Object.entries(status)) models[key] = modelReport(s, this.deps.twinSync.modelVersionOf(key));
    for (const key of this.reportedKeys) if (!(key in models)) models[key] = null;
    const snap = this.deps.status.snapshot() as Record<string, any>;
    return {
      ...this.deps.twinSync.sectionAcks(),
      models,
      pumps: this.deps.pumps?.() ?? [],
      state: {
        agentVersion: snap.agentVersion,
        updatedAt: new Date().toISOString(),
        buffer: pick(snap.buffer, ['rows', 'unsynced', 'bytes', 'maxBytes', 'evicted', 'oldestUnsyncedTs', 'error']),
        sync: pick(snap.sync, ['state', 'lastSuccessAt', 'lastError', 'uploadedRows', 'uploadedBlobs']),
        readings: snap.readings,
      },
    };
  }

  private schedule(ms: number): void {
    if (!this.twin || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.send();
    }, ms);
    this.timer.unref();
  }

  private async send(): Promise<void> {
    if (this.sending) {
      this.again = true;
      return this.sending;
    }
    this.sending = this.sendOnce().finally(() => {
      this.sending = null;
      if (this.again) {
        this.again = false;
        this.schedule(0);
      }
    });
    return this.sending;
  }

  private async sendOnce(): Promise<void> {
    const twin = this.twin;
    if (!twin) return;
    const doc = this.document();
    try {
      await new Promise<void>((resolve, reject) => twin.properties.reported.update(doc, (err) => (err ? reject(err) : resolve())));
      this.reportedKeys = new Set(Object.entries(doc.models as object).filter(([, v]) => v !== null).map(([k]) => k));
      this.lastError = null;
    } catch (err) {
      this.lastError = safeErrorMessage(err);
      this.deps.logger.warn({ err: { message: this.lastError } }, 'reported properties not sent; they are sent again after reconnecting');
    }
  }
}

function pick(obj: unknown, keys: string[]): Record<string, unknown> | null {
  if (!obj || typeof obj !== 'object') return null;
  const out: Record<string, unknown> = {};
  for (const k of keys) if (k in obj) out[k] = (obj as Record<string, unknown>)[k];
  return out;
}
