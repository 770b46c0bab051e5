/**
 * The engine's oracle against PyTorch itself: test/fixtures/torch-rnn.json holds nn.RNN (tanh,
 * relu), nn.LSTM and nn.GRU forward and backward results, two layers, bidirectional, over a
 * packed variable-length batch (written by scripts/torch-fixtures.py in float64). Agreement means
 * our weights, layout, gate order, bias placement, padding and reverse-direction semantics are
 * PyTorch's. No torch is needed to run this.
 */
import * as fs from 'fs';
import * as path from 'path';
import { CellKind, backends, layerParameterShapes } from '../lib';
import { relErr } from './helpers/oracle-checks';

interface TorchCase {
  cell: CellKind;
  inputSize: number;
  hiddenSize: number;
  numLayers: number;
  bidirectional: boolean;
  steps: number;
  batch: number;
  lengths: number[];
  x: number[];
  h0: number[];
  c0: number[] | null;
  weights: Record<string, number[]>;
  dy: number[];
  dhT: number[];
  dcT: number[] | null;
  y: number[];
  hT: number[];
  cT: number[] | null;
  dx: number[];
  dh0: number[];
  dc0: number[] | null;
  grads: Record<string, number[]>;
}

const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'torch-rnn.json'), 'utf8')) as { cases: TorchCase[] };
const f64 = (a: number[] | null) => (a === null ? null : Float64Array.from(a));
// The fixture's results have 12 significant digits.
const TOL = 1e-10;

describe('engine oracle vs PyTorch fixtures', () => {
  test('the fixture covers every cell', () => {
    expect(fixture.cases.map((c) => c.cell).sort()).toEqual(['gru', 'lstm', 'relu', 'tanh']);
  });

  test.each(fixture.cases.map((c) => [c.cell, c] as const))('%s: forward and backward agree with torch', (_cell, c) => {
    const spec = { cell: c.cell, inputSize: c.inputSize, hiddenSize: c.hiddenSize, numLayers: c.numLayers, bidirectional: c.bidirectional };
    // PyTorch's names and shapes, in its order.
    const shapes = layerParameterShapes(spec);
    expect(Object.keys(shapes)).toEqual(Object.keys(c.weights));
    for (const [name, shape] of Object.entries(shapes)) expect(shape.reduce((a, b) => a * b, 1)).toBe(c.weights[name].length);

    const weights = Object.fromEntries(Object.entries(c.weights).map(([k, v]) => [k, Float64Array.from(v)]));
    const batch = {
      steps: c.steps,
      batch: c.batch,
      input: { kind: 'dense' as const, data: Float64Array.from(c.x) },
      lengths: Int32Array.from(c.lengths),
      h0: f64(c.h0),
      c0: f64(c.c0),
    };
    const out = backends.reference.layerForward(spec, weights, batch);
    expect(relErr(out.y, c.y)).toBeLessThan(TOL);
    expect(relErr(out.hT, c.hT)).toBeLessThan(TOL);
    if (c.cT) expect(relErr(out.cT as Float64Array, c.cT)).toBeLessThan(TOL);
    else expect(out.cT).toBeNull();

    const g = backends.reference.layerBackward(spec, weights, out.saved, { dy: Float64Array.from(c.dy), dhT: f64(c.dhT), dcT: f64(c.dcT) });
    expect(relErr(g.dx as Float64Array, c.dx)).toBeLessThan(TOL);
    expect(relErr(g.dh0, c.dh0)).toBeLessThan(TOL);
    if (c.dc0) expect(relErr(g.dc0 as Float64Array, c.dc0)).toBeLessThan(TOL);
    else expect(g.dc0).toBeNull();
    expect(Object.keys(g.grads)).toEqual(Object.keys(c.grads));
    // The names of the weights whose gradients differ, with their errors (none expected).
    const wrong = Object.keys(c.grads).map((name) => [name, relErr(g.grads[name], c.grads[name])] as const).filter(([, err]) => !(err < TOL));
    expect(wrong).toEqual([]);
  });
});
