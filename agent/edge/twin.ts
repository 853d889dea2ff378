/**
 * Applies the module twin's desired properties. TwinSync keeps its own desired document: a
 * completed full read (on every (re)connect) replaces it, and a patch is merged into it (JSON merge
 * patch: null deletes) only when its `$version` is newer than the held one. Patches that arrive
 * while a read is in flight wait and are replayed on top of the read's result (those the read
 * already holds are dropped). The SDK's own cache (`twin.properties.desired`) is not used: its
 * Twin.get() empties it before asking, so a patch landing meanwhile would look like a whole
 * twin with everything else deleted. After every change the whole held document is reconciled,
 * so a change made while offline applies exactly like a live one. Each changed section is
 * acknowledged (ac/av/ad); an invalid one is refused with its reason and the last good settings stay.
 * A field a section does not have (one of a newer agent version) is named as not applied in the
 * section's acknowledgement, while the section's known fields apply.
 * A top-level key the agent does not read (a misspelt `Alerts`) is refused under its own name, so
 * the operator who typed it sees why nothing changed; its refusal goes when the key does.
 */
import type { ModelManager } from '../../inference/models.js';
import type { DesiredModel, ModelUpdater } from '../../inference/updater.js';
import { TWIN_SETTINGS, type Config } from '../config.js';
import type { Logger } from '../logger.js';
import { AGENT_REPORTED_KEYS, DESIRED_KEYS, SECTION_NAMES, parseModels, parseSection, sectionValue, unknownSectionReason, unknownSettingsReason, type SectionName } from './desired.js';

/** An IoT Plug and Play acknowledgement of a writable property. */
export interface Ack {
  value: unknown;
  /** 200 applied, 202 in progress, 400 refused, 500 failed. */
  ac: number;
  /** The desired `$version` acknowledged. */
  av: number;
  ad: string;
}

export interface TwinSyncDeps {
  updater: ModelUpdater;
  models: ModelManager;
  /** Puts live settings into force (all setting keys, start-up values where the twin has none). */
  applySettings: (values: Partial<Config>) => void;
  /** The start-up values of every setting key (what a deleted section goes back to). */
  startupSettings: Partial<Config>;
  logger: Logger;
  /** Something to report changed. */
  changed: () => void;
}

const json = (v: unknown): string => JSON.stringify(v ?? null);

/**
 * Unknown desired keys acknowledged on the reported side (the rest in the log only): top-level
 * keys refused under their own name (about 200 bytes each) and a section's unknown fields named in
 * its `ad`, counted together.
 */
const MAX_UNKNOWN_ACKS = 20;

type Doc = Record<string, unknown>;

export class TwinSync {
  private readonly sectionRaw = new Map<SectionName, string>();
  private readonly sectionValues = new Map<SectionName, Partial<Config>>();
  /** Per unknown top-level desired key: its text when last refused (to refuse and log it once per change). */
  private readonly unknownRaw = new Map<string, string>();
  /** Per section: how many of its unknown fields its acknowledgement names. */
  private readonly unknownNamed = new Map<SectionName, number>();
  private readonly acks = new Map<string, Ack | null>();
  /** Per model key: the entry last seen and the desired $version that set it. */
  private readonly modelSeen = new Map<string, { raw: string; av: number }>();
  private desiredVersion = 0;
  /** The desired document in force (null until a first full read completes). */
  private held: Doc | null = null;
  /** Full reads in flight. */
  private reads = 0;
  /** Patches received while a read was in flight (or before the first read). */
  private queued: Doc[] = [];

  constructor(private readonly deps: TwinSyncDeps) {}

  /** The desired `$version` last applied. */
  get version(): number {
    return this.desiredVersion;
  }

  /**
   * Acknowledgements of the setting sections, of unknown top-level keys (refused), and
   * `modelsRefused` when the `models` section is not even an object (per-key results are reported
   * under `models`; null clears an earlier refusal).
   */
  sectionAcks(): Record<string, Ack | null> {
    return Object.fromEntries(this.acks);
  }

  /** The desired $version that set the current entry of a model key, if the twin has one. */
  modelVersionOf(key: string): number | null {
    return this.modelSeen.get(key)?.av ?? null;
  }

  /** Whether a full read is in flight (a read given up by readFailed is not). */
  get reading(): boolean {
    return this.reads > 0;
  }

  /** A full read of the twin starts: patches wait for its result. */
  beginRead(): void {
    this.reads++;
  }

