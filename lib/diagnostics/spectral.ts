/**
 * Spectra of the recurrent blocks, in float64: every eigenvalue of a real nonsymmetric matrix
 * (reduction to upper Hessenberg form by Householder reflections, then the implicit double-shift
 * QR iteration of Francis with deflation; complex pairs come out as pairs), hence the spectral
 * radius, and the largest singular value by power iteration on A^T A.
 *
 * Why not power iteration for the spectral radius: a real matrix whose dominant eigenvalues are
 * a complex pair (a rotation, say) makes it oscillate forever.
 */

/** One eigenvalue re + i im. */
export interface Eigenvalue {
  re: number;
  im: number;
}

/** A copy of the square matrix a [n, n] (row-major) in upper Hessenberg form (same eigenvalues). */
function hessenberg(a: ArrayLike<number>, n: number): Float64Array {
  const h = Float64Array.from(a);
  const v = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    // The reflection I - 2 v v^T / (v^T v) zeroes column k below row k + 1.
    let alpha = 0;
    for (let i = k + 1; i < n; i++) alpha += h[i * n + k] * h[i * n + k];
    alpha = Math.sqrt(alpha);
    if (alpha === 0) continue;
    const x0 = h[(k + 1) * n + k];
    if (x0 > 0) alpha = -alpha;
    v.fill(0);
    v[k + 1] = x0 - alpha;
    for (let i = k + 2; i < n; i++) v[i] = h[i * n + k];
    let vv = 0;
    for (let i = k + 1; i < n; i++) vv += v[i] * v[i];
    if (vv === 0) continue;
    // H = P H P with P = I - 2 v v^T / vv: rows first, then columns.
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let i = k + 1; i < n; i++) s += v[i] * h[i * n + j];
      s = (2 * s) / vv;
      for (let i = k + 1; i < n; i++) h[i * n + j] -= s * v[i];
    }
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = k + 1; j < n; j++) s += h[i * n + j] * v[j];
      s = (2 * s) / vv;
      for (let j = k + 1; j < n; j++) h[i * n + j] -= s * v[j];
    }
    for (let i = k + 2; i < n; i++) h[i * n + k] = 0;
  }
  return h;
}

/** The two eigenvalues of [[a, b], [c, d]]. */
function eigen2(a: number, b: number, c: number, d: number): [Eigenvalue, Eigenvalue] {
  const mean = (a + d) / 2;
  const disc = ((a - d) / 2) ** 2 + b * c;
  if (disc >= 0) {
    const r = Math.sqrt(disc);
    return [
      { re: mean + r, im: 0 },
      { re: mean - r, im: 0 },
    ];
  }
  const r = Math.sqrt(-disc);
  return [
    { re: mean, im: r },
    { re: mean, im: -r },
  ];
}

/**
 * Every eigenvalue of the real square matrix a [n, n] (row-major), in float64. Throws RangeError
 * if the QR iteration does not converge (it does for any finite matrix in practice).
 */
