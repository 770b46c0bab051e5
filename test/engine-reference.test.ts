/**
 * The engine's oracle on its own terms: every gradient against central finite differences in
 * float64, variable lengths against running each sequence alone, backward linearity, token
 * inputs against one-hot dense inputs, and the parameter layout.
 */
import { CELL_KINDS, LayerSpec, backends, layerParameterShapes, layerParameterTable } from '../lib';
import { EngineProblem, EngineProblemSpec, centralDifferences, functional, gradients, randomEngineProblem } from './helpers/engine-problems';
import { mulberry32, relErr } from './helpers/oracle-checks';

const ref = backends.reference;

/** Checks dL/d(everything) of the problem's functional against central differences. */
function checkAgainstFiniteDifferences(p: EngineProblem, options?: { training: boolean; dropoutSeed: number }): void {
  const { g } = gradients(p, options);
  const L = () => functional(p, options);
  const errors: Record<string, number> = {};
  for (const name of Object.keys(p.weights)) errors[name] = relErr(g.grads[name], centralDifferences(p.weights[name], L));
  if (p.batch.input.kind === 'dense') errors.dx = relErr(g.dx as Float64Array, centralDifferences(p.batch.input.data as Float64Array, L));
  else expect(g.dx).toBeNull();
  errors.dh0 = relErr(g.dh0, centralDifferences(p.batch.h0, L));
  if (p.batch.c0) errors.dc0 = relErr(g.dc0 as Float64Array, centralDifferences(p.batch.c0, L));
  else expect(g.dc0).toBeNull();
  const wrong = Object.entries(errors).filter(([, e]) => !(e < 1e-6));
  expect(wrong).toEqual([]);
  // Every weight matters to L here, so a gradient of zeros would be a vacuous pass.
  const zero = Object.entries(g.grads).filter(([, v]) => v.every((x) => x === 0)).map(([name]) => name);
  expect(zero).toEqual([]);
}

describe('engine oracle vs central finite differences (float64)', () => {
  const sizes = [
    { D: 3, H: 3, T: 4, B: 3 },
    { D: 2, H: 1, T: 4, B: 3 },
    { D: 5, H: 3, T: 4, B: 1 },
    { D: 4, H: 3, T: 1, B: 3 },
  ];
  const cases = CELL_KINDS.flatMap((cell) =>
    [1, 2].flatMap((L) =>
      [false, true].flatMap((bidirectional) =>
        [false, true].flatMap((withLengths) => (['dense', 'tokens'] as const).map((kind) => ({ cell, L, bidirectional, withLengths, kind }))),
      ),
    ),
  );
  test.each(cases.map((c, i) => [i, c.cell, c.L, c.bidirectional ? 'bidirectional' : 'forward', c.withLengths ? 'lengths' : 'full', c.kind, c] as const))(
    'case %i: %s, %i layer(s), %s, %s, %s',
    (i, _cell, _L, _dir, _len, _kind, c) => {
      const size = sizes[(i + (i >> 2)) % sizes.length];
      const spec: EngineProblemSpec = { ...c, ...size };
      checkAgainstFiniteDifferences(randomEngineProblem(mulberry32(900 + i), spec));
    },
  );

  // Dropout in training: for a fixed seed the mask is a constant, so the gradient is exact.
  test.each(CELL_KINDS.flatMap((cell) => [false, true].map((bidirectional) => [cell, bidirectional] as const)))('dropout 0.4 in training: %s, bidirectional %s', (cell, bidirectional) => {
    const p = randomEngineProblem(mulberry32(1300 + CELL_KINDS.indexOf(cell) * 2 + Number(bidirectional)), { cell, D: 3, H: 3, L: 3, bidirectional, T: 4, B: 2, kind: 'dense', withLengths: true, dropout: 0.4 });
    checkAgainstFiniteDifferences(p, { training: true, dropoutSeed: 12345 });
  });
});

