/** Column statistics on row-major Float64 data (rows of equal length). */

export function columnMeans(rows: readonly Float64Array[]): Float64Array {
  const n = rows[0]?.length ?? 0;
  const mean = new Float64Array(n);
  for (const row of rows) for (let j = 0; j < n; j++) mean[j] = (mean[j] as number) + (row[j] as number);
  for (let j = 0; j < n; j++) mean[j] = (mean[j] as number) / rows.length;
  return mean;
}

/** Sample standard deviations (n - 1) around the given means. */
export function columnStds(rows: readonly Float64Array[], mean: Float64Array): Float64Array {
  const n = mean.length;
  const sq = new Float64Array(n);
  for (const row of rows) for (let j = 0; j < n; j++) sq[j] = (sq[j] as number) + ((row[j] as number) - (mean[j] as number)) ** 2;
  return sq.map((s) => Math.sqrt(s / Math.max(1, rows.length - 1)));
}

/** Sample covariance matrix (n - 1) of already-centred rows. */
export function covariance(centred: readonly Float64Array[]): Float64Array[] {
  const n = centred[0]?.length ?? 0;
  const cov = Array.from({ length: n }, () => new Float64Array(n));
  for (const row of centred) {
    for (let i = 0; i < n; i++) {
      const ri = row[i] as number;
      const ci = cov[i] as Float64Array;
      for (let j = i; j < n; j++) ci[j] = (ci[j] as number) + ri * (row[j] as number);
    }
  }
  const d = Math.max(1, centred.length - 1);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      const v = ((cov[i] as Float64Array)[j] as number) / d;
      (cov[i] as Float64Array)[j] = v;
      (cov[j] as Float64Array)[i] = v;
    }
  }
  return cov;
}

/** The q-quantile (0..1) with linear interpolation between order statistics (numpy's default). */
export function quantile(values: ArrayLike<number>, q: number): number {
  if (values.length === 0) throw new Error('quantile of no values');
  return quantileSorted(Float64Array.from(values).sort(), Math.min(1, Math.max(0, q)));
}

/** The q-quantile (0..1) of values already sorted, interpolated as `quantile` does; NaN when there are none. */
export function quantileSorted(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return (sorted[lo] as number) + (pos - lo) * ((sorted[hi] as number) - (sorted[lo] as number));
}

/** The first index whose value is not below `value`, in values sorted ascending (their length when every one is). */
export function lowerBound(sorted: ArrayLike<number>, value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as number) < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The first index whose value is above `value`, in values sorted ascending (their length when none is). */
export function upperBound(sorted: ArrayLike<number>, value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as number) <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
