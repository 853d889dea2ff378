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
  private readonly columns: Float64Array[] = [];
  private readonly times: Float64Array | null;
  private head = 0; // the slot the next reading goes to
  private count = 0;

  constructor(
    readonly capacity: number,
    withTimestamps = false,
  ) {
    this.times = withTimestamps ? new Float64Array(capacity) : null;
  }

  get size(): number {
    return this.count;
  }

  push(values: Values, ts = 0): void {
    const at = this.head;
    let known = 0;
    for (let c = 0; c < this.names.length; c++) {
      const v = values[this.names[c]!];
      if (v !== undefined) known++;
      this.columns[c]![at] = typeof v === 'number' ? v : Number.NaN;
    }
    if (hasMoreKeysThan(values, known)) this.addColumns(values, at); // a name not seen before
    if (this.times) this.times[at] = ts;
    this.head = (at + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
  }

  /** Forgets the newest `n` readings (a batch whose commit failed); the oldest they overwrote stay lost. */
  dropNewest(n: number): void {
    const k = Math.min(Math.max(0, n), this.count);
    this.head = (this.head - k + this.capacity) % this.capacity;
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

  /** The timestamp of the reading `age` readings before the newest (0 when none were kept). */
  tsAt(age: number): number {
    return this.times ? this.times[this.slot(age)]! : 0;
  }

  private slot(age: number): number {
    if (!Number.isInteger(age) || age < 0 || age >= this.count) throw new RangeError(`no reading ${age} back (${this.count} kept)`);
    return (this.head - 1 - age + this.capacity * 2) % this.capacity;
  }

  private addColumns(values: Values, at: number): void {
    for (const name in values) {
      if (this.index.has(name) || this.names.length >= MAX_COLUMNS) continue;
      const v = values[name];
      if (v === undefined) continue;
      const column = new Float64Array(this.capacity).fill(Number.NaN);
      column[at] = typeof v === 'number' ? v : Number.NaN;
      this.index.set(name, this.names.length);
      this.names.push(name);
      this.columns.push(column);
    }
  }
}

function hasMoreKeysThan(values: Values, n: number): boolean {
  let keys = 0;
  for (const name in values) if (values[name] !== undefined && ++keys > n) return true;
  return false;
}