/** Sequence b of a problem on its own: B = 1, T = its length, its rows of h0/c0. */
function alone(p: EngineProblem, b: number): EngineProblem {
  const { steps: T, batch: B } = p.batch;
  const len = p.batch.lengths ? p.batch.lengths[b] : T;
  const H = p.spec.hiddenSize;
  const width = p.upstream.dy.length / (T * B);
  const states = p.batch.h0.length / (B * H);
  const pick = (a: Float64Array, rows: number, w: number) => Float64Array.from({ length: rows * w }, (_, i) => a[(Math.floor(i / w) * B + b) * w + (i % w)]);
  const input: EngineProblem['batch']['input'] =
    p.batch.input.kind === 'tokens'
      ? { kind: 'tokens', data: Int32Array.from({ length: len }, (_, t) => p.batch.input.data[t * B + b]) }
      : { kind: 'dense', data: pick(p.batch.input.data as Float64Array, len, p.spec.inputSize) };
  return {
    spec: p.spec,
    weights: p.weights,
    batch: { steps: len, batch: 1, input, lengths: null, h0: pick(p.batch.h0, states, H), c0: p.batch.c0 && pick(p.batch.c0, states, H) },
    upstream: { dy: pick(p.upstream.dy, len, width), dhT: pick(p.upstream.dhT, states, H), dcT: p.upstream.dcT && pick(p.upstream.dcT, states, H) },
  };
}

describe('variable lengths', () => {
  const cases = CELL_KINDS.flatMap((cell) => [
    { cell, L: 1, bidirectional: true, kind: 'dense' as const, truncate: undefined },
    { cell, L: 2, bidirectional: true, kind: 'tokens' as const, truncate: undefined },
    { cell, L: 2, bidirectional: true, kind: 'dense' as const, truncate: 2 },
  ]);
  test.each(cases.map((c, i) => [i, c.cell, c.L, c.kind, c.truncate ?? 'full', c] as const))('case %i: %s, %i layer(s) bidirectional, %s, truncate %s: a batch equals each sequence run alone', (i, _cell, _L, _kind, _k, c) => {
    const rng = mulberry32(1400 + i);
    const p = randomEngineProblem(rng, { ...c, D: 3, H: 3, T: 6, B: 4, withLengths: true });
    p.batch.lengths = Int32Array.from([4, 6, 1, 3]);
    const { steps: T, batch: B } = p.batch;
    const H = p.spec.hiddenSize;
    const width = 2 * H;
    const lengths = p.batch.lengths;
    const { out, g } = gradients(p, undefined, { truncate: c.truncate });

    // Padding outputs are exactly zero.
    for (let t = 0; t < T; t++) for (let b = 0; b < B; b++) if (t >= lengths[b]) expect(Array.from(out.y.subarray((t * B + b) * width, (t * B + b + 1) * width))).toEqual(new Array(width).fill(0));

    // dy at padding has no effect at all.
    const noisy = Float64Array.from(p.upstream.dy);
    for (let t = 0; t < T; t++) for (let b = 0; b < B; b++) if (t >= lengths[b]) for (let j = 0; j < width; j++) noisy[(t * B + b) * width + j] = 1000 * (j + 1);
    const gNoisy = ref.layerBackward(p.spec, p.weights, out.saved, { ...p.upstream, dy: noisy, truncate: c.truncate });
    expect(gNoisy).toEqual(g);

    const summed: Record<string, Float64Array> = Object.fromEntries(Object.entries(g.grads).map(([k, v]) => [k, new Float64Array(v.length)]));
    const states = p.batch.h0.length / (B * H);
    for (let b = 0; b < B; b++) {
      const single = alone(p, b);
      const s = gradients(single, undefined, { truncate: c.truncate });
      const len = lengths[b];
      const rows = (a: Float64Array, n: number, w: number) => Float64Array.from({ length: n * w }, (_, i) => a[(Math.floor(i / w) * B + b) * w + (i % w)]);
      expect(relErr(rows(out.y, len, width), s.out.y)).toBeLessThan(1e-14);
      expect(relErr(rows(out.hT, states, H), s.out.hT)).toBeLessThan(1e-14);
      if (out.cT) expect(relErr(rows(out.cT, states, H), s.out.cT as Float64Array)).toBeLessThan(1e-14);
      if (g.dx) expect(relErr(rows(g.dx, len, 3), s.g.dx as Float64Array)).toBeLessThan(1e-12);
      expect(relErr(rows(g.dh0, states, H), s.g.dh0)).toBeLessThan(1e-12);
      if (g.dc0) expect(relErr(rows(g.dc0, states, H), s.g.dc0 as Float64Array)).toBeLessThan(1e-12);
      for (const [name, v] of Object.entries(s.g.grads)) for (let j = 0; j < v.length; j++) summed[name][j] += v[j];
    }
    for (const name of Object.keys(summed)) expect([name, relErr(g.grads[name], summed[name]) < 1e-12]).toEqual([name, true]);
    if (g.dx) {
      // dx is zero at padding.
      for (let t = 0; t < T; t++) for (let b = 0; b < B; b++) if (t >= lengths[b]) expect(Array.from(g.dx.subarray((t * B + b) * 3, (t * B + b + 1) * 3))).toEqual([0, 0, 0]);
    }
  });
});

