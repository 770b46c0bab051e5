/**
 * The addon as a Backend over plain typed arrays (float32 results). Each call is validated in
 * TS first, then again in C++.
 */
import {
  Backend,
  Dims,
  FloatArray,
  ForwardResult,
  GradientOptions,
  GradientResult,
  ParamArrays,
  Reduction,
  Sequence,
  checkForwardRequest,
  checkGradientRequest,
} from '../backend';
import { NonFiniteError, TensorInUseError } from '../errors';
import { NativeLayerBackend } from '../engine/native';
import { LayerBackend, LayerBackwardArgs, LayerBackwardResult, LayerBatch, LayerForwardOptions, LayerForwardResult, LayerSpec, LayerWeights, SavedForward } from '../engine/spec';
import { NativeAddon, addon } from '../native';

/**
 * One native call's arguments, by name. nativeArgs() turns a request into the positional form
 * the addon reads.
 */
export interface NativeRequest {
  D: number;
  H: number;
  K: number;
  T: number;
  B: number;
  U: Float32Array;
  W: Float32Array;
  b: Float32Array;
  V: Float32Array;
  c: Float32Array;
  tokens: Int32Array | undefined;
  dense: Float32Array | undefined;
  h0: Float32Array | undefined;
  hT: Float32Array;
  /** forward outputs */
  states: Float32Array | undefined;
  logits: Float32Array | undefined;
  /** gradients and trainStep */
  targets: Int32Array | undefined;
  truncate: number | undefined;
  reduction: Reduction | undefined;
  hAt: Float32Array | undefined;
  hAtStep: number | undefined;
  /** gradients outputs */
  gU: Float32Array | undefined;
  gW: Float32Array | undefined;
  gb: Float32Array | undefined;
  gV: Float32Array | undefined;
  gc: Float32Array | undefined;
  gh0: Float32Array | undefined;
  /** trainStep */
  clipNorm: number | undefined;
  clipValue: number | undefined;
  optimizer: NativeOptimizerConfig | undefined;
  /** optimizer state slots, keyed U0, U1, W0, ... */
  state: Record<string, Float32Array> | undefined;
  /** trainStep results: loss, gradNorm, clipped (1 or 0) */
  out: Float64Array | undefined;
}

export interface NativeOptimizerConfig {
  kind: string;
  lr: number;
  momentum?: number;
  beta1?: number;
  beta2?: number;
  rho?: number;
  eps?: number;
  step?: number;
}

export type RequestFields = Partial<Omit<NativeRequest, 'D' | 'H' | 'K' | 'T' | 'B' | 'U' | 'W' | 'b' | 'V' | 'c' | 'tokens' | 'dense' | 'h0' | 'hT'>>;

/** A request for the problem (sizes, parameters, inputs) with the call-specific fields. */
export function nativeRequest(
  dims: Dims,
  params: ParamArrays<Float32Array>,
  seq: Sequence,
  h0: Float32Array | null | undefined,
  hT: Float32Array,
  fields: RequestFields,
): NativeRequest {
  return {
    D: dims.inputSize,
    H: dims.hiddenSize,
    K: dims.outputSize,
    T: seq.steps,
    B: seq.batch,
    U: params.U,
    W: params.W,
    b: params.b,
    V: params.V,
    c: params.c,
    tokens: seq.input.kind === 'tokens' ? seq.input.data : undefined,
    dense: seq.input.kind === 'dense' ? seq.input.data : undefined,
    h0: h0 ?? undefined,
    hT,
    states: fields.states,
    logits: fields.logits,
    targets: fields.targets,
    truncate: fields.truncate,
    reduction: fields.reduction,
    hAt: fields.hAt,
    hAtStep: fields.hAtStep,
    gU: fields.gU,
    gW: fields.gW,
    gb: fields.gb,
    gV: fields.gV,
    gc: fields.gc,
    gh0: fields.gh0,
    clipNorm: fields.clipNorm,
    clipValue: fields.clipValue,
    optimizer: fields.optimizer,
    state: fields.state,
    out: fields.out,
  };
}

// The scalars of every call go in one Float64Array, reused: the addon reads it before the call
// returns (async calls too), and JS runs one call at a time per thread.
const scalars = new Float64Array(17);
const given = (x: number | undefined): number => (x === undefined ? NaN : x);

