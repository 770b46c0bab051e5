/**
 * The Elman RNN model: parameters as native tensors, and its operations on either backend.
 *
 *   s_t = tanh(U x_t + W s_{t-1} + b),  z_t = V s_t + c,  y_t = softmax(z_t)
 *
 * Inputs are int32 [T, B] token ids (x_t one-hot, so U x_t is a gather) or float32 [T, B, D];
 * targets int32 [T, B] with -1 for ignored positions. See lib/backend.ts for the layout.
 */
import { randomInt } from 'crypto';
import {
  Dims,
  PARAM_NAMES,
  ParamArrays,
  ParamName,
  Reduction,
  Sequence,
  checkDims,
  checkFinite,
  checkFloat32Scalar,
  checkSize,
  checkTargets,
  checkSequence,
  describeValue,
  paramShapes,
} from './backend';
import { reference } from './backends/reference';
import { NativeEngine, NativeRequest, createEngine, nativeArgs, nativeRequest, translateNativeError, withPinned } from './backends/native';
import { DTypeError, ShapeError } from './errors';
import { CellKind, LayerSpec, NormalizedLayerBatch } from './engine/spec';
import { HeadSpec, NativeModel, NormalizedHeadSpec, checkModelSpec, referenceHeadBackward } from './engine/model';
import { Optimizer, applyReferenceStep } from './optim';
import { InitKind, StackModel, applyInit, batchScatter, batchSlice, checkInit, checkPredictOptions, probabilities } from './stack';
import { Rng } from './rng';
import { Tensor } from './tensor';
import { SampleOptions, sample } from './train/sample';
import type { CharTokenizer } from './train/tokenizer';

/**
 * Where a model computes: 'native' (the addon's SIMD kernels, float32) or 'reference' (pure TS,
 * float64 math with float32 storage, no addon needed; the specification the native code is
 * tested against).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, Tensor, nativeAvailable, type BackendName } from 'bptt';
 *
 * const backend: BackendName = nativeAvailable() ? 'native' : 'reference';
 * const options = { inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 };
 * const x = Tensor.from(Int32Array.of(0, 2, 1), [3, 1]);
 * const a = new RNN({ ...options, backend }).forward(x).logits.toArray();
 * const b = new RNN({ ...options, backend: 'reference' }).forward(x).logits.toArray();
 * a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) < 1e-5)); // same seed, same model
 * ```
 */
export type BackendName = 'native' | 'reference';

/**
 * What `new RNN(options)` builds. Without cell, numLayers, bidirectional, dropout or head it is the
 * default model, s_t = tanh(U x_t + W s_{t-1} + b), y_t = softmax(V s_t + c); otherwise a
 * PyTorch-style stack (nn.RNN / nn.LSTM / nn.GRU) with a linear head (see {@link HeadSpec}).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, type RNNOptions } from 'bptt';
 *
 * const options: RNNOptions = { inputSize: 32, hiddenSize: 64, outputSize: 10, cell: 'gru', numLayers: 2, bidirectional: true, dropout: 0.2, seed: 7 };
 * const rnn = new RNN(options);
 * assert.deepEqual(rnn.params['fc.weight'].shape, [10, 2 * 64]); // the head reads both directions
 * ```
 */
export interface RNNOptions {
  /** D: the width of dense inputs, or the number of token ids. */
  inputSize: number;
  /** H: hidden units per layer and direction. */
  hiddenSize: number;
  /** K: classes of the softmax (tokens, classify heads) or the width of the regression (regress head). */
  outputSize: number;
  /** What the model predicts and trains on (default `{ kind: 'tokens' }`: softmax at every step); see {@link HeadSpec}. */
  head?: HeadSpec;
  /** How the recurrent weights start: 'pytorch' (default), 'orthogonal' or 'identity'; see {@link InitKind}. */
  init?: InitKind;
  /** Seeds the initialisation (random when omitted; read it back from rnn.seed). */
  seed?: number;
  /** Default 'native'. */
  backend?: BackendName;
  /** 'tanh' (default), 'relu', 'lstm' or 'gru'. */
  cell?: CellKind;
  /** Stacked recurrent layers (default 1). */
  numLayers?: number;
  /** Each layer reads the sequence both ways; outputs [forward, reverse] (default false). */
  bidirectional?: boolean;
  /** Dropout between stacked layers in training calls, in [0, 1) (default 0). */
  dropout?: number;
}

/**
 * The parameters by name: U, W, b, V, c for the default one-layer tanh model; PyTorch's
 * state_dict names (`rnn.weight_ih_l0`, ..., `fc.weight`, `fc.bias`) for every other.
 *
 * Shapes: U [H, D], W [H, H], b [H], V [K, H], c [K]; `rnn.weight_ih_l{k}[_reverse]`
 * [G*H, in], `rnn.weight_hh_l{k}...` [G*H, H], `rnn.bias_ih_l{k}...` and `rnn.bias_hh_l{k}...`
 * [G*H], `fc.weight` [K, dirs*H], `fc.bias` [K], with G = 1 (tanh, relu), 4 (LSTM: i, f, g, o)
 * or 3 (GRU: r, z, n) gates and `in` = D for layer 0, dirs*H above.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, type Params } from 'bptt';
 *
 * const params: Params = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 2, seed: 1 }).params;
 * assert.deepEqual(Object.entries(params).map(([name, t]) => `${name} [${t.shape}]`), ['U [4,3]', 'W [4,4]', 'b [4]', 'V [2,4]', 'c [2]']);
 * ```
 */
export type Params = Readonly<Record<string, Tensor>>;

/**
 * New values for every parameter, by the names of `rnn.params`: Float32Arrays of the right
 * length or float32 Tensors of the right shape (see {@link RNN.setParams}).
 *
 * @example
 * ```ts
 * import { RNN, Tensor, type ParamValues } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 2, hiddenSize: 2, outputSize: 2, seed: 1 });
 * const identity: ParamValues = {
 *   U: Float32Array.of(1, 0, 0, 1), W: new Float32Array(4), b: new Float32Array(2),
 *   V: Tensor.from(Float32Array.of(1, 0, 0, 1), [2, 2]), c: new Float32Array(2),
 * };
 * rnn.setParams(identity);
 * ```
 */
export type ParamValues = Readonly<Record<string, Float32Array | Tensor>> | Readonly<Record<ParamName, Float32Array | Tensor>>;

/**
 * Options of {@link RNN.forward}: the initial state and the sequences' lengths. `c0` and
 * `lengths` are for the engine models (cell, numLayers, bidirectional or dropout set); the
 * default one-layer tanh model refuses them (TypeError).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, Tensor, type ForwardOptions } from 'bptt';
 *
 * const lstm = new RNN({ inputSize: 5, hiddenSize: 4, outputSize: 5, cell: 'lstm', numLayers: 2, seed: 1 });
 * const x = Tensor.from(Int32Array.of(1, 2, 3, 4, 0, 0), [3, 2]); // [T, B]; sequence 1 is 2 steps long
 * const options: ForwardOptions = { h0: Tensor.zeros(lstm.stateShape(2)), c0: Tensor.zeros(lstm.stateShape(2)), lengths: Int32Array.of(3, 2) };
 * const { logits } = lstm.forward(x, options);
 * assert.deepEqual(logits.shape, [3, 2, 5]);
 * ```
 */
export interface ForwardOptions {
  /** Initial state: [B, H] for the default model, [L*dirs, B, H] (or [B, H] when L*dirs = 1) for the others. */
  h0?: Tensor;
  /** LSTM initial cell state, like h0. */
  c0?: Tensor;
  /** Valid steps per sequence (Int32Array or int32 Tensor [B], each in [1, T]); later steps are padding. */
  lengths?: Int32Array | Tensor;
}

/**
 * What {@link RNN.forward} returns: new tensors the caller owns.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, Tensor, type ForwardOutput } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, numLayers: 2, bidirectional: true, seed: 1 });
 * const out: ForwardOutput = rnn.forward(Tensor.from(Int32Array.of(0, 1, 2), [3, 1]));
 * assert.deepEqual(out.states.shape, [3, 1, 8]); // [T, B, dirs*H]
 * assert.deepEqual(out.hT.shape, [4, 1, 4]); // [L*dirs, B, H]
 * assert.equal(out.cT, undefined); // not an LSTM
 * ```
 */
