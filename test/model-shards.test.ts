/**
 * Engine models on large batches (native/model.cc): from B = 32 rows and enough recurrent work a
 * call runs as two fixed shards of the batch's rows, each the whole forward, loss and backward on
 * its own rows, whose gradients are then added in shard order. Checked against the float64
 * oracle (every cell and head, lengths, h0/c0 and their gradients, captured states, truncation,
 * uneven shards) and bitwise across 1 to 4 threads (side by side on 2 and 3, one after the other
 * on 1 and 4), on every ISA. With dropout between layers each shard draws its rows' masks of the
 * whole batch (a mask hashes the element's place in it): the oracle, which masks the whole batch,
 * checks that too.
 */
import { Optimizer, RNN, Tensor, numThreads, setIsa, setNumThreads, supportedIsas } from '../lib';
import { NativeModel, referenceModelLossAndGradients } from '../lib/engine/model';
import { ModelCase, buildModelProblem, expectClose, expectGradientsClose } from './helpers/model-problems';

const D = 5;

type Case = ModelCase & { stateAt: number | null };
const build = (seed: number, c: Case) => buildModelProblem(seed, c, D);


// Every case has B >= 32 and T * B * G * H^2 >= 2^20 (sharded). B = 33, 35,
// 65, 67 and 69 split into uneven shards for every tile height (4, 6 or 8 rows); B = 33 leaves
// shards of two tiles and less.
const CASES: [string, Case][] = [
  ['tokens lstm, h0/c0, stateAt', { cell: 'lstm', L: 1, bidirectional: false, head: { kind: 'tokens' }, K: 5, H: 33, T: 9, B: 67, lengths: false, tokens: true, truncate: null, dropout: 0, stateAt: 4 }],
  ['tokens gru L2, dense, truncate 3', { cell: 'gru', L: 2, bidirectional: false, head: { kind: 'tokens' }, K: 4, H: 32, T: 11, B: 65, lengths: false, tokens: false, truncate: 3, dropout: 0, stateAt: null }],
  ['classify last weighted, bidirectional lstm, lengths', { cell: 'lstm', L: 1, bidirectional: true, head: { kind: 'classify', classWeights: [1, 0, 3] }, K: 3, H: 32, T: 8, B: 69, lengths: true, tokens: false, truncate: null, dropout: 0, stateAt: null }],
  ['classify mean, tanh L2 bidirectional', { cell: 'tanh', L: 2, bidirectional: true, head: { kind: 'classify', pool: 'mean' }, K: 3, H: 69, T: 7, B: 65, lengths: true, tokens: true, truncate: null, dropout: 0, stateAt: null }],
  ['regress every huber, relu, lengths', { cell: 'relu', L: 1, bidirectional: false, head: { kind: 'regress', loss: 'huber', delta: 0.25 }, K: 2, H: 64, T: 10, B: 67, lengths: true, tokens: false, truncate: null, dropout: 0, stateAt: null }],
  ['regress last mse, gru bidirectional', { cell: 'gru', L: 1, bidirectional: true, head: { kind: 'regress', positions: 'last' }, K: 3, H: 40, T: 9, B: 64, lengths: false, tokens: false, truncate: null, dropout: 0, stateAt: null }],
  ['tokens lstm, B = 33, truncate 4', { cell: 'lstm', L: 1, bidirectional: false, head: { kind: 'tokens' }, K: 7, H: 33, T: 9, B: 33, lengths: false, tokens: true, truncate: 4, dropout: 0, stateAt: null }],
  ['classify last gru, B = 35, lengths', { cell: 'gru', L: 1, bidirectional: false, head: { kind: 'classify' }, K: 3, H: 36, T: 8, B: 35, lengths: true, tokens: false, truncate: null, dropout: 0, stateAt: null }],
  ['dropout, lstm L2, lengths', { cell: 'lstm', L: 2, bidirectional: false, head: { kind: 'tokens' }, K: 4, H: 32, T: 8, B: 65, lengths: true, tokens: true, truncate: null, dropout: 0.3, stateAt: null }],
  ['dropout, gru L3 bidirectional, B = 35, truncate 2', { cell: 'gru', L: 3, bidirectional: true, head: { kind: 'tokens' }, K: 3, H: 35, T: 9, B: 35, lengths: false, tokens: false, truncate: 2, dropout: 0.4, stateAt: null }],
];

