/**
 * Issue 13, native numerics: on every ISA, an update whose result would not be finite is refused
 * with every parameter and state bit left as it was (all six optimizers, sync and async) and an
 * update that is accepted is the textbook one; the native parser refuses Adam betas that round to
 * 1 and eps that rounds to 0 in float32.
 */
import { NonFiniteError, RNN, Tensor, setIsa, supportedIsas } from '../lib';
import { NativeOptimizerConfig, createEngine, nativeArgs } from '../lib/backends/native';

const KINDS = ['sgd', 'momentum', 'nesterov', 'adagrad', 'rmsprop', 'adam'] as const;
const SLOTS: Record<string, number> = { sgd: 0, momentum: 1, nesterov: 1, adagrad: 1, rmsprop: 1, adam: 2 };

/** The error f throws or rejects with (the addon's errors come from Node's main realm, so match by fields). */
async function failure(f: () => unknown): Promise<{ name: string; code?: string; message: string }> {
  try {
    await f();
  } catch (err) {
    return err as { name: string; code?: string; message: string };
  }
  throw new Error('expected a throw');
}

const D = 2, H = 3, K = 2, T = 2, B = 1;
const SIZES: Record<string, number> = { U: H * D, W: H * H, b: H, V: K * H, c: K };

/**
 * A direct train-step request. Output biases c and the state slots are set to `c` and `state`;
 * every logit then rounds to c, so the loss and gradient stay finite whatever c is, and both
 * targets are class 0, so the output-bias gradients add up instead of cancelling.
 */
function request(kind: string, lr: number, c: number, state: number, optimizer: Partial<NativeOptimizerConfig> = {}) {
  const params = {
    U: new Float32Array(SIZES.U).fill(0.1),
    W: new Float32Array(SIZES.W).fill(0.1),
    b: new Float32Array(SIZES.b),
    V: new Float32Array(SIZES.V).fill(0.1),
    c: new Float32Array(SIZES.c).fill(c),
  };
  const slots: Record<string, Float32Array> = {};
  for (const name of Object.keys(SIZES)) for (let j = 0; j < SLOTS[kind]; j++) slots[`${name}${j}`] = new Float32Array(SIZES[name]).fill(state);
  return {
    arrays: { ...params, ...slots },
    req: {
      D, H, K, T, B, ...params,
      tokens: undefined, dense: Float32Array.from([0.5, -0.5, 0.25, 1]), h0: undefined, hT: new Float32Array(B * H),
      states: undefined, logits: undefined, targets: Int32Array.from([0, 0]), truncate: undefined, reduction: undefined,
      hAt: undefined, hAtStep: undefined, gU: undefined, gW: undefined, gb: undefined, gV: undefined, gc: undefined, gh0: undefined,
      clipNorm: undefined, clipValue: undefined, optimizer: { kind, lr, ...optimizer }, state: slots, out: new Float64Array(3),
    },
  };
}

const bits = (arrays: Record<string, Float32Array>) => Object.entries(arrays).map(([n, a]) => `${n}:${Buffer.from(a.buffer).toString('hex')}`);
const allFinite = (arrays: Record<string, Float32Array>) => Object.values(arrays).every((a) => a.every(Number.isFinite));

const isas: string[] = supportedIsas();

