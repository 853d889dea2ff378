/**
 * Reported properties: per model key its status and the IoT Plug and Play acknowledgement of its
 * desired entry, the acknowledgements of the setting sections (and refusals of unknown ones), and a
 * summary of buffer and sync.
 * Changes are coalesced (one update at most every `debounceMs`); the whole document is sent
 * again after every reconnect, so nothing reported while offline is lost.
 * IoT Hub refuses an update that would make the reported document larger than 32 KB (and then
 * every later acknowledgement would be lost too), so the document is measured before it is sent:
 * when it does not fit, `pumps` gives way first (the most recently active pumps that fit, with
 * `pumpsTotal` and `pumpsTruncated: true`), then the details of the `models` entries
 * (`modelsTruncated: true`); every key keeps its version, status and acknowledgement.
 * An update that does not go through (refused, or the connection failed) is sent again on the next
 * change and by the runtime's periodic state report; `failure()` says so in /status meanwhile.
 */
import { modelReads } from '../../inference/contract.js';
import type { ModelManager, ModelStatus } from '../../inference/models.js';
import { GATEWAY_ORIGIN } from '../../inference/updater.js';
import { safeErrorMessage } from '../../sync/redact.js';
import type { Logger } from '../logger.js';
import { RepeatLog } from '../repeat-log.js';
import type { AgentStatus } from '../status.js';
import { SECTION_NAMES, UNKNOWN_SECTION } from './desired.js';
import { isObject, type Ack, type TwinSync } from './twin.js';
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

/** Longest `error` in a reported entry: a reason may carry a long URL or a model's whole feature list; /status keeps it whole. */
const REPORTED_ERROR_CHARS = 200;
/** Longest reason in `ad`, which repeats the entry's status for the cloud's twin queries. */
const REPORTED_AD_REASON_CHARS = 80;

/** `text` cut to `max` characters (code points, never half of one), the cut shown by an ellipsis. */
function cut(text: string, max: number): string {
  const chars = Array.from(text);
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

/** The cloud has the URL in the desired entry, and a download reason starts with it: `ad` says `<url>` instead. */
const URL_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi;

const reportedError = (error: string | null): string | null => (error === null ? null : cut(error, REPORTED_ERROR_CHARS));

/**
 * One key's reported entry. The acknowledgement is about the desired entry: a shadow entry that is
 * still downloading or was refused is acknowledged as such, even while the pump's live model runs.
 * Without a desired entry, ac/av/ad are null: a reported patch merges, so an old
 * acknowledgement would otherwise stay.
 */
function modelReport(s: ModelStatus, av: number | null): Record<string, unknown> {
  const shadow = s.shadow ? { version: s.shadow.version, status: s.shadow.status, error: reportedError(s.shadow.error), since: s.shadow.since } : null;
  const base: Record<string, unknown> = { version: s.version, status: s.status, error: reportedError(s.error), since: s.since, activeVersion: s.activeVersion ?? null, shadow };
  // A first model fitted on the gateway says so (README, "A first model fitted on the gateway"); see Reporter.gatewayKeys.
  if (s.origin === GATEWAY_ORIGIN) base.origin = GATEWAY_ORIGIN;
  if (av === null) return { ...base, ac: null, av: null, ad: null };
  const entry = s.shadow && s.shadow.status !== 'shadow' ? s.shadow : s;
  const ad =
    entry.status === 'active' || entry.status === 'shadow' || !entry.error
      ? entry.status
      : `${entry.status}: ${cut(entry.error.replace(URL_IN_TEXT, '<url>'), REPORTED_AD_REASON_CHARS)}`;
  return { ...base, ac: AC[entry.status], av, ad };
}

/**
 * What is taken out of every `models` entry, one step more each time, while the document does not
 * fit once `pumps` is empty: the reasons first (/status keeps them), then the times, the active
 * version and the shadow's details, then the description. Version, status and the acknowledgement
 * (`ac`, `av`) of every key always stay. Fields go as null: a reported patch merges, so a field
 * left out would stay on the hub as it was.
 */
const MODEL_SHRINK_STEPS: ReadonlyArray<(entry: Record<string, unknown>) => Record<string, unknown>> = [
  (e) => ({ ...e, error: null, shadow: e.shadow ? { ...(e.shadow as object), error: null } : null }),
  // A shadow keeps its version and status: the acknowledgement may be about it (a refused shadow).
  (e) => ({ ...e, since: null, activeVersion: null, shadow: e.shadow ? { ...(e.shadow as object), error: null, since: null } : null }),
  (e) => ({ ...e, ad: null }),
];

/** The size of what the hub keeps of the document once merged (see twin-size.ts): null members delete, so they take no room. */
const storedSize = (doc: Record<string, unknown>): number => reportedSize(withoutNulls(doc));

function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (!isObject(value)) return value;
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null).map(([k, v]) => [k, withoutNulls(v)]));
}

