import { rulesOf, type ContractVersion, type ModelRule } from './contract.js';
import type { LoadedModel } from './model.js';

export type ModelStatusName = 'downloading' | 'active' | 'rejected' | 'rolled-back' | 'shadow';

/** What `/status` and the module twin's reported properties show per pump (and `default`). */
export interface ModelStatus {
  /** The desired entry's version this status is about (or the bundled model's). */
  version: string | null;
  status: ModelStatusName;
  since: string;
  error: string | null;
  features: string[] | null;
  window: number | null;
  threshold: number | null;
  algorithm: string | null;
  /** The model's contract (1 or 2), and for contract 2 the rules it requires of an agent (`pumpwatch.requires`); null for contract 1. */
  contract: ContractVersion | null;
  requires: ModelRule[] | null;
  /** Where the active model came from: `bundled`, a store path, a URL without its query. */
  origin: string | null;
  /** The version scoring this key now (differs from `version` while downloading, after a refusal or rollback). */
  activeVersion?: string | null;
  /** A model scoring beside the live one (scores stored, never alerted), if any. */
  shadow?: ModelStatus | null;
}

/** The status of each key's live model and of its shadow, as last set. */
export class ModelStatusBoard {
  private readonly live = new Map<string, ModelStatus>();
  private readonly shadows = new Map<string, ModelStatus>();

  constructor(private readonly clock: () => number = Date.now) {}

  get(key: string, shadow = false): ModelStatus | undefined {
    return (shadow ? this.shadows : this.live).get(key);
  }

  set(key: string, shadow: boolean, model: LoadedModel | null, status: ModelStatusName, error: string | null, version: string | undefined, activeVersion: string | null): void {
    const m = model?.meta;
    (shadow ? this.shadows : this.live).set(key, {
      version: version ?? m?.version ?? null,
      status,
      since: new Date(this.clock()).toISOString(),
      error,
      features: m?.features ?? null,
      window: m?.window ?? null,
      threshold: m?.threshold ?? null,
      algorithm: m?.algorithm ?? null,
      contract: m?.contract ?? null,
      requires: m?.contract === 2 ? rulesOf(m) : null,
      origin: model?.origin ?? null,
      activeVersion,
    });
  }

  delete(key: string, shadow = false): void {
    (shadow ? this.shadows : this.live).delete(key);
  }

  shadowKeys(): string[] {
    return [...this.shadows.keys()];
  }

  /** Every key with a live or shadow status. */
  keys(): string[] {
    return [...new Set([...this.live.keys(), ...this.shadows.keys()])];
  }

  /**
   * Per key: the live status with its shadow. A key with only a shadow (a pump scored by `default`)
   * shows the shadow's own state: `shadow` when it runs, else `downloading` or `rejected`.
   */
  all(): Record<string, ModelStatus> {
    const out: Record<string, ModelStatus> = {};
    for (const [key, s] of this.live) out[key] = { ...s, shadow: this.shadows.get(key) ?? null };
    for (const [key, s] of this.shadows) out[key] ??= { ...s, activeVersion: null, shadow: s };
    return out;
  }
}
