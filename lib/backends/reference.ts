/**
 * The specification: a pure-TS, float64 implementation of the Elman RNN and its exact and
 * truncated BPTT gradients, written for clarity rather than speed. It needs no addon (it also
 * runs in a browser) and every native kernel is tested against it. It also exports the analyses
 * that make vanishing gradients and truncation bias visible: lagGradientNorms,
 * jacobianProductNorms and truncationBias.
 *
 * Notation (per batch row, time-major, see lib/backend.ts):
 *   pre_t = U x_t + W s_{t-1} + b,  s_t = tanh(pre_t),  z_t = V s_t + c,
 *   L_t = -log softmax(z_t)[target_t],  s_{-1} = h0.
 */
import {
  Backend,
  Dims,
  FloatArray,
  ForwardResult,
  GradientOptions,
  GradientResult,
  Gradients,
  PARAM_NAMES,
  ParamArrays,
  ParamName,
  Reduction,
  Sequence,
  checkForwardRequest,
  checkGradientRequest,
  checkSize,
  describeValue,
} from '../backend';
import { layerBackward, layerForward } from '../engine/reference';
import { addMatTVec, addMatVec, addOuter, row } from '../math64';
import { LayerBackend, LayerBackwardArgs, LayerBackwardResult, LayerBatch, LayerForwardOptions, LayerForwardResult, LayerSpec, LayerWeights, SavedForward } from '../engine/spec';

/** The per-row input x_r as a vector (dense) or its one-hot index (tokens). */
interface InputRow {
  token: number; // -1 for dense rows
  dense: Float32Array | null;
}

function inputRow(seq: Sequence, r: number, D: number): InputRow {
  return seq.input.kind === 'tokens' ? { token: seq.input.data[r], dense: null } : { token: -1, dense: seq.input.data.subarray(r * D, (r + 1) * D) };
}

/** Forward pass in float64, after validation. */
function forwardF64(dims: Dims, params: ParamArrays, seq: Sequence, h0: FloatArray | null): ForwardResult<Float64Array> {
  const { inputSize: D, hiddenSize: H, outputSize: K } = dims;
  const { steps: T, batch: B } = seq;
  const states = new Float64Array(T * B * H);
  const logits = new Float64Array(T * B * K);
  const initial = h0 ? Float64Array.from(h0) : new Float64Array(B * H);
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < B; b++) {
      const r = t * B + b;
      const prev = t === 0 ? row(initial, b, H) : row(states, (t - 1) * B + b, H);
      const pre = Float64Array.from(params.b);
      const x = inputRow(seq, r, D);
      if (x.dense) addMatVec(pre, params.U, x.dense, H, D);
      else for (let i = 0; i < H; i++) pre[i] += params.U[i * D + x.token];
      addMatVec(pre, params.W, prev, H, H);
      const s = row(states, r, H);
      for (let i = 0; i < H; i++) s[i] = Math.tanh(pre[i]);
      const z = row(logits, r, K);
      z.set(params.c);
      addMatVec(z, params.V, s, K, H);
    }
  }
  return { states, logits, hT: states.slice((T - 1) * B * H) };
}

/** The factor every loss term and gradient is multiplied by: 1/count for 'mean', else 1. */
interface LossScale {
  counted: number;
  scale: number;
}

function lossScale(targets: Int32Array, reduction: Reduction): LossScale {
  let counted = 0;
  for (const y of targets) if (y >= 0) counted++;
  return { counted, scale: reduction === 'mean' && counted > 0 ? 1 / counted : 1 };
}

interface OutputLayer {
  /** The reduced loss; 'mean' divides the sum by the count rather than multiplying by 1/count, to match a plain mean exactly. */
  loss: number;
  dV: Float64Array;
  dc: Float64Array;
  /** e_t = dL_t/ds_t through V only, [T, B, H]; zero rows where the target is ignored. */
  e: Float64Array;
}