describe.each(isas)('updates that would not be finite are refused, leaving parameters and state bit-identical (%s)', (isa) => {
  beforeAll(() => setIsa(isa as 'scalar'));
  afterAll(() => setIsa('auto'));
  // Output biases of 3e38 and state slots of -3e38: every optimizer's new value overflows or, for
  // the square-root ones, takes the root of a negative number (NaN). Before: accepted silently.
  describe.each(['trainStep', 'trainStepAsync'] as const)('%s', (method) => {
    test.each(KINDS)('%s', async (kind) => {
      const { arrays, req } = request(kind, kind === 'sgd' ? 3e38 : 1, 3e38, -3e38);
      const before = bits(arrays);
      const engine = createEngine();
      const e = await failure(() => engine[method](...nativeArgs(req)));
      expect([e.code, e.message]).toEqual([
        'BPTT_NON_FINITE',
        expect.stringMatching(/^the update is not finite \([UWbVc] or its optimizer state would become NaN or infinite\); parameters and optimizer state were left unchanged$/),
      ]);
      expect(bits(arrays)).toEqual(before);
      // The same step from ordinary values goes through, and leaves finite values.
      const good = request(kind, 0.1, 0.5, 0.25);
      const start = bits(good.arrays);
      await engine[method](...nativeArgs(good.req));
      expect(bits(good.arrays)).not.toEqual(start);
      expect(allFinite(good.arrays)).toBe(true);
    });
  });

  test('an SGD step that overflows (lr 1e20 on large inputs) throws NonFiniteError through the RNN API', () => {
    const rnn = new RNN({ inputSize: 1, hiddenSize: 2, outputSize: 2, seed: 1 });
    rnn.setParams({ U: Float32Array.from([1e-21, -1e-21]), W: new Float32Array(4), b: new Float32Array(2), V: Float32Array.from([1, -1, -1, 1]), c: new Float32Array(2) });
    const x = Tensor.from(Float32Array.from([1e21, 1e21]), [2, 1, 1]);
    const y = Tensor.from(Int32Array.from([0, 1]), [2, 1]);
    const snapshot = () => bits(Object.fromEntries(Object.entries(rnn.params).map(([n, t]) => [n, t.toArray() as Float32Array])));
    const before = snapshot();
    expect(() => rnn.trainStep(x, y, { lr: 1e20 })).toThrow(NonFiniteError);
    expect(() => rnn.trainStep(x, y, { lr: 1e20 })).toThrow(/the update is not finite \(U /);
    expect(snapshot()).toEqual(before);
    const step = rnn.trainStep(x, y, { lr: 1e-3 });
    expect(Number.isFinite(step.loss)).toBe(true);
  });
});

describe.each(isas)('an accepted update is the textbook one (%s)', (isa) => {
  beforeAll(() => setIsa(isa as 'scalar'));
  afterAll(() => setIsa('auto'));
  // Sizes that give every kernel full vectors and a tail: U 100, W 400, b 20, V 140, c 7.
  const [d, h, k, t, b] = [5, 20, 7, 4, 2];
  const hyper = { momentum: 0.8, rho: 0.7, beta1: 0.85, beta2: 0.99, eps: 1e-6, step: 3 };

  test.each(KINDS)('%s, with a clipping factor', (kind) => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5;
    const sizes: Record<string, number> = { U: h * d, W: h * h, b: h, V: k * h, c: k };
    const params: Record<string, Float32Array> = {};
    for (const name of Object.keys(sizes)) params[name] = Float32Array.from({ length: sizes[name] }, random);
    const state: Record<string, Float32Array> = {};
    for (const name of Object.keys(sizes))
      for (let j = 0; j < SLOTS[kind]; j++) state[`${name}${j}`] = Float32Array.from({ length: sizes[name] }, () => Math.abs(random()));
    const grads: Record<string, Float32Array> = {};
    for (const name of Object.keys(sizes)) grads[name] = new Float32Array(sizes[name]);
    const base = {
      D: d, H: h, K: k, T: t, B: b, ...params,
      tokens: Int32Array.from({ length: t * b }, (_, i) => (i * 3) % d), dense: undefined, h0: undefined, hT: new Float32Array(b * h),
      states: undefined, logits: undefined, targets: Int32Array.from({ length: t * b }, (_, i) => (i * 5) % k), truncate: undefined,
      reduction: undefined, hAt: undefined, hAtStep: undefined,
    };
    const engine = createEngine();
    engine.gradients(...nativeArgs({ ...base, gU: grads.U, gW: grads.W, gb: grads.b, gV: grads.V, gc: grads.c, gh0: undefined } as never));
    const before = Object.fromEntries(Object.entries({ ...params, ...state }).map(([n, a]) => [n, Float64Array.from(a)]));
    const out = new Float64Array(3);
    let squares = 0;
    for (const g of Object.values(grads)) for (const v of g) squares += v * v;
    const clipNorm = 0.5 * Math.sqrt(squares);
    engine.trainStep(...nativeArgs({ ...base, clipNorm, clipValue: undefined, optimizer: { kind, lr: 0.1, ...hyper }, state, out } as never));
    expect(out[2]).toBe(1); // clipped: the gradient is scaled by clipNorm / norm
    const scale = clipNorm / out[1];
    const c1 = 1 / (1 - hyper.beta1 ** hyper.step), c2 = 1 / (1 - hyper.beta2 ** hyper.step);
    let worst = 0;
    for (const name of Object.keys(sizes)) {
      for (let i = 0; i < sizes[name]; i++) {
        const g = scale * grads[name][i];
        let p = before[name][i], s1 = before[`${name}0`]?.[i] ?? 0, s2 = before[`${name}1`]?.[i] ?? 0;
        if (kind === 'sgd') p -= 0.1 * g;
        if (kind === 'momentum' || kind === 'nesterov') {
          s1 = hyper.momentum * s1 + g;
          p -= 0.1 * (kind === 'momentum' ? s1 : g + hyper.momentum * s1);
        }
        if (kind === 'adagrad' || kind === 'rmsprop') {
          s1 = kind === 'adagrad' ? s1 + g * g : hyper.rho * s1 + (1 - hyper.rho) * g * g;
          p -= (0.1 * g) / (Math.sqrt(s1) + hyper.eps);
        }
        if (kind === 'adam') {
          s1 = hyper.beta1 * s1 + (1 - hyper.beta1) * g;
          s2 = hyper.beta2 * s2 + (1 - hyper.beta2) * g * g;
          p -= (0.1 * s1 * c1) / (Math.sqrt(s2 * c2) + hyper.eps);
        }
        const pairs: [number, number][] = [[params[name][i], p]];
        if (SLOTS[kind] > 0) pairs.push([state[`${name}0`][i], s1]);
        if (SLOTS[kind] > 1) pairs.push([state[`${name}1`][i], s2]);
        // Error relative to the change, beyond the float32 rounding of the stored result.
        pairs.forEach(([got, want], j) => {
          const old = before[j === 0 ? name : `${name}${j - 1}`][i];
          worst = Math.max(worst, Math.max(0, Math.abs(got - want) - 6e-8 * Math.abs(want)) / Math.abs(want - old));
        });
      }
    }
    expect(worst).toBeLessThan(1e-5);
  });
});

