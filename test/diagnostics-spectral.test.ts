/**
 * The spectra of recurrent blocks (lib/diagnostics/spectral.ts): eigenvalues of real
 * nonsymmetric matrices against known ones (a rotation's complex pair, a triangular matrix's
 * diagonal, a 4x4 computed once with numpy.linalg.eigvals), against the characteristic
 * polynomial (Faddeev-LeVerrier) for random matrices of odd sizes, and the largest singular
 * value against a power-free bound check; the native versions (engine/diagnostics.cc) against
 * these.
 */
import { NonFiniteError, ShapeError } from '../lib';
import { Eigenvalue, eigenvalues, largestSingularValue, spectralRadius } from '../lib/diagnostics/spectral';
import { blockSpectrum } from '../lib/diagnostics/sources';
import { mulberry32 } from './helpers/oracle-checks';

function sorted(e: Eigenvalue[]): Eigenvalue[] {
  return [...e].sort((a, b) => a.re - b.re || a.im - b.im);
}

function expectClose(got: Eigenvalue[], want: Eigenvalue[], tol: number): void {
  expect(got.length).toBe(want.length);
  const g = sorted(got);
  const w = sorted(want);
  for (let i = 0; i < g.length; i++) {
    expect(Math.abs(g[i].re - w[i].re)).toBeLessThan(tol);
    expect(Math.abs(g[i].im - w[i].im)).toBeLessThan(tol);
  }
}

/** Coefficients c_0..c_n of det(λI - A) = Σ c_k λ^k (c_n = 1), by Faddeev-LeVerrier. */
function characteristic(a: Float64Array, n: number): Float64Array {
  const c = new Float64Array(n + 1);
  c[n] = 1;
  let M = new Float64Array(n * n); // M_0 = 0
  for (let k = 1; k <= n; k++) {
    const next = new Float64Array(n * n);
    // M_k = A M_{k-1} + c_{n-k+1} I
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let q = 0; q < n; q++) s += a[i * n + q] * M[q * n + j];
        next[i * n + j] = s + (i === j ? c[n - k + 1] : 0);
      }
    M = next;
    let tr = 0;
    for (let i = 0; i < n; i++) for (let q = 0; q < n; q++) tr += a[i * n + q] * M[q * n + i];
    c[n - k] = -tr / k;
  }
  return c;
}

