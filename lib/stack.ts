/**
 * The model behind `new RNN({ cell, numLayers, bidirectional, dropout, head, ... })` for every
 * configuration but the default one-layer tanh RNN with a tokens head: the recurrent engine's stack
 * with a task head (lib/engine/model.ts), its parameters as native tensors under PyTorch's
 * state_dict names (`rnn.weight_ih_l0`, ..., `fc.weight`, `fc.bias`), on the native or the
 * reference backend.
 *
 * States are [L*dirs, B, H] (index l*dirs + d, as PyTorch); an LSTM carries c beside h.
 */
import { checkFloat32Scalar, checkSize, describeValue } from './backend';
import { CellKind, LayerBatch, LayerSpec, NormalizedLayerBatch, gatesPerCell } from './engine/spec';
import {
  ForwardDestination,
  ModelCallOptions,
  ModelTargets,
  NativeModel,
  NormalizedModelSpec,
  checkModelCall,
  checkModelTargets,
  headOutputShape,
  headTargetShape,
  modelParameters,
  referenceModelForward,
  referenceModelLossAndGradients,
  referenceOutputGradients,
} from './engine/model';
import { hasCellState, numDirections } from './engine/spec';
import { translateNativeError, withPinned } from './backends/native';
import { DTypeError, ShapeError, TensorInUseError } from './errors';
import { Optimizer, applyReferenceStep } from './optim';
import type { ForwardOptions, ForwardOutput, LossAndGradientsOptions, LossAndGradientsOutput, OutputGradientsOptions, OutputGradientsOutput, PredictOptions, TrainStepOptions, TrainStepOutput } from './rnn';
import { addon } from './native';
import { Rng } from './rng';
import { Tensor } from './tensor';

interface PreparedStackCall {
  batch: LayerBatch;
  targets: ModelTargets | null;
  tensors: Tensor[];
}

/**
 * How a model's recurrent weights start (the head and every input weight always start as
 * PyTorch's): 'pytorch' (default) draws every weight and bias uniform in +-1/sqrt(H);
 * 'orthogonal' then replaces each gate's H×H block of weight_hh by an orthogonal matrix (the Q of
 * a seeded Gaussian matrix's QR, R's diagonal made positive, as torch.nn.init.orthogonal_);
 * 'identity' sets weight_hh = I and every recurrent bias to zero (Le et al.'s IRNN with cell
 * 'relu'; tanh and relu cells only).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, type InitKind } from 'bptt';
 *
 * const init: InitKind = 'identity';
 * const irnn = new RNN({ inputSize: 2, hiddenSize: 3, outputSize: 1, cell: 'relu', init, head: { kind: 'regress' }, seed: 1, backend: 'reference' });
 * assert.deepEqual(Array.from(irnn.params['rnn.weight_hh_l0'].toArray()), [1, 0, 0, 0, 1, 0, 0, 0, 1]);
 * assert.equal(irnn.init, 'identity');
 * assert.throws(() => new RNN({ inputSize: 2, hiddenSize: 3, outputSize: 1, cell: 'lstm', init }), TypeError);
 * ```
 */
export type InitKind = 'pytorch' | 'orthogonal' | 'identity';

/** Validates `init` against the cell. */
export function checkInit(init: unknown, cell: CellKind): InitKind {
  if (init === undefined) return 'pytorch';
  if (init !== 'pytorch' && init !== 'orthogonal' && init !== 'identity') throw new TypeError(`init must be 'pytorch', 'orthogonal' or 'identity', got ${describeValue(init)}`);
  if (init === 'identity' && cell !== 'tanh' && cell !== 'relu') {
    throw new TypeError(`init 'identity' (weight_hh = I, zero biases: the IRNN) is defined for 'tanh' and 'relu' cells; a '${cell}' cell's gates have no standard identity initialisation`);
  }
  return init;
}

/**
 * A square orthogonal matrix [n, n] (row-major): the Q of A = QR for a Gaussian A drawn from rng,
 * with R's diagonal positive (Gram-Schmidt on A's columns, each pass done twice for accuracy).
 */