describe('the native parser refuses optimizer settings that break in float32', () => {
  test.each([
    ['beta1', 0.99999999, /^beta1 must be below 1 also in float32 \(at most 0\.99999994\), got 0\.99999998999999995$/],
    ['beta2', 0.99999999, /^beta2 must be below 1 also in float32/],
    ['beta1', 0.99999998, /^beta1 must be below 1 also in float32/],
    ['eps', 1e-46, /^eps must be above 0 also in float32 \(at least 1\.4e-45\), got 1e-46$/],
    ['eps', 0, /^eps must be above 0 also in float32/],
  ])('%s = %p is a RangeError (sync and async)', async (name, value, message) => {
    for (const method of ['trainStep', 'trainStepAsync'] as const) {
      const { arrays, req } = request('adam', 0.01, 0, 0, { [name]: value });
      const before = bits(arrays);
      const e = await failure(() => createEngine()[method](...nativeArgs(req)));
      expect([e.name, e.message]).toEqual(['RangeError', expect.stringMatching(message)]);
      expect(bits(arrays)).toEqual(before);
    }
  });

  test('the largest float32 below 1 and the smallest above 0 are accepted', () => {
    const { arrays, req } = request('adam', 0.01, 0, 0, { beta1: 0.99999994, beta2: 0.99999994, eps: 1.5e-45 });
    createEngine().trainStep(...nativeArgs(req));
    expect(allFinite(arrays)).toBe(true);
  });
});
