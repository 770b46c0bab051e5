/**
 * A recurrent model: the engine's stack (any cell, layers, directions) and a task head on the top
 * layer's output — PyTorch's `nn.RNN/LSTM/GRU(...)` + `nn.Linear(dirs*H, K)`, with parameters under
 * the names of that module's state_dict: `rnn.weight_ih_l0`, ..., `fc.weight` [K, dirs*H],
 * `fc.bias` [K]. The head decides what the linear layer reads and which loss it trains with:
 *
 * - tokens: softmax cross-entropy at every step (targets int32 [T, B], -1 ignored);
 * - classify: softmax cross-entropy on one vector per sequence, pooled from the top layer's
 *   outputs (targets int32 [B], -1 ignored), optionally class-weighted as PyTorch's
 *   CrossEntropyLoss(weight): Σ w_y·l / Σ w_y;
 * - regress: mean squared error or Huber loss at every valid step (targets float32 [T, B, K]) or
 *   on the pooled last step (targets float32 [B, K]), the mean over counted elements.
 *
 * Both backends run the same model: the float64 reference composes the oracle's layerForward /
 * layerBackward with the heads written here; the native one runs the fused ModelEngine
 * (native/model.cc, native/heads.cc). Steps past a sequence's length count for nothing whatever
 * their targets.
 */
import { FloatArray, Reduction, checkFinite, checkFloat32Scalar, checkIntRange, checkSize, checkedProduct, describeValue } from '../backend';
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

/**
 * What a model's head computes from the top layer's outputs, and the loss it trains with.
 *
 * - `{ kind: 'tokens' }` (default): softmax cross-entropy at every step; targets int32 [T, B],
 *   -1 ignored; K = the vocabulary (classes per step).
 * - `{ kind: 'classify', pool, classWeights }`: softmax cross-entropy on one vector per sequence;
 *   targets int32 [B] (-1 ignored), K = the number of classes. pool 'last' (default) reads the top
 *   layer at each sequence's last valid step — for a bidirectional stack the forward half there and
 *   the reverse half at step 0, as PyTorch's h_n; 'mean' averages the outputs over the valid steps.
 *   classWeights [K] (finite, >= 0) weight each sequence's loss by its class, averaged as PyTorch's
 *   CrossEntropyLoss(weight): Σ w_y·l / Σ w_y.
 * - `{ kind: 'regress', positions, loss, delta }`: a real-valued prediction of width K, at 'every'
 *   valid step (default; targets float32 [T, B, K]) or on the 'last' valid step (targets float32
 *   [B, K], the vector pooled as classify's 'last'); loss 'mse' (default) or 'huber' with `delta`
 *   (default 1, as PyTorch's HuberLoss), averaged over the counted elements (padding never counts).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, Tensor, type HeadSpec } from 'bptt';
 *
 * const head: HeadSpec = { kind: 'classify', pool: 'last', classWeights: [1, 3] };
 * const rnn = new RNN({ inputSize: 4, hiddenSize: 6, outputSize: 2, cell: 'gru', head, seed: 1, backend: 'reference' });
 * const x = Tensor.from(Int32Array.of(1, 2, 3, 0), [2, 2]); // [T, B] tokens; sequence 1 has 1 step
 * const y = Tensor.from(Int32Array.of(0, 1), [2]); // one class per sequence
 * const { loss } = rnn.lossAndGradients(x, y, { lengths: Int32Array.of(2, 1) });
 * assert.ok(loss > 0);
 * assert.deepEqual(rnn.head, { kind: 'classify', pool: 'last', classWeights: [1, 3] });
 * ```
 */
export type HeadSpec =
  | { kind: 'tokens' }
  | { kind: 'classify'; pool?: 'last' | 'mean'; classWeights?: ArrayLike<number> }
  | { kind: 'regress'; positions?: 'every' | 'last'; loss?: 'mse' | 'huber'; delta?: number };

/**
 * A {@link HeadSpec} after validation, defaults filled in, frozen and JSON-serialisable (what
 * `rnn.head` returns and a checkpoint saves): classWeights a plain number array (float32 values)
 * when given, delta present exactly for the Huber loss.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, type NormalizedHeadSpec } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 1, head: { kind: 'regress', loss: 'huber' }, backend: 'reference' });
 * const head: NormalizedHeadSpec = rnn.head;
 * assert.deepEqual(head, { kind: 'regress', positions: 'every', loss: 'huber', delta: 1 });
 * assert.deepEqual(JSON.parse(JSON.stringify(head)), head);
 * ```
 */