describe('layerBackward is linear in (dy, dhT, dcT)', () => {
  test.each(CELL_KINDS.flatMap((cell) => [undefined, 2].map((truncate) => [cell, truncate ?? 'full', truncate] as const)))('%s, truncate %s', (cell, _k, truncate) => {
    const rng = mulberry32(1500 + CELL_KINDS.indexOf(cell));
    const p = randomEngineProblem(rng, { cell, D: 3, H: 3, L: 2, bidirectional: true, T: 5, B: 3, kind: 'dense', withLengths: true });
    const q = randomEngineProblem(rng, { cell, D: 3, H: 3, L: 2, bidirectional: true, T: 5, B: 3, kind: 'dense', withLengths: true });
    const out = ref.layerForward(p.spec, p.weights, p.batch);
    const sum = (a: Float64Array | null, b: Float64Array | null) => (a && b ? a.map((v, i) => v + b[i]) : null);
    const g1 = ref.layerBackward(p.spec, p.weights, out.saved, { ...p.upstream, truncate });
    const g2 = ref.layerBackward(p.spec, p.weights, out.saved, { ...q.upstream, truncate });
    const g12 = ref.layerBackward(p.spec, p.weights, out.saved, { dy: sum(p.upstream.dy, q.upstream.dy) as Float64Array, dhT: sum(p.upstream.dhT, q.upstream.dhT), dcT: sum(p.upstream.dcT, q.upstream.dcT), truncate });
    expect(relErr(g12.dx as Float64Array, sum(g1.dx, g2.dx) as Float64Array)).toBeLessThan(1e-13);
    expect(relErr(g12.dh0, sum(g1.dh0, g2.dh0) as Float64Array)).toBeLessThan(1e-13);
    if (g12.dc0) expect(relErr(g12.dc0, sum(g1.dc0, g2.dc0) as Float64Array)).toBeLessThan(1e-13);
    for (const name of Object.keys(g12.grads)) expect([name, relErr(g12.grads[name], sum(g1.grads[name], g2.grads[name]) as Float64Array) < 1e-13]).toEqual([name, true]);
  });
});

describe('token inputs', () => {
  test.each(CELL_KINDS)('%s: tokens give what their one-hot dense vectors give (outputs and weight gradients)', (cell) => {
    const rng = mulberry32(1600 + CELL_KINDS.indexOf(cell));
    const p = randomEngineProblem(rng, { cell, D: 5, H: 3, L: 2, bidirectional: true, T: 4, B: 3, kind: 'tokens', withLengths: true });
    const tokens = p.batch.input.data as Int32Array;
    const oneHot = new Float64Array(tokens.length * 5);
    tokens.forEach((id, r) => (oneHot[r * 5 + id] = 1));
    const dense: EngineProblem = { ...p, batch: { ...p.batch, input: { kind: 'dense', data: oneHot } } };
    const a = gradients(p, undefined, { truncate: 2 });
    const b = gradients(dense, undefined, { truncate: 2 });
    expect(relErr(a.out.y, b.out.y)).toBeLessThan(1e-15);
    expect(relErr(a.out.hT, b.out.hT)).toBeLessThan(1e-15);
    expect(a.g.dx).toBeNull();
    expect(b.g.dx).not.toBeNull();
    expect(relErr(a.g.dh0, b.g.dh0)).toBeLessThan(1e-14);
    for (const name of Object.keys(a.g.grads)) expect([name, relErr(a.g.grads[name], b.g.grads[name]) < 1e-14]).toEqual([name, true]);
  });
});

