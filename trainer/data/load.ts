/**
 * Loads one pump's readings for a time range from Blob Storage through the sync reader (each
 * (device, seq) once, in time order) into a numeric series. Memory stays proportional to the
 * rows kept (8 bytes per value), never to the decoded JSON.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { readReadings } from '../../sync/reader.js';
import { SeriesBuilder, type Series } from './series.js';

export interface LoadRange {
  pumpId: string;
  /** Inclusive, epoch ms. */
  from: number;
  /** Exclusive, epoch ms. */
  to: number;
}

export interface LoadResult {
  series: Series;
  /** Readings read (after de-duplication). */
  readings: number;
  devices: string[];
  /** Features seen in fewer than half of the readings, left out. */
  droppedFeatures: string[];
  /** Features seen in at least half of the readings but in none of the most recent 10 %, left out (the pump no longer sends them). */
  staleFeatures: string[];
}

export async function loadReadings(container: ContainerClient, range: LoadRange, onProgress?: (readings: number) => void): Promise<LoadResult> {
  const builder = new SeriesBuilder();
  const devices = new Set<string>();
  let lastTs = -Infinity;
  let sorted = true;
  for await (const line of readReadings(container, { pumpId: range.pumpId, from: range.from, to: range.to }, { concurrency: 8 })) {
    const ts = Date.parse(line.ts);
    if (ts < lastTs) sorted = false;
    lastTs = Math.max(lastTs, ts);
    builder.add(ts, line.values);
    devices.add(line.deviceId);
    if (onProgress && builder.length % 10_000 === 0) onProgress(builder.length);
  }
  const readings = builder.length;
  onProgress?.(readings);
  const { series, dropped, stale } = builder.build();
  if (!sorted) sortByTime(series);
  return { series, readings, devices: [...devices].sort(), droppedFeatures: dropped, staleFeatures: stale };
}

/** Stable sort by timestamp (the reader yields a clock jump's readings a day late). */
function sortByTime(series: Series): void {
  const order = series.timestamps.map((_, i) => i).sort((a, b) => (series.timestamps[a] as number) - (series.timestamps[b] as number) || a - b);
  series.timestamps = order.map((i) => series.timestamps[i] as number);
  series.rows = order.map((i) => series.rows[i] as Float64Array);
}
