/**
 * The last `capacity` raw readings of one pump, kept as numbers: one Float64Array column per value
 * name (NaN where a reading had no finite value for it), plus the timestamps when asked for.
 *
 * Keeping references to the readings' own objects instead would hold every reading's `values`
 * alive for `capacity` readings of its pump: long enough, under load, to survive two scavenges,
 * so V8 would promote each of them to the old space and the heap would grow by the size of the
 * stream between two full collections. Copied into columns, the objects die young.
 */
export type Values = Readonly<Record<string, number | null | undefined>>;

/** Value names kept per pump at most (the validator allows 256 per reading); others are not kept. */
const MAX_COLUMNS = 256;

export class ValueHistory {
  private readonly names: string[] = [];
  private readonly index = new Map<string, number>();
  private columns: Float64Array[] = [];
  private times: Float64Array | null;
  private head = 0; // the slot the next reading goes to
  private count = 0;

  constructor(
    private cap: number,
    withTimestamps = false,
  ) {
    this.times = withTimestamps ? new Float64Array(cap) : null;
  }

  get size(): number {
    return this.count;
  }

  get capacity(): number {
    return this.cap;
  }

  /** Keeps up to `capacity` readings from now on (never fewer than now); the readings kept stay. */
  grow(capacity: number): void {
    if (capacity <= this.cap) return;
    const move = (old: Float64Array, fill: number): Float64Array => {
      const fresh = new Float64Array(capacity).fill(fill);
      for (let age = this.count - 1, to = 0; age >= 0; age--, to++) fresh[to] = old[this.slot(age)]!;
      return fresh;
    };
    this.columns = this.columns.map((c) => move(c, Number.NaN));
    if (this.times) this.times = move(this.times, 0);
    this.head = this.count;
    this.cap = capacity;
  }

  push(values: Values, ts = 0): void {
    const at = this.head;
    let known = 0;
    for (let c = 0; c < this.names.length; c++) {
      const v = values[this.names[c]!];
      if (carried(v)) known++;
      this.columns[c]![at] = typeof v === 'number' ? v : Number.NaN;
    }
    if (hasMoreKeysThan(values, known)) this.addColumns(values, at); // a name not seen before
    if (this.times) this.times[at] = ts;
    this.head = (at + 1) % this.cap;
    if (this.count < this.cap) this.count++;
  }

  /** Forgets the newest `n` readings (a batch whose commit failed); the oldest they overwrote stay lost. */
  dropNewest(n: number): void {
    const k = Math.min(Math.max(0, n), this.count);
    this.head = (this.head - k + this.cap) % this.cap;
    this.count -= k;
  }

  /** The values of the reading `age` readings before the newest (0 = the newest), finite ones only. */
  valuesAt(age: number): Record<string, number> {
    const slot = this.slot(age);
    const out: Record<string, number> = {};
    for (let c = 0; c < this.names.length; c++) {
      const v = this.columns[c]![slot]!;
      if (!Number.isNaN(v)) out[this.names[c]!] = v;
    }
    return out;
  }

  /**
   * True when the reading `age` readings before the newest had exactly these values: the same
   * number for every name kept, and no value where it had none (nulls and missing names alike).
   */
  sameValuesAt(age: number, values: Values): boolean {
    const slot = this.slot(age);
    let known = 0;
    for (let c = 0; c < this.names.length; c++) {
      const v = values[this.names[c]!];
      if (carried(v)) known++;
      const kept = this.columns[c]![slot]!;
      if (typeof v === 'number' && !Number.isNaN(v) ? kept !== v : !Number.isNaN(kept)) return false;
    }
    // A name this history never kept (a column over MAX_COLUMNS aside) is a value the other lacked.
    return !hasMoreKeysThan(values, known) || this.names.length >= MAX_COLUMNS;
  }

  /** True when a kept reading has this timestamp and these values (sameValuesAt); a plain scan of the timestamps. */
  holds(ts: number, values: Values): boolean {
    const times = this.times;
    if (!times) return false;
    for (let i = 0; i < this.count; i++) {
      const slot = (this.head - 1 - i + this.cap) % this.cap; // slot(i) without its argument checks: runs per kept reading
      if (times[slot] === ts && this.sameValuesAt(i, values)) return true;
    }
    return false;
  }

  /** The timestamp of the reading `age` readings before the newest (0 when none were kept). */
  tsAt(age: number): number {
    return this.times ? this.times[this.slot(age)]! : 0;
  }

  private slot(age: number): number {
    if (!Number.isInteger(age) || age < 0 || age >= this.count) throw new RangeError(`no reading ${age} back (${this.count} kept)`);
    return (this.head - 1 - age + this.cap * 2) % this.cap;
  }

  private addColumns(values: Values, at: number): void {
    for (const name in values) {
      if (this.index.has(name) || this.names.length >= MAX_COLUMNS) continue;
      const v = values[name];
      if (!carried(v)) continue;
      const column = new Float64Array(this.cap).fill(Number.NaN);
      column[at] = typeof v === 'number' ? v : Number.NaN;
      this.index.set(name, this.names.length);
      this.names.push(name);
      this.columns.push(column);
    }
  }
}

function hasMoreKeysThan(values: Values, n: number): boolean {
  let keys = 0;
  for (const name in values) if (carried(values[name]) && ++keys > n) return true;
  return false;
}

/**
 * The reading carries this name (a number, or null for "no value"). Not `!== undefined`: a name
 * every object inherits (`constructor`, `toString`) looked up in a reading without it gives a
 * function, which counted as a value the reading had, so a new name in that reading was not kept
 * and a resend check could match a reading that differed.
 */
function carried(v: unknown): boolean {
  return typeof v === 'number' || v === null;
}
