/**
 * Loads one pump's readings for a time range from Blob Storage through the sync reader (each
 * (device, buffer, seq) once, in time order) into a numeric series. Memory stays proportional to the
 * rows kept (8 bytes per value), never to the decoded JSON.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { readReadings } from '../../sync/reader.js';
import { idleLimitOf } from '../cloud/blob-limits.js';
import { TrainerError } from '../errors.js';
import { ReadingsCollector, type DeviceOverlap, type LoadOptions, type LoadResult } from './collect.js';

export { dropRepeats, type LoadOptions, type LoadResult } from './collect.js';

export interface LoadRange {
  pumpId: string;
  /** Inclusive, epoch ms. */
  from: number;
  /** Exclusive, epoch ms. */
  to: number;
}

export async function loadReadings(container: ContainerClient, range: LoadRange, onProgress?: (readings: number) => void, options: LoadOptions = {}): Promise<LoadResult> {
  const collector = new ReadingsCollector(options);
  for await (const line of readReadings(container, { pumpId: range.pumpId, from: range.from, to: range.to }, { concurrency: 8, idleMs: idleLimitOf(container) })) {
    collector.add(Date.parse(line.ts), line.values, line.deviceId);
    if (onProgress && collector.length % 10_000 === 0) onProgress(collector.length);
  }
  onProgress?.(collector.length);
  const { loaded } = collector.finish();
  if (loaded.deviceOverlaps.length > 0) throw new TrainerError('PW_TRAINER_DATA_CONFLICT', conflictText(range.pumpId, loaded.deviceOverlaps));
  return loaded;
}

/**
 * Why a pump's readings of a range are refused when two devices sent them over the same time. The
 * reader keeps each device's readings (they are other readings, not repeats), so a model fitted on
 * them would learn two pumps interleaved, and any verdict on them would judge that mix. Device ids
 * and times only: they name gateways, never a credential.
 */
function conflictText(pumpId: string, overlaps: readonly DeviceOverlap[]): string {
  const each = overlaps.map(
    (o) => `${o.devices[0]} (${o.readings[0]} readings) and ${o.devices[1]} (${o.readings[1]}) between ${new Date(o.from).toISOString()} and ${new Date(o.to).toISOString()}`,
  );
  return (
    `"${pumpId}": two devices sent readings of this pump over the same time: ${each.join('; ')}. ` +
    `One pump id is in use on two gateways (given twice at commissioning, or a gateway writing another's data), and their readings cannot be told apart, so none of this range is used. ` +
    `Give the pump on the wrong gateway its own id, then use a range that starts after the fix (--from)`
  );
}
