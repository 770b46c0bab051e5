/**
 * The native layer API's own behaviour: async calls equal sync ones bit for bit and read copies of
 * their inputs; results are bitwise the same on 1, 2 and 3 threads; backward is linear in the
 * upstream gradients; every bad request is a typed error that changes nothing; direct malformed
 * calls to the addon end in JS exceptions.
 */
import { CellKind, DTypeError, DisposedError, LayerSpec, ShapeError, TensorInUseError, backends, numThreads, setNumThreads } from '../lib';
import { addon } from '../lib/native';
import { randomEngineProblem } from './helpers/engine-problems';
import { mulberry32 } from './helpers/oracle-checks';

function problem(cell: CellKind, opts: { L?: number; bidirectional?: boolean; T?: number; B?: number; H?: number; D?: number; withLengths?: boolean; kind?: 'dense' | 'tokens'; seed?: number } = {}) {
  const rng = mulberry32(opts.seed ?? 5);
  const H = opts.H ?? 9;
  const p = randomEngineProblem(rng, { cell, D: opts.D ?? 6, H, L: opts.L ?? 2, bidirectional: opts.bidirectional ?? true, T: opts.T ?? 8, B: opts.B ?? 3, kind: opts.kind ?? 'dense', withLengths: opts.withLengths ?? true, scale: Math.min(0.7, 1.5 / Math.sqrt(H)) });
  const f32 = (a: Float64Array | null) => (a === null ? null : Float32Array.from(a));
  const weights = Object.fromEntries(Object.entries(p.weights).map(([k, v]) => [k, Float32Array.from(v)]));
  const input = p.batch.input.kind === 'dense' ? { kind: 'dense' as const, data: Float32Array.from(p.batch.input.data) } : p.batch.input;
  const batch = { ...p.batch, input, h0: f32(p.batch.h0), c0: f32(p.batch.c0) };
  const upstream = { dy: Float32Array.from(p.upstream.dy), dhT: Float32Array.from(p.upstream.dhT), dcT: f32(p.upstream.dcT) };
  return { spec: p.spec, weights, batch, upstream };
}

type Problem = ReturnType<typeof problem>;

function runSync(p: Problem, truncate: number | null = null) {
  const out = backends.native.layerForward(p.spec, p.weights, p.batch);
  const g = backends.native.layerBackward(p.spec, p.weights, out.saved, { ...p.upstream, truncate });
  out.saved.dispose();
  return { out, g };
}

function expectSameBits(a: ArrayLike<number> | null, b: ArrayLike<number> | null): void {
  if (a === null || b === null) {
    expect(a).toBe(b);
    return;
  }
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) throw new Error(`element ${i}: ${a[i]} !== ${b[i]}`);
}

function expectSameResults(x: ReturnType<typeof runSync>, y: ReturnType<typeof runSync>): void {
  expectSameBits(x.out.y, y.out.y);
  expectSameBits(x.out.hT, y.out.hT);
  expectSameBits(x.out.cT, y.out.cT);
  expectSameBits(x.g.dx, y.g.dx);
  expectSameBits(x.g.dh0, y.g.dh0);
  expectSameBits(x.g.dc0, y.g.dc0);
  for (const name of Object.keys(x.g.grads)) expectSameBits(x.g.grads[name], y.g.grads[name]);
}