/** Why the last reported update did not go through, since when, and how many attempts in a row. */
export interface ReportedFailure {
  error: string;
  since: string;
  attempts: number;
  /** Whether one failed on the twin attached now (the connection in use), not only on one before a reconnect. */
  onCurrentTwin: boolean;
}

export class Reporter {
  private twin: ReportedTwin | null = null;
  private timer: NodeJS.Timeout | null = null;
  private sending: Promise<void> | null = null;
  /**
   * Which connection the update under way went out on (attach() counts them). The SDK sends twin
   * requests at QoS 0 and never fails one whose answer was lost with its connection: that update
   * waits for ever, so the next connection's updates must not wait behind it.
   */
  private connection = 0;
  private sendingOn = 0;
  private again = false;
  private reportedKeys = new Set<string>();
  /**
   * Keys reported with `origin: "gateway"` (a first model fitted on the gateway): only those carry
   * the field, and once such a key runs another model its `origin` is sent as null, which deletes it
   * (a reported patch merges).
   */
  private gatewayKeys = new Set<string>();
  /** Per setting section, the fields of the `value` last reported (an object), to delete those gone since. */
  private reportedFields = new Map<string, Set<string>>();
  /**
   * Refusals found on the hub at attach (an earlier run's: of unknown desired sections, and
   * `modelsRefused`): sent as null, which deletes them, unless this run refuses the key too. Else
   * a key deleted or fixed in the desired properties while the agent was stopped would stay
   * refused on the reported side.
   */
  private earlierRefusals = new Set<string>();
  private failed: ReportedFailure | null = null;
  private truncated = false;
  /** How many shrink steps the `models` entries needed in the last document (0: none). */
  private modelSteps = 0;
  /** The last document did not fit even with every `models` entry at its least. */
  private tooLarge = false;
  private readonly failures: RepeatLog;

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
  ) {
    this.failures = new RepeatLog({
      failure: (fields, msg) => deps.logger.warn(fields, msg),
      recovery: (fields, msg) => deps.logger.info(fields, msg),
      message: 'reported properties not sent: acknowledgements and model statuses do not reach the cloud; they are sent again on the next change and by the periodic state report',
      recovered: 'reported properties sent again',
      intervalMs: 10 * 60_000,
    });
  }

  /** A (re)connected twin: report everything to it. */
  attach(twin: ReportedTwin | null): void {
    this.twin = twin;
    this.connection++;
    if (this.failed) this.failed.onCurrentTwin = false;
    if (twin) {
      // Keys reported by an earlier run that no longer exist are deleted (set to null) next time.
      const models = twin.properties.reported['models'];
      this.reportedKeys = new Set(models && typeof models === 'object' ? Object.keys(models).filter((k) => !k.startsWith('$')) : []);
      this.gatewayKeys = new Set(isObject(models) ? Object.entries(models).filter(([k, v]) => !k.startsWith('$') && isObject(v) && v.origin === GATEWAY_ORIGIN).map(([k]) => k) : []);
      this.reportedFields = sectionFields(twin.properties.reported);
      this.earlierRefusals = refusalKeys(twin.properties.reported);
      this.schedule(0);
    }
  }

  /** Something changed: report soon. */
  changed(): void {
    this.schedule(this.deps.debounceMs ?? 200);
  }

  /** The error of the last update, if it did not go through; null once one did. */
  error(): string | null {
    return this.failed?.error ?? null;
  }

  /** Why reported updates are not going through, since when and how many attempts; null when the last one did. */
  failure(): ReportedFailure | null {
    return this.failed ? { ...this.failed } : null;
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
    for (const [key, s] of Object.entries(status)) {
      const entry = modelReport(s, this.deps.twinSync.modelVersionOf(key));
      if (!('origin' in entry) && this.gatewayKeys.has(key)) entry.origin = null;
      models[key] = entry;
    }
    for (const key of this.reportedKeys) if (!(key in models)) models[key] = null;
    const snap = this.deps.status.snapshot() as Record<string, any>;
    const doc: Record<string, unknown> = {
      ...Object.fromEntries([...this.earlierRefusals].map((key) => [key, null])),
      ...this.withDeletedFields(this.deps.twinSync.sectionAcks()),
      models,
      pumps: [],
      pumpsTotal: null,
      pumpsTruncated: null,
      modelsTruncated: null,
      state: {
        agentVersion: snap.agentVersion,
        // The model contracts and rules this agent reads: deploy sends no model a gateway would refuse.
        ...modelReads(),
        updatedAt: new Date().toISOString(),
        buffer: fields(snap.buffer, STATE_BUFFER_FIELDS),
        sync: fields(snap.sync, STATE_SYNC_FIELDS),
        // Per-pump refusals (/status `readings.refusedByPump`) are not reported: pumps leave that map
        // and, a patch merging, would stay on the hub; and at up to 132 entries of 300 bytes it
        // would not fit the 32 KB. null deletes what an earlier version reported.
        readings: { ...fields(snap.readings, STATE_READINGS_FIELDS), refusedByPump: null },
        health: healthState(snap.health),
      },
    };
    this.fit(doc, this.deps.pumps?.() ?? []);
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
      if (!ack || !before || !isObject(value)) {
        out[name] = ack;
        continue;
      }
      const gone = [...before].filter((f) => !(f in value));
      out[name] = gone.length === 0 ? ack : { ...ack, value: { ...value, ...Object.fromEntries(gone.map((f) => [f, null])) } };
    }
    return out;
  }

  /**
   * Lists every pump when the document stays within the budget. Else `pumps` gives way first: with
   * `pumpsTotal` and `pumpsTruncated: true`, it lists the most recently active pumps that fit once
   * the rest does. When the rest does not fit with no pump listed, the `models` entries shrink step
   * by step (MODEL_SHRINK_STEPS), with `modelsTruncated: true`. The flags are null (deleted on the
   * hub) when not needed.
   */
  private fit(doc: Record<string, unknown>, recentFirst: string[]): void {
    const budget = this.deps.budgetBytes ?? REPORTED_BUDGET_BYTES;
    const all = recentFirst.reduce((sum, id) => sum + arrayItemSize(id), 0);
    const rest = storedSize(doc);
    if (rest + all <= budget) {
      doc.pumps = [...recentFirst].sort();
      this.setTruncated(false, recentFirst.length, recentFirst.length, rest + all, budget);
      this.setModelsShrunk(0, rest, budget);
      return;
    }
    if (recentFirst.length > 0) {
      doc.pumpsTotal = recentFirst.length;
      doc.pumpsTruncated = true;
    }
    let size = storedSize(doc);
    const before = size;
    let steps = 0;
    if (size > budget) doc.modelsTruncated = true;
    while (size > budget && steps < MODEL_SHRINK_STEPS.length) {
      const step = MODEL_SHRINK_STEPS[steps++]!;
      doc.models = Object.fromEntries(Object.entries(doc.models as Record<string, Record<string, unknown> | null>).map(([k, e]) => [k, e && step(e)]));
      size = storedSize(doc);
    }
    const listed: string[] = [];
    for (const id of recentFirst) {
      const more = arrayItemSize(id);
      if (size + more > budget) break;
      size += more;
      listed.push(id);
    }
    doc.pumps = listed.sort();
    if (listed.length === recentFirst.length) {
      // the models' details made the room: every pump is listed after all
      doc.pumpsTotal = null;
      doc.pumpsTruncated = null;
    }
    this.setTruncated(listed.length < recentFirst.length, recentFirst.length, listed.length, rest + all, budget);
    this.setModelsShrunk(steps, before, budget, size);
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

  /**
   * One warning when the `models` entries start to be shrunk, and one error when even their least
   * does not fit. That takes several hundred keys: the desired section, which names them, has the
   * same 32 KB limit and bigger entries, so this is not expected.
   */
  private setModelsShrunk(steps: number, wouldBe: number, budget: number, size = wouldBe): void {
    const tooLarge = size > budget;
    if (tooLarge && !this.tooLarge) {
      this.deps.logger.error(
        { code: 'PW_EDGE_REPORTED_TOO_LARGE', bytes: size, budgetBytes: budget, limitBytes: REPORTED_LIMIT_BYTES },
        "reported properties exceed the agent's budget even with every 'models' entry cut to version, status and acknowledgement: IoT Hub may refuse them, and then no acknowledgement reaches the cloud; delete the desired 'models' entries this gateway no longer needs",
      );
    }
    if (steps > 0 && this.modelSteps === 0) {
      this.deps.logger.warn(
        { code: 'PW_EDGE_REPORTED_MODELS_TRUNCATED', shrinkSteps: steps, bytesWithFullEntries: wouldBe, budgetBytes: budget, limitBytes: REPORTED_LIMIT_BYTES },
        "reported properties would exceed IoT Hub's 32 KB limit: the 'models' entries leave out their details (reasons, times, shadow), keeping each key's version, status and acknowledgement; /status has them whole",
      );
    } else if (steps === 0 && this.modelSteps > 0) {
      this.deps.logger.info("the 'models' entries fit whole in the reported properties again");
    }
    this.modelSteps = steps;
    this.tooLarge = tooLarge;
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
    if (this.sending && this.sendingOn === this.connection) {
      this.again = true;
      return this.sending;
    }
    const sending: Promise<void> = this.sendOnce().finally(() => {
      if (this.sending !== sending) return; // an update of a connection gone: a later one took over
      this.sending = null;
      if (this.again) {
        this.again = false;
        this.schedule(0);
      }
    });
    this.sending = sending;
    this.sendingOn = this.connection;
    return sending;
  }

  private async sendOnce(): Promise<void> {
    const twin = this.twin;
    if (!twin) return;
    const doc = this.document();
    const connection = this.connection;
    try {
      await new Promise<void>((resolve, reject) => twin.properties.reported.update(doc, (err) => (err ? reject(err) : resolve())));
      // Answered after a reconnect: attach() has read the hub's document since, and the whole document goes again.
      if (connection !== this.connection) return;
      this.reportedKeys = new Set(Object.entries(doc.models as object).filter(([, v]) => v !== null).map(([k]) => k));
      this.gatewayKeys = new Set(Object.entries(doc.models as Record<string, Record<string, unknown> | null>).filter(([, v]) => v?.origin === GATEWAY_ORIGIN).map(([k]) => k));
      this.reportedFields = sectionFields(doc);
      this.earlierRefusals.clear(); // deleted on the hub now
      this.failed = null;
      this.failures.succeeded();
    } catch (err) {
      if (connection !== this.connection) return; // the failure of a connection gone says nothing of the current one
      const error = safeErrorMessage(err);
      const attempts = (this.failed?.attempts ?? 0) + 1;
      this.failed = { error, since: this.failed?.since ?? new Date().toISOString(), attempts, onCurrentTwin: this.failed?.onCurrentTwin === true || twin === this.twin };
      this.failures.failed({ err: { message: error }, attempts });
    }
  }
}

