import type Database from 'better-sqlite3';
import { BufferError } from './errors.js';

/**
 * A reading's per-feature contributions as stored since schema 10: a BLOB instead of JSON text.
 * Writing them as JSON was most of what an anomaly's commit allocated (about 720 bytes of garbage a
 * row plus a copy to bind it, ~7 MB per 4 096-row batch, promoted to V8's old generation).
 *
 *   byte 0       kind: 1 = float32 values, 2 = float64 values (both little-endian)
 *   bytes 1-4    id of the row's list of feature names in `contribution_names` (uint32, LE)
 *   then         one value per name, in the list's order
 *
 * The names are kept in the buffer itself (one row per distinct list, JSON array, never deleted),
 * not taken from a model file: models are pruned, and the buffer must be readable on its own.
 * A list is the object's own keys in their enumeration order (Object.keys), which is the order
 * JSON.stringify writes them in, so `text()` gives the JSON that was stored before schema 10 for
 * the same object, byte for byte (what the sync uploads, and what every reader parses):
 * - the values a model outputs are float32 (inference/model.ts reads the ONNX output as a
 *   Float32Array), so storing them as float32 loses nothing; a row holding any value a float32
 *   does not hold exactly (a caller's own double) is stored as float64 instead, also exact;
 * - NaN, ±Infinity and null are written as `null`, as JSON.stringify writes them (null is stored
 *   as NaN), and -0 as `0`;
 * - contributions that are not plain numbers by name (a non-number value, no key at all, a key
 *   `__proto__`) keep the JSON text as before: readers take both forms, rows written before
 *   schema 10 stay JSON text (nothing is rewritten when a file is upgraded).
 */
const KIND_F32 = 1;
const KIND_F64 = 2;
const HEADER_BYTES = 5;

interface NameList {
  names: string[];
  /** What precedes each value in the JSON text: `{"a":` for the first, `,"b":` for the others. */
  prefixes: string[];
}

/**
 * Encodes and decodes the contributions of one connection's rows, with the name lists it has met
 * cached (a list's id never changes meaning in a file: the table is only appended to). One per
 * open connection: a file put in place of another has lists of its own.
 */
export class ContributionNames {
  private stmts: { insert: Database.Statement; find: Database.Statement; byId: Database.Statement } | null = null;
  /** Lists read by id (for reads). */
  private readonly lists = new Map<number, NameList>();
  /** Ids by the list's JSON (for writes); forgotten when a write transaction rolls back. */
  private readonly ids = new Map<string, number>();
  private last: { keys: string[]; id: number } | null = null;

  /**
   * `onUndecodable`: given, a BLOB that cannot be decoded reads as `null` (no contributions) and is
   * told to it, instead of throwing: the store's own readers (the page, `/alerts`, the windows read
   * back at start) need the rest of the row, and one damaged value must not take them all down.
   * The sync's readers give one too: such a row is uploaded with `contributions: null` and recorded
   * (BufferStore stats().withoutContributions), not set aside: its values, score and verdict are intact.
   */
  constructor(
    private readonly db: Database.Database,
    private readonly onUndecodable?: (err: BufferError) => void,
  ) {}

  /** What the contributions column stores for `c`: a BLOB, JSON text for what a BLOB cannot hold, or null. */
  encode(c: Record<string, number> | null | undefined): Buffer | string | null {
    if (!c) return null;
    const keys = Object.keys(c);
    let kind = KIND_F32;
    for (let i = 0; i < keys.length; i++) {
      const v = c[keys[i]!] as unknown;
      if (v === null) continue;
      if (typeof v !== 'number' || keys[i] === '__proto__') return JSON.stringify(c);
      if (Math.fround(v) !== v && v === v) kind = KIND_F64; // NaN is not equal to itself, and is a float32
    }
    if (keys.length === 0) return JSON.stringify(c);
    const size = kind === KIND_F32 ? 4 : 8;
    const blob = Buffer.allocUnsafe(HEADER_BYTES + keys.length * size);
    blob[0] = kind;
    blob.writeUInt32LE(this.idOf(keys), 1);
    for (let i = 0, at = HEADER_BYTES; i < keys.length; i++, at += size) {
      const v = c[keys[i]!] ?? Number.NaN;
      if (kind === KIND_F32) blob.writeFloatLE(v, at);
      else blob.writeDoubleLE(v, at);
    }
    return blob;
  }