describe('native layer API', () => {
  test.each(['tanh', 'lstm', 'gru'] as CellKind[])('async %s equals sync bit for bit and reads copies of its inputs', async (cell) => {
    const p = problem(cell);
    const expected = runSync(p);
    const weights = Object.fromEntries(Object.entries(p.weights).map(([k, v]) => [k, v.slice()]));
    const dense = (p.batch.input.data as Float32Array).slice();
    const batch = { ...p.batch, input: { kind: 'dense' as const, data: dense } };
    const pending = backends.native.layerForwardAsync(p.spec, weights, batch);
    // Overwritten while the job runs: the job must not see it.
    for (const w of Object.values(weights)) w.fill(NaN);
    dense.fill(NaN);
    const out = await pending;
    for (const [k, v] of Object.entries(p.weights)) weights[k].set(v);
    const dy = p.upstream.dy.slice();
    const pendingBackward = backends.native.layerBackwardAsync(p.spec, weights, out.saved, { ...p.upstream, dy });
    expect(() => out.saved.dispose()).toThrow(TensorInUseError);
    dy.fill(NaN);
    for (const w of Object.values(weights)) w.fill(NaN);
    const g = await pendingBackward;
    out.saved.dispose();
    expectSameResults({ out, g }, expected);
  });

  test('concurrent async calls with the same spec each get an engine', async () => {
    const p = problem('gru');
    const expected = runSync(p);
    const outs = await Promise.all([0, 1, 2].map(() => backends.native.layerForwardAsync(p.spec, p.weights, p.batch)));
    for (const out of outs) {
      expectSameBits(out.y, expected.out.y);
      out.saved.dispose();
    }
  });

  test.each(['relu', 'lstm', 'gru'] as CellKind[])('%s: results are bitwise identical on 1, 2 and 3 threads (full and truncated)', (cell) => {
    // Big enough that products and recurrences split across threads.
    const p = problem(cell, { L: 2, bidirectional: true, T: 24, B: 37, H: 65, D: 33, withLengths: true, seed: 11 });
    const before = numThreads();
    try {
      for (const truncate of [null, 5]) {
        setNumThreads(1);
        const one = runSync(p, truncate);
        for (const n of [2, 3]) {
          setNumThreads(n);
          expectSameResults(runSync(p, truncate), one);
        }
      }
    } finally {
      setNumThreads(before);
    }
  });

  test.each(['tanh', 'lstm', 'gru'] as CellKind[])('%s: backward is linear in dy, dhT and dcT', (cell) => {
    const p = problem(cell, { seed: 3 });
    const q = problem(cell, { seed: 4 });
    const out = backends.native.layerForward(p.spec, p.weights, p.batch);
    const back = (u: typeof p.upstream) => backends.native.layerBackward(p.spec, p.weights, out.saved, { ...u, truncate: 3 });
    const sum = (a: Float32Array | null, b: Float32Array | null) => (a === null || b === null ? null : a.map((v, i) => v + b[i]));
    const g1 = back(p.upstream);
    const g2 = back(q.upstream);
    const g12 = back({ dy: sum(p.upstream.dy, q.upstream.dy)!, dhT: sum(p.upstream.dhT, q.upstream.dhT)!, dcT: sum(p.upstream.dcT, q.upstream.dcT) });
    out.saved.dispose();
    const close = (a: Float32Array | null, b: Float32Array | null, c: Float32Array | null) => {
      if (a === null) return;
      let scale = 0;
      let diff = 0;
      for (let i = 0; i < a.length; i++) {
        scale = Math.max(scale, Math.abs(b![i]) + Math.abs(c![i]));
        diff = Math.max(diff, Math.abs(a[i] - b![i] - c![i]));
      }
      expect(diff).toBeLessThanOrEqual(1e-5 * Math.max(scale, 1e-30));
    };
    close(g12.dx, g1.dx, g2.dx);
    close(g12.dh0, g1.dh0, g2.dh0);
    close(g12.dc0, g1.dc0, g2.dc0);
    for (const name of Object.keys(g1.grads)) close(g12.grads[name], g1.grads[name], g2.grads[name]);
  });

  describe('bad input: typed errors, nothing changed', () => {
    const p = problem('lstm', { L: 1, bidirectional: false, withLengths: false });
    const spec = p.spec;

    test('spec, weights and batch', () => {
      expect(() => backends.native.layerForward({ ...spec, cell: 'elman' as CellKind }, p.weights, p.batch)).toThrow(TypeError);
      const { weight_hh_l0: _missing, ...missing } = p.weights;
      expect(() => backends.native.layerForward(spec, missing, p.batch)).toThrow(/missing/);
      expect(() => backends.native.layerForward(spec, { ...p.weights, weight_hh_l1: new Float32Array(4) }, p.batch)).toThrow(/unexpected/);
      expect(() => backends.native.layerForward(spec, { ...p.weights, bias_ih_l0: new Float32Array(3) }, p.batch)).toThrow(ShapeError);
      expect(() => backends.native.layerForward(spec, { ...p.weights, bias_ih_l0: new Float64Array(p.weights.bias_ih_l0) as unknown as Float32Array }, p.batch)).toThrow(DTypeError);
      expect(() => backends.native.layerForward(spec, p.weights, { ...p.batch, lengths: new Int32Array([1, 0, 2]) })).toThrow(RangeError);
      expect(() => backends.native.layerForward(spec, p.weights, { ...p.batch, lengths: new Int32Array([1, 2]) })).toThrow(ShapeError);
      expect(() => backends.native.layerForward(spec, p.weights, { ...p.batch, lengths: new Int32Array([1, 2, 9]) })).toThrow(RangeError);
      const gruSpec: LayerSpec = { ...spec, cell: 'gru' };
      const gru = problem('gru', { L: 1, bidirectional: false, withLengths: false });
      expect(() => backends.native.layerForward(gruSpec, gru.weights, { ...gru.batch, c0: new Float32Array(gru.batch.h0!.length) })).toThrow(/only for cell 'lstm'/);
    });

    test('backward arguments and the saved handle', () => {
      const out = backends.native.layerForward(spec, p.weights, p.batch);
      expect(() => backends.native.layerBackward(spec, p.weights, out.saved, { dy: new Float32Array(3) })).toThrow(ShapeError);
      expect(() => backends.native.layerBackward({ ...spec, hiddenSize: spec.hiddenSize + 1 }, p.weights, out.saved, p.upstream)).toThrow(RangeError);
      const ref = backends.reference.layerForward(spec, p.weights, p.batch);
      expect(() => backends.native.layerBackward(spec, p.weights, ref.saved, p.upstream)).toThrow(/'reference' backend/);
      expect(() => backends.reference.layerBackward(spec, p.weights, out.saved, p.upstream)).toThrow(/'native' backend/);
      // The handle survives the failed calls.
      const g = backends.native.layerBackward(spec, p.weights, out.saved, p.upstream);
      expect(g.dh0.length).toBe(p.upstream.dhT.length);
      out.saved.dispose();
      out.saved.dispose();
      expect(out.saved.isDisposed).toBe(true);
      expect(() => backends.native.layerBackward(spec, p.weights, out.saved, p.upstream)).toThrow(DisposedError);
      const gru = problem('gru', { L: 1, bidirectional: false, withLengths: false });
      const gruOut = backends.native.layerForward(gru.spec, gru.weights, gru.batch);
      expect(() => backends.native.layerBackward(gru.spec, gru.weights, gruOut.saved, { ...gru.upstream, dcT: new Float32Array(gru.upstream.dhT.length) })).toThrow(/only for cell 'lstm'/);
      gruOut.saved.dispose();
    });

    test('direct malformed calls to the addon end in JS exceptions', () => {
      const native = addon();
      expect(() => new native.LayerEngine('elman', 3, 4, 1, false, 0)).toThrow(/cell must be one of/);
      expect(() => new native.LayerEngine('lstm', 3, 4, 1, false, 1)).toThrow(/dropout must be in/);
      expect(() => new native.LayerEngine('lstm', 0, 4, 1, false, 0)).toThrow(/inputSize must be an integer/);
      expect(() => new native.LayerEngine('lstm', 3)).toThrow(/expects a string/);
      const engine = new native.LayerEngine('tanh', 2, 3, 1, false, 0);
      const w = [new Float32Array(6), new Float32Array(9), new Float32Array(3), new Float32Array(3)];
      const y = new Float32Array(2 * 1 * 3);
      const hT = new Float32Array(3);
      expect(() => engine.forward(w, 2, 1, new Int32Array([0, 2]), null, null, null, null, false, 0, y, hT, null, null)).toThrow(/tokens\[1\] = 2 is outside/);
      expect(() => engine.forward(w, 2, 1, new Int32Array([0, 1]), null, new Int32Array([3]), null, null, false, 0, y, hT, null, null)).toThrow(/lengths\[0\] = 3 is outside/);
      expect(() => engine.forward(w, 2, 1, new Int32Array([0, 1]), null, null, null, null, false, 0, y, hT, null, { forged: true })).toThrow(/must be a LayerRecord/);
      expect(() => engine.forward(w.slice(1), 2, 1, new Int32Array([0, 1]), null, null, null, null, false, 0, y, hT, null, null)).toThrow(/an Array of 4 Float32Arrays/);
      expect(() => engine.forward([new Float32Array(6).fill(NaN), ...w.slice(1)], 2, 1, new Int32Array([0, 1]), null, null, null, null, false, 0, y, hT, null, null)).toThrow(/NaN/);
      expect(() => engine.backward(w, {}, y, null, null, 0, null, hT, null, w)).toThrow(/must be a LayerRecord/);
      const record = new native.LayerRecord();
      expect(() => engine.backward(w, record, y, null, null, 0, null, hT, null, w)).toThrow(/no completed forward/);
      engine.forward(w, 2, 1, new Int32Array([0, 1]), null, null, null, null, false, 0, y, hT, null, record);
      expect(() => engine.backward(w, record, y, null, null, 0, new Float32Array(4), hT, null, w)).toThrow(/null for token inputs/);
      const other = new native.LayerEngine('relu', 2, 3, 1, false, 0);
      expect(() => other.backward(w, record, y, null, null, 0, null, hT, null, w)).toThrow(/another layer spec/);
      record.dispose();
      expect(() => engine.backward(w, record, y, null, null, 0, null, hT, null, w)).toThrow(/disposed/);
    });
  });
});
