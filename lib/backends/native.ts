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
  Sequence,
  checkForwardRequest,
  checkGradientRequest,
} from '../backend';
import { NonFiniteError, TensorInUseError } from '../errors';
import { NativeAddon, addon } from '../native';

/** The addon's Engine: one workspace, reused across calls. */
export interface NativeEngine {
  readonly busy: boolean;
  forward(request: Record<string, unknown>): void;
  gradients(request: Record<string, unknown>): number;
  trainStep(request: Record<string, unknown>): { loss: number; gradNorm: number; clipped: boolean };
  forwardAsync(request: Record<string, unknown>): Promise<void>;
  gradientsAsync(request: Record<string, unknown>): Promise<number>;
  trainStepAsync(request: Record<string, unknown>): Promise<{ loss: number; gradNorm: number; clipped: boolean }>;
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

/** The request fields that describe the problem (sizes, parameters, inputs). */
export function problemFields(dims: Dims, params: ParamArrays, seq: Sequence, h0: FloatArray | null | undefined): Record<string, unknown> {
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
  };
}

function asFloat32(a: FloatArray): Float32Array {
  return a instanceof Float32Array ? a : Float32Array.from(a);
}

function float32Params(p: ParamArrays): ParamArrays<Float32Array> {
  return { U: asFloat32(p.U), W: asFloat32(p.W), b: asFloat32(p.b), V: asFloat32(p.V), c: asFloat32(p.c) };
}

export class NativeBackend implements Backend<Float32Array> {
  readonly name = 'native';
  #engine: NativeEngine | undefined;

  private engine(): NativeEngine {
    this.#engine ??= createEngine();
    return this.#engine;
  }

  forward(dims: Dims, params: ParamArrays, seq: Sequence, h0?: FloatArray | null): ForwardResult<Float32Array> {
    checkForwardRequest(dims, params, seq, h0);
    const rows = seq.steps * seq.batch;
    const out = {
      states: new Float32Array(rows * dims.hiddenSize),
      logits: new Float32Array(rows * dims.outputSize),
      hT: new Float32Array(seq.batch * dims.hiddenSize),
    };
    this.engine().forward({ ...problemFields(dims, float32Params(params), seq, h0 && asFloat32(h0)), ...out });
    return out;
  }

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
      loss = this.engine().gradients({
        ...problemFields(dims, float32Params(params), seq, o.h0 && asFloat32(o.h0)),
        targets,
        truncate: o.truncate ?? 0,
        reduction: o.reduction,
        gU: grads.U,
        gW: grads.W,
        gb: grads.b,
        gV: grads.V,
        gc: grads.c,
        gh0: grads.h0,
        hT,
      });
    } catch (err) {
      throw translateNativeError(err);
    }
    return { loss, grads, hT };
  }
}

export const native = new NativeBackend();