/**
 * The positional arguments the addon reads (native/binding_rnn.cc: enums Scalar and Arg, same
 * order): for a small model one Node-API call for all arguments, instead of one per property,
 * is a measurable part of a training step. NaN marks a scalar that was not given.
 */
export function nativeArgs(r: NativeRequest): unknown[] {
  const o = r.optimizer;
  scalars[0] = r.D;
  scalars[1] = r.H;
  scalars[2] = r.K;
  scalars[3] = r.T;
  scalars[4] = r.B;
  scalars[5] = given(r.truncate);
  scalars[6] = r.reduction === 'sum' ? 1 : r.reduction === undefined || r.reduction === 'mean' ? 0 : -1;
  scalars[7] = given(r.hAtStep);
  scalars[8] = given(r.clipNorm);
  scalars[9] = given(r.clipValue);
  scalars[10] = given(o?.lr);
  scalars[11] = given(o?.momentum);
  scalars[12] = given(o?.beta1);
  scalars[13] = given(o?.beta2);
  scalars[14] = given(o?.rho);
  scalars[15] = given(o?.eps);
  scalars[16] = given(o?.step);
  const st = r.state;
  return [
    scalars, r.U, r.W, r.b, r.V, r.c, r.tokens, r.dense, r.h0, r.hT, r.states, r.logits, r.targets, r.hAt,
    r.gU, r.gW, r.gb, r.gV, r.gc, r.gh0, r.out, o?.kind,
    st?.U0, st?.U1, st?.W0, st?.W1, st?.b0, st?.b1, st?.V0, st?.V1, st?.c0, st?.c1,
  ];
}

/** The addon's Engine: one workspace, reused across calls. Arguments: nativeArgs(request). */
export interface NativeEngine {
  readonly busy: boolean;
  /** Frees the engine's scratch memory now. */
  release(): void;
  forward(...args: unknown[]): void;
  gradients(...args: unknown[]): number;
  /** Writes loss, gradNorm and clipped into request.out. */
  trainStep(...args: unknown[]): void;
  forwardAsync(...args: unknown[]): Promise<void>;
  gradientsAsync(...args: unknown[]): Promise<number>;
  trainStepAsync(...args: unknown[]): Promise<void>;
}

export function createEngine(): NativeEngine {
  const Engine = (addon() as NativeAddon).Engine as new () => NativeEngine;
  return new Engine();
}

/** Maps the addon's coded errors onto the library's typed errors. */
export function translateNativeError(err: unknown): unknown {
  // Duck-typed: errors made by the addon may come from another realm (vm contexts, test runners).
  if (typeof err === 'object' && err !== null) {
    const { code, message } = err as { code?: unknown; message?: unknown };
    if (code === 'BPTT_NON_FINITE') return new NonFiniteError(String(message));
    if (code === 'BPTT_IN_USE') return new TensorInUseError(String(message));
  }
  return err;
}

/**
 * Runs an asynchronous native job with its tensors pinned (disposing or writing them throws
 * TensorInUseError meanwhile), unpinning them however it ends; the addon's coded errors come out
 * as the library's typed errors.
 */
export async function withPinned<R>(tensors: readonly { pin(): void; unpin(): void }[], job: () => Promise<R>): Promise<R> {
  for (const t of tensors) t.pin();
  try {
    return await job();
  } catch (err) {
    throw translateNativeError(err);
  } finally {
    for (const t of tensors) t.unpin();
  }
}

function asFloat32(a: FloatArray): Float32Array {
  return a instanceof Float32Array ? a : Float32Array.from(a);
}

function float32Params(p: ParamArrays): ParamArrays<Float32Array> {
  return { U: asFloat32(p.U), W: asFloat32(p.W), b: asFloat32(p.b), V: asFloat32(p.V), c: asFloat32(p.c) };
}

/**
 * The addon as a {@link Backend} and a {@link LayerBackend} over plain typed arrays, with float32
 * results; `backends.native` is the instance to use. Each call is validated in TypeScript, then
 * again in C++. Float64Array arguments are accepted by `forward` and `lossAndGradients` (rounded
 * to float32); the layer calls take Float32Array.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { NativeBackend, backends } from 'bptt';
 *
 * assert.ok(backends.native instanceof NativeBackend);
 * assert.equal(backends.native.name, 'native');
 * ```
 */
