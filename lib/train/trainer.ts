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
 *
 * The same trainer runs whole sequences (forecast windows, labelled sequences, generated problems)
 * from an EpochBatcher: each update is one trainStepAsync over a padded batch with its lengths,
 * exact BPTT or truncated to `truncate` steps, nothing carried between batches. Both kinds share
 * the schedule, clipping, optimizer, abort, checkpoint and validation/early-stopping logic, and
 * the telemetry records.
 */
import { Reduction, checkFinite, checkFloat32Scalar, describeValue } from '../backend';
import { TensorInUseError } from '../errors';
import { Optimizer, OptimizerKind, OptimizerOptions } from '../optim';
import type { RNN, TrainStepOptions, TrainStepOutput } from '../rnn';
import { Tensor } from '../tensor';
import { BatcherState, StreamBatcher } from './batcher';
import { ClipStats, ClipSummary } from './clipping';
import { EpochBatcher, SequenceBatch } from './epochs';
import { Schedule, checkSchedule, learningRate } from './schedules';
import { TelemetryLog, TelemetryWriter, clipScale, modelSummary } from './telemetry';
import { diagnoseAsync } from '../diagnostics/diagnose';

/**
 * How a {@link Trainer} trains: TBPTT(k1, k2), the optimizer, the learning rate and clipping.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, Trainer, type TrainerOptions } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 65, hiddenSize: 128, outputSize: 65, seed: 1 });
 * const options: TrainerOptions = {
 *   k1: 32, k2: 64, // each update: 32 new steps, backpropagated through the last 64
 *   optimizer: { kind: 'adam', beta2: 0.99 },
 *   lr: { kind: 'cosine', lr: 2e-3, warmup: 100, total: 5000 },
 *   clipNorm: 5,
 * };
 * const trainer = new Trainer(rnn, options);
 * assert.equal(trainer.lr, 2e-3 / 100); // the first warm-up step
 * ```
 */
export interface TrainerOptions {
  /** An optimizer for this model, or how to make one. Default Adam. */
  optimizer?: Optimizer | OptimizerKind | OptimizerOptions;
  /** A constant rate or a schedule. Default 1e-3. */
  lr?: number | Schedule;
  /** TBPTT over a {@link StreamBatcher}: new steps per update (required for stream data). */
  k1?: number;
  /** Steps backpropagated through per update (>= k1). Default k1. */
  k2?: number;
  /**
   * Whole sequences (an {@link EpochBatcher}): backpropagate each step's loss through at most
   * this many steps. Default: exact BPTT through the whole sequence.
   */
  truncate?: number;
  /** Rescale the gradient when its global L2 norm exceeds this. */
  clipNorm?: number;
  /** Clamp each gradient element to [-clipValue, clipValue]. */
  clipValue?: number;
  /** Default 'mean'. */
  reduction?: Reduction;
  /**
   * Training telemetry (JSON lines, see {@link TelemetryRecord}): a file path (written from the
   * start, appended to when the trainer resumes a run) or a writer.
   */
  log?: string | TelemetryWriter;
  /**
   * With `log`: a `profile` record (per-lag gradient norms, spectral radii: `diagnose()` on the
   * update's batch) every this many updates. Default: none.
   */
  logEvery?: number;
  /** What the run's first telemetry record names as its task (default 'lm' for streams, else 'sequences'). */
  task?: string;
  /** The seed the run record names (default rnn.seed). */
  seed?: number;
}

/**
 * What a {@link Trainer} reports after each update (to FitOptions.onStep and onCheckpoint).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { CharTokenizer, RNN, StreamBatcher, Trainer, type StepInfo } from 'bptt';
 *
 * const text = 'hello world\n'.repeat(20);
 * const tokenizer = CharTokenizer.fromText(text);
 * const rnn = new RNN({ inputSize: tokenizer.vocabSize, hiddenSize: 16, outputSize: tokenizer.vocabSize, seed: 1 });
 * const data = new StreamBatcher(tokenizer.encode(text), 4);
 * const log: StepInfo[] = [];
 * await new Trainer(rnn, { k1: 8 }).fit(data, { steps: 3, onStep: (info) => void log.push(info) });
 * assert.deepEqual(log.map((s) => [s.step, s.tokens]), [[1, 32], [2, 32], [3, 32]]); // k1 * B tokens each
 * console.log(log.map((s) => `step ${s.step}: loss ${s.loss.toFixed(3)}, |g| ${s.gradNorm.toFixed(2)}`));
 * ```
 */
