/**
 * Eigen-decomposition of a real symmetric matrix by the cyclic Jacobi method (Float64).
 * Small matrices only (sensor counts): O(n^3) per sweep, converges in a handful of sweeps.
 */

export interface Eigen {
  /** Eigenvalues, largest first. */
  values: Float64Array;
  /** vectors[k] is the unit eigenvector of values[k]; its largest-magnitude entry is positive. */
  vectors: Float64Array[];
}

const MAX_SWEEPS = 100;

export function symmetricEigen(matrix: readonly ArrayLike<number>[]): Eigen {
  const n = matrix.length;
  const a = matrix.map((row, i) => {
    if (row.length !== n) throw new Error(`symmetricEigen: row ${i} has ${row.length} entries, expected ${n}`);
    return Float64Array.from(row);
  });
  const v = Array.from({ length: n }, (_, i) => {
    const r = new Float64Array(n);
    r[i] = 1;
    return r;
  });
  for (let sweep = 0; sweep < MAX_SWEEPS; sweep++) {
    if (offDiagonalNorm(a) <= 1e-22 * Math.max(1e-300, diagonalNorm(a))) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) rotate(a, v, p, q);
    }
  }
  return sortedPairs(a, v);
}

function offDiagonalNorm(a: Float64Array[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) for (let j = 0; j < a.length; j++) if (i !== j) s += at(a, i, j) ** 2;
  return s;
}

function diagonalNorm(a: Float64Array[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += at(a, i, i) ** 2;
  return s;
}

function at(a: Float64Array[], i: number, j: number): number {
  return (a[i] as Float64Array)[j] as number;
}

/** One Jacobi rotation that zeroes a[p][q]; accumulates the rotation into v (columns = eigenvectors). */
function rotate(a: Float64Array[], v: Float64Array[], p: number, q: number): void {
  const apq = at(a, p, q);
  if (apq === 0) return;
  const app = at(a, p, p);
  const aqq = at(a, q, q);
  const theta = (aqq - app) / (2 * apq);
  const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
  const c = 1 / Math.sqrt(t * t + 1);
  const s = t * c;
  const n = a.length;
  for (let k = 0; k < n; k++) {
    const rk = a[k] as Float64Array;
    const akp = rk[p] as number;
    const akq = rk[q] as number;
    rk[p] = c * akp - s * akq;
    rk[q] = s * akp + c * akq;
  }
  const rp = a[p] as Float64Array;
  const rq = a[q] as Float64Array;
  for (let k = 0; k < n; k++) {
    const apk = rp[k] as number;
    const aqk = rq[k] as number;
    rp[k] = c * apk - s * aqk;
    rq[k] = s * apk + c * aqk;
  }
  for (let k = 0; k < n; k++) {
    const rk = v[k] as Float64Array;
    const vkp = rk[p] as number;
    const vkq = rk[q] as number;
    rk[p] = c * vkp - s * vkq;
    rk[q] = s * vkp + c * vkq;
  }
}

function sortedPairs(a: Float64Array[], v: Float64Array[]): Eigen {
  const n = a.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => at(a, j, j) - at(a, i, i) || i - j);
  const values = Float64Array.from(order, (i) => at(a, i, i));
  const vectors = order.map((col) => {
    const vec = Float64Array.from({ length: n }, (_, k) => at(v, k, col));
    let big = 0;
    for (let k = 0; k < n; k++) if (Math.abs(vec[k] as number) > Math.abs(vec[big] as number)) big = k;
    if ((vec[big] as number) < 0) for (let k = 0; k < n; k++) vec[k] = -(vec[k] as number);
    return vec;
  });
  return { values, vectors };
}
