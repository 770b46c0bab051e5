/**
 * diagnose() on every kind of model: per-lag norms against the legacy float64 lagGradientNorms
 * (one-layer tanh) and the float64 reference against brute force (one backward pass per pair
 * of source and step, from the state at that step); Jacobian products exact against
 * central-difference Jacobians; the Rademacher estimate within its stated standard error;
 * truncation bias 0 at k >= T; async = sync; JSON; typed errors for bad arguments.
 */
import { CellKind, DTypeError, RNN, ShapeError, Tensor, backends, diagnose, diagnoseAsync, diagnosisToJson, lagGradientNorms } from '../lib';
import { sourceGradientNorms } from '../lib/engine/reference';
import { mulberry32 } from './helpers/oracle-checks';

const CELLS: CellKind[] = ['tanh', 'relu', 'lstm', 'gru'];

function tokens(rng: () => number, T: number, B: number, V: number): Tensor {
  return Tensor.from(Int32Array.from({ length: T * B }, () => Math.floor(rng() * V)), [T, B]);
}

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst / scale;
}

describe('per-lag gradient norms', () => {
  test('legacy tanh model: native diagnose = the float64 lagGradientNorms (perLag and matrix)', () => {
    const rng = mulberry32(11);
    const rnn = new RNN({ inputSize: 7, hiddenSize: 13, outputSize: 7, seed: 5 });
    const x = tokens(rng, 15, 3, 7);
    const y = Tensor.from(Int32Array.from({ length: 45 }, (_, i) => (i % 6 === 0 ? -1 : Math.floor(rng() * 7))), [15, 3]);
    const d = diagnose(rnn, x, y, { matrix: true, jacobian: false, truncate: [] });
    const p = rnn.params;
    const params = { U: p.U.data() as Float32Array, W: p.W.data() as Float32Array, b: p.b.data() as Float32Array, V: p.V.data() as Float32Array, c: p.c.data() as Float32Array };
    const want = lagGradientNorms(rnn.dims, params, { steps: 15, batch: 3, input: { kind: 'tokens', data: x.data() as Int32Array } }, y.data() as Int32Array);
    expect(maxRel(d.perLag, want.perLag)).toBeLessThan(1e-4);
    expect(maxRel(d.perLagByLayer[0].matrix!, want.matrix)).toBeLessThan(1e-4);
    expect(d.perLag[14]).toBeGreaterThan(0);
  });

  test.each(CELLS)('%s: the float64 reference = brute force (dL_t/dh_s as dh0 of the run from h_s, c_s)', (cell) => {
    const rng = mulberry32(CELLS.indexOf(cell) + 40);
    const T = 6;
    const B = 2;
    const H = 3;
    const spec = { cell, inputSize: 4, hiddenSize: H, numLayers: 1, bidirectional: false, dropout: 0 };
    const weights = Object.fromEntries(Object.entries(new RNN({ inputSize: 4, hiddenSize: H, outputSize: 4, cell, numLayers: 2, seed: 9 }).layerView().weights).filter(([n]) => n.endsWith('_l0')));
    const x = Float64Array.from({ length: T * B * 4 }, () => 2 * rng() - 1);
    const dy = Float64Array.from({ length: T * B * H }, () => 2 * rng() - 1);
    const batch = (from: number, h0: Float64Array | null, c0: Float64Array | null) => ({
      steps: T - from,
      batch: B,
      input: { kind: 'dense' as const, data: x.subarray(from * B * 4) },
      h0,
      c0,
    });
    const out = backends.reference.layerForward(spec, weights, batch(0, null, null));
    const want = sourceGradientNorms(spec, weights, out.saved, { dy });
    const brute = new Float64Array(T * T);
    for (let s = 0; s < T; s++) {
      // The state after step s: the run of steps 0..s.
      const prefix = backends.reference.layerForward(spec, weights, { steps: s + 1, batch: B, input: { kind: 'dense', data: x.subarray(0, (s + 1) * B * 4) } });
      for (let t = s; t < T; t++) {
        let sum = 0;
        if (t === s) {
          for (let i = 0; i < B * H; i++) sum += dy[t * B * H + i] ** 2;
        } else {
          const run = backends.reference.layerForward(spec, weights, batch(s + 1, prefix.hT, prefix.cT));
          const only = new Float64Array((T - s - 1) * B * H);
          only.set(dy.subarray(t * B * H, (t + 1) * B * H), (t - s - 1) * B * H);
          const g = backends.reference.layerBackward(spec, weights, run.saved, { dy: only });
          for (const v of g.dh0) sum += v * v;
        }
        brute[t * T + s] = sum;
      }
    }
    expect(maxRel(want, brute)).toBeLessThan(1e-12);
  });

  test.each(CELLS)('%s stacked bidirectional: native model = reference model, top perLag combines both directions', (cell) => {
    const rng = mulberry32(CELLS.indexOf(cell) + 70);
    const make = (backend: 'native' | 'reference') => new RNN({ inputSize: 5, hiddenSize: 6, outputSize: 5, cell, numLayers: 2, bidirectional: true, seed: 4, backend });
    const x = tokens(rng, 8, 3, 5);
    const y = tokens(rng, 8, 3, 5);
    const lengths = Int32Array.of(8, 5, 2);
    const a = diagnose(make('native'), x, y, { lengths, jacobian: false, truncate: [] });
    const b = diagnose(make('reference'), x, y, { lengths, jacobian: false, truncate: [] });
    for (let i = 0; i < 4; i++) expect(maxRel(a.perLagByLayer[i].perLag, b.perLagByLayer[i].perLag)).toBeLessThan(1e-4);
    a.perLag.forEach((v, m) => expect(v).toBeCloseTo(Math.hypot(a.perLagByLayer[2].perLag[m], a.perLagByLayer[3].perLag[m]), 12));
    // Lags past the longest row's reach carry nothing.
    expect(a.perLag[7]).toBeGreaterThan(0);
  });
});

