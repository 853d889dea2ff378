/**
 * The bound every scaled value a score is built from is clipped to, in the graphs and in the
 * in-memory scorers alike (so parity holds), so that a reading far off saturates the score
 * instead of overflowing float32.
 *
 * The agent takes any reading within float32, and calls a non-finite score below ±1e15 the
 * model's fault (inference/engine.ts `EXTREME_VALUE`): it rolls the model back. A feature with a
 * small scale (a vibration of 0.002 ± 1e-7: scale 4e-8) puts a reading of 1e14 at 2.5e21 scales;
 * its square overflows float32 (3.4e38) and the kernel weights become NaN. Clipped to ±1e9 scales:
 * - far beyond any alarm (thresholds are 2.5–4 scales; normal training readings lie within
 *   tens), so no score of normal data changes;
 * - squares stay ≤ 1e18 (of a difference of two clipped values, ≤ 4e18), summed over 256
 *   features ≤ 1e21, and times the largest kernel gain (5e5, bandwidth² ≥ 1e-6) ≤ 5e26: finite
 *   in float32 with 11 orders of magnitude to spare (pca: a whitened score is at most 1e9 · 1e6,
 *   as a kept eigenvalue is ≥ 1e-12 of the total, so T² stays below 3e32);
 * - and far enough that readings merely far off (a sensor stuck at full scale, 1e4 on a scale
 *   of 1e-2: 1e6 scales) are not clipped: at a lower bound of 1e6 the relation residuals of
 *   several sensors all hit it and tied, and an alert named a healthy sensor before the stuck one.
 * One reading beyond the bound makes a window mean of 1e9 / window scales: the score is finite
 * and far above the threshold. Error codes beyond the agent's EXTREME_VALUE (1e20, float32 max)
 * saturate the same way instead of overflowing; the agent leaves their windows unscored.
 */
export const SCALED_LIMIT = 1e9;

/** `v` clipped to ±SCALED_LIMIT, as the graph's Clip does (NaN stays NaN). */
export function clipScaled(v: number): number {
  return v > SCALED_LIMIT ? SCALED_LIMIT : v < -SCALED_LIMIT ? -SCALED_LIMIT : v;
}