export interface ForwardOutput {
  /** The top layer's outputs [T, B, dirs*H] (the hidden states s_t for the default model). */
  states: Tensor;
  /**
   * The head's outputs: logits before the softmax, [T, B, K] (tokens) or [B, K] (classify), or the
   * regression's values [T, B, K] (every step) or [B, K] (last step). Per-step rows at padding
   * steps are those of zero outputs.
   */
  logits: Tensor;
  /** The state after each sequence's last valid step: [B, H] for the default model, [L*dirs, B, H] otherwise. */
  hT: Tensor;
  /** LSTM only. */
  cT?: Tensor;
}

/**
 * Options of {@link RNN.lossAndGradients}; also those of {@link RNN.forward}.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, Tensor, type LossAndGradientsOptions } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 4, hiddenSize: 8, outputSize: 4, seed: 1 });
 * const x = Tensor.from(Int32Array.from({ length: 16 }, (_, i) => i % 4), [16, 1]);
 * const y = Tensor.from(Int32Array.from({ length: 16 }, (_, i) => (i + 1) % 4), [16, 1]);
 * const options: LossAndGradientsOptions = { truncate: 4, reduction: 'sum', stateAt: 7 };
 * const { loss, hAt } = rnn.lossAndGradients(x, y, options); // hAt: the state after step 7
 * assert.deepEqual(hAt?.shape, [1, 8]);
 * console.log(loss);
 * ```
 */
export interface LossAndGradientsOptions extends ForwardOptions {
  /**
   * Truncated BPTT: in every layer and direction, the gradient of each step's loss backpropagates
   * through at most this many steps of the recurrence (an integer >= 1). Omitted: exact BPTT.
   */
  truncate?: number;
  /**
   * 'mean' (default): the loss averaged over the counted targets (class-weighted for a classify
   * head with classWeights; over every counted element for a regress head); 'sum': summed.
   */
  reduction?: Reduction;
  /** Also return the state after this step (0-based) as `hAt` (and `cAt`): where an overlapping TBPTT window resumes. */
  stateAt?: number;
  /** Dropout between layers (models with dropout); default true: these are training calls. */
  training?: boolean;
  /** Seed of this call's dropout masks; default: the next one of the model's dropout stream. */
  dropoutSeed?: number;
}

/**
 * What {@link RNN.lossAndGradients} returns: the loss and new gradient tensors the caller owns.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, Tensor, type LossAndGradientsOutput } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 });
 * const out: LossAndGradientsOutput = rnn.lossAndGradients(Tensor.from(Int32Array.of(0, 1), [2, 1]), Tensor.from(Int32Array.of(1, 2), [2, 1]));
 * assert.deepEqual(Object.keys(out.grads), ['U', 'W', 'b', 'V', 'c', 'h0']);
 * assert.deepEqual(out.grads.W.shape, rnn.params.W.shape);
 * ```
 */
export interface LossAndGradientsOutput {
  /** The cross-entropy, reduced as asked; 0 when every target is ignored. */
  loss: number;
  /** Every parameter's gradient, and h0 (and c0 for an LSTM): the initial state's. */
  grads: Record<string, Tensor>;
  /** The final state (see {@link ForwardOutput.hT}). */
  hT: Tensor;
  /** LSTM only. */
  cT?: Tensor;
  /** The state after step `stateAt`, when asked for. */
  hAt?: Tensor;
  /** LSTM only, with `stateAt`. */
  cAt?: Tensor;
}

/**
 * Options of {@link RNN.trainStep}: the learning rate, clipping and optimizer, on top of
 * {@link LossAndGradientsOptions}. With both clips, values are clamped first, then the global
 * norm rescaled.
 *
 * @example
 * ```ts
 * import { Optimizer, RNN, Tensor, type TrainStepOptions } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 });
 * const options: TrainStepOptions = { lr: 1e-2, clipNorm: 1, clipValue: 0.5, optimizer: new Optimizer(rnn, { kind: 'rmsprop' }), truncate: 2 };
 * rnn.trainStep(Tensor.from(Int32Array.of(0, 1, 2), [3, 1]), Tensor.from(Int32Array.of(1, 2, 0), [3, 1]), options);
 * ```
 */
export interface TrainStepOptions extends LossAndGradientsOptions {
  /** The learning rate, a finite number >= 0 (0 leaves the parameters as they are). */
  lr: number;
  /** Rescale the gradient to this global L2 norm when it is larger. */
  clipNorm?: number;
  /** Clamp each gradient element to [-clipValue, clipValue]. */
  clipValue?: number;
  /** Defaults to plain SGD. */
  optimizer?: Optimizer;
}

/**
 * Options of {@link RNN.sample}: {@link SampleOptions} with a primer, and the tokenizer to
 * use instead of `rnn.tokenizer`.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { CharTokenizer, RNN, type RNNSampleOptions } from 'bptt';
 *
 * const tokenizer = CharTokenizer.fromText('abc\n');
 * const rnn = new RNN({ inputSize: tokenizer.vocabSize, hiddenSize: 8, outputSize: tokenizer.vocabSize, seed: 1 });
 * const options: RNNSampleOptions = { length: 10, prime: 'ab', temperature: 0.8, seed: 3, tokenizer };
 * const text = rnn.sample(options) as string;
 * assert.equal(text.length, 10);
 * ```
 */
export interface RNNSampleOptions extends SampleOptions {
  /** Text (with a tokenizer) or token ids to condition on. */
  prime?: string | ArrayLike<number>;
  /** Overrides rnn.tokenizer. */
  tokenizer?: CharTokenizer;
}

/**
 * What {@link RNN.trainStep} returns. The loss and the gradient norm are measured with the
 * parameters before the update; the states too.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, Tensor, type TrainStepOutput } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 });
 * const out: TrainStepOutput = rnn.trainStep(Tensor.from(Int32Array.of(0, 1, 2), [3, 1]), Tensor.from(Int32Array.of(1, 2, 0), [3, 1]), { lr: 0.1, clipNorm: 1e-3 });
 * assert.equal(out.clipped, out.gradNorm > 1e-3);
 * ```
 */
export interface TrainStepOutput {
  /** The loss before the update. */
  loss: number;
  /** Global L2 norm of the parameter gradients, before clipping. */
  gradNorm: number;
  /** Whether clipValue or clipNorm changed the gradient. */
  clipped: boolean;
  /** The final state (see {@link ForwardOutput.hT}). */
  hT: Tensor;
  /** LSTM only. */
  cT?: Tensor;
  /** The state after step `stateAt`, when asked for. */
  hAt?: Tensor;
  /** LSTM only, with `stateAt`. */
  cAt?: Tensor;
}

/**
 * Options of {@link RNN.predict}: the sequences' lengths and how many sequences run at once.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, Tensor, type PredictOptions } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 2, head: { kind: 'classify' }, seed: 1, backend: 'reference' });
 * const options: PredictOptions = { lengths: Int32Array.of(3, 1, 2), batchSize: 2 };
 * const p = rnn.predict(Tensor.from(Int32Array.of(0, 1, 2, 1, 0, 2, 2, 0, 1), [3, 3]), options);
 * assert.deepEqual(p.shape, [3, 2]); // [B, K] class probabilities
 * ```
 */
export interface PredictOptions {
  /** Valid steps per sequence (Int32Array or int32 Tensor [B], each in [1, T]); engine models only. */
  lengths?: Int32Array | Tensor;
  /**
   * Run at most this many sequences per call, to bound the memory of large inputs. Default: as
   * many as fit in about 1 GiB of working memory (all of them for any ordinary batch). The results
   * are the same, bit for bit, whatever the slices.
   */
  batchSize?: number;
}

/**
 * Options of {@link RNN.outputGradients}: the initial state, lengths and reduction of the loss.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, Tensor, type OutputGradientsOptions } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, cell: 'lstm', seed: 1, backend: 'reference' });
 * const options: OutputGradientsOptions = { lengths: Int32Array.of(2), reduction: 'sum' };
 * const { dy } = rnn.outputGradients(Tensor.from(Int32Array.of(0, 1), [2, 1]), Tensor.from(Int32Array.of(1, 2), [2, 1]), options);
 * assert.equal(dy.length, 2 * 1 * 4); // [T, B, dirs*H]
 * ```
 */
export interface OutputGradientsOptions extends ForwardOptions {
  /** As in {@link LossAndGradientsOptions.reduction}. */
  reduction?: Reduction;
}