export class NativeBackend implements Backend<Float32Array>, LayerBackend<Float32Array> {
  readonly name = 'native';
  #engine: NativeEngine | undefined;
  readonly #layers = new NativeLayerBackend();

  /**
   * The recurrent stack's forward (no head, no loss): y [T, B, dirs*H], hT and (LSTM) cT
   * [L*dirs, B, H], and `saved`, the activations layerBackward needs, in native memory until
   * `saved.dispose()` (or the GC).
   *
   * @throws TypeError, RangeError, ShapeError, DTypeError, NonFiniteError for an invalid spec,
   * weights (see {@link layerParameterShapes}), batch or options.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { backends, layerParameterShapes } from 'bptt';
   *
   * const spec = { cell: 'gru', inputSize: 3, hiddenSize: 4, numLayers: 2 } as const;
   * const weights = Object.fromEntries(Object.entries(layerParameterShapes(spec)).map(([name, shape]) => [name, new Float32Array(shape[0] * (shape[1] ?? 1)).fill(0.1)]));
   * const x = Float32Array.from({ length: 5 * 2 * 3 }, (_, i) => Math.sin(i)); // [T, B, D]
   * const { y, hT, saved } = backends.native.layerForward(spec, weights, { steps: 5, batch: 2, input: { kind: 'dense', data: x } });
   * assert.equal(y.length, 5 * 2 * 4); // [T, B, dirs*H]
   * assert.equal(hT.length, 2 * 2 * 4); // [L*dirs, B, H]
   * saved.dispose();
   * ```
   */
  layerForward(spec: LayerSpec, weights: LayerWeights, batch: LayerBatch, options?: LayerForwardOptions): LayerForwardResult<Float32Array> {
    return this.#layers.layerForward(spec, weights, batch, options);
  }

  /**
   * layerForward on a libuv worker thread. It copies its inputs first, so the caller may change
   * its arrays while it runs.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { backends, layerParameterShapes } from 'bptt';
   *
   * const spec = { cell: 'tanh', inputSize: 4, hiddenSize: 3 } as const;
   * const weights = Object.fromEntries(Object.entries(layerParameterShapes(spec)).map(([name, shape]) => [name, new Float32Array(shape[0] * (shape[1] ?? 1)).fill(0.2)]));
   * const batch = { steps: 2, batch: 1, input: { kind: 'tokens', data: Int32Array.of(3, 1) } } as const;
   * const r = await backends.native.layerForwardAsync(spec, weights, batch);
   * assert.deepEqual(r.y, backends.native.layerForward(spec, weights, batch).y);
   * r.saved.dispose();
   * ```
   */
  layerForwardAsync(spec: LayerSpec, weights: LayerWeights, batch: LayerBatch, options?: LayerForwardOptions): Promise<LayerForwardResult<Float32Array>> {
    return this.#layers.layerForwardAsync(spec, weights, batch, options);
  }

  /**
   * The recurrent stack's backward: dx (dense inputs; null for tokens), dh0, dc0 (LSTM) and every
   * weight's gradient, from the upstream gradients dy [T, B, dirs*H] and optionally dhT, dcT
   * [L*dirs, B, H]; exact or truncated (`truncate: k`) BPTT. `saved` must come from this
   * backend's layerForward with the same spec, not disposed; it can be used again.
   *
   * @throws TypeError for a saved handle from another backend; RangeError for one from another
   * spec; DisposedError for a disposed one; ShapeError, DTypeError, NonFiniteError for bad
   * gradients.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { backends, layerParameterShapes } from 'bptt';
   *
   * const spec = { cell: 'lstm', inputSize: 3, hiddenSize: 4, bidirectional: true } as const;
   * const weights = Object.fromEntries(Object.entries(layerParameterShapes(spec)).map(([name, shape]) => [name, new Float32Array(shape[0] * (shape[1] ?? 1)).fill(0.1)]));
   * const x = new Float32Array(6 * 1 * 3).fill(0.5);
   * const { y, saved } = backends.native.layerForward(spec, weights, { steps: 6, batch: 1, input: { kind: 'dense', data: x } });
   * // Loss = sum(y): its gradient with respect to y is all ones.
   * const { dx, grads } = backends.native.layerBackward(spec, weights, saved, { dy: new Float32Array(y.length).fill(1), truncate: 3 });
   * assert.equal(dx!.length, x.length);
   * assert.deepEqual(Object.keys(grads), Object.keys(weights));
   * saved.dispose();
   * ```
   */
  layerBackward(spec: LayerSpec, weights: LayerWeights, saved: SavedForward, args: LayerBackwardArgs): LayerBackwardResult<Float32Array> {
    return this.#layers.layerBackward(spec, weights, saved, args);
  }

