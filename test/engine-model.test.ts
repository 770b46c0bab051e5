/**
 * The engine + softmax-head model: the float64 reference against central finite differences, and
 * the native fused model against the reference on every ISA (every cell, stacks, directions,
 * lengths, truncation, dropout in training, token and dense input, the states after a step), and
 * its forward pass for prediction, which keeps nothing for backward, against the full one.
 */
import { CellKind, backends, setIsa, supportedIsas } from '../lib';
import { checkModelCall, checkModelSpec, modelParameters, NativeModel, NormalizedModelSpec, referenceModelForward, referenceModelLossAndGradients } from '../lib/engine/model';
import { randomLengths, uniform64 } from './helpers/engine-problems';
import { Random, mulberry32, relErr } from './helpers/oracle-checks';

interface Case {
  cell: CellKind;
  L: number;
  bidirectional: boolean;
  kind: 'dense' | 'tokens';
  lengths: boolean;
  truncate: number | null;
  dropout: number;
  stateAt: boolean;
  H: number;
  T: number;
  B: number;
}

function build(rng: Random, c: Case, D = 5, K = 4) {
  const spec: NormalizedModelSpec = checkModelSpec({ cell: c.cell, inputSize: D, hiddenSize: c.H, numLayers: c.L, bidirectional: c.bidirectional, dropout: c.dropout, outputSize: K });
  const scale = Math.min(0.7, 1.5 / Math.sqrt(c.H));
  const params: Record<string, Float32Array> = {};
  for (const p of modelParameters(spec)) params[p.name] = Float32Array.from(uniform64(rng, p.size, scale));
  const states = c.L * (c.bidirectional ? 2 : 1) * c.B * c.H;
  const batch = {
    steps: c.T,
    batch: c.B,
    input: c.kind === 'dense' ? { kind: 'dense' as const, data: Float32Array.from(uniform64(rng, c.T * c.B * D, 1)) } : { kind: 'tokens' as const, data: Int32Array.from({ length: c.T * c.B }, () => Math.floor(rng() * D)) },
    lengths: c.lengths ? randomLengths(rng, c.T, c.B) : null,
    h0: Float32Array.from(uniform64(rng, states, 0.5)),
    c0: c.cell === 'lstm' ? Float32Array.from(uniform64(rng, states, 0.5)) : null,
  };
  const targets = Int32Array.from({ length: c.T * c.B }, () => (rng() < 0.15 ? -1 : Math.floor(rng() * K)));
  const options = { training: c.dropout > 0, dropoutSeed: c.dropout > 0 ? 77 : undefined, truncate: c.truncate, reduction: 'mean' as const, stateAt: c.stateAt ? Math.max(0, c.T - 2) : null };
  return { spec, params, batch, targets, options };
}

const CELLS: CellKind[] = ['tanh', 'relu', 'lstm', 'gru'];

