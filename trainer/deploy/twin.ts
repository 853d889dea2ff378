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
const ATTEMPTS = 3;

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

export async function findModules(registry: TwinRegistry, sql: string): Promise<ModuleRef[]> {
  const found: ModuleRef[] = [];
  try {
    const query = registry.createQuery(sql, 100);
    while (query.hasMoreResults) {
      const { result } = await query.nextAsTwin();
      for (const twin of result) if (twin.moduleId) found.push({ deviceId: twin.deviceId, moduleId: twin.moduleId });
    }
  } catch (err) {
    throw new TrainerError('PW_TRAINER_DEPLOY', `twin query failed: ${safeErrorMessage(err)}`, { cause: err });
  }
  return found.sort((a, b) => `${a.deviceId}/${a.moduleId}`.localeCompare(`${b.deviceId}/${b.moduleId}`));
}

/** Sets `models.<key>` on one module twin; returns the desired `$version` after the update. */
export async function setDesiredModel(registry: TwinRegistry, target: ModuleRef, key: string, entry: DesiredModelEntry): Promise<number | null> {
  const patch = { properties: { desired: { models: { [key]: entry } } } };
  for (let attempt = 1; ; attempt++) {
    let twin: TwinDocument;
    try {
      twin = (await registry.getModuleTwin(target.deviceId, target.moduleId)).responseBody;
      const updated = (await registry.updateModuleTwin(target.deviceId, target.moduleId, patch, twin.etag)).responseBody;
      const version = updated.properties?.desired?.['$version'];
      return typeof version === 'number' ? version : null;
    } catch (err) {
      const name = (err as { name?: string }).name;
      if ((name === 'InvalidEtagError' || name === 'PreconditionFailedError') && attempt < ATTEMPTS) continue;
      throw new TrainerError('PW_TRAINER_DEPLOY', `updating the twin of ${target.deviceId}/${target.moduleId} failed: ${safeErrorMessage(err)}`, { cause: err });
    }
  }
}
