/**
 * The model behind `new RNN({ cell, numLayers, bidirectional, dropout, ... })` for every
 * configuration but the default one-layer tanh RNN: the recurrent engine's stack with a per-step
 * softmax head (lib/engine/model.ts), its parameters as native tensors under PyTorch's state_dict
 * names (`rnn.weight_ih_l0`, ..., `fc.weight`, `fc.bias`), on the native or the reference backend.
 *
 * States are [L*dirs, B, H] (index l*dirs + d, as PyTorch); an LSTM carries c beside h.
 */
import { checkFloat32Scalar, describeValue } from './backend';
import { LayerBatch } from './engine/spec';
import { ModelCallOptions, NativeModel, NormalizedModelSpec, checkModelCall, checkModelTargets, modelParameters, referenceModelForward, referenceModelLossAndGradients } from './engine/model';
import { hasCellState, numDirections } from './engine/spec';
import { translateNativeError } from './backends/native';
import { DTypeError, ShapeError, TensorInUseError } from './errors';
import { Optimizer, applyReferenceStep } from './optim';
import type { ForwardOptions, ForwardOutput, LossAndGradientsOptions, LossAndGradientsOutput, TrainStepOptions, TrainStepOutput } from './rnn';
import { Rng } from './rng';
import { Tensor } from './tensor';

interface PreparedStackCall {
  batch: LayerBatch;
  targets: Int32Array | null;
  tensors: Tensor[];
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

  /** Frees the parameters and the native scratch memory now. */
  dispose(): void {
    this.checkIdle();
    for (const t of Object.values(this.params)) t.dispose();
    this.#native?.release();
  }

  // --- internals ---

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
      logits: Tensor.zeros([T, B, this.spec.outputSize]),
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
    let t: Int32Array | null = null;
    if (targets !== null) {
      if (!(targets instanceof Tensor) || targets.dtype !== 'int32') throw new DTypeError(`targets must be an int32 Tensor [T, B], got ${describeValue(targets)}`);
      if (targets.shape.length !== 2 || targets.shape[0] !== batch.steps || targets.shape[1] !== batch.batch) {
        throw new ShapeError(`targets must have shape [${batch.steps}, ${batch.batch}] like the inputs, got [${targets.shape.join(', ')}]`);
      }
      tensors.push(targets);
      t = targets.data() as Int32Array;
    }
    return { batch, targets: t, tensors };
  }

  private async pinned<R>(tensors: Tensor[], job: () => Promise<R>): Promise<R> {
    this.checkIdle();
    for (const t of tensors) t.pin();
    try {
      return await job();
    } catch (err) {
      throw translateNativeError(err);
    } finally {
      for (const t of tensors) t.unpin();
    }
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
