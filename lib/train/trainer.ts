/**
 * The training loop: truncated BPTT in Williams & Peng's sense, TBPTT(k1, k2). Every update takes
 * k1 new steps of each stream and backpropagates through a window of the last k2 steps; only the
 * k1 new steps inject error (the older k2 - k1 steps carry targets of -1), so each prediction is
 * counted once while its gradient reaches up to k2 steps back. k1 = k2 is plain chunked BPTT.
 *
 * The window runs as one rnn.trainStepAsync call (forward, BPTT, clipping and the optimizer update
 * natively, off the main thread) from the hidden state at the window start. The next window
 * starts k1 steps later; its start state comes out of the same call's forward pass (stateAt),
 * computed with the parameters before the update like every state of the window.
 */
import { Reduction, checkFinite, checkFloat32Scalar, describeValue } from '../backend';
import { TensorInUseError } from '../errors';
import { Optimizer, OptimizerKind, OptimizerOptions } from '../optim';
import type { RNN, TrainStepOutput } from '../rnn';
import { Tensor } from '../tensor';
import { BatcherState, StreamBatcher } from './batcher';
import { ClipStats, ClipSummary } from './clipping';
import { Schedule, checkSchedule, learningRate } from './schedules';

export interface TrainerOptions {
  /** An optimizer for this model, or how to make one. Default Adam. */
  optimizer?: Optimizer | OptimizerKind | OptimizerOptions;
  /** A constant rate or a schedule. Default 1e-3. */
  lr?: number | Schedule;
  /** New steps per update. */
  k1: number;
  /** Steps backpropagated through per update (>= k1). Default k1. */
  k2?: number;
  /** Rescale the gradient when its global L2 norm exceeds this. */
  clipNorm?: number;
  /** Clamp each gradient element to [-clipValue, clipValue]. */
  clipValue?: number;
  reduction?: Reduction;
}

export interface StepInfo {
  /** Updates done, this one included. */
  step: number;
  /** Mean cross-entropy (nats) of the k1 new steps' predictions. */
  loss: number;
  /** Global L2 norm of the gradient before clipping. */
  gradNorm: number;
  clipped: boolean;
  lr: number;
  epoch: number;
  /** Tokens predicted in this update: k1 * batch. */
  tokens: number;
  clip: ClipSummary;
}

export interface FitOptions {
  /** Updates to run in this call. */
  steps?: number;
  /** Or: passes over the data, at chunksPerEpoch(k1) updates each. */
  epochs?: number;
  /** Stops after the update in progress when aborted. */
  signal?: AbortSignal;
  /** Called after every update, before the next starts (awaited when it returns a promise). */
  onStep?: (info: StepInfo) => void | Promise<void>;
  /**
   * Calls onCheckpoint after each update that brings the trainer's step count (over the whole
   * run, resumed runs included) to a multiple of this, so a job killed later loses fewer updates.
   */
  checkpointEvery?: number;
  /**
   * Called (and awaited) after onStep when a checkpoint is due. The trainer is between updates, so
   * saveCheckpoint(path, rnn, { trainer }) there captures a state a resumed run continues from
   * bit-identically. A throw stops fit() and is its error.
   */
  onCheckpoint?: (info: StepInfo) => void | Promise<void>;
}

export interface FitResult {
  /** Updates run in this call. */
  steps: number;
  aborted: boolean;
  /** Loss of the last update (NaN when none ran). */
  loss: number;
  tokens: number;
  seconds: number;
}

/** Everything besides parameters and optimizer state that a resumed run needs. */
export interface TrainerState {
  step: number;
  k1: number;
  k2: number;
  data: BatcherState | null;
  clip: ClipSummary;
  /** Hidden state at the start of the next window (rnn.stateShape(batch)); null after a reset. */
  h: Float32Array | null;
  /** The LSTM cell state beside it, else null. */
  c?: Float32Array | null;
  /** Inputs of the steps kept from earlier windows, int32 [historySteps, batch]; their targets are never scored again. */
  historyInputs: Int32Array;
  historySteps: number;
}

