/**
 * Long-range synthetic tasks, generated from a seed (no files): the adding problem and the copy
 * memory task, the two benchmarks on which a recurrent network must carry information across
 * many steps. Batches come in the engine's time-major layout.
 *
 * Adding problem (Hochreiter & Schmidhuber 1997, in the form of Le et al. 2015): each step has two
 * features, a value u ~ U[0, 1) and a marker bit. Exactly two steps are marked, one drawn
 * uniformly from the first half [0, ⌈T/2⌉) and one from the second half [⌈T/2⌉, T). The target
 * is the sum of the two marked values, read by a regression head at the last step.
 * Baseline: the best prediction that ignores the input is the target's mean, E[u1 + u2] = 1, whose
 * mean squared error is Var(u1 + u2) = 2 · (1/12) = 1/6 ≈ 0.1667 (exactly, for the uniform values
 * used here): {@link ADDING_BASELINE_MSE}.
 *
 * Copy memory task (Arjovsky, Shah & Bengio 2016): tokens 0 = blank, 1..8 = the alphabet,
 * 9 = marker. An input sequence of T + 20 steps is 10 symbols drawn uniformly from the alphabet,
 * T − 1 blanks, the marker, then 10 blanks; the target is blank at the first T + 10 steps and the
 * 10 symbols, in order, at the last 10 (right after the marker). Loss convention: every step
 * counts (a tokens head, no ignored targets, mean over all (T + 20) · B steps), so a memoryless
 * model that predicts blank for T + 10 steps and a uniform guess over the 8 symbols for the last
 * 10 scores 10 · ln 8 / (T + 20) nats per step: {@link copyBaselineLoss}.
 */
import { describeValue, checkSize } from '../backend';
import { Rng } from '../rng';
import { Tensor } from '../tensor';

/**
 * The adding problem's baseline mean squared error: predicting 1 (the target's mean) scores
 * Var(u1 + u2) = 1/6 for two independent U[0, 1) values.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { ADDING_BASELINE_MSE } from 'bptt';
 *
 * assert.ok(Math.abs(ADDING_BASELINE_MSE - 0.1667) < 1e-4);
 * ```
 */
export const ADDING_BASELINE_MSE = 1 / 6;

/** Symbols to remember in the copy task. */
export const COPY_SYMBOLS = 10;
/** Alphabet size of the copy task (tokens 1..8). */
export const COPY_ALPHABET = 8;
const BLANK = 0;
const MARKER = COPY_ALPHABET + 1;

/**
 * The copy task's memoryless baseline in nats per step: 10 · ln 8 / (T + 20), for a delay of T.
 *
 * @throws RangeError unless `delay` is an integer >= 1.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { copyBaselineLoss } from 'bptt';
 *
 * assert.ok(Math.abs(copyBaselineLoss(100) - (10 * Math.log(8)) / 120) < 1e-12);
 * ```
 */
export function copyBaselineLoss(delay: number): number {
  checkSize('delay', delay);
  return (COPY_SYMBOLS * Math.log(COPY_ALPHABET)) / (delay + 2 * COPY_SYMBOLS);
}

/**
 * One batch of a long-range task, in the engine's time-major layout.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { copyTask, type LongRangeBatch } from 'bptt';
 *
 * const batch: LongRangeBatch = copyTask({ delay: 5, seed: 1 }).batch(3);
 * assert.equal(batch.inputs.dtype, 'int32');
 * assert.deepEqual(batch.targets.shape, [25, 3]);
 * ```
 */
export interface LongRangeBatch {
  /** Adding: float32 [T, B, 2] (value, marker). Copy: int32 [T + 20, B] token ids. */
  inputs: Tensor;
  /** Adding: float32 [B, 1] (the sum, for a 'last' regression head). Copy: int32 [T + 20, B]. */
  targets: Tensor;
}

/**
 * Adding problem metrics: the test mean squared error and the baseline it must beat.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { addingProblem, type AddingMetrics } from 'bptt';
 *
 * const m: AddingMetrics = addingProblem({ length: 10 }).metrics([1, 1], [1.5, 0.5]);
 * assert.deepEqual(m, { mse: 0.25, baseline_mse: 1 / 6, count: 2 });
 * ```
 */
export interface AddingMetrics {
  mse: number;
  baseline_mse: number;
  /** Sequences evaluated. */
  count: number;
}

/**
 * Copy task metrics: mean cross-entropy per step (nats) against the memoryless baseline.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { copyTask, type CopyMetrics } from 'bptt';
 *
 * const task = copyTask({ delay: 1, seed: 1 });
 * const { targets } = task.batch(1);
 * const uniform = new Float32Array(21 * 9).fill(1 / 9);
 * const m: CopyMetrics = task.metrics(uniform, targets.toArray());
 * assert.ok(Math.abs(m.loss - Math.log(9)) < 1e-6); // a uniform guess costs ln 9 at every step
 * ```
 */