export interface StepInfo {
  /** Updates done, this one included. */
  step: number;
  /** Mean cross-entropy (nats) of the k1 new steps' predictions. */
  loss: number;
  /** Global L2 norm of the gradient before clipping. */
  gradNorm: number;
  /** Whether clipping changed the gradient. */
  clipped: boolean;
  /** The learning rate this update used. */
  lr: number;
  /** Completed passes over the data. */
  epoch: number;
  /** Steps read in this update: k1 * batch for streams, the valid steps of the batch for whole sequences. */
  tokens: number;
  /** Clipping over the run so far. */
  clip: ClipSummary;
}

/**
 * How long {@link Trainer.fit} runs and what it calls back: steps or epochs, an abort signal,
 * a per-update callback and periodic checkpoints.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { CharTokenizer, RNN, StreamBatcher, Trainer, type FitOptions } from 'bptt';
 *
 * const text = 'hello world\n'.repeat(20);
 * const tokenizer = CharTokenizer.fromText(text);
 * const rnn = new RNN({ inputSize: tokenizer.vocabSize, hiddenSize: 16, outputSize: tokenizer.vocabSize, seed: 1 });
 * const data = new StreamBatcher(tokenizer.encode(text), 4);
 * const trainer = new Trainer(rnn, { k1: 8 });
 * const stop = new AbortController();
 * const options: FitOptions = { steps: 1000, signal: stop.signal, onStep: (info) => { if (info.step === 5) stop.abort(); } };
 * const result = await trainer.fit(data, options);
 * assert.deepEqual([result.steps, result.aborted], [5, true]);
 * ```
 */
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
  /**
   * Scores the model on held-out data (awaited), after every epoch or every `validateEvery`
   * updates: `metric` decides improvement (lower is better), `metrics` go to the telemetry.
   */
  validate?: (info: StepInfo) => Validation | Promise<Validation>;
  /** Updates between validations (default: one epoch). */
  validateEvery?: number;
  /** Early stopping: stop after this many validations in a row without a better metric. */
  patience?: number;
  /** Called (and awaited) after a validation that improves on the best one so far: save the best model here. */
  onImprove?: (validation: Validation, info: StepInfo) => void | Promise<void>;
}

/**
 * What a {@link FitOptions.validate} callback returns.
 *
 * @example
 * ```ts
 * import type { Validation } from 'bptt';
 *
 * const v: Validation = { metric: 0.42, metrics: { mae: 0.42, rmse: 0.55 } }; // lower metric is better
 * console.log(v.metrics);
 * ```
 */
export interface Validation {
  /** The number early stopping compares: lower is better. */
  metric: number;
  /** Everything measured, for the log. */
  metrics: Record<string, number>;
}

/**
 * What {@link Trainer.fit} returns.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { CharTokenizer, RNN, StreamBatcher, Trainer, type FitResult } from 'bptt';
 *
 * const text = 'hello world\n'.repeat(20);
 * const tokenizer = CharTokenizer.fromText(text);
 * const rnn = new RNN({ inputSize: tokenizer.vocabSize, hiddenSize: 16, outputSize: tokenizer.vocabSize, seed: 1 });
 * const data = new StreamBatcher(tokenizer.encode(text), 4);
 * const result: FitResult = await new Trainer(rnn, { k1: 8 }).fit(data, { epochs: 1 });
 * assert.equal(result.steps, data.chunksPerEpoch(8));
 * assert.equal(result.tokens, result.steps * 8 * 4); // k1 * B per update
 * ```
 */
export interface FitResult {
  /** Updates run in this call. */
  steps: number;
  /** Whether the signal stopped it before the requested steps. */
  aborted: boolean;
  /** Whether early stopping ended it (patience validations without improvement). */
  stoppedEarly: boolean;
  /** The best validation metric so far (over the whole run), or null before any validation. */
  best: number | null;
  /** Loss of the last update (NaN when none ran). */
  loss: number;
  /** Tokens predicted in this call. */
  tokens: number;
  /** Wall-clock time of this call. */
  seconds: number;
}

