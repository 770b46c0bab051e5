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
import { NativeEngine, NativeRequest, createEngine, nativeArgs, nativeRequest, translateNativeError } from './backends/native';
import { DTypeError, ShapeError } from './errors';
import { CellKind } from './engine/spec';
import { checkModelSpec } from './engine/model';
import { Optimizer, applyReferenceStep } from './optim';
import { StackModel } from './stack';
import { Rng } from './rng';
import { Tensor } from './tensor';
import { SampleOptions, sample } from './train/sample';
import type { CharTokenizer } from './train/tokenizer';

export type BackendName = 'native' | 'reference';

export interface RNNOptions {
  inputSize: number;
  hiddenSize: number;
  outputSize: number;
  /** Seeds the initialisation (random when omitted; read it back from rnn.seed). */
  seed?: number;
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
 */
export type Params = Readonly<Record<string, Tensor>>;
export type ParamValues = Readonly<Record<string, Float32Array | Tensor>> | Readonly<Record<ParamName, Float32Array | Tensor>>;

export interface ForwardOptions {
  /** Initial state: [B, H] for the default model, [L*dirs, B, H] (or [B, H] when L*dirs = 1) for the others. */
  h0?: Tensor;
  /** LSTM initial cell state, like h0. */
  c0?: Tensor;
  /** Valid steps per sequence (Int32Array or int32 Tensor [B], each in [1, T]); later steps are padding. */
  lengths?: Int32Array | Tensor;
}

export interface ForwardOutput {
  /** The top layer's outputs [T, B, dirs*H] (the hidden states s_t for the default model). */
  states: Tensor;
  logits: Tensor;
  hT: Tensor;
  /** LSTM only. */
  cT?: Tensor;
}

export interface LossAndGradientsOptions extends ForwardOptions {
  truncate?: number;
  reduction?: Reduction;
  /** Also return the state after this step (0-based) as `hAt` (and `cAt`): where an overlapping TBPTT window resumes. */
  stateAt?: number;
  /** Dropout between layers (models with dropout); default true: these are training calls. */
  training?: boolean;
  /** Seed of this call's dropout masks; default: the next one of the model's dropout stream. */
  dropoutSeed?: number;
}

export interface LossAndGradientsOutput {
  loss: number;
  /** Every parameter's gradient, and h0 (and c0 for an LSTM): the initial state's. */
  grads: Record<string, Tensor>;
  hT: Tensor;
  cT?: Tensor;
  hAt?: Tensor;
  cAt?: Tensor;
}

export interface TrainStepOptions extends LossAndGradientsOptions {
  lr: number;
  /** Rescale the gradient to this global L2 norm when it is larger. */
  clipNorm?: number;
  /** Clamp each gradient element to [-clipValue, clipValue]. */
  clipValue?: number;
  /** Defaults to plain SGD. */
  optimizer?: Optimizer;
}

export interface RNNSampleOptions extends SampleOptions {
  /** Text (with a tokenizer) or token ids to condition on. */
  prime?: string | ArrayLike<number>;
  /** Overrides rnn.tokenizer. */
  tokenizer?: CharTokenizer;
}

export interface TrainStepOutput {
  loss: number;
  /** Global L2 norm of the parameter gradients, before clipping. */
  gradNorm: number;
  clipped: boolean;
  hT: Tensor;
  cT?: Tensor;
  hAt?: Tensor;
  cAt?: Tensor;
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

export class RNN {
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly outputSize: number;
  readonly backend: BackendName;
  readonly seed: number;
  readonly cell: CellKind;
  readonly numLayers: number;
  readonly bidirectional: boolean;
  readonly dropout: number;
  readonly params: Params;
  /** Every model but the default one-layer tanh RNN runs on the recurrent engine. */
  readonly #stack: StackModel | null;
  #disposed = false;
  /** The vocabulary of a character model (set by loadCheckpoint and the CLI); sample() returns text when set. */
  tokenizer: CharTokenizer | undefined;
  #engine: NativeEngine | undefined;
  /** Where a synchronous native trainStep writes loss, gradNorm and clipped. */
  readonly #stepResults = new Float64Array(3);