/** Output layer: the loss, dz = scale (softmax(z) - onehot), and what it sends back to each state. */
function outputLayer(dims: Dims, params: ParamArrays, f: ForwardResult<Float64Array>, targets: Int32Array, { counted, scale }: LossScale): OutputLayer {
  const { hiddenSize: H, outputSize: K } = dims;
  const dV = new Float64Array(K * H);
  const dc = new Float64Array(K);
  const e = new Float64Array(targets.length * H);
  let loss = 0;
  for (let r = 0; r < targets.length; r++) {
    const y = targets[r];
    if (y < 0) continue;
    const z = row(f.logits, r, K);
    let max = -Infinity;
    for (const v of z) max = Math.max(max, v);
    let sum = 0;
    for (const v of z) sum += Math.exp(v - max);
    const logSumExp = max + Math.log(sum);
    loss += logSumExp - z[y];
    const dz = new Float64Array(K);
    for (let k = 0; k < K; k++) dz[k] = scale * (Math.exp(z[k] - logSumExp) - (k === y ? 1 : 0));
    addOuter(dV, dz, row(f.states, r, H));
    for (let k = 0; k < K; k++) dc[k] += dz[k];
    addMatTVec(row(e, r, H), params.V, dz, K, H);
  }
  return { loss: scale === 1 ? loss : loss / counted, dV, dc, e };
}

/** One step back through the recurrence: dL/ds_{i-1} = W^T (dL/ds_i * (1 - s_i^2)). */
function backOneStep(W: FloatArray, s: Float64Array, ds: Float64Array): Float64Array {
  const H = s.length;
  const d = new Float64Array(H);
  for (let j = 0; j < H; j++) d[j] = ds[j] * (1 - s[j] * s[j]);
  const prev = new Float64Array(H);
  addMatTVec(prev, W, d, H, H);
  return prev;
}

/**
 * The specification as a {@link Backend} and a {@link LayerBackend}: pure TypeScript, float64,
 * written for clarity rather than speed, and needing no addon; `backends.reference` is the
 * instance to use. Every native kernel is tested against it. It accepts Float32Array and
 * Float64Array arguments and returns Float64Array results.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { ReferenceBackend, backends } from 'bptt';
 *
 * assert.ok(backends.reference instanceof ReferenceBackend);
 * const dims = { inputSize: 1, hiddenSize: 1, outputSize: 2 };
 * const params = { U: Float64Array.of(2), W: Float64Array.of(0), b: Float64Array.of(0), V: Float64Array.of(1, -1), c: Float64Array.of(0, 0) };
 * const { logits } = backends.reference.forward(dims, params, { steps: 1, batch: 1, input: { kind: 'tokens', data: Int32Array.of(0) } });
 * assert.deepEqual(Array.from(logits), [Math.tanh(2), -Math.tanh(2)]);
 * ```
 */
export class ReferenceBackend implements Backend<Float64Array>, LayerBackend<Float64Array> {
  readonly name = 'reference';

  /**
   * The recurrent engine's forward in float64 (lib/engine/reference.ts); the saved handle feeds layerBackward.
   * Same contract as {@link NativeBackend.layerForward}.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { backends, layerParameterShapes } from 'bptt';
   *
   * const spec = { cell: 'gru', inputSize: 2, hiddenSize: 3 } as const;
   * const weights = Object.fromEntries(Object.entries(layerParameterShapes(spec)).map(([name, shape]) => [name, new Float32Array(shape[0] * (shape[1] ?? 1)).fill(0.25)]));
   * const batch = { steps: 3, batch: 1, input: { kind: 'dense', data: Float32Array.of(1, 0, 0, 1, 1, 1) } } as const;
   * const ref = backends.reference.layerForward(spec, weights, batch);
   * const nat = backends.native.layerForward(spec, weights, batch);
   * ref.y.forEach((v, i) => assert.ok(Math.abs(v - nat.y[i]) < 1e-6));
   * nat.saved.dispose();
   * ```
   */
  layerForward(spec: LayerSpec, weights: LayerWeights, batch: LayerBatch, options?: LayerForwardOptions): LayerForwardResult<Float64Array> {
    return layerForward(spec, weights, batch, options);
  }