/**
 * Everything besides parameters and optimizer state that a resumed run needs: the step count, the
 * data position, the clipping statistics, the carried state and the inputs kept for the next
 * window. {@link Trainer.state} takes it; checkpoints save it.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { CharTokenizer, RNN, StreamBatcher, Trainer, type TrainerState } from 'bptt';
 *
 * const text = 'hello world\n'.repeat(20);
 * const tokenizer = CharTokenizer.fromText(text);
 * const rnn = new RNN({ inputSize: tokenizer.vocabSize, hiddenSize: 16, outputSize: tokenizer.vocabSize, seed: 1 });
 * const data = new StreamBatcher(tokenizer.encode(text), 4);
 * const trainer = new Trainer(rnn, { k1: 4, k2: 6 });
 * await trainer.fit(data, { steps: 3 });
 * const state: TrainerState = trainer.state();
 * assert.equal(state.step, 3);
 * assert.equal(state.historySteps, 2); // k2 - k1 steps kept for the next window
 * assert.equal(state.h!.length, 4 * 16); // rnn.stateShape(B)
 * ```
 */
export interface TrainerState {
  /** Updates done. */
  step: number;
  /** The trainer's k1 (a state loads only into a trainer with the same k1 and k2); 0 for whole sequences. */
  k1: number;
  /** The trainer's k2. */
  k2: number;
  /** Where the data is (null before the first fit()). */
  data: BatcherState | null;
  /** Clipping so far. */
  clip: ClipSummary;
  /** Hidden state at the start of the next window (rnn.stateShape(batch)); null after a reset. */
  h: Float32Array | null;
  /** The LSTM cell state beside it, else null. */
  c?: Float32Array | null;
  /** Inputs of the steps kept from earlier windows, int32 [historySteps, batch]; their targets are never scored again. */
  historyInputs: Int32Array;
  /** Steps kept from earlier windows, at most k2 - k1. */
  historySteps: number;
  /** The best validation metric so far, or null (absent in states of runs without validation). */
  best?: number | null;
  /** Validations since the best one (early stopping's count). */
  stale?: number;
}