/** ‖∂h_{i+m}/∂h_i‖_F² averaged over the (i, b) pairs, by central differences of the reference forward. */
function bruteJacobians(rnn: RNN, x: Tensor, lengths: Int32Array): Float64Array {
  // Layer 0 alone: its recurrence does not depend on the layers above.
  const view = rnn.layerView();
  const spec = { ...view.spec, numLayers: 1 };
  const weights = Object.fromEntries(Object.entries(view.weights).filter(([n]) => n.endsWith('_l0')));
  const [T, B] = x.shape;
  const H = rnn.hiddenSize;
  const ids = x.data() as Int32Array;
  const sums = new Float64Array(T);
  const pairs = new Float64Array(T);
  const eps = 1e-6;
  for (let i = 0; i < T - 1; i++) {
    const prefix = backends.reference.layerForward(spec, weights, { steps: i + 1, batch: B, input: { kind: 'tokens', data: ids.subarray(0, (i + 1) * B) }, lengths: Int32Array.from(lengths, (n) => Math.min(n, i + 1)) });
    const rest = Int32Array.from(lengths, (n) => Math.max(1, n - i - 1));
    const run = (h0: Float64Array) =>
      backends.reference.layerForward(spec, weights, { steps: T - i - 1, batch: B, input: { kind: 'tokens', data: ids.subarray((i + 1) * B) }, lengths: rest, h0, c0: prefix.cT }).y;
    for (let j = 0; j < H; j++) {
      const up = Float64Array.from(prefix.hT);
      const down = Float64Array.from(prefix.hT);
      for (let b = 0; b < B; b++) {
        up[b * H + j] += eps;
        down[b * H + j] -= eps;
      }
      const yu = run(up);
      const yd = run(down);
      for (let m = 1; i + m < T; m++)
        for (let b = 0; b < B; b++) {
          if (i + m >= lengths[b]) continue;
          for (let k = 0; k < H; k++) sums[m] += ((yu[((m - 1) * B + b) * H + k] - yd[((m - 1) * B + b) * H + k]) / (2 * eps)) ** 2;
        }
    }
  }
  for (let m = 0; m < T; m++) for (let b = 0; b < B; b++) pairs[m] += Math.max(0, lengths[b] - m);
  sums[0] = H * pairs[0]; // J(i, 0) = I
  return sums.map((s, m) => (pairs[m] > 0 ? s / pairs[m] : 0));
}

