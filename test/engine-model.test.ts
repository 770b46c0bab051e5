/**
 * The engine + softmax-head model: the float64 reference against central finite differences, and
 * the native fused model against the reference on every ISA (every cell, stacks, directions,
 * lengths, truncation, dropout in training, token and dense input, the states after a step).
 */
import { CellKind, setIsa, supportedIsas } from '../lib';
import { checkModelCall, checkModelSpec, modelParameters, NativeModel, NormalizedModelSpec, referenceModelLossAndGradients } from '../lib/engine/model';
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