function checkCount(name: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${String(v)}`);
  return v;
}

/**
 * The training loop: truncated BPTT as Williams and Peng's TBPTT(k1, k2) over the parallel
 * streams of a {@link StreamBatcher}. Every update takes k1 new steps of each stream and
 * backpropagates through a window of the last k2 steps, starting from the state carried over
 * from the previous window; each prediction is counted once. Each update is one
 * `rnn.trainStepAsync` (off the main thread on the native backend).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { CharTokenizer, RNN, StreamBatcher, Trainer, evaluate } from 'bptt';
 *
 * const text = 'hello world\n'.repeat(20);
 * const tokenizer = CharTokenizer.fromText(text);
 * const rnn = new RNN({ inputSize: tokenizer.vocabSize, hiddenSize: 16, outputSize: tokenizer.vocabSize, seed: 1 });
 * const data = new StreamBatcher(tokenizer.encode(text), 4);
 * const trainer = new Trainer(rnn, { k1: 8, k2: 16, lr: 1e-2, clipNorm: 5 });
 * let first = NaN;
 * const result = await trainer.fit(data, { steps: 40, onStep: (info) => void (first = Number.isNaN(first) ? info.loss : first) });
 * assert.ok(result.loss < first / 2);
 * console.log(evaluate(rnn, tokenizer.encode(text)).perplexity);
 * ```
 */
export class Trainer {
  /** The model it trains. */
  readonly rnn: RNN;
  /** The optimizer of the updates (made from the options, or the one passed in). */
  readonly optimizer: Optimizer;
  /** The learning-rate schedule (a constant rate is a 'constant' schedule). */
  readonly schedule: Schedule;
  /** New steps per update of TBPTT over streams; 0 when none was given (whole sequences only). */
  readonly k1: number;
  /** Steps backpropagated through per update of TBPTT over streams (0 with k1). */
  readonly k2: number;
  /** Whole sequences: the truncation of each step's gradient, or undefined for exact BPTT. */
  readonly truncate: number | undefined;
  /** Global-norm clipping bound, if any. */
  readonly clipNorm: number | undefined;
  /** Element clipping bound, if any. */
  readonly clipValue: number | undefined;
  /** How the loss is reduced. */
  readonly reduction: Reduction;
  #step = 0;
  #clip = new ClipStats();
  #data: StreamBatcher | EpochBatcher | null = null;
  #best: number | null = null;
  #stale = 0;
  #log: TelemetryWriter | null = null;
  #logPath: string | null = null;
  #task: string | undefined;
  #seed: number;
  #wroteRun = false;
  #logEvery: number | undefined;
  #h: Tensor | null = null;
  /** LSTM: the cell state carried beside #h. */
  #c: Tensor | null = null;
  #historyInputs = new Int32Array(0);
  #historySteps = 0;
  #running = false;
  /** True while an update is between taking its data and recording its result. */
  #updating = false;

  /**
   * A trainer for `rnn`, at step 0.
   *
   * @throws TypeError when options is not an object (or the optimizer options are invalid);
   * RangeError for k1, k2 that are not integers >= 1, k2 < k1, an invalid clip or schedule.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { Optimizer, RNN, Trainer } from 'bptt';
   *
   * const rnn = new RNN({ inputSize: 10, hiddenSize: 16, outputSize: 10, cell: 'lstm', seed: 1 });
   * const trainer = new Trainer(rnn, { k1: 16, optimizer: new Optimizer(rnn, { kind: 'sgd' }), lr: 0.5 });
   * assert.equal(trainer.k2, 16); // plain chunked BPTT
   * assert.throws(() => new Trainer(rnn, { k1: 16, k2: 8 }), RangeError);
   * ```
   */
  constructor(rnn: RNN, options: TrainerOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('trainer options must be an object');
    this.rnn = rnn;
    if (options.k1 === undefined && options.k2 !== undefined) throw new TypeError('k2 needs k1');
    this.k1 = options.k1 === undefined ? 0 : checkCount('k1', options.k1, 1);
    this.k2 = options.k1 === undefined ? 0 : checkCount('k2', options.k2 ?? this.k1, 1);
    if (this.k2 < this.k1) throw new RangeError(`k2 (${this.k2}) must be >= k1 (${this.k1}): the window backpropagated through includes the k1 new steps`);
    this.truncate = options.truncate === undefined ? undefined : checkCount('truncate', options.truncate, 1);
    if (options.log !== undefined) {
      if (typeof options.log === 'string') this.#logPath = options.log;
      else if (typeof options.log === 'object' && options.log !== null && typeof options.log.write === 'function') this.#log = options.log;
      else throw new TypeError('log must be a file path or a TelemetryWriter');
    }
    this.#logEvery = options.logEvery === undefined ? undefined : checkCount('logEvery', options.logEvery, 1);
    this.#task = options.task;
    this.#seed = options.seed ?? rnn.seed;
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

  /**
   * Updates done (over the whole run, resumed runs included).
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { CharTokenizer, RNN, StreamBatcher, Trainer } from 'bptt';
   *
   * const text = 'hello world\n'.repeat(20);
   * const tokenizer = CharTokenizer.fromText(text);
   * const rnn = new RNN({ inputSize: tokenizer.vocabSize, hiddenSize: 16, outputSize: tokenizer.vocabSize, seed: 1 });
   * const data = new StreamBatcher(tokenizer.encode(text), 4);
   * const trainer = new Trainer(rnn, { k1: 8 });
   * await trainer.fit(data, { steps: 2 });
   * await trainer.fit(data, { steps: 3 }); // continues where the first call stopped
   * assert.equal(trainer.step, 5);
   * ```
   */
  get step(): number {
    return this.#step;
  }

  /**
   * Clipping over the run so far.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { CharTokenizer, RNN, StreamBatcher, Trainer } from 'bptt';
   *
   * const text = 'hello world\n'.repeat(20);
   * const tokenizer = CharTokenizer.fromText(text);
   * const rnn = new RNN({ inputSize: tokenizer.vocabSize, hiddenSize: 16, outputSize: tokenizer.vocabSize, seed: 1 });
   * const data = new StreamBatcher(tokenizer.encode(text), 4);
   * const trainer = new Trainer(rnn, { k1: 8, clipNorm: 1e-3 });
   * await trainer.fit(data, { steps: 4 });
   * assert.equal(trainer.clipStats.fractionClipped, 1); // a tiny bound clips every update
   * ```
   */
  get clipStats(): ClipSummary {
    return this.#clip.summary();
  }

  /**
   * Learning rate of the next update.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { RNN, Trainer } from 'bptt';
   *
   * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3 });
   * const trainer = new Trainer(rnn, { k1: 8, lr: { kind: 'cosine', lr: 1e-2, warmup: 10, total: 100 } });
   * assert.equal(trainer.lr, 1e-3); // first warm-up step: lr * 1/10
   * ```
   */
  get lr(): number {
    return learningRate(this.schedule, this.#step);
  }

  /**
   * Runs `steps` updates (or `epochs` passes) over `data`, one window at a time. The state carried
   * between windows belongs to `data`: fitting another batcher starts from zero states.
   *
   * @throws TypeError without steps or epochs, for data that is not a StreamBatcher, or
   * checkpointEvery without onCheckpoint (or the reverse); RangeError when k1 does not fit the
   * streams; TensorInUseError while another fit() of this trainer runs; whatever an update
   * throws (e.g. NonFiniteError: that update changed nothing and the data did not advance) or
   * a callback throws.
   *
   * @example
   * ```ts
   * import * as fs from 'node:fs';
   * import * as os from 'node:os';
   * import * as path from 'node:path';
   * import { CharTokenizer, RNN, StreamBatcher, Trainer, saveCheckpoint } from 'bptt';
   *
   * const text = 'hello world\n'.repeat(20);
   * const tokenizer = CharTokenizer.fromText(text);
   * const rnn = new RNN({ inputSize: tokenizer.vocabSize, hiddenSize: 16, outputSize: tokenizer.vocabSize, seed: 1 });
   * const data = new StreamBatcher(tokenizer.encode(text), 4);
   * const trainer = new Trainer(rnn, { k1: 8, k2: 12 });
   * const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-'));
   * try {
   *   const file = path.join(dir, 'model.safetensors');
   *   await trainer.fit(data, {
   *     steps: 10,
   *     checkpointEvery: 5, // a killed job loses at most 5 updates
   *     onCheckpoint: () => saveCheckpoint(file, rnn, { trainer, tokenizer }),
   *   });
   *   console.log(fs.statSync(file).size);
   * } finally {
   *   fs.rmSync(dir, { recursive: true, force: true });
   * }
   * ```
   */
  async fit(data: StreamBatcher | EpochBatcher, options: FitOptions = {}): Promise<FitResult> {
    const stream = data instanceof StreamBatcher;
    if (!stream && !(data instanceof EpochBatcher)) throw new TypeError('fit needs a StreamBatcher or an EpochBatcher');
    if (stream && this.k1 === 0) throw new TypeError('TBPTT over a StreamBatcher needs k1 in the trainer options');
    if (this.#running) throw new TensorInUseError('this trainer is already running fit(); await it first');
    const { signal, onStep, onCheckpoint, validate, onImprove } = options;
    const checkpointEvery = options.checkpointEvery === undefined ? undefined : checkCount('checkpointEvery', options.checkpointEvery, 1);
    if ((checkpointEvery === undefined) !== (onCheckpoint === undefined) || (onCheckpoint !== undefined && typeof onCheckpoint !== 'function')) {
      throw new TypeError('checkpointEvery and onCheckpoint (a function) go together');
    }
    if (validate !== undefined && typeof validate !== 'function') throw new TypeError('validate must be a function');
    if ((options.patience !== undefined || options.validateEvery !== undefined || onImprove !== undefined) && validate === undefined) {
      throw new TypeError('patience, validateEvery and onImprove need validate');
    }
    const patience = options.patience === undefined ? undefined : checkCount('patience', options.patience, 1);
    const perEpoch = stream ? data.chunksPerEpoch(this.k1) : data.batchesPerEpoch;
    if (perEpoch < 1) throw new RangeError(`k1 = ${this.k1} steps do not fit in streams of ${(data as StreamBatcher).streamLength} steps`);
    const validateEvery = options.validateEvery === undefined ? perEpoch : checkCount('validateEvery', options.validateEvery, 1);
    let steps: number;
    if (options.steps !== undefined) steps = checkCount('steps', options.steps, 0);
    else if (options.epochs !== undefined) steps = checkCount('epochs', options.epochs, 0) * perEpoch;
    else throw new TypeError('fit needs steps or epochs');
    this.attach(data);
    if (this.#logEvery !== undefined && (this.#log !== null || this.#logPath !== null)) await this.checkProfile(data);
    this.openLog(stream);
    this.#running = true;
    const started = performance.now();
    let done = 0;
    let loss = NaN;
    let tokens = 0;
    let stoppedEarly = false;
    try {
      while (done < steps && !signal?.aborted && !stoppedEarly) {
        const info = await this.update(data);
        done++;
        loss = info.loss;
        tokens += info.tokens;
        if (onStep) await onStep(info);
        if (validate && info.step % validateEvery === 0) {
          const v = await validate(info);
          this.#log?.write({ type: 'validation', step: info.step, epoch: info.step / perEpoch, metrics: v.metrics });
          if (this.#best === null || v.metric < this.#best) {
            this.#best = v.metric;
            this.#stale = 0;
            if (onImprove) await onImprove(v, info);
          } else {
            this.#stale++;
            if (patience !== undefined && this.#stale >= patience) stoppedEarly = true;
          }
        }
        if (onCheckpoint && info.step % checkpointEvery! === 0) await onCheckpoint(info);
        // A macrotask turn per step lets signals and timers run even when a step completes
        // synchronously (the reference backend), so an abort is always seen.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.#running = false;
    }
    return { steps: done, aborted: done < steps && !stoppedEarly, stoppedEarly, best: this.#best, loss, tokens, seconds: (performance.now() - started) / 1000 };
  }

  /**
   * Snapshot for a checkpoint (copies): after fit(), or between updates (in onStep, onCheckpoint).
   *
   * @throws TensorInUseError while an update runs.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { CharTokenizer, RNN, StreamBatcher, Trainer } from 'bptt';
   *
   * const text = 'hello world\n'.repeat(20);
   * const tokenizer = CharTokenizer.fromText(text);
   * const rnn = new RNN({ inputSize: tokenizer.vocabSize, hiddenSize: 16, outputSize: tokenizer.vocabSize, seed: 1 });
   * const data = new StreamBatcher(tokenizer.encode(text), 4);
   * const trainer = new Trainer(rnn, { k1: 8 });
   * await trainer.fit(data, { steps: 2 });
   * assert.deepEqual(trainer.state().data, data.state());
   * ```
   */
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
      best: this.#best,
      stale: this.#stale,
    };
  }

  /**
   * Restores a snapshot and moves `data` to the position it records. With the parameters and
   * optimizer state of the same moment (a checkpoint holds all three), the run continues
   * bit-identically.
   *
   * @throws RangeError for a state of other k1/k2, batch or model (carried state of the wrong
   * size, too many history steps); NonFiniteError for a non-finite carried state;
   * TensorInUseError while fit() runs.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { CharTokenizer, Optimizer, RNN, StreamBatcher, Trainer } from 'bptt';
   *
   * const text = 'hello world\n'.repeat(20);
   * const tokenizer = CharTokenizer.fromText(text);
   * const options = { inputSize: tokenizer.vocabSize, hiddenSize: 16, outputSize: tokenizer.vocabSize, seed: 1 };
   * const a = new RNN(options);
   * const trainerA = new Trainer(a, { k1: 8 });
   * const dataA = new StreamBatcher(tokenizer.encode(text), 4);
   * await trainerA.fit(dataA, { steps: 3 });
   * // A copy of everything at step 3: parameters, optimizer state, trainer state.
   * const b = new RNN(options);
   * b.setParams(a.params);
   * const optimizer = new Optimizer(b, { kind: 'adam' });
   * optimizer.loadState(trainerA.optimizer.state(), trainerA.optimizer.step);
   * const trainerB = new Trainer(b, { k1: 8, optimizer });
   * const dataB = new StreamBatcher(tokenizer.encode(text), 4);
   * trainerB.loadState(trainerA.state(), dataB);
   * const [ra, rb] = [await trainerA.fit(dataA, { steps: 2 }), await trainerB.fit(dataB, { steps: 2 })];
   * assert.equal(rb.loss, ra.loss); // bit-identical continuation
   * ```
   */
  loadState(state: TrainerState, data: StreamBatcher | EpochBatcher): void {
    if (this.#running) throw new TensorInUseError('cannot load state while fit() runs');
    if (state.k1 !== this.k1 || state.k2 !== this.k2) throw new RangeError(`saved state is for k1=${state.k1}, k2=${state.k2}, this trainer uses k1=${this.k1}, k2=${this.k2}`);
    if (data instanceof EpochBatcher && (state.h || state.historySteps > 0)) throw new RangeError('a state with carried stream state does not load for whole-sequence data');
    const B = data instanceof StreamBatcher ? data.batch : 1;
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
    const best = state.best ?? null;
    if (best !== null && (typeof best !== 'number' || Number.isNaN(best))) throw new RangeError(`best must be a number or null, got ${describeValue(best)}`);
    const stale = checkCount('stale', state.stale ?? 0, 0);
    this.#step = state.step;
    this.#clip = ClipStats.fromSummary(state.clip);
    this.#best = best;
    this.#stale = stale;
    this.#data = data;
  }

  /**
   * Frees the carried state (the optimizer belongs to the caller when it was passed in).
   *
   * @example
   * ```ts
   * import { CharTokenizer, RNN, StreamBatcher, Trainer } from 'bptt';
   *
   * const text = 'hello world\n'.repeat(20);
   * const tokenizer = CharTokenizer.fromText(text);
   * const rnn = new RNN({ inputSize: tokenizer.vocabSize, hiddenSize: 16, outputSize: tokenizer.vocabSize, seed: 1 });
   * const data = new StreamBatcher(tokenizer.encode(text), 4);
   * const trainer = new Trainer(rnn, { k1: 8 });
   * await trainer.fit(data, { steps: 1 });
   * trainer.dispose();
   * trainer.optimizer.dispose(); // it made this one
   * ```
   */
  dispose(): void {
    this.resetCarry();
    if (this.#logPath !== null && this.#log instanceof TelemetryLog) this.#log.close();
  }

  /** Opens the telemetry file at the first fit() (appending when the run resumed) and writes the run record. */
  private openLog(stream: boolean): void {
    if (this.#wroteRun) return;
    if (this.#log === null) {
      if (this.#logPath === null) return;
      this.#log = new TelemetryLog(this.#logPath, { append: this.#step > 0 });
    }
    this.#wroteRun = true;
    const optimizer = { kind: this.optimizer.kind, ...this.optimizer.hyper };
    this.#log.write({
      type: 'run',
      task: this.#task ?? (stream ? 'lm' : 'sequences'),
      model: modelSummary(this.rnn),
      truncate: stream ? this.k2 : (this.truncate ?? null),
      k1: stream ? this.k1 : null,
      k2: stream ? this.k2 : null,
      optimizer,
      seed: this.#seed,
      step: this.#step,
      lr: this.schedule,
      clipNorm: this.clipNorm ?? null,
      clipValue: this.clipValue ?? null,
    });
  }

  /** Carried state belongs to one data stream; another stream starts from scratch. */
  private attach(data: StreamBatcher | EpochBatcher): void {
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

  private async update(data: StreamBatcher | EpochBatcher): Promise<StepInfo> {
    this.#updating = true;
    try {
      const { info, batch } = data instanceof StreamBatcher ? await this.runUpdate(data) : await this.runSequenceUpdate(data);
      if (this.#log && this.#logEvery !== undefined && info.step % this.#logEvery === 0) await this.profile(info.step, batch);
      this.#log?.write({
        type: 'update',
        step: info.step,
        loss: info.loss,
        gradNorm: info.gradNorm,
        clipped: info.clipped,
        clipScale: clipScale(info.gradNorm, info.clipped, this.clipNorm),
        lr: info.lr,
      });
      return info;
    } finally {
      this.#updating = false;
    }
  }

  /**
   * Runs one profile on the next batch without consuming it, so a model diagnose() cannot profile
   * fails before training rather than in the middle of it.
   */
  private async checkProfile(data: StreamBatcher | EpochBatcher): Promise<void> {
    const before = data.state();
    let batch: SequenceBatch;
    if (data instanceof StreamBatcher) {
      const chunk = data.next(this.k1);
      batch = { inputs: { data: chunk.inputs, shape: [this.k1, data.batch] }, targets: { data: chunk.targets, shape: [this.k1, data.batch] } };
    } else {
      batch = data.next();
    }
    data.restore(before);
    try {
      await this.profile(0, batch, { write: () => undefined });
    } catch (err) {
      throw new TypeError(`profile records (logEvery) need diagnose(), which cannot profile this model: ${(err as Error).message}`);
    }
  }

  /**
   * A profile record: the per-lag gradient norms and spectral radii of the model as it is after
   * the update, on the update's batch (its own loss, no truncation-bias or Jacobian terms).
   */
  private async profile(step: number, batch: SequenceBatch, log: TelemetryWriter = this.#log!): Promise<void> {
    const x = Tensor.from(batch.inputs.data, batch.inputs.shape);
    const y = Tensor.from(batch.targets.data, batch.targets.shape);
    try {
      const d = await diagnoseAsync(this.rnn, x, y, { truncate: [], jacobian: false, ...(batch.lengths ? { lengths: batch.lengths } : {}) });
      log.write({ type: 'profile', step, perLag: Array.from(d.perLag), spectralRadius: d.spectralRadius, decayRate: Number.isFinite(d.decayRate) ? d.decayRate : null, loss: d.loss });
    } finally {
      x.dispose();
      y.dispose();
    }
  }

  /** One update on a batch of whole sequences: exact (or truncated) BPTT through each. */
  /** What every update passes to trainStepAsync: the learning rate, optimizer, reduction and clipping. */
  private updateOptions(lr: number) {
    return {
      lr,
      optimizer: this.optimizer,
      reduction: this.reduction,
      ...(this.clipNorm !== undefined ? { clipNorm: this.clipNorm } : {}),
      ...(this.clipValue !== undefined ? { clipValue: this.clipValue } : {}),
    };
  }

  /** Counts an applied update (step, clip statistics) and describes it. */
  private recordUpdate(result: TrainStepOutput, lr: number, epoch: number, tokens: number): StepInfo {
    this.#step++;
    this.#clip.record(result.gradNorm, result.clipped);
    return { step: this.#step, loss: result.loss, gradNorm: result.gradNorm, clipped: result.clipped, lr, epoch, tokens, clip: this.#clip.summary() };
  }

  private async runSequenceUpdate(data: EpochBatcher): Promise<{ info: StepInfo; batch: SequenceBatch }> {
    const before = data.state();
    const batch: SequenceBatch = data.next();
    const lr = learningRate(this.schedule, this.#step);
    const result = await this.applyStep(batch, data, before, {
      ...this.updateOptions(lr),
      ...(batch.lengths ? { lengths: batch.lengths } : {}),
      ...(this.truncate !== undefined ? { truncate: this.truncate } : {}),
    });
    result.hT.dispose();
    result.cT?.dispose();
    const [T, B] = batch.inputs.shape;
    const info = this.recordUpdate(result, lr, data.epoch, batch.lengths ? batch.lengths.reduce((a, n) => a + n, 0) : T * B);
    return { info, batch };
  }

  private async runUpdate(data: StreamBatcher): Promise<{ info: StepInfo; batch: SequenceBatch }> {
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
    const window: SequenceBatch = { inputs: { data: inputs, shape: [T, B] }, targets: { data: targets, shape: [T, B] } };
    const result = await this.applyStep(window, data, before, {
      ...this.updateOptions(lr),
      ...(this.#h ? { h0: this.#h } : {}),
      ...(this.#c ? { c0: this.#c } : {}),
      // The state where the next window starts, from the same forward pass (before the update).
      // A bidirectional model has no state to carry forward: each window starts from zeros.
      ...(advance > 0 && advance < T && !this.rnn.bidirectional ? { stateAt: advance - 1 } : {}),
    });

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
    const info = this.recordUpdate(result, lr, data.epoch, this.k1 * B);
    return { info, batch: window };
  }

  /** One training step on a batch; when it fails the data goes back to where the batch was read. */
  private async applyStep(batch: SequenceBatch, data: StreamBatcher | EpochBatcher, before: BatcherState, options: TrainStepOptions): Promise<TrainStepOutput> {
    const x = Tensor.from(batch.inputs.data, batch.inputs.shape);
    const y = Tensor.from(batch.targets.data, batch.targets.shape);
    try {
      return await this.rnn.trainStepAsync(x, y, options);
    } catch (err) {
      data.restore(before);
      throw err;
    } finally {
      x.dispose();
      y.dispose();
    }
  }
}