describe('eigenvalues', () => {
  test('a rotation has the complex pair cos θ ± i sin θ (power iteration would oscillate)', () => {
    const th = 0.7;
    expectClose(eigenvalues([Math.cos(th), -Math.sin(th), Math.sin(th), Math.cos(th)], 2), [
      { re: Math.cos(th), im: Math.sin(th) },
      { re: Math.cos(th), im: -Math.sin(th) },
    ], 1e-14);
    // 1.2 × a rotation and diag(0.5, -0.4) as blocks, conjugated by a permutation: ρ = 1.2.
    const c = 1.2 * Math.cos(0.3);
    const s = 1.2 * Math.sin(0.3);
    const blocks = [c, -s, 0, 0, s, c, 0, 0, 0, 0, 0.5, 0, 0, 0, 0, -0.4];
    const perm = [2, 0, 3, 1];
    const r = Array.from({ length: 16 }, (_, k) => blocks[perm[Math.floor(k / 4)] * 4 + perm[k % 4]]);
    expect(spectralRadius(r, 4)).toBeCloseTo(1.2, 12);
    const e = eigenvalues(r, 4);
    const p = characteristic(Float64Array.from(r), 4);
    for (const { re, im } of e) expect(polyAbs(p, re, im)).toBeLessThan(1e-12);
  });

  test('a triangular matrix has its diagonal', () => {
    const a = [3, 1, -2, 7, 0, -1, 4, 2, 0, 0, 0.5, 9, 0, 0, 0, 2];
    expectClose(eigenvalues(a, 4), [3, -1, 0.5, 2].map((re) => ({ re, im: 0 })), 1e-12);
    expect(spectralRadius(a, 4)).toBeCloseTo(3, 12);
  });

  test('a 4x4 matches numpy.linalg.eigvals (computed once by hand)', () => {
    const a = [0.2, -1.1, 0.5, 0.3, 0.7, 0.1, -0.4, 0.9, -0.3, 0.8, 0.6, -0.2, 1.0, 0.05, -0.7, 0.4];
    expectClose(eigenvalues(a, 4), [
      { re: 0.66881398, im: 1.12437921 },
      { re: 0.66881398, im: -1.12437921 },
      { re: 0.5698816, im: 0 },
      { re: -0.60750957, im: 0 },
    ], 1e-7);
    // numpy.linalg.norm(A, 2)
    expect(largestSingularValue(a, 4, 4)).toBeCloseTo(1.832078192695793, 7);
  });

  test.each([1, 2, 3, 5, 9, 17])('random n = %i: every eigenvalue is a root of the characteristic polynomial; trace and count agree', (n) => {
    const rng = mulberry32(1000 + n);
    const a = Float64Array.from({ length: n * n }, () => 2 * rng() - 1);
    const e = eigenvalues(a, n);
    expect(e.length).toBe(n);
    const p = characteristic(a, n);
    for (const { re, im } of e) expect(polyAbs(p, re, im)).toBeLessThan(1e-9);
    let trace = 0;
    for (let i = 0; i < n; i++) trace += a[i * n + i];
    expect(e.reduce((s, x) => s + x.re, 0)).toBeCloseTo(trace, 10);
    expect(Math.abs(e.reduce((s, x) => s + x.im, 0))).toBeLessThan(1e-10);
  });

  test('ρ <= σ, and σ is ‖A v‖ at its maximiser (no unit vector does better)', () => {
    const rng = mulberry32(7);
    const n = 12;
    const a = Float64Array.from({ length: n * n }, () => 2 * rng() - 1);
    const sigma = largestSingularValue(a, n, n);
    expect(spectralRadius(a, n)).toBeLessThanOrEqual(sigma + 1e-12);
    for (let trial = 0; trial < 200; trial++) {
      const v = Float64Array.from({ length: n }, () => 2 * rng() - 1);
      const nv = Math.hypot(...v);
      let s = 0;
      for (let i = 0; i < n; i++) {
        let acc = 0;
        for (let j = 0; j < n; j++) acc += a[i * n + j] * v[j];
        s += acc * acc;
      }
      expect(Math.sqrt(s) / nv).toBeLessThanOrEqual(sigma * (1 + 1e-9));
    }
  });

  test('bad shapes are RangeErrors', () => {
    expect(() => eigenvalues([1, 2, 3], 2)).toThrow(RangeError);
    expect(() => eigenvalues([], 0)).toThrow(RangeError);
    expect(() => largestSingularValue([1, 2, 3], 2, 2)).toThrow(RangeError);
  });
});

/** |p(re + i im)| relative to Σ |c_k| |λ|^k (Horner in complex arithmetic). */
function polyAbs(c: Float64Array, re: number, im: number): number {
  let pr = 0;
  let pi = 0;
  let scale = 0;
  const mod = Math.hypot(re, im);
  for (let k = c.length - 1; k >= 0; k--) {
    const nr = pr * re - pi * im + c[k];
    const ni = pr * im + pi * re;
    pr = nr;
    pi = ni;
    scale = scale * mod + Math.abs(c[k]);
  }
  return Math.hypot(pr, pi) / scale;
}

describe('native blockSpectrum = the float64 TS versions', () => {
  test.each([1, 2, 5, 17, 64])('random n = %i', (n) => {
    const rng = mulberry32(2000 + n);
    const a = Float32Array.from({ length: n * n }, () => (2 * rng() - 1) / Math.sqrt(n));
    const native = blockSpectrum(a, n);
    expectClose(native.eigenvalues, eigenvalues(a, n), 1e-9);
    expect(native.singularValue).toBeCloseTo(largestSingularValue(a, n, n), 9);
  });

  test('a rotation block; bad blocks are typed errors', () => {
    const th = 0.4;
    expectClose(blockSpectrum(Float32Array.of(Math.cos(th), -Math.sin(th), Math.sin(th), Math.cos(th)), 2).eigenvalues, eigenvalues(Float32Array.of(Math.cos(th), -Math.sin(th), Math.sin(th), Math.cos(th)), 2), 1e-14);
    expect(() => blockSpectrum(new Float32Array(3), 2)).toThrow(ShapeError);
    expect(() => blockSpectrum(new Float32Array(4), 0)).toThrow(RangeError);
    expect(() => blockSpectrum(Float32Array.of(1, NaN, 0, 1), 2)).toThrow(NonFiniteError);
  });
});