export type NormalizedHeadSpec =
  | Readonly<{ kind: 'tokens' }>
  | Readonly<{ kind: 'classify'; pool: 'last' | 'mean'; classWeights?: readonly number[] }>
  | Readonly<{ kind: 'regress'; positions: 'every' | 'last'; loss: 'mse' | 'huber'; delta?: number }>;

export interface ModelSpec extends LayerSpec {
  /** K: classes of the softmax (tokens, classify) or the width of the regression. */
  outputSize: number;
  /** Default `{ kind: 'tokens' }`. */
  head?: HeadSpec;
}

export type NormalizedModelSpec = NormalizedLayerSpec & { readonly outputSize: number; readonly head: NormalizedHeadSpec };

function checkChoice<T extends string>(name: string, value: unknown, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!choices.includes(value as T)) throw new TypeError(`${name} must be ${choices.map((c) => `'${c}'`).join(' or ')}, got ${describeValue(value)}`);
  return value as T;
}

function checkKeys(name: string, value: object, keys: readonly string[]): void {
  for (const key of Object.keys(value)) if (!keys.includes(key)) throw new TypeError(`${name} has no option '${key}' (it takes ${keys.join(', ')})`);
}

/** Validates a head against K = outputSize; see {@link HeadSpec}. */
export function checkHeadSpec(head: HeadSpec | undefined, outputSize: number): NormalizedHeadSpec {
  if (head === undefined || head === null) return Object.freeze({ kind: 'tokens' });
  if (typeof head !== 'object') throw new TypeError(`head must be an object { kind: 'tokens' | 'classify' | 'regress', ... }, got ${describeValue(head)}`);
  switch (head.kind) {
    case 'tokens':
      checkKeys('head (tokens)', head, ['kind']);
      return Object.freeze({ kind: 'tokens' });
    case 'classify': {
      checkKeys('head (classify)', head, ['kind', 'pool', 'classWeights']);
      const pool = checkChoice('head.pool', head.pool, ['last', 'mean'], 'last');
      if (head.classWeights === undefined) return Object.freeze({ kind: 'classify', pool });
      const w = head.classWeights;
      if (w === null || typeof w !== 'object' || typeof w.length !== 'number') throw new TypeError(`head.classWeights must be an array of ${outputSize} numbers, got ${describeValue(w)}`);
      if (w.length !== outputSize) throw new ShapeError(`head.classWeights must have one weight per class (outputSize = ${outputSize}), got ${w.length}`);
      const classWeights = Array.from(w, (v, i) => {
        if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || !Number.isFinite(Math.fround(v))) throw new RangeError(`head.classWeights[${i}] must be a finite number >= 0, got ${describeValue(v)}`);
        return Math.fround(v);
      });
      return Object.freeze({ kind: 'classify', pool, classWeights: Object.freeze(classWeights) });
    }
    case 'regress': {
      checkKeys('head (regress)', head, ['kind', 'positions', 'loss', 'delta']);
      const positions = checkChoice('head.positions', head.positions, ['every', 'last'], 'every');
      const loss = checkChoice('head.loss', head.loss, ['mse', 'huber'], 'mse');
      if (loss === 'mse') {
        if (head.delta !== undefined) throw new TypeError(`head.delta is the Huber loss's threshold; the loss is 'mse'`);
        return Object.freeze({ kind: 'regress', positions, loss });
      }
      const delta = head.delta === undefined ? 1 : Math.fround(checkFloat32Scalar('head.delta', head.delta, false));
      return Object.freeze({ kind: 'regress', positions, loss, delta });
    }
    default:
      throw new TypeError(`head.kind must be 'tokens', 'classify' or 'regress', got ${describeValue((head as { kind: unknown }).kind)}`);
  }
}

/** Whether the head reads one vector per sequence (classify, regress on the last step) rather than every step. */
export function headPools(head: NormalizedHeadSpec): boolean {
  return head.kind === 'classify' || (head.kind === 'regress' && head.positions === 'last');
}

/** The shape of the head's output (logits or values) for a batch: [T, B, K] per step, [B, K] pooled. */
export function headOutputShape(spec: NormalizedModelSpec, T: number, B: number): number[] {
  return headPools(spec.head) ? [B, spec.outputSize] : [T, B, spec.outputSize];
}

