/**
 * Pushing a model to gateways: the desired property `models.<source>` of the PumpWatch module
 * twin (DESIGN.md "Module twin"), on one module or on every module a twin query finds. Each
 * update is conditional on the twin's ETag (read first) and retried when the twin changed in
 * between, so settings written by others at the same time are never lost. Twin patches merge
 * (null deletes a key), so a live deploy after a shadow one sends `shadow: null`.
 */
import type { TwinDocument, TwinRegistry } from '../cloud/context.js';
import { safeErrorMessage } from '../../sync/redact.js';
import { TrainerError } from '../errors.js';
import { DESIRED_LIMIT_BYTES, isObject, merged, twinSize } from './twin-size.js';

export interface DesiredModelEntry {
  version: string;
  url: string;
  sha256: string;
  size: number;
  /** true: a shadow model; null removes the flag of an earlier shadow deploy (merge patch). */
  shadow: boolean | null;
}

export interface ModuleRef {
  deviceId: string;
  moduleId: string;
}

export const DEFAULT_MODULE = 'pumpwatch';
/**
 * Conditional updates of one module twin tried before a deploy gives up on a twin that keeps
 * changing. Writers race on one twin: the pods of a train-all Job (4 × --concurrency 2 in the
 * manifest) deploying pumps of the same gateway, and the agent's own reported properties, which
 * move the ETag too. Three tries at once lost to four concurrent writers; the waits between tries
 * (CONFLICT_WAIT_MS) grow and are drawn at random, so racing writers fall apart.
 */
const ATTEMPTS = 10;
/** The longest wait before the next try: about 50 ms, then doubling (drawn at random up to it), at most 2 s. */
const CONFLICT_WAIT_MS = (attempt: number): number => Math.min(2000, 50 * 2 ** (attempt - 1));
const waitBeforeTry = (attempt: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.random() * CONFLICT_WAIT_MS(attempt)));

const quote = (text: string) => `'${text.replaceAll("'", "''")}'`;
const escapeName = (text: string) => `[[${text.replaceAll(']]', '')}]]`;

/** Devices named in the default query at most (a pump is usually served by one or two). */
const MAX_DEVICES_IN_QUERY = 50;

/**
 * The modules of `moduleId` that serve the source: those that report it in their twin (a model of
 * their own in `properties.reported.models`, or the pump in `properties.reported.pumps`), and
 * those on the devices whose uploads carry the pump's readings (`devices`, from model.json). For
 * `default`: every module of that name.
 */
export function defaultQuery(source: string, moduleId = DEFAULT_MODULE, devices: readonly string[] = []): string {
  const mod = `moduleId = ${quote(moduleId)}`;
  if (source === 'default') return `SELECT * FROM devices.modules WHERE ${mod}`;
  const clauses = [
    `IS_DEFINED(properties.reported.models.${escapeName(source)})`,
    `ARRAY_CONTAINS(properties.reported.pumps, ${quote(source)})`,
    ...devices.slice(0, MAX_DEVICES_IN_QUERY).map((d) => `deviceId = ${quote(d)}`),
  ];
  return `SELECT * FROM devices.modules WHERE ${mod} AND (${clauses.join(' OR ')})`;
}

/** Every module of `moduleId` whose desired properties hold `models` (refresh-urls). */
export function modelsQuery(moduleId = DEFAULT_MODULE): string {
  return `SELECT * FROM devices.modules WHERE moduleId = ${quote(moduleId)} AND IS_DEFINED(properties.desired.models)`;
}

/** The twins a query finds, page by page (a fleet's twins are never all held at once). */
export async function* queryTwins(registry: TwinRegistry, sql: string): AsyncGenerator<TwinDocument> {
  let query;
  try {
    query = registry.createQuery(sql, 100);
  } catch (err) {
    throw new TrainerError('PW_TRAINER_DEPLOY', `twin query failed: ${safeErrorMessage(err)}`, { cause: err });
  }
  while (query.hasMoreResults) {
    let page: TwinDocument[];
    try {
      page = (await query.nextAsTwin()).result;
    } catch (err) {
      throw new TrainerError('PW_TRAINER_DEPLOY', `twin query failed: ${safeErrorMessage(err)}`, { cause: err });
    }
    yield* page;
  }
}

export async function findModules(registry: TwinRegistry, sql: string): Promise<ModuleRef[]> {
  const found: ModuleRef[] = [];
  for await (const twin of queryTwins(registry, sql)) if (twin.moduleId) found.push({ deviceId: twin.deviceId, moduleId: twin.moduleId });
  return found.sort((a, b) => `${a.deviceId}/${a.moduleId}`.localeCompare(`${b.deviceId}/${b.moduleId}`));
}

/** The modules a command acts on: the one named, or those a query finds. */
export type ModuleTarget = { module: ModuleRef } | { query: string; moduleId?: string };

/**
 * The modules of a target: the one named, or those the query finds, filtered to `moduleId` when
 * given (`--query … --module M`); `skipped` counts the modules the query found that are not it.
 */
