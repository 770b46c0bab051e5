/**
 * The native task heads (native/heads.cc, model.cc) against the float64 oracle on every ISA: each
 * head × cell × {1, 2 layers} × {uni, bi} × lengths, odd sizes (H 1, 3, 17; B 1, 5; T 1, 7) —
 * forward, loss, every gradient, the output gradients; the training step (every optimizer,
 * clipping) against the reference's, all or nothing on a non-finite step; async = sync bitwise;
 * and the C++ side's own validation of targets and heads.
 */
import { CellKind, NonFiniteError, OPTIMIZER_KINDS, Optimizer, RNN, Tensor, setIsa, supportedIsas, type HeadSpec, type RNNOptions } from '../lib';
import { addon } from '../lib/native';
import { NativeModel, checkModelCall, checkModelSpec, modelParameters, referenceModelForward, referenceModelLossAndGradients, referenceOutputGradients } from '../lib/engine/model';
import { ModelCase, buildModelProblem, expectClose, expectGradientsClose } from './helpers/model-problems';

const D = 4;
const CELLS: CellKind[] = ['tanh', 'relu', 'lstm', 'gru'];
const HEADS: [string, HeadSpec, number][] = [
  ['tokens', { kind: 'tokens' }, 5],
  ['classify last', { kind: 'classify' }, 3],
  ['classify mean weighted', { kind: 'classify', pool: 'mean', classWeights: [0.5, 2, 1.25] }, 3],
  ['classify last weighted', { kind: 'classify', classWeights: [1, 0, 3] }, 3],
  ['regress every mse', { kind: 'regress' }, 2],
  ['regress last mse', { kind: 'regress', positions: 'last' }, 3],
  ['regress every huber', { kind: 'regress', loss: 'huber', delta: 0.25 }, 2],
  ['regress last huber', { kind: 'regress', positions: 'last', loss: 'huber', delta: 0.25 }, 1],
];

type Case = ModelCase;
const build = (seed: number, c: Case) => buildModelProblem(seed, c, D);

const cases: [string, Case][] = [];
let n = 0;
for (const [name, head, K] of HEADS)
  for (const cell of CELLS)
    for (const L of [1, 2])
      for (const bidirectional of [false, true]) {
        const c: Case = {
          cell,
          L,
          bidirectional,
          head,
          K,
          H: [1, 3, 17][n % 3],
          T: [1, 7][(n >> 1) % 2],
          B: [1, 5][n % 2],
          lengths: n % 3 !== 2,
          tokens: n % 4 === 3,
          truncate: n % 5 === 4 ? 2 : null,
          dropout: L === 2 && n % 2 === 0 ? 0.3 : 0,
        };
        cases.push([`${name} ${cell} L${L}${bidirectional ? ' bi' : ''} H${c.H} T${c.T} B${c.B}${c.lengths ? ' lengths' : ''}${c.truncate ? ' k2' : ''}${c.dropout ? ' dropout' : ''}`, c]);
        n++;
      }


