/** Shared test utilities: a seeded PRNG, random RNN problems, and error measures. */
import { Dims, ParamArrays, Sequence } from '../../lib/backend';

export type Random = () => number;

/** mulberry32: a tiny seeded PRNG, uniform in [0, 1). */
export function mulberry32(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ProblemSpec {
  D: number;
  H: number;
  K: number;
  T: number;
  B: number;
  kind: 'tokens' | 'dense';
  /** Fraction of targets set to -1 (ignored). */
  ignoreFraction?: number;
  withH0?: boolean;
  /** Half-width of the uniform parameter init; default 1/sqrt(H) like the library's. */
  scale?: number;
}

export interface Problem {
  dims: Dims;
  params: ParamArrays<Float32Array>;
  seq: Sequence;
  targets: Int32Array;
  h0: Float32Array | null;
}

function uniform(rng: Random, n: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (2 * rng() - 1) * scale;
  return a;
}

export function randomProblem(rng: Random, spec: ProblemSpec): Problem {
  const { D, H, K, T, B } = spec;
  const s = spec.scale ?? 1 / Math.sqrt(H);
  const params = { U: uniform(rng, H * D, s), W: uniform(rng, H * H, s), b: uniform(rng, H, s), V: uniform(rng, K * H, s), c: uniform(rng, K, s) };
  let seq: Sequence;
  if (spec.kind === 'tokens') {
    const data = new Int32Array(T * B);
    for (let i = 0; i < data.length; i++) data[i] = Math.floor(rng() * D);
    seq = { steps: T, batch: B, input: { kind: 'tokens', data } };
  } else {
    seq = { steps: T, batch: B, input: { kind: 'dense', data: uniform(rng, T * B * D, 1) } };
  }
  const targets = new Int32Array(T * B);
  const ignore = spec.ignoreFraction ?? 0;
  for (let i = 0; i < targets.length; i++) targets[i] = rng() < ignore ? -1 : Math.floor(rng() * K);
  const h0 = spec.withH0 ? uniform(rng, B * H, 0.9) : null;
  return { dims: { inputSize: D, hiddenSize: H, outputSize: K }, params, seq, targets, h0 };
}

/** max |a - b| / max |b|: the error relative to the reference's norm (0 when both are zero). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    norm = Math.max(norm, Math.abs(b[i]));
  }
  if (Number.isNaN(diff)) return Infinity;
  return norm === 0 ? diff : diff / norm;
}
