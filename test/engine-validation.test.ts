/**
 * Bad input to the engine: each case a typed error whose message says what was expected and what
 * came, nothing changed, and the saved handle's life cycle. The checks live in lib/engine/spec.ts,
 * shared with the native backend.
 */
import { DTypeError, DisposedError, LayerBackwardArgs, LayerBatch, LayerForwardOptions, LayerSpec, NonFiniteError, SavedForward, ShapeError, backends, layerParameterShapes } from '../lib';
import { EngineProblem, randomEngineProblem } from './helpers/engine-problems';
import { mulberry32 } from './helpers/oracle-checks';

const ref = backends.reference;

type ErrorClass = new (...args: never[]) => Error;

function problem(cell: 'lstm' | 'gru' = 'lstm'): EngineProblem {
  return randomEngineProblem(mulberry32(4000), { cell, D: 3, H: 2, L: 2, bidirectional: true, T: 4, B: 3, kind: 'dense', withLengths: true });
}

/** Runs fn, expecting an error of the class whose message matches. */
function expectError(fn: () => unknown, type: ErrorClass, message: RegExp): void {
  let caught: unknown = null;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(type);
  expect((caught as Error).message).toMatch(message);
}

describe('layerForward refuses bad input', () => {
  const forward = (spec: unknown, weights: unknown, batch: unknown, options?: unknown) => () => ref.layerForward(spec as LayerSpec, weights as Record<string, Float64Array>, batch as LayerBatch, options as LayerForwardOptions);

  test('bad specs', () => {
    const p = problem();
    const { spec, weights, batch } = p;
    expectError(forward(null, weights, batch), TypeError, /spec must be an object.*got null/);
    expectError(forward({ ...spec, cell: 'elman' }, weights, batch), TypeError, /spec\.cell must be one of 'tanh', 'relu', 'lstm', 'gru', got 'elman'/);
    expectError(forward({ ...spec, cell: undefined }, weights, batch), TypeError, /spec\.cell must be one of .* got undefined/);
    expectError(forward({ ...spec, inputSize: 0 }, weights, batch), RangeError, /spec\.inputSize must be an integer in \[1, 2147483647\], got 0/);
    expectError(forward({ ...spec, hiddenSize: 2.5 }, weights, batch), RangeError, /spec\.hiddenSize .* got 2\.5/);
    expectError(forward({ ...spec, hiddenSize: NaN }, weights, batch), RangeError, /spec\.hiddenSize .* got NaN/);
    expectError(forward({ ...spec, numLayers: 0 }, weights, batch), RangeError, /spec\.numLayers .* got 0/);
    expectError(forward({ ...spec, bidirectional: 'yes' }, weights, batch), TypeError, /spec\.bidirectional must be a boolean, got string/);
    expectError(forward({ ...spec, dropout: 1 }, weights, batch), RangeError, /spec\.dropout must be a number in \[0, 1\), got 1/);
    expectError(forward({ ...spec, dropout: -0.1 }, weights, batch), RangeError, /got -0\.1/);
    expectError(forward({ ...spec, dropout: NaN }, weights, batch), RangeError, /got NaN/);
    // Sizes whose products overflow an index.
    expectError(forward({ cell: 'lstm', inputSize: 2 ** 20, hiddenSize: 2 ** 12 }, weights, batch), RangeError, /weight_ih_l0 would have 16384\*1048576 elements, more than the 2147483647 allowed/);
    expectError(forward({ cell: 'gru', inputSize: 1, hiddenSize: 2 ** 15 }, weights, batch), RangeError, /weight_hh_l0 would have 98304\*32768 elements/);
    expectError(forward({ cell: 'tanh', inputSize: 1, hiddenSize: 40000, numLayers: 2, bidirectional: true }, weights, batch), RangeError, /weight_ih_l1 would have 40000\*80000 elements/);
    expectError(() => layerParameterShapes({ cell: 'tanh', inputSize: 1, hiddenSize: 2 ** 15, numLayers: 3 }), RangeError, /parameters would have \d+ elements together/);
  });

  test('missing, extra, mis-typed, mis-shaped and non-finite weights', () => {
    const { spec, weights, batch } = problem();
    const without = { ...weights };
    delete (without as Record<string, unknown>).bias_hh_l1_reverse;
    expectError(forward(spec, null, batch), TypeError, /weights must be an object .*expected exactly weight_ih_l0, weight_hh_l0, .*got null/);
    expectError(forward(spec, without, batch), TypeError, /weights\.bias_hh_l1_reverse \[8\] is missing/);
    expectError(forward(spec, { ...weights, weight_ih_l2: new Float64Array(1) }, batch), TypeError, /unexpected entry 'weight_ih_l2'.*expected exactly/);
    expectError(forward({ ...spec, numLayers: 1 }, weights, batch), TypeError, /unexpected entry 'weight_ih_l1'/);
    expectError(forward(spec, { ...weights, weight_hh_l0: new Float64Array(15) }, batch), ShapeError, /weights\.weight_hh_l0 \[8, 2\] must have 16 elements, got 15/);
    expectError(forward(spec, { ...weights, weight_ih_l1: new Float64Array(8 * 3) }, batch), ShapeError, /weights\.weight_ih_l1 \[8, 4\] must have 32 elements, got 24/);
    expectError(forward(spec, { ...weights, bias_ih_l0: new Int32Array(8) }, batch), DTypeError, /weights\.bias_ih_l0 \[8\] must be a Float32Array or Float64Array, got Int32Array\(8\)/);
    expectError(forward(spec, { ...weights, bias_ih_l0: Array.from(weights.bias_ih_l0) }, batch), DTypeError, /got Array\(8\)/);
    const nan = Float64Array.from(weights.weight_hh_l1);
    nan[5] = NaN;
    expectError(forward(spec, { ...weights, weight_hh_l1: nan }, batch), NonFiniteError, /weights\.weight_hh_l1 must be finite, but element 5 is NaN/);
    expectError(forward(spec, { ...weights, bias_hh_l0: new Float32Array(8).fill(Infinity) }, batch), NonFiniteError, /element 0 is Infinity/);
  });

  test('bad batches: sizes, inputs, tokens, lengths, h0, c0', () => {
    const { spec, weights, batch } = problem();
    expectError(forward(spec, weights, null), TypeError, /batch must be an object/);
    expectError(forward(spec, weights, { ...batch, steps: 0 }), RangeError, /batch\.steps \(T\) must be an integer .*got 0/);
    expectError(forward(spec, weights, { ...batch, batch: 1.5 }), RangeError, /batch\.batch \(B\) .*got 1\.5/);
    expectError(forward(spec, weights, { ...batch, input: undefined }), TypeError, /batch\.input must be an object/);
    expectError(forward(spec, weights, { ...batch, input: { kind: 'sparse', data: new Float32Array(36) } }), TypeError, /batch\.input\.kind must be 'dense' or 'tokens', got string/);
    expectError(forward(spec, weights, { ...batch, input: { kind: 'dense', data: new Float32Array(35) } }), ShapeError, /dense input \[T, B, inputSize\] = \[4, 3, 3\] must have 36 elements, got 35/);
    expectError(forward(spec, weights, { ...batch, input: { kind: 'dense', data: new Int32Array(36) } }), DTypeError, /dense input .* must be a Float32Array or Float64Array, got Int32Array\(36\)/);
    expectError(forward(spec, weights, { ...batch, input: { kind: 'dense', data: new Float32Array(36).fill(NaN) } }), NonFiniteError, /dense input must be finite/);
    expectError(forward(spec, weights, { ...batch, input: { kind: 'tokens', data: new Float32Array(12) } }), DTypeError, /token input must be an Int32Array \[T, B\], got Float32Array\(12\)/);
    expectError(forward(spec, weights, { ...batch, input: { kind: 'tokens', data: new Int32Array(11) } }), ShapeError, /token input must have T\*B = 4\*3 = 12 elements, got 11/);
    expectError(forward(spec, weights, { ...batch, input: { kind: 'tokens', data: new Int32Array(12).fill(3) } }), RangeError, /token input\[0\] = 3 is outside \[0, 3\)/);
    expectError(forward(spec, weights, { ...batch, input: { kind: 'tokens', data: Int32Array.from([0, 1, 2, -1, 0, 0, 0, 0, 0, 0, 0, 0]) } }), RangeError, /token input\[3\] = -1 is outside \[0, 3\)/);
    expectError(forward(spec, weights, { ...batch, lengths: new Float32Array(3) }), DTypeError, /batch\.lengths must be an Int32Array \[B\], got Float32Array\(3\)/);
    expectError(forward(spec, weights, { ...batch, lengths: new Int32Array(2).fill(1) }), ShapeError, /batch\.lengths must have B = 3 elements, got 2/);
    expectError(forward(spec, weights, { ...batch, lengths: Int32Array.from([1, 0, 2]) }), RangeError, /batch\.lengths \(valid steps in \[1, T = 4\]\)\[1\] = 0 is outside \[1, 5\)/);
    expectError(forward(spec, weights, { ...batch, lengths: Int32Array.from([1, 5, 2]) }), RangeError, /\[1\] = 5 is outside/);
    expectError(forward(spec, weights, { ...batch, h0: new Float64Array(23) }), ShapeError, /h0 \[L\*dirs, B, H\] = \[4, 3, 2\] must have 24 elements, got 23/);
    expectError(forward(spec, weights, { ...batch, h0: new Float64Array(24).fill(-Infinity) }), NonFiniteError, /h0 must be finite/);
    expectError(forward(spec, weights, { ...batch, c0: new Float32Array(25) }), ShapeError, /c0 \[L\*dirs, B, H\] = \[4, 3, 2\] must have 24 elements, got 25/);
    const g = problem('gru');
    expectError(forward(g.spec, g.weights, { ...g.batch, c0: new Float32Array(24) }), TypeError, /c0 is only for cell 'lstm' \(a 'gru' cell has no cell state\), got Float32Array\(24\)/);
    // Sizes whose products overflow: checked before any array's length.
    expectError(forward(spec, weights, { ...batch, steps: 2 ** 16, batch: 2 ** 16 }), RangeError, /would have .* elements, more than the 2147483647 allowed/);
  });

  test('bad options', () => {
    const { spec, weights, batch } = problem();
    const dropout = { ...spec, dropout: 0.5 };
    expectError(forward(spec, weights, batch, 5), TypeError, /options must be an object .*got 5/);
    expectError(forward(spec, weights, batch, { training: 1 }), TypeError, /options\.training must be a boolean, got 1/);
    expectError(forward(dropout, weights, batch, { training: true, dropoutSeed: -1 }), RangeError, /options\.dropoutSeed must be an integer in \[0, 2\^32\), got -1/);
    expectError(forward(dropout, weights, batch, { training: true, dropoutSeed: 2 ** 32 }), RangeError, /got 4294967296/);
    expectError(forward(dropout, weights, batch, { training: true, dropoutSeed: 0.5 }), RangeError, /got 0\.5/);
    expectError(forward(dropout, weights, batch, { training: true }), TypeError, /training with dropout 0\.5 needs options\.dropoutSeed/);
  });
});