  constructor(options: RNNOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`RNN options must be an object, got ${describeValue(options)}`);
    const dims = checkDims({ inputSize: options.inputSize, hiddenSize: options.hiddenSize, outputSize: options.outputSize });
    const backend = options.backend ?? 'native';
    if (backend !== 'native' && backend !== 'reference') throw new TypeError(`backend must be 'native' or 'reference', got ${describeValue(backend)}`);
    const seed = options.seed ?? randomInt(2 ** 31);
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${describeValue(seed)}`);
    const spec = checkModelSpec({ ...dims, cell: options.cell ?? 'tanh', numLayers: options.numLayers, bidirectional: options.bidirectional, dropout: options.dropout });
    this.inputSize = dims.inputSize;
    this.hiddenSize = dims.hiddenSize;
    this.outputSize = dims.outputSize;
    this.backend = backend;
    this.seed = seed;
    this.cell = spec.cell;
    this.numLayers = spec.numLayers;
    this.bidirectional = spec.bidirectional;
    this.dropout = spec.dropout;
    this.tokenizer = undefined;
    // The default model keeps its own tuned native path (rnn.cc) and its single bias b.
    const elman = spec.cell === 'tanh' && spec.numLayers === 1 && !spec.bidirectional && spec.dropout === 0;
    if (!elman) {
      this.#stack = new StackModel(spec, backend, seed);
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
    this.params = Object.freeze(params);
  }

  /** Where the dropout masks of training calls are drawn from (models with dropout), else null. Checkpoints save it. */
  get dropoutStream(): Rng | null {
    return this.#stack && this.dropout > 0 ? this.#stack.dropoutStream : null;
  }

  /** Shape of a state (h0, hT, c0, cT) for a batch of B: [B, H] for the default model, [L*dirs, B, H] otherwise. */
  stateShape(batch: number): number[] {
    return this.#stack ? [this.numLayers * (this.bidirectional ? 2 : 1), batch, this.hiddenSize] : [batch, this.hiddenSize];
  }

  get dims(): Dims {
    return { inputSize: this.inputSize, hiddenSize: this.hiddenSize, outputSize: this.outputSize };
  }

  /** Replaces all parameters (copies). Validates everything before changing anything. */
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

  /** Runs the model over a batch of sequences. */
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

  async forwardAsync(inputs: Tensor, options: ForwardOptions = {}): Promise<ForwardOutput> {
    if (this.#stack) return this.#stack.forwardAsync(inputs, options);
    if (this.backend === 'reference') return this.forward(inputs, options);
    const call = this.prepare(inputs, null, options);
    const out = this.forwardOutputs(call.seq);
    await this.runPinned(call, [out.states, out.logits, out.hT], () => this.engine().forwardAsync(...nativeArgs(this.forwardRequest(call, out))));
    return out;
  }

  /** Loss and exact (or truncated) BPTT gradients; parameters are not changed. */
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

  /** trainStep off the main thread; the tensors it uses are pinned until it settles. */
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
   * Generates a continuation one token at a time, carrying the hidden state; deterministic for a
   * seed. Returns text when a tokenizer is known, else token ids.
   */
  sample(options: RNNSampleOptions): string | Int32Array {
    const tokenizer = options?.tokenizer ?? this.tokenizer;
    if (tokenizer !== undefined) {
      if (options.prime !== undefined && typeof options.prime !== 'string') throw new TypeError('with a tokenizer, prime must be a string');
      return sample(this, { ...options, tokenizer, prime: options.prime });
    }
    if (typeof options?.prime === 'string') throw new TypeError('a string prime needs a tokenizer (set rnn.tokenizer or pass one)');
    return sample(this, { ...options, tokenizer: undefined, prime: options?.prime as ArrayLike<number> | undefined });
  }

  /** Frees the parameters and the native scratch memory now (the model is unusable afterwards). Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    for (const t of Object.values(this.params)) t.checkWritable();
    if (this.#stack) {
      this.#stack.dispose();
    } else {
      this.#engine?.release();
      for (const t of Object.values(this.params)) t.dispose();
    }
    this.#engine = undefined;
    this.#disposed = true;
  }

  get isDisposed(): boolean {
    return this.#disposed;
  }

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

  private async runPinned<R>(call: PreparedCall, outputs: Tensor[], job: () => Promise<R>): Promise<R> {
    const tensors = [...call.tensors, ...outputs];
    for (const t of tensors) t.pin();
    try {
      return await job();
    } catch (err) {
      throw translateNativeError(err);
    } finally {
      for (const t of tensors) t.unpin();
    }
  }
}

function checkReduction(reduction: Reduction | undefined): Reduction {
  const r = reduction ?? 'mean';
  if (r !== 'mean' && r !== 'sum') throw new TypeError(`reduction must be 'mean' or 'sum', got ${describeValue(r)}`);
  return r;
}