  /**
   * The recurrent engine's backward in float64: dx, dh0, dc0 and every weight's gradient from dy, dhT, dcT.
   * Same contract as {@link NativeBackend.layerBackward}.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { backends, layerParameterShapes } from 'bptt';
   *
   * const spec = { cell: 'tanh', inputSize: 1, hiddenSize: 1 } as const;
   * const weights = { weight_ih_l0: Float64Array.of(1), weight_hh_l0: Float64Array.of(0), bias_ih_l0: Float64Array.of(0), bias_hh_l0: Float64Array.of(0) };
   * assert.deepEqual(Object.keys(layerParameterShapes(spec)), Object.keys(weights));
   * const { y, saved } = backends.reference.layerForward(spec, weights, { steps: 1, batch: 1, input: { kind: 'dense', data: Float64Array.of(0.5) } });
   * const { dx } = backends.reference.layerBackward(spec, weights, saved, { dy: Float64Array.of(1) });
   * assert.ok(Math.abs(dx![0] - (1 - y[0] ** 2)) < 1e-15); // d tanh(x)/dx
   * ```
   */
  layerBackward(spec: LayerSpec, weights: LayerWeights, saved: SavedForward, args: LayerBackwardArgs): LayerBackwardResult<Float64Array> {
    return layerBackward(spec, weights, saved, args);
  }

  /** {@link Backend.forward} in float64. */
  forward(dims: Dims, params: ParamArrays, seq: Sequence, h0?: FloatArray | null): ForwardResult<Float64Array> {
    checkForwardRequest(dims, params, seq, h0);
    return forwardF64(dims, params, seq, h0 ?? null);
  }

  /** {@link Backend.lossAndGradients} in float64: truncated BPTT computed by its definition. */
  lossAndGradients(dims: Dims, params: ParamArrays, seq: Sequence, targets: Int32Array, options?: GradientOptions): GradientResult<Float64Array> {
    const o = checkGradientRequest(dims, params, seq, targets, options);
    const { inputSize: D, hiddenSize: H } = dims;
    const { steps: T, batch: B } = seq;
    const f = forwardF64(dims, params, seq, o.h0);
    const h0 = o.h0 ? Float64Array.from(o.h0) : new Float64Array(B * H);
    const prevState = (t: number, b: number) => (t === 0 ? row(h0, b, H) : row(f.states, (t - 1) * B + b, H));
    const out = outputLayer(dims, params, f, targets, lossScale(targets, o.reduction));
    const grads: Gradients<Float64Array> = {
      U: new Float64Array(H * D),
      W: new Float64Array(H * H),
      b: new Float64Array(H),
      V: out.dV,
      c: out.dc,
      h0: new Float64Array(B * H),
    };

    // dL/dpre_t for every t: the one quantity the recurrence shapes; every other gradient is a
    // sum of products with it.
    const dpre = o.truncate !== null && o.truncate < T ? this.truncatedPreGradients(dims, params, seq, f.states, out.e, o.truncate) : this.fullPreGradients(dims, params, seq, f.states, out.e);

    for (let t = 0; t < T; t++) {
      for (let b = 0; b < B; b++) {
        const r = t * B + b;
        const d = row(dpre, r, H);
        addOuter(grads.W, d, prevState(t, b));
        for (let i = 0; i < H; i++) grads.b[i] += d[i];
        const x = inputRow(seq, r, D);
        if (x.dense) addOuter(grads.U, d, x.dense);
        else for (let i = 0; i < H; i++) grads.U[i * D + x.token] += d[i];
        if (t === 0) addMatTVec(row(grads.h0, b, H), params.W, d, H, H);
      }
    }
    return { loss: out.loss, grads, hT: f.hT };
  }

  /** Full BPTT: ds_t = e_t + W^T dpre_{t+1}, dpre_t = ds_t (1 - s_t^2), from t = T-1 down. */
  private fullPreGradients(dims: Dims, params: ParamArrays, seq: Sequence, states: Float64Array, e: Float64Array): Float64Array {
    const H = dims.hiddenSize;
    const { steps: T, batch: B } = seq;
    const dpre = new Float64Array(T * B * H);
    for (let t = T - 1; t >= 0; t--) {
      for (let b = 0; b < B; b++) {
        const r = t * B + b;
        const ds = Float64Array.from(row(e, r, H));
        if (t + 1 < T) addMatTVec(ds, params.W, row(dpre, r + B, H), H, H);
        const s = row(states, r, H);
        const d = row(dpre, r, H);
        for (let i = 0; i < H; i++) d[i] = ds[i] * (1 - s[i] * s[i]);
      }
    }
    return dpre;
  }