describe('native task heads', () => {
  test.each(cases)('native = oracle on every ISA: %s', (_label, c) => {
    const m = build(1000 + cases.findIndex(([, x]) => x === c), c);
    const ref = referenceModelLossAndGradients(m.spec, m.params, m.call.batch, m.targets, m.call.options);
    const refForward = referenceModelForward(m.spec, m.params, m.call.batch);
    const refDy = referenceOutputGradients(m.spec, m.params, m.call.batch, m.targets, 'mean');
    const model = new NativeModel(m.spec);
    try {
      for (const isa of supportedIsas()) {
        setIsa(isa as 'scalar');
        const got = model.lossAndGradients(m.params, m.call.batch, m.targets, m.call.options);
        expectGradientsClose(got, ref, isa);
        const fwd = model.forward(m.params, m.call.batch);
        expectClose(fwd.logits, refForward.logits, 2e-5, `${isa} forward`);
        const dy = model.outputGradients(m.params, m.call.batch, m.targets, 'mean');
        expect(Math.abs(dy.loss - refDy.loss)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(refDy.loss)));
        expectClose(dy.dy, refDy.dy, 1e-4, `${isa} dy`);
      }
    } finally {
      setIsa('auto');
      model.release();
    }
  });

  const models: [string, RNNOptions][] = [
    ['classify lstm bi', { inputSize: D, hiddenSize: 5, outputSize: 3, cell: 'lstm', bidirectional: true, head: { kind: 'classify', classWeights: [1, 2, 0.5] } }],
    ['classify mean gru L2 dropout', { inputSize: D, hiddenSize: 5, outputSize: 3, cell: 'gru', numLayers: 2, dropout: 0.2, head: { kind: 'classify', pool: 'mean' } }],
    ['regress every tanh', { inputSize: D, hiddenSize: 5, outputSize: 2, head: { kind: 'regress', loss: 'huber', delta: 0.5 } }],
    ['regress last relu bi', { inputSize: D, hiddenSize: 5, outputSize: 2, cell: 'relu', bidirectional: true, head: { kind: 'regress', positions: 'last' } }],
  ];

  function data(rnn: RNN, seed: number) {
    const T = 6;
    const B = 4;
    const x = Tensor.randn([T, B, D], { seed });
    const lengths = Int32Array.of(6, 2, 5, 1);
    const K = rnn.outputSize;
    const head = rnn.head;
    const y =
      head.kind === 'classify'
        ? Tensor.from(Int32Array.of(0, 2, 1, 2), [B])
        : head.kind === 'regress' && head.positions === 'last'
          ? Tensor.randn([B, K], { seed: seed + 1 })
          : Tensor.randn([T, B, K], { seed: seed + 1 });
    return { x, y, lengths };
  }

  test.each(models)('%s: trainStep = the reference step for every optimizer, with clipping', (_label, options) => {
    for (const kind of OPTIMIZER_KINDS) {
      const a = new RNN({ ...options, seed: 4 });
      const b = new RNN({ ...options, seed: 4, backend: 'reference' });
      const { x, y, lengths } = data(a, 3);
      const oa = new Optimizer(a, { kind });
      const ob = new Optimizer(b, { kind });
      for (let step = 0; step < 3; step++) {
        const seed = 11 + step;
        const sa = a.trainStep(x, y, { lr: 0.05, optimizer: oa, clipNorm: 0.5, lengths, dropoutSeed: seed });
        const sb = b.trainStep(x, y, { lr: 0.05, optimizer: ob, clipNorm: 0.5, lengths, dropoutSeed: seed });
        expect(Math.abs(sa.loss - sb.loss)).toBeLessThan(1e-5 * Math.max(1, sb.loss));
        expect(Math.abs(sa.gradNorm - sb.gradNorm)).toBeLessThan(1e-4 * Math.max(1, sb.gradNorm));
        expect(sa.clipped).toBe(sb.clipped);
      }
      for (const name of Object.keys(a.params)) expectClose(a.params[name].toArray(), b.params[name].toArray(), 1e-4, `${kind} ${name}`);
    }
  });

  test.each(models)('%s: async = sync bitwise (lossAndGradients, trainStep, predict)', async (_label, options) => {
    const a = new RNN({ ...options, seed: 6 });
    const b = new RNN({ ...options, seed: 6 });
    const { x, y, lengths } = data(a, 8);
    const ga = a.lossAndGradients(x, y, { lengths, dropoutSeed: 5 });
    const gb = await b.lossAndGradientsAsync(x, y, { lengths, dropoutSeed: 5 });
    expect(gb.loss).toBe(ga.loss);
    for (const name of Object.keys(ga.grads)) expect(gb.grads[name].toArray()).toEqual(ga.grads[name].toArray());
    const oa = new Optimizer(a, { kind: 'adam' });
    const ob = new Optimizer(b, { kind: 'adam' });
    for (let i = 0; i < 2; i++) {
      const sa = a.trainStep(x, y, { lr: 0.01, optimizer: oa, lengths, dropoutSeed: i });
      const sb = await b.trainStepAsync(x, y, { lr: 0.01, optimizer: ob, lengths, dropoutSeed: i });
      expect(sb.loss).toBe(sa.loss);
    }
    for (const name of Object.keys(a.params)) expect(b.params[name].toArray()).toEqual(a.params[name].toArray());
    const pa = a.predict(x, { lengths, batchSize: 3 });
    const pb = await b.predictAsync(x, { lengths, batchSize: 3 });
    expect(pb.toArray()).toEqual(pa.toArray());
    const da = a.outputGradients(x, y, { lengths });
    const db = await b.outputGradientsAsync(x, y, { lengths });
    expect(db.loss).toBe(da.loss);
    expect(db.dy).toEqual(da.dy);
    // Whole or in slices: the same up to float32 rounding (the kernels tile by batch size).
    expectClose(a.predict(x, { lengths }).toArray(), pa.toArray(), 1e-6, 'slices');
  });

  test.each(models)('%s: predict and outputGradients agree with the reference model', (_label, options) => {
    const a = new RNN({ ...options, seed: 2 });
    const b = new RNN({ ...options, seed: 2, backend: 'reference' });
    const { x, y, lengths } = data(a, 1);
    expectClose(a.predict(x, { lengths, batchSize: 3 }).toArray(), b.predict(x, { lengths }).toArray(), 2e-5, 'predict');
    const ga = a.outputGradients(x, y, { lengths });
    const gb = b.outputGradients(x, y, { lengths });
    expect(Math.abs(ga.loss - gb.loss)).toBeLessThan(1e-5 * Math.max(1, gb.loss));
    expectClose(ga.dy, gb.dy, 1e-4, 'dy');
  });

  test('the default model: outputGradients and predict (sync and async) agree with the reference model', async () => {
    const options = { inputSize: D, hiddenSize: 6, outputSize: D, seed: 3 };
    const a = new RNN(options);
    const b = new RNN({ ...options, backend: 'reference' });
    const x = Tensor.from(Int32Array.from({ length: 12 }, (_, i) => (i * 3) % D), [4, 3]);
    const y = Tensor.from(Int32Array.from({ length: 12 }, (_, i) => (i % 5 === 0 ? -1 : (i * 7) % D)), [4, 3]);
    const ga = a.outputGradients(x, y);
    const gb = b.outputGradients(x, y);
    expect(Math.abs(ga.loss - gb.loss)).toBeLessThan(1e-6);
    expectClose(ga.dy, gb.dy, 1e-5, 'dy');
    expect(await a.outputGradientsAsync(x, y)).toEqual(ga);
    expectClose(a.predict(x, { batchSize: 2 }).toArray(), b.predict(x).toArray(), 1e-5, 'predict');
    expect((await a.predictAsync(x, { batchSize: 2 })).toArray()).toEqual(a.predict(x, { batchSize: 2 }).toArray());
    expect(() => new RNN({ ...options, head: { kind: 'classify' } }).sample({ length: 3 })).toThrow(TypeError);
  });

  test('a non-finite step leaves the parameters and the optimizer state bit-identical', () => {
    for (const head of [{ kind: 'regress' as const }, { kind: 'regress' as const, positions: 'last' as const }]) {
      const rnn = new RNN({ inputSize: D, hiddenSize: 3, outputSize: 2, cell: 'gru', head, seed: 1 });
      const optimizer = new Optimizer(rnn, { kind: 'adam' });
      const { x, lengths } = data(rnn, 2);
      const shape = head.positions === 'last' ? [4, 2] : [6, 4, 2];
      rnn.trainStep(x, Tensor.zeros(shape), { lr: 0.01, optimizer, lengths });
      const before = Object.fromEntries(Object.entries(rnn.params).map(([k, t]) => [k, t.toArray().slice()]));
      const state = Object.keys(rnn.params).flatMap((k) => optimizer.slots(k).map((t) => t.toArray().slice()));
      // Targets near float32's largest value: the gradient (2·(z - y)) overflows to infinity.
      const huge = Tensor.from(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(-3e38), shape);
      expect(() => rnn.trainStep(x, huge, { lr: 0.01, optimizer, lengths })).toThrow(NonFiniteError);
      for (const [k, t] of Object.entries(rnn.params)) expect(t.toArray()).toEqual(before[k]);
      expect(Object.keys(rnn.params).flatMap((k) => optimizer.slots(k).map((t) => t.toArray()))).toEqual(state);
      expect(optimizer.step).toBe(1);
    }
  });

  test('the addon checks targets and heads itself (bypassing the TS checks)', () => {
    const spec = checkModelSpec({ cell: 'gru', inputSize: D, hiddenSize: 3, outputSize: 3, head: { kind: 'classify' } });
    const params: Record<string, Float32Array> = {};
    for (const p of modelParameters(spec)) params[p.name] = new Float32Array(p.size).fill(0.1);
    const batch = checkModelCall(spec, { steps: 2, batch: 2, input: { kind: 'dense', data: new Float32Array(16) } }, {}, false).batch;
    const o = { training: false, dropoutSeed: 0, truncate: null, reduction: 'mean' as const, stateAt: null };
    const model = new NativeModel(spec);
    expect(() => model.lossAndGradients(params, batch, Int32Array.of(0, 3), o)).toThrow(/outside \[0, 3\)/);
    expect(() => model.lossAndGradients(params, batch, Int32Array.of(0, 1, 2, 0), o)).toThrow(/must have 2 elements/);
    expect(() => model.lossAndGradients(params, batch, Float32Array.of(0, 1), o)).toThrow(/must be an Int32Array/);
    expect(model.lossAndGradients(params, batch, Int32Array.of(-1, 1), o).loss).toBeGreaterThan(0);
    const rspec = checkModelSpec({ cell: 'tanh', inputSize: D, hiddenSize: 3, outputSize: 1, head: { kind: 'regress', positions: 'last' } });
    const rparams: Record<string, Float32Array> = {};
    for (const p of modelParameters(rspec)) rparams[p.name] = new Float32Array(p.size).fill(0.1);
    const regress = new NativeModel(rspec);
    expect(() => regress.lossAndGradients(rparams, batch, Float32Array.of(0, NaN), o)).toThrow(/NaN or infinite/);
    expect(() => regress.lossAndGradients(rparams, batch, Int32Array.of(0, 1), o)).toThrow(/must be a Float32Array/);
    expect(() => regress.outputGradients(rparams, batch, Float32Array.of(Infinity, 0), 'mean')).toThrow(/NaN or infinite/);
    const Engine = addon().ModelEngine as new (...a: unknown[]) => unknown;
    // (The addon's errors come from Node's realm, not Jest's: matched by name and message.)
    const fails = (f: () => unknown, name: string, message: RegExp) => expect(f).toThrow(expect.objectContaining({ name, message: expect.stringMatching(message) }));
    fails(() => new Engine('gru', D, 3, 1, false, 0, 3, 'classify', 'every', 'cross-entropy', 1, null), 'TypeError', /classify\/every/);
    fails(() => new Engine('gru', D, 3, 1, false, 0, 3, 'regress', 'last', 'huber', NaN, null), 'RangeError', /delta/);
    fails(() => new Engine('gru', D, 3, 1, false, 0, 3, 'classify', 'last', 'cross-entropy', 1, Float32Array.of(1, -1, 1)), 'RangeError', /classWeights\[1\]/);
    fails(() => new Engine('gru', D, 3, 1, false, 0, 3, 'regress', 'last', 'mse', 1, Float32Array.of(1, 1, 1)), 'TypeError', /classWeights are for/);
    model.release();
    regress.release();
  });

  test('the addon finds a NaN or infinity anywhere in a large input', () => {
    const [T, B, W] = [64, 128, 128];
    const spec = checkModelSpec({ cell: 'gru', inputSize: W, hiddenSize: 3, outputSize: 2 });
    const params: Record<string, Float32Array> = {};
    for (const p of modelParameters(spec)) params[p.name] = new Float32Array(p.size).fill(0.1);
    const data = new Float32Array(T * B * W).fill(0.5);
    const batch = checkModelCall(spec, { steps: T, batch: B, input: { kind: 'dense', data } }, {}, false).batch;
    const targets = new Int32Array(T * B);
    const o = { training: false, dropoutSeed: 0, truncate: null, reduction: 'mean' as const, stateAt: null };
    const model = new NativeModel(spec);
    try {
      for (const at of [0, data.length / 2 - 1, data.length / 2, data.length - 1]) {
        for (const bad of [NaN, -Infinity]) {
          data[at] = bad;
          expect(() => model.lossAndGradients(params, batch, targets, o)).toThrow(/dense inputs contains NaN or infinite values/);
          data[at] = 0.5;
        }
      }
    } finally {
      model.release();
    }
  });
});
