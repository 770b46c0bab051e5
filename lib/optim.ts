/**
 * Optimizers. Their state lives in native tensors beside the parameters and the update runs
 * natively inside RNN.trainStep (or in TS, float64-accurate, on the reference backend).
 *
 *   sgd       p -= lr g
 *   momentum  v = mu v + g;                       p -= lr v
 *   nesterov  v = mu v + g;                       p -= lr (g + mu v)
 *   adagrad   G += g^2;                           p -= lr g / (sqrt(G) + eps)
 *   rmsprop   E = rho E + (1 - rho) g^2;          p -= lr g / (sqrt(E) + eps)
 *   adam      m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 *             p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 */
import { checkFinite, checkFloatArray, describeValue } from './backend';
import { NonFiniteError } from './errors';
import { Tensor } from './tensor';
import type { NativeOptimizerConfig } from './backends/native';

/**
 * The update rules {@link Optimizer} implements (see the formulas at the top of lib/optim.ts).
 *
 * @example
 * ```ts
 * import { Optimizer, RNN, type OptimizerKind } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 });
 * const kind: OptimizerKind = 'rmsprop';
 * const optimizer = new Optimizer(rnn, { kind, rho: 0.95 });
 * console.log(optimizer.kind);
 * ```
 */
export type OptimizerKind = 'sgd' | 'momentum' | 'nesterov' | 'adagrad' | 'rmsprop' | 'adam';

/**
 * Every {@link OptimizerKind}, e.g. to validate a command-line choice.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { OPTIMIZER_KINDS } from 'bptt';
 *
 * assert.deepEqual(OPTIMIZER_KINDS, ['sgd', 'momentum', 'nesterov', 'adagrad', 'rmsprop', 'adam']);
 * ```
 */
export const OPTIMIZER_KINDS: readonly OptimizerKind[] = ['sgd', 'momentum', 'nesterov', 'adagrad', 'rmsprop', 'adam'];

/**
 * An optimizer's kind and hyperparameters; each kind reads only its own (the rest are kept and
 * saved but unused). The update runs in float32, so values that would fail there are refused:
 * a beta that rounds to 1, an eps that rounds to 0.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { Optimizer, RNN, type OptimizerOptions } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 });
 * const options: OptimizerOptions = { kind: 'adam', beta1: 0.8, beta2: 0.99, eps: 1e-6 };
 * const adam = new Optimizer(rnn, options);
 * assert.deepEqual(adam.hyper, { momentum: 0.9, beta1: 0.8, beta2: 0.99, eps: 1e-6, rho: 0.9 }); // defaults for the rest
 * ```
 */
export interface OptimizerOptions {
  kind: OptimizerKind;
  /** mu of momentum and nesterov, in [0, 1]; default 0.9. */
  momentum?: number;
  /** Adam's first-moment decay, in [0, 1); default 0.9. */
  beta1?: number;
  /** Adam's second-moment decay, in [0, 1); default 0.999. */
  beta2?: number;
  /** Added to the denominator of adagrad, rmsprop and adam, in (0, 1]; default 1e-8. */
  eps?: number;
  /** RMSProp's decay of the mean square, in [0, 1]; default 0.9. */
  rho?: number;
}

/**
 * Every hyperparameter of an {@link Optimizer}, defaults filled in (`optimizer.hyper`).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { Optimizer, RNN, type OptimizerHyperparameters } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 });
 * const hyper: OptimizerHyperparameters = new Optimizer(rnn, { kind: 'momentum' }).hyper;
 * assert.deepEqual(hyper, { momentum: 0.9, beta1: 0.9, beta2: 0.999, eps: 1e-8, rho: 0.9 });
 * ```
 */
export interface OptimizerHyperparameters {
  /** See {@link OptimizerOptions.momentum}. */
  momentum: number;
  /** See {@link OptimizerOptions.beta1}. */
  beta1: number;
  /** See {@link OptimizerOptions.beta2}. */
  beta2: number;
  /** See {@link OptimizerOptions.eps}. */
  eps: number;
  /** See {@link OptimizerOptions.rho}. */
  rho: number;
}

/** The state arrays each optimizer keeps per parameter, by the names state() uses. */
export const STATE_SLOTS: Readonly<Record<OptimizerKind, readonly string[]>> = {
  sgd: [],
  momentum: ['velocity'],
  nesterov: ['velocity'],
  adagrad: ['sumSquares'],
  rmsprop: ['meanSquares'],
  adam: ['m', 'v'],
};