  /**
   * Truncated BPTT by its definition: each L_t's gradient e_t travels back through
   * s_t, ..., s_{t-k+1} only, and dpre_i sums what arrives from every such t.
   */
  private truncatedPreGradients(dims: Dims, params: ParamArrays, seq: Sequence, states: Float64Array, e: Float64Array, k: number): Float64Array {
    const H = dims.hiddenSize;
    const { steps: T, batch: B } = seq;
    const dpre = new Float64Array(T * B * H);
    for (let t = 0; t < T; t++) {
      for (let b = 0; b < B; b++) {
        let ds = Float64Array.from(row(e, t * B + b, H));
        for (let i = t; i >= Math.max(0, t - k + 1); i--) {
          const s = row(states, i * B + b, H);
          const d = new Float64Array(H);
          for (let j = 0; j < H; j++) d[j] = ds[j] * (1 - s[j] * s[j]);
          const acc = row(dpre, i * B + b, H);
          for (let j = 0; j < H; j++) acc[j] += d[j];
          ds = new Float64Array(H);
          addMatTVec(ds, params.W, d, H, H);
        }
      }
    }
    return dpre;
  }
}

export const reference = new ReferenceBackend();

/*
 * Analysis: the quantities that make vanishing gradients and truncation bias visible. All in
 * float64 on the same forward pass as the oracle, validated like a gradient request.
 */

/**
 * What {@link lagGradientNorms} returns.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { lagGradientNorms, type LagGradientNorms } from 'bptt';
 *
 * const dims = { inputSize: 2, hiddenSize: 2, outputSize: 2 };
 * const params = { U: Float64Array.of(1, 0, 0, 1), W: Float64Array.of(0.5, 0, 0, 0.5), b: new Float64Array(2), V: Float64Array.of(1, 0, 0, 1), c: new Float64Array(2) };
 * const seq = { steps: 3, batch: 1, input: { kind: 'tokens', data: Int32Array.of(0, 1, 0) } } as const;
 * const norms: LagGradientNorms = lagGradientNorms(dims, params, seq, Int32Array.of(1, 0, 1));
 * assert.equal(norms.matrix.length, 3 * 3);
 * assert.equal(norms.matrix[0 * 3 + 1], 0); // L_0 does not depend on s_1
 * ```
 */
export interface LagGradientNorms {
  /**
   * perLag[m] = sqrt(sum over t >= m and over the batch of ||dL_t/ds_{t-m}||^2), m = 0..T-1:
   * how much of the loss signal still arrives m steps back.
   */
  perLag: Float64Array;
  /**
   * [T, T] row-major: matrix[t*T + i] = sqrt(sum over the batch of ||dL_t/ds_i||^2) for i <= t,
   * 0 above the diagonal.
   */
  matrix: Float64Array;
}

/**
 * How the gradient of each loss term L_t (the reduction's share of the cross-entropy at step t,
 * summed over the batch) decays as it travels back to earlier states. dL_t/ds_i is the total
 * derivative through the recurrence (full BPTT), so sum over t of dL_t/ds_i is the full dL/ds_i.
 * Ignored targets contribute nothing. Cost O(T^2 B H^2). Default model only, float64.
 *
 * @throws as {@link Backend.lossAndGradients} for invalid arguments.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { lagGradientNorms } from 'bptt';
 *
 * // Small recurrent weights: the signal fades geometrically with the lag (vanishing gradients).
 * const H = 4;
 * const dims = { inputSize: 3, hiddenSize: H, outputSize: 3 };
 * const params = {
 *   U: new Float64Array(H * 3).fill(0.5), W: Float64Array.from({ length: H * H }, (_, i) => (i % (H + 1) === 0 ? 0.3 : 0)),
 *   b: new Float64Array(H), V: Float64Array.from({ length: 3 * H }, (_, i) => 0.2 * (i % 3)), c: new Float64Array(3),
 * };
 * const seq = { steps: 8, batch: 1, input: { kind: 'tokens', data: Int32Array.of(0, 1, 2, 0, 1, 2, 0, 1) } } as const;
 * const { perLag } = lagGradientNorms(dims, params, seq, Int32Array.of(1, 2, 0, 1, 2, 0, 1, 2));
 * for (let m = 1; m < 8; m++) assert.ok(perLag[m] < perLag[m - 1]);
 * ```
 */
