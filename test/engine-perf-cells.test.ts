/**
 * The engine's per-ISA cell rows (native/engine/cell_rows.inl) on every ISA this CPU runs.
 *
 * Kernel level: with weight_hh zero and weight_ih an identity (dense inputs) or a table of chosen
 * columns (token inputs, both the table the cells read and the gathered columns), every product
 * of a step is exact, so the layer's outputs and gradients are the cells' pointwise functions of
 * chosen pre-activations and states. They are checked against the float64 oracle at hidden sizes
 * around each vector width (1, 3, 15, 16, 17, 33, 65: the one-lane, AVX2 and AVX-512 tails), with
 * padded rows, saturating pre-activations (|x| up to 1e4) and biases, and against the scalar ISA.
 *
 * Driver level: random problems at batch sizes around each register tile (the recurrences split
 * rows by whole tiles across threads) match the oracle and are bitwise the same on 1, 2 and 3
 * threads on every ISA.
 */
import { CellKind, LayerBatch, LayerSpec, backends, gatesPerCell, hasCellState, layerParameterShapes, numThreads, setIsa, setNumThreads, supportedIsas } from '../lib';
import { randomEngineProblem, uniform64 } from './helpers/engine-problems';
import { mulberry32, relErr } from './helpers/oracle-checks';

const ISAS = supportedIsas() as ('scalar' | 'avx2' | 'avx512')[];
const CELLS: CellKind[] = ['tanh', 'relu', 'lstm', 'gru'];
const EDGE_H = [1, 3, 15, 16, 17, 33, 65];

// Pre-activations that reach every branch of the vector sigmoid and tanh: signed zeros, the small-|x|
// series of tanh and its switch at 0.4, the exp range, tanh's saturation at 9 and far past exp's clamp.
const SPECIAL = [0, -0, 1e-8, -3e-6, 0.1, -0.39, 0.4, -0.41, 1, -2.5, 5, -8.9, 9.5, -15, 20, -40, 88, -90, 1e4, -1e4];

interface CellProblem {
  spec: LayerSpec;
  weights: Record<string, Float64Array>;
  batch: LayerBatch;
  upstream: { dy: Float64Array; dhT: Float64Array; dcT: Float64Array | null };
}

type Variant = 'dense' | 'dense, padded rows' | 'token table' | 'token columns';
const VARIANTS: Variant[] = ['dense', 'dense, padded rows', 'token table', 'token columns'];

/** A one-layer problem whose products are exact: the cells see the pre-activations set here. */
function cellProblem(cell: CellKind, H: number, variant: Variant, seed: number): CellProblem {
  const rng = mulberry32(seed);
  const G = gatesPerCell(cell);
  const GH = G * H;
  let k = Math.floor(rng() * SPECIAL.length);
  const pre = () => (rng() < 0.5 ? SPECIAL[k++ % SPECIAL.length] : (2 * rng() - 1) * 6);
  const tokens = variant.startsWith('token');
  // The table path needs at least as many rows (T * B) as vocabulary entries; fewer take the columns.
  const vocab = variant === 'token table' ? 2 : 40;
  const T = variant === 'dense' ? 1 : 2;
  const B = 3;
  const D = tokens ? vocab : GH;
  const spec: LayerSpec = { cell, inputSize: D, hiddenSize: H };
  const shapes = layerParameterShapes(spec);
  const weights: Record<string, Float64Array> = {};
  for (const [name, shape] of Object.entries(shapes)) weights[name] = new Float64Array(shape.reduce((a, b) => a * b, 1));
  const w_ih = weights.weight_ih_l0;
  if (tokens) {
    for (let i = 0; i < w_ih.length; i++) w_ih[i] = pre();
  } else {
    for (let g = 0; g < GH; g++) w_ih[g * D + g] = 1;
  }
  // Biases a few ulps of the pre-activations' scale: their addition is checked, not their size.
  for (const name of ['bias_ih_l0', 'bias_hh_l0']) weights[name] = uniform64(rng, GH, 0.25);
  const rows = T * B;
  const input: LayerBatch['input'] = tokens
    ? { kind: 'tokens', data: Int32Array.from({ length: rows }, () => Math.floor(rng() * vocab)) }
    : { kind: 'dense', data: Float64Array.from({ length: rows * D }, pre) };
  const lengths = variant === 'dense' ? null : Int32Array.from([2, 1, 2]);
  const states = B * H;
  const batch: LayerBatch = {
    steps: T,
    batch: B,
    input,
    lengths,
    h0: uniform64(rng, states, 1),
    c0: hasCellState(cell) ? uniform64(rng, states, 3) : null,
  };
  const upstream = {
    dy: uniform64(rng, rows * H, 1),
    dhT: uniform64(rng, states, 1),
    dcT: hasCellState(cell) ? uniform64(rng, states, 1) : null,
  };
  return { spec, weights, batch, upstream };
}