describe('parameter layout', () => {
  test("PyTorch's names, shapes and order for a 2-layer bidirectional LSTM", () => {
    const spec: LayerSpec = { cell: 'lstm', inputSize: 5, hiddenSize: 3, numLayers: 2, bidirectional: true };
    expect(layerParameterShapes(spec)).toEqual({
      weight_ih_l0: [12, 5],
      weight_hh_l0: [12, 3],
      bias_ih_l0: [12],
      bias_hh_l0: [12],
      weight_ih_l0_reverse: [12, 5],
      weight_hh_l0_reverse: [12, 3],
      bias_ih_l0_reverse: [12],
      bias_hh_l0_reverse: [12],
      weight_ih_l1: [12, 6],
      weight_hh_l1: [12, 3],
      bias_ih_l1: [12],
      bias_hh_l1: [12],
      weight_ih_l1_reverse: [12, 6],
      weight_hh_l1_reverse: [12, 3],
      bias_ih_l1_reverse: [12],
      bias_hh_l1_reverse: [12],
    });
    // Key order is part of the contract: Object.keys gives insertion order for these names.
    expect(Object.keys(layerParameterShapes(spec))[8]).toBe('weight_ih_l1');
  });

  test.each([
    ['tanh', 1],
    ['relu', 1],
    ['gru', 3],
  ] as const)('%s has %i gate(s); a unidirectional stack reads H wide inputs above layer 0', (cell, G) => {
    expect(layerParameterShapes({ cell, inputSize: 7, hiddenSize: 2, numLayers: 3 })).toEqual({
      weight_ih_l0: [G * 2, 7],
      weight_hh_l0: [G * 2, 2],
      bias_ih_l0: [G * 2],
      bias_hh_l0: [G * 2],
      weight_ih_l1: [G * 2, 2],
      weight_hh_l1: [G * 2, 2],
      bias_ih_l1: [G * 2],
      bias_hh_l1: [G * 2],
      weight_ih_l2: [G * 2, 2],
      weight_hh_l2: [G * 2, 2],
      bias_ih_l2: [G * 2],
      bias_hh_l2: [G * 2],
    });
  });

  test('the parameter table is contiguous, in the same order, with layer and direction', () => {
    const spec: LayerSpec = { cell: 'gru', inputSize: 4, hiddenSize: 5, numLayers: 2, bidirectional: true };
    const table = layerParameterTable(spec);
    expect(table.map((p) => p.name)).toEqual(Object.keys(layerParameterShapes(spec)));
    let offset = 0;
    for (const p of table) {
      expect(p.offset).toBe(offset);
      expect(p.size).toBe(p.shape.reduce((a, b) => a * b, 1));
      expect(p.name).toBe(`${p.kind}_l${p.layer}${p.direction ? '_reverse' : ''}`);
      offset += p.size;
    }
  });
});

describe('reverse direction and hT', () => {
  test('a reverse direction equals the forward direction run on the time-reversed sequence', () => {
    const rng = mulberry32(1700);
    for (const cell of CELL_KINDS) {
      const p = randomEngineProblem(rng, { cell, D: 3, H: 2, L: 1, bidirectional: true, T: 5, B: 1, kind: 'dense', withLengths: false });
      const out = ref.layerForward(p.spec, p.weights, p.batch);
      const uni: LayerSpec = { ...p.spec, bidirectional: false };
      const w = (suffix: string) => Object.fromEntries(['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'].map((k) => [`${k}_l0`, p.weights[`${k}_l0${suffix}`]]));
      const x = p.batch.input.data as Float64Array;
      const reversed = Float64Array.from({ length: x.length }, (_, i) => x[(4 - Math.floor(i / 3)) * 3 + (i % 3)]);
      const back = ref.layerForward(uni, w('_reverse'), { steps: 5, batch: 1, input: { kind: 'dense', data: reversed }, h0: p.batch.h0.slice(2, 4), c0: p.batch.c0 && p.batch.c0.slice(2, 4) });
      for (let t = 0; t < 5; t++) expect(Array.from(out.y.subarray(t * 4 + 2, t * 4 + 4))).toEqual(Array.from(back.y.subarray((4 - t) * 2, (5 - t) * 2)));
      // hT of the reverse direction is its state after step 0.
      expect(Array.from(out.hT.subarray(2, 4))).toEqual(Array.from(out.y.subarray(2, 4)));
      expect(Array.from(out.hT.subarray(2, 4))).toEqual(Array.from(back.hT));
    }
  });
});