export interface CopyMetrics {
  loss: number;
  baseline_loss: number;
  /** Fraction of the 10 recalled symbols whose most probable class is right. */
  accuracy: number;
  /** Sequences evaluated. */
  count: number;
}

/**
 * What both long-range tasks offer: sizes for the model, a seeded stream of batches, the baseline
 * and evaluation. `evaluate` takes the model's prediction function, e.g. `(x) => rnn.predict(x)`
 * (a Tensor or a plain array: values [B, 1] for adding, probabilities [T + 20, B, 9] for copy).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { addingProblem, type LongRangeGenerator, type AddingMetrics } from 'bptt';
 *
 * const task: LongRangeGenerator<AddingMetrics> = addingProblem({ length: 20, seed: 3 });
 * assert.equal(task.batches(4, 5).length, 5);
 * assert.equal(task.inputSize, 2);
 * ```
 */
export interface LongRangeGenerator<M> {
  /** Steps per sequence. */
  readonly steps: number;
  /** The model's inputSize: features (adding) or token vocabulary (copy). */
  readonly inputSize: number;
  /** The model's outputSize. */
  readonly outputSize: number;
  /** A fresh batch of `size` sequences drawn from the task's stream (deterministic for a seed). */
  batch(size: number): LongRangeBatch;
  /** `count` batches of `size` sequences each, e.g. a fixed test set. */
  batches(size: number, count: number): LongRangeBatch[];
  /** The baseline in the task's metric (mse or nats per step). */
  readonly baseline: number;
  /** Metrics of `predict` over the given batches (all sequences weighted equally). */
  evaluate(predict: (inputs: Tensor) => Tensor | ArrayLike<number>, batches: readonly LongRangeBatch[]): M;
}

/**
 * The adding problem of length T: dense inputs [T, B, 2], a regression head on the last step.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { addingProblem, type AddingProblem } from 'bptt';
 *
 * const task: AddingProblem = addingProblem({ length: 30 });
 * assert.deepEqual(task.head, { kind: 'regress', positions: 'last', loss: 'mse' }); // for new RNN({ head })
 * ```
 */
export interface AddingProblem extends LongRangeGenerator<AddingMetrics> {
  readonly name: 'adding';
  readonly head: { kind: 'regress'; positions: 'last'; loss: 'mse' };
  /** Metrics from predictions [B, 1] (or [B]) and targets [B, 1]. */
  metrics(predictions: ArrayLike<number>, targets: ArrayLike<number>): AddingMetrics;
}

/**
 * The copy memory task with delay T: tokens [T + 20, B], a per-step softmax head over 9 classes.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { copyTask, type CopyTask } from 'bptt';
 *
 * const task: CopyTask = copyTask({ delay: 30 });
 * assert.deepEqual([task.inputSize, task.outputSize, task.steps], [10, 9, 50]);
 * ```
 */
export interface CopyTask extends LongRangeGenerator<CopyMetrics> {
  readonly name: 'copy';
  readonly head: { kind: 'tokens' };
  /** The delay T. */
  readonly delay: number;
  /** Metrics from probabilities [T + 20, B, 9] and targets [T + 20, B]. */
  metrics(probabilities: ArrayLike<number>, targets: ArrayLike<number>): CopyMetrics;
}

