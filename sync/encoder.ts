/**
 * Rows ⇄ blob content: gzip-compressed JSON lines, one reading with its prediction per line.
 * The bytes are a pure function of the rows and the device id (fixed key order, fixed gzip level,
 * no mtime in the gzip header), so a batch re-encoded after a crash has the same sha256.
 * Encoding yields to the event loop between chunks and compresses and hashes on the libuv thread
 * pool, so a large batch never holds up ingest for long.
 */
import { createHash, webcrypto } from 'node:crypto';
import { setImmediate as yieldNow } from 'node:timers/promises';
import { promisify } from 'node:util';
import { gunzip, gzip, gzipSync } from 'node:zlib';
import type { DbRow } from '../buffer/rows.js';
import type { StoredRow } from '../buffer/types.js';
import { SyncError } from './errors.js';

/**
 * Version of the line format; stored in each blob's metadata (`schemaversion`), not on the lines:
 * copy tools drop metadata, so the rule for a line is that one without a `schema` field is version
 * 1. Fields may be added within a version (bufferId and threshold were: decoders of every release
 * check only the fields they need and pass the others through); a change of a field's meaning or
 * type is a new version, whose lines then carry `"schema":N` (11 bytes a line only from then on),
 * and which this decoder refuses (lineProblem) rather than misread.
 */
export const SCHEMA_VERSION = 1;
/** Never change it lightly: the same rows must give the same bytes (old blobs are still matched by rawsha256). */
export const GZIP_LEVEL = 6;
const CHUNK_ROWS = 512;

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** One line of a readings blob. Optional fields appear only when they have a value. */
export interface ReadingLine {
  seq: number;
  deviceId: string;
  /**
   * The id of the buffer file that numbered `seq` (buffer/migrations.ts BUFFER_ID_KEY): a new file
   * under the same device id numbers from 1 again. Absent in lines written before it existed.
   */
  bufferId?: string;
  pumpId: string;
  /** ISO 8601, UTC. */
  ts: string;
  receivedAt: string;
  values: Record<string, number | null>;
  score: number | null;
  anomaly: boolean | null;
  modelVersion: string | null;
  imputed: boolean;
  /** The scoring model's threshold (`score > threshold` is an anomaly); absent when unscored, and in rows stored before it was kept. */
  threshold?: number;
  unscoredReason?: string;
  shadowScore?: number;
  shadowModelVersion?: string;
  contributions?: Record<string, number>;
}

export interface EncodedBatch {
  /** gzip of the JSON lines. */
  body: Buffer;
  /** sha256 (hex) of `body`. */
  sha256: string;
  /** sha256 (hex) of the uncompressed JSON lines (matches a blob written by another gzip build). */
  rawSha256: string;
  rawBytes: number;
  rowCount: number;
}

export function toLine(row: StoredRow, deviceId: string, bufferId: string | null = null): ReadingLine {
  const line: ReadingLine = {
    seq: row.seq,
    deviceId,
    ...(bufferId === null ? {} : { bufferId }),
    pumpId: row.pumpId,
    ts: new Date(row.ts).toISOString(),
    receivedAt: new Date(row.receivedAt).toISOString(),
    values: row.values,
    score: row.score,
    anomaly: row.anomaly,
    modelVersion: row.modelVersion,
    imputed: row.imputed,
  };
  if (row.threshold != null) line.threshold = row.threshold;
  if (row.unscoredReason != null) line.unscoredReason = row.unscoredReason;
  if (row.shadowScore != null) line.shadowScore = row.shadowScore;
  if (row.shadowModelVersion != null) line.shadowModelVersion = row.shadowModelVersion;
  if (row.contributions != null) line.contributions = row.contributions;
  return line;
}

/**
 * A row as the buffer stores it: `vals` and `contributions` still JSON text, flags 0/1. Lines are
 * built from this form without parsing and re-serialising the values (the hot path of a drain);
 * the text is the one JSON.stringify wrote, so the line equals JSON.stringify(toLine(row)).
 */
export type RawRow = DbRow;

export function toRawRow(row: StoredRow): RawRow {
  return {
    seq: row.seq,
    pump_id: row.pumpId,
    ts: row.ts,
    received_at: row.receivedAt,
    vals: JSON.stringify(row.values),
    score: row.score,
    anomaly: row.anomaly === null ? null : row.anomaly ? 1 : 0,
    model_version: row.modelVersion,
    imputed: row.imputed ? 1 : 0,
    unscored_reason: row.unscoredReason,
    shadow_score: row.shadowScore ?? null,
    shadow_model_version: row.shadowModelVersion ?? null,
    contributions: row.contributions ? JSON.stringify(row.contributions) : null,
    threshold: row.threshold ?? null,
  };
}

const num = (v: number | null): string => (v === null ? 'null' : JSON.stringify(v));
const str = (v: string | null): string => (v === null ? 'null' : JSON.stringify(v));