/** The problem rounded to float32, as the native engine takes it. */
function float32(p: CellProblem) {
  const f32 = (a: ArrayLike<number> | null | undefined) => (a == null ? null : Float32Array.from(a));
  const weights = Object.fromEntries(Object.entries(p.weights).map(([k, v]) => [k, Float32Array.from(v)]));
  const input = p.batch.input.kind === 'dense' ? { kind: 'dense' as const, data: Float32Array.from(p.batch.input.data) } : p.batch.input;
  return {
    weights,
    batch: { ...p.batch, input, h0: f32(p.batch.h0), c0: f32(p.batch.c0) },
    upstream: { dy: Float32Array.from(p.upstream.dy), dhT: Float32Array.from(p.upstream.dhT), dcT: f32(p.upstream.dcT) },
  };
}

type Results = Record<string, ArrayLike<number> | null>;

function runNative(spec: LayerSpec, q: ReturnType<typeof float32>): Results {
  const out = backends.native.layerForward(spec, q.weights, q.batch);
  const g = backends.native.layerBackward(spec, q.weights, out.saved, q.upstream);
  out.saved.dispose();
  return { y: out.y, hT: out.hT, cT: out.cT, dx: g.dx, dh0: g.dh0, dc0: g.dc0, ...prefixed(g.grads) };
}

function runReference(spec: LayerSpec, q: ReturnType<typeof float32>): Results {
  const out = backends.reference.layerForward(spec, q.weights, q.batch);
  const g = backends.reference.layerBackward(spec, q.weights, out.saved, q.upstream);
  out.saved.dispose();
  return { y: out.y, hT: out.hT, cT: out.cT, dx: g.dx, dh0: g.dh0, dc0: g.dc0, ...prefixed(g.grads) };
}

const isWeightGrad = (name: string) => name.startsWith('grads.weight');

const prefixed = (grads: Record<string, ArrayLike<number>>) => Object.fromEntries(Object.entries(grads).map(([k, v]) => [`grads.${k}`, v]));

/** Element by element: |a - b| <= tol * (1 + |b|). Returns the first failure, or ''. */
function elementwise(label: string, a: Results, b: Results, tol: number, skip: (name: string) => boolean = () => false): string {
  for (const name of Object.keys(b)) {
    if (skip(name)) continue;
    const x = a[name];
    const y = b[name];
    if (x === null || y === null) {
      if (x !== y) return `${label} ${name}: one side is null`;
      continue;
    }
    if (x.length !== y.length) return `${label} ${name}: length ${x.length} vs ${y.length}`;
    for (let i = 0; i < y.length; i++) {
      if (!(Math.abs(x[i] - y[i]) <= tol * (1 + Math.abs(y[i])))) return `${label} ${name}[${i}]: ${x[i]} vs ${y[i]}`;
    }
  }
  return '';
}

describe('engine cell rows on every ISA (exact products, float64 reference)', () => {
  afterAll(() => setIsa('auto'));

  test.each(CELLS.flatMap((cell) => EDGE_H.map((H) => [cell, H] as const)))('%s H=%i', (cell, H) => {
    const failures: string[] = [];
    VARIANTS.forEach((variant, v) => {
      const p = cellProblem(cell, H, variant, 100 * H + v);
      const q = float32(p);
      const ref = runReference(p.spec, q);
      const byIsa: Record<string, Results> = {};
      for (const isa of ISAS) {
        setIsa(isa);
        byIsa[isa] = runNative(p.spec, q);
        // Everything but the weight gradients comes straight out of the cells (dx is the input
        // gate gradients through the identity, the bias gradients their sums over rows); the
        // weight gradients are products over rows with inputs up to 1e4 (the driver tests below
        // check them).
        failures.push(elementwise(`${isa} ${variant}`, byIsa[isa], ref, 4e-6, isWeightGrad));
      }
      for (const isa of ISAS) failures.push(elementwise(`${isa} vs scalar ${variant}`, byIsa[isa], byIsa.scalar, 4e-6, isWeightGrad));
    });
    expect(failures.filter(Boolean)).toEqual([]);
  });

  test('a NaN pre-activation (inf - inf in float32) stays NaN through sigmoid, tanh and relu', () => {
    // The i gate (LSTM) or the unit (tanh, relu) of unit 0 gets x + h0 W_hh^T = inf (3e38 + 3e38)
    // and a bias of -inf (-3e38 - 3e38): NaN, which must reach y. GRU's r gate adds its input part
    // x + b_ih = inf to its recurrent part h0 W_hh^T + b_hh = -inf.
    for (const isa of ISAS) {
      setIsa(isa);
      for (const cell of CELLS) {
        const H = 3;
        const G = gatesPerCell(cell);
        const spec: LayerSpec = { cell, inputSize: G * H, hiddenSize: H };
        const weights: Record<string, Float32Array> = {};
        for (const [name, shape] of Object.entries(layerParameterShapes(spec))) weights[name] = new Float32Array(shape.reduce((a, b) => a * b, 1));
        for (let g = 0; g < G * H; g++) weights.weight_ih_l0[g * G * H + g] = 1;
        weights.weight_hh_l0[0] = 1;
        const gru = cell === 'gru';
        weights.bias_ih_l0[0] = gru ? 3e38 : -3e38;
        weights.bias_hh_l0[0] = -3e38;
        const x = new Float32Array(G * H);
        x[0] = 3e38;
        const h0 = Float32Array.from([gru ? -3e38 : 3e38, 0, 0]);
        const out = backends.native.layerForward(spec, weights, { steps: 1, batch: 1, input: { kind: 'dense', data: x }, h0 });
        out.saved.dispose();
        expect([isa, cell, Number.isNaN(out.y[0])]).toEqual([isa, cell, true]);
      }
    }
  });

  test('padded rows: zero output, state and gradients passed through unchanged', () => {
    for (const isa of ISAS) {
      setIsa(isa);
      for (const cell of CELLS) {
        const p = cellProblem(cell, 17, 'dense, padded rows', 7);
        const q = float32(p);
        const out = backends.native.layerForward(p.spec, q.weights, q.batch);
        const H = 17;
        // Row 1 has one step: its step-1 output is zero and hT is its step-0 output.
        for (let j = 0; j < H; j++) {
          expect(out.y[(1 * 3 + 1) * H + j]).toBe(0);
          expect(out.hT[1 * H + j]).toBe(out.y[(0 * 3 + 1) * H + j]);
        }
        out.saved.dispose();
      }
    }
  });
});