export function lagGradientNorms(dims: Dims, params: ParamArrays, seq: Sequence, targets: Int32Array, options?: Pick<GradientOptions, 'h0' | 'reduction'>): LagGradientNorms {
  const o = checkGradientRequest(dims, params, seq, targets, { h0: options?.h0, reduction: options?.reduction });
  const H = dims.hiddenSize;
  const { steps: T, batch: B } = seq;
  const f = forwardF64(dims, params, seq, o.h0);
  const { e } = outputLayer(dims, params, f, targets, lossScale(targets, o.reduction));
  const squares = new Float64Array(T * T);
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < B; b++) {
      if (targets[t * B + b] < 0) continue;
      let ds: Float64Array = Float64Array.from(row(e, t * B + b, H));
      for (let i = t; i >= 0; i--) {
        for (const v of ds) squares[t * T + i] += v * v;
        if (i > 0) ds = backOneStep(params.W, row(f.states, i * B + b, H), ds);
      }
    }
  }
  const perLag = new Float64Array(T);
  for (let m = 0; m < T; m++) {
    let sum = 0;
    for (let t = m; t < T; t++) sum += squares[t * T + t - m];
    perLag[m] = Math.sqrt(sum);
  }
  return { perLag, matrix: squares.map(Math.sqrt) };
}

/**
 * Norms of the state-to-state Jacobian products J(i, m) = ds_{i+m}/ds_i
 * = prod_{j=i+m..i+1} diag(1 - s_j^2) W, the factor by which any gradient is multiplied when it
 * travels m steps back. Returns, for each lag m = 0..T-1, the Frobenius norm of J(i, m) averaged
 * over the T - m start positions i = 0..T-1-m and the batch. Lag 0 is the identity (sqrt(H)).
 * Frobenius rather than spectral because it needs no iterative solver; it bounds the spectral
 * norm from above and by at most a factor sqrt(H) from below, so the decay rate with m is the
 * same. h0 only matters through the states it produces. Cost O(T^2 B H^3). Default model only.
 *
 * @throws as {@link Backend.forward} for invalid arguments.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { jacobianProductNorms } from 'bptt';
 *
 * // W = 0.5 I and zero inputs: states stay 0, so J(i, m) = (0.5 I)^m and its norm is sqrt(H) 0.5^m.
 * const H = 3;
 * const dims = { inputSize: 1, hiddenSize: H, outputSize: 1 };
 * const W = Float64Array.from({ length: H * H }, (_, i) => (i % (H + 1) === 0 ? 0.5 : 0));
 * const params = { U: new Float64Array(H), W, b: new Float64Array(H), V: new Float64Array(H), c: new Float64Array(1) };
 * const norms = jacobianProductNorms(dims, params, { steps: 4, batch: 1, input: { kind: 'dense', data: new Float32Array(4) } });
 * norms.forEach((n, m) => assert.ok(Math.abs(n - Math.sqrt(H) * 0.5 ** m) < 1e-12));
 * ```
 */
export function jacobianProductNorms(dims: Dims, params: ParamArrays, seq: Sequence, options?: { h0?: FloatArray | null }): Float64Array {
  const h0 = options?.h0 ?? null;
  checkForwardRequest(dims, params, seq, h0);
  const H = dims.hiddenSize;
  const { steps: T, batch: B } = seq;
  const { states } = forwardF64(dims, params, seq, h0);
  const sums = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < T; i++) {
      let J = new Float64Array(H * H);
      for (let j = 0; j < H; j++) J[j * H + j] = 1;
      for (let m = 0; i + m < T; m++) {
        if (m > 0) {
          // J <- diag(1 - s^2) W J with s = s_{i+m}.
          const s = row(states, (i + m) * B + b, H);
          const next = new Float64Array(H * H);
          for (let r = 0; r < H; r++) {
            const gain = 1 - s[r] * s[r];
            for (let q = 0; q < H; q++) {
              const w = gain * params.W[r * H + q];
              for (let c = 0; c < H; c++) next[r * H + c] += w * J[q * H + c];
            }
          }
          J = next;
        }
        let fro = 0;
        for (const v of J) fro += v * v;
        sums[m] += Math.sqrt(fro);
      }
    }
  }
  return sums.map((sum, m) => sum / ((T - m) * B));
}