/**
 * What {@link RNN.outputGradients} returns.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, Tensor, type OutputGradientsOutput } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1, backend: 'reference' });
 * const x = Tensor.from(Int32Array.of(0, 1), [2, 1]);
 * const y = Tensor.from(Int32Array.of(1, 2), [2, 1]);
 * const out: OutputGradientsOutput = rnn.outputGradients(x, y);
 * assert.ok(Math.abs(out.loss - rnn.lossAndGradients(x, y).loss) < 1e-12);
 * ```
 */
export interface OutputGradientsOutput {
  /** The loss, as {@link RNN.lossAndGradients} computes it (without dropout). */
  loss: number;
  /** dL/d(top layer's outputs) [T, B, dirs*H], time-major; zero at padding steps. */
  dy: Float32Array;
}

/**
 * The recurrent stack of a model in the layer API's terms (see {@link RNN.layerView}).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, backends, type LayerView } from 'bptt';
 *
 * const view: LayerView = new RNN({ inputSize: 2, hiddenSize: 3, outputSize: 2, seed: 1 }).layerView();
 * const { y } = backends.reference.layerForward(view.spec, view.weights, { steps: 1, batch: 1, input: { kind: 'dense', data: Float32Array.of(1, 0) } });
 * assert.equal(y.length, 3);
 * ```
 */
export interface LayerView {
  /** The stack's cell, sizes, layers, directions and dropout. */
  spec: LayerSpec;
  /** Copies of the stack's weights under the engine's names (`weight_ih_l0`, ..., no `rnn.` prefix). */
  weights: Record<string, Float32Array>;
}

interface GradientOutputs {
  grads: Record<ParamName | 'h0', Tensor>;
  hT: Tensor;
  hAt?: Tensor;
  stateAt?: number;
}

interface PreparedCall {
  seq: Sequence;
  targets: Int32Array | null;
  h0: Float32Array | null;
  tensors: Tensor[]; // everything the call reads or writes, pinned during async work
}

/**
 * A recurrent network with a task head, trained with exact or truncated backpropagation through
 * time: the default one-layer tanh RNN with a per-step softmax (own tuned native path, one bias)
 * or a stacked, optionally bidirectional tanh/ReLU RNN, LSTM or GRU in PyTorch's layout with any
 * head: per-step softmax (tokens), sequence classification (classify) or regression (regress; see
 * {@link HeadSpec}).
 *
 * Inputs are int32 token ids [T, B] or float32 vectors [T, B, D]; targets as the head takes them:
 * int32 [T, B] (tokens) or [B] (classify) with -1 for targets that do not count, float32
 * [T, B, K] or [B, K] (regress). Each call validates its arguments in full and throws a typed
 * error (TypeError, RangeError, ShapeError, DTypeError, NonFiniteError, DisposedError,
 * TensorInUseError) before anything runs. Results are new tensors owned by the caller.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { Optimizer, RNN, Tensor } from 'bptt';
 *
 * // Learn to continue "0 1 2 0 1 2 ..." (T = 6 steps, B = 2 sequences, time-major).
 * const rnn = new RNN({ inputSize: 3, hiddenSize: 16, outputSize: 3, cell: 'lstm', seed: 1 });
 * const x = Tensor.from(Int32Array.of(0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2, 0), [6, 2]);
 * const y = Tensor.from(Int32Array.of(1, 2, 2, 0, 0, 1, 1, 2, 2, 0, 0, 1), [6, 2]);
 * const optimizer = new Optimizer(rnn, { kind: 'adam' });
 * for (let i = 0; i < 60; i++) rnn.trainStep(x, y, { lr: 0.05, optimizer });
 * assert.ok(rnn.lossAndGradients(x, y).loss < 0.1);
 * ```
 */
export class RNN {
  /** D: the width of dense inputs, or the number of token ids. */
  readonly inputSize: number;
  /** H: hidden units per layer and direction. */
  readonly hiddenSize: number;
  /** K: classes of the softmax head. */
  readonly outputSize: number;
  /** Where it computes. */
  readonly backend: BackendName;
  /** The seed of the initialisation (drawn at random when none was given). */
  readonly seed: number;
  /** 'tanh', 'relu', 'lstm' or 'gru'. */
  readonly cell: CellKind;
  /** L: stacked recurrent layers. */
  readonly numLayers: number;
  /** Whether each layer also reads the sequence backwards (dirs = 2). */
  readonly bidirectional: boolean;
  /** The dropout probability between stacked layers in training calls. */
  readonly dropout: number;
  /**
   * The head, normalised (defaults filled in; JSON-serialisable): what a checkpoint saves to rebuild the model.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { RNN } from 'bptt';
   *
   * assert.deepEqual(new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3 }).head, { kind: 'tokens' });
   * const forecaster = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 14, head: { kind: 'regress', positions: 'last' }, backend: 'reference' });
   * assert.deepEqual(forecaster.head, { kind: 'regress', positions: 'last', loss: 'mse' });
   * ```
   */
  readonly head: NormalizedHeadSpec;
  /** How the recurrent weights were initialised (see {@link InitKind}); checkpoints save it. */
  readonly init: InitKind;
  /**
   * The parameters, by name (see {@link Params} for names and shapes). Read them with toArray(),
   * replace them with {@link RNN.setParams}.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { RNN } from 'bptt';
   *
   * const gru = new RNN({ inputSize: 5, hiddenSize: 6, outputSize: 5, cell: 'gru', seed: 1 });
   * assert.deepEqual(gru.params['rnn.weight_ih_l0'].shape, [3 * 6, 5]); // [G*H, D], gates r, z, n
   * const bound = 1 / Math.sqrt(6); // PyTorch's initialisation: uniform in +-1/sqrt(H)
   * assert.ok(gru.params['rnn.weight_hh_l0'].toArray().every((w) => Math.abs(w) <= bound));
   * ```
   */
  readonly params: Params;
  /** Every model but the default one-layer tanh RNN runs on the recurrent engine. */
  readonly #stack: StackModel | null;
  #disposed = false;
  /**
   * The vocabulary of a character model (set by loadCheckpoint and the CLI); sample() returns text when set.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { CharTokenizer, RNN } from 'bptt';
   *
   * const tokenizer = CharTokenizer.fromText('hello world');
   * const rnn = new RNN({ inputSize: tokenizer.vocabSize, hiddenSize: 8, outputSize: tokenizer.vocabSize, seed: 1 });
   * rnn.tokenizer = tokenizer;
   * const text = rnn.sample({ length: 12, prime: 'he', seed: 1 });
   * assert.equal(typeof text, 'string');
   * console.log(text);
   * ```
   */
  tokenizer: CharTokenizer | undefined;
  #engine: NativeEngine | undefined;
  /** The engine model that runs the default model's outputGradients (see headEngine). */
  #headEngine: NativeModel | undefined;
  #zeroBias: Float32Array | undefined;
  /** Where a synchronous native trainStep writes loss, gradNorm and clipped. */
  readonly #stepResults = new Float64Array(3);

