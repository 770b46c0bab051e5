/** The float64 vector and matrix operations the reference implementations are written with. */
import { FloatArray } from './backend';

/** y += A x for A [rows, cols] row-major. */
export function addMatVec(y: Float64Array, A: FloatArray, x: ArrayLike<number>, rows: number, cols: number): void {
  for (let i = 0; i < rows; i++) {
    let acc = 0;
    for (let j = 0; j < cols; j++) acc += A[i * cols + j] * x[j];
    y[i] += acc;
  }
}

/** y += A^T x for A [rows, cols] row-major. */
export function addMatTVec(y: Float64Array, A: FloatArray, x: ArrayLike<number>, rows: number, cols: number): void {
  for (let i = 0; i < rows; i++) {
    const xi = x[i];
    if (xi === 0) continue;
    for (let j = 0; j < cols; j++) y[j] += A[i * cols + j] * xi;
  }
}

/** G += u v^T for G [u.length, v.length]. */
export function addOuter(G: Float64Array, u: ArrayLike<number>, v: ArrayLike<number>): void {
  const n = v.length;
  for (let i = 0; i < u.length; i++) {
    const ui = u[i];
    if (ui === 0) continue;
    for (let j = 0; j < n; j++) G[i * n + j] += ui * v[j];
  }
}

/** Row `index` of a [*, width] matrix, as a view. */
export function row(a: Float64Array, index: number, width: number): Float64Array {
  return a.subarray(index * width, (index + 1) * width);
}