/**
 * The reported keys that hold an acknowledgement TwinSync makes only while its desired key is
 * there: a refusal of an unknown desired section (`unknown section "…"`), `modelsRefused`, and a
 * setting section's acknowledgement (a section deleted from the desired properties while the agent
 * was stopped kept its old `ac`, refusal or value, for good).
 */
function refusalKeys(reported: Record<string, unknown>): Set<string> {
  const earlier = ([k, v]: [string, unknown]): boolean =>
    isObject(v) &&
    ((SECTION_NAMES as readonly string[]).includes(k) || (v.ac === 400 && (k === 'modelsRefused' || (!k.startsWith('$') && typeof v.ad === 'string' && v.ad.startsWith(UNKNOWN_SECTION)))));
  return new Set(Object.entries(reported).filter(earlier).map(([k]) => k));
}

/** Per setting section of a reported document, the fields of its `value` that are set (not null). */
function sectionFields(reported: Record<string, unknown>): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const name of SECTION_NAMES) {
    const value = (reported[name] as { value?: unknown } | null | undefined)?.value;
    if (isObject(value)) out.set(name, new Set(Object.entries(value).filter(([, v]) => v !== null).map(([k]) => k)));
  }
  return out;
}


/** The fields of `state` (agentVersion and updatedAt aside), from /status's snapshot. */
const STATE_BUFFER_FIELDS = ['rows', 'unsynced', 'bytes', 'maxBytes', 'evicted', 'oldestUnsyncedTs', 'error'] as const;
const STATE_SYNC_FIELDS = ['state', 'lastSuccessAt', 'lastError', 'uploadedRows', 'uploadedBlobs'] as const;
const STATE_READINGS_FIELDS = ['accepted', 'rejected', 'scored', 'unscored', 'anomalies', 'imputed', 'refusedUntracked'] as const;

