/** Readings of a source and range, with the technicians' labels, cleaned: what train and drift start from. */
import type { ContainerClient } from '@azure/storage-blob';
import { labelTargetAt, readLabels, type LabelRecord } from '../../sync/labels-upload.js';
import { cleanSeries, type Cleaned } from '../data/clean.js';
import { loadReadings, type LoadResult } from '../data/load.js';
import type { Progress } from '../progress.js';

export interface Prepared {
  loaded: LoadResult;
  cleaned: Cleaned;
  /** Labels of this source found in Blob Storage. */
  labels: number;
}

/** `allLabels`: labels already read (train-all reads them once for every source). */
export async function prepareData(
  container: ContainerClient,
  range: { source: string; from: number; to: number },
  progress: Progress,
  allLabels?: readonly LabelRecord[],
): Promise<Prepared> {
  progress.stage('reading blobs');
  const loaded = await loadReadings(container, { pumpId: range.source, from: range.from, to: range.to }, (n) => progress.update(n));
  progress.stage('reading labels');
  const labels = (allLabels ?? (await readLabels(container))).filter((l) => l.pumpId === range.source);
  const targets = loaded.series.timestamps.map((ts) => labelTargetAt(labels, range.source, ts));
  progress.stage('cleaning');
  return { loaded, cleaned: cleanSeries(loaded.series, targets), labels: labels.length };
}