export function eigenvalues(a: ArrayLike<number>, n: number): Eigenvalue[] {
  if (!Number.isSafeInteger(n) || n < 1 || a.length !== n * n) {
    throw new RangeError(`eigenvalues expects an n x n matrix (n >= 1) as n*n numbers, got ${a.length} numbers for n = ${n}`);
  }
  const h = hessenberg(a, n);
  const at = (i: number, j: number): number => h[i * n + j];
  const out: Eigenvalue[] = [];
  let norm = 0;
  for (let i = 0; i < n * n; i++) norm = Math.max(norm, Math.abs(h[i]));
  let hi = n - 1; // the active block is rows/columns [lo, hi]
  let iterations = 0;
  while (hi >= 0) {
    // The lowest l whose subdiagonal entry h[l][l-1] is negligible splits the matrix there.
    let l = hi;
    while (l > 0) {
      const s = Math.abs(at(l - 1, l - 1)) + Math.abs(at(l, l)) || norm;
      if (Math.abs(at(l, l - 1)) <= Number.EPSILON * s) {
        h[l * n + l - 1] = 0;
        break;
      }
      l--;
    }
    if (l === hi) {
      out.push({ re: at(hi, hi), im: 0 });
      hi -= 1;
      iterations = 0;
      continue;
    }
    if (l === hi - 1) {
      out.push(...eigen2(at(hi - 1, hi - 1), at(hi - 1, hi), at(hi, hi - 1), at(hi, hi)));
      hi -= 2;
      iterations = 0;
      continue;
    }
    if (++iterations > 60 * n) throw new RangeError(`the QR iteration did not converge for a ${n} x ${n} matrix`);
    // Double shift from the trailing 2 x 2 block (its trace s and determinant t), replaced by an
    // exceptional shift now and then to break cycles.
    let s: number;
    let t: number;
    if (iterations % 11 === 10) {
      const w = Math.abs(at(hi, hi - 1)) + Math.abs(at(hi - 1, hi - 2));
      s = 1.5 * w;
      t = w * w;
    } else {
      s = at(hi - 1, hi - 1) + at(hi, hi);
      t = at(hi - 1, hi - 1) * at(hi, hi) - at(hi - 1, hi) * at(hi, hi - 1);
    }
    // First column of (H - s1 I)(H - s2 I) = H^2 - s H + t I: three non-zeros.
    let x = at(l, l) * at(l, l) + at(l, l + 1) * at(l + 1, l) - s * at(l, l) + t;
    let y = at(l + 1, l) * (at(l, l) + at(l + 1, l + 1) - s);
    let z = at(l + 1, l) * at(l + 2, l + 1);
    // Chase the bulge down with 3-element Householder reflections. Only the active block is
    // transformed: eigenvalues need nothing outside it.
    for (let k = l; k <= hi - 2; k++) {
      const alpha = Math.hypot(x, y, z);
      if (alpha !== 0) {
        const sign = x >= 0 ? 1 : -1;
        const v0 = x + sign * alpha;
        const v1 = y;
        const v2 = z;
        const vv = v0 * v0 + v1 * v1 + v2 * v2;
        const first = Math.max(l, k - 1);
        for (let j = first; j <= hi; j++) {
          const p = (2 * (v0 * at(k, j) + v1 * at(k + 1, j) + v2 * at(k + 2, j))) / vv;
          h[k * n + j] -= p * v0;
          h[(k + 1) * n + j] -= p * v1;
          h[(k + 2) * n + j] -= p * v2;
        }
        const last = Math.min(hi, k + 3);
        for (let i = l; i <= last; i++) {
          const p = (2 * (at(i, k) * v0 + at(i, k + 1) * v1 + at(i, k + 2) * v2)) / vv;
          h[i * n + k] -= p * v0;
          h[i * n + k + 1] -= p * v1;
          h[i * n + k + 2] -= p * v2;
        }
      }
      x = at(k + 1, k);
      y = at(k + 2, k);
      z = k < hi - 2 ? at(k + 3, k) : 0;
    }
    // The last 2-element reflection restores the Hessenberg form in rows hi - 1, hi.
    const alpha = Math.hypot(x, y);
    if (alpha !== 0) {
      const k = hi - 1;
      const sign = x >= 0 ? 1 : -1;
      const v0 = x + sign * alpha;
      const v1 = y;
      const vv = v0 * v0 + v1 * v1;
      for (let j = Math.max(l, k - 1); j <= hi; j++) {
        const p = (2 * (v0 * at(k, j) + v1 * at(k + 1, j))) / vv;
        h[k * n + j] -= p * v0;
        h[(k + 1) * n + j] -= p * v1;
      }
      for (let i = l; i <= hi; i++) {
        const p = (2 * (at(i, k) * v0 + at(i, k + 1) * v1)) / vv;
        h[i * n + k] -= p * v0;
        h[i * n + k + 1] -= p * v1;
      }
    }
    // Round-off below the subdiagonal is not carried: the form stays Hessenberg by construction.
    for (let i = l + 2; i <= hi; i++) for (let j = l; j < i - 1; j++) h[i * n + j] = 0;
  }
  return out;
}

/** max |λ| over the eigenvalues of a [n, n]. */
export function spectralRadius(a: ArrayLike<number>, n: number): number {
  let r = 0;
  for (const e of eigenvalues(a, n)) r = Math.max(r, Math.hypot(e.re, e.im));
  return r;
}

/**
 * The largest singular value of a [rows, cols] (row-major), by power iteration on a^T a from a
 * fixed start, in float64, until the estimate moves by less than `tolerance` (relative) or after
 * `maxIterations`.
 */
export function largestSingularValue(a: ArrayLike<number>, rows: number, cols: number, tolerance = 1e-10, maxIterations = 2000): number {
  if (a.length !== rows * cols) throw new RangeError(`largestSingularValue expects ${rows}*${cols} numbers, got ${a.length}`);
  // A start with a component along every direction (a constant vector can be orthogonal to the top one).
  let v = Float64Array.from({ length: cols }, (_, i) => 1 + ((i * 0.618033988749895) % 1));
  const w = new Float64Array(rows);
  let sigma = 0;
  for (let it = 0; it < maxIterations; it++) {
    let nv = 0;
    for (const x of v) nv += x * x;
    nv = Math.sqrt(nv);
    if (nv === 0) return 0;
    for (let j = 0; j < cols; j++) v[j] /= nv;
    w.fill(0);
    for (let i = 0; i < rows; i++) {
      let acc = 0;
      for (let j = 0; j < cols; j++) acc += a[i * cols + j] * v[j];
      w[i] = acc;
    }
    const next = new Float64Array(cols);
    let nw = 0;
    for (let i = 0; i < rows; i++) {
      nw += w[i] * w[i];
      const wi = w[i];
      if (wi === 0) continue;
      for (let j = 0; j < cols; j++) next[j] += a[i * cols + j] * wi;
    }
    const estimate = Math.sqrt(nw); // ‖A v‖ for unit v: a lower bound that rises to σ_max
    v = next;
    if (Math.abs(estimate - sigma) <= tolerance * estimate) return estimate;
    sigma = estimate;
  }
  return sigma;
}
