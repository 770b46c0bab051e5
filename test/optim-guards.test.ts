/**
 * What the optimizer and the training step refuse: hyperparameters that cannot work in float32,
 * optimizer states no run can reach, updates whose result would not be finite (reference backend;
 * the native step has its own guard), clipping bounds that round to 0, and model calls while an
 * asynchronous job runs.
 */
import { PARAM_NAMES } from '../lib/backend';
import { NonFiniteError, TensorInUseError } from '../lib/errors';
import { OPTIMIZER_KINDS, Optimizer, OptimizerKind } from '../lib/optim';
import { Rng } from '../lib/rng';
import { BackendName, RNN } from '../lib/rnn';
import { Tensor } from '../lib/tensor';
import { StreamBatcher } from '../lib/train/batcher';
import { Trainer } from '../lib/train/trainer';

const V = 5;
const H = 6;
const T = 8;
const B = 4;
const backends: BackendName[] = ['native', 'reference'];

function tokens(seed: number): Tensor {
  const rng = new Rng(seed);
  return Tensor.from(Int32Array.from({ length: T * B }, () => rng.int(V)), [T, B]);
}

function model(backend: BackendName = 'native'): RNN {
  return new RNN({ inputSize: V, hiddenSize: H, outputSize: V, seed: 3, backend });
}

/** Parameters, optimizer state and step count, as bytes. */
function snapshot(rnn: RNN, opt?: Optimizer): Buffer {
  const parts = PARAM_NAMES.map((n) => Buffer.from((rnn.params[n].toArray() as Float32Array).buffer));
  if (opt) {
    const s = opt.state();
    for (const k of Object.keys(s).sort()) parts.push(Buffer.from(s[k].buffer));
    parts.push(Buffer.from(String(opt.step)));
  }
  return Buffer.concat(parts);
}

describe('optimizer hyperparameters that cannot work in float32 are refused at construction', () => {
  const bad: [string, Partial<Record<'eps' | 'beta1' | 'beta2', number>>][] = [
    ['eps 0', { eps: 0 }],
    ['eps below the smallest float32', { eps: 1e-46 }],
    ['beta1 that rounds to 1', { beta1: 0.99999999 }],
    ['beta2 that rounds to 1', { beta2: 0.99999999 }],
    ['beta1 1 - 2^-25 (rounds to 1)', { beta1: 1 - 2 ** -25 }],
  ];
  it.each(bad)('%s', (_what, hyper) => {
    for (const kind of ['adam', 'rmsprop', 'adagrad'] as OptimizerKind[]) {
      expect(() => new Optimizer(model(), { kind, ...hyper })).toThrow(RangeError);
    }
  });

  it('accepts the extremes that do work', () => {
    const opt = new Optimizer(model(), { kind: 'adam', beta1: 1 - 2 ** -24, beta2: 0, eps: 2 ** -149 });
    expect(opt.hyper.beta1).toBe(1 - 2 ** -24);
  });

  it.each(backends)('the extremes train without NaN (%s)', (backend) => {
    const rnn = model(backend);
    const opt = new Optimizer(rnn, { kind: 'adam', beta1: 1 - 2 ** -24, beta2: 1 - 2 ** -24, eps: 2 ** -149 });
    for (let s = 0; s < 3; s++) rnn.trainStep(tokens(s), tokens(s + 9), { lr: 1e-3, optimizer: opt });
    for (const name of PARAM_NAMES) expect((rnn.params[name].toArray() as Float32Array).every(Number.isFinite)).toBe(true);
  });
});

