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

/**
 * For each forward output, the largest sum of absolute values of the terms that make it up
 * (|b| + |U x_t| + |W| |s_{t-1}| for the pre-activations, |c| + |V| |s_t| for the logits). A
 * float32 sum is accurate relative to this magnitude, not to its result, which cancellation can
 * make arbitrarily small; forward comparisons are made relative to it.
 */
export function forwardMagnitudes(p: Problem, states: ArrayLike<number>): { states: number; logits: number } {
  const { inputSize: D, hiddenSize: H, outputSize: K } = p.dims;
  const { steps: T, batch: B, input } = p.seq;
  const { U, W, b, V, c } = p.params;
  let pre = 0;
  let logit = 0;
  for (let t = 0; t < T; t++) {
    for (let r = 0; r < B; r++) {
      const row = t * B + r;
      for (let i = 0; i < H; i++) {
        let m = Math.abs(b[i]);
        if (input.kind === 'tokens') m += Math.abs(U[i * D + input.data[row]]);
        else for (let d = 0; d < D; d++) m += Math.abs(U[i * D + d] * input.data[row * D + d]);
        for (let j = 0; j < H; j++) {
          const prev = t === 0 ? (p.h0 ? p.h0[r * H + j] : 0) : states[((t - 1) * B + r) * H + j];
          m += Math.abs(W[i * H + j] * prev);
        }
        pre = Math.max(pre, m);
      }
      for (let k = 0; k < K; k++) {
        let m = Math.abs(c[k]);
        for (let i = 0; i < H; i++) m += Math.abs(V[k * H + i] * states[row * H + i]);
        logit = Math.max(logit, m);
      }
    }
  }
  // tanh' <= 1: a state's error is at most its pre-activation's.
  return { states: pre, logits: logit };
}

/** max |a - b| / max(max |b|, magnitude). */
export function relErrTo(a: ArrayLike<number>, b: ArrayLike<number>, magnitude: number): number {
  let diff = 0;
  let norm = magnitude;
  if (a.length !== b.length) return Infinity;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    norm = Math.max(norm, Math.abs(b[i]));
  }
  if (Number.isNaN(diff)) return Infinity;
  return norm === 0 ? diff : diff / norm;
}