/**
 * The JSON of a line's source, after `"deviceId":`: the device id, then the buffer id when there
 * is one (toLine's key order), made once per batch.
 */
export function sourceJson(deviceId: string, bufferId: string | null): string {
  return bufferId === null ? JSON.stringify(deviceId) : `${JSON.stringify(deviceId)},"bufferId":${JSON.stringify(bufferId)}`;
}

/** One JSON line (without the newline), byte for byte JSON.stringify(toLine(row, deviceId, bufferId)); `source` is sourceJson(deviceId, bufferId). */
export function lineText(r: RawRow, source: string): string {
  let s =
    `{"seq":${r.seq},"deviceId":${source},"pumpId":${JSON.stringify(r.pump_id)},` +
    `"ts":"${new Date(r.ts).toISOString()}","receivedAt":"${new Date(r.received_at).toISOString()}",` +
    `"values":${r.vals},"score":${num(r.score)},"anomaly":${r.anomaly === null ? 'null' : r.anomaly === 1 ? 'true' : 'false'},` +
    `"modelVersion":${str(r.model_version)},"imputed":${r.imputed === 1 ? 'true' : 'false'}`;
  if (r.threshold !== null) s += `,"threshold":${num(r.threshold)}`;
  if (r.unscored_reason !== null) s += `,"unscoredReason":${JSON.stringify(r.unscored_reason)}`;
  if (r.shadow_score !== null) s += `,"shadowScore":${num(r.shadow_score)}`;
  if (r.shadow_model_version !== null) s += `,"shadowModelVersion":${JSON.stringify(r.shadow_model_version)}`;
  if (r.contributions !== null) s += `,"contributions":${r.contributions}`;
  return `${s}}`;
}

/** The uncompressed JSON lines of rows, built in chunks with a yield to the event loop between them. */
export async function serializeRawRows(rows: readonly RawRow[], deviceId: string, bufferId: string | null = null): Promise<Buffer> {
  const source = sourceJson(deviceId, bufferId);
  const chunks: Buffer[] = [];
  for (let start = 0; start < rows.length; start += CHUNK_ROWS) {
    if (start > 0) await yieldNow();
    chunks.push(linesOf(rows, start, Math.min(rows.length, start + CHUNK_ROWS), source));
  }
  return Buffer.concat(chunks);
}

/**
 * The JSON lines of rows[start, end), as UTF-8, each line written straight into one buffer. Joining
 * the lines into one string first costs three times as much: the joined string must be flattened
 * before it is encoded (measured 6 → 2 µs a row; serialising is most of a drain's own work).
 */
function linesOf(rows: readonly RawRow[], start: number, end: number, source: string): Buffer {
  let capacity = 0;
  for (let i = start; i < end; i++) capacity += rows[i]!.vals.length + (rows[i]!.contributions?.length ?? 0) + LINE_BYTES;
  let buf = Buffer.allocUnsafe(capacity);
  let at = 0;
  for (let i = start; i < end; i++) {
    const line = lineText(rows[i]!, source);
    const need = at + line.length * 3 + 1; // UTF-8 takes at most 3 bytes per UTF-16 unit
    if (need > buf.length) {
      const larger = Buffer.allocUnsafe(Math.max(need, buf.length * 2));
      buf.copy(larger, 0, 0, at);
      buf = larger;
    }
    at += buf.write(line, at, 'utf8');
    buf[at++] = 0x0a;
  }
  return buf.subarray(0, at);
}

/** Bytes of a line beyond its values and contributions text, for linesOf's first buffer (it grows if a line is longer). */
const LINE_BYTES = 320;

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', bytes)).toString('hex');
}

/** Rows as stored → deterministic gzip JSON lines with their hashes (compressed and hashed off the main thread). */
export async function encodeRawRows(rows: readonly RawRow[], deviceId: string, bufferId: string | null = null): Promise<EncodedBatch> {
  return encodeLines(await serializeRawRows(rows, deviceId, bufferId), rows.length);
}

/** gzip of `raw` (`rowCount` JSON lines) with the hashes its blob metadata carries: every kind of line blob the sync writes. */
export async function encodeLines(raw: Buffer, rowCount: number): Promise<EncodedBatch> {
  const body = await gzipAsync(raw, { level: GZIP_LEVEL });
  const [sha256, rawSha256] = await Promise.all([sha256Hex(body), sha256Hex(raw)]);
  return { body, sha256, rawSha256, rawBytes: raw.length, rowCount };
}

/**
 * encodeRawRows in one synchronous step on the calling thread: for sync's encoder thread, whose
 * work must stay on that (lower-priority) thread rather than go to the process's libuv pool.
 * The same bytes and hashes as encodeRawRows.
 */