function checkSeed(seed: unknown): number {
  if (seed === undefined) return 0;
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${describeValue(seed)}`);
  return seed;
}

function checkBatches(batches: readonly LongRangeBatch[]): void {
  if (!Array.isArray(batches) || batches.length === 0) throw new RangeError(`batches must be a non-empty array of batches, got ${describeValue(batches)}`);
}

function checkPrediction(what: string, prediction: unknown, expected: number): ArrayLike<number> {
  const data = prediction instanceof Tensor ? prediction.toArray() : prediction;
  if (!ArrayBuffer.isView(data) && !Array.isArray(data)) throw new TypeError(`${what} must be a Tensor or an array of numbers, got ${describeValue(prediction)}`);
  const values = data as ArrayLike<number>;
  if (values.length !== expected) throw new RangeError(`${what} must have ${expected} elements, got ${values.length}`);
  return values;
}

/**
 * The adding problem of sequence length `length` (at least 2), its data drawn from `seed`. Use
 * different seeds for the training stream and the test set.
 *
 * @throws RangeError for a length < 2 or a seed that is not a safe integer.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { addingProblem, ADDING_BASELINE_MSE } from 'bptt';
 *
 * const train = addingProblem({ length: 50, seed: 1 });
 * const { inputs, targets } = train.batch(8);
 * assert.deepEqual(inputs.shape, [50, 8, 2]); // time-major: value, marker
 * assert.deepEqual(targets.shape, [8, 1]); // the sum of the two marked values
 * const test = addingProblem({ length: 50, seed: 2 }).batches(100, 2);
 * const m = train.evaluate((x) => new Float32Array(x.shape[1]).fill(1), test); // predict 1
 * assert.ok(Math.abs(m.mse - ADDING_BASELINE_MSE) < 0.05);
 * assert.equal(m.baseline_mse, ADDING_BASELINE_MSE);
 * ```
 */
export function addingProblem(options: { length: number; seed?: number }): AddingProblem {
  if (options === null || typeof options !== 'object') throw new TypeError(`addingProblem expects { length, seed? }, got ${describeValue(options)}`);
  const T = checkSize('length', options.length, 2);
  const rng = new Rng(checkSeed(options.seed));
  const half = Math.ceil(T / 2);
  const metrics = (predictions: ArrayLike<number>, targets: ArrayLike<number>): AddingMetrics => {
    if (predictions.length !== targets.length || targets.length === 0) {
      throw new RangeError(`predictions and targets must have one non-zero length, got ${predictions.length} and ${targets.length}`);
    }
    let sum = 0;
    for (let i = 0; i < targets.length; i++) sum += (predictions[i] - targets[i]) ** 2;
    return { mse: sum / targets.length, baseline_mse: ADDING_BASELINE_MSE, count: targets.length };
  };
  const task: AddingProblem = {
    name: 'adding',
    steps: T,
    inputSize: 2,
    outputSize: 1,
    head: { kind: 'regress', positions: 'last', loss: 'mse' },
    baseline: ADDING_BASELINE_MSE,
    batch(size: number): LongRangeBatch {
      const B = checkSize('batch size', size);
      const x = new Float32Array(T * B * 2);
      const y = new Float32Array(B);
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < T; t++) x[(t * B + b) * 2] = rng.next();
        const first = rng.int(half);
        const second = half + rng.int(T - half);
        x[(first * B + b) * 2 + 1] = 1;
        x[(second * B + b) * 2 + 1] = 1;
        y[b] = x[(first * B + b) * 2] + x[(second * B + b) * 2];
      }
      return { inputs: Tensor.from(x, [T, B, 2]), targets: Tensor.from(y, [B, 1]) };
    },
    batches(size: number, count: number): LongRangeBatch[] {
      checkSize('batch size', size);
      return Array.from({ length: checkSize('count', count) }, () => task.batch(size));
    },
    metrics,
    evaluate(predict: (inputs: Tensor) => Tensor | ArrayLike<number>, batches: readonly LongRangeBatch[]): AddingMetrics {
      checkBatches(batches);
      let sse = 0;
      let count = 0;
      for (const { inputs, targets } of batches) {
        const y = targets.toArray();
        const m = metrics(checkPrediction('adding prediction', predict(inputs), y.length), y);
        sse += m.mse * m.count;
        count += m.count;
      }
      return { mse: sse / count, baseline_mse: ADDING_BASELINE_MSE, count };
    },
  };
  return task;
}

/**
 * The copy memory task with delay `delay` (T >= 1; sequences of T + 20 steps), its data drawn from
 * `seed`. Input vocabulary 10 (blank, 8 symbols, marker), 9 output classes (blank, 8 symbols).
 *
 * @throws RangeError for a delay < 1 or a seed that is not a safe integer.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { copyTask, copyBaselineLoss } from 'bptt';
 *
 * const task = copyTask({ delay: 20, seed: 1 });
 * const { inputs, targets } = task.batch(4);
 * assert.deepEqual(inputs.shape, [40, 4]); // [T + 20, B] token ids
 * assert.deepEqual(targets.shape, [40, 4]);
 * // the memoryless guess: blank until the marker, then uniform over the 8 symbols
 * const guess = (x: { shape: readonly number[] }) => {
 *   const [steps, B] = x.shape;
 *   const p = new Float32Array(steps * B * 9);
 *   for (let t = 0; t < steps; t++) for (let b = 0; b < B; b++) {
 *     if (t < steps - 10) p[(t * B + b) * 9] = 1;
 *     else for (let k = 1; k < 9; k++) p[(t * B + b) * 9 + k] = 1 / 8;
 *   }
 *   return p;
 * };
 * const m = task.evaluate(guess, [task.batch(4)]);
 * assert.ok(Math.abs(m.loss - copyBaselineLoss(20)) < 1e-6);
 * ```
 */