describe('Jacobian-product norms', () => {
  test.each(CELLS)('%s: exact mode = central-difference Jacobians', (cell) => {
    const rng = mulberry32(CELLS.indexOf(cell) + 90);
    const rnn = new RNN({ inputSize: 4, hiddenSize: 3, outputSize: 4, cell, numLayers: 2, seed: 12 });
    const x = tokens(rng, 7, 2, 4);
    const lengths = Int32Array.of(7, 4);
    const d = diagnose(rnn, x, x, { lengths, jacobian: { mode: 'exact' }, truncate: [] });
    expect(d.jacobian!.method).toBe('exact');
    const got = d.jacobian!.byLayer[0];
    const want = bruteJacobians(rnn, x, lengths);
    expect(maxRel(got.meanSquare, want)).toBeLessThan(1e-4);
    expect(got.standardError.every((v) => v === 0)).toBe(true);
    expect(Array.from(got.pairs)).toEqual([11, 9, 7, 5, 3, 2, 1]);
  });

  test.each(CELLS)('%s: the Rademacher estimate lies within 4 standard errors of the exact value (seeded)', (cell) => {
    const rng = mulberry32(CELLS.indexOf(cell) + 120);
    const rnn = new RNN({ inputSize: 4, hiddenSize: 10, outputSize: 4, cell, bidirectional: true, seed: 13 });
    const x = tokens(rng, 9, 4, 4);
    const exact = diagnose(rnn, x, x, { jacobian: { mode: 'exact' }, truncate: [] }).jacobian!;
    const est = diagnose(rnn, x, x, { jacobian: { mode: 'estimate', probes: 6, seed: 3 }, truncate: [] }).jacobian!;
    expect(est.method).toBe('estimate');
    for (let index = 0; index < 2; index++) {
      const e = est.byLayer[index];
      const w = exact.byLayer[index];
      // Lag 0 is the identity: ‖u‖² = H for every ±1 probe, no spread.
      expect(e.meanSquare[0]).toBeCloseTo(10, 4);
      for (let m = 1; m < 9; m++) {
        expect(e.standardError[m]).toBeGreaterThan(0);
        expect(Math.abs(e.meanSquare[m] - w.meanSquare[m])).toBeLessThan(4 * e.standardError[m] + 1e-6 * w.meanSquare[m]);
      }
    }
  });
});

describe('truncation bias and the rest of the diagnosis', () => {
  test.each(CELLS)('%s: 0 at k >= T, positive below, cosine 1 at k >= T; per parameter too', (cell) => {
    const rng = mulberry32(CELLS.indexOf(cell) + 150);
    const rnn = new RNN({ inputSize: 5, hiddenSize: 7, outputSize: 5, cell, numLayers: 2, seed: 2 });
    const x = tokens(rng, 10, 3, 5);
    const d = diagnose(rnn, x, tokens(rng, 10, 3, 5), { truncate: [1, 3, 10, 25], jacobian: false });
    expect(d.truncationBias.map((e) => e.k)).toEqual([1, 3, 10, 25]);
    expect(d.truncationBias[0].relativeError).toBeGreaterThan(0);
    expect(d.truncationBias[0].cosine).toBeLessThan(1);
    for (const e of d.truncationBias.slice(2)) {
      expect(e.relativeError).toBe(0);
      expect(e.cosine).toBeCloseTo(1, 12);
      expect(Object.keys(e.perParameter)).toEqual(Object.keys(rnn.params));
    }
    // The head's bias gets the same gradient whatever the truncation.
    expect(d.truncationBias[0].perParameter['fc.bias'].relativeError).toBe(0);
    expect(d.gates.length * 2).toBe(d.spectralRadius.length);
  });

  test('spectra: one block per layer, direction and gate; conditions for tanh only', () => {
    const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, numLayers: 2, bidirectional: true, seed: 1 });
    const x = Tensor.from(Int32Array.of(0, 1, 2, 0), [4, 1]);
    const d = diagnose(rnn, x, x, { truncate: [] });
    expect(d.spectral.map((s) => [s.layer, s.direction, s.gate])).toEqual([
      [0, 0, 'hh'],
      [0, 1, 'hh'],
      [1, 0, 'hh'],
      [1, 1, 'hh'],
    ]);
    for (const s of d.spectral) {
      expect(s.spectralRadius).toBeLessThanOrEqual(s.singularValue + 1e-9);
      expect(s.vanishingGuaranteed).toBe(s.singularValue < 1);
    }
    const lstm = diagnose(new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, cell: 'lstm', seed: 1 }), x, x, { truncate: [] });
    expect(lstm.spectral.map((s) => s.gate)).toEqual(['i', 'f', 'g', 'o']);
    expect(lstm.spectral[0].vanishingGuaranteed).toBeUndefined();
  });

  test('async = sync; JSON has plain arrays and null for NaN', async () => {
    const rnn = new RNN({ inputSize: 3, hiddenSize: 5, outputSize: 3, cell: 'gru', numLayers: 2, seed: 8 });
    const x = Tensor.from(Int32Array.of(0, 1, 2, 0, 1, 2), [3, 2]);
    const options = { truncate: [1, 2], jacobian: { mode: 'estimate' as const, probes: 3, seed: 1 } };
    const a = await diagnoseAsync(rnn, x, x, options);
    const b = diagnose(rnn, x, x, options);
    expect(diagnosisToJson(a)).toEqual(diagnosisToJson(b));
    const one = diagnose(rnn, Tensor.from(Int32Array.of(0, 1), [1, 2]), Tensor.from(Int32Array.of(0, 1), [1, 2]));
    expect(one.decayRate).toBeNaN();
    const json = JSON.parse(JSON.stringify(diagnosisToJson(one)));
    expect(json.decayRate).toBeNull();
    expect(Array.isArray(json.perLag)).toBe(true);
    expect(Array.isArray(json.jacobian.byLayer[0].meanSquare)).toBe(true);
  });

  test('decayRate: the per-step factor of a geometric profile', () => {
    // Small W: the profile decays; its fitted factor lies below 1 and near the ratios.
    const rnn = new RNN({ inputSize: 3, hiddenSize: 6, outputSize: 3, seed: 1 });
    rnn.params.W.write(new Float32Array(36).map((_, i) => (i % 7 === 0 ? 0.3 : 0)));
    const x = Tensor.from(Int32Array.from({ length: 20 }, (_, i) => i % 3), [10, 2]);
    const d = diagnose(rnn, x, x, { truncate: [] });
    expect(d.decayRate).toBeLessThan(0.4);
    expect(d.decayRate).toBeGreaterThan(0.1);
  });

  test('bad arguments are typed errors', () => {
    const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, cell: 'lstm', seed: 1 });
    const x = Tensor.from(Int32Array.of(0, 1, 2, 0), [2, 2]);
    expect(() => diagnose({} as RNN, x, x)).toThrow(TypeError);
    expect(() => diagnose(rnn, [0, 1] as unknown as Tensor, x)).toThrow(TypeError);
    expect(() => diagnose(rnn, x, Tensor.zeros([2, 2]))).toThrow(DTypeError);
    expect(() => diagnose(rnn, x, Tensor.from(Int32Array.of(0, 1, 2), [3, 1]))).toThrow(ShapeError);
    expect(() => diagnose(rnn, x, x, { truncate: [0] })).toThrow(RangeError);
    expect(() => diagnose(rnn, x, x, { truncate: 3 as unknown as number[] })).toThrow(TypeError);
    expect(() => diagnose(rnn, x, x, { jacobian: { probes: 1 } })).toThrow(RangeError);
    expect(() => diagnose(rnn, x, x, { jacobian: { mode: 'fast' as 'exact' } })).toThrow(TypeError);
    expect(() => diagnose(rnn, x, x, { lengths: [2, 1] as unknown as Int32Array })).toThrow(TypeError);
    expect(() => diagnose(rnn, x, x, { lengths: Int32Array.of(3, 1) })).toThrow(RangeError);
    expect(() => diagnose(rnn, x, x, null as unknown as object)).toThrow(TypeError);
    const legacy = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 });
    expect(() => diagnose(legacy, x, x, { lengths: Int32Array.of(2, 1) })).toThrow(TypeError);
  });
});

