/** JSON values as twins hold them, and IoT Hub's rules for twin patches. */
import { LocalHubError } from './errors.js';

export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

/** IoT Hub refuses twin keys with `.`, `$`, a space or a control character, and nesting over 10 levels. */
const BAD_KEY = /[.$ \u0000-\u001f\u007f-\u009f]/;
const MAX_DEPTH = 10;

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function deepCopy<T extends Json>(value: T): T {
  return structuredClone(value);
}

/** Throws PW_LOCALHUB_BAD_PATCH naming the offending path when `patch` is not a valid twin patch. */
export function validatePatch(patch: unknown, where: string): JsonObject {
  if (!isJsonObject(patch)) {
    throw new LocalHubError('PW_LOCALHUB_BAD_PATCH', `${where}: a patch must be a JSON object`);
  }
  checkObject(patch, where, 1);
  return patch;
}

function checkObject(obj: JsonObject, path: string, depth: number): void {
  if (depth > MAX_DEPTH) {
    throw new LocalHubError('PW_LOCALHUB_BAD_PATCH', `${path}: nested deeper than ${MAX_DEPTH} levels`);
  }
  for (const [key, value] of Object.entries(obj)) {
    if (key.length === 0 || BAD_KEY.test(key)) {
      throw new LocalHubError('PW_LOCALHUB_BAD_PATCH', `${path}: key ${JSON.stringify(key)} has a character twins do not allow (. $ space or control)`);
    }
    if (typeof value === 'number' && !Number.isFinite(value)) {
      throw new LocalHubError('PW_LOCALHUB_BAD_PATCH', `${path}.${key}: ${value} is not a JSON number`);
    }
    if (isJsonObject(value)) checkObject(value, `${path}.${key}`, depth + 1);
  }
}

/** IoT Hub's size limits of a twin's sections (`tags`, `properties.desired`, `properties.reported`). */
export const TWIN_SECTION_LIMITS = { tags: 8 * 1024, desired: 32 * 1024, reported: 32 * 1024 } as const;

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

/**
 * A twin section's size as IoT Hub counts it: for each property the UTF-8 length of its key plus
 * the size of its value; strings by their UTF-8 length without control characters (C0, C1),
 * numbers 8 bytes, booleans 4, objects the sum of their properties. Read-only `$` members
 * (`$version`, `$metadata`) do not count. Array elements count as values (IoT Hub's documentation
 * does not say; this is the natural reading).
 */
export function twinSize(value: Json): number {
  if (typeof value === 'string') return Buffer.byteLength(value.replace(CONTROL, ''), 'utf8');
  if (typeof value === 'number') return 8;
  if (typeof value === 'boolean') return 4;
  if (value === null) return 0;
  if (Array.isArray(value)) return value.reduce<number>((sum, item) => sum + twinSize(item), 0);
  let sum = 0;
  for (const [key, item] of Object.entries(value)) if (!key.startsWith('$')) sum += twinSize(key) + twinSize(item);
  return sum;
}

/**
 * Merges `patch` into `target` unless the result would be over `limit` bytes (twinSize) and larger
 * than before: IoT Hub rejects every operation that would grow a section above its limit.
 */
export function mergePatchWithin(target: JsonObject, patch: JsonObject, limit: number, where: string): void {
  const next = deepCopy(target);
  mergePatch(next, patch);
  const size = twinSize(next);
  if (size > limit && size > twinSize(target)) {
    throw new LocalHubError('PW_LOCALHUB_TWIN_TOO_LARGE', `${where}: the patch would make it ${size} bytes, over IoT Hub's limit of ${limit} bytes`);
  }
  for (const key of Object.keys(target)) delete target[key];
  Object.assign(target, next);
}

/** JSON merge patch as twins apply it: objects merge recursively, `null` deletes, anything else replaces. */
export function mergePatch(target: JsonObject, patch: JsonObject): void {
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete target[key];
    } else if (isJsonObject(value)) {
      const current = target[key];
      const child: JsonObject = isJsonObject(current) ? current : {};
      mergePatch(child, value);
      target[key] = child;
    } else {
      target[key] = deepCopy(value);
    }
  }
}