/** Longest text of one problem in `state.health.problems` (/healthz keeps 500 characters). */
const REPORTED_HEALTH_CHARS = 200;

/**
 * /healthz in short, for the fleet: IoT Edge does not act on a container's health check (it
 * restarts a module only when its process exits), so a gateway whose buffer cannot be read or
 * whose uploads need a person is found by a twin query on `state.health.status` instead.
 * `problems` is an array, which a patch replaces whole: a problem gone leaves nothing behind.
 */
function healthState(h: unknown): { status: 'ok' | 'degraded' | 'failing'; problems: string[] } {
  const health = (h ?? {}) as { failing?: string[]; degraded?: string[]; checks?: Record<string, string> };
  const failing = health.failing ?? [];
  const degraded = health.degraded ?? [];
  const problems = [...failing, ...degraded].map((name) => cut(`${name}: ${health.checks?.[name] ?? ''}`, REPORTED_HEALTH_CHARS));
  return { status: failing.length > 0 ? 'failing' : degraded.length > 0 ? 'degraded' : 'ok', problems };
}

/**
 * Every one of `keys`, null for those `obj` lacks. A reported patch merges into what the hub holds,
 * so a field left out keeps its old value there: the buffer's error after it opened again, the
 * last run's counts while it is closed. null deletes it.
 */
function fields(obj: unknown, keys: readonly string[]): Record<string, unknown> {
  const from = obj !== null && typeof obj === 'object' ? (obj as Record<string, unknown>) : {};
  return Object.fromEntries(keys.map((k) => [k, from[k] ?? null]));
}
