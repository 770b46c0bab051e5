/**
 * Engine models on large batches (native/model.cc): from B = 64 rows and enough recurrent work a
 * call runs as two fixed shards of the batch's rows, each the whole forward, loss and backward on
 * its own rows, whose gradients are then added in shard order. Checked against the float64
 * oracle (every cell and head, lengths, h0/c0 and their gradients, captured states, truncation,
 * uneven shards) and bitwise across 1 to 4 threads (side by side on 2 and 3, one after the other
 * on 1 and 4), on every ISA. Dropout models run unsharded (their masks depend on an element's
 * place in the whole batch): checked against the oracle too.
 */
import { CellKind, Optimizer, RNN, Tensor, numThreads, setIsa, setNumThreads, supportedIsas, type HeadSpec } from '../lib';
import { ModelTargets, NativeModel, checkModelCall, checkModelSpec, modelParameters, referenceModelLossAndGradients } from '../lib/engine/model';
import { LayerBatch } from '../lib/engine/spec';
import { randomLengths, uniform64 } from './helpers/engine-problems';
import { Random, mulberry32, relErr } from './helpers/oracle-checks';

const D = 5;

interface Case {
  cell: CellKind;
  L: number;
  bidirectional: boolean;
  head: HeadSpec;
  K: number;
  H: number;
  T: number;
  B: number;
  lengths: boolean;
  tokens: boolean;
  truncate: number | null;
  dropout: number;
  stateAt: number | null;
}

function targetsFor(rng: Random, head: HeadSpec, K: number, T: number, B: number): ModelTargets {
  if (head.kind === 'tokens') return Int32Array.from({ length: T * B }, () => (rng() < 0.2 ? -1 : Math.floor(rng() * K)));
  if (head.kind === 'classify') return Int32Array.from({ length: B }, (_, b) => (b % 7 === 1 ? -1 : Math.floor(rng() * K)));
  const n = (head.positions === 'last' ? B : T * B) * K;
  return Float32Array.from({ length: n }, () => 2 * rng() - 1);
}

function build(seed: number, c: Case) {
  const rng = mulberry32(seed);
  const spec = checkModelSpec({ cell: c.cell, inputSize: D, hiddenSize: c.H, numLayers: c.L, bidirectional: c.bidirectional, dropout: c.dropout, outputSize: c.K, head: c.head });
  const params: Record<string, Float32Array> = {};
  const scale = Math.min(0.7, 1.5 / Math.sqrt(c.H));
  for (const p of modelParameters(spec)) params[p.name] = Float32Array.from(uniform64(rng, p.size, scale));
  const states = c.L * (c.bidirectional ? 2 : 1) * c.B * c.H;
  const batch: LayerBatch = {
    steps: c.T,
    batch: c.B,
    input: c.tokens ? { kind: 'tokens', data: Int32Array.from({ length: c.T * c.B }, () => Math.floor(rng() * D)) } : { kind: 'dense', data: Float32Array.from(uniform64(rng, c.T * c.B * D, 1)) },
    lengths: c.lengths ? randomLengths(rng, c.T, c.B) : null,
    h0: Float32Array.from(uniform64(rng, states, 0.5)),
    c0: c.cell === 'lstm' ? Float32Array.from(uniform64(rng, states, 0.5)) : null,
  };
  const options = { training: c.dropout > 0, dropoutSeed: c.dropout > 0 ? 99 : undefined, truncate: c.truncate, reduction: 'mean' as const, stateAt: c.stateAt };
  const call = checkModelCall(spec, batch, options, false);
  return { spec, params, call, targets: targetsFor(rng, c.head, c.K, c.T, c.B) };
}

function close(got: ArrayLike<number>, want: ArrayLike<number>, tolerance: number, what: string): void {
  const e = relErr(got, want);
  if (!(e <= tolerance)) throw new Error(`${what}: relative error ${e}`);
}

// Every case has B >= 64 and T * B * G * H^2 >= 2^20 (sharded) unless it drops out. B = 65, 67
// and 69 split into uneven shards for every tile height (4, 6 or 8 rows).
const CASES: [string, Case][] = [
  ['tokens lstm, h0/c0, stateAt', { cell: 'lstm', L: 1, bidirectional: false, head: { kind: 'tokens' }, K: 5, H: 33, T: 9, B: 67, lengths: false, tokens: true, truncate: null, dropout: 0, stateAt: 4 }],
  ['tokens gru L2, dense, truncate 3', { cell: 'gru', L: 2, bidirectional: false, head: { kind: 'tokens' }, K: 4, H: 32, T: 11, B: 65, lengths: false, tokens: false, truncate: 3, dropout: 0, stateAt: null }],
  ['classify last weighted, bidirectional lstm, lengths', { cell: 'lstm', L: 1, bidirectional: true, head: { kind: 'classify', classWeights: [1, 0, 3] }, K: 3, H: 32, T: 8, B: 69, lengths: true, tokens: false, truncate: null, dropout: 0, stateAt: null }],
  ['classify mean, tanh L2 bidirectional', { cell: 'tanh', L: 2, bidirectional: true, head: { kind: 'classify', pool: 'mean' }, K: 3, H: 69, T: 7, B: 65, lengths: true, tokens: true, truncate: null, dropout: 0, stateAt: null }],
  ['regress every huber, relu, lengths', { cell: 'relu', L: 1, bidirectional: false, head: { kind: 'regress', loss: 'huber', delta: 0.25 }, K: 2, H: 64, T: 10, B: 67, lengths: true, tokens: false, truncate: null, dropout: 0, stateAt: null }],
  ['regress last mse, gru bidirectional', { cell: 'gru', L: 1, bidirectional: true, head: { kind: 'regress', positions: 'last' }, K: 3, H: 40, T: 9, B: 64, lengths: false, tokens: false, truncate: null, dropout: 0, stateAt: null }],
  ['dropout (unsharded), lstm L2', { cell: 'lstm', L: 2, bidirectional: false, head: { kind: 'tokens' }, K: 4, H: 32, T: 8, B: 65, lengths: true, tokens: true, truncate: null, dropout: 0.3, stateAt: null }],
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
        expect(Math.abs(got.loss - ref.loss)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(ref.loss)));
        for (const name of Object.keys(ref.grads)) close(got.grads[name], ref.grads[name], 1e-4, `${isa} ${name}`);
        close(got.dh0, ref.dh0, 1e-4, `${isa} dh0`);
        if (ref.dc0) close(got.dc0!, ref.dc0, 1e-4, `${isa} dc0`);
        close(got.hT, ref.hT, 1e-5, `${isa} hT`);
        if (ref.cT) close(got.cT!, ref.cT, 1e-5, `${isa} cT`);
        if (c.stateAt !== null) {
          close(got.hAt!, ref.hAt!, 1e-5, `${isa} hAt`);
          if (ref.cAt) close(got.cAt!, ref.cAt, 1e-5, `${isa} cAt`);
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
      const rnn = new RNN({ inputSize: D, hiddenSize: c.H, outputSize: c.K, cell: c.cell, numLayers: c.L, bidirectional: c.bidirectional, head: c.head, seed: 3 });
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
    for (const [, c] of CASES.slice(0, 3)) {
      const one = run(isa, 1, c);
      for (const threads of [2, 3, 4]) expect(run(isa, threads, c)).toEqual(one);
    }
  });
});