/**
 * What an optimizer needs to know about the model it updates: its parameters, by name, in order.
 * An {@link RNN} is one.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { Optimizer, RNN, type ParameterOwner } from 'bptt';
 *
 * const owner: ParameterOwner = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 });
 * assert.deepEqual(new Optimizer(owner, { kind: 'sgd' }).parameterNames, Object.keys(owner.params));
 * ```
 */
export interface ParameterOwner {
  /** The float32 parameters by name; the optimizer keeps state of each one's shape. */
  readonly params: Readonly<Record<string, Tensor>>;
}

function checkHyper(name: string, value: number | undefined, fallback: number, lo: number, hi: number, openHi = false): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !(v >= lo && (openHi ? v < hi : v <= hi))) {
    throw new RangeError(`${name} must be a number in [${lo}, ${hi}${openHi ? ')' : ']'}, got ${describeValue(v)}`);
  }
  return v;
}

/** Largest float32 below 1. */
const FLOAT32_BELOW_ONE = 1 - 2 ** -24;

/**
 * Hyperparameters the native update can use: it computes in float32, where a beta that rounds to
 * 1 makes Adam's bias correction 1 / (1 - beta^t) divide by zero, and an eps that rounds to 0
 * makes every parameter whose gradient and state are 0 NaN (0 / 0) on the first step.
 */
function checkHyperparameters(options: OptimizerOptions): OptimizerHyperparameters {
  const h = {
    momentum: checkHyper('momentum', options.momentum, 0.9, 0, 1),
    beta1: checkHyper('beta1', options.beta1, 0.9, 0, 1, true),
    beta2: checkHyper('beta2', options.beta2, 0.999, 0, 1, true),
    eps: checkHyper('eps', options.eps, 1e-8, 0, 1),
    rho: checkHyper('rho', options.rho, 0.9, 0, 1),
  };
  for (const name of ['beta1', 'beta2'] as const) {
    if (Math.fround(h[name]) === 1) {
      throw new RangeError(`${name} = ${h[name]} rounds to 1 in float32, where the update runs (Adam's bias correction would divide by zero); use at most ${FLOAT32_BELOW_ONE}`);
    }
  }
  if (Math.fround(h.eps) === 0) {
    throw new RangeError(`eps = ${h.eps} must be > 0 after rounding to float32, where the update runs (with eps 0 a zero gradient gives 0 / 0 = NaN); use at least ${Math.fround(2 ** -149)}`);
  }
  return h;
}

/**
 * Adam's first moment is bounded by its second: with m_t = (1-b1) sum_i b1^(t-i) g_i and
 * v_t = (1-b2) sum_i b2^(t-i) g_i^2, Cauchy-Schwarz gives m_t^2 <= C_t v_t with
 * C_t = (1-b1)^2 / (1-b2) * sum_{j<t} (b1^2/b2)^j, whatever the gradients were; and one update
 * keeps the bound (m^2 <= C_t v implies m'^2 <= C_{t+1} v'). So a state that breaks it was not
 * written by Adam. The bound also caps the next step: |m^ / sqrt(v^)| <= c1 sqrt(C_t / c2) for the
 * bias corrections c1, c2, so the update is a bounded multiple of lr and cannot overflow from the
 * state. Returns C_t (Infinity when it does not bound m, e.g. b2 = 0), computed with whichever of
 * the float64 and the float32-rounded betas gives the looser bound, since native states are
 * float32 computations.
 */
function adamMomentBound(beta1: number, beta2: number, t: number): number {
  const f = Math.fround;
  const oneMinusB1 = Math.max(1 - beta1, f(1 - f(beta1)));
  const oneMinusB2 = Math.min(1 - beta2, f(1 - f(beta2)));
  const r = Math.max((beta1 * beta1) / beta2, (f(beta1) * f(beta1)) / f(beta2));
  const sum = r === 1 ? t : (r ** t - 1) / (r - 1);
  const c = ((oneMinusB1 * oneMinusB1) / oneMinusB2) * sum;
  return Number.isNaN(c) ? Infinity : c;
}

/** Smallest positive float32 (a subnormal): the absolute rounding error of float32 results near 0 is half of it. */
const FLOAT32_TRUE_MIN = 2 ** -149;

