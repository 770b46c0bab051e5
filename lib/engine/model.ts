/**
 * A recurrent model: the engine's stack (any cell, layers, directions) and a per-step softmax
 * classifier on the top layer's output, trained with cross-entropy — PyTorch's
 * `nn.RNN/LSTM/GRU(...)` + `nn.Linear(dirs*H, K)`, with parameters under the names of that
 * module's state_dict: `rnn.weight_ih_l0`, ..., `fc.weight` [K, dirs*H], `fc.bias` [K].
 *
 * Both backends run the same model: the float64 reference composes the oracle's layerForward /
 * layerBackward with the head written here; the native one runs the fused ModelEngine
 * (native/model.cc). Steps past a sequence's length count for nothing whatever their targets.
 */
import { FloatArray, Reduction, checkIntRange, checkSize, checkedProduct, describeValue } from '../backend';
import { DTypeError, ShapeError } from '../errors';
import { NativeAddon, addon } from '../native';
import type { Optimizer } from '../optim';
import { layerBackward, layerForward } from './reference';
import {
  LayerBatch,
  LayerSpec,
  NormalizedLayerBatch,
  NormalizedLayerSpec,
  ParameterEntry,
  checkLayerBatch,
  checkLayerForwardOptions,
  checkLayerSpec,
  checkLayerWeights,
  hasCellState,
  layerOutputSize,
  layerParameterTable,
  numDirections,
} from './spec';

export interface ModelSpec extends LayerSpec {
  /** K: classes of the per-step softmax. */
  outputSize: number;
}

export type NormalizedModelSpec = NormalizedLayerSpec & { readonly outputSize: number };

/** One model parameter: its state_dict name, shape and size, and where it sits in the engine's table. */
export interface ModelParameter {
  name: string;
  shape: number[];
  size: number;
  /** The recurrent stack's entry (name without the `rnn.` prefix), or null for the head. */
  layer: ParameterEntry | null;
}

export function checkModelSpec(spec: ModelSpec): NormalizedModelSpec {
  const layer = checkLayerSpec(spec);
  const outputSize = checkSize('outputSize', spec.outputSize);
  checkedProduct('fc.weight', [outputSize, layerOutputSize(layer)]);
  return Object.freeze({ ...layer, outputSize });
}

/** Every parameter in state_dict order: the stack's (`rnn.` + PyTorch's name), then fc.weight, fc.bias. */
export function modelParameters(spec: NormalizedModelSpec): ModelParameter[] {
  const stack = layerParameterTable(spec).map((p) => ({ name: `rnn.${p.name}`, shape: p.shape, size: p.size, layer: p }));
  const K = spec.outputSize;
  const W = layerOutputSize(spec);
  return [...stack, { name: 'fc.weight', shape: [K, W], size: K * W, layer: null }, { name: 'fc.bias', shape: [K], size: K, layer: null }];
}

export interface ModelCallOptions {
  /** Dropout between layers (training mode); needs dropoutSeed when the spec has dropout. */
  training?: boolean;
  dropoutSeed?: number;
  /** Each loss term backpropagates through k steps of every layer's recurrence (see the engine). */
  truncate?: number | null;
  reduction?: Reduction;
  /** Also return the states after this step (unidirectional models without lengths). */
  stateAt?: number | null;
}

export interface ModelForwardResult<A extends FloatArray = FloatArray> {
  /** The top layer's outputs [T, B, dirs*H]. */
  outputs: A;
  logits: A;
  hT: A;
  cT: A | null;
}

export interface ModelGradientResult<A extends FloatArray = FloatArray> {
  loss: number;
  /** Under the parameters' names. */
  grads: Record<string, A>;
  dh0: A;
  dc0: A | null;
  hT: A;
  cT: A | null;
  hAt: A | null;
  cAt: A | null;
}

/** Validates targets [T, B] (class ids or -1) against the model. */
export function checkModelTargets(spec: NormalizedModelSpec, batch: NormalizedLayerBatch, targets: Int32Array): void {
  if (!(targets instanceof Int32Array)) throw new DTypeError(`targets must be an Int32Array [T, B], got ${describeValue(targets)}`);
  const n = batch.steps * batch.batch;
  if (targets.length !== n) throw new ShapeError(`targets must have T*B = ${batch.steps}*${batch.batch} = ${n} elements, got ${targets.length}`);
  checkIntRange('targets', targets, 0, spec.outputSize, -1);
}