function orthogonalMatrix(rng: Rng, n: number): Float64Array {
  const q = new Float64Array(n * n); // column j at q[j*n .. j*n+n)
  for (let i = 0; i < q.length; i++) q[i] = rng.normal();
  for (let j = 0; j < n; j++) {
    const v = q.subarray(j * n, (j + 1) * n);
    for (let pass = 0; pass < 2; pass++) {
      for (let k = 0; k < j; k++) {
        const u = q.subarray(k * n, (k + 1) * n);
        let dot = 0;
        for (let i = 0; i < n; i++) dot += u[i] * v[i];
        for (let i = 0; i < n; i++) v[i] -= dot * u[i];
      }
    }
    let norm = 0;
    for (let i = 0; i < n; i++) norm += v[i] * v[i];
    norm = Math.sqrt(norm);
    for (let i = 0; i < n; i++) v[i] /= norm;
  }
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) out[i * n + j] = q[j * n + i];
  return out;
}

/**
 * Applies a non-default `init` to one layer-direction's recurrent weights (already drawn as
 * PyTorch's): weight_hh [G*H, H] gate block by gate block, and its biases for 'identity'. The
 * orthogonal blocks are drawn from `rng` after everything else, so the other weights stay PyTorch's.
 */
export function applyInit(init: InitKind, rng: Rng, gates: number, H: number, weightHH: Float32Array, biases: Float32Array[]): void {
  if (init === 'pytorch') return;
  for (let g = 0; g < gates; g++) {
    const block = weightHH.subarray(g * H * H, (g + 1) * H * H);
    if (init === 'identity') {
      block.fill(0);
      for (let i = 0; i < H; i++) block[i * H + i] = 1;
    } else {
      block.set(orthogonalMatrix(rng, H));
    }
  }
  if (init === 'identity') for (const b of biases) b.fill(0);
}

/** Options of a prediction (see RNN.predict), validated. */
/** The working memory a prediction's slice may take when no batchSize is given. */
export const PREDICT_MEMORY_BUDGET = 2 ** 30;

/**
 * How many of B sequences a prediction runs at once: options.batchSize when given, else as many
 * as fit in PREDICT_MEMORY_BUDGET at `bytesPerSequence` each (every sequence of an ordinary batch;
 * a very large one in slices, where one call would have held all of its forward pass at once).
 */
export function checkPredictOptions(options: PredictOptions | undefined, B: number, bytesPerSequence: number): number {
  if (options !== undefined && options !== null && typeof options !== 'object') throw new TypeError(`predict options must be an object, got ${describeValue(options)}`);
  if (options?.batchSize !== undefined) return Math.min(B, checkSize('batchSize', options.batchSize));
  return Math.min(B, Math.max(1, Math.floor(PREDICT_MEMORY_BUDGET / bytesPerSequence)));
}

/** Softmax of every row [rows, K] in place (float64 math): logits to probabilities. */
export function softmaxRows(values: Float32Array, K: number): void {
  for (let r = 0; r < values.length; r += K) {
    const row = values.subarray(r, r + K);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    for (let k = 0; k < K; k++) row[k] = Math.exp(row[k] - max) / sum;
  }
}

/**
 * Rows of K logits as probabilities, in place: natively (SIMD, rows over the threads) for the
 * native backend, in float64 arithmetic by softmaxRows for the reference one.
 */
export function probabilities(values: Float32Array, K: number, native: boolean): void {
  if (native) addon().softmaxRows(values, K);
  else softmaxRows(values, K);
}

/** Sequences [from, to) of a time-major array [T, B, width], as a new [T, to - from, width] array. */
export function batchSlice<A extends Float32Array | Int32Array>(data: A, T: number, B: number, width: number, from: number, to: number): A {
  const n = to - from;
  const out = new (data.constructor as new (n: number) => A)(T * n * width);
  for (let t = 0; t < T; t++) out.set(data.subarray((t * B + from) * width, (t * B + to) * width), t * n * width);
  return out;
}

/** The inverse of batchSlice: a [T, to - from, width] slice written into the whole [T, B, width]. */
export function batchScatter<A extends Float32Array | Int32Array>(slice: A, whole: A, T: number, B: number, width: number, from: number, to: number): void {
  const n = to - from;
  for (let t = 0; t < T; t++) whole.set(slice.subarray(t * n * width, (t + 1) * n * width), (t * B + from) * width);
}

