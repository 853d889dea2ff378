/**
 * Blob names (DESIGN.md "Blob layout"), shared by the agent's sync and the trainer:
 *   readings/{pumpId}/{yyyy}/{mm}/{dd}/{deviceId}/{firstSeq}-{lastSeq}.jsonl.gz
 *   models/{source}/{version}/model.onnx | model.json,  models/{source}/best.json
 *   models/{source}/{version}/evaluations/{run time}-{id}.json  (each train run's evaluation of the version)
 *   runs/{from}_{to}/{source}.json  (train-all's latest outcome of each source for a range)
 *   labels/{deviceId}/…
 *   rejected/{deviceId}/{yyyy}/{mm}/{dd}/{firstId}-{lastId}.jsonl.gz  (items the agent refused)
 * The date is the UTC day of the batch's first reading; sequence numbers are zero-padded so that
 * names sort in sequence order within a device's folder. A batch whose name is taken by a blob of
 * other content (a device whose buffer started again at sequence 1, e.g. a replaced data volume,
 * or this batch sent before with other bytes) is uploaded beside it as `{firstSeq}-{lastSeq}~{sha256 prefix}.jsonl.gz` (`besideName`).
 */
import { SyncError } from './errors.js';

/**
 * A pump (data source) id, the one rule for the agent's ingest and the trainer's `--source`: it is
 * a blob path segment and a module twin key (`models.<pumpId>`), and IoT Hub refuses `.`, `$` and
 * spaces in twin keys, so a pump id with a dot could never be given a model of its own.
 */
export const PUMP_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_:-]{0,127}$/;
export const PUMP_ID_RULE = '1-128 characters: letters, digits, _ : - (starting with a letter or digit; no ".", which IoT Hub refuses in the twin key models.<pumpId>)';

/** Digits of a zero-padded sequence number (10^12 rows: decades at a thousand rows a second). */
export const SEQ_DIGITS = 12;
export const READINGS_ROOT = 'readings/';

/**
 * One path segment: ids are validated upstream (letters, digits, `.`, `_`, `:`, `-`); anything else
 * (a `/` in a host name used as device id, …) is percent-encoded so a segment never splits.
 */
export function segment(id: string): string {
  if (id.length === 0 || id === '.' || id === '..') throw new SyncError('PW_SYNC_BAD_BLOB_NAME', `"${id}" cannot be a blob path segment`);
  return /^[A-Za-z0-9._:-]+$/.test(id) ? id : encodeURIComponent(id);
}

export function padSeq(seq: number): string {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new SyncError('PW_SYNC_BAD_BLOB_NAME', `sequence number ${seq} is not a non-negative integer`);
  return String(seq).padStart(SEQ_DIGITS, '0');
}

/** `yyyy/mm/dd` of an epoch-ms time, in UTC. */
export function dayPath(ts: number): string {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) throw new SyncError('PW_SYNC_BAD_BLOB_NAME', `time ${ts} is not a valid date`);
  const mm = String(d.getUTCMonth() + 1).padStart(2, '0');
  const dd = String(d.getUTCDate()).padStart(2, '0');
  return `${d.getUTCFullYear()}/${mm}/${dd}`;
}

export function readingsBlobName(pumpId: string, deviceId: string, firstSeq: number, lastSeq: number, firstTs: number): string {
  return `${READINGS_ROOT}${segment(pumpId)}/${dayPath(firstTs)}/${segment(deviceId)}/${padSeq(firstSeq)}-${padSeq(lastSeq)}.jsonl.gz`;
}

/** Prefix listing one pump's blobs of one UTC day (all devices). */
export function readingsDayPrefix(pumpId: string, day: number): string {
  return `${READINGS_ROOT}${segment(pumpId)}/${dayPath(day)}/`;
}

export interface ReadingsBlobRef {
  pumpId: string;
  /** Epoch ms of 00:00 UTC of the blob's day. */
  day: number;
  deviceId: string;
  firstSeq: number;
  lastSeq: number;
}

const NAME_RE = /^readings\/([^/]+)\/(\d{4})\/(\d{2})\/(\d{2})\/([^/]+)\/(\d+)-(\d+)(?:~[0-9a-f]{12})?\.jsonl\.gz$/;

/**
 * The name a batch is uploaded under when its own is taken by a blob of other content: the same
 * name with the first 12 hex digits of the blob's sha256, so a retry of the same batch finds it.
 */
export function besideName(blobName: string, sha256: string): string {
  if (!blobName.endsWith('.jsonl.gz') || !/^[0-9a-f]{12}/.test(sha256)) throw new SyncError('PW_SYNC_BAD_BLOB_NAME', `no name beside ${blobName}`);
  return `${blobName.slice(0, -'.jsonl.gz'.length)}~${sha256.slice(0, 12)}.jsonl.gz`;
}

/** Parses a readings blob name; null when the name is not one. */
export function parseReadingsBlobName(name: string): ReadingsBlobRef | null {
  const m = NAME_RE.exec(name);
  if (!m) return null;
  const [, pump, y, mo, d, device, first, last] = m as unknown as [string, string, string, string, string, string, string, string];
  return {
    pumpId: decodeURIComponent(pump),
    day: Date.UTC(Number(y), Number(mo) - 1, Number(d)),
    deviceId: decodeURIComponent(device),
    firstSeq: Number(first),
    lastSeq: Number(last),
  };
}

export const modelBlobName = (source: string, version: string, file: 'model.onnx' | 'model.json'): string =>
  `models/${segment(source)}/${segment(version)}/${file}`;

export const bestModelBlobName = (source: string): string => `models/${segment(source)}/best.json`;

/**
 * One `train` run's evaluation of a version, written once beside its model.json (which keeps the
 * version's first evaluation). The run time comes first, with `-` for `:`, so that the names sort
 * in run order; `id` (random hex) keeps two runs of the same millisecond apart.
 */
export const evaluationBlobName = (source: string, version: string, at: Date, id: string): string =>
  `models/${segment(source)}/${segment(version)}/evaluations/${at.toISOString().replaceAll(':', '-')}-${segment(id)}.json`;

/**
 * The folder of train-all's outcome records of one range (`from`, `to`: epoch ms). The range
 * first, its times as ISO with `-` for `:`, so that the folders sort by night and one night's
 * outcomes list by one prefix; the range, not the run time, so that a retry of the same night
 * (whose `--days` range is the same) finds them.
 */
export const runsPrefix = (from: number, to: number): string => `runs/${new Date(from).toISOString().replaceAll(':', '-')}_${new Date(to).toISOString().replaceAll(':', '-')}/`;

/** train-all's outcome record of `source` for the range (trainer/registry/run-record.ts). */
export const runRecordBlobName = (from: number, to: number, source: string): string => `${runsPrefix(from, to)}${segment(source)}.json`;

export const labelsPrefix = (deviceId: string): string => `labels/${segment(deviceId)}/`;

/**
 * A batch of items the agent refused (its `rejected` table): the UTC day of the first one's
 * receipt, ids zero-padded as readings' seqs. By device first: it is one gateway's refusals, of no
 * pump in particular (a line that is not JSON names none); the trainer never lists this prefix.
 */
export const rejectedPrefix = (deviceId: string): string => `rejected/${segment(deviceId)}/`;

export function rejectedBlobName(deviceId: string, firstId: number, lastId: number, firstReceivedAt: number): string {
  return `${rejectedPrefix(deviceId)}${dayPath(firstReceivedAt)}/${padSeq(firstId)}-${padSeq(lastId)}.jsonl.gz`;
}