  /**
   * layerBackward on a libuv worker thread; it copies its inputs, and `saved` cannot be disposed
   * until it settles (TensorInUseError).
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { backends, layerParameterShapes } from 'bptt';
   *
   * const spec = { cell: 'relu', inputSize: 2, hiddenSize: 3 } as const;
   * const weights = Object.fromEntries(Object.entries(layerParameterShapes(spec)).map(([name, shape]) => [name, new Float32Array(shape[0] * (shape[1] ?? 1)).fill(0.3)]));
   * const { y, saved } = backends.native.layerForward(spec, weights, { steps: 4, batch: 1, input: { kind: 'dense', data: new Float32Array(8).fill(1) } });
   * const pending = backends.native.layerBackwardAsync(spec, weights, saved, { dy: new Float32Array(y.length).fill(1) });
   * assert.throws(() => saved.dispose(), { name: 'TensorInUseError' });
   * const { dh0 } = await pending;
   * assert.equal(dh0.length, 3);
   * saved.dispose();
   * ```
   */
  layerBackwardAsync(spec: LayerSpec, weights: LayerWeights, saved: SavedForward, args: LayerBackwardArgs): Promise<LayerBackwardResult<Float32Array>> {
    return this.#layers.layerBackwardAsync(spec, weights, saved, args);
  }

  private engine(): NativeEngine {
    this.#engine ??= createEngine();
    return this.#engine;
  }

  /** {@link Backend.forward} on the addon: float32 states, logits and hT. */
  forward(dims: Dims, params: ParamArrays, seq: Sequence, h0?: FloatArray | null): ForwardResult<Float32Array> {
    checkForwardRequest(dims, params, seq, h0);
    const rows = seq.steps * seq.batch;
    const out = {
      states: new Float32Array(rows * dims.hiddenSize),
      logits: new Float32Array(rows * dims.outputSize),
      hT: new Float32Array(seq.batch * dims.hiddenSize),
    };
    this.engine().forward(...nativeArgs(nativeRequest(dims, float32Params(params), seq, h0 && asFloat32(h0), out.hT, out)));
    return out;
  }

  /** {@link Backend.lossAndGradients} on the addon: float32 gradients. */
  lossAndGradients(dims: Dims, params: ParamArrays, seq: Sequence, targets: Int32Array, options?: GradientOptions): GradientResult<Float32Array> {
    const o = checkGradientRequest(dims, params, seq, targets, options);
    const { inputSize: D, hiddenSize: H, outputSize: K } = dims;
    const grads = {
      U: new Float32Array(H * D),
      W: new Float32Array(H * H),
      b: new Float32Array(H),
      V: new Float32Array(K * H),
      c: new Float32Array(K),
      h0: new Float32Array(seq.batch * H),
    };
    const hT = new Float32Array(seq.batch * H);
    let loss: number;
    try {
      loss = this.engine().gradients(
        ...nativeArgs(nativeRequest(dims, float32Params(params), seq, o.h0 && asFloat32(o.h0), hT, {
          targets,
          truncate: o.truncate ?? 0,
          reduction: o.reduction,
          gU: grads.U,
          gW: grads.W,
          gb: grads.b,
          gV: grads.V,
          gc: grads.c,
          gh0: grads.h0,
        })),
      );
    } catch (err) {
      throw translateNativeError(err);
    }
    return { loss, grads, hT };
  }
}

export const native = new NativeBackend();