describe('engine models on large batches (shards)', () => {
  test.each(CASES)('lossAndGradients = the float64 oracle on every ISA: %s', (_label, c) => {
    const m = build(7000 + CASES.findIndex(([, x]) => x === c), c);
    const ref = referenceModelLossAndGradients(m.spec, m.params, m.call.batch, m.targets, m.call.options);
    const model = new NativeModel(m.spec);
    try {
      for (const isa of supportedIsas()) {
        setIsa(isa as 'scalar');
        const got = model.lossAndGradients(m.params, m.call.batch, m.targets, m.call.options);
        expectGradientsClose(got, ref, isa);
        expectClose(got.hT, ref.hT, 1e-5, `${isa} hT`);
        if (ref.cT) expectClose(got.cT!, ref.cT, 1e-5, `${isa} cT`);
        if (c.stateAt !== null) {
          expectClose(got.hAt!, ref.hAt!, 1e-5, `${isa} hAt`);
          if (ref.cAt) expectClose(got.cAt!, ref.cAt, 1e-5, `${isa} cAt`);
        }
      }
    } finally {
      setIsa('auto');
      model.release();
    }
  });

  // Everything a call returns and a training step changes, as hex, on `threads` threads.
  function run(isa: string, threads: number, c: Case): string[] {
    const previousThreads = numThreads();
    setIsa(isa as 'scalar');
    setNumThreads(threads);
    const hex = (a: ArrayLike<number> | null | undefined) => (a ? Buffer.from(Float32Array.from(a).buffer).toString('hex') : '-');
    try {
      const m = build(8000, c);
      const model = new NativeModel(m.spec);
      const got = model.lossAndGradients(m.params, m.call.batch, m.targets, m.call.options);
      const out = [String(got.loss), ...Object.keys(got.grads).sort().map((n) => hex(got.grads[n])), hex(got.dh0), hex(got.dc0), hex(got.hT), hex(got.cT), hex(got.hAt), hex(got.cAt)];
      model.release();
      const rnn = new RNN({ inputSize: D, hiddenSize: c.H, outputSize: c.K, cell: c.cell, numLayers: c.L, bidirectional: c.bidirectional, dropout: c.dropout, head: c.head, seed: 3 });
      const x = c.tokens ? Tensor.from(m.call.batch.input.data as Int32Array, [c.T, c.B]) : Tensor.from(m.call.batch.input.data as Float32Array, [c.T, c.B, D]);
      const headRows = c.head.kind === 'classify' || (c.head.kind === 'regress' && c.head.positions === 'last');
      const targetShape = c.head.kind === 'regress' ? (headRows ? [c.B, c.K] : [c.T, c.B, c.K]) : headRows ? [c.B] : [c.T, c.B];
      const y = Tensor.from(m.targets as Int32Array & Float32Array, targetShape);
      const optimizer = new Optimizer(rnn, { kind: 'adam' });
      for (let i = 0; i < 2; i++) {
        const step = rnn.trainStep(x, y, { lr: 0.01, clipNorm: 1, optimizer, lengths: m.call.batch.lengths ?? undefined, truncate: c.truncate ?? undefined });
        out.push(String(step.loss), String(step.gradNorm));
      }
      for (const name of Object.keys(rnn.params).sort()) out.push(hex(rnn.params[name].toArray() as Float32Array));
      rnn.dispose();
      return out;
    } finally {
      setNumThreads(previousThreads);
      setIsa('auto');
    }
  }

  test.each(supportedIsas())('bitwise identical on 1, 2, 3 and 4 threads: losses, gradients, states, training steps (%s)', (isa) => {
    for (const [, c] of [...CASES.slice(0, 3), ...CASES.filter(([label]) => label.startsWith('dropout'))]) {
      const one = run(isa, 1, c);
      for (const threads of [2, 3, 4]) expect(run(isa, threads, c)).toEqual(one);
    }
  });
});
