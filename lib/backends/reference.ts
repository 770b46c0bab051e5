/**
 * The specification: a pure-TS, float64 implementation of the Elman RNN and its exact and
 * truncated BPTT gradients, written for clarity rather than speed. It needs no addon (it also
 * runs in a browser) and every native kernel is tested against it.
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
  ParamArrays,
  Sequence,
  checkForwardRequest,
  checkGradientRequest,
} from '../backend';

/** y += A x for A [rows, cols] row-major. */
function addMatVec(y: Float64Array, A: FloatArray, x: ArrayLike<number>, rows: number, cols: number): void {
  for (let i = 0; i < rows; i++) {
    let acc = 0;
    for (let j = 0; j < cols; j++) acc += A[i * cols + j] * x[j];
    y[i] += acc;
  }
}

/** y += A^T x for A [rows, cols] row-major. */
function addMatTVec(y: Float64Array, A: FloatArray, x: ArrayLike<number>, rows: number, cols: number): void {
  for (let i = 0; i < rows; i++) {
    const xi = x[i];
    if (xi === 0) continue;
    for (let j = 0; j < cols; j++) y[j] += A[i * cols + j] * xi;
  }
}

/** G += u v^T for G [u.length, v.length]. */
function addOuter(G: Float64Array, u: ArrayLike<number>, v: ArrayLike<number>): void {
  const n = v.length;
  for (let i = 0; i < u.length; i++) {
    const ui = u[i];
    if (ui === 0) continue;
    for (let j = 0; j < n; j++) G[i * n + j] += ui * v[j];
  }
}

function row(a: Float64Array, index: number, width: number): Float64Array {
  return a.subarray(index * width, (index + 1) * width);
}

/** The per-row input x_r as a vector (dense) or its one-hot index (tokens). */
interface InputRow {
  token: number; // -1 for dense rows
  dense: Float32Array | null;
}

function inputRow(seq: Sequence, r: number, D: number): InputRow {
  return seq.input.kind === 'tokens' ? { token: seq.input.data[r], dense: null } : { token: -1, dense: seq.input.data.subarray(r * D, (r + 1) * D) };
}

export class ReferenceBackend implements Backend<Float64Array> {
  readonly name = 'reference';

  forward(dims: Dims, params: ParamArrays, seq: Sequence, h0?: FloatArray | null): ForwardResult<Float64Array> {
    checkForwardRequest(dims, params, seq, h0);
    return this.run(dims, params, seq, h0 ?? null);
  }

  lossAndGradients(dims: Dims, params: ParamArrays, seq: Sequence, targets: Int32Array, options?: GradientOptions): GradientResult<Float64Array> {
    const o = checkGradientRequest(dims, params, seq, targets, options);
    const { inputSize: D, hiddenSize: H, outputSize: K } = dims;
    const { steps: T, batch: B } = seq;
    const f = this.run(dims, params, seq, o.h0);
    const h0 = o.h0 ? Float64Array.from(o.h0) : new Float64Array(B * H);
    const prevState = (t: number, b: number) => (t === 0 ? row(h0, b, H) : row(f.states, (t - 1) * B + b, H));

    let counted = 0;
    for (const y of targets) if (y >= 0) counted++;
    const scale = o.reduction === 'mean' && counted > 0 ? 1 / counted : 1;

    // Output layer: loss, dz = scale (softmax(z) - onehot), and e_t = dL/ds_t through V only.
    const grads: Gradients<Float64Array> = {
      U: new Float64Array(H * D),
      W: new Float64Array(H * H),
      b: new Float64Array(H),
      V: new Float64Array(K * H),
      c: new Float64Array(K),
      h0: new Float64Array(B * H),
    };
    const e = new Float64Array(T * B * H);
    let loss = 0;
    for (let r = 0; r < T * B; r++) {
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
      addOuter(grads.V, dz, row(f.states, r, H));
      for (let k = 0; k < K; k++) grads.c[k] += dz[k];
      addMatTVec(row(e, r, H), params.V, dz, K, H);
    }
    if (o.reduction === 'mean' && counted > 0) loss /= counted;

    // dL/dpre_t for every t: the one quantity the recurrence shapes; every other gradient is a
    // sum of products with it.
    const dpre = o.truncate !== null && o.truncate < T ? this.truncatedPreGradients(dims, params, seq, f.states, e, o.truncate) : this.fullPreGradients(dims, params, seq, f.states, e);

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
    return { loss, grads, hT: f.hT };
  }

  /** Forward pass in float64. */
  private run(dims: Dims, params: ParamArrays, seq: Sequence, h0: FloatArray | null): ForwardResult<Float64Array> {
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