/**
 * An optimizer for one model: its kind, hyperparameters, update count and per-parameter state
 * (velocities, sums or means of squares, Adam's moments) in native memory beside the parameters.
 * Pass it to `rnn.trainStep` (or a {@link Trainer}); the update runs natively inside the step
 * (in float64-accurate TS on the reference backend), and a step that fails changes neither the
 * parameters nor this state.
 *
 *     sgd       p -= lr g
 *     momentum  v = mu v + g;                 p -= lr v
 *     nesterov  v = mu v + g;                 p -= lr (g + mu v)
 *     adagrad   G += g^2;                     p -= lr g / (sqrt(G) + eps)
 *     rmsprop   E = rho E + (1 - rho) g^2;    p -= lr g / (sqrt(E) + eps)
 *     adam      m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
 *               p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { Optimizer, RNN, Tensor } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 4, hiddenSize: 8, outputSize: 4, seed: 1 });
 * const x = Tensor.from(Int32Array.of(0, 1, 2, 3), [4, 1]);
 * const y = Tensor.from(Int32Array.of(1, 2, 3, 0), [4, 1]);
 * const adam = new Optimizer(rnn, { kind: 'adam', beta2: 0.99 });
 * for (let i = 0; i < 3; i++) rnn.trainStep(x, y, { lr: 1e-2, optimizer: adam, clipNorm: 5 });
 * assert.equal(adam.step, 3);
 * ```
 */
export class Optimizer {
  /** The update rule. */
  readonly kind: OptimizerKind;
  /** All hyperparameters, defaults filled in (frozen). */
  readonly hyper: Readonly<OptimizerHyperparameters>;
  #step = 0;
  /** The model's parameter names, in the model's order. */
  readonly #names: readonly string[];
  readonly #slots: Record<string, Tensor<'float32'>[]>;

  /**
   * An optimizer with zero state for every parameter of `model` (its current parameter names and
   * shapes; it cannot be used with another model).
   *
   * @throws TypeError for an unknown kind; RangeError for a hyperparameter outside its range or
   * one float32 cannot use (beta1 or beta2 rounding to 1, eps rounding to 0).
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { Optimizer, RNN } from 'bptt';
   *
   * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, cell: 'gru', seed: 1 });
   * const nesterov = new Optimizer(rnn, { kind: 'nesterov', momentum: 0.95 });
   * assert.equal(nesterov.step, 0);
   * assert.throws(() => new Optimizer(rnn, { kind: 'adam', beta2: 1 - 1e-9 }), RangeError); // rounds to 1 in float32
   * ```
   */
  constructor(model: ParameterOwner, options: OptimizerOptions) {
    if (typeof options !== 'object' || options === null || !OPTIMIZER_KINDS.includes(options.kind)) {
      throw new TypeError(`optimizer kind must be one of ${OPTIMIZER_KINDS.join(', ')}, got ${describeValue(options?.kind)}`);
    }
    this.kind = options.kind;
    this.hyper = Object.freeze(checkHyperparameters(options));
    this.#names = Object.freeze(Object.keys(model.params));
    const slots: Record<string, Tensor<'float32'>[]> = {};
    for (const name of this.#names) {
      slots[name] = STATE_SLOTS[this.kind].map(() => Tensor.zeros(model.params[name].shape, 'float32') as Tensor<'float32'>);
    }
    this.#slots = slots;
  }

  /**
   * The number of updates applied so far (Adam's t is step + 1 in the next update).
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { Optimizer, RNN, Tensor } from 'bptt';
   *
   * const rnn = new RNN({ inputSize: 2, hiddenSize: 3, outputSize: 2, seed: 1 });
   * const sgd = new Optimizer(rnn, { kind: 'sgd' });
   * rnn.trainStep(Tensor.from(Int32Array.of(0, 1), [2, 1]), Tensor.from(Int32Array.of(1, 0), [2, 1]), { lr: 0.1, optimizer: sgd });
   * assert.equal(sgd.step, 1);
   * ```
   */
  get step(): number {
    return this.#step;
  }

  /**
   * Copies of the state, named `${param}.${slot}`: slot 'velocity' (momentum, nesterov),
   * 'sumSquares' (adagrad), 'meanSquares' (rmsprop), 'm' and 'v' (adam); none for sgd. Each has
   * its parameter's element count.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { Optimizer, RNN } from 'bptt';
   *
   * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 });
   * const state = new Optimizer(rnn, { kind: 'adam' }).state();
   * assert.deepEqual(Object.keys(state), ['U.m', 'U.v', 'W.m', 'W.v', 'b.m', 'b.v', 'V.m', 'V.v', 'c.m', 'c.v']);
   * assert.equal(state['W.m'].length, 16);
   * ```
   */
  state(): Record<string, Float32Array> {
    const out: Record<string, Float32Array> = {};
    for (const name of this.#names) {
      STATE_SLOTS[this.kind].forEach((slot, i) => {
        out[`${name}.${slot}`] = this.#slots[name][i].toArray();
      });
    }
    return out;
  }

