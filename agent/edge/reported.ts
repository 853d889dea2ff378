/**
 * Reported properties: per model key its status and the IoT Plug and Play acknowledgement of its
 * desired entry, the acknowledgements of the setting sections, and a summary of buffer and sync.
 * Changes are coalesced (one update at most every `debounceMs`); the whole document is sent
 * again after every reconnect, so nothing reported while offline is lost.
 * IoT Hub refuses an update that would make the reported document larger than 32 KB (and then
 * every later acknowledgement would be lost too), so the document is measured before it is sent:
 * when the pumps do not all fit, `pumps` lists the most recently active ones that do, with
 * `pumpsTotal` and `pumpsTruncated: true`.
 */
import type { ModelManager, ModelStatus } from '../../inference/models.js';
import { safeErrorMessage } from '../../sync/redact.js';
import type { Logger } from '../logger.js';
import type { AgentStatus } from '../status.js';
import { SECTION_NAMES } from './desired.js';
import type { Ack, TwinSync } from './twin.js';
import { REPORTED_LIMIT_BYTES, arrayItemSize, reportedSize } from './twin-size.js';

/**
 * What the agent lets its own document use of the 32 KB: the rest is left for what it does not
 * control (keys an earlier version reported, the timestamps and counters growing).
 */
export const REPORTED_BUDGET_BYTES = REPORTED_LIMIT_BYTES - 2 * 1024;

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
  /** Per setting section, the fields of the `value` last reported (an object), to delete those gone since. */
  private reportedFields = new Map<string, Set<string>>();
  private lastError: string | null = null;
  private truncated = false;

  constructor(
    private readonly deps: {
      models: ModelManager;
      twinSync: TwinSync;
      status: AgentStatus;
      logger: Logger;
      /** The pumps this gateway serves, the most recently active first (the trainer's deploy finds gateways by them). */
      pumps?: () => string[];
      debounceMs?: number;
      budgetBytes?: number;
    },
  ) {}

  /** A (re)connected twin: report everything to it. */
  attach(twin: ReportedTwin | null): void {
    this.twin = twin;
    if (twin) {
      // Keys reported by an earlier run that no longer exist are deleted (set to null) next time.
      const models = twin.properties.reported['models'];
      this.reportedKeys = new Set(models && typeof models === 'object' ? Object.keys(models).filter((k) => !k.startsWith('$')) : []);
      this.reportedFields = sectionFields(twin.properties.reported);
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
    const doc: Record<string, unknown> = {
      ...this.withDeletedFields(this.deps.twinSync.sectionAcks()),
      models,
      pumps: [],
      pumpsTotal: null,
      pumpsTruncated: null,
      state: {
        agentVersion: snap.agentVersion,
        updatedAt: new Date().toISOString(),
        buffer: pick(snap.buffer, ['rows', 'unsynced', 'bytes', 'maxBytes', 'evicted', 'oldestUnsyncedTs', 'error']),
        sync: pick(snap.sync, ['state', 'lastSuccessAt', 'lastError', 'uploadedRows', 'uploadedBlobs']),
        readings: snap.readings,
      },
    };
    this.fitPumps(doc, this.deps.pumps?.() ?? []);
    return doc;
  }

  /**
   * A reported patch merges into the reported document, so a setting deleted from a section (its
   * desired field set to null) would stay in the reported `value`, shown as in force when it no
   * longer is: fields reported before and gone now are sent as null, which deletes them.
   */
  private withDeletedFields(acks: Record<string, Ack | null>): Record<string, Ack | null> {
    const out: Record<string, Ack | null> = {};
    for (const [name, ack] of Object.entries(acks)) {
      const before = this.reportedFields.get(name);
      const value = ack?.value;
      if (!ack || !before || !isPlainObject(value)) {
        out[name] = ack;
        continue;
      }
      const gone = [...before].filter((f) => !(f in value));
      out[name] = gone.length === 0 ? ack : { ...ack, value: { ...value, ...Object.fromEntries(gone.map((f) => [f, null])) } };
    }
    return out;
  }

  /**
   * Lists every pump when the document stays within the budget; else the most recently active
   * that fit, with `pumpsTotal` and `pumpsTruncated: true` (null deletes both once all fit again).
   */
  private fitPumps(doc: Record<string, unknown>, recentFirst: string[]): void {
    const budget = this.deps.budgetBytes ?? REPORTED_BUDGET_BYTES;
    const all = recentFirst.reduce((sum, id) => sum + arrayItemSize(id), 0);
    const rest = reportedSize(doc);
    if (rest + all <= budget) {
      doc.pumps = [...recentFirst].sort();
      this.setTruncated(false, recentFirst.length, recentFirst.length, rest + all, budget);
      return;
    }
    doc.pumpsTotal = recentFirst.length;
    doc.pumpsTruncated = true;
    let size = reportedSize(doc);
    const listed: string[] = [];
    for (const id of recentFirst) {
      const more = arrayItemSize(id);
      if (size + more > budget) break;
      size += more;
      listed.push(id);
    }
    doc.pumps = listed.sort();
    this.setTruncated(true, recentFirst.length, listed.length, rest + all, budget);
  }

  /** One warning when the pumps stop fitting (again after they fit once more). */
  private setTruncated(truncated: boolean, total: number, listed: number, wouldBe: number, budget: number): void {
    if (truncated && !this.truncated) {
      this.deps.logger.warn(
        { code: 'PW_EDGE_REPORTED_PUMPS_TRUNCATED', pumpsTotal: total, pumpsReported: listed, bytesWithAllPumps: wouldBe, budgetBytes: budget, limitBytes: REPORTED_LIMIT_BYTES },
        "reported properties would exceed IoT Hub's 32 KB limit: only the most recently active pumps are listed in 'pumps'",
      );
    } else if (!truncated && this.truncated) {
      this.deps.logger.info({ pumpsTotal: total }, "every pump fits in the reported 'pumps' again");
    }
    this.truncated = truncated;
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
      this.reportedFields = sectionFields(doc);
      this.lastError = null;
    } catch (err) {
      this.lastError = safeErrorMessage(err);
      this.deps.logger.warn({ err: { message: this.lastError } }, 'reported properties not sent; they are sent again after reconnecting');
    }
  }
}

/** Per setting section of a reported document, the fields of its `value` that are set (not null). */
function sectionFields(reported: Record<string, unknown>): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const name of SECTION_NAMES) {
    const value = (reported[name] as { value?: unknown } | null | undefined)?.value;
    if (isPlainObject(value)) out.set(name, new Set(Object.entries(value).filter(([, v]) => v !== null).map(([k]) => k)));
  }
  return out;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function pick(obj: unknown, keys: string[]): Record<string, unknown> | null {
  if (!obj || typeof obj !== 'object') return null;
  const out: Record<string, unknown> = {};
  for (const k of keys) if (k in obj) out[k] = (obj as Record<string, unknown>)[k];
  return out;
}
