/**
 * IoT Hub's size of a twin section, measured before the agent sends its reported properties: IoT
 * Hub rejects every update that would make `properties.reported` larger than 32 KB.
 * Per property: the UTF-8 length of its key plus the size of its value; strings by their UTF-8
 * length without control characters (C0, C1), numbers 8 bytes, booleans 4, objects the sum of
 * their properties; `$` members ($version, $metadata) do not count. Array elements count as values.
 * IoT Hub's documentation does not say how arrays (`pumps`) count, so the agent measures its
 * document both ways and keeps the larger: this rule, and the length of the JSON it sends.
 * (agent/local-hub enforces the documented rule with its own copy, so a mistake here shows in tests.)
 */
export const REPORTED_LIMIT_BYTES = 32 * 1024;

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

/** The larger of IoT Hub's count and the UTF-8 length of the JSON: an upper bound of what the hub counts. */
export function reportedSize(value: unknown): number {
  return Math.max(twinSize(value), Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8'));
}

/** What one more string in an array adds at most (both ways): its bytes, two quotes and a comma. */
export function arrayItemSize(item: string): number {
  return Buffer.byteLength(item, 'utf8') + 3;
}