export class StackModel {
  readonly params: Readonly<Record<string, Tensor>>;
  readonly #native: NativeModel | null;
  /** Seeds of the dropout masks of successive training calls. */
  readonly #dropoutStream: Rng;

  constructor(
    readonly spec: NormalizedModelSpec,
    readonly backend: 'native' | 'reference',
    seed: number,
    readonly init: InitKind,
  ) {
    this.#native = backend === 'native' ? new NativeModel(spec) : null;
    // PyTorch's defaults: the recurrent stack uniform in +-1/sqrt(H), nn.Linear in
    // +-1/sqrt(fan_in) = +-1/sqrt(dirs*H); drawn in state_dict order from one generator.
    const rng = new Rng(seed);
    const params: Record<string, Tensor> = {};
    const stackBound = 1 / Math.sqrt(spec.hiddenSize);
    const headBound = 1 / Math.sqrt(numDirections(spec) * spec.hiddenSize);
    for (const p of modelParameters(spec)) {
      const t = Tensor.zeros(p.shape);
      const v = t.data();
      const bound = p.layer ? stackBound : headBound;
      for (let i = 0; i < v.length; i++) v[i] = rng.uniform(-bound, bound);
      params[p.name] = t;
    }
    const view = (name: string) => params[name].data() as Float32Array;
    for (const p of modelParameters(spec)) {
      if (p.layer?.kind !== 'weight_hh') continue;
      const suffix = p.name.slice('rnn.weight_hh'.length);
      applyInit(init, rng, gatesPerCell(spec.cell), spec.hiddenSize, view(p.name), [view(`rnn.bias_ih${suffix}`), view(`rnn.bias_hh${suffix}`)]);
    }
    this.params = Object.freeze(params);
    this.#dropoutStream = new Rng(seed ^ 0x5bd1e995);
  }

  /** The dropout stream's state (saved in checkpoints, so a resumed run draws the same masks). */
  get dropoutStream(): Rng {
    return this.#dropoutStream;
  }

  paramViews(): Record<string, Float32Array> {
    const out: Record<string, Float32Array> = {};
    for (const [name, t] of Object.entries(this.params)) out[name] = t.data() as Float32Array;
    return out;
  }

  forward(inputs: Tensor, options: ForwardOptions = {}): ForwardOutput {
    const call = this.prepare(inputs, null, options);
    const { batch } = checkModelCall(this.spec, call.batch, {}, false);
    const out = this.forwardOutputs(batch.steps, batch.batch);
    const r = this.#native ? this.native((m) => m.forward(this.paramViews(), batch)) : referenceModelForward(this.spec, this.paramViews(), batch);
    out.states.data().set(r.outputs);
    out.logits.data().set(r.logits);
    out.hT.data().set(r.hT);
    if (out.cT && r.cT) out.cT.data().set(r.cT);
    return out;
  }