  /**
   * Restores state written by state() and the update count. Validates all before changing any:
   * shapes and types, finiteness (NonFiniteError), and that the state is one this optimizer can be
   * in after `step` updates (RangeError; see checkState).
   *
   * @throws TypeError when `state` is not an object; DTypeError or ShapeError for a missing or
   * ill-sized entry; NonFiniteError; RangeError for a state no run can reach (non-zero after 0
   * updates, a negative sum or mean of squares, an Adam first moment beyond what its second
   * moment allows); TensorInUseError while an asynchronous step uses the state.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { Optimizer, RNN, Tensor } from 'bptt';
   *
   * const rnn = new RNN({ inputSize: 2, hiddenSize: 3, outputSize: 2, seed: 1 });
   * const a = new Optimizer(rnn, { kind: 'adagrad' });
   * rnn.trainStep(Tensor.from(Int32Array.of(0, 1), [2, 1]), Tensor.from(Int32Array.of(1, 0), [2, 1]), { lr: 0.1, optimizer: a });
   * const b = new Optimizer(rnn, { kind: 'adagrad' });
   * b.loadState(a.state(), a.step);
   * assert.deepEqual(b.state(), a.state());
   * assert.throws(() => b.loadState(a.state(), 0), RangeError); // non-zero sums after 0 updates
   * ```
   */
  loadState(state: Record<string, Float32Array>, step: number): void {
    if (typeof state !== 'object' || state === null) throw new TypeError(`optimizer state must be an object of Float32Arrays, got ${describeValue(state)}`);
    const pending: [Tensor<'float32'>, Float32Array][] = [];
    for (const name of this.#names) {
      STATE_SLOTS[this.kind].forEach((slot, i) => {
        const key = `${name}.${slot}`;
        const target = this.#slots[name][i];
        pending.push([target, checkFloatArray(`optimizer state ${key}`, state[key], target.size, false) as Float32Array]);
      });
    }
    this.checkState(state, step);
    for (const [target] of pending) target.checkWritable();
    for (const [target, values] of pending) target.write(values);
    this.#step = step;
  }

  /**
   * Throws unless `state` (named as state() names it, sizes already checked) is a state this
   * optimizer can reach after `step` updates from its zero start:
   * - every value finite (NonFiniteError);
   * - after 0 updates, every value 0;
   * - adagrad's sum and rmsprop's mean of squared gradients, adam's second moment: >= 0;
   * - adam's first moment within the bound its second moment sets (adamMomentBound), with a
   *   factor 2 on m^2 for float32 rounding and an allowance for the second moment's absolute
   *   rounding near 0 (gradients whose square underflows leave m != 0 with v = 0).
   * A velocity (momentum, nesterov) can be any finite value: it sums past gradients without
   * squaring them. Whether its next update overflows depends on that step's gradient and lr,
   * which the step itself checks (NonFiniteError, nothing changed).
   * @internal Also used before a checkpoint is written, so that what saves, loads.
   */
  checkState(state: Readonly<Record<string, Float32Array>>, step: number): void {
    if (!Number.isSafeInteger(step) || step < 0) throw new RangeError(`step must be a non-negative integer, got ${describeValue(step)}`);
    const slots = STATE_SLOTS[this.kind];
    for (const name of this.#names) {
      for (const slot of slots) {
        const key = `${name}.${slot}`;
        const values = state[key];
        checkFinite(`optimizer state ${key}`, values);
        if (step === 0) {
          const i = values.findIndex((x) => x !== 0);
          if (i >= 0) throw new RangeError(`optimizer state ${key}[${i}] is ${values[i]} after 0 updates; a ${this.kind} state starts at 0`);
        }
        if (slot === 'sumSquares' || slot === 'meanSquares' || slot === 'v') {
          const i = values.findIndex((x) => x < 0);
          if (i >= 0) throw new RangeError(`optimizer state ${key}[${i}] is ${values[i]}, but a ${slot === 'v' ? 'second moment' : slot === 'sumSquares' ? 'sum' : 'mean'} of squared gradients is >= 0`);
        }
      }
      if (this.kind === 'adam' && step > 0) {
        const { beta1, beta2 } = this.hyper;
        const bound = 2 * adamMomentBound(beta1, beta2, step);
        const floor = (2 * FLOAT32_TRUE_MIN) / Math.min(1 - beta2, Math.fround(1 - Math.fround(beta2)));
        const m = state[`${name}.m`];
        const v = state[`${name}.v`];
        for (let i = 0; i < m.length; i++) {
          if (m[i] * m[i] > bound * (v[i] + floor)) {
            throw new RangeError(
              `optimizer state ${name}.m[${i}] = ${m[i]} is too large for ${name}.v[${i}] = ${v[i]}: after ${step} updates with beta1 ${beta1} and beta2 ${beta2}, Adam keeps m^2 <= ${(bound / 2).toPrecision(4)} v`,
            );
          }
        }
      }
    }
  }

