/**
 * `refresh-urls`: new read-only URLs for the desired model entries whose SAS expires soon or has
 * expired. `deploy` signs each URL for a limited time (sas.ts) and its pending mark is cleared
 * once the twin is written, so without this a gateway offline longer than that lifetime comes
 * back to a URL that answers 403, and nothing ever signs it again.
 *
 * Only the `url` of an entry is patched (version, sha256, size and shadow stay), conditional on
 * the twin's ETag, and only for a URL of this trainer's own account and container that names the
 * registry's model blob of that entry (models/<key>/<version>/model.onnx): signing whatever blob a
 * twin names would hand out read access to any blob of the container to whoever can write twins.
 * And only when that blob still holds the model the entry names: its bytes are streamed and hashed
 * as `deploy` does (registry/model-blob.ts hashModelBlob), against the entry's size and sha256,
 * which every gateway checks its download against. A blob overwritten since the deploy would be
 * downloaded by every gateway and refused; its entry fails instead, its URL left as it is.
 * A URL is a secret: results name the blob, or a foreign URL without its query, never a query.
 */
import type { ContainerClient } from '@azure/storage-blob';
import type { TwinDocument, TwinRegistry } from '../cloud/context.js';
import { modelBlobName } from '../../sync/layout.js';
import { safeErrorMessage } from '../../sync/redact.js';
import { failureCode, failureDetail, TrainerError } from '../errors.js';
import { hashModelBlob, type ModelBlobContent } from '../registry/model-blob.js';
import { readOnlyUrl } from './sas.js';
import { desiredModels, patchDesiredModels, queryTwins, type ModuleRef, type ModuleTarget } from './twin.js';

export interface RefreshOptions {
  now: Date;
  /** Entries whose URL expires within this many ms from `now` (or has expired) are refreshed. */
  withinMs: number;
  /** Expiry of the new URLs. */
  expiresOn: Date;
  /**
   * URLs of containers the registry was moved out of (the uploads' container, where it was before
   * 2026-12-07): a URL of a registry blob there is signed again for the registry's own container,
   * whatever its expiry, once its blob there is checked against the entry, as any other.
   */
  formerContainers?: readonly string[];
}

export interface RefreshResult extends ModuleRef {
  key: string;
  outcome: 'refreshed' | 'skipped' | 'failed';
  detail: string;
}

export interface RefreshSummary {
  modules: number;
  results: RefreshResult[];
  /** Entries whose URL is valid beyond the window, or has no SAS expiry: left as they are. */
  notExpiring: number;
}

/** A URL without its query and fragment: safe to print. */
const withoutQuery = (url: URL): string => `${url.origin}${url.pathname}`;

type Plan = { kind: 'current' } | { kind: 'skip'; detail: string } | { kind: 'refresh'; url: string; blob: string; expires: string; version: string; sha256: string; size: number };

/** Model blobs hashed in this run, by size expected and name: a model deployed to a whole fleet is read once, not once per gateway. */
type Hashes = Map<string, Promise<ModelBlobContent>>;