/**
 * What {@link truncationBias} returns.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { truncationBias, type TruncationBias } from 'bptt';
 *
 * const dims = { inputSize: 2, hiddenSize: 2, outputSize: 2 };
 * const params = { U: Float64Array.of(1, -1, 0.5, 0.5), W: Float64Array.of(0.9, 0.2, -0.2, 0.9), b: new Float64Array(2), V: Float64Array.of(1, 0, 0, 1), c: new Float64Array(2) };
 * const seq = { steps: 6, batch: 1, input: { kind: 'tokens', data: Int32Array.of(0, 1, 1, 0, 1, 0) } } as const;
 * const bias: TruncationBias = truncationBias(dims, params, seq, Int32Array.of(1, 1, 0, 1, 0, 0), { truncate: 6 });
 * assert.equal(bias.relativeError, 0); // a window as long as the sequence is exact BPTT
 * ```
 */
export interface TruncationBias {
  /** ||g_trunc - g_full|| / ||g_full|| over U, W, b, V, c concatenated (0 when both are zero). */
  relativeError: number;
  /** Cosine of the angle between g_trunc and g_full over the same vector (1 when both are zero, 0 when one is). */
  cosineSimilarity: number;
  /** The same relative error for each parameter on its own. */
  perParameter: Record<ParamName, number>;
}

function relativeError(diffSquares: number, fullSquares: number): number {
  if (fullSquares === 0) return diffSquares === 0 ? 0 : Infinity;
  return Math.sqrt(diffSquares / fullSquares);
}

/**
 * How far the truncated-BPTT gradient (truncate: k) is from the exact one on this batch. Covers
 * the trained parameters only: dh0 is left out because h0 is an input, not a parameter.
 * Default model only, float64.
 *
 * @throws TypeError when options is not an object; RangeError unless truncate is an integer
 * >= 1; as {@link Backend.lossAndGradients} for invalid arguments.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { truncationBias } from 'bptt';
 *
 * const dims = { inputSize: 2, hiddenSize: 2, outputSize: 2 };
 * const params = { U: Float64Array.of(1, -1, 0.5, 0.5), W: Float64Array.of(0.9, 0.2, -0.2, 0.9), b: new Float64Array(2), V: Float64Array.of(1, 0, 0, 1), c: new Float64Array(2) };
 * const seq = { steps: 12, batch: 1, input: { kind: 'tokens', data: Int32Array.of(0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 0) } } as const;
 * const targets = Int32Array.of(1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 0, 0);
 * const short = truncationBias(dims, params, seq, targets, { truncate: 1 });
 * const long = truncationBias(dims, params, seq, targets, { truncate: 6 });
 * assert.ok(long.relativeError < short.relativeError); // longer windows, less bias
 * console.log(short.perParameter.W, short.cosineSimilarity);
 * ```
 */
export function truncationBias(dims: Dims, params: ParamArrays, seq: Sequence, targets: Int32Array, options: Pick<GradientOptions, 'h0' | 'reduction'> & { truncate: number }): TruncationBias {
  if (typeof options !== 'object' || options === null) throw new TypeError(`truncationBias options must be an object with truncate, got ${describeValue(options)}`);
  checkSize('truncate', options.truncate);
  const full = reference.lossAndGradients(dims, params, seq, targets, { h0: options.h0, reduction: options.reduction });
  const trunc = reference.lossAndGradients(dims, params, seq, targets, { h0: options.h0, reduction: options.reduction, truncate: options.truncate });
  const perParameter = {} as Record<ParamName, number>;
  let diffSquares = 0;
  let fullSquares = 0;
  let truncSquares = 0;
  let dot = 0;
  for (const name of PARAM_NAMES) {
    const g = full.grads[name];
    const h = trunc.grads[name];
    let d2 = 0;
    let f2 = 0;
    for (let i = 0; i < g.length; i++) {
      d2 += (h[i] - g[i]) ** 2;
      f2 += g[i] ** 2;
      truncSquares += h[i] ** 2;
      dot += h[i] * g[i];
    }
    perParameter[name] = relativeError(d2, f2);
    diffSquares += d2;
    fullSquares += f2;
  }
  const cosineSimilarity = fullSquares === 0 || truncSquares === 0 ? (fullSquares === truncSquares ? 1 : 0) : dot / Math.sqrt(fullSquares * truncSquares);
  return { relativeError: relativeError(diffSquares, fullSquares), cosineSimilarity, perParameter };
}
