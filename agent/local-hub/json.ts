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