/** What to do with one desired entry: leave it (not expiring), skip it (and say why), or refresh its URL. */
function planEntry(container: ContainerClient, key: string, value: unknown, opts: RefreshOptions): Plan {
  if (typeof value !== 'object' || value === null) return { kind: 'current' };
  const entry = value as { url?: unknown; version?: unknown; sha256?: unknown; size?: unknown };
  if (typeof entry.url !== 'string') return { kind: 'current' };
  let url: URL;
  try {
    url = new URL(entry.url);
  } catch {
    return { kind: 'skip', detail: 'its url is not a URL; left as it is' };
  }
  const se = url.searchParams.get('se');
  if (se === null) return { kind: 'current' };
  const expiresAt = Date.parse(se);
  if (Number.isNaN(expiresAt)) return { kind: 'skip', detail: `${withoutQuery(url)}: its SAS expiry (se) is not a date; left as it is` };
  const own = new URL(container.url);
  const prefixOf = (c: URL) => `${c.pathname.replace(/\/$/, '')}/`;
  const inside = (c: URL) => url.origin === c.origin && url.pathname.startsWith(prefixOf(c));
  // the registry's own container, or one it was moved out of (its blob names kept): a URL there is
  // signed again whatever its expiry, so the old copy can be deleted after one run
  const home = [own, ...(opts.formerContainers ?? []).map((c) => new URL(c))].find(inside);
  if (expiresAt - opts.now.getTime() > opts.withinMs && !(home !== undefined && home !== own)) return { kind: 'current' };
  const expires = new Date(expiresAt).toISOString();
  const when = expiresAt <= opts.now.getTime() ? `expired ${expires}` : `expires ${expires}`;
  if (home === undefined) {
    return { kind: 'skip', detail: `${withoutQuery(url)} (${when}) is not in this trainer's container ${withoutQuery(own)}: it cannot sign it; left as it is` };
  }
  const prefix = prefixOf(home);
  let blob: string;
  try {
    blob = decodeURIComponent(url.pathname.slice(prefix.length));
  } catch {
    return { kind: 'skip', detail: `${withoutQuery(url)} (${when}): its path is not a blob name; left as it is` };
  }
  const registryBlob = typeof entry.version === 'string' ? modelBlobName(key, entry.version, 'model.onnx') : null;
  if (blob !== registryBlob || typeof entry.version !== 'string') {
    return { kind: 'skip', detail: `${blob} (${when}) is not the registry's model of this entry (${registryBlob ?? 'no version'}): only those are signed again; deploy the model instead` };
  }
  // The agent's rule for an entry (agent/edge/desired.ts): without these, no gateway takes it, and its model cannot be checked.
  const { sha256, size } = entry;
  if (typeof sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(sha256) || typeof size !== 'number' || !Number.isInteger(size) || size <= 0) {
    return { kind: 'skip', detail: `${blob} (${when}): the entry has no sha256 (64 hex digits) and size (bytes) a gateway accepts, so its model cannot be checked; left as it is: deploy the model instead` };
  }
  return { kind: 'refresh', url: entry.url, blob, expires: when, version: entry.version, sha256: sha256.toLowerCase(), size };
}

/**
 * Why the entry's model blob is not the model the entry names, or null when it is: it exists with
 * the entry's size, and its bytes hash to the entry's sha256. Gone is PW_TRAINER_NO_MODEL, as for
 * deploy (checkModelBlob); other bytes are PW_TRAINER_ENTRY_MISMATCH, not REGISTRY_INVALID: the
 * entry is checked, not model.json, and it may be the entry that was edited.
 */
async function refusal(container: ContainerClient, key: string, plan: Extract<Plan, { kind: 'refresh' }>, hashes: Hashes): Promise<TrainerError | null> {
  const id = `${plan.size} ${plan.blob}`;
  let hashing = hashes.get(id);
  if (hashing === undefined) hashes.set(id, (hashing = hashModelBlob(container, plan.blob, plan.size)));
  const content = await hashing;
  if (content.kind === 'missing') return new TrainerError('PW_TRAINER_NO_MODEL', `${plan.blob} (${plan.expires}) is no longer in the registry: deploy another version of ${key}`);
  const wrong =
    content.kind === 'length' ? `it has ${String(content.length)} bytes, the entry says ${plan.size}` : content.sha256 !== plan.sha256 ? `its bytes hash to ${content.sha256}, the entry's sha256 is ${plan.sha256}` : null;
  if (wrong === null) return null;
  return new TrainerError(
    'PW_TRAINER_ENTRY_MISMATCH',
    `${plan.blob} (${plan.expires}): version ${plan.version} of ${key} is not the model of this entry: ${wrong} (the blob was overwritten since the deploy, or the entry edited); ` +
      `every gateway would refuse it, so its URL is not signed again: deploy another version of ${key}`,
  );
}

/**
 * Refreshes the expiring URLs of one module twin (as a query or a read returned it): checks each
 * entry's model blob (refusal) and signs a new URL for it, then patches them in one update,
 * conditional on the twin's ETag. When the twin changed meanwhile it is read again, and an entry
 * whose URL changed since is left as it is. `hashes`: the blobs already hashed in this run.
 */
