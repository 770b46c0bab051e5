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
import { PARAM_NAMES, ParamName, checkFinite, checkFloatArray, describeValue } from './backend';
import { Tensor } from './tensor';
import type { NativeOptimizerConfig } from './backends/native';

export type OptimizerKind = 'sgd' | 'momentum' | 'nesterov' | 'adagrad' | 'rmsprop' | 'adam';
export const OPTIMIZER_KINDS: readonly OptimizerKind[] = ['sgd', 'momentum', 'nesterov', 'adagrad', 'rmsprop', 'adam'];

export interface OptimizerOptions {
  kind: OptimizerKind;
  momentum?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  rho?: number;
}

export interface OptimizerHyperparameters {
  momentum: number;
  beta1: number;
  beta2: number;
  eps: number;
  rho: number;
}

const SLOT_NAMES: Record<OptimizerKind, readonly string[]> = {
  sgd: [],
  momentum: ['velocity'],
  nesterov: ['velocity'],
  adagrad: ['sumSquares'],
  rmsprop: ['meanSquares'],
  adam: ['m', 'v'],
};

/** What an optimizer needs to know about the model it updates. */
export interface ParameterOwner {
  readonly params: Readonly<Record<ParamName, Tensor>>;
}

function checkHyper(name: string, value: number | undefined, fallback: number, lo: number, hi: number, openHi = false): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !(v >= lo && (openHi ? v < hi : v <= hi))) {
    throw new RangeError(`${name} must be a number in [${lo}, ${hi}${openHi ? ')' : ']'}, got ${describeValue(v)}`);
  }
  return v;
}

export class Optimizer {
  readonly kind: OptimizerKind;
  readonly hyper: Readonly<OptimizerHyperparameters>;
  #step = 0;
  readonly #slots: Record<ParamName, Tensor<'float32'>[]>;

  constructor(model: ParameterOwner, options: OptimizerOptions) {
    if (typeof options !== 'object' || options === null || !OPTIMIZER_KINDS.includes(options.kind)) {
      throw new TypeError(`optimizer kind must be one of ${OPTIMIZER_KINDS.join(', ')}, got ${describeValue(options?.kind)}`);
    }
    this.kind = options.kind;
    this.hyper = Object.freeze({
      momentum: checkHyper('momentum', options.momentum, 0.9, 0, 1),
      beta1: checkHyper('beta1', options.beta1, 0.9, 0, 1, true),
      beta2: checkHyper('beta2', options.beta2, 0.999, 0, 1, true),
      eps: checkHyper('eps', options.eps, 1e-8, 0, 1),
      rho: checkHyper('rho', options.rho, 0.9, 0, 1),
    });
    const slots = {} as Record<ParamName, Tensor<'float32'>[]>;
    for (const name of PARAM_NAMES) {
      slots[name] = SLOT_NAMES[this.kind].map(() => Tensor.zeros(model.params[name].shape, 'float32') as Tensor<'float32'>);
    }
    this.#slots = slots;
  }

  /** Number of updates applied so far. */
  get step(): number {
    return this.#step;
  }

  /** Copies of the state, named `${param}.${slot}` (e.g. 'U.m', 'W.velocity'). */
  state(): Record<string, Float32Array> {
    const out: Record<string, Float32Array> = {};
    for (const name of PARAM_NAMES) {
      SLOT_NAMES[this.kind].forEach((slot, i) => {
        out[`${name}.${slot}`] = this.#slots[name][i].toArray();
      });
    }
    return out;
  }

  /** Restores state written by state() and the update count. Validates all before changing any. */
  loadState(state: Record<string, Float32Array>, step: number): void {
    if (!Number.isSafeInteger(step) || step < 0) throw new RangeError(`step must be a non-negative integer, got ${describeValue(step)}`);
    const pending: [Tensor<'float32'>, Float32Array][] = [];
    for (const name of PARAM_NAMES) {
      SLOT_NAMES[this.kind].forEach((slot, i) => {
        const key = `${name}.${slot}`;
        const target = this.#slots[name][i];
        const values = checkFloatArray(`optimizer state ${key}`, state[key], target.size, false) as Float32Array;
        checkFinite(`optimizer state ${key}`, values);
        target.checkWritable();
        pending.push([target, values]);
      });
    }
    for (const [target, values] of pending) target.write(values);
    this.#step = step;
  }

  /** @internal The state tensors of one parameter. */
  slots(name: ParamName): readonly Tensor<'float32'>[] {
    return this.#slots[name];
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

  /** @internal The same update in TS (float64 arithmetic, float32 storage), for the reference backend. */
  applyReference(name: ParamName, param: Float32Array, grad: ArrayLike<number>, lr: number): void {
    const [s1, s2] = this.#slots[name].map((t) => t.data());
    const { momentum: mu, beta1, beta2, eps, rho } = this.hyper;
    const t = this.#step + 1;
    const c1 = 1 / (1 - beta1 ** t);
    const c2 = 1 / (1 - beta2 ** t);
    for (let i = 0; i < param.length; i++) {
      const g = grad[i];
      switch (this.kind) {
        case 'sgd':
          param[i] -= lr * g;
          break;
        case 'momentum':
          s1[i] = mu * s1[i] + g;
          param[i] -= lr * s1[i];
          break;
        case 'nesterov':
          s1[i] = mu * s1[i] + g;
          param[i] -= lr * (g + mu * s1[i]);
          break;
        case 'adagrad':
          s1[i] += g * g;
          param[i] -= (lr * g) / (Math.sqrt(s1[i]) + eps);
          break;
        case 'rmsprop':
          s1[i] = rho * s1[i] + (1 - rho) * g * g;
          param[i] -= (lr * g) / (Math.sqrt(s1[i]) + eps);
          break;
        case 'adam':
          s1[i] = beta1 * s1[i] + (1 - beta1) * g;
          s2[i] = beta2 * s2[i] + (1 - beta2) * g * g;
          param[i] -= (lr * s1[i] * c1) / (Math.sqrt(s2[i] * c2) + eps);
          break;
      }
    }
  }

  /** Frees the state tensors. */
  dispose(): void {
    for (const name of PARAM_NAMES) for (const t of this.#slots[name]) t.dispose();
  }
}
