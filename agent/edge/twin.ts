/**
 * Applies the module twin's desired properties. The SDK keeps the merged desired document
 * (`twin.properties.desired`), so every event (the whole twin after a (re)connect, or a patch)
 * is handled the same way: the whole document is reconciled, which makes a change made while
 * offline apply exactly like a live one. Each changed section is acknowledged (ac/av/ad); an
 * invalid one is refused with its reason and the last good settings stay.
 */
import type { ModelManager } from '../../inference/models.js';
import type { DesiredModel, ModelUpdater } from '../../inference/updater.js';
import { TWIN_SETTINGS, type Config } from '../config.js';
import type { Logger } from '../logger.js';
import { SECTION_NAMES, parseModels, parseSection, type SectionName } from './desired.js';

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

export class TwinSync {
  private readonly sectionRaw = new Map<SectionName, string>();
  private readonly sectionValues = new Map<SectionName, Partial<Config>>();
  private readonly acks = new Map<string, Ack | null>();
  /** Per model key: the entry last seen and the desired $version that set it. */
  private readonly modelSeen = new Map<string, { raw: string; av: number }>();
  private desiredVersion = 0;

  constructor(private readonly deps: TwinSyncDeps) {}

  /** The desired `$version` last applied. */
  get version(): number {
    return this.desiredVersion;
  }

  /**
   * Acknowledgements of the setting sections, and `modelsRefused` when the `models` section is not
   * even an object (per-key results are reported under `models`; null clears an earlier refusal).
   */
  sectionAcks(): Record<string, Ack | null> {
    return Object.fromEntries(this.acks);
  }

  /** The desired $version that set the current entry of a model key, if the twin has one. */
  modelVersionOf(key: string): number | null {
    return this.modelSeen.get(key)?.av ?? null;
  }

  /** Reconciles the whole desired document. */
  apply(desired: Record<string, unknown>): void {
    const version = typeof desired.$version === 'number' ? desired.$version : this.desiredVersion;
    this.desiredVersion = version;
    let settingsChanged = false;
    for (const name of SECTION_NAMES) settingsChanged = this.applySection(name, desired[name], version) || settingsChanged;
    if (settingsChanged) this.deps.applySettings(this.settings());
    this.applyModels(desired.models, version);
    this.deps.changed();
  }

  private applySection(name: SectionName, raw: unknown, version: number): boolean {
    const text = json(raw);
    const before = this.sectionRaw.get(name);
    if (before === text) return false;
    this.sectionRaw.set(name, text);
    if (before === undefined && raw == null) return false; // never desired: nothing to acknowledge
    const parsed = parseSection(name, raw);
    if ('error' in parsed) {
      this.acks.set(name, { value: this.acks.get(name)?.value ?? null, ac: 400, av: version, ad: parsed.error });
      this.deps.logger.warn({ section: name, reason: parsed.error }, 'desired setting refused; the last good value stays');
      return false;
    }
    this.sectionValues.set(name, parsed.values);
    // A copy: the SDK merges later patches into the same desired objects.
    this.acks.set(name, { value: JSON.parse(text) as unknown, ac: 200, av: version, ad: raw == null ? 'reset to start-up values' : 'applied' });
    this.deps.logger.info({ section: name, values: parsed.values }, 'desired settings applied');
    return true;
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