  /**
   * A full read completed with this desired document (as the hub sent it). It replaces the held
   * one unless it is older; the patches that arrived meanwhile and are newer apply on top.
   */
  readCompleted(desired: Doc): void {
    this.reads = Math.max(0, this.reads - 1);
    const version = versionOfDoc(desired);
    if (this.held && version !== null && version < this.desiredVersion) {
      this.deps.logger.warn({ readVersion: version, heldVersion: this.desiredVersion }, 'module twin read is older than the desired properties in force; ignored');
    } else {
      this.held = structuredClone(desired);
      if (version !== null) this.desiredVersion = version;
    }
    this.replay();
  }

  /** A full read failed: the patches that waited for it apply to the document in force. */
  readFailed(): void {
    this.reads = Math.max(0, this.reads - 1);
    this.replay();
  }

  /** A desired patch (the delta the hub sent, with its `$version`). */
  patch(delta: Doc): void {
    const version = versionOfDoc(delta);
    if (version === null) {
      this.deps.logger.warn('desired patch without a $version ignored (its order cannot be known)');
      return;
    }
    if (this.reads > 0 || !this.held) {
      this.queued.push(structuredClone(delta));
      return;
    }
    if (!this.merge(delta, version)) return;
    this.reconcile(this.held);
  }

  private replay(): void {
    if (!this.held) return; // no read yet: the patches wait for one
    const queued = [...this.queued].sort((a, b) => versionOfDoc(a)! - versionOfDoc(b)!);
    if (this.reads === 0) this.queued = [];
    for (const delta of queued) this.merge(delta, versionOfDoc(delta)!);
    this.reconcile(this.held);
  }

  /** Merges a patch newer than the held document into it; false when it is not newer. */
  private merge(delta: Doc, version: number): boolean {
    if (!this.held || version <= this.desiredVersion) {
      this.deps.logger.debug({ patchVersion: version, heldVersion: this.desiredVersion }, 'desired patch already applied; ignored');
      return false;
    }
    mergePatch(this.held, structuredClone(delta));
    this.held.$version = version;
    this.desiredVersion = version;
    return true;
  }

  /** Reconciles the whole desired document in force. */
  private reconcile(desired: Doc): void {
    const version = this.desiredVersion;
    let settingsChanged = false;
    for (const name of SECTION_NAMES) settingsChanged = this.applySection(name, desired[name], version) || settingsChanged;
    if (settingsChanged) this.deps.applySettings(this.settings());
    this.applyModels(desired.models, version);
    this.refuseUnknown(desired, version);
    this.deps.changed();
  }

  private applySection(name: SectionName, raw: unknown, version: number): boolean {
    const text = json(raw);
    const before = this.sectionRaw.get(name);
    if (before === text) return false;
    this.sectionRaw.set(name, text);
    if (before === undefined && raw == null) return false; // never desired: nothing to acknowledge
    const parsed = parseSection(name, raw);
    const unknown = this.reportUnknownFields(name, parsed.unknown ?? []);
    if ('error' in parsed) {
      const reason = unknown ? `${unknown}; ${parsed.error}` : parsed.error;
      this.acks.set(name, { value: this.acks.get(name)?.value ?? null, ac: 400, av: version, ad: reason });
      this.deps.logger.warn({ section: name, reason }, 'desired setting refused; the last good value stays');
      return false;
    }
    this.sectionValues.set(name, parsed.values);
    const ad = raw == null ? 'reset to start-up values' : unknown ? `applied; ${unknown}` : 'applied';
    // 207, not 200: the section is in force but not all of it, so a fleet query on `ac <> 200` finds
    // the gateways that did not take a setting (an older agent, or a misspelt field) without reading `ad`.
    this.acks.set(name, { value: raw == null ? null : sectionValue(name, parsed.values), ac: unknown ? 207 : 200, av: version, ad });
    this.deps.logger.info({ section: name, values: parsed.values }, 'desired settings applied');
    return true;
  }

  /**
   * Logs a section's unknown fields (all of them) and gives the text its acknowledgement carries,
   * which names as many as MAX_UNKNOWN_ACKS leaves room for; '' when there are none. The section's
   * known fields apply all the same: a field of a newer agent version, set fleet-wide during a
   * staged roll-out, must not take the section's other settings from the older agents.
   */
  private reportUnknownFields(name: SectionName, unknown: string[]): string {
    this.unknownNamed.delete(name);
    if (unknown.length === 0) return '';
    const room = Math.max(0, MAX_UNKNOWN_ACKS - this.unknownAcknowledged());
    const named = unknown.slice(0, room);
    this.unknownNamed.set(name, named.length);
    const reported = unknownSettingsReason(name, named, unknown.length - named.length, MAX_UNKNOWN_ACKS);
    const all = unknownSettingsReason(name, unknown, 0, MAX_UNKNOWN_ACKS);
    this.deps.logger.warn({ code: 'PW_EDGE_TWIN_UNKNOWN_SETTING', section: name, settings: unknown, reported: named }, `desired settings not applied: ${all}`);
    return reported;
  }