function checkCount(name: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${String(v)}`);
  return v;
}

export class Trainer {
  readonly rnn: RNN;
  readonly optimizer: Optimizer;
  readonly schedule: Schedule;
  readonly k1: number;
  readonly k2: number;
  readonly clipNorm: number | undefined;
  readonly clipValue: number | undefined;
  readonly reduction: Reduction;
  #step = 0;
  #clip = new ClipStats();
  #data: StreamBatcher | null = null;
  #h: Tensor | null = null;
  /** LSTM: the cell state carried beside #h. */
  #c: Tensor | null = null;
  #historyInputs = new Int32Array(0);
  #historySteps = 0;
  #running = false;
  /** True while an update is between taking its data and recording its result. */
  #updating = false;

  constructor(rnn: RNN, options: TrainerOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('trainer options must be an object');
    this.rnn = rnn;
    this.k1 = checkCount('k1', options.k1, 1);
    this.k2 = checkCount('k2', options.k2 ?? this.k1, 1);
    if (this.k2 < this.k1) throw new RangeError(`k2 (${this.k2}) must be >= k1 (${this.k1}): the window backpropagated through includes the k1 new steps`);
    if (options.clipNorm !== undefined) checkFloat32Scalar('clipNorm', options.clipNorm, false);
    if (options.clipValue !== undefined) checkFloat32Scalar('clipValue', options.clipValue, false);
    this.clipNorm = options.clipNorm;
    this.clipValue = options.clipValue;
    this.reduction = options.reduction ?? 'mean';
    const lr = options.lr ?? 1e-3;
    this.schedule = checkSchedule(typeof lr === 'number' ? { kind: 'constant', lr } : lr);
    const opt = options.optimizer ?? 'adam';
    this.optimizer = opt instanceof Optimizer ? opt : new Optimizer(rnn, typeof opt === 'string' ? { kind: opt } : opt);
  }

  /** Updates done. */
  get step(): number {
    return this.#step;
  }

  get clipStats(): ClipSummary {
    return this.#clip.summary();
  }

  /** Learning rate of the next update. */
  get lr(): number {
    return learningRate(this.schedule, this.#step);
  }

  async fit(data: StreamBatcher, options: FitOptions = {}): Promise<FitResult> {
    if (!(data instanceof StreamBatcher)) throw new TypeError('fit needs a StreamBatcher');
    if (this.#running) throw new TensorInUseError('this trainer is already running fit(); await it first');
    const { signal, onStep, onCheckpoint } = options;
    const checkpointEvery = options.checkpointEvery === undefined ? undefined : checkCount('checkpointEvery', options.checkpointEvery, 1);
    if ((checkpointEvery === undefined) !== (onCheckpoint === undefined) || (onCheckpoint !== undefined && typeof onCheckpoint !== 'function')) {
      throw new TypeError('checkpointEvery and onCheckpoint (a function) go together');
    }
    let steps: number;
    if (options.steps !== undefined) steps = checkCount('steps', options.steps, 0);
    else if (options.epochs !== undefined) steps = checkCount('epochs', options.epochs, 0) * data.chunksPerEpoch(this.k1);
    else throw new TypeError('fit needs steps or epochs');
    if (data.chunksPerEpoch(this.k1) < 1) throw new RangeError(`k1 = ${this.k1} steps do not fit in streams of ${data.streamLength} steps`);
    this.attach(data);
    this.#running = true;
    const started = performance.now();
    let done = 0;
    let loss = NaN;
    try {
      while (done < steps && !signal?.aborted) {
        const info = await this.update(data);
        done++;
        loss = info.loss;
        if (onStep) await onStep(info);
        if (onCheckpoint && info.step % checkpointEvery! === 0) await onCheckpoint(info);
        // A macrotask turn per step lets signals and timers run even when a step completes
        // synchronously (the reference backend), so an abort is always seen.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.#running = false;
    }
    return { steps: done, aborted: done < steps, loss, tokens: done * this.k1 * data.batch, seconds: (performance.now() - started) / 1000 };
  }

  /** Snapshot for a checkpoint (copies): after fit(), or between updates (in onStep, onCheckpoint). */
  state(): TrainerState {
    if (this.#updating) throw new TensorInUseError('a training update is running; take the state between updates (onStep, onCheckpoint) or after fit()');
    return {
      step: this.#step,
      k1: this.k1,
      k2: this.k2,
      data: this.#data?.state() ?? null,
      clip: this.#clip.summary(),
      h: this.#h ? (this.#h.toArray() as Float32Array) : null,
      c: this.#c ? (this.#c.toArray() as Float32Array) : null,
      historyInputs: this.#historyInputs.slice(),
      historySteps: this.#historySteps,
    };
  }

  /** Restores a snapshot and moves `data` to the position it records. */
  loadState(state: TrainerState, data: StreamBatcher): void {
    if (this.#running) throw new TensorInUseError('cannot load state while fit() runs');
    if (state.k1 !== this.k1 || state.k2 !== this.k2) throw new RangeError(`saved state is for k1=${state.k1}, k2=${state.k2}, this trainer uses k1=${this.k1}, k2=${this.k2}`);
    const B = data.batch;
    const shape = this.rnn.stateShape(B);
    const size = shape.reduce((a, b) => a * b, 1);
    checkCount('step', state.step, 0);
    const m = checkCount('historySteps', state.historySteps, 0);
    if (m > this.k2 - this.k1) throw new RangeError(`${m} history steps exceed k2 - k1 = ${this.k2 - this.k1}`);
    if (state.historyInputs.length !== m * B) throw new RangeError(`history must hold ${m} steps of ${B} streams`);
    const lstm = this.rnn.cell === 'lstm';
    const c = state.c ?? null;
    for (const [name, v] of [['h', state.h], ['c', c]] as const) {
      if (v === null) continue;
      if (!(v instanceof Float32Array) || v.length !== size) throw new RangeError(`carried state ${name} must be a Float32Array [${shape.join(', ')}], got ${describeValue(v)}`);
      checkFinite(`carried state ${name}`, v);
    }
    if (lstm && (state.h === null) !== (c === null)) throw new RangeError('an LSTM carries h and c together: the saved state has one without the other');
    if (!lstm && c !== null) throw new RangeError(`a '${this.rnn.cell}' model carries no cell state c`);
    if (state.data) data.restore(state.data);
    this.#h?.dispose();
    this.#c?.dispose();
    this.#h = state.h ? Tensor.from(state.h, shape) : null;
    this.#c = c ? Tensor.from(c, shape) : null;
    this.#historyInputs = state.historyInputs.slice();
    this.#historySteps = m;
    this.#step = state.step;
    this.#clip = ClipStats.fromSummary(state.clip);
    this.#data = data;
  }

  /** Frees the carried state (the optimizer belongs to the caller when it was passed in). */
  dispose(): void {
    this.resetCarry();
  }

  /** Carried state belongs to one data stream; another stream starts from scratch. */
  private attach(data: StreamBatcher): void {
    if (this.#data === data) return;
    this.resetCarry();
    this.#data = data;
  }

  private resetCarry(): void {
    this.#h?.dispose();
    this.#c?.dispose();
    this.#h = null;
    this.#c = null;
    this.#historyInputs = new Int32Array(0);
    this.#historySteps = 0;
  }

  private async update(data: StreamBatcher): Promise<StepInfo> {
    this.#updating = true;
    try {
      return await this.runUpdate(data);
    } finally {
      this.#updating = false;
    }
  }

  private async runUpdate(data: StreamBatcher): Promise<StepInfo> {
    const B = data.batch;
    const before = data.state();
    const chunk = data.next(this.k1);
    if (chunk.reset) this.resetCarry();
    const m = this.#historySteps;
    const T = m + this.k1;
    const inputs = new Int32Array(T * B);
    inputs.set(this.#historyInputs);
    inputs.set(chunk.inputs, m * B);
    const targets = new Int32Array(T * B).fill(-1, 0, m * B);
    targets.set(chunk.targets, m * B);
    const keep = Math.min(this.k2 - this.k1, T);
    const advance = T - keep; // steps from this window's start to the next one's

    const lr = learningRate(this.schedule, this.#step);
    const x = Tensor.from(inputs, [T, B]);
    const y = Tensor.from(targets, [T, B]);
    let result: TrainStepOutput;
    try {
      result = await this.rnn.trainStepAsync(x, y, {
        lr,
        optimizer: this.optimizer,
        reduction: this.reduction,
        ...(this.#h ? { h0: this.#h } : {}),
        ...(this.#c ? { c0: this.#c } : {}),
        // The state where the next window starts, from the same forward pass (before the update).
        // A bidirectional model has no state to carry forward: each window starts from zeros.
        ...(advance > 0 && advance < T && !this.rnn.bidirectional ? { stateAt: advance - 1 } : {}),
        ...(this.clipNorm !== undefined ? { clipNorm: this.clipNorm } : {}),
        ...(this.clipValue !== undefined ? { clipValue: this.clipValue } : {}),
      });
    } catch (err) {
      data.restore(before);
      throw err;
    } finally {
      x.dispose();
      y.dispose();
    }

    const nextH = advance === T ? result.hT : result.hAt;
    const nextC = advance === T ? result.cT : result.cAt;
    if (nextH !== result.hT) result.hT.dispose();
    if (nextC !== result.cT) result.cT?.dispose();
    if (this.rnn.bidirectional) {
      result.hT.dispose();
      result.cT?.dispose();
    } else if (advance > 0) {
      this.#h?.dispose();
      this.#c?.dispose();
      this.#h = nextH ?? null;
      this.#c = nextC ?? null;
    }
    this.#historyInputs = inputs.slice(advance * B);
    this.#historySteps = keep;
    this.#step++;
    this.#clip.record(result.gradNorm, result.clipped);
    return {
      step: this.#step,
      loss: result.loss,
      gradNorm: result.gradNorm,
      clipped: result.clipped,
      lr,
      epoch: data.epoch,
      tokens: this.k1 * B,
      clip: this.#clip.summary(),
    };
  }
}