describe('layerBackward refuses bad input', () => {
  function setup() {
    const p = problem();
    const out = ref.layerForward(p.spec, p.weights, p.batch);
    const backward = (args: unknown, saved: unknown = out.saved, spec: unknown = p.spec, weights: unknown = p.weights) => () =>
      ref.layerBackward(spec as LayerSpec, weights as Record<string, Float64Array>, saved as SavedForward, args as LayerBackwardArgs);
    return { p, out, backward };
  }

  test('bad upstream gradients and truncation', () => {
    const { p, backward } = setup();
    const { dy, dhT, dcT } = p.upstream;
    expectError(backward(null), TypeError, /last argument must be an object \{ dy, dhT\?, dcT\?, truncate\? \}, got null/);
    expectError(backward({}), DTypeError, /dy \[T, B, dirs\*H\] = \[4, 3, 4\] must be a Float32Array or Float64Array, got undefined/);
    expectError(backward({ dy: new Float64Array(47) }), ShapeError, /dy \[T, B, dirs\*H\] = \[4, 3, 4\] must have 48 elements, got 47/);
    expectError(backward({ dy: new Float32Array(48).fill(NaN) }), NonFiniteError, /dy must be finite, but element 0 is NaN/);
    expectError(backward({ dy, dhT: new Float64Array(8) }), ShapeError, /dhT \[L\*dirs, B, H\] = \[4, 3, 2\] must have 24 elements, got 8/);
    expectError(backward({ dy, dcT: new Int32Array(24) }), DTypeError, /dcT .* got Int32Array\(24\)/);
    expectError(backward({ dy, dhT, dcT, truncate: 0 }), RangeError, /truncate must be an integer in \[1, 2147483647\], got 0/);
    expectError(backward({ dy, truncate: 2.5 }), RangeError, /truncate .* got 2\.5/);
    const g = problem('gru');
    const gout = ref.layerForward(g.spec, g.weights, g.batch);
    expectError(() => ref.layerBackward(g.spec, g.weights, gout.saved, { dy: g.upstream.dy, dcT: new Float64Array(24) }), TypeError, /dcT is only for cell 'lstm' \(a 'gru' cell has no cell state\)/);
    // Weights are checked on the way back too.
    expectError(backward({ dy }, undefined, undefined, { ...p.weights, weight_hh_l0: new Float64Array(3) }), ShapeError, /weights\.weight_hh_l0/);
  });

  test('saved handles: another backend, a forgery, another spec, disposed', () => {
    const { p, out, backward } = setup();
    const args = { dy: p.upstream.dy };
    expect(out.saved.backend).toBe(ref.name);
    expectError(backward(args, null), TypeError, /saved must be the handle a layerForward returned, got null/);
    expectError(backward(args, {}), TypeError, /saved must be the handle a layerForward returned, got object/);
    const fromNative = { backend: 'native', spec: out.saved.spec, steps: 4, batch: 3, inputKind: 'dense', isDisposed: false, dispose() {} };
    expectError(backward(args, fromNative), TypeError, /saved comes from the 'native' backend's layerForward; only that backend's layerBackward can use it, not 'reference'/);
    expectError(backward(args, { ...fromNative, backend: 'reference' }), TypeError, /saved says it comes from the 'reference' backend, but its layerForward did not make it/);
    expectError(backward(args, { backend: 'reference' }), TypeError, /did not make it/);
    expectError(backward(args, undefined, { ...p.spec, hiddenSize: 3 }), RangeError, /saved comes from a forward with spec \{ cell: 'lstm', inputSize: 3, hiddenSize: 2, numLayers: 2, bidirectional: true, dropout: 0 \}, but layerBackward was given \{ cell: 'lstm', inputSize: 3, hiddenSize: 3,/);
    expectError(backward(args, undefined, { ...p.spec, dropout: 0.1 }), RangeError, /dropout: 0 \}, but layerBackward was given .*dropout: 0\.1 \}/);
    expectError(backward(args, undefined, { ...p.spec, cell: 'gru' }), RangeError, /cell: 'gru'/);

    expect(out.saved.isDisposed).toBe(false);
    out.saved.dispose();
    expect(out.saved.isDisposed).toBe(true);
    out.saved.dispose(); // idempotent
    out.saved[Symbol.dispose]();
    expect(out.saved.isDisposed).toBe(true);
    expectError(backward(args), DisposedError, /saved was disposed; run layerForward again/);
  });

  test('[Symbol.dispose] disposes', () => {
    const { out } = setup();
    out.saved[Symbol.dispose]();
    expect(out.saved.isDisposed).toBe(true);
  });
});