  /**
   * A model initialised like PyTorch (every recurrent weight and bias uniform in +-1/sqrt(H), the
   * head in +-1/sqrt(dirs*H)), identically on both backends for the same seed.
   *
   * @throws TypeError for options that are not an object, an unknown backend or cell; RangeError
   * for sizes that are not integers >= 1 or whose parameters would exceed 2^31 - 1 elements, a
   * seed that is not a safe integer, dropout outside [0, 1); NativeUnavailableError for the
   * native backend when the addon cannot be loaded.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { RNN } from 'bptt';
   *
   * const a = new RNN({ inputSize: 10, hiddenSize: 32, outputSize: 10, seed: 42 });
   * const b = new RNN({ inputSize: 10, hiddenSize: 32, outputSize: 10, seed: 42, backend: 'reference' });
   * assert.deepEqual(a.params.W.toArray(), b.params.W.toArray());
   * assert.throws(() => new RNN({ inputSize: 10, hiddenSize: 0, outputSize: 10 }), RangeError);
   * ```
   */
  constructor(options: RNNOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`RNN options must be an object, got ${describeValue(options)}`);
    const dims = checkDims({ inputSize: options.inputSize, hiddenSize: options.hiddenSize, outputSize: options.outputSize });
    const backend = options.backend ?? 'native';
    if (backend !== 'native' && backend !== 'reference') throw new TypeError(`backend must be 'native' or 'reference', got ${describeValue(backend)}`);
    const seed = options.seed ?? randomInt(2 ** 31);
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${describeValue(seed)}`);
    const spec = checkModelSpec({ ...dims, cell: options.cell ?? 'tanh', numLayers: options.numLayers, bidirectional: options.bidirectional, dropout: options.dropout, head: options.head });
    const init = checkInit(options.init, spec.cell);
    this.inputSize = dims.inputSize;
    this.hiddenSize = dims.hiddenSize;
    this.outputSize = dims.outputSize;
    this.backend = backend;
    this.seed = seed;
    this.cell = spec.cell;
    this.numLayers = spec.numLayers;
    this.bidirectional = spec.bidirectional;
    this.dropout = spec.dropout;
    this.head = spec.head;
    this.init = init;
    this.tokenizer = undefined;
    // The default model keeps its own tuned native path (rnn.cc) and its single bias b.
    const elman = spec.cell === 'tanh' && spec.numLayers === 1 && !spec.bidirectional && spec.dropout === 0 && spec.head.kind === 'tokens';
    if (!elman) {
      this.#stack = new StackModel(spec, backend, seed, init);
      this.params = this.#stack.params;
      return;
    }
    this.#stack = null;
    if (backend === 'native') this.#engine = createEngine();
    // nn.RNN / nn.Linear default: every weight and bias uniform in +-1/sqrt(H), drawn in the
    // order U, W, b, V, c from one generator, so both backends start identical.
    const rng = new Rng(seed);
    const bound = 1 / Math.sqrt(dims.hiddenSize);
    const shapes = paramShapes(dims);
    const params = {} as Record<ParamName, Tensor>;
    for (const name of PARAM_NAMES) {
      const t = Tensor.zeros(shapes[name]);
      const v = t.data();
      for (let i = 0; i < v.length; i++) v[i] = rng.uniform(-bound, bound);
      params[name] = t;
    }
    applyInit(init, rng, 1, dims.hiddenSize, params.W.data() as Float32Array, [params.b.data() as Float32Array]);
    this.params = Object.freeze(params);
  }

  /**
   * Where the dropout masks of training calls are drawn from (models with dropout), else null. Checkpoints save it.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { RNN } from 'bptt';
   *
   * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, numLayers: 2, dropout: 0.3, seed: 1 });
   * const saved = rnn.dropoutStream!.getState(); // e.g. to replay the same masks later
   * assert.equal(saved.length, 4);
   * assert.equal(new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3 }).dropoutStream, null);
   * ```
   */
  get dropoutStream(): Rng | null {
    return this.#stack && this.dropout > 0 ? this.#stack.dropoutStream : null;
  }

  /**
   * Shape of a state (h0, hT, c0, cT) for a batch of B: [B, H] for the default model, [L*dirs, B, H] otherwise.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { RNN } from 'bptt';
   *
   * assert.deepEqual(new RNN({ inputSize: 3, hiddenSize: 8, outputSize: 3 }).stateShape(4), [4, 8]);
   * assert.deepEqual(new RNN({ inputSize: 3, hiddenSize: 8, outputSize: 3, numLayers: 2, bidirectional: true }).stateShape(4), [4, 4, 8]);
   * ```
   */
  stateShape(batch: number): number[] {
    return this.#stack ? [this.numLayers * (this.bidirectional ? 2 : 1), batch, this.hiddenSize] : [batch, this.hiddenSize];
  }

  /**
   * The sizes { inputSize, hiddenSize, outputSize }, as the {@link Backend} calls take them.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { RNN } from 'bptt';
   *
   * assert.deepEqual(new RNN({ inputSize: 3, hiddenSize: 8, outputSize: 2 }).dims, { inputSize: 3, hiddenSize: 8, outputSize: 2 });
   * ```
   */
  get dims(): Dims {
    return { inputSize: this.inputSize, hiddenSize: this.hiddenSize, outputSize: this.outputSize };
  }

  /**
   * Replaces all parameters (copies). Validates everything before changing anything.
   *
   * @throws TypeError for a name the model does not have; DTypeError for a value that is not a
   * Float32Array or float32 Tensor (or is missing); ShapeError for a wrong length or shape;
   * NonFiniteError for NaN or Infinity; TensorInUseError while an asynchronous job uses the model.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { RNN } from 'bptt';
   *
   * const a = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 });
   * const b = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 2 });
   * b.setParams(a.params); // Tensors or Float32Arrays, by name
   * assert.deepEqual(b.params.V.toArray(), a.params.V.toArray());
   * assert.throws(() => b.setParams({ ...a.params, W: new Float32Array(3) }), { name: 'ShapeError' });
   * ```
   */
  setParams(values: ParamValues): void {
    const names = Object.keys(this.params);
    if (typeof values !== 'object' || values === null) throw new TypeError(`setParams expects { ${names.join(', ')} }, got ${describeValue(values)}`);
    for (const key of Object.keys(values)) if (!(key in this.params)) throw new TypeError(`setParams: this model has no parameter '${key}' (it has ${names.join(', ')})`);
    const pending: [Tensor, Float32Array][] = [];
    for (const name of names) {
      const shape = this.params[name].shape;
      const given = (values as Readonly<Record<string, Float32Array | Tensor | undefined>>)[name];
      let data: Float32Array;
      if (given instanceof Tensor) {
        if (given.dtype !== 'float32') throw new DTypeError(`params.${name} must be float32, got ${given.toString()}`);
        if (given.shape.length !== shape.length || given.shape.some((s, i) => s !== shape[i])) {
          throw new ShapeError(`params.${name} must have shape [${shape.join(', ')}], got [${given.shape.join(', ')}]`);
        }
        data = given.data() as Float32Array;
      } else if (given instanceof Float32Array) {
        const n = shape.reduce((a, b) => a * b, 1);
        if (given.length !== n) throw new ShapeError(`params.${name} [${shape.join(', ')}] must have ${n} elements, got ${given.length}`);
        data = given;
      } else {
        throw new DTypeError(`params.${name} must be a Float32Array or a float32 Tensor, got ${describeValue(given)}`);
      }
      checkFinite(`params.${name}`, data);
      this.params[name].checkWritable();
      pending.push([this.params[name], data]);
    }
    for (const [target, data] of pending) (target as Tensor<'float32'>).write(data);
  }