export async function targetModules(registry: TwinRegistry, target: ModuleTarget): Promise<{ modules: ModuleRef[]; skipped: number; moduleFilter: string | null }> {
  if ('module' in target) return { modules: [target.module], skipped: 0, moduleFilter: null };
  const found = await findModules(registry, target.query);
  const filter = target.moduleId ?? null;
  const modules = filter === null ? found : found.filter((m) => m.moduleId === filter);
  return { modules, skipped: found.length - modules.length, moduleFilter: filter };
}

/** A twin's desired `models` section ({} when it has none). */
export function desiredModels(twin: TwinDocument): Record<string, unknown> {
  const models = twin.properties?.desired?.['models'];
  return isObject(models) ? models : {};
}

/**
 * Refuses, before anything is written, a patch that would grow the desired properties of `target`
 * past IoT Hub's 32 KB (the hub would refuse it too, with an error that names neither the cause
 * nor the way out). As the hub, a patch that does not grow an oversized section is let through.
 */
function checkDesiredSize(twin: TwinDocument, target: ModuleRef, patch: Record<string, unknown>): void {
  const desired = twin.properties?.desired ?? {};
  const after = merged(desired, { models: patch });
  const size = twinSize(after);
  if (size <= DESIRED_LIMIT_BYTES || size <= twinSize(desired)) return;
  const entries = Object.values(desiredModels(twin)).filter(isObject).length;
  const keys = Object.keys(patch).map((k) => `models.${k}`).join(', ');
  throw new TrainerError(
    'PW_TRAINER_TWIN_FULL',
    `${keys} was not written to ${target.deviceId}/${target.moduleId}: its desired properties would be ${size} bytes, over IoT Hub's limit of ${DESIRED_LIMIT_BYTES} bytes; ` +
      `${entries} model entries take ${twinSize({ models: desiredModels(twin) })} bytes of them. Remove the entries of pumps the gateway no longer serves: ` +
      `pumpwatch-trainer undeploy --source <pump> --device ${target.deviceId} --module ${target.moduleId}`,
  );
}

/**
 * One conditional update of the desired `models` of a module twin: `plan` makes the patch from
 * the twin as read (null: nothing to write), the size is checked, and the update is conditional
 * on that read's ETag; when the twin changed in between, it is read again and planned again.
 * `plan` sees the whole twin too (deploy checks what its agent reads).
 * `first`: the twin as a query already returned it (saves a read). Returns the desired
 * `$version` after the update, or `unchanged` when `plan` found nothing to write.
 */
export async function patchDesiredModels(
  registry: TwinRegistry,
  target: ModuleRef,
  plan: (models: Record<string, unknown>, twin: TwinDocument) => Record<string, unknown> | null,
  first?: TwinDocument,
): Promise<number | null | 'unchanged'> {
  const name = `${target.deviceId}/${target.moduleId}`;
  for (let attempt = 1; ; attempt++) {
    let twin: TwinDocument;
    try {
      twin = attempt === 1 && first ? first : (await registry.getModuleTwin(target.deviceId, target.moduleId)).responseBody;
    } catch (err) {
      throw new TrainerError('PW_TRAINER_DEPLOY', `updating the twin of ${name} failed: ${safeErrorMessage(err)}`, { cause: err });
    }
    const patch = plan(desiredModels(twin), twin);
    if (patch === null) return 'unchanged';
    checkDesiredSize(twin, target, patch);
    try {
      const updated = (await registry.updateModuleTwin(target.deviceId, target.moduleId, { properties: { desired: { models: patch } } }, twin.etag)).responseBody;
      const version = updated.properties?.desired?.['$version'];
      return typeof version === 'number' ? version : null;
    } catch (err) {
      const errName = (err as { name?: string }).name;
      if ((errName === 'InvalidEtagError' || errName === 'PreconditionFailedError') && attempt < ATTEMPTS) {
        await waitBeforeTry(attempt);
        continue;
      }
      throw new TrainerError('PW_TRAINER_DEPLOY', `updating the twin of ${name} failed: ${safeErrorMessage(err)}`, { cause: err });
    }
  }
}

/**
 * Sets `models.<key>` on one module twin; returns the desired `$version` after the update.
 * `check` sees each twin read before its update and throws to leave the twin as it is.
 */
export async function setDesiredModel(registry: TwinRegistry, target: ModuleRef, key: string, entry: DesiredModelEntry, check?: (twin: TwinDocument) => void): Promise<number | null> {
  const version = await patchDesiredModels(registry, target, (_models, twin) => {
    check?.(twin);
    return { [key]: entry };
  });
  return version === 'unchanged' ? null : version;
}

/** Deletes `models.<key>` from one module twin (merge patch null); `absent` when the twin has no such entry. */
export async function removeDesiredModel(registry: TwinRegistry, target: ModuleRef, key: string): Promise<number | null | 'absent'> {
  const version = await patchDesiredModels(registry, target, (models) => (models[key] === undefined || models[key] === null ? null : { [key]: null }));
  return version === 'unchanged' ? 'absent' : version;
}