  /**
   * Unknown desired keys acknowledged on the reported side now: top-level refusals (of `desired`
   * keys only, when given: a refusal of a key no longer desired is about to be cleared) and section fields.
   */
  private unknownAcknowledged(desired?: readonly string[]): number {
    let n = [...this.unknownRaw.keys()].filter((k) => (desired === undefined || desired.includes(k)) && this.acks.get(k)).length;
    for (const count of this.unknownNamed.values()) n += count;
    return n;
  }

  /**
   * Refuses every top-level desired key the agent does not read: without this, a misspelt section
   * was dropped without a word while a misspelt field inside a known one was refused. Logged once
   * per change; the refusal is cleared (null) when the key leaves the desired document.
   */
  private refuseUnknown(desired: Doc, version: number): void {
    const keys = Object.keys(desired).filter((k) => !k.startsWith('$') && !DESIRED_KEYS.includes(k));
    let acknowledged = this.unknownAcknowledged(keys);
    for (const key of keys) {
      const text = json(desired[key]);
      if (this.unknownRaw.get(key) === text) continue;
      this.unknownRaw.set(key, text);
      const reason = unknownSectionReason(key);
      // The agent's own reported properties keep their name: such a key is refused in the log only.
      // So are unknown keys past MAX_UNKNOWN_ACKS: their refusals could outgrow the 32 KB of the
      // reported document, and the hub would then refuse every acknowledgement with them.
      const own = AGENT_REPORTED_KEYS.includes(key);
      const room = Boolean(this.acks.get(key)) || acknowledged < MAX_UNKNOWN_ACKS;
      const reported = !own && room;
      if (reported && !this.acks.get(key)) acknowledged++;
      if (reported) this.acks.set(key, { value: null, ac: 400, av: version, ad: reason });
      const why = own || room ? '' : ` (acknowledged in the log only: more than ${MAX_UNKNOWN_ACKS} unknown keys are desired)`;
      this.deps.logger.warn({ code: 'PW_EDGE_TWIN_UNKNOWN_SECTION', section: key, reported }, `desired property refused: ${reason}${why}`);
    }
    for (const key of [...this.unknownRaw.keys()]) {
      if (keys.includes(key)) continue;
      this.unknownRaw.delete(key);
      if (this.acks.has(key)) this.acks.set(key, null);
    }
  }

  private settings(): Partial<Config> {
    const out: Partial<Config> = {};
    for (const name of SECTION_NAMES) {
      for (const key of Object.values(TWIN_SETTINGS[name])) (out as Record<string, unknown>)[key] = this.deps.startupSettings[key];
      Object.assign(out, this.sectionValues.get(name) ?? {});
    }
    return out;
  }

  private applyModels(raw: unknown, version: number): void {
    const parsed = parseModels(raw);
    if ('error' in parsed) {
      this.acks.set('modelsRefused', { value: null, ac: 400, av: version, ad: parsed.error });
      this.deps.logger.warn({ reason: parsed.error }, 'desired models refused; the current models stay');
      return;
    }
    if (this.acks.has('modelsRefused')) this.acks.set('modelsRefused', null);
    const next: Record<string, DesiredModel> = { ...parsed.entries };
    const rawModels = (raw ?? {}) as Record<string, unknown>;
    for (const key of Object.keys(rawModels)) {
      if (key.startsWith('$')) continue;
      const text = json(rawModels[key]);
      if (this.modelSeen.get(key)?.raw !== text) this.modelSeen.set(key, { raw: text, av: version });
    }
    for (const key of [...this.modelSeen.keys()]) if (!(key in rawModels) || rawModels[key] === null) this.modelSeen.delete(key);
    for (const [key, reason] of Object.entries(parsed.invalid)) {
      this.deps.models.markInvalid(key, reason, versionOf(rawModels[key]));
      this.deps.logger.warn({ model: key, reason }, 'desired model entry refused; the key keeps its current model');
    }
    this.deps.updater.setDesired(next, Object.keys(parsed.invalid));
  }
}

function versionOf(raw: unknown): string | null {
  const v = (raw as { version?: unknown } | null)?.version;
  return typeof v === 'string' ? v : null;
}

function versionOfDoc(doc: Doc): number | null {
  return typeof doc.$version === 'number' ? doc.$version : null;
}

/** JSON merge patch as twins apply it: objects merge recursively, null deletes, anything else replaces. */
function mergePatch(target: Doc, patch: Doc): void {
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete target[key];
    else if (isObject(value)) {
      const child = isObject(target[key]) ? (target[key] as Doc) : {};
      mergePatch(child, value);
      target[key] = child;
    } else target[key] = value;
  }
}

/** A JSON object (not null, not an array): a twin section or entry. */
export function isObject(value: unknown): value is Doc {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