export function checkStateAt(spec: NormalizedModelSpec, batch: NormalizedLayerBatch, stateAt: number | null | undefined): number | null {
  if (stateAt === undefined || stateAt === null) return null;
  if (!Number.isInteger(stateAt) || stateAt < 0 || stateAt >= batch.steps) {
    throw new RangeError(`stateAt must be an integer step in [0, ${batch.steps}), got ${describeValue(stateAt)}`);
  }
  if (spec.bidirectional) throw new TypeError('stateAt (the state after a step) is only defined for unidirectional models');
  if (batch.lengths !== null) throw new TypeError('stateAt (the state after a step) is only defined without lengths');
  return stateAt;
}

/** The stack's weights of a model's parameters, under the engine's names. */
function stackWeights<A extends FloatArray>(spec: NormalizedModelSpec, params: Record<string, A>): Record<string, A> {
  const out: Record<string, A> = {};
  for (const p of modelParameters(spec)) if (p.layer) out[p.layer.name] = params[p.name];
  return out;
}

/** Checks every parameter is present, of its size and finite (extra names are refused). */
export function checkModelParams(spec: NormalizedModelSpec, params: Record<string, FloatArray>, allowF64: boolean): void {
  if (typeof params !== 'object' || params === null) throw new TypeError(`parameters must be an object keyed by name, got ${describeValue(params)}`);
  const list = modelParameters(spec);
  const names = new Set(list.map((p) => p.name));
  for (const key of Object.keys(params)) if (!names.has(key)) throw new TypeError(`unexpected parameter '${key}'; expected exactly ${[...names].join(', ')}`);
  checkLayerWeights(spec, stackWeights(spec, params), allowF64);
  for (const p of list.slice(-2)) {
    const v = params[p.name];
    if (!(v instanceof Float32Array || (allowF64 && v instanceof Float64Array))) throw new DTypeError(`${p.name} must be a Float32Array${allowF64 ? ' or Float64Array' : ''}, got ${describeValue(v)}`);
    if (v.length !== p.size) throw new ShapeError(`${p.name} [${p.shape.join(', ')}] must have ${p.size} elements, got ${v.length}`);
    for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) throw new RangeError(`${p.name} must be finite, but element ${i} is ${v[i]}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The float64 reference

function referenceLogits(spec: NormalizedModelSpec, params: Record<string, FloatArray>, outputs: Float64Array, rows: number): Float64Array {
  const K = spec.outputSize;
  const W = layerOutputSize(spec);
  const V = params['fc.weight'];
  const c = params['fc.bias'];
  const logits = new Float64Array(rows * K);
  for (let r = 0; r < rows; r++)
    for (let k = 0; k < K; k++) {
      let z = c[k];
      for (let j = 0; j < W; j++) z += V[k * W + j] * outputs[r * W + j];
      logits[r * K + k] = z;
    }
  return logits;
}

/** The states after step s: the final states of the same model run on steps 0 .. s. */
function referenceStatesAt(spec: NormalizedModelSpec, params: Record<string, FloatArray>, batch: NormalizedLayerBatch, s: number, training: boolean, dropoutSeed: number) {
  const B = batch.batch;
  const prefix: LayerBatch = {
    steps: s + 1,
    batch: B,
    input: batch.input.kind === 'tokens' ? { kind: 'tokens', data: batch.input.data.subarray(0, (s + 1) * B) } : { kind: 'dense', data: batch.input.data.subarray(0, (s + 1) * B * spec.inputSize) },
    h0: batch.h0,
    c0: batch.c0,
  };
  const out = layerForward(spec, stackWeights(spec, params), prefix, { training, dropoutSeed });
  out.saved.dispose();
  return { hAt: out.hT, cAt: out.cT };
}

export function referenceModelForward(spec: NormalizedModelSpec, params: Record<string, FloatArray>, batch: NormalizedLayerBatch): ModelForwardResult<Float64Array> {
  const out = layerForward(spec, stackWeights(spec, params), batch);
  out.saved.dispose();
  return { outputs: out.y, logits: referenceLogits(spec, params, out.y, batch.steps * batch.batch), hT: out.hT, cT: out.cT };
}

export function referenceModelLossAndGradients(
  spec: NormalizedModelSpec,
  params: Record<string, FloatArray>,
  batch: NormalizedLayerBatch,
  targets: Int32Array,
  options: { training: boolean; dropoutSeed: number; truncate: number | null; reduction: Reduction; stateAt: number | null },
): ModelGradientResult<Float64Array> {
  const weights = stackWeights(spec, params);
  const T = batch.steps;
  const B = batch.batch;
  const rows = T * B;
  const K = spec.outputSize;
  const W = layerOutputSize(spec);
  const out = layerForward(spec, weights, batch, { training: options.training, dropoutSeed: options.dropoutSeed });
  const logits = referenceLogits(spec, params, out.y, rows);
  const counts = (r: number) => targets[r] >= 0 && (batch.lengths === null || Math.floor(r / B) < batch.lengths[r % B]);
  let counted = 0;
  for (let r = 0; r < rows; r++) if (counts(r)) counted++;
  const scale = options.reduction === 'mean' && counted > 0 ? 1 / counted : 1;
  let loss = 0;
  const dz = new Float64Array(rows * K);
  for (let r = 0; r < rows; r++) {
    if (!counts(r)) continue;
    const z = logits.subarray(r * K, (r + 1) * K);
    let max = -Infinity;
    for (const v of z) max = Math.max(max, v);
    let sum = 0;
    for (const v of z) sum += Math.exp(v - max);
    loss += Math.log(sum) + max - z[targets[r]];
    for (let k = 0; k < K; k++) dz[r * K + k] = (Math.exp(z[k] - max) / sum - (k === targets[r] ? 1 : 0)) * scale;
  }
  loss *= scale;
  const V = params['fc.weight'];
  const dV = new Float64Array(K * W);
  const dc = new Float64Array(K);
  const dy = new Float64Array(rows * W);
  for (let r = 0; r < rows; r++)
    for (let k = 0; k < K; k++) {
      const g = dz[r * K + k];
      if (g === 0) continue;
      dc[k] += g;
      for (let j = 0; j < W; j++) {
        dV[k * W + j] += g * out.y[r * W + j];
        dy[r * W + j] += g * V[k * W + j];
      }
    }
  const back = layerBackward(spec, weights, out.saved, { dy, truncate: options.truncate });
  out.saved.dispose();
  const grads: Record<string, Float64Array> = {};
  for (const p of modelParameters(spec)) grads[p.name] = p.layer ? back.grads[p.layer.name] : p.name === 'fc.weight' ? dV : dc;
  const at = options.stateAt === null ? { hAt: null, cAt: null } : referenceStatesAt(spec, params, batch, options.stateAt, options.training, options.dropoutSeed);
  return { loss, grads, dh0: back.dh0, dc0: back.dc0, hT: out.hT, cT: out.cT, ...at };
}

// ---------------------------------------------------------------------------------------------
// The native model

/** The addon's ModelEngine (argument order: native/binding_model.cc). */
interface NativeModelEngine {
  readonly busy: boolean;
  release(): void;
  forward(...args: unknown[]): void;
  forwardAsync(...args: unknown[]): Promise<void>;
  gradients(...args: unknown[]): number;
  gradientsAsync(...args: unknown[]): Promise<number>;
  trainStep(...args: unknown[]): void;
  trainStepAsync(...args: unknown[]): Promise<void>;
}

/** What a training step needs besides the batch: the update's settings and state. */
export interface ModelStepSettings {
  lr: number;
  clipNorm?: number;
  clipValue?: number;
}

export interface ModelStepResult {
  loss: number;
  gradNorm: number;
  clipped: boolean;
  hT: Float32Array;
  cT: Float32Array | null;
  hAt: Float32Array | null;
  cAt: Float32Array | null;
}

/** One model shape on the native backend, with the scratch memory its calls reuse. */
export class NativeModel {
  readonly #engine: NativeModelEngine;
  readonly #params: ModelParameter[];

  constructor(readonly spec: NormalizedModelSpec) {
    const Engine = (addon() as NativeAddon).ModelEngine as new (...a: unknown[]) => NativeModelEngine;
    this.#engine = new Engine(spec.cell, spec.inputSize, spec.hiddenSize, spec.numLayers, spec.bidirectional, spec.dropout, spec.outputSize);
    this.#params = modelParameters(spec);
  }

  get busy(): boolean {
    return this.#engine.busy;
  }

  /** Frees the native scratch memory now. */
  release(): void {
    this.#engine.release();
  }

  private stateCount(B: number): number {
    return this.spec.numLayers * numDirections(this.spec) * B * this.spec.hiddenSize;
  }

  private batchArgs(batch: NormalizedLayerBatch, training: boolean, dropoutSeed: number): unknown[] {
    const input = batch.input;
    return [batch.steps, batch.batch, input.kind === 'tokens' ? input.data : null, input.kind === 'dense' ? input.data : null, batch.lengths, batch.h0, batch.c0, training, dropoutSeed];
  }

  private paramList(params: Record<string, Float32Array>): Float32Array[] {
    return this.#params.map((p) => params[p.name]);
  }

  /** Arguments and result arrays of forward. */
  forwardCall(params: Record<string, Float32Array>, batch: NormalizedLayerBatch) {
    const rows = batch.steps * batch.batch;
    const states = this.stateCount(batch.batch);
    const result: ModelForwardResult<Float32Array> = {
      outputs: new Float32Array(rows * layerOutputSize(this.spec)),
      logits: new Float32Array(rows * this.spec.outputSize),
      hT: new Float32Array(states),
      cT: hasCellState(this.spec.cell) ? new Float32Array(states) : null,
    };
    const args = [this.paramList(params), ...this.batchArgs(batch, false, 0), result.logits, result.outputs, result.hT, result.cT, null, null, 0];
    return { args, result };
  }

  forward(params: Record<string, Float32Array>, batch: NormalizedLayerBatch): ModelForwardResult<Float32Array> {
    const { args, result } = this.forwardCall(params, batch);
    this.#engine.forward(...args);
    return result;
  }

  async forwardAsync(params: Record<string, Float32Array>, batch: NormalizedLayerBatch): Promise<ModelForwardResult<Float32Array>> {
    const { args, result } = this.forwardCall(params, batch);
    await this.#engine.forwardAsync(...args);
    return result;
  }

  /** Arguments and result arrays of gradients (the loss comes back from the call). */
  gradientCall(params: Record<string, Float32Array>, batch: NormalizedLayerBatch, targets: Int32Array, o: { training: boolean; dropoutSeed: number; truncate: number | null; reduction: Reduction; stateAt: number | null }) {
    const states = this.stateCount(batch.batch);
    const lstm = hasCellState(this.spec.cell);
    const grads: Record<string, Float32Array> = {};
    for (const p of this.#params) grads[p.name] = new Float32Array(p.size);
    const at = o.stateAt !== null;
    const result: ModelGradientResult<Float32Array> = {
      loss: 0,
      grads,
      dh0: new Float32Array(states),
      dc0: lstm ? new Float32Array(states) : null,
      hT: new Float32Array(states),
      cT: lstm ? new Float32Array(states) : null,
      hAt: at ? new Float32Array(states) : null,
      cAt: at && lstm ? new Float32Array(states) : null,
    };
    const args = [
      this.paramList(params),
      ...this.batchArgs(batch, o.training, o.dropoutSeed),
      targets,
      o.truncate ?? 0,
      o.reduction === 'sum' ? 1 : 0,
      this.#params.map((p) => grads[p.name]),
      result.dh0,
      result.dc0,
      result.hT,
      result.cT,
      result.hAt,
      result.cAt,
      o.stateAt ?? 0,
    ];
    return { args, result };
  }

  lossAndGradients(params: Record<string, Float32Array>, batch: NormalizedLayerBatch, targets: Int32Array, o: Parameters<NativeModel['gradientCall']>[3]): ModelGradientResult<Float32Array> {
    const { args, result } = this.gradientCall(params, batch, targets, o);
    result.loss = this.#engine.gradients(...args);
    return result;
  }

  async lossAndGradientsAsync(params: Record<string, Float32Array>, batch: NormalizedLayerBatch, targets: Int32Array, o: Parameters<NativeModel['gradientCall']>[3]): Promise<ModelGradientResult<Float32Array>> {
    const { args, result } = this.gradientCall(params, batch, targets, o);
    result.loss = await this.#engine.gradientsAsync(...args);
    return result;
  }

  /** Arguments and result arrays of trainStep; `out` receives loss, gradNorm and clipped. */
  trainStepCall(params: Record<string, Float32Array>, batch: NormalizedLayerBatch, targets: Int32Array, o: Parameters<NativeModel['gradientCall']>[3], step: ModelStepSettings, optimizer: Optimizer | undefined) {
    const states = this.stateCount(batch.batch);
    const lstm = hasCellState(this.spec.cell);
    const at = o.stateAt !== null;
    const arrays = {
      hT: new Float32Array(states),
      cT: lstm ? new Float32Array(states) : null,
      hAt: at ? new Float32Array(states) : null,
      cAt: at && lstm ? new Float32Array(states) : null,
    };
    const config = optimizer ? optimizer.nativeConfig(step.lr) : { kind: 'sgd', lr: step.lr };
    const hyper = Float64Array.of(config.lr, config.momentum ?? NaN, config.beta1 ?? NaN, config.beta2 ?? NaN, config.rho ?? NaN, config.eps ?? NaN, config.step ?? 1);
    const state = optimizer ? this.#params.flatMap((p) => optimizer.slots(p.name).map((t) => t.data() as Float32Array)) : [];
    const out = new Float64Array(3);
    const args = [
      this.paramList(params),
      ...this.batchArgs(batch, o.training, o.dropoutSeed),
      targets,
      o.truncate ?? 0,
      o.reduction === 'sum' ? 1 : 0,
      arrays.hT,
      arrays.cT,
      arrays.hAt,
      arrays.cAt,
      o.stateAt ?? 0,
      step.clipNorm ?? 0,
      step.clipValue ?? 0,
      config.kind,
      hyper,
      state,
      out,
    ];
    const result = (): ModelStepResult => ({ loss: out[0], gradNorm: out[1], clipped: out[2] !== 0, ...arrays });
    return { args, result };
  }

  trainStep(params: Record<string, Float32Array>, batch: NormalizedLayerBatch, targets: Int32Array, o: Parameters<NativeModel['gradientCall']>[3], step: ModelStepSettings, optimizer: Optimizer | undefined): ModelStepResult {
    const { args, result } = this.trainStepCall(params, batch, targets, o, step, optimizer);
    this.#engine.trainStep(...args);
    return result();
  }

  async trainStepAsync(params: Record<string, Float32Array>, batch: NormalizedLayerBatch, targets: Int32Array, o: Parameters<NativeModel['gradientCall']>[3], step: ModelStepSettings, optimizer: Optimizer | undefined): Promise<ModelStepResult> {
    const { args, result } = this.trainStepCall(params, batch, targets, o, step, optimizer);
    await this.#engine.trainStepAsync(...args);
    return result();
  }
}

/** Validates a model call's batch and options together. */
export function checkModelCall(spec: NormalizedModelSpec, batch: LayerBatch, options: ModelCallOptions | undefined, allowF64: boolean) {
  const b = checkLayerBatch(spec, batch, allowF64);
  const o = options ?? {};
  if (typeof o !== 'object' || o === null) throw new TypeError(`options must be an object, got ${describeValue(o)}`);
  const fwd = checkLayerForwardOptions(spec, { training: o.training, dropoutSeed: o.dropoutSeed });
  const truncate = o.truncate ?? null;
  if (truncate !== null) checkSize('truncate', truncate);
  const reduction = o.reduction ?? 'mean';
  if (reduction !== 'mean' && reduction !== 'sum') throw new TypeError(`reduction must be 'mean' or 'sum', got ${describeValue(reduction)}`);
  return { batch: b, options: { ...fwd, truncate, reduction, stateAt: checkStateAt(spec, b, o.stateAt) } };
}