describe('nothing changes when a call fails', () => {
  test('inputs, weights and the saved handle are intact after refused calls', () => {
    const p = problem();
    const snapshot = JSON.stringify([p.weights, p.batch, p.upstream].map((o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v && ArrayBuffer.isView(v) ? Array.from(v as Float64Array) : v]))));
    const out = ref.layerForward(p.spec, p.weights, p.batch);
    const good = ref.layerBackward(p.spec, p.weights, out.saved, { ...p.upstream, truncate: 2 });
    const badDy = Float64Array.from(p.upstream.dy);
    badDy[47] = NaN;
    expect(() => ref.layerBackward(p.spec, p.weights, out.saved, { ...p.upstream, dy: badDy, truncate: 2 })).toThrow(NonFiniteError);
    expect(() => ref.layerBackward({ ...p.spec, numLayers: 3 }, p.weights, out.saved, p.upstream)).toThrow(RangeError);
    expect(() => ref.layerForward(p.spec, p.weights, { ...p.batch, lengths: Int32Array.from([1, 2, 9]) })).toThrow(RangeError);
    expect(ref.layerBackward(p.spec, p.weights, out.saved, { ...p.upstream, truncate: 2 })).toEqual(good);
    const after = JSON.stringify([p.weights, p.batch, p.upstream].map((o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v && ArrayBuffer.isView(v) ? Array.from(v as Float64Array) : v]))));
    expect(after).toBe(snapshot);
  });

  test('the saved handle does not depend on the caller\'s arrays after the forward', () => {
    const p = problem();
    const out = ref.layerForward(p.spec, p.weights, p.batch);
    const good = ref.layerBackward(p.spec, p.weights, out.saved, p.upstream);
    (p.batch.input.data as Float64Array).fill(0.25);
    p.batch.h0.fill(0.5);
    (p.batch.lengths as Int32Array).fill(1);
    expect(ref.layerBackward(p.spec, p.weights, out.saved, p.upstream)).toEqual(good);
  });

  test('Float32Array everywhere is accepted too', () => {
    const p = problem();
    const f32 = (a: Float64Array) => Float32Array.from(a);
    const weights = Object.fromEntries(Object.entries(p.weights).map(([k, v]) => [k, f32(v)]));
    const batch = { ...p.batch, input: { kind: 'dense' as const, data: f32(p.batch.input.data as Float64Array) }, h0: f32(p.batch.h0), c0: f32(p.batch.c0 as Float64Array) };
    const out = ref.layerForward(p.spec, weights, batch);
    const g = ref.layerBackward(p.spec, weights, out.saved, { dy: f32(p.upstream.dy), dhT: f32(p.upstream.dhT), dcT: f32(p.upstream.dcT as Float64Array) });
    expect(out.y).toBeInstanceOf(Float64Array);
    expect(g.grads.weight_ih_l0).toBeInstanceOf(Float64Array);
    expect(g.dx).toBeInstanceOf(Float64Array);
  });
});