export async function refreshModule(
  container: ContainerClient,
  registry: TwinRegistry,
  twin: TwinDocument,
  opts: RefreshOptions,
  hashes: Hashes = new Map(),
): Promise<{ results: RefreshResult[]; notExpiring: number }> {
  const target: ModuleRef = { deviceId: twin.deviceId, moduleId: twin.moduleId ?? '' };
  const results: RefreshResult[] = [];
  const result = (key: string, outcome: RefreshResult['outcome'], detail: string) => results.push({ ...target, key, outcome, detail });
  let notExpiring = 0;
  const signed = new Map<string, { old: string; url: string; detail: string }>();
  const models = desiredModels(twin);
  for (const key of Object.keys(models).sort()) {
    if (key.startsWith('$')) continue;
    const plan = planEntry(container, key, models[key], opts);
    if (plan.kind === 'current') notExpiring++;
    else if (plan.kind === 'skip') result(key, 'skipped', plan.detail);
    else {
      try {
        const refused = await refusal(container, key, plan, hashes);
        if (refused !== null) {
          result(key, 'failed', failureDetail(refused, refused.code));
          continue;
        }
        const url = await readOnlyUrl(container, plan.blob, opts.expiresOn);
        signed.set(key, { old: plan.url, url, detail: `${plan.blob}: URL valid until ${opts.expiresOn.toISOString()} (it ${plan.expires})` });
      } catch (err) {
        // Reading the blob (PW_TRAINER_STORAGE) or signing its URL (PW_TRAINER_NOT_CONFIGURED) failed.
        result(key, 'failed', `${failureCode(err, 'PW_TRAINER_STORAGE')}: ${plan.blob}: ${safeErrorMessage(err)}`);
      }
    }
  }
  if (signed.size === 0) return { results, notExpiring };
  // Patched: the entries whose URL is still the one signed anew (a deploy meanwhile wins).
  let patched = new Set<string>();
  try {
    const version = await patchDesiredModels(
      registry,
      target,
      (now) => {
        patched = new Set([...signed].filter(([key, s]) => (now[key] as { url?: unknown } | null | undefined)?.url === s.old).map(([key]) => key));
        return patched.size === 0 ? null : Object.fromEntries([...patched].map((key) => [key, { url: signed.get(key)!.url }]));
      },
      twin,
    );
    for (const [key, s] of signed) {
      if (patched.has(key)) result(key, 'refreshed', `${s.detail}${typeof version === 'number' ? `, $version ${version}` : ''}`);
      else result(key, 'skipped', 'the entry changed while its URL was being signed (a deploy meanwhile); left as it is');
    }
  } catch (err) {
    for (const key of signed.keys()) result(key, 'failed', failureDetail(err, 'PW_TRAINER_DEPLOY'));
  }
  results.sort((a, b) => a.key.localeCompare(b.key));
  return { results, notExpiring };
}

/**
 * Refreshes the expiring URLs of one module (`module`), or of the modules one twin query finds
 * (`query`, its results filtered to `moduleId` when given). Calls `each` with the results of
 * every module as it is done.
 */
export async function refreshUrls(
  container: ContainerClient,
  registry: TwinRegistry,
  target: ModuleTarget,
  opts: RefreshOptions,
  each: (results: RefreshResult[]) => void,
): Promise<RefreshSummary> {
  const summary: RefreshSummary = { modules: 0, results: [], notExpiring: 0 };
  const hashes: Hashes = new Map();
  const one = async (twin: TwinDocument) => {
    const { results, notExpiring } = await refreshModule(container, registry, twin, opts, hashes);
    summary.modules++;
    summary.notExpiring += notExpiring;
    summary.results.push(...results);
    each(results);
  };
  if ('module' in target) {
    const { deviceId, moduleId } = target.module;
    let twin: TwinDocument;
    try {
      twin = (await registry.getModuleTwin(deviceId, moduleId)).responseBody;
    } catch (err) {
      throw new TrainerError('PW_TRAINER_DEPLOY', `cannot read the twin of ${deviceId}/${moduleId}: ${safeErrorMessage(err)}`, { cause: err });
    }
    await one({ ...twin, deviceId, moduleId });
    return summary;
  }
  for await (const twin of queryTwins(registry, target.query)) {
    if (!twin.moduleId || (target.moduleId !== undefined && twin.moduleId !== target.moduleId)) continue;
    await one(twin);
  }
  return summary;
}