describe('recurrent model (engine + softmax head)', () => {
  test.each(CELLS)('%s: reference loss gradients match central differences', (cell) => {
    for (const [i, c] of [
      { cell, L: 2, bidirectional: true, kind: 'dense', lengths: true, truncate: null, dropout: 0, stateAt: false, H: 3, T: 4, B: 3 },
      { cell, L: 2, bidirectional: false, kind: 'tokens', lengths: false, truncate: null, dropout: 0.3, stateAt: false, H: 2, T: 3, B: 2 },
    ].entries() as IterableIterator<[number, Case]>) {
      const rng = mulberry32(90 + i);
      const m = build(rng, c);
      const params64: Record<string, Float64Array> = Object.fromEntries(Object.entries(m.params).map(([k, v]) => [k, Float64Array.from(v)]));
      const call = checkModelCall(m.spec, m.batch, m.options, true);
      const loss = () => referenceModelLossAndGradients(m.spec, params64, call.batch, m.targets, call.options).loss;
      const g = referenceModelLossAndGradients(m.spec, params64, call.batch, m.targets, call.options);
      for (const [name, arr] of Object.entries(params64)) {
        const eps = 1e-6;
        for (let j = 0; j < arr.length; j += Math.max(1, Math.floor(arr.length / 7))) {
          const keep = arr[j];
          arr[j] = keep + eps;
          const up = loss();
          arr[j] = keep - eps;
          const down = loss();
          arr[j] = keep;
          const fd = (up - down) / (2 * eps);
          expect(Math.abs(fd - g.grads[name][j])).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(fd)));
        }
      }
    }
  });

  const cases: Case[] = [];
  let n = 0;
  for (const cell of CELLS)
    for (const L of [1, 2])
      for (const bidirectional of [false, true])
        for (const kind of ['dense', 'tokens'] as const) {
          const lengths = n % 3 === 1;
          cases.push({ cell, L, bidirectional, kind, lengths, truncate: n % 4 === 2 ? 3 : null, dropout: L > 1 && n % 2 === 0 ? 0.25 : 0, stateAt: !bidirectional && !lengths, H: [1, 3, 17, 33][n % 4], T: [1, 6, 23][n % 3], B: [1, 5][n % 2] });
          n++;
        }

  test.each(cases.map((c) => [JSON.stringify(c), c] as const))('native = reference on every ISA: %s', (_label, c) => {
    const m = build(mulberry32(n + c.H * 31 + c.T), c);
    const call = checkModelCall(m.spec, m.batch, m.options, false);
    const ref = referenceModelLossAndGradients(m.spec, m.params, call.batch, m.targets, call.options);
    const model = new NativeModel(m.spec);
    try {
      for (const isa of supportedIsas()) {
        setIsa(isa as 'scalar');
        const got = model.lossAndGradients(m.params, call.batch, m.targets, call.options);
        expect(Math.abs(got.loss - ref.loss)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(ref.loss)));
        for (const name of Object.keys(ref.grads)) {
          const e = relErr(got.grads[name], ref.grads[name]);
          if (!(e <= 1e-4)) throw new Error(`${isa} ${name}: ${e}`);
        }
        for (const key of ['dh0', 'dc0', 'hT', 'cT', 'hAt', 'cAt'] as const) {
          const a = got[key];
          const b = ref[key];
          if (a === null || b === null) expect(a === null).toBe(b === null);
          else if (!(relErr(a, b) <= 1e-4)) throw new Error(`${isa} ${key}: ${relErr(a, b)}`);
        }
        const fwd = model.forward(m.params, call.batch);
        const refOut = referenceModelLossAndGradients(m.spec, m.params, call.batch, m.targets, { ...call.options, training: false, truncate: null, stateAt: null });
        expect(relErr(fwd.hT, refOut.hT)).toBeLessThanOrEqual(2e-5);
      }
    } finally {
      setIsa('auto');
    }
  });
});

describe('model forward (predict) keeps the outputs only', () => {
  // Nothing is kept for backward: no gates, cell states or input copy, and each step's gate rows
  // live in one step's scratch wherever the inputs are not projected at once. Every way of
  // projecting must give the full forward pass's outputs (the layer API's, which keeps its
  // record) bit for bit, and the head's outputs must be the oracle's.
  const shapes: { kind: 'dense' | 'tokens'; T: number; B: number; why: string }[] = [
    { kind: 'dense', T: 6, B: 17, why: 'projected step by step' },
    { kind: 'dense', T: 5, B: 3, why: 'projected at once' },
    { kind: 'tokens', T: 7, B: 4, why: 'rows of a W_ih^T table' },
    { kind: 'tokens', T: 3, B: 1, why: 'gathered at once' },
  ];
  test.each(CELLS)('%s: outputs, hT and cT equal the full forward pass bit for bit, logits the oracle', (cell) => {
    for (const [i, s] of shapes.entries()) {
      const c: Case = { cell, L: 2, bidirectional: true, kind: s.kind, lengths: true, truncate: null, dropout: 0, stateAt: false, H: 17, T: s.T, B: s.B };
      const m = build(mulberry32(300 + i), c);
      const call = checkModelCall(m.spec, m.batch, m.options, false);
      const layerWeights = Object.fromEntries(Object.entries(m.params).filter(([k]) => k.startsWith('rnn.')).map(([k, v]) => [k.slice(4), v]));
      const layerSpec = { cell, inputSize: m.spec.inputSize, hiddenSize: c.H, numLayers: c.L, bidirectional: c.bidirectional };
      const model = new NativeModel(m.spec);
      try {
        for (const isa of supportedIsas()) {
          setIsa(isa as 'scalar');
          const got = model.forward(m.params, call.batch);
          const full = backends.native.layerForward(layerSpec, layerWeights, m.batch);
          full.saved.dispose();
          const label = `${isa} ${s.kind} T=${s.T} B=${s.B} (${s.why})`;
          for (const [name, a, b] of [['outputs', got.outputs, full.y], ['hT', got.hT, full.hT], ['cT', got.cT, full.cT]] as const) {
            if (a === null || b === null) expect(a === null).toBe(b === null);
            else for (let j = 0; j < a.length; j++) if (!Object.is(a[j], b[j])) throw new Error(`${label} ${name}[${j}]: ${a[j]} !== ${b[j]}`);
          }
          const ref = referenceModelForward(m.spec, m.params, call.batch);
          if (!(relErr(got.logits, ref.logits) <= 1e-4)) throw new Error(`${label} logits: ${relErr(got.logits, ref.logits)}`);
        }
      } finally {
        setIsa('auto');
        model.release();
      }
    }
  });
});