/** The shape and dtype of a call's targets: int32 [T, B] (tokens) or [B] (classify); float32 [T, B, K] or [B, K] (regress). */
export function headTargetShape(spec: NormalizedModelSpec, T: number, B: number): { dtype: 'int32' | 'float32'; shape: number[] } {
  const head = spec.head;
  if (head.kind === 'tokens') return { dtype: 'int32', shape: [T, B] };
  if (head.kind === 'classify') return { dtype: 'int32', shape: [B] };
  return { dtype: 'float32', shape: head.positions === 'every' ? [T, B, spec.outputSize] : [B, spec.outputSize] };
}

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
  return Object.freeze({ ...layer, outputSize, head: checkHeadSpec(spec.head, outputSize) });
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

/** Where a native forward puts its results (see NativeModel.forwardCall). */
export interface ForwardDestination {
  logits?: Float32Array;
  outputs?: boolean;
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

/** A call's targets: class ids (tokens, classify) or real values (regress); see {@link headTargetShape}. */
export type ModelTargets = Int32Array | Float32Array;

/**
 * Validates a call's targets against the model's head: type and length, class ids in [0, K) or
 * -1, regression targets finite (a NaN target is an error, never a NaN loss).
 */
export function checkModelTargets(spec: NormalizedModelSpec, batch: NormalizedLayerBatch, targets: ModelTargets): void {
  const { dtype, shape } = headTargetShape(spec, batch.steps, batch.batch);
  const n = shape.reduce((a, b) => a * b, 1);
  const expected = `${dtype === 'int32' ? 'an Int32Array' : 'a Float32Array'} [${shape.join(', ')}]`;
  if (!(dtype === 'int32' ? targets instanceof Int32Array : targets instanceof Float32Array)) throw new DTypeError(`targets of the ${spec.head.kind} head must be ${expected}, got ${describeValue(targets)}`);
  if (targets.length !== n) throw new ShapeError(`targets of the ${spec.head.kind} head must be ${expected} (${n} elements), got ${targets.length}`);
  if (targets instanceof Int32Array) checkIntRange('targets', targets, 0, spec.outputSize, -1);
  else checkFinite('targets', targets);
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

/** The valid steps of sequence b. */
function validSteps(batch: NormalizedLayerBatch, b: number): number {
  return batch.lengths === null ? batch.steps : batch.lengths[b];
}

/**
 * What the head's linear layer reads: every step's top output [T*B, W] as it is, or one vector
 * per sequence [B, W] pooled from them (see {@link HeadSpec}).
 */
function referenceFeatures(spec: NormalizedModelSpec, batch: NormalizedLayerBatch, y: Float64Array): Float64Array {
  const head = spec.head;
  if (!headPools(head)) return y;
  const B = batch.batch;
  const W = layerOutputSize(spec);
  const H = spec.hiddenSize;
  const features = new Float64Array(B * W);
  for (let b = 0; b < B; b++) {
    const n = validSteps(batch, b);
    const f = features.subarray(b * W, (b + 1) * W);
    if (head.kind === 'classify' && head.pool === 'mean') {
      for (let t = 0; t < n; t++) for (let j = 0; j < W; j++) f[j] += y[(t * B + b) * W + j] / n;
    } else {
      // The forward direction's last valid step; the reverse direction's last is step 0 (h_n).
      for (let j = 0; j < H; j++) f[j] = y[((n - 1) * B + b) * W + j];
      for (let j = H; j < W; j++) f[j] = y[b * W + j];
    }
  }
  return features;
}

/** The transpose of referenceFeatures: the features' gradient scattered back onto the top outputs [T, B, W]. */
function referenceFeaturesBackward(spec: NormalizedModelSpec, batch: NormalizedLayerBatch, dFeatures: Float64Array): Float64Array {
  const head = spec.head;
  if (!headPools(head)) return dFeatures;
  const B = batch.batch;
  const W = layerOutputSize(spec);
  const H = spec.hiddenSize;
  const dy = new Float64Array(batch.steps * B * W);
  for (let b = 0; b < B; b++) {
    const n = validSteps(batch, b);
    const g = dFeatures.subarray(b * W, (b + 1) * W);
    if (head.kind === 'classify' && head.pool === 'mean') {
      for (let t = 0; t < n; t++) for (let j = 0; j < W; j++) dy[(t * B + b) * W + j] += g[j] / n;
    } else {
      for (let j = 0; j < H; j++) dy[((n - 1) * B + b) * W + j] += g[j];
      for (let j = H; j < W; j++) dy[b * W + j] += g[j];
    }
  }
  return dy;
}

/** z = fc.weight x + fc.bias for every row of x [rows, W]. */
function referenceLinear(spec: NormalizedModelSpec, params: Record<string, FloatArray>, x: Float64Array): Float64Array {
  const K = spec.outputSize;
  const W = layerOutputSize(spec);
  const V = params['fc.weight'];
  const c = params['fc.bias'];
  const rows = x.length / W;
  const z = new Float64Array(rows * K);
  for (let r = 0; r < rows; r++)
    for (let k = 0; k < K; k++) {
      let v = c[k];
      for (let j = 0; j < W; j++) v += V[k * W + j] * x[r * W + j];
      z[r * K + k] = v;
    }
  return z;
}

/** The head's outputs (logits or values; see {@link headOutputShape}) from the top layer's outputs y [T, B, W]. */
export function referenceHeadForward(spec: NormalizedModelSpec, params: Record<string, FloatArray>, batch: NormalizedLayerBatch, y: Float64Array): Float64Array {
  return referenceLinear(spec, params, referenceFeatures(spec, batch, y));
}

/** The loss of the head's outputs z against the targets, and dL/dz. */
function referenceHeadLoss(spec: NormalizedModelSpec, batch: NormalizedLayerBatch, z: Float64Array, targets: ModelTargets, reduction: Reduction): { loss: number; dz: Float64Array } {
  const head = spec.head;
  const K = spec.outputSize;
  const B = batch.batch;
  const rows = z.length / K;
  const dz = new Float64Array(z.length);
  // Whether row r (a step of a sequence, or a sequence) is inside its sequence: padding never counts.
  const valid = (r: number) => headPools(head) || Math.floor(r / B) < validSteps(batch, r % B);
  if (head.kind === 'regress') {
    let counted = 0;
    for (let r = 0; r < rows; r++) if (valid(r)) counted += K;
    const scale = reduction === 'mean' && counted > 0 ? 1 / counted : 1;
    let loss = 0;
    for (let r = 0; r < rows; r++) {
      if (!valid(r)) continue;
      for (let k = 0; k < K; k++) {
        const d = z[r * K + k] - targets[r * K + k];
        if (head.loss === 'mse') {
          loss += d * d;
          dz[r * K + k] = 2 * d * scale;
        } else {
          const delta = head.delta!;
          const inside = Math.abs(d) <= delta;
          loss += inside ? 0.5 * d * d : delta * (Math.abs(d) - 0.5 * delta);
          dz[r * K + k] = (inside ? d : delta * Math.sign(d)) * scale;
        }
      }
    }
    return { loss: loss * scale, dz };
  }
  // Softmax cross-entropy, each counted row weighted by its class's weight (1 without weights):
  // mean = Σ w_y·l / Σ w_y as PyTorch's CrossEntropyLoss(weight).
  const weights = head.kind === 'classify' ? head.classWeights : undefined;
  const weight = (r: number) => (weights === undefined ? 1 : weights[targets[r]]);
  let total = 0;
  for (let r = 0; r < rows; r++) if (targets[r] >= 0 && valid(r)) total += weight(r);
  const scale = reduction === 'mean' && total > 0 ? 1 / total : 1;
  let loss = 0;
  for (let r = 0; r < rows; r++) {
    if (targets[r] < 0 || !valid(r)) continue;
    const w = weight(r);
    const row = z.subarray(r * K, (r + 1) * K);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    loss += w * (Math.log(sum) + max - row[targets[r]]);
    for (let k = 0; k < K; k++) dz[r * K + k] = w * (Math.exp(row[k] - max) / sum - (k === targets[r] ? 1 : 0)) * scale;
  }
  return { loss: loss * scale, dz };
}

/** The head's loss and backward: dL/d(fc.weight), dL/d(fc.bias) and dL/dy [T, B, W] for the top outputs y. */
export function referenceHeadBackward(
  spec: NormalizedModelSpec,
  params: Record<string, FloatArray>,
  batch: NormalizedLayerBatch,
  y: Float64Array,
  targets: ModelTargets,
  reduction: Reduction,
): { loss: number; dy: Float64Array; dWeight: Float64Array; dBias: Float64Array } {
  const K = spec.outputSize;
  const W = layerOutputSize(spec);
  const features = referenceFeatures(spec, batch, y);
  const { loss, dz } = referenceHeadLoss(spec, batch, referenceLinear(spec, params, features), targets, reduction);
  const V = params['fc.weight'];
  const rows = features.length / W;
  const dWeight = new Float64Array(K * W);
  const dBias = new Float64Array(K);
  const dFeatures = new Float64Array(rows * W);
  for (let r = 0; r < rows; r++)
    for (let k = 0; k < K; k++) {
      const g = dz[r * K + k];
      if (g === 0) continue;
      dBias[k] += g;
      for (let j = 0; j < W; j++) {
        dWeight[k * W + j] += g * features[r * W + j];
        dFeatures[r * W + j] += g * V[k * W + j];
      }
    }
  return { loss, dy: referenceFeaturesBackward(spec, batch, dFeatures), dWeight, dBias };
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

/** The model without dropout: the top outputs, the head's outputs (logits [T, B, K] or [B, K], or values) and the final states. */
export function referenceModelForward(spec: NormalizedModelSpec, params: Record<string, FloatArray>, batch: NormalizedLayerBatch): ModelForwardResult<Float64Array> {
  const out = layerForward(spec, stackWeights(spec, params), batch);
  out.saved.dispose();
  return { outputs: out.y, logits: referenceHeadForward(spec, params, batch, out.y), hT: out.hT, cT: out.cT };
}

/** The gradient of the loss with respect to the top layer's outputs [T, B, W] (the head's backward only), without dropout. */
export function referenceOutputGradients(spec: NormalizedModelSpec, params: Record<string, FloatArray>, batch: NormalizedLayerBatch, targets: ModelTargets, reduction: Reduction): { loss: number; dy: Float64Array } {
  const out = layerForward(spec, stackWeights(spec, params), batch);
  out.saved.dispose();
  const { loss, dy } = referenceHeadBackward(spec, params, batch, out.y, targets, reduction);
  return { loss, dy };
}

export function referenceModelLossAndGradients(
  spec: NormalizedModelSpec,
  params: Record<string, FloatArray>,
  batch: NormalizedLayerBatch,
  targets: ModelTargets,
  options: { training: boolean; dropoutSeed: number; truncate: number | null; reduction: Reduction; stateAt: number | null },
): ModelGradientResult<Float64Array> {
  const weights = stackWeights(spec, params);
  const out = layerForward(spec, weights, batch, { training: options.training, dropoutSeed: options.dropoutSeed });
  const head = referenceHeadBackward(spec, params, batch, out.y, targets, options.reduction);
  const back = layerBackward(spec, weights, out.saved, { dy: head.dy, truncate: options.truncate });
  out.saved.dispose();
  const grads: Record<string, Float64Array> = {};
  for (const p of modelParameters(spec)) grads[p.name] = p.layer ? back.grads[p.layer.name] : p.name === 'fc.weight' ? head.dWeight : head.dBias;
  const at = options.stateAt === null ? { hAt: null, cAt: null } : referenceStatesAt(spec, params, batch, options.stateAt, options.training, options.dropoutSeed);
  return { loss: head.loss, grads, dh0: back.dh0, dc0: back.dc0, hT: out.hT, cT: out.cT, ...at };
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
  outputGradients(...args: unknown[]): number;
  outputGradientsAsync(...args: unknown[]): Promise<number>;
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
    const head = spec.head;
    const pool = head.kind === 'classify' ? head.pool : head.kind === 'regress' ? head.positions : 'every';
    const loss = head.kind === 'regress' ? head.loss : 'cross-entropy';
    const delta = head.kind === 'regress' && head.delta !== undefined ? head.delta : 1;
    const classWeights = head.kind === 'classify' && head.classWeights ? Float32Array.from(head.classWeights) : null;
    this.#engine = new Engine(spec.cell, spec.inputSize, spec.hiddenSize, spec.numLayers, spec.bidirectional, spec.dropout, spec.outputSize, head.kind, pool, loss, delta, classWeights);
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

  /**
   * Arguments and result arrays of forward. `into.logits`: the array the head's outputs go to
   * (predict's own result, so they are not copied); `into.outputs: false` leaves the top layer's
   * outputs out (an empty array in the result) where only the head's are wanted.
   */
  forwardCall(params: Record<string, Float32Array>, batch: NormalizedLayerBatch, into: ForwardDestination = {}) {
    const rows = batch.steps * batch.batch;
    const states = this.stateCount(batch.batch);
    const result: ModelForwardResult<Float32Array> = {
      outputs: new Float32Array(into.outputs === false ? 0 : rows * layerOutputSize(this.spec)),
      logits: into.logits ?? new Float32Array(headOutputShape(this.spec, batch.steps, batch.batch).reduce((a, b) => a * b, 1)),
      hT: new Float32Array(states),
      cT: hasCellState(this.spec.cell) ? new Float32Array(states) : null,
    };
    const outputs = into.outputs === false ? null : result.outputs;
    const args = [this.paramList(params), ...this.batchArgs(batch, false, 0), result.logits, outputs, result.hT, result.cT, null, null, 0];
    return { args, result };
  }

  forward(params: Record<string, Float32Array>, batch: NormalizedLayerBatch, into: ForwardDestination = {}): ModelForwardResult<Float32Array> {
    const { args, result } = this.forwardCall(params, batch, into);
    this.#engine.forward(...args);
    return result;
  }

  async forwardAsync(params: Record<string, Float32Array>, batch: NormalizedLayerBatch, into: ForwardDestination = {}): Promise<ModelForwardResult<Float32Array>> {
    const { args, result } = this.forwardCall(params, batch, into);
    await this.#engine.forwardAsync(...args);
    return result;
  }

  /** Arguments and result arrays of gradients (the loss comes back from the call). */
  gradientCall(params: Record<string, Float32Array>, batch: NormalizedLayerBatch, targets: ModelTargets, o: { training: boolean; dropoutSeed: number; truncate: number | null; reduction: Reduction; stateAt: number | null }) {
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

  lossAndGradients(params: Record<string, Float32Array>, batch: NormalizedLayerBatch, targets: ModelTargets, o: Parameters<NativeModel['gradientCall']>[3]): ModelGradientResult<Float32Array> {
    const { args, result } = this.gradientCall(params, batch, targets, o);
    result.loss = this.#engine.gradients(...args);
    return result;
  }

  async lossAndGradientsAsync(params: Record<string, Float32Array>, batch: NormalizedLayerBatch, targets: ModelTargets, o: Parameters<NativeModel['gradientCall']>[3]): Promise<ModelGradientResult<Float32Array>> {
    const { args, result } = this.gradientCall(params, batch, targets, o);
    result.loss = await this.#engine.gradientsAsync(...args);
    return result;
  }

  /** Arguments and result array of outputGradients (the loss comes back from the call). */
  outputGradientsCall(params: Record<string, Float32Array>, batch: NormalizedLayerBatch, targets: ModelTargets, reduction: Reduction) {
    const dy = new Float32Array(batch.steps * batch.batch * layerOutputSize(this.spec));
    const args = [this.paramList(params), ...this.batchArgs(batch, false, 0), targets, reduction === 'sum' ? 1 : 0, dy];
    return { args, dy };
  }

  outputGradients(params: Record<string, Float32Array>, batch: NormalizedLayerBatch, targets: ModelTargets, reduction: Reduction): { loss: number; dy: Float32Array } {
    const { args, dy } = this.outputGradientsCall(params, batch, targets, reduction);
    return { loss: this.#engine.outputGradients(...args), dy };
  }

  async outputGradientsAsync(params: Record<string, Float32Array>, batch: NormalizedLayerBatch, targets: ModelTargets, reduction: Reduction): Promise<{ loss: number; dy: Float32Array }> {
    const { args, dy } = this.outputGradientsCall(params, batch, targets, reduction);
    return { loss: await this.#engine.outputGradientsAsync(...args), dy };
  }

  /** Arguments and result arrays of trainStep; `out` receives loss, gradNorm and clipped. */
  trainStepCall(params: Record<string, Float32Array>, batch: NormalizedLayerBatch, targets: ModelTargets, o: Parameters<NativeModel['gradientCall']>[3], step: ModelStepSettings, optimizer: Optimizer | undefined) {
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

  trainStep(params: Record<string, Float32Array>, batch: NormalizedLayerBatch, targets: ModelTargets, o: Parameters<NativeModel['gradientCall']>[3], step: ModelStepSettings, optimizer: Optimizer | undefined): ModelStepResult {
    const { args, result } = this.trainStepCall(params, batch, targets, o, step, optimizer);
    this.#engine.trainStep(...args);
    return result();
  }

  async trainStepAsync(params: Record<string, Float32Array>, batch: NormalizedLayerBatch, targets: ModelTargets, o: Parameters<NativeModel['gradientCall']>[3], step: ModelStepSettings, optimizer: Optimizer | undefined): Promise<ModelStepResult> {
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