describe('optimizer state validation (loadState)', () => {
  function trained(kind: OptimizerKind, backend: BackendName = 'native'): { rnn: RNN; opt: Optimizer } {
    const rnn = model(backend);
    const opt = new Optimizer(rnn, { kind });
    for (let s = 0; s < 4; s++) rnn.trainStep(tokens(s), tokens(s + 7), { lr: 0.01, optimizer: opt });
    return { rnn, opt };
  }
  const edit = (state: Record<string, Float32Array>, key: string, i: number, value: number) => {
    const copy = Object.fromEntries(Object.entries(state).map(([k, v]) => [k, v.slice()]));
    copy[key][i] = value;
    return copy;
  };

  it.each(OPTIMIZER_KINDS.filter((k) => k !== 'sgd'))('takes back what a run wrote (%s)', (kind) => {
    const { opt } = trained(kind);
    const fresh = new Optimizer(model(), { kind });
    fresh.loadState(opt.state(), opt.step);
    expect(fresh.state()).toEqual(opt.state());
  });

  const refused: [string, OptimizerKind, string, (x: number, m: number) => number, number | null, new (...a: never[]) => Error][] = [
    ['a negative Adam second moment (sign bit flipped)', 'adam', 'W.v', (x) => -x || -1e-3, null, RangeError],
    ['an Adam first moment far beyond its second moment allows', 'adam', 'W.m', (_x, m) => m * 2 ** 20 + 1, null, RangeError],
    ['a NaN first moment', 'adam', 'W.m', () => NaN, null, NonFiniteError],
    ['an infinite velocity', 'momentum', 'U.velocity', () => Infinity, null, NonFiniteError],
    ['a negative Adagrad sum of squares', 'adagrad', 'b.sumSquares', () => -1, null, RangeError],
    ['a negative RMSProp mean of squares', 'rmsprop', 'c.meanSquares', () => -1e-30, null, RangeError],
    ['a non-zero state after 0 updates', 'nesterov', 'V.velocity', () => 0.5, 0, RangeError],
    ['a fractional step count', 'adam', 'W.v', (x) => x, 2.5, RangeError],
    ['a negative step count', 'adam', 'W.v', (x) => x, -1, RangeError],
  ];
  it.each(refused)('refuses %s and changes nothing', (_what, kind, key, mutate, step, type) => {
    const { opt } = trained(kind);
    const state = opt.state();
    const largest = Math.max(...Array.from(state[key], Math.abs));
    const i = state[key].findIndex((x) => Math.abs(x) === largest);
    const target = new Optimizer(model(), { kind });
    const before = target.state();
    expect(() => target.loadState(edit(state, key, i, mutate(state[key][i], largest)), step ?? opt.step)).toThrow(type);
    expect(target.state()).toEqual(before);
    expect(target.step).toBe(0);
  });

  // The bound must never refuse a state a run reached, even at extreme betas and with gradients
  // whose squares underflow float32 (clipNorm 1e-30 scales the gradient down to that norm).
  const extremes: [number, number][] = [
    [0.9, 0.999],
    [1 - 2 ** -24, 0.9],
    [0, 0.5],
    [0.5, 0],
    [0.99, 1 - 2 ** -24],
  ];
  it.each(backends)('accepts every state Adam reaches, at extreme betas and tiny gradients (%s)', (backend) => {
    for (const [beta1, beta2] of extremes) {
      for (const clipNorm of [1e-30, 1e-21, 1, undefined]) {
        const rnn = model(backend);
        const opt = new Optimizer(rnn, { kind: 'adam', beta1, beta2 });
        for (let s = 0; s < 12; s++) {
          rnn.trainStep(tokens(s), tokens(s + 1), { lr: 0.01, optimizer: opt, ...(clipNorm ? { clipNorm } : {}) });
          expect(() => opt.checkState(opt.state(), opt.step)).not.toThrow();
        }
      }
    }
  });
});