describe('record arrays reused from disposed forward passes', () => {
  // A forward pass takes its large arrays from those of disposed records (the workspace's pool):
  // nothing of what they held before may reach a result. P after Q must equal P after P, bit for
  // bit, with padded rows (which skip parts of the arrays) and every input path.
  test.each(CELLS.flatMap((cell) => (['dense', 'tokens'] as const).map((kind) => [cell, kind] as const)))('%s %s', (cell, kind) => {
    const make = (seed: number, scale: number) => {
      const p = randomEngineProblem(mulberry32(seed), { cell, D: 5, H: 19, L: 2, bidirectional: true, T: 9, B: 17, kind, withLengths: true, scale });
      return { spec: p.spec, q: float32(p) };
    };
    const p = make(1, 0.4);
    const q = make(2, 3);
    const first = runNative(p.spec, p.q);
    runNative(q.spec, q.q);
    const again = runNative(p.spec, p.q);
    for (const name of Object.keys(first)) {
      const a = first[name];
      const b = again[name];
      if (a === null || b === null) continue;
      for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) throw new Error(`${name}[${i}]: ${b[i]} after another problem, ${a[i]} before`);
    }
  });
});

describe('engine driver at register-tile edges on every ISA', () => {
  const before = numThreads();
  afterAll(() => {
    setNumThreads(before);
    setIsa('auto');
  });

  // Batches around every ISA's tile height (scalar 4, AVX2 6, AVX-512 8) and long enough that the
  // recurrences run in batch slices (at least 2^20 multiply-adds); the token case has enough rows
  // (4096) that the token gradient scatter and the bias sums split their columns across threads.
  const cases: [CellKind, number, number, number, 'dense' | 'tokens'][] = [
    ['lstm', 33, 25, 12, 'dense'],
    ['gru', 16, 17, 40, 'dense'],
    ['tanh', 65, 9, 40, 'dense'],
    ['lstm', 15, 7, 80, 'dense'],
    ['gru', 17, 13, 60, 'dense'],
    ['lstm', 33, 64, 64, 'tokens'],
  ];
  test.each(cases)('%s H=%i B=%i T=%i %s: float64 oracle, bitwise the same on 1, 2, 3 threads', (cell, H, B, T, kind) => {
    const rng = mulberry32(H * 1000 + B);
    const p = randomEngineProblem(rng, { cell, D: 11, H, L: 2, bidirectional: true, T, B, kind, withLengths: true, scale: Math.min(0.7, 1.5 / Math.sqrt(H)) });
    const q = float32(p);
    const ref = runReference(p.spec, q);
    for (const isa of ISAS) {
      setIsa(isa);
      setNumThreads(1);
      const one = runNative(p.spec, q);
      for (const name of Object.keys(ref)) {
        const a = one[name];
        const b = ref[name];
        if (a === null || b === null) {
          expect(a).toBe(b);
          continue;
        }
        const tol = ['y', 'hT', 'cT'].includes(name) ? 2e-5 : 1e-4;
        const e = relErr(a, b);
        if (!(e <= tol)) throw new Error(`${isa} ${name}: error ${e} > ${tol}`);
      }
      for (const threads of [2, 3]) {
        setNumThreads(threads);
        const many = runNative(p.spec, q);
        for (const name of Object.keys(one)) {
          const a = one[name];
          const b = many[name];
          if (a === null || b === null) continue;
          for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) throw new Error(`${isa} ${threads} threads ${name}[${i}]: ${b[i]} vs ${a[i]} on one`);
        }
      }
    }
  });
});