export function encodeRawRowsSync(rows: readonly RawRow[], deviceId: string, bufferId: string | null = null): EncodedBatch {
  const raw = linesOf(rows, 0, rows.length, sourceJson(deviceId, bufferId));
  const body = gzipSync(raw, { level: GZIP_LEVEL });
  const hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
  return { body, sha256: hex(body), rawSha256: hex(raw), rawBytes: raw.length, rowCount: rows.length };
}

/** Where a batch's rows start and end, how many, and their values text length (sizes the next plan). */
export interface RowsExtent {
  firstSeq: number;
  lastSeq: number;
  firstTs: number;
  rowCount: number;
  valsLength: number;
}

/** The extent of rows (at least one), in sequence order. */
export function rowsExtent(rows: readonly RawRow[]): RowsExtent {
  let valsLength = 0;
  for (const r of rows) valsLength += r.vals.length;
  const first = rows[0]!;
  return { firstSeq: first.seq, lastSeq: rows[rows.length - 1]!.seq, firstTs: first.ts, rowCount: rows.length, valsLength };
}

/** Rows → the same bytes as encodeRawRows of the stored form. */
export function encodeRows(rows: readonly StoredRow[], deviceId: string, bufferId: string | null = null): Promise<EncodedBatch> {
  return encodeRawRows(rows.map(toRawRow), deviceId, bufferId);
}

/** Blob content → its lines, checked for the fields every line must have. `label` names the blob in errors. */
export async function decodeBatch(body: Uint8Array, label: string): Promise<ReadingLine[]> {
  let raw: Buffer;
  try {
    raw = await gunzipAsync(body);
  } catch (err) {
    throw new SyncError('PW_SYNC_BLOB_CORRUPT', `${label}: not valid gzip (${(err as Error).message})`, { cause: err });
  }
  return parseLines(raw.toString('utf8'), label);
}

export function parseLines(text: string, label: string): ReadingLine[] {
  const lines: ReadingLine[] = [];
  let lineNo = 0;
  for (const line of text.split('\n')) {
    lineNo++;
    if (line.length === 0) continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw new SyncError('PW_SYNC_BAD_LINE', `${label} line ${lineNo}: not valid JSON`);
    }
    const problem = lineProblem(v);
    if (problem) throw new SyncError('PW_SYNC_BAD_LINE', `${label} line ${lineNo}: ${problem}`);
    lines.push(v as ReadingLine);
  }
  return lines;
}

function lineProblem(v: unknown): string | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not a JSON object';
  const o = v as Record<string, unknown>;
  if (!Number.isSafeInteger(o.seq)) return '"seq" is not an integer';
  if (typeof o.deviceId !== 'string' || typeof o.pumpId !== 'string') return '"deviceId" or "pumpId" is not a string';
  if (typeof o.ts !== 'string' || Number.isNaN(Date.parse(o.ts))) return '"ts" is not an ISO time';
  if (typeof o.values !== 'object' || o.values === null || Array.isArray(o.values)) return '"values" is not an object';
  if (o.score !== null && typeof o.score !== 'number') return '"score" is neither a number nor null';
  if (o.anomaly !== null && typeof o.anomaly !== 'boolean') return '"anomaly" is neither a boolean nor null';
  if (o.modelVersion !== null && typeof o.modelVersion !== 'string') return '"modelVersion" is neither a string nor null';
  if (typeof o.imputed !== 'boolean') return '"imputed" is not a boolean';
  if (o.schema !== undefined && o.schema !== SCHEMA_VERSION) {
    return `"schema" is ${JSON.stringify(o.schema)}, a line version this reader does not know (it reads ${SCHEMA_VERSION})`;
  }
  return null;
}

/** The metadata every line blob the sync writes begins with: its row count, hashes, line version, agent and device. */
export function linesMetadata(
  encoded: Pick<EncodedBatch, 'rowCount' | 'sha256' | 'rawSha256'>,
  schemaVersion: number,
  info: { agentVersion: string; deviceId: string },
): Record<string, string> {
  return {
    rowcount: String(encoded.rowCount),
    sha256: encoded.sha256,
    rawsha256: encoded.rawSha256,
    schemaversion: String(schemaVersion),
    agentversion: info.agentVersion,
    deviceid: encodeURIComponent(info.deviceId),
  };
}

/** Blob metadata of a readings batch (names are lowercase: Azure treats them case-insensitively). */
export function batchMetadata(
  encoded: Pick<EncodedBatch, 'rowCount' | 'sha256' | 'rawSha256'>,
  info: { agentVersion: string; deviceId: string; pumpId: string; firstSeq: number; lastSeq: number; bufferId?: string | null },
): Record<string, string> {
  const meta: Record<string, string> = {
    ...linesMetadata(encoded, SCHEMA_VERSION, info),
    pumpid: encodeURIComponent(info.pumpId),
    firstseq: String(info.firstSeq),
    lastseq: String(info.lastSeq),
  };
  if (info.bufferId != null) meta.bufferid = info.bufferId;
  return meta;
}
