/**
 * The exponential decay fitted to a per-lag gradient profile: what diagnose() reports as
 * decayRate and the reports draw over the profile. One fit, so the two never disagree.
 */

/** The fitted exponential decay of a per-lag profile: ‖g_m‖ ≈ scale · factor^m. */
export interface DecayFit {
  /** Per step: < 1 the gradient fades with the lag, > 1 it grows. */
  factor: number;
  scale: number;
  /** Lags used (m >= 1, finite, positive norms). */
  count: number;
}

/**
 * Least-squares fit of ln ‖g_m‖ = ln scale + m ln factor over the lags m >= 1 whose norm is finite
 * and positive (lag 0 holds each step's own, direct loss term, so it is left out as diagnose()'s
 * decayRate leaves it out); null with fewer than 2 such lags.
 */
export function fitDecayRate(perLag: ArrayLike<number | null>): DecayFit | null {
  let n = 0;
  let sx = 0;
  let sy = 0;
  let sxx = 0;
  let sxy = 0;
  for (let m = 1; m < perLag.length; m++) {
    const g = perLag[m];
    if (g === null || !(g > 0) || !Number.isFinite(g)) continue;
    const y = Math.log(g);
    n++;
    sx += m;
    sy += y;
    sxx += m * m;
    sxy += m * y;
  }
  const den = n * sxx - sx * sx;
  if (n < 2 || den === 0) return null;
  const slope = (n * sxy - sx * sy) / den;
  return { factor: Math.exp(slope), scale: Math.exp((sy - slope * sx) / n), count: n };
}
