/**
 * Loads one pump's readings for a time range from Blob Storage through the sync reader (each
 * (device, buffer, seq) once, in time order) into a numeric series. Memory stays proportional to the
 * rows kept (8 bytes per value), never to the decoded JSON.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { readReadings } from '../../sync/reader.js';
import { idleLimitOf } from '../cloud/blob-limits.js';
import { ReadingsCollector, type LoadOptions, type LoadResult } from './collect.js';

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
  return collector.finish().loaded;
}