export function copyTask(options: { delay: number; seed?: number }): CopyTask {
  if (options === null || typeof options !== 'object') throw new TypeError(`copyTask expects { delay, seed? }, got ${describeValue(options)}`);
  const delay = checkSize('delay', options.delay);
  const rng = new Rng(checkSeed(options.seed));
  const steps = delay + 2 * COPY_SYMBOLS;
  const K = COPY_ALPHABET + 1;
  const baseline = copyBaselineLoss(delay);
  const metrics = (probabilities: ArrayLike<number>, targets: ArrayLike<number>): CopyMetrics => {
    if (targets.length === 0 || targets.length % steps !== 0) throw new RangeError(`copy targets must be [${steps}, B], got ${targets.length} elements`);
    const B = targets.length / steps;
    if (probabilities.length !== targets.length * K) throw new RangeError(`copy probabilities must be [${steps}, ${B}, ${K}], got ${probabilities.length} elements`);
    let nats = 0;
    let right = 0;
    for (let i = 0; i < targets.length; i++) {
      const target = targets[i];
      if (!Number.isInteger(target) || target < 0 || target >= K) throw new RangeError(`copy target ${i} must be a class in [0, ${K}), got ${target}`);
      // probabilities are float32; clamp so that a confident wrong guess costs a finite loss
      nats -= Math.log(Math.max(probabilities[i * K + target], 1e-30));
      if (i >= (steps - COPY_SYMBOLS) * B) {
        let best = 0;
        for (let k = 1; k < K; k++) if (probabilities[i * K + k] > probabilities[i * K + best]) best = k;
        if (best === target) right++;
      }
    }
    return { loss: nats / targets.length, baseline_loss: baseline, accuracy: right / (COPY_SYMBOLS * B), count: B };
  };
  const task: CopyTask = {
    name: 'copy',
    delay,
    steps,
    inputSize: K + 1,
    outputSize: K,
    head: { kind: 'tokens' },
    baseline,
    batch(size: number): LongRangeBatch {
      const B = checkSize('batch size', size);
      const x = new Int32Array(steps * B).fill(BLANK);
      const y = new Int32Array(steps * B).fill(BLANK);
      for (let b = 0; b < B; b++) {
        for (let i = 0; i < COPY_SYMBOLS; i++) {
          const symbol = 1 + rng.int(COPY_ALPHABET);
          x[i * B + b] = symbol;
          y[(steps - COPY_SYMBOLS + i) * B + b] = symbol;
        }
        x[(steps - COPY_SYMBOLS - 1) * B + b] = MARKER;
      }
      return { inputs: Tensor.from(x, [steps, B]), targets: Tensor.from(y, [steps, B]) };
    },
    batches(size: number, count: number): LongRangeBatch[] {
      checkSize('batch size', size);
      return Array.from({ length: checkSize('count', count) }, () => task.batch(size));
    },
    metrics,
    evaluate(predict: (inputs: Tensor) => Tensor | ArrayLike<number>, batches: readonly LongRangeBatch[]): CopyMetrics {
      checkBatches(batches);
      let nats = 0;
      let right = 0;
      let count = 0;
      for (const { inputs, targets } of batches) {
        const y = targets.toArray();
        const m = metrics(checkPrediction('copy probabilities', predict(inputs), y.length * K), y);
        nats += m.loss * m.count;
        right += m.accuracy * m.count;
        count += m.count;
      }
      return { loss: nats / count, baseline_loss: baseline, accuracy: right / count, count };
    },
  };
  return task;
}

/**
 * A long-range task by name, as the CLI's `--task adding|copy --length T` builds it.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { longRangeTask, type LongRangeTask } from 'bptt';
 *
 * const task: LongRangeTask = longRangeTask('copy', { length: 10 });
 * assert.equal(task.name === 'copy' ? task.delay : 0, 10);
 * ```
 */
export type LongRangeTask = AddingProblem | CopyTask;

/**
 * The long-range task `name` ('adding' or 'copy') with sequence length / delay `length`.
 *
 * @throws RangeError for another name, or as {@link addingProblem} / {@link copyTask}.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { longRangeTask } from 'bptt';
 *
 * assert.equal(longRangeTask('adding', { length: 100, seed: 1 }).steps, 100);
 * assert.equal(longRangeTask('copy', { length: 100, seed: 1 }).steps, 120);
 * ```
 */
export function longRangeTask(name: 'adding' | 'copy', options: { length: number; seed?: number }): LongRangeTask {
  if (options === null || typeof options !== 'object') throw new TypeError(`longRangeTask expects { length, seed? }, got ${describeValue(options)}`);
  if (name === 'adding') return addingProblem(options);
  if (name === 'copy') return copyTask({ delay: options.length, seed: options.seed });
  throw new RangeError(`task must be 'adding' or 'copy', got ${describeValue(name)}`);
}