  /**
   * Runs the model over a batch of sequences: inputs int32 token ids [T, B] or float32 [T, B, D],
   * from the state h0 (and c0 for an LSTM; default zeros). No dropout, nothing changes.
   * Pass `hT` (and `cT`) back as h0 (and c0) to continue the sequences in the next call.
   *
   * @throws TypeError, ShapeError, DTypeError for malformed arguments; RangeError for token ids
   * outside [0, D) or lengths outside [1, T]; NonFiniteError for NaN or Infinity in inputs, h0 or
   * c0; DisposedError after dispose; TensorInUseError while an asynchronous job uses the model.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { RNN, Tensor } from 'bptt';
   *
   * const rnn = new RNN({ inputSize: 8, hiddenSize: 16, outputSize: 4, seed: 1 });
   * const x = Tensor.randn([5, 2, 8], { seed: 1 }); // dense inputs [T, B, D]
   * const whole = rnn.forward(x);
   * // The same in two calls, carrying the state:
   * const first = rnn.forward(Tensor.from(x.toArray().subarray(0, 3 * 2 * 8), [3, 2, 8]));
   * const rest = rnn.forward(Tensor.from(x.toArray().subarray(3 * 2 * 8), [2, 2, 8]), { h0: first.hT });
   * rest.hT.toArray().forEach((v, i) => assert.ok(Math.abs(v - whole.hT.toArray()[i]) < 1e-6));
   * ```
   */
  forward(inputs: Tensor, options: ForwardOptions = {}): ForwardOutput {
    if (this.#stack) return this.#stack.forward(inputs, options);
    const call = this.prepare(inputs, null, options);
    const out = this.forwardOutputs(call.seq);
    if (this.backend === 'reference') {
      const r = reference.forward(this.dims, this.paramViews(), call.seq, call.h0);
      out.states.data().set(r.states);
      out.logits.data().set(r.logits);
      out.hT.data().set(r.hT);
    } else {
      try {
        this.engine().forward(...nativeArgs(this.forwardRequest(call, out)));
      } catch (err) {
        throw translateNativeError(err);
      }
    }
    return out;
  }

  /**
   * {@link RNN.forward} on a libuv worker thread; until it settles, the tensors it uses are
   * pinned (disposing or writing them throws TensorInUseError) and the model refuses other calls.
   * The reference backend runs it synchronously.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { RNN, Tensor } from 'bptt';
   *
   * const rnn = new RNN({ inputSize: 4, hiddenSize: 8, outputSize: 4, seed: 1 });
   * const x = Tensor.from(Int32Array.of(0, 1, 2, 3), [4, 1]);
   * const { logits } = await rnn.forwardAsync(x);
   * assert.deepEqual(logits.toArray(), rnn.forward(x).logits.toArray());
   * ```
   */
  async forwardAsync(inputs: Tensor, options: ForwardOptions = {}): Promise<ForwardOutput> {
    if (this.#stack) return this.#stack.forwardAsync(inputs, options);
    if (this.backend === 'reference') return this.forward(inputs, options);
    const call = this.prepare(inputs, null, options);
    const out = this.forwardOutputs(call.seq);
    await this.runPinned(call, [out.states, out.logits, out.hT], () => this.engine().forwardAsync(...nativeArgs(this.forwardRequest(call, out))));
    return out;
  }

  /**
   * Loss and exact (or truncated) BPTT gradients; parameters are not changed.
   *
   * The loss is the head's (see {@link HeadSpec}): the cross-entropy of softmax(logits) against
   * class ids in [0, K) or -1 to ignore (int32 [T, B] for tokens, [B] for classify), or the MSE /
   * Huber loss against float32 targets ([T, B, K] at every step, [B, K] on the last), averaged
   * over what counts (or summed); steps past a sequence's length never count. The gradients
   * come back under the parameters' names, with h0 (and c0) for the initial state. Models with
   * dropout apply it here (training: false turns it off).
   *
   * @throws as {@link RNN.forward}, and DTypeError or ShapeError for targets that are not what the
   * head takes, RangeError for class ids outside [0, K) other than -1, NonFiniteError for NaN or
   * infinite regression targets, RangeError for a truncate that is not an integer >= 1, a stateAt
   * outside [0, T).
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { RNN, Tensor } from 'bptt';
   *
   * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1, backend: 'reference' });
   * const x = Tensor.from(Int32Array.of(0, 1, 2), [3, 1]);
   * const y = Tensor.from(Int32Array.of(1, 2, 0), [3, 1]);
   * const { loss, grads } = rnn.lossAndGradients(x, y);
   * // Check dL/dc[0] by a central difference.
   * const c = rnn.params.c.toArray() as Float32Array;
   * const lossAt = (delta: number) => {
   *   const shifted = c.slice();
   *   shifted[0] += delta;
   *   rnn.setParams({ ...rnn.params, c: shifted });
   *   return rnn.lossAndGradients(x, y).loss;
   * };
   * const numeric = (lossAt(1e-3) - lossAt(-1e-3)) / 2e-3;
   * assert.ok(Math.abs(numeric - grads.c.toArray()[0]) < 1e-4);
   * console.log(loss);
   * ```
   */
  lossAndGradients(inputs: Tensor, targets: Tensor, options: LossAndGradientsOptions = {}): LossAndGradientsOutput {
    if (this.#stack) return this.#stack.lossAndGradients(inputs, targets, options);
    const call = this.prepare(inputs, targets, options);
    const truncate = this.checkTruncate(options.truncate);
    const reduction = checkReduction(options.reduction);
    const out = this.gradientOutputs(call.seq, this.checkStateAt(options.stateAt, call.seq));
    if (this.backend === 'reference') {
      const r = reference.lossAndGradients(this.dims, this.paramViews(), call.seq, call.targets!, { h0: call.h0, truncate, reduction });
      for (const name of [...PARAM_NAMES, 'h0'] as const) out.grads[name].data().set(r.grads[name]);
      out.hT.data().set(r.hT);
      this.referenceCapture(call, out);
      return { loss: r.loss, grads: out.grads, hT: out.hT, hAt: out.hAt };
    }
    let loss: number;
    try {
      loss = this.engine().gradients(...nativeArgs(this.gradientRequest(call, out, truncate, reduction)));
    } catch (err) {
      throw translateNativeError(err);
    }
    return { loss, grads: out.grads, hT: out.hT, hAt: out.hAt };
  }

  /**
   * {@link RNN.lossAndGradients} on a libuv worker thread, its tensors pinned until it settles.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { RNN, Tensor } from 'bptt';
   *
   * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, cell: 'gru', seed: 1 });
   * const x = Tensor.from(Int32Array.of(0, 1, 2), [3, 1]);
   * const y = Tensor.from(Int32Array.of(1, 2, 0), [3, 1]);
   * const r = await rnn.lossAndGradientsAsync(x, y);
   * assert.equal(r.loss, rnn.lossAndGradients(x, y).loss); // bitwise the same
   * ```
   */
  async lossAndGradientsAsync(inputs: Tensor, targets: Tensor, options: LossAndGradientsOptions = {}): Promise<LossAndGradientsOutput> {
    if (this.#stack) return this.#stack.lossAndGradientsAsync(inputs, targets, options);
    if (this.backend === 'reference') return this.lossAndGradients(inputs, targets, options);
    const call = this.prepare(inputs, targets, options);
    const truncate = this.checkTruncate(options.truncate);
    const reduction = checkReduction(options.reduction);
    const out = this.gradientOutputs(call.seq, this.checkStateAt(options.stateAt, call.seq));
    const outputs = [...Object.values(out.grads), out.hT, ...(out.hAt ? [out.hAt] : [])];
    const loss = await this.runPinned(call, outputs, () => this.engine().gradientsAsync(...nativeArgs(this.gradientRequest(call, out, truncate, reduction))));
    return { loss, grads: out.grads, hT: out.hT, hAt: out.hAt };
  }

  /**
   * Forward, BPTT, clipping and the optimizer update in one native call. On any error the
   * parameters and the optimizer state are left as they were.
   *
   * Clipping: clipValue clamps each gradient element, then clipNorm rescales the whole gradient
   * when its global L2 norm exceeds it. Without an optimizer the update is plain SGD.
   *
   * @throws as {@link RNN.lossAndGradients}, and RangeError for an lr, clipNorm or clipValue that
   * is negative, not finite or not representable in float32 (clips must be > 0); TypeError or
   * ShapeError for an optimizer made for another model; NonFiniteError when the loss, gradient,
   * new parameters or new optimizer state would not be finite (nothing changed).
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { Optimizer, RNN, Tensor } from 'bptt';
   *
   * const rnn = new RNN({ inputSize: 4, hiddenSize: 8, outputSize: 4, seed: 1 });
   * const x = Tensor.from(Int32Array.of(0, 1, 2, 3, 0, 1), [6, 1]);
   * const y = Tensor.from(Int32Array.of(1, 2, 3, 0, 1, 2), [6, 1]);
   * const optimizer = new Optimizer(rnn, { kind: 'momentum', momentum: 0.9 });
   * const before = rnn.lossAndGradients(x, y).loss;
   * const step = rnn.trainStep(x, y, { lr: 0.1, clipNorm: 5, optimizer });
   * assert.equal(step.loss, before); // measured before the update
   * assert.ok(rnn.lossAndGradients(x, y).loss < before);
   * ```
   */
  trainStep(inputs: Tensor, targets: Tensor, options: TrainStepOptions): TrainStepOutput {
    if (this.#stack) return this.#stack.trainStep(inputs, targets, options);
    const { call, truncate, reduction, hT, capture, optimizer } = this.prepareTrainStep(inputs, targets, options);
    if (this.backend === 'reference') return this.referenceTrainStep(call, truncate, reduction, options, optimizer, hT, capture);
    const out = this.#stepResults;
    try {
      this.engine().trainStep(...nativeArgs(this.trainRequest(call, hT, capture, truncate, reduction, options, optimizer, out)));
    } catch (err) {
      throw translateNativeError(err);
    }
    optimizer?.advance();
    return { loss: out[0], gradNorm: out[1], clipped: out[2] !== 0, hT, hAt: capture.hAt };
  }

  /**
   * trainStep off the main thread; the tensors it uses are pinned until it settles.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { Optimizer, RNN, Tensor } from 'bptt';
   *
   * const rnn = new RNN({ inputSize: 4, hiddenSize: 8, outputSize: 4, seed: 1 });
   * const adam = new Optimizer(rnn, { kind: 'adam' });
   * const x = Tensor.from(Int32Array.of(0, 1, 2, 3), [2, 2]);
   * const y = Tensor.from(Int32Array.of(1, 2, 3, 0), [2, 2]);
   * let h0: Tensor | undefined;
   * for (let i = 0; i < 3; i++) {
   *   const step = await rnn.trainStepAsync(x, y, { lr: 1e-2, optimizer: adam, ...(h0 ? { h0 } : {}) });
   *   h0 = step.hT; // carry the state into the next chunk
   * }
   * assert.equal(adam.step, 3);
   * ```
   */
  async trainStepAsync(inputs: Tensor, targets: Tensor, options: TrainStepOptions): Promise<TrainStepOutput> {
    if (this.#stack) return this.#stack.trainStepAsync(inputs, targets, options);
    if (this.backend === 'reference') return this.trainStep(inputs, targets, options);
    const { call, truncate, reduction, hT, capture, optimizer } = this.prepareTrainStep(inputs, targets, options);
    const state = optimizer ? PARAM_NAMES.flatMap((n) => optimizer.slots(n)) : [];
    const outputs = [hT, ...state, ...(capture.hAt ? [capture.hAt] : [])];
    const out = new Float64Array(3);
    await this.runPinned(call, outputs, () =>
      this.engine().trainStepAsync(...nativeArgs(this.trainRequest(call, hT, capture, truncate, reduction, options, optimizer, out))),
    );
    optimizer?.advance();
    return { loss: out[0], gradNorm: out[1], clipped: out[2] !== 0, hT, hAt: capture.hAt };
  }

  /**
   * What the model predicts, without dropout: probabilities (softmax of the logits) for the tokens
   * head [T, B, K] and the classify head [B, K]; the regression's values [T, B, K] (every step) or
   * [B, K] (last step). Runs at most `batchSize` sequences at a time (default: as many as fit in
   * about 1 GiB), each call forward only, so large inputs need no more memory than one slice's.
   *
   * @throws as {@link RNN.forward}; RangeError for a batchSize that is not an integer >= 1.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { RNN, Tensor } from 'bptt';
   *
   * const rnn = new RNN({ inputSize: 2, hiddenSize: 5, outputSize: 3, cell: 'gru', head: { kind: 'classify', pool: 'mean' }, seed: 1, backend: 'reference' });
   * const x = Tensor.randn([4, 6, 2], { seed: 2 }); // [T, B, D]
   * const p = rnn.predict(x, { lengths: Int32Array.of(4, 4, 2, 3, 1, 4), batchSize: 4 });
   * assert.deepEqual(p.shape, [6, 3]);
   * const rows = Array.from(p.toArray());
   * for (let b = 0; b < 6; b++) assert.ok(Math.abs(rows[3 * b] + rows[3 * b + 1] + rows[3 * b + 2] - 1) < 1e-6); // probabilities
   * ```
   */
  predict(inputs: Tensor, options: PredictOptions = {}): Tensor {
    if (this.#stack) return this.#stack.predict(inputs, options);
    const { out, slices } = this.legacySlices(inputs, options);
    for (const s of slices) this.placeLogits(out, s, this.forward(s.x).logits);
    probabilities(out.data() as Float32Array, this.outputSize, this.backend === 'native');
    return out;
  }

  /**
   * {@link RNN.predict} off the main thread (libuv workers), its tensors pinned until it settles.
   * The reference backend runs it synchronously.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { RNN, Tensor } from 'bptt';
   *
   * const rnn = new RNN({ inputSize: 2, hiddenSize: 4, outputSize: 1, head: { kind: 'regress', positions: 'last' }, seed: 1, backend: 'reference' });
   * const x = Tensor.randn([3, 5, 2], { seed: 1 });
   * const values = await rnn.predictAsync(x, { batchSize: 2 });
   * assert.deepEqual(values.toArray(), rnn.predict(x).toArray());
   * ```
   */
  async predictAsync(inputs: Tensor, options: PredictOptions = {}): Promise<Tensor> {
    if (this.#stack) return this.#stack.predictAsync(inputs, options);
    const { out, slices } = this.legacySlices(inputs, options);
    for (const s of slices) this.placeLogits(out, s, (await this.forwardAsync(s.x)).logits);
    probabilities(out.data() as Float32Array, this.outputSize, this.backend === 'native');
    return out;
  }

  /**
   * The gradient of the loss with respect to the top layer's outputs, dL/dy [T, B, dirs*H] (the
   * states s_t for the default model), and the loss: the head's backward only, without dropout,
   * nothing changed. What gradient diagnostics start from.
   *
   * @throws as {@link RNN.lossAndGradients}.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { RNN, Tensor } from 'bptt';
   *
   * const rnn = new RNN({ inputSize: 2, hiddenSize: 3, outputSize: 1, head: { kind: 'regress', positions: 'last' }, seed: 1, backend: 'reference' });
   * const x = Tensor.randn([4, 2, 2], { seed: 1 });
   * const y = Tensor.from(Float32Array.of(0.5, -0.5), [2, 1]);
   * const { loss, dy } = rnn.outputGradients(x, y, { lengths: Int32Array.of(4, 2) });
   * assert.equal(loss, rnn.lossAndGradients(x, y, { lengths: Int32Array.of(4, 2) }).loss);
   * const at = (t: number, b: number) => Array.from(dy.subarray((t * 2 + b) * 3, (t * 2 + b + 1) * 3)); // dy [T, B, H]
   * assert.ok(at(3, 0).some((v) => v !== 0) && at(1, 1).some((v) => v !== 0)); // each sequence's last valid step
   * assert.ok(at(2, 0).every((v) => v === 0) && at(3, 1).every((v) => v === 0)); // nothing else
   * ```
   */
  outputGradients(inputs: Tensor, targets: Tensor, options: OutputGradientsOptions = {}): OutputGradientsOutput {
    if (this.#stack) return this.#stack.outputGradients(inputs, targets, options);
    const { call, reduction } = this.prepareOutputGradients(inputs, targets, options);
    if (this.backend === 'reference') return this.legacyOutputGradients(call, reduction, reference.forward(this.dims, this.paramViews(), call.seq, call.h0).states);
    return this.headEngine().outputGradients(this.engineParams(false), this.engineBatch(call), call.targets!, reduction);
  }

  /**
   * {@link RNN.outputGradients} off the main thread (the forward pass and the head's backward), its
   * tensors pinned until it settles. The reference backend runs it synchronously.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { RNN, Tensor } from 'bptt';
   *
   * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 2, cell: 'lstm', head: { kind: 'classify' }, seed: 1 });
   * const x = Tensor.randn([5, 2, 3], { seed: 1 });
   * const y = Tensor.from(Int32Array.of(0, 1), [2]);
   * const { dy } = await rnn.outputGradientsAsync(x, y);
   * assert.deepEqual(dy, rnn.outputGradients(x, y).dy);
   * ```
   */
  async outputGradientsAsync(inputs: Tensor, targets: Tensor, options: OutputGradientsOptions = {}): Promise<OutputGradientsOutput> {
    if (this.#stack) return this.#stack.outputGradientsAsync(inputs, targets, options);
    if (this.backend === 'reference') return this.outputGradients(inputs, targets, options);
    const { call, reduction } = this.prepareOutputGradients(inputs, targets, options);
    // Copies of the parameters: a trainStep may update them while the job runs.
    return this.headEngine().outputGradientsAsync(this.engineParams(true), this.engineBatch(call), call.targets!, reduction);
  }

  /**
   * The recurrent stack in the layer API's terms: its spec and copies of its weights under the
   * engine's names, for every model. The default model's U, W, b map to weight_ih_l0,
   * weight_hh_l0 and bias_ih_l0, with a zero bias_hh_l0.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { RNN } from 'bptt';
   *
   * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 });
   * const { spec, weights } = rnn.layerView();
   * assert.deepEqual(spec, { cell: 'tanh', inputSize: 3, hiddenSize: 4, numLayers: 1, bidirectional: false, dropout: 0 });
   * assert.deepEqual(weights.weight_hh_l0, rnn.params.W.toArray());
   * assert.deepEqual(weights.bias_hh_l0, new Float32Array(4));
   * ```
   */
  layerView(): LayerView {
    if (this.#stack) return this.#stack.layerView();
    const p = this.paramViews();
    return {
      spec: { cell: 'tanh', inputSize: this.inputSize, hiddenSize: this.hiddenSize, numLayers: 1, bidirectional: false, dropout: 0 },
      weights: { weight_ih_l0: p.U.slice(), weight_hh_l0: p.W.slice(), bias_ih_l0: p.b.slice(), bias_hh_l0: new Float32Array(this.hiddenSize) },
    };
  }

  /**
   * Generates a continuation one token at a time, carrying the hidden state; deterministic for a
   * seed. Returns text when a tokenizer is known, else token ids.
   *
   * @throws TypeError for a string prime without a tokenizer (or token ids with one), a
   * bidirectional model, a model whose head is not 'tokens'; RangeError for invalid options or prime tokens (see {@link sample}).
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { RNN } from 'bptt';
   *
   * const rnn = new RNN({ inputSize: 5, hiddenSize: 8, outputSize: 5, seed: 1 });
   * const ids = rnn.sample({ length: 20, prime: [0, 1], seed: 7 }) as Int32Array;
   * assert.equal(ids.length, 20);
   * assert.deepEqual(rnn.sample({ length: 20, prime: [0, 1], seed: 7 }), ids); // same seed, same draw
   * ```
   */
  sample(options: RNNSampleOptions): string | Int32Array {
    if (this.head.kind !== 'tokens') throw new TypeError(`sample() generates tokens; this model's head is '${this.head.kind}'`);
    const tokenizer = options?.tokenizer ?? this.tokenizer;
    if (tokenizer !== undefined) {
      if (options.prime !== undefined && typeof options.prime !== 'string') throw new TypeError('with a tokenizer, prime must be a string');
      return sample(this, { ...options, tokenizer, prime: options.prime });
    }
    if (typeof options?.prime === 'string') throw new TypeError('a string prime needs a tokenizer (set rnn.tokenizer or pass one)');
    return sample(this, { ...options, tokenizer: undefined, prime: options?.prime as ArrayLike<number> | undefined });
  }

  /**
   * Frees the parameters and the native scratch memory now (the model is unusable afterwards). Idempotent.
   *
   * @throws TensorInUseError while an asynchronous job uses the model (nothing is freed).
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { RNN } from 'bptt';
   *
   * const rnn = new RNN({ inputSize: 65, hiddenSize: 512, outputSize: 65 });
   * rnn.dispose();
   * assert.equal(rnn.isDisposed, true);
   * {
   *   using scoped = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3 }); // disposed at the block's end
   *   console.log(scoped.hiddenSize);
   * }
   * ```
   */
  dispose(): void {
    if (this.#disposed) return;
    for (const t of Object.values(this.params)) t.checkWritable();
    if (this.#stack) {
      this.#stack.dispose();
    } else {
      this.#engine?.release();
      this.#headEngine?.release();
      for (const t of Object.values(this.params)) t.dispose();
    }
    this.#engine = undefined;
    this.#headEngine = undefined;
    this.#disposed = true;
  }

  /** Whether {@link RNN.dispose} has freed the model. */
  get isDisposed(): boolean {
    return this.#disposed;
  }

  /** Disposes the model: what `using rnn = ...` calls at the end of the scope. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  // --- internals ---

  private engine(): NativeEngine {
    return this.#engine!;
  }

  private paramViews(): ParamArrays<Float32Array> {
    const p = this.params;
    return { U: p.U.data() as Float32Array, W: p.W.data() as Float32Array, b: p.b.data() as Float32Array, V: p.V.data() as Float32Array, c: p.c.data() as Float32Array };
  }

  private prepare(inputs: Tensor, targets: Tensor | null, options: LossAndGradientsOptions): PreparedCall {
    if (typeof options !== 'object' || options === null) throw new TypeError(`options must be an object, got ${describeValue(options)}`);
    for (const key of ['c0', 'lengths', 'training', 'dropoutSeed'] as const) {
      if (options[key] !== undefined) throw new TypeError(`options.${key} is for models with cell, numLayers, bidirectional or dropout set; the default one-layer tanh model has no ${key === 'c0' ? 'cell state' : key === 'lengths' ? 'variable lengths' : 'dropout'}`);
    }
    const h0 = options.h0;
    if (!(inputs instanceof Tensor)) throw new TypeError(`inputs must be a Tensor (int32 [T, B] or float32 [T, B, D]), got ${describeValue(inputs)}`);
    const shape = inputs.shape;
    let seq: Sequence;
    if (inputs.dtype === 'int32') {
      if (shape.length !== 2) throw new ShapeError(`token inputs must have shape [T, B], got [${shape.join(', ')}]`);
      seq = { steps: shape[0], batch: shape[1], input: { kind: 'tokens', data: inputs.data() as Int32Array } };
    } else {
      if (shape.length !== 3 || shape[2] !== this.inputSize) {
        throw new ShapeError(`dense inputs must have shape [T, B, ${this.inputSize}], got [${shape.join(', ')}]`);
      }
      seq = { steps: shape[0], batch: shape[1], input: { kind: 'dense', data: inputs.data() as Float32Array } };
    }
    checkSize('T (inputs.shape[0])', seq.steps);
    checkSize('B (inputs.shape[1])', seq.batch);
    checkSequence(this.dims, seq);
    const tensors: Tensor[] = [inputs, ...Object.values(this.params)];
    let targetData: Int32Array | null = null;
    if (targets !== null) {
      if (!(targets instanceof Tensor)) throw new TypeError(`targets must be an int32 Tensor [T, B], got ${describeValue(targets)}`);
      if (targets.dtype !== 'int32') throw new DTypeError(`targets must be int32, got ${targets.toString()}`);
      if (targets.shape.length !== 2 || targets.shape[0] !== seq.steps || targets.shape[1] !== seq.batch) {
        throw new ShapeError(`targets must have shape [${seq.steps}, ${seq.batch}] like the inputs, got [${targets.shape.join(', ')}]`);
      }
      targetData = targets.data() as Int32Array;
      checkTargets(this.dims, seq, targetData);
      tensors.push(targets);
    }
    let h0Data: Float32Array | null = null;
    if (h0 !== undefined && h0 !== null) {
      if (!(h0 instanceof Tensor)) throw new TypeError(`h0 must be a float32 Tensor [B, H], got ${describeValue(h0)}`);
      if (h0.dtype !== 'float32') throw new DTypeError(`h0 must be float32, got ${h0.toString()}`);
      if (h0.shape.length !== 2 || h0.shape[0] !== seq.batch || h0.shape[1] !== this.hiddenSize) {
        throw new ShapeError(`h0 must have shape [B, H] = [${seq.batch}, ${this.hiddenSize}], got [${h0.shape.join(', ')}]`);
      }
      h0Data = h0.data() as Float32Array;
      checkFinite('h0', h0Data);
      tensors.push(h0);
    }
    for (const name of PARAM_NAMES) this.params[name].data();
    return { seq, targets: targetData, h0: h0Data, tensors };
  }

  private prepareOutputGradients(inputs: Tensor, targets: Tensor, options: OutputGradientsOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`options must be an object, got ${describeValue(options)}`);
    return { call: this.prepare(inputs, targets, options), reduction: checkReduction(options.reduction) };
  }

  /** The reference default model's head backward: the engine model's tokens head, in float64, on its states. */
  private legacyOutputGradients(call: PreparedCall, reduction: Reduction, states: Float64Array): OutputGradientsOutput {
    const spec = checkModelSpec({ cell: 'tanh', ...this.dims });
    const head = { 'fc.weight': this.params.V.data() as Float32Array, 'fc.bias': this.params.c.data() as Float32Array };
    const r = referenceHeadBackward(spec, head, { ...call.seq, lengths: null, h0: null, c0: null }, states, call.targets!, reduction);
    return { loss: r.loss, dy: Float32Array.from(r.dy) };
  }

  /**
   * The native default model's outputGradients run on the engine's one-layer tanh model with the
   * same weights (U, W, b as weight_ih, weight_hh, bias_ih; a zero bias_hh; V, c as the head): the
   * forward pass and the head's backward natively, where the float64 head in TS cost about 20
   * training steps at C2's size. Created on first use, freed by dispose().
   */
  private headEngine(): NativeModel {
    this.#headEngine ??= new NativeModel(checkModelSpec({ cell: 'tanh', ...this.dims }));
    return this.#headEngine;
  }

  /** The default model's parameters under the engine model's names (views, or copies for async work). */
  private engineParams(copy: boolean): Record<string, Float32Array> {
    const p = this.paramViews();
    const own = (a: Float32Array) => (copy ? a.slice() : a);
    this.#zeroBias ??= new Float32Array(this.hiddenSize);
    return { 'rnn.weight_ih_l0': own(p.U), 'rnn.weight_hh_l0': own(p.W), 'rnn.bias_ih_l0': own(p.b), 'rnn.bias_hh_l0': this.#zeroBias, 'fc.weight': own(p.V), 'fc.bias': own(p.c) };
  }

  private engineBatch(call: PreparedCall): NormalizedLayerBatch {
    return { steps: call.seq.steps, batch: call.seq.batch, input: call.seq.input, lengths: null, h0: call.h0, c0: null };
  }

  /** The inputs of a prediction in slices of at most batchSize sequences (the inputs themselves when one slice), and its output [T, B, K]. */
  private legacySlices(inputs: Tensor, options: PredictOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`predict options must be an object, got ${describeValue(options)}`);
    const { seq } = this.prepare(inputs, null, { lengths: options.lengths });
    const { steps: T, batch: B } = seq;
    // a forward pass of the default model holds the states and the logits
    const size = checkPredictOptions(options, B, 4 * T * (this.hiddenSize + this.outputSize));
    const width = inputs.dtype === 'int32' ? 1 : this.inputSize;
    const slices: { from: number; to: number; x: Tensor }[] = [];
    for (let from = 0; from < B; from += size) {
      const to = Math.min(B, from + size);
      const x = to - from === B ? inputs : Tensor.from(batchSlice(inputs.data() as Float32Array | Int32Array, T, B, width, from, to), width === 1 ? [T, to - from] : [T, to - from, width]);
      slices.push({ from, to, x });
    }
    return { out: Tensor.zeros([T, B, this.outputSize]), slices };
  }

  /** Writes one slice's logits into the prediction, freeing the slice's tensors. */
  private placeLogits(out: Tensor, s: { from: number; to: number; x: Tensor }, logits: Tensor): void {
    batchScatter(logits.data() as Float32Array, out.data() as Float32Array, out.shape[0], out.shape[1], this.outputSize, s.from, s.to);
    logits.dispose();
    if (s.x.shape[1] !== out.shape[1]) s.x.dispose();
  }

  private checkTruncate(truncate: number | undefined): number | null {
    if (truncate === undefined || truncate === null) return null;
    return checkSize('truncate', truncate);
  }

  private forwardOutputs(seq: Sequence): ForwardOutput {
    const { steps: T, batch: B } = seq;
    return { states: Tensor.zeros([T, B, this.hiddenSize]), logits: Tensor.zeros([T, B, this.outputSize]), hT: Tensor.zeros([B, this.hiddenSize]) };
  }

  private gradientOutputs(seq: Sequence, stateAt: number | null): GradientOutputs {
    const grads = {} as Record<ParamName | 'h0', Tensor>;
    for (const name of PARAM_NAMES) grads[name] = Tensor.zeros(this.params[name].shape);
    grads.h0 = Tensor.zeros([seq.batch, this.hiddenSize]);
    return { grads, hT: Tensor.zeros([seq.batch, this.hiddenSize]), ...this.captureOutput(seq, stateAt) };
  }

  private captureOutput(seq: Sequence, stateAt: number | null): { hAt?: Tensor; stateAt?: number } {
    return stateAt === null ? {} : { hAt: Tensor.zeros([seq.batch, this.hiddenSize]), stateAt };
  }

  private checkStateAt(stateAt: number | undefined, seq: Sequence): number | null {
    if (stateAt === undefined || stateAt === null) return null;
    if (!Number.isInteger(stateAt) || stateAt < 0 || stateAt >= seq.steps) {
      throw new RangeError(`stateAt must be an integer step in [0, ${seq.steps}), got ${describeValue(stateAt)}`);
    }
    return stateAt;
  }

  /** Fills hAt on the reference backend, which returns no states from its gradient call. */
  private referenceCapture(call: PreparedCall, capture: { hAt?: Tensor; stateAt?: number }): void {
    if (capture.hAt === undefined) return;
    const block = call.seq.batch * this.hiddenSize;
    const states = reference.forward(this.dims, this.paramViews(), call.seq, call.h0).states;
    capture.hAt.data().set(states.subarray(capture.stateAt! * block, (capture.stateAt! + 1) * block));
  }

  private forwardRequest(call: PreparedCall, out: ForwardOutput): NativeRequest {
    return nativeRequest(this.dims, this.paramViews(), call.seq, call.h0, out.hT.data() as Float32Array, {
      states: out.states.data() as Float32Array,
      logits: out.logits.data() as Float32Array,
    });
  }

  private gradientRequest(call: PreparedCall, out: GradientOutputs, truncate: number | null, reduction: Reduction): NativeRequest {
    const g = out.grads;
    return nativeRequest(this.dims, this.paramViews(), call.seq, call.h0, out.hT.data() as Float32Array, {
      targets: call.targets!,
      truncate: truncate ?? 0,
      reduction,
      hAt: out.hAt?.data() as Float32Array | undefined,
      hAtStep: out.stateAt,
      gU: g.U.data() as Float32Array,
      gW: g.W.data() as Float32Array,
      gb: g.b.data() as Float32Array,
      gV: g.V.data() as Float32Array,
      gc: g.c.data() as Float32Array,
      gh0: g.h0.data() as Float32Array,
    });
  }

  private prepareTrainStep(inputs: Tensor, targets: Tensor, options: TrainStepOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`trainStep options must be an object with lr, got ${describeValue(options)}`);
    const call = this.prepare(inputs, targets, options);
    const truncate = this.checkTruncate(options.truncate);
    const reduction = checkReduction(options.reduction);
    checkFloat32Scalar('lr', options.lr, true);
    if (options.clipNorm !== undefined) checkFloat32Scalar('clipNorm', options.clipNorm, false);
    if (options.clipValue !== undefined) checkFloat32Scalar('clipValue', options.clipValue, false);
    const optimizer = options.optimizer;
    if (optimizer !== undefined) {
      if (!(optimizer instanceof Optimizer)) throw new TypeError(`optimizer must be an Optimizer, got ${describeValue(optimizer)}`);
      for (const name of PARAM_NAMES) {
        for (const slot of optimizer.slots(name)) {
          if (slot.shape.length !== this.params[name].shape.length || slot.size !== this.params[name].size) {
            throw new ShapeError(`optimizer state for ${name} has shape [${slot.shape.join(', ')}]; it was made for another model`);
          }
          slot.checkWritable();
        }
      }
    }
    for (const name of PARAM_NAMES) this.params[name].checkWritable();
    const capture = this.captureOutput(call.seq, this.checkStateAt(options.stateAt, call.seq));
    return { call, truncate, reduction, optimizer, capture, hT: Tensor.zeros([call.seq.batch, this.hiddenSize]) };
  }

  private trainRequest(
    call: PreparedCall,
    hT: Tensor,
    capture: { hAt?: Tensor; stateAt?: number },
    truncate: number | null,
    reduction: Reduction,
    options: TrainStepOptions,
    optimizer: Optimizer | undefined,
    out: Float64Array,
  ): NativeRequest {
    let state: Record<string, Float32Array> | undefined;
    if (optimizer) {
      state = {};
      for (const name of PARAM_NAMES) optimizer.slots(name).forEach((t, i) => (state![`${name}${i}`] = t.data() as Float32Array));
    }
    return nativeRequest(this.dims, this.paramViews(), call.seq, call.h0, hT.data() as Float32Array, {
      targets: call.targets!,
      truncate: truncate ?? 0,
      reduction,
      hAt: capture.hAt?.data() as Float32Array | undefined,
      hAtStep: capture.stateAt,
      clipNorm: options.clipNorm,
      clipValue: options.clipValue,
      optimizer: optimizer ? optimizer.nativeConfig(options.lr) : { kind: 'sgd', lr: options.lr },
      state,
      out,
    });
  }

  private referenceTrainStep(
    call: PreparedCall,
    truncate: number | null,
    reduction: Reduction,
    options: TrainStepOptions,
    optimizer: Optimizer | undefined,
    hT: Tensor,
    capture: { hAt?: Tensor; stateAt?: number },
  ): TrainStepOutput {
    this.referenceCapture(call, capture);
    const r = reference.lossAndGradients(this.dims, this.paramViews(), call.seq, call.targets!, { h0: call.h0, truncate, reduction });
    const { gradNorm, clipped } = applyReferenceStep<ParamName>(this.params as Record<ParamName, Tensor>, r.loss, r.grads, options, optimizer);
    hT.data().set(r.hT);
    return { loss: r.loss, gradNorm, clipped, hT, hAt: capture.hAt };
  }

  private runPinned<R>(call: PreparedCall, outputs: Tensor[], job: () => Promise<R>): Promise<R> {
    return withPinned([...call.tensors, ...outputs], job);
  }
}

function checkReduction(reduction: Reduction | undefined): Reduction {
  const r = reduction ?? 'mean';
  if (r !== 'mean' && r !== 'sum') throw new TypeError(`reduction must be 'mean' or 'sum', got ${describeValue(r)}`);
  return r;
}
