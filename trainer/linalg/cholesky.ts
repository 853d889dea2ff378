/** Solving A·x = b for a symmetric positive definite A (a ridge system): Cholesky, Float64. */
import { FitError } from '../errors.js';

/** x with A·x = b; `a` is n × n, symmetric positive definite (throws a FitError when it is not). */
export function solveSpd(a: readonly ArrayLike<number>[], b: ArrayLike<number>): Float64Array {
  const n = b.length;
  const l = Array.from({ length: n }, () => new Float64Array(n));
  for (let i = 0; i < n; i++) {
    const li = l[i] as Float64Array;
    for (let j = 0; j <= i; j++) {
      const lj = l[j] as Float64Array;
      let s = (a[i] as ArrayLike<number>)[j] as number;
      for (let k = 0; k < j; k++) s -= (li[k] as number) * (lj[k] as number);
      if (i === j) {
        if (!(s > 0)) throw new FitError('the ridge system is not positive definite');
        li[i] = Math.sqrt(s);
      } else li[j] = s / (lj[j] as number);
    }
  }
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b[i] as number;
    for (let k = 0; k < i; k++) s -= ((l[i] as Float64Array)[k] as number) * (y[k] as number);
    y[i] = s / ((l[i] as Float64Array)[i] as number);
  }
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i] as number;
    for (let k = i + 1; k < n; k++) s -= ((l[k] as Float64Array)[i] as number) * (x[k] as number);
    x[i] = s / ((l[i] as Float64Array)[i] as number);
  }
  return x;
}
