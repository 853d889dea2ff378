/**
 * A pump's buffer rows as columns (PackedRows), the form a first-model fit takes them in and that
 * crosses to its worker thread: no object per row. Apart from fit.ts (and the trainer's code it
 * loads), so the agent's check reads and packs without loading the fit before it runs one.
 */
import type { StoredRow } from '../../buffer/types.js';

const turn = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

export interface PackedRows {
  /** Every value name some row has, in the order first seen. */
  names: string[];
  /** Epoch ms per row. */
  ts: Float64Array;
  /** Row-major, `names.length` per row. */
  values: Float64Array;
  /** 1 where the default model flagged the row (`anomaly = 1`). */
  anomaly: Uint8Array;
}

/**
 * A pump's rows packed as a reader walking back through the buffer gets them: one page at a time,
 * newest page first, each page's rows in buffer order (seq). Each page is packed into columns when
 * added, so its row objects can go; finish() joins the pages oldest first, with the value names in
 * the order they are first seen from the oldest row on (as packing all rows at once orders them:
 * the same rows give the same bytes). The rows stay in buffer order: the fit's loading sorts them
 * by time (stably) when they are not in it already.
 */
export class PackedPages {
  private readonly pages: PackedRows[] = [];
  private count = 0;
  private newestTs = Number.NEGATIVE_INFINITY;
  private oldestTs = Number.POSITIVE_INFINITY;
  private firstRow: { seq: number; receivedAt: number } | null = null;

  constructor(private readonly pumpId: string) {}

  /** Adds a page older than every page added before. */
  addOlder(rows: readonly StoredRow[]): void {
    checkOwnRows(this.pumpId, rows);
    if (rows.length === 0) return;
    const page = packAll(rows);
    this.pages.push(page);
    // Rows come in buffer order, each page older: its first row is the first received so far.
    this.firstRow = { seq: rows[0]!.seq, receivedAt: rows[0]!.receivedAt };
    this.count += rows.length;
    for (const ts of page.ts) {
      if (ts > this.newestTs) this.newestTs = ts;
      if (ts < this.oldestTs) this.oldestTs = ts;
    }
  }

  /** Rows added so far. */
  get rows(): number {
    return this.count;
  }

  /** The newest reading time among the rows (epoch ms); null when none. */
  get newest(): number | null {
    return this.count === 0 ? null : this.newestTs;
  }

  /** The oldest reading time among the rows (epoch ms); null when none. */
  get oldest(): number | null {
    return this.count === 0 ? null : this.oldestTs;
  }

  /** The first received of the rows (the lowest seq), and when it was received (the gateway clock); null when none. */
  get first(): { seq: number; receivedAt: number } | null {
    return this.firstRow;
  }

  /** The rows, oldest page first, with a turn of the event loop between pages. */
  async finish(): Promise<PackedRows> {
    const pages = [...this.pages].reverse();
    const index = new Map<string, number>();
    for (const page of pages) for (const name of page.names) if (!index.has(name)) index.set(name, index.size);
    const names = [...index.keys()];
    const width = names.length;
    const out: PackedRows = { names, ts: new Float64Array(this.count), values: new Float64Array(this.count * width), anomaly: new Uint8Array(this.count) };
    let at = 0;
    for (const page of pages) {
      const n = page.ts.length;
      out.ts.set(page.ts, at);
      out.anomaly.set(page.anomaly, at);
      const cols = page.names.map((name) => index.get(name) as number);
      if (cols.length === width && cols.every((c, k) => c === k)) out.values.set(page.values, at * width);
      else {
        const w = cols.length;
        out.values.fill(Number.NaN, at * width, (at + n) * width);
        for (let i = 0; i < n; i++) for (let k = 0; k < w; k++) out.values[(at + i) * width + (cols[k] as number)] = page.values[i * w + k] as number;
      }
      at += n;
      await turn();
    }
    this.pages.length = 0;
    return out;
  }
}

/** A row of another pump among a pump's rows is the caller's defect: thrown with which. */
export function checkOwnRows(pumpId: string, rows: readonly StoredRow[]): void {
  const other = rows.find((r) => r.pumpId !== pumpId);
  if (other !== undefined) throw new TypeError(`first model of "${pumpId}": a row of pump "${other.pumpId}" (seq ${other.seq}) is among its rows`);
}

interface Packing {
  names: string[];
  index: Map<string, number>;
  rows: PackedRows;
}

/** Adds the value names of rows [from, to) to `index` (first seen first). */
function collectNames(rows: readonly StoredRow[], from: number, to: number, index: Map<string, number>): void {
  for (let i = from; i < to; i++) for (const name in (rows[i] as StoredRow).values) if (!index.has(name)) index.set(name, index.size);
}

/** The columns to fill for `n` rows with the names of `index`. */
function newPacking(index: Map<string, number>, n: number): Packing {
  const names = [...index.keys()];
  return { names, index, rows: { names, ts: new Float64Array(n), values: new Float64Array(n * names.length), anomaly: new Uint8Array(n) } };
}

/** Fills rows [from, to) of the packing; returns its rows. */
function packRows(rows: readonly StoredRow[], from: number, to: number, p: Packing): PackedRows {
  const width = p.names.length;
  // NaN (missing) first, slice by slice: filling 250 000 rows at once holds the thread for tens of ms.
  p.rows.values.fill(Number.NaN, from * width, to * width);
  for (let i = from; i < to; i++) {
    const row = rows[i] as StoredRow;
    p.rows.ts[i] = row.ts;
    if (row.anomaly === true) p.rows.anomaly[i] = 1;
    for (const name in row.values) {
      const v = row.values[name];
      if (typeof v === 'number') p.rows.values[i * width + (p.index.get(name) as number)] = v;
    }
  }
  return p.rows;
}

/** All rows at once (in the calling thread). */
export function packAll(rows: readonly StoredRow[]): PackedRows {
  const index = new Map<string, number>();
  collectNames(rows, 0, rows.length, index);
  return packRows(rows, 0, rows.length, newPacking(index, rows.length));
}

/** Packs in slices with a turn of the event loop between them: 250 000 rows must not hold up a commit. */
export async function packRowsYielding(rows: readonly StoredRow[]): Promise<PackedRows> {
  const SLICE = 8192;
  const n = rows.length;
  const index = new Map<string, number>();
  for (let from = 0; from < n; from += SLICE) {
    collectNames(rows, from, Math.min(n, from + SLICE), index);
    await turn();
  }
  const p = newPacking(index, n);
  for (let from = 0; from < n; from += SLICE) {
    packRows(rows, from, Math.min(n, from + SLICE), p);
    await turn();
  }
  return p.rows;
}
