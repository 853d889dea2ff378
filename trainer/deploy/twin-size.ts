/**
 * The size of a module twin's desired properties as IoT Hub counts it, measured before `deploy`
 * writes: the hub refuses every update that would grow `properties.desired` past 32 KB, with an
 * error that says neither what fills the section nor how to free it.
 * Per property: the UTF-8 length of its key plus the size of its value; strings by their UTF-8
 * length without control characters (C0, C1), numbers 8 bytes, booleans 4, objects the sum of
 * their properties; `$` members ($version, $metadata) do not count. The agent measures its
 * reported properties by the same rule (agent/edge/twin-size.ts, which the trainer may not
 * import), and agent/local-hub enforces it with its own copy, so a mistake here shows in tests.
 */
export const DESIRED_LIMIT_BYTES = 32 * 1024;

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

export function twinSize(value: unknown): number {
  if (typeof value === 'string') return Buffer.byteLength(value.replace(CONTROL, ''), 'utf8');
  if (typeof value === 'number') return 8;
  if (typeof value === 'boolean') return 4;
  if (value === null || value === undefined || typeof value !== 'object') return 0;
  if (Array.isArray(value)) return value.reduce<number>((sum, item) => sum + twinSize(item), 0);
  let sum = 0;
  for (const [key, item] of Object.entries(value)) if (!key.startsWith('$') && item !== undefined) sum += twinSize(key) + twinSize(item);
  return sum;
}

/** A JSON object (not null, not an array). */
export const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** `target` with a twin patch applied as IoT Hub merges it (null deletes a key, objects merge); neither argument is changed. */
export function merged(target: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else if (isObject(value)) out[key] = merged(isObject(out[key]) ? out[key] : {}, value);
    else out[key] = value;
  }
  return out;
}