  /** @internal The state tensors of one parameter. */
  slots(name: string): readonly Tensor<'float32'>[] {
    const slots = this.#slots[name];
    if (slots === undefined) throw new TypeError(`this optimizer was made for another model: it has no parameter '${name}'`);
    return slots;
  }

  /**
   * The names of the parameters it updates, in the model's order.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { Optimizer, RNN } from 'bptt';
   *
   * const lstm = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, cell: 'lstm', seed: 1 });
   * assert.deepEqual(new Optimizer(lstm, { kind: 'sgd' }).parameterNames, [
   *   'rnn.weight_ih_l0', 'rnn.weight_hh_l0', 'rnn.bias_ih_l0', 'rnn.bias_hh_l0', 'fc.weight', 'fc.bias',
   * ]);
   * ```
   */
  get parameterNames(): readonly string[] {
    return this.#names;
  }

  /** @internal The configuration the native update reads for the next step. */
  nativeConfig(lr: number): NativeOptimizerConfig {
    const h = this.hyper;
    return { kind: this.kind, lr, momentum: h.momentum, beta1: h.beta1, beta2: h.beta2, eps: h.eps, rho: h.rho, step: this.#step + 1 };
  }

  /** @internal Called once an update has been applied. */
  advance(): void {
    this.#step++;
  }

  /**
   * Frees the state tensors now (the optimizer is unusable afterwards).
   *
   * @throws TensorInUseError while an asynchronous step uses the state.
   *
   * @example
   * ```ts
   * import { Optimizer, RNN } from 'bptt';
   *
   * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 });
   * const adam = new Optimizer(rnn, { kind: 'adam' });
   * adam.dispose();
   * ```
   */
  dispose(): void {
    for (const name of this.#names) for (const t of this.#slots[name]) t.dispose();
  }
}

/** What an Optimizer without options holds; plain SGD (no optimizer given) reads none of it. */
const DEFAULT_HYPERPARAMETERS: Readonly<OptimizerHyperparameters> = Object.freeze(checkHyperparameters({ kind: 'sgd' }));

/**
 * The update of one parameter on the reference backend, as new arrays (nothing is written):
 * float64 arithmetic, float32 storage, and each new state value rounded to float32 before the
 * parameter update reads it, as in the native update. `t` is the 1-based index of this update.
 */
function updatedValues(
  kind: OptimizerKind,
  hyper: Readonly<OptimizerHyperparameters>,
  t: number,
  param: Float32Array,
  state: readonly Float32Array[],
  grad: ArrayLike<number>,
  lr: number,
): { param: Float32Array; state: Float32Array[] } {
  const p = param.slice();
  const [s1, s2] = state.map((s) => s.slice());
  const { momentum: mu, beta1, beta2, eps, rho } = hyper;
  const c1 = 1 / (1 - beta1 ** t);
  const c2 = 1 / (1 - beta2 ** t);
  for (let i = 0; i < p.length; i++) {
    const g = grad[i];
    switch (kind) {
      case 'sgd':
        p[i] -= lr * g;
        break;
      case 'momentum':
        s1[i] = mu * s1[i] + g;
        p[i] -= lr * s1[i];
        break;
      case 'nesterov':
        s1[i] = mu * s1[i] + g;
        p[i] -= lr * (g + mu * s1[i]);
        break;
      case 'adagrad':
        s1[i] += g * g;
        p[i] -= (lr * g) / (Math.sqrt(s1[i]) + eps);
        break;
      case 'rmsprop':
        s1[i] = rho * s1[i] + (1 - rho) * g * g;
        p[i] -= (lr * g) / (Math.sqrt(s1[i]) + eps);
        break;
      case 'adam':
        s1[i] = beta1 * s1[i] + (1 - beta1) * g;
        s2[i] = beta2 * s2[i] + (1 - beta2) * g * g;
        p[i] -= (lr * s1[i] * c1) / (Math.sqrt(s2[i] * c2) + eps);
        break;
    }
  }
  return { param: p, state: [s1, s2].slice(0, state.length) };
}

/**
 * One update of all parameters on the reference backend, by `optimizer` or, without one, plain
 * SGD. Every new parameter and state value is computed first; when any is NaN or infinite it
 * throws NonFiniteError and the parameters and the optimizer state stay as they were, bit for bit.
 */
export function applyReferenceUpdate<N extends string>(
  params: Readonly<Record<N, Tensor>>,
  grads: Readonly<Record<N, ArrayLike<number>>>,
  lr: number,
  optimizer: Optimizer | undefined,
): void {
  const kind = optimizer?.kind ?? 'sgd';
  const names = Object.keys(params) as N[];
  const updates = names.map((name) => {
    const state = optimizer ? optimizer.slots(name).map((t) => t.data() as Float32Array) : [];
    return updatedValues(kind, optimizer?.hyper ?? DEFAULT_HYPERPARAMETERS, (optimizer?.step ?? 0) + 1, params[name].data() as Float32Array, state, grads[name], lr);
  });
  names.forEach((name, i) => {
    const named: [string, Float32Array][] = [[name, updates[i].param], ...updates[i].state.map((s, j): [string, Float32Array] => [`${name}.${STATE_SLOTS[kind][j]}`, s])];
    for (const [what, values] of named) {
      const at = values.findIndex((x) => !Number.isFinite(x));
      if (at >= 0) throw new NonFiniteError(`the ${kind} update (lr ${lr}) would make ${what}[${at}] ${values[at]}; parameters and optimizer state were left unchanged`);
    }
  });
  names.forEach((name, i) => {
    (params[name] as Tensor<'float32'>).write(updates[i].param);
    optimizer?.slots(name).forEach((t, j) => t.write(updates[i].state[j]));
  });
  optimizer?.advance();
}

export interface ReferenceStepOptions {
  lr: number;
  clipNorm?: number;
  clipValue?: number;
}

/**
 * The reference backend's update from a loss and its gradients: the global norm (before
 * clipping), value clipping then global-norm rescaling (the native step's order), then the
 * optimizer. A loss or gradient that is not finite throws NonFiniteError before anything changes,
 * as does an update whose results would not be finite (applyReferenceUpdate).
 */
export function applyReferenceStep<N extends string>(
  params: Readonly<Record<N, Tensor>>,
  loss: number,
  gradients: Readonly<Record<N, ArrayLike<number>>>,
  options: ReferenceStepOptions,
  optimizer: Optimizer | undefined,
): { gradNorm: number; clipped: boolean } {
  const names = Object.keys(params) as N[];
  let squares = 0;
  for (const name of names) for (let i = 0; i < gradients[name].length; i++) squares += gradients[name][i] * gradients[name][i];
  const gradNorm = Math.sqrt(squares);
  if (!Number.isFinite(gradNorm) || !Number.isFinite(loss)) {
    throw new NonFiniteError(`the loss or gradient is not finite (loss ${loss}, gradient norm ${gradNorm}); parameters and optimizer state were left unchanged`);
  }
  let clipped = false;
  const grads = {} as Record<N, Float64Array>;
  for (const name of names) grads[name] = Float64Array.from(gradients[name]);
  if (options.clipValue !== undefined) {
    const v = options.clipValue;
    for (const name of names) {
      const g = grads[name];
      for (let i = 0; i < g.length; i++) {
        const y = Math.min(Math.max(g[i], -v), v);
        if (y !== g[i]) clipped = true;
        g[i] = y;
      }
    }
  }
  if (options.clipNorm !== undefined && gradNorm > options.clipNorm) {
    const factor = options.clipNorm / gradNorm;
    for (const name of names) for (let i = 0; i < grads[name].length; i++) grads[name][i] *= factor;
    clipped = true;
  }
  applyReferenceUpdate(params, grads, options.lr, optimizer);
  return { gradNorm, clipped };
}