describe('reference training steps whose result would not be finite', () => {
  // lr near the float32 maximum times a summed gradient above 1 overflows the parameters.
  const cases: [OptimizerKind | 'none', number][] = [
    ['none', 3e38],
    ['sgd', 3e38],
    ['momentum', 3e38],
    ['nesterov', 3e38],
    ['rmsprop', 1e38],
  ];
  it.each(cases)('throw NonFiniteError and leave parameters and state bit-identical (%s)', (kind, lr) => {
    const rnn = model('reference');
    const opt = kind === 'none' ? undefined : new Optimizer(rnn, { kind, rho: 0.99 });
    rnn.trainStep(tokens(1), tokens(2), { lr: 0.01, optimizer: opt });
    const before = snapshot(rnn, opt);
    expect(() => rnn.trainStep(tokens(3), tokens(4), { lr, optimizer: opt, reduction: 'sum' })).toThrow(NonFiniteError);
    expect(snapshot(rnn, opt).equals(before)).toBe(true);
  });

  it('a velocity near the float32 maximum overflows the next momentum update: refused, nothing changed', () => {
    const rnn = model('reference');
    const opt = new Optimizer(rnn, { kind: 'momentum', momentum: 1 });
    const state = opt.state();
    state['c.velocity'].fill(3e38);
    opt.loadState(state, 5);
    const before = snapshot(rnn, opt);
    expect(() => rnn.trainStep(tokens(3), tokens(4), { lr: 10, optimizer: opt })).toThrow(NonFiniteError);
    expect(snapshot(rnn, opt).equals(before)).toBe(true);
  });
});

describe('clipping bounds and learning rates the float32 step cannot represent', () => {
  const bad: [string, Record<string, number>][] = [
    ['clipNorm below the smallest float32', { clipNorm: 1e-50 }],
    ['clipValue below the smallest float32', { clipValue: 1e-46 }],
    ['clipNorm above the largest float32', { clipNorm: 1e39 }],
    ['lr above the largest float32', { lr: 1e39 }],
  ];
  it.each(bad)('trainStep refuses %s (both backends)', (_what, options) => {
    for (const backend of backends) {
      const rnn = model(backend);
      const before = snapshot(rnn);
      expect(() => rnn.trainStep(tokens(1), tokens(2), { lr: 0.1, ...options })).toThrow(RangeError);
      expect(snapshot(rnn).equals(before)).toBe(true);
    }
  });

  it('the Trainer refuses them at construction', () => {
    expect(() => new Trainer(model(), { k1: 4, clipNorm: 1e-50 })).toThrow(RangeError);
    expect(() => new Trainer(model(), { k1: 4, clipValue: 1e-46 })).toThrow(RangeError);
    expect(() => new Trainer(model(), { k1: 4, lr: 1e39 })).toThrow(RangeError);
  });

  it('a subnormal clipNorm still clips', () => {
    const rnn = model();
    const before = snapshot(rnn);
    const r = rnn.trainStep(tokens(1), tokens(2), { lr: 1, clipNorm: 1e-44 });
    expect(r.clipped).toBe(true);
    // A gradient of norm 1e-44 moves no parameter of this size.
    expect(snapshot(rnn).equals(before)).toBe(true);
  });
});

describe('calls while an asynchronous job uses the model', () => {
  it('forward, sample and the trainer throw TensorInUseError', async () => {
    const rnn = new RNN({ inputSize: V, hiddenSize: 256, outputSize: V, seed: 1 });
    const x = Tensor.from(new Int32Array(64 * 32).fill(1), [64, 32]);
    const running = rnn.trainStepAsync(x, x, { lr: 0.01 });
    expect(() => rnn.forward(tokens(1))).toThrow(TensorInUseError);
    expect(() => rnn.sample({ length: 3, seed: 1 })).toThrow(TensorInUseError);
    await running;
    expect(() => rnn.forward(tokens(1))).not.toThrow();
  });

  it('Trainer: a second fit() and state() during an update throw TensorInUseError', async () => {
    const rnn = model();
    const trainer = new Trainer(rnn, { k1: 4 });
    const data = new StreamBatcher(Int32Array.from({ length: 400 }, (_, i) => i % V), 4);
    const running = trainer.fit(data, { steps: 2 });
    await expect(trainer.fit(data, { steps: 1 })).rejects.toThrow(TensorInUseError);
    expect(() => trainer.state()).toThrow(TensorInUseError);
    await running;
    expect(trainer.state().step).toBe(2);
  });
});