describe('every head', () => {
  test.each(CELLS)('%s: classify (targets [B]) and regress (targets [T, B, K]): native = reference', (cell) => {
    const rng = mulberry32(CELLS.indexOf(cell) + 300);
    const x = Tensor.from(Float32Array.from({ length: 7 * 3 * 2 }, () => 2 * rng() - 1), [7, 3, 2]);
    const lengths = Int32Array.of(7, 3, 5);
    const cases = [
      { head: { kind: 'classify' as const, pool: 'last' as const }, y: Tensor.from(Int32Array.of(0, 2, 1), [3]) },
      { head: { kind: 'regress' as const }, y: Tensor.from(Float32Array.from({ length: 7 * 3 * 3 }, () => rng()), [7, 3, 3]) },
    ];
    for (const { head, y } of cases) {
      const make = (backend: 'native' | 'reference') => new RNN({ inputSize: 2, hiddenSize: 5, outputSize: 3, cell, numLayers: 2, bidirectional: true, head, seed: 6, backend });
      const a = diagnose(make('native'), x, y, { lengths, truncate: [2, 7], jacobian: false });
      const b = diagnose(make('reference'), x, y, { lengths, truncate: [2, 7], jacobian: false });
      expect(maxRel(a.perLag, b.perLag)).toBeLessThan(1e-4);
      expect(a.perLag[1]).toBeGreaterThan(0);
      expect(a.truncationBias[0].relativeError).toBeCloseTo(b.truncationBias[0].relativeError, 4);
      expect(a.truncationBias[1].relativeError).toBe(0);
    }
  });
});
