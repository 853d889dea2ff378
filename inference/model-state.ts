/**
 * Which model each key (pump or `default`) runs, persisted in the buffer's meta table so a restart
 * without network comes back on the same models, and so a model that was refused or rolled back
 * is not tried again until the cloud asks for a different one.
 */

/** A model the agent can go back to. */
export type PreviousModel =
  | { kind: 'store'; version: string; sha256: string }
  /** The model bundled with the agent (only for `default`). */
  | { kind: 'bundled' }
  /** The pump had no model of its own: going back means falling back to `default`. */
  | { kind: 'none' };

export interface LiveRecord {
  /** The desired entry's version (what /status and the twin show). */
  version: string;
  sha256: string;
  previous: PreviousModel;
  /** `gateway`: a first model fitted on this gateway (agent/first-model), never the fallback of the model that replaces it. */
  origin?: 'gateway';
}

export interface ShadowRecord {
  version: string;
  sha256: string;
}

export interface RefusedRecord {
  version: string;
  sha256: string;
  status: 'rejected' | 'rolled-back';
  reason: string;
  /**
   * Set for a refused download: the agent's download settings and a hash of the URL it was refused
   * under (the name is older than the URL's part); the refusal holds only while both stay these.
   */
  limits?: string;
  /** The refused entry was a shadow model (absent: the live entry; older records: see restore). */
  shadow?: true;
}

export interface PersistedModels {
  live: Record<string, LiveRecord>;
  shadow: Record<string, ShadowRecord>;
  refused: Record<string, RefusedRecord>;
}

/** Small key/value state that survives restarts (BufferStore.getMeta/setMeta). */
export interface KeyValueStore {
  getMeta(key: string): string | null;
  setMeta(key: string, value: string): void;
}

/**
 * A KeyValueStore that writes several keys in one transaction (BufferStore.setMetas): state kept
 * under two keys that must agree (the alerts' pending list and the alarms it raised) is never left
 * half written by a kill or a failed write.
 */
export interface AtomicKeyValueStore extends KeyValueStore {
  setMetas(entries: ReadonlyArray<readonly [key: string, value: string]>): void;
}

export const MODELS_META_KEY = 'models.state';

export function emptyState(): PersistedModels {
  return { live: {}, shadow: {}, refused: {} };
}

/** Reads the persisted state; a missing or unreadable value gives an empty state (the bundled model runs). */
export function loadState(kv: KeyValueStore): PersistedModels {
  const text = kv.getMeta(MODELS_META_KEY);
  if (text === null) return emptyState();
  try {
    const parsed = JSON.parse(text) as Partial<PersistedModels>;
    return { live: parsed.live ?? {}, shadow: parsed.shadow ?? {}, refused: parsed.refused ?? {} };
  } catch {
    return emptyState();
  }
}

export function saveState(kv: KeyValueStore, state: PersistedModels): void {
  kv.setMeta(MODELS_META_KEY, JSON.stringify(state));
}
