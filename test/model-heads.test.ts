/**
 * The RNN API of the task heads: `head` and `init` options, targets per head (and their
 * validation), predict, outputGradients and layerView, on the reference backend here (the native
 * heads against the oracle: test/heads-native.test.ts).
 */
import { CellKind, DTypeError, NonFiniteError, RNN, ShapeError, Tensor, backends, type HeadSpec, type RNNOptions } from '../lib';
import { relErr } from './helpers/oracle-checks';
import { checkPredictOptions } from '../lib/stack';

const base = { inputSize: 3, hiddenSize: 4, seed: 3, backend: 'reference' as const };

function denseInputs(T: number, B: number, seed = 1): Tensor {
  return Tensor.randn([T, B, 3], { seed });
}

function softmax(row: ArrayLike<number>): number[] {
  const max = Math.max(...Array.from(row));
  const e = Array.from(row, (v) => Math.exp(v - max));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

describe('RNN with task heads (reference backend)', () => {
  test('head and init are normalised, frozen and JSON-serialisable; bad ones are typed errors', () => {
    const rnn = new RNN({ ...base, outputSize: 3, head: { kind: 'classify', classWeights: Float64Array.of(1, 0.1, 2) } });
    expect(rnn.head).toEqual({ kind: 'classify', pool: 'last', classWeights: [1, Math.fround(0.1), 2] });
    expect(Object.isFrozen(rnn.head)).toBe(true);
    expect(JSON.parse(JSON.stringify(rnn.head))).toEqual(rnn.head);
    expect(rnn.init).toBe('pytorch');
    expect(new RNN({ ...base, outputSize: 2, head: { kind: 'regress', loss: 'huber', delta: 0.5 } }).head).toEqual({ kind: 'regress', positions: 'every', loss: 'huber', delta: 0.5 });
    const bad: [HeadSpec | unknown, unknown][] = [
      [{ kind: 'softmax' }, TypeError],
      ['classify', TypeError],
      [{ kind: 'classify', pool: 'max' }, TypeError],
      [{ kind: 'classify', classWeights: [1, 2] }, ShapeError],
      [{ kind: 'classify', classWeights: [1, -1, 2] }, RangeError],
      [{ kind: 'classify', classWeights: [1, NaN, 2] }, RangeError],
      [{ kind: 'regress', loss: 'l1' }, TypeError],
      [{ kind: 'regress', delta: 1 }, TypeError],
      [{ kind: 'regress', loss: 'huber', delta: 0 }, RangeError],
      [{ kind: 'regress', loss: 'huber', delta: Infinity }, RangeError],
      [{ kind: 'regress', position: 'last' }, TypeError],
    ];
    for (const [head, error] of bad) expect(() => new RNN({ ...base, outputSize: 3, head: head as HeadSpec })).toThrow(error as ErrorConstructor);
    expect(() => new RNN({ ...base, outputSize: 3, init: 'xavier' as 'pytorch' })).toThrow(TypeError);
  });

  test('the default one-layer tanh model keeps its parameters U, W, b, V, c only with the tokens head', () => {
    expect(Object.keys(new RNN({ ...base, outputSize: 3 }).params)).toEqual(['U', 'W', 'b', 'V', 'c']);
    expect(Object.keys(new RNN({ ...base, outputSize: 3, head: { kind: 'tokens' } }).params)).toEqual(['U', 'W', 'b', 'V', 'c']);
    const classify = new RNN({ ...base, outputSize: 3, head: { kind: 'classify' } });
    expect(Object.keys(classify.params)).toEqual(['rnn.weight_ih_l0', 'rnn.weight_hh_l0', 'rnn.bias_ih_l0', 'rnn.bias_hh_l0', 'fc.weight', 'fc.bias']);
  });

  test('targets are validated per head: dtype, shape, class range, finite values', () => {
    const x = denseInputs(4, 2);
    const classify = new RNN({ ...base, outputSize: 3, head: { kind: 'classify' } });
    expect(() => classify.lossAndGradients(x, Tensor.from(Float32Array.of(0, 1), [2]))).toThrow(DTypeError);
    expect(() => classify.lossAndGradients(x, Tensor.from(Int32Array.of(0, 1, 2, 0, 1, 2, 0, 1), [4, 2]))).toThrow(ShapeError);
    expect(() => classify.lossAndGradients(x, Tensor.from(Int32Array.of(0, 3), [2]))).toThrow(RangeError);
    expect(() => classify.lossAndGradients(x, Tensor.from(Int32Array.of(0, -2), [2]))).toThrow(RangeError);
    expect(classify.lossAndGradients(x, Tensor.from(Int32Array.of(-1, -1), [2])).loss).toBe(0);
    const every = new RNN({ ...base, outputSize: 2, head: { kind: 'regress' } });
    expect(() => every.lossAndGradients(x, Tensor.from(new Int32Array(16), [4, 2, 2]))).toThrow(DTypeError);
    expect(() => every.lossAndGradients(x, Tensor.zeros([2, 2]))).toThrow(ShapeError);
    const nan = new Float32Array(16);
    nan[5] = NaN;
    expect(() => every.lossAndGradients(x, Tensor.from(nan, [4, 2, 2]))).toThrow(NonFiniteError);
    expect(() => every.trainStep(x, Tensor.from(nan, [4, 2, 2]), { lr: 0.1 })).toThrow(NonFiniteError);
    const last = new RNN({ ...base, outputSize: 2, head: { kind: 'regress', positions: 'last' } });
    expect(() => last.lossAndGradients(x, Tensor.zeros([4, 2, 2]))).toThrow(ShapeError);
    expect(() => last.lossAndGradients(x, Tensor.zeros([2, 2]), { lengths: Int32Array.of(5, 1) })).toThrow(RangeError);
  });

  const models: [string, RNNOptions][] = [
    ['classify last, lstm bi', { ...base, outputSize: 3, cell: 'lstm', bidirectional: true, head: { kind: 'classify' } }],
    ['classify mean, gru 2 layers', { ...base, outputSize: 3, cell: 'gru', numLayers: 2, head: { kind: 'classify', pool: 'mean' } }],
    ['regress every, tanh', { ...base, outputSize: 2, head: { kind: 'regress' } }],
    ['regress last huber, relu bi', { ...base, outputSize: 2, cell: 'relu', bidirectional: true, head: { kind: 'regress', positions: 'last', loss: 'huber' } }],
    ['tokens, default model', { ...base, outputSize: 3 }],
    ['tokens, gru', { ...base, outputSize: 3, cell: 'gru' }],
  ];

  function targetsOf(rnn: RNN, T: number, B: number): Tensor {
    const K = rnn.outputSize;
    if (rnn.head.kind === 'tokens') return Tensor.from(Int32Array.from({ length: T * B }, (_, i) => (i * 7) % K), [T, B]);
    if (rnn.head.kind === 'classify') return Tensor.from(Int32Array.from({ length: B }, (_, i) => i % K), [B]);
    return rnn.head.positions === 'every' ? Tensor.randn([T, B, K], { seed: 5 }) : Tensor.randn([B, K], { seed: 5 });
  }

  test.each(models)('%s: predict = the forward pass through the head, in any batchSize', (_label, options) => {
    const rnn = new RNN(options);
    const T = 5;
    const B = 5;
    const legacy = 'U' in rnn.params;
    const lengths = legacy ? undefined : Int32Array.of(5, 1, 3, 5, 2);
    const x = denseInputs(T, B);
    const { logits } = rnn.forward(x, lengths ? { lengths } : {});
    const p = rnn.predict(x, lengths ? { lengths } : {});
    expect(p.shape).toEqual(logits.shape);
    const K = rnn.outputSize;
    const z = logits.toArray();
    const expected = rnn.head.kind === 'regress' ? Array.from(z) : Array.from({ length: z.length / K }, (_, r) => softmax(z.subarray(r * K, (r + 1) * K))).flat();
    expect(relErr(p.toArray(), expected)).toBeLessThan(1e-6);
    for (const batchSize of [1, 2, 5, 9]) expect(rnn.predict(x, { ...(lengths ? { lengths } : {}), batchSize }).toArray()).toEqual(p.toArray());
    expect(() => rnn.predict(x, { batchSize: 0 })).toThrow(RangeError);
  });

  test('without batchSize a prediction runs as many sequences at once as fit in about 1 GiB', () => {
    expect(checkPredictOptions(undefined, 10_000, 2 ** 20)).toBe(1024);
    expect(checkPredictOptions({}, 300, 2 ** 20)).toBe(300);
    expect(checkPredictOptions({}, 5, 2 ** 40)).toBe(1); // one sequence over budget still runs
    expect(checkPredictOptions({ batchSize: 7 }, 10_000, 2 ** 20)).toBe(7); // an explicit size wins
    expect(checkPredictOptions({ batchSize: 70 }, 9, 1)).toBe(9);
    expect(() => checkPredictOptions({ batchSize: 0 }, 9, 1)).toThrow(RangeError);
    expect(() => checkPredictOptions(3 as never, 9, 1)).toThrow(TypeError);
  });

  test.each(models)('%s: outputGradients through the layer API = lossAndGradients', (_label, options) => {
    const rnn = new RNN(options);
    const T = 4;
    const B = 3;
    const legacy = 'U' in rnn.params;
    const lengths = legacy ? undefined : Int32Array.of(4, 1, 3);
    const x = denseInputs(T, B, 9);
    const y = targetsOf(rnn, T, B);
    const call = lengths ? { lengths } : {};
    const full = rnn.lossAndGradients(x, y, { ...call, training: legacy ? undefined : false });
    const { loss, dy } = rnn.outputGradients(x, y, call);
    expect(loss).toBeCloseTo(full.loss, 12);
    const view = rnn.layerView();
    const batch = { steps: T, batch: B, input: { kind: 'dense' as const, data: x.toArray() as Float32Array }, ...(lengths ? { lengths } : {}) };
    const fwd = backends.reference.layerForward(view.spec, view.weights, batch);
    const back = backends.reference.layerBackward(view.spec, view.weights, fwd.saved, { dy });
    fwd.saved.dispose();
    const names = legacy ? { weight_ih_l0: 'U', weight_hh_l0: 'W', bias_ih_l0: 'b' } : Object.fromEntries(Object.keys(view.weights).map((n) => [n, `rnn.${n}`]));
    for (const [engineName, name] of Object.entries(names)) expect(relErr(back.grads[engineName], full.grads[name].toArray())).toBeLessThan(1e-5);
  });

  test('layerView of the default model maps U, W, b to the engine layer with a zero bias_hh', () => {
    const rnn = new RNN({ ...base, outputSize: 3 });
    const x = denseInputs(6, 2);
    const view = rnn.layerView();
    const fwd = backends.reference.layerForward(view.spec, view.weights, { steps: 6, batch: 2, input: { kind: 'dense', data: x.toArray() as Float32Array } });
    fwd.saved.dispose();
    expect(relErr(fwd.y, rnn.forward(x).states.toArray())).toBeLessThan(1e-6);
    view.weights.weight_hh_l0[0] += 1; // a copy: the model is unchanged
    expect(rnn.layerView().weights.weight_hh_l0[0]).toBe(rnn.params.W.toArray()[0]);
  });

  test('a classify model learns on the reference backend with every optimizer step', () => {
    const rnn = new RNN({ ...base, outputSize: 2, cell: 'gru', head: { kind: 'classify' } });
    // The class is the sign of the first input's sum over the sequence.
    const x = denseInputs(5, 8, 4);
    const v = x.toArray();
    const labels = Int32Array.from({ length: 8 }, (_, b) => (Array.from({ length: 5 }, (_, t) => v[(t * 8 + b) * 3]).reduce((a, c) => a + c, 0) > 0 ? 1 : 0));
    const y = Tensor.from(labels, [8]);
    const before = rnn.lossAndGradients(x, y).loss;
    for (let i = 0; i < 30; i++) rnn.trainStep(x, y, { lr: 0.5 });
    expect(rnn.lossAndGradients(x, y).loss).toBeLessThan(before * 0.7);
  });

  describe('init', () => {
    const cells: CellKind[] = ['tanh', 'relu', 'lstm', 'gru'];
    test.each(cells)("%s: 'orthogonal' makes each gate's H×H block of weight_hh orthogonal, seeded; the rest stays PyTorch's", (cell) => {
      const H = 5;
      const options = { inputSize: 3, hiddenSize: H, outputSize: 2, cell, numLayers: 2, bidirectional: true, head: { kind: 'classify' as const }, seed: 9 };
      const rnn = new RNN({ ...options, backend: 'reference', init: 'orthogonal' });
      const pytorch = new RNN({ ...options, backend: 'reference' });
      expect(rnn.init).toBe('orthogonal');
      for (const [name, t] of Object.entries(rnn.params)) {
        if (!name.includes('weight_hh')) {
          expect(t.toArray()).toEqual(pytorch.params[name].toArray());
          continue;
        }
        const w = t.toArray();
        for (let g = 0; g < t.shape[0] / H; g++)
          for (let i = 0; i < H; i++)
            for (let j = 0; j < H; j++) {
              let dot = 0;
              for (let k = 0; k < H; k++) dot += w[(g * H + i) * H + k] * w[(g * H + j) * H + k];
              expect(Math.abs(dot - (i === j ? 1 : 0))).toBeLessThan(1e-6);
            }
      }
      expect(new RNN({ ...options, backend: 'reference', init: 'orthogonal' }).params['rnn.weight_hh_l1'].toArray()).toEqual(rnn.params['rnn.weight_hh_l1'].toArray());
      expect(new RNN({ ...options, seed: 10, backend: 'reference', init: 'orthogonal' }).params['rnn.weight_hh_l1'].toArray()).not.toEqual(rnn.params['rnn.weight_hh_l1'].toArray());
    });

    test("'identity' is weight_hh = I with zero biases for tanh and relu (the default model too), refused for gated cells", () => {
      const irnn = new RNN({ ...base, outputSize: 2, cell: 'relu', numLayers: 2, init: 'identity' });
      for (const [name, t] of Object.entries(irnn.params)) {
        if (name.includes('weight_hh')) expect(Array.from(t.toArray())).toEqual(Array.from({ length: 16 }, (_, i) => (i % 5 === 0 ? 1 : 0)));
        if (name.includes('bias')) expect(name.startsWith('fc') || t.toArray().every((v) => v === 0)).toBe(true);
      }
      const legacy = new RNN({ ...base, outputSize: 3, init: 'identity' });
      expect(Object.keys(legacy.params)).toEqual(['U', 'W', 'b', 'V', 'c']);
      expect(Array.from(legacy.params.W.toArray())).toEqual(Array.from({ length: 16 }, (_, i) => (i % 5 === 0 ? 1 : 0)));
      expect(legacy.params.b.toArray().every((v) => v === 0)).toBe(true);
      expect(legacy.params.U.toArray()).toEqual(new RNN({ ...base, outputSize: 3 }).params.U.toArray());
      for (const cell of ['lstm', 'gru'] as const) expect(() => new RNN({ ...base, outputSize: 2, cell, init: 'identity' })).toThrow(TypeError);
    });
  });
});