  /**
   * Forgets the ids of lists written since the last commit: called when a write transaction rolled
   * back, which took the lists it added with it (their ids would be given to other lists next).
   */
  forgetWrites(): void {
    this.ids.clear();
    this.last = null;
  }

  /**
   * The JSON text of a stored BLOB (byte for byte what JSON.stringify wrote for the same object).
   * A BLOB that cannot be read (a wrong length or kind, a list id the file does not hold) throws
   * PW_BUFFER_INVALID_ROW naming the row's seq and what is wrong (or reads as `null`, with
   * `onUndecodable`).
   */
  text(blob: Uint8Array, seq: number): string {
    if (this.onUndecodable === undefined) return this.decode(blob, seq);
    try {
      return this.decode(blob, seq);
    } catch (err) {
      if (!(err instanceof BufferError) || err.code !== 'PW_BUFFER_INVALID_ROW') throw err;
      this.onUndecodable(err);
      return 'null';
    }
  }

  private decode(blob: Uint8Array, seq: number): string {
    const bad = (what: string): BufferError => new BufferError('PW_BUFFER_INVALID_ROW', `${rowText(seq)} (a BLOB of ${blob.length} bytes) ${what}`);
    if (blob.length < HEADER_BYTES) throw bad(`are shorter than their ${HEADER_BYTES}-byte header`);
    const kind = blob[0]!;
    if (kind !== KIND_F32 && kind !== KIND_F64) throw bad(`are of kind ${kind}, neither ${KIND_F32} (float32) nor ${KIND_F64} (float64)`);
    const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    const id = view.getUint32(1, true);
    const list = this.list(id);
    if (typeof list === 'string') throw bad(`name feature list ${id}, ${list}`);
    const n = list.names.length;
    const size = kind === KIND_F32 ? 4 : 8;
    if (blob.length !== HEADER_BYTES + n * size) {
      throw bad(`should be ${HEADER_BYTES + n * size} bytes: a ${HEADER_BYTES}-byte header and one ${size === 4 ? 'float32' : 'float64'} value for each of the ${n} names of list ${id}`);
    }
    let s = '';
    for (let i = 0, at = HEADER_BYTES; i < n; i++, at += size) {
      const v = size === 4 ? view.getFloat32(at, true) : view.getFloat64(at, true);
      s += list.prefixes[i]! + (Number.isFinite(v) ? String(v) : 'null');
    }
    return `${s}}`;
  }

  private q(): NonNullable<ContributionNames['stmts']> {
    this.stmts ??= {
      insert: this.db.prepare('INSERT INTO contribution_names (names) VALUES (?)'),
      find: this.db.prepare('SELECT min(id) FROM contribution_names WHERE names = ?').pluck(),
      byId: this.db.prepare('SELECT names FROM contribution_names WHERE id = ?').pluck(),
    };
    return this.stmts;
  }

  /** The id of a list of names, added to the table (in the caller's transaction) when new (one writer: the store's connection). */
  private idOf(keys: string[]): number {
    const last = this.last;
    if (last !== null && sameNames(last.keys, keys)) return last.id;
    const json = JSON.stringify(keys);
    let id = this.ids.get(json);
    if (id === undefined) {
      const q = this.q();
      id = (q.find.get(json) as number | null) ?? Number(q.insert.run(json).lastInsertRowid);
      this.ids.set(json, id);
    }
    this.last = { keys, id };
    return id;
  }