  async forwardAsync(inputs: Tensor, options: ForwardOptions = {}): Promise<ForwardOutput> {
    if (!this.#native) return this.forward(inputs, options);
    const call = this.prepare(inputs, null, options);
    const { batch } = checkModelCall(this.spec, call.batch, {}, false);
    const out = this.forwardOutputs(batch.steps, batch.batch);
    const r = await this.pinned(call.tensors, () => this.#native!.forwardAsync(this.paramViews(), batch));
    out.states.data().set(r.outputs);
    out.logits.data().set(r.logits);
    out.hT.data().set(r.hT);
    if (out.cT && r.cT) out.cT.data().set(r.cT);
    return out;
  }

  lossAndGradients(inputs: Tensor, targets: Tensor, options: LossAndGradientsOptions = {}): LossAndGradientsOutput {
    const { batch, targets: t, o } = this.prepareGradients(inputs, targets, options);
    const r = this.#native ? this.native((m) => m.lossAndGradients(this.paramViews(), batch, t, o)) : referenceModelLossAndGradients(this.spec, this.paramViews(), batch, t, o);
    return this.gradientOutput(r);
  }

  async lossAndGradientsAsync(inputs: Tensor, targets: Tensor, options: LossAndGradientsOptions = {}): Promise<LossAndGradientsOutput> {
    if (!this.#native) return this.lossAndGradients(inputs, targets, options);
    const { batch, targets: t, o, tensors } = this.prepareGradients(inputs, targets, options);
    const r = await this.pinned(tensors, () => this.#native!.lossAndGradientsAsync(this.paramViews(), batch, t, o));
    return this.gradientOutput(r);
  }

  /**
   * Forward, BPTT, clipping and the optimizer update in one call; on any error (NonFiniteError
   * included) the parameters and the optimizer state are left as they were.
   */
  trainStep(inputs: Tensor, targets: Tensor, options: TrainStepOptions): TrainStepOutput {
    const { batch, targets: t, o, optimizer } = this.prepareTrainStep(inputs, targets, options);
    if (!this.#native) {
      const r = referenceModelLossAndGradients(this.spec, this.paramViews(), batch, t, o);
      const { gradNorm, clipped } = applyReferenceStep(this.params, r.loss, r.grads, options, optimizer);
      const states = this.gradientOutput(r);
      for (const g of Object.values(states.grads)) g.dispose();
      return { loss: r.loss, gradNorm, clipped, hT: states.hT, cT: states.cT, hAt: states.hAt, cAt: states.cAt };
    }
    const r = this.native((m) => m.trainStep(this.paramViews(), batch, t, o, options, optimizer));
    optimizer?.advance();
    return this.stepOutput(r);
  }

  async trainStepAsync(inputs: Tensor, targets: Tensor, options: TrainStepOptions): Promise<TrainStepOutput> {
    if (!this.#native) return this.trainStep(inputs, targets, options);
    const { batch, targets: t, o, optimizer, tensors } = this.prepareTrainStep(inputs, targets, options);
    const state = optimizer ? Object.keys(this.params).flatMap((n) => optimizer.slots(n)) : [];
    const r = await this.pinned([...tensors, ...state], () => this.#native!.trainStepAsync(this.paramViews(), batch, t, o, options, optimizer));
    optimizer?.advance();
    return this.stepOutput(r);
  }

  /**
   * The head's probabilities (tokens, classify) or values (regress) without dropout, in slices of
   * batchSize sequences.
   */
  predict(inputs: Tensor, options: PredictOptions = {}): Tensor {
    const { batch, slices } = this.preparePredict(inputs, options);
    const out = Tensor.zeros(headOutputShape(this.spec, batch.steps, batch.batch));
    for (const s of slices) {
      if (!this.#native) {
        this.placeSlice(out, batch, s.from, s.slice.batch, referenceModelForward(this.spec, this.paramViews(), s.slice).logits);
        continue;
      }
      const into = this.predictDestination(out, slices.length);
      const r = this.native((m) => m.forward(this.paramViews(), s.slice, into));
      if (into.logits === undefined) this.placeSlice(out, batch, s.from, s.slice.batch, r.logits);
    }
    return this.finishPrediction(out);
  }

  async predictAsync(inputs: Tensor, options: PredictOptions = {}): Promise<Tensor> {
    if (!this.#native) return this.predict(inputs, options);
    const { batch, slices, tensors } = this.preparePredict(inputs, options);
    const out = Tensor.zeros(headOutputShape(this.spec, batch.steps, batch.batch));
    await this.pinned([...tensors, out], async () => {
      for (const s of slices) {
        const into = this.predictDestination(out, slices.length);
        const r = await this.#native!.forwardAsync(this.paramViews(), s.slice, into);
        if (into.logits === undefined) this.placeSlice(out, batch, s.from, s.slice.batch, r.logits);
      }
    });
    return this.finishPrediction(out);
  }

  /** A prediction needs only the head's outputs: in one slice straight into the result. */
  private predictDestination(out: Tensor, slices: number): ForwardDestination {
    return slices === 1 ? { logits: out.data() as Float32Array, outputs: false } : { outputs: false };
  }

  /** dL/d(top outputs) [T, B, dirs*H] and the loss: the head's backward only, without dropout. */
  outputGradients(inputs: Tensor, targets: Tensor, options: OutputGradientsOptions = {}): OutputGradientsOutput {
    const { batch, targets: t, reduction } = this.prepareOutputGradients(inputs, targets, options);
    if (this.#native) return this.native((m) => m.outputGradients(this.paramViews(), batch, t, reduction));
    const r = referenceOutputGradients(this.spec, this.paramViews(), batch, t, reduction);
    return { loss: r.loss, dy: Float32Array.from(r.dy) };
  }

  async outputGradientsAsync(inputs: Tensor, targets: Tensor, options: OutputGradientsOptions = {}): Promise<OutputGradientsOutput> {
    if (!this.#native) return this.outputGradients(inputs, targets, options);
    const { batch, targets: t, reduction, tensors } = this.prepareOutputGradients(inputs, targets, options);
    return this.pinned(tensors, () => this.#native!.outputGradientsAsync(this.paramViews(), batch, t, reduction));
  }

  /** The recurrent stack as the layer API takes it: its spec and copies of its weights under the engine's names. */
  layerView(): { spec: LayerSpec; weights: Record<string, Float32Array> } {
    const { cell, inputSize, hiddenSize, numLayers, bidirectional, dropout } = this.spec;
    const weights: Record<string, Float32Array> = {};
    for (const p of modelParameters(this.spec)) if (p.layer) weights[p.layer.name] = Float32Array.from(this.params[p.name].data() as Float32Array);
    return { spec: { cell, inputSize, hiddenSize, numLayers, bidirectional, dropout }, weights };
  }

  /** Frees the parameters and the native scratch memory now. */
  dispose(): void {
    this.checkIdle();
    for (const t of Object.values(this.params)) t.dispose();
    this.#native?.release();
  }

  // --- internals ---

  private prepareOutputGradients(inputs: Tensor, targets: Tensor, options: OutputGradientsOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`options must be an object, got ${describeValue(options)}`);
    const call = this.prepare(inputs, targets, options);
    const { batch, options: o } = checkModelCall(this.spec, call.batch, { reduction: options.reduction }, false);
    checkModelTargets(this.spec, batch, call.targets!);
    return { batch, targets: call.targets!, reduction: o.reduction, tensors: call.tensors };
  }

  /** The call's batch and its slices of at most batchSize sequences (copies, but for one slice of everything). */
  private preparePredict(inputs: Tensor, options: PredictOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`predict options must be an object, got ${describeValue(options)}`);
    const call = this.prepare(inputs, null, { lengths: options.lengths });
    const { batch } = checkModelCall(this.spec, call.batch, {}, false);
    const { steps: T, batch: B } = batch;
    const D = this.spec.inputSize;
    // A forward pass for prediction holds per row each layer's outputs (it keeps nothing for
    // backward); a slice copies its inputs, and the call writes the head's outputs.
    const { numLayers, hiddenSize, outputSize } = this.spec;
    const perRow = numLayers * numDirections(this.spec) * hiddenSize + D + outputSize;
    const size = checkPredictOptions(options, B, 4 * T * perRow);
    const slices: { from: number; slice: NormalizedLayerBatch }[] = [];
    for (let from = 0; from < B; from += size) {
      const to = Math.min(B, from + size);
      if (from === 0 && to === B) {
        slices.push({ from, slice: batch });
        break;
      }
      const input = batch.input;
      const slice: NormalizedLayerBatch = {
        steps: T,
        batch: to - from,
        input: input.kind === 'tokens' ? { kind: 'tokens', data: batchSlice(input.data, T, B, 1, from, to) } : { kind: 'dense', data: batchSlice(input.data as Float32Array, T, B, D, from, to) },
        lengths: batch.lengths === null ? null : batch.lengths.subarray(from, to),
        h0: null,
        c0: null,
      };
      slices.push({ from, slice });
    }
    return { batch, slices, tensors: call.tensors };
  }

  /** Writes the head's outputs of sequences [from, from + n) into the whole batch's. */
  private placeSlice(out: Tensor, batch: NormalizedLayerBatch, from: number, n: number, values: ArrayLike<number>): void {
    const data = out.data() as Float32Array;
    const K = this.spec.outputSize;
    const v = values instanceof Float32Array ? values : Float32Array.from(values);
    if (out.shape.length === 3) batchScatter(v, data, batch.steps, batch.batch, K, from, from + n);
    else data.set(v, from * K);
  }

  /** Probabilities from the classifying heads' logits; regression values as they are. */
  private finishPrediction(out: Tensor): Tensor {
    if (this.spec.head.kind !== 'regress') probabilities(out.data() as Float32Array, this.spec.outputSize, this.#native !== undefined);
    return out;
  }

  /** Result arrays as tensors: the gradients (with the initial states' as h0 and c0) and the states. */
  private gradientOutput(r: { loss: number; grads: Record<string, ArrayLike<number>>; dh0: ArrayLike<number>; dc0: ArrayLike<number> | null; hT: ArrayLike<number>; cT: ArrayLike<number> | null; hAt: ArrayLike<number> | null; cAt: ArrayLike<number> | null }): LossAndGradientsOutput {
    const B = r.hT.length / (this.spec.numLayers * numDirections(this.spec) * this.spec.hiddenSize);
    const state = (a: ArrayLike<number> | null) => (a === null ? undefined : Tensor.from(Float32Array.from(a), [this.spec.numLayers * numDirections(this.spec), B, this.spec.hiddenSize]));
    const grads: Record<string, Tensor> = {};
    for (const p of modelParameters(this.spec)) if (p.name in r.grads) grads[p.name] = Tensor.from(Float32Array.from(r.grads[p.name]), p.shape);
    if (Object.keys(r.grads).length > 0) {
      grads.h0 = state(r.dh0)!;
      if (r.dc0 !== null) grads.c0 = state(r.dc0)!;
    }
    return { loss: r.loss, grads, hT: state(r.hT)!, cT: state(r.cT), hAt: state(r.hAt), cAt: state(r.cAt) };
  }

  private stepOutput(r: { loss: number; gradNorm: number; clipped: boolean; hT: Float32Array; cT: Float32Array | null; hAt: Float32Array | null; cAt: Float32Array | null }): TrainStepOutput {
    const { hT, cT, hAt, cAt } = this.gradientOutput({ ...r, grads: {}, dh0: r.hT, dc0: null });
    return { loss: r.loss, gradNorm: r.gradNorm, clipped: r.clipped, hT, cT, hAt, cAt };
  }

  private prepareTrainStep(inputs: Tensor, targets: Tensor, options: TrainStepOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`trainStep options must be an object with lr, got ${describeValue(options)}`);
    checkFloat32Scalar('lr', options.lr, true);
    if (options.clipNorm !== undefined) checkFloat32Scalar('clipNorm', options.clipNorm, false);
    if (options.clipValue !== undefined) checkFloat32Scalar('clipValue', options.clipValue, false);
    const optimizer = options.optimizer;
    if (optimizer !== undefined) {
      if (!(optimizer instanceof Optimizer)) throw new TypeError(`optimizer must be an Optimizer, got ${describeValue(optimizer)}`);
      for (const [name, p] of Object.entries(this.params)) {
        for (const slot of optimizer.slots(name)) {
          if (slot.size !== p.size) throw new ShapeError(`optimizer state for ${name} has shape [${slot.shape.join(', ')}]; it was made for another model`);
          slot.checkWritable();
        }
      }
    }
    for (const p of Object.values(this.params)) p.checkWritable();
    return { ...this.prepareGradients(inputs, targets, options), optimizer };
  }

  private prepareGradients(inputs: Tensor, targets: Tensor, options: LossAndGradientsOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`options must be an object, got ${describeValue(options)}`);
    const call = this.prepare(inputs, targets, options);
    const training = options.training ?? this.spec.dropout > 0;
    const callOptions: ModelCallOptions = {
      training,
      dropoutSeed: options.dropoutSeed ?? (training && this.spec.dropout > 0 ? this.#dropoutStream.int(2 ** 32) : undefined),
      truncate: options.truncate ?? null,
      reduction: options.reduction,
      stateAt: options.stateAt ?? null,
    };
    const { batch, options: o } = checkModelCall(this.spec, call.batch, callOptions, false);
    checkModelTargets(this.spec, batch, call.targets!);
    return { batch, targets: call.targets!, o, tensors: call.tensors };
  }

  private forwardOutputs(T: number, B: number): ForwardOutput {
    const states = [this.spec.numLayers * numDirections(this.spec), B, this.spec.hiddenSize];
    return {
      states: Tensor.zeros([T, B, numDirections(this.spec) * this.spec.hiddenSize]),
      logits: Tensor.zeros(headOutputShape(this.spec, T, B)),
      hT: Tensor.zeros(states),
      ...(hasCellState(this.spec.cell) ? { cT: Tensor.zeros(states) } : {}),
    };
  }

  /** Reads the tensors of a call into an engine batch (validated by checkModelCall next). */
  private prepare(inputs: Tensor, targets: Tensor | null, options: ForwardOptions): PreparedStackCall {
    if (!(inputs instanceof Tensor)) throw new TypeError(`inputs must be a Tensor (int32 [T, B] or float32 [T, B, D]), got ${describeValue(inputs)}`);
    const shape = inputs.shape;
    const tensors: Tensor[] = [inputs, ...Object.values(this.params)];
    let batch: LayerBatch;
    if (inputs.dtype === 'int32') {
      if (shape.length !== 2) throw new ShapeError(`token inputs must have shape [T, B], got [${shape.join(', ')}]`);
      batch = { steps: shape[0], batch: shape[1], input: { kind: 'tokens', data: inputs.data() as Int32Array } };
    } else {
      if (shape.length !== 3 || shape[2] !== this.spec.inputSize) throw new ShapeError(`dense inputs must have shape [T, B, ${this.spec.inputSize}], got [${shape.join(', ')}]`);
      batch = { steps: shape[0], batch: shape[1], input: { kind: 'dense', data: inputs.data() as Float32Array } };
    }
    const state = (name: 'h0' | 'c0', t: Tensor | undefined) => {
      if (t === undefined || t === null) return null;
      if (!(t instanceof Tensor) || t.dtype !== 'float32') throw new DTypeError(`${name} must be a float32 Tensor [L*dirs, B, H], got ${describeValue(t)}`);
      tensors.push(t);
      return t.data() as Float32Array;
    };
    batch.h0 = state('h0', options.h0);
    batch.c0 = state('c0', options.c0);
    if (options.lengths !== undefined && options.lengths !== null) {
      const l = options.lengths;
      if (l instanceof Tensor) {
        if (l.dtype !== 'int32') throw new DTypeError(`lengths must be int32, got ${l.toString()}`);
        tensors.push(l);
        batch.lengths = l.data() as Int32Array;
      } else {
        batch.lengths = l;
      }
    }
    let t: ModelTargets | null = null;
    if (targets !== null) {
      const { dtype, shape: expected } = headTargetShape(this.spec, batch.steps, batch.batch);
      const what = `targets of the ${this.spec.head.kind} head must be a ${dtype} Tensor [${expected.join(', ')}]`;
      if (!(targets instanceof Tensor) || targets.dtype !== dtype) throw new DTypeError(`${what}, got ${describeValue(targets)}`);
      if (targets.shape.length !== expected.length || targets.shape.some((n, i) => n !== expected[i])) throw new ShapeError(`${what}, got [${targets.shape.join(', ')}]`);
      tensors.push(targets);
      t = targets.data() as ModelTargets;
    }
    return { batch, targets: t, tensors };
  }

  private pinned<R>(tensors: Tensor[], job: () => Promise<R>): Promise<R> {
    this.checkIdle();
    return withPinned(tensors, job);
  }

  /** A synchronous native call, its coded errors as the library's typed errors. */
  private native<R>(call: (model: NativeModel) => R): R {
    this.checkIdle();
    try {
      return call(this.#native!);
    } catch (err) {
      throw translateNativeError(err);
    }
  }

  private checkIdle(): void {
    if (this.#native?.busy) throw new TensorInUseError('this model is running an asynchronous job; await it first');
  }
}
