import { readFile } from 'node:fs/promises';
import { DEFAULT_MODEL_KEY, type InferenceEngine } from './engine.js';
import { LoadedModel } from './model.js';

export type ModelStatusName = 'downloading' | 'active' | 'rejected' | 'rolled-back' | 'shadow';

/** What `/status` and the module twin's reported properties show per pump (and `default`). */
export interface ModelStatus {
  version: string | null;
  status: ModelStatusName;
  since: string;
  error: string | null;
  features: string[] | null;
  window: number | null;
  threshold: number | null;
  algorithm: string | null;
  /** Where the active model came from: `bundled`, a store path, a URL without its query. */
  origin: string | null;
}

/**
 * Which model scores which pump, and its status. Swaps go through the engine (effective from the
 * next micro-batch); the old session is released only after the batch in flight has finished.
 */
export class ModelManager {
  private readonly states = new Map<string, ModelStatus>();

  constructor(
    private readonly deps: {
      engine: InferenceEngine;
      /** Resolves when the micro-batch in flight (if any) is done (IngestPipeline.afterCurrentBatch). */
      afterCurrentBatch: () => Promise<void>;
      clock?: () => number;
    },
  ) {}

  /** Loads the model file bundled with the agent as `default` unless a default is active already. */
  async loadBundledDefault(path: string): Promise<void> {
    if (this.deps.engine.model(DEFAULT_MODEL_KEY)) return;
    const model = await LoadedModel.fromBytes(await readFile(path), 'bundled');
    await this.swap(DEFAULT_MODEL_KEY, model);
  }

  /** Makes `model` the live model of `key` and releases the one it replaces once no batch uses it. */
  async swap(key: string, model: LoadedModel): Promise<void> {
    const old = this.deps.engine.model(key);
    this.deps.engine.setModel(key, model);
    this.setStatus(key, model, 'active', null);
    if (old && old !== model) {
      await this.deps.afterCurrentBatch();
      await old.release();
    }
  }

  setStatus(key: string, model: LoadedModel | null, status: ModelStatusName, error: string | null, version?: string): void {
    const m = model?.meta;
    this.states.set(key, {
      version: version ?? m?.version ?? null,
      status,
      since: new Date((this.deps.clock ?? Date.now)()).toISOString(),
      error,
      features: m?.features ?? null,
      window: m?.window ?? null,
      threshold: m?.threshold ?? null,
      algorithm: m?.algorithm ?? null,
      origin: model?.origin ?? null,
    });
  }

  status(): Record<string, ModelStatus> {
    return Object.fromEntries(this.states);
  }

  /** At least one live model (readiness). */
  ready(): boolean {
    return this.deps.engine.keys().length > 0;
  }

  async releaseAll(): Promise<void> {
    await this.deps.afterCurrentBatch();
    for (const key of this.deps.engine.keys()) {
      const m = this.deps.engine.model(key);
      this.deps.engine.setModel(key, null);
      await m?.release();
    }
  }
}