  /** A list by its id, or why there is none. */
  private list(id: number): NameList | string {
    const known = this.lists.get(id);
    if (known !== undefined) return known;
    let json: string | undefined;
    try {
      json = this.q().byId.get(id) as string | undefined;
    } catch (err) {
      // A file without the table (a BLOB written into a buffer older than schema 10 by hand).
      if (/no such table/.test((err as Error).message)) return 'but the file has no contribution_names table';
      throw err;
    }
    if (json === undefined) return 'which contribution_names does not hold';
    let names: unknown;
    try {
      names = JSON.parse(json);
    } catch {
      names = null;
    }
    if (!Array.isArray(names) || names.length === 0 || !names.every((x) => typeof x === 'string')) return `whose names are not a JSON array of strings (${json.slice(0, 80)})`;
    const list: NameList = { names, prefixes: names.map((name, i) => `${i === 0 ? '{' : ','}${JSON.stringify(name)}:`) };
    this.lists.set(id, list);
    return list;
  }
}

/** How a row whose contributions cannot be decoded is named: the start of every such message. */
const rowText = (seq: number): string => `reading seq ${seq}: its contributions`;

/** True when `message` (a run's error, as stored) is that of contributions that cannot be decoded. */
export function isUndecodableText(message: string): boolean {
  return /^reading seq \d+: its contributions /.test(message);
}

/** The seq such a message names (null: not such a message). */
export function undecodableSeq(message: string): number | null {
  const m = /^reading seq (\d+): its contributions /.exec(message);
  return m === null ? null : Number(m[1]);
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A row the sync uploaded with `contributions: null`, its BLOB not decodable. */
export interface RowWithoutContributions {
  seq: number;
  /** When the sync read it for an upload (epoch ms). */
  foundAt: number;
  /** What is wrong with the BLOB (PW_BUFFER_INVALID_ROW's message). */
  error: string;
}

export interface WithoutContributionsSummary {
  /** Rows met since the agent started. */
  rows: number;
  /** The newest, newest first (at most WITHOUT_CONTRIBUTIONS_LISTED). */
  recent: RowWithoutContributions[];
}

const WITHOUT_CONTRIBUTIONS_LISTED = 10;

/**
 * Rows whose contributions cannot be decoded that the sync read for an upload: they go up with
 * `contributions: null` and the rest as stored (their values, score and verdict are intact). Each
 * is counted once and told to `warn` once (by seq), kept while the process runs: the BLOB stays
 * in the file, and the agent's own readers keep saying so too.
 */
export class RowsWithoutContributions {
  private readonly seqs = new Set<number>();
  private readonly newest: RowWithoutContributions[] = [];

  constructor(private readonly warn: (message: string) => void) {}

  /** Records the row a PW_BUFFER_INVALID_ROW message names (one of a contributions BLOB); other messages are ignored. */
  record(error: string, now: number): void {
    const seq = undecodableSeq(error);
    if (seq === null || this.seqs.has(seq)) return;
    this.seqs.add(seq);
    this.newest.unshift({ seq, foundAt: now, error });
    if (this.newest.length > WITHOUT_CONTRIBUTIONS_LISTED) this.newest.pop();
    this.warn(`PW_BUFFER_INVALID_ROW: ${error}; the sync uploads it without its contributions, its values, score and verdict as stored`);
  }

  summary(): WithoutContributionsSummary {
    return { rows: this.seqs.size, recent: this.newest.map((r) => ({ ...r })) };
  }

  /** What /healthz says while any was met (null: none). */
  healthText(): string | null {
    if (this.seqs.size === 0) return null;
    const shown = this.newest.slice(0, 5).map((r) => r.seq).join(', ');
    const more = this.seqs.size > 5 ? ` and ${this.seqs.size - 5} more` : '';
    return `PW_BUFFER_INVALID_ROW: ${this.seqs.size} row(s) were uploaded without their contributions, which cannot be decoded (seq ${shown}${more}); their values, score and verdict went up as stored (see /status buffer.withoutContributions)`;
  }
}
