/**
 * Dropout between stacked layers: the hash every backend must reproduce bit for bit, the masks'
 * rate, and where the engine applies them (each layer's output that feeds the next, in training
 * only, scaled by 1/(1-p)).
 */
import { CELL_KINDS, LayerSpec, backends, dropoutBits, dropoutScales, dropoutThreshold } from '../lib';
import { randomEngineProblem } from './helpers/engine-problems';
import { mulberry32, relErr } from './helpers/oracle-checks';

const ref = backends.reference;

describe('dropoutBits', () => {
  // Computed once by an independent implementation (Python integers masked to 32 bits).
  test.each([
    [0, 0, 0, 2856213345],
    [0, 0, 1, 1863002342],
    [1, 0, 0, 2571226413],
    [12345, 1, 77, 4194250192],
    [0xffffffff, 2, 2 ** 31 - 1, 3446970100],
    [42, 0, 1000000, 2122075760],
  ])('seed %i, boundary %i, index %i -> %i', (seed, boundary, index, bits) => {
    expect(dropoutBits(seed, boundary, index)).toBe(bits);
  });

  test('keeps a fraction 1 - p, differently for each seed and boundary', () => {
    const n = 200000;
    for (const p of [0.1, 0.5, 0.9]) {
      const scales = dropoutScales(7, 0, p, n);
      const kept = scales.filter((s) => s !== 0);
      expect(Math.abs(kept.length / n - (1 - p))).toBeLessThan(0.005);
      expect(kept.every((s) => s === 1 / (1 - p))).toBe(true);
    }
    const a = dropoutScales(7, 0, 0.5, 1000);
    expect(dropoutScales(7, 0, 0.5, 1000)).toEqual(a);
    expect(dropoutScales(8, 0, 0.5, 1000)).not.toEqual(a);
    expect(dropoutScales(7, 1, 0.5, 1000)).not.toEqual(a);
  });

  test('the threshold is floor(p * 2^32): p = 0 keeps everything', () => {
    expect(dropoutThreshold(0)).toBe(0);
    expect(dropoutThreshold(0.5)).toBe(2 ** 31);
    expect(dropoutScales(3, 0, 0, 1000).every((s) => s === 1)).toBe(true);
  });
});

describe('dropout in the stack', () => {
  test.each(CELL_KINDS)('%s: layer l+1 reads layer l\'s output times the mask of boundary l', (cell) => {
    const rng = mulberry32(3000 + CELL_KINDS.indexOf(cell));
    const p = randomEngineProblem(rng, { cell, D: 3, H: 4, L: 3, bidirectional: true, T: 5, B: 3, kind: 'dense', withLengths: true, dropout: 0.5 });
    const seed = 2024;
    const out = ref.layerForward(p.spec, p.weights, p.batch, { training: true, dropoutSeed: seed });
    // The same stack one layer at a time, masking by hand.
    const layerStates = 2 * 3 * 4;
    let input: Float64Array = p.batch.input.data as Float64Array;
    let y: Float64Array = new Float64Array(0);
    for (let l = 0; l < 3; l++) {
      const spec: LayerSpec = { cell, inputSize: l === 0 ? 3 : 8, hiddenSize: 4, bidirectional: true };
      const w = Object.fromEntries(Object.entries(p.weights).filter(([name]) => name.includes(`_l${l}`)).map(([name, v]) => [name.replace(`_l${l}`, '_l0'), v]));
      const layer = ref.layerForward(spec, w, { ...p.batch, input: { kind: 'dense', data: input }, h0: p.batch.h0.slice(l * layerStates, (l + 1) * layerStates), c0: p.batch.c0 && p.batch.c0.slice(l * layerStates, (l + 1) * layerStates) });
      y = layer.y;
      const mask = dropoutScales(seed, l, 0.5, y.length);
      input = y.map((v, i) => v * mask[i]);
    }
    expect(relErr(out.y, y)).toBeLessThan(1e-15);
    // Something was dropped: the masked stack differs from the unmasked one.
    expect(relErr(out.y, ref.layerForward(p.spec, p.weights, p.batch).y)).toBeGreaterThan(1e-3);
  });

  test('no dropout outside training, none after the last layer, and none with one layer', () => {
    const rng = mulberry32(3100);
    const p = randomEngineProblem(rng, { cell: 'gru', D: 3, H: 3, L: 2, bidirectional: false, T: 4, B: 2, kind: 'dense', withLengths: false, dropout: 0.6 });
    const noDropout = { ...p.spec, dropout: 0 };
    const evalOut = ref.layerForward(p.spec, p.weights, p.batch);
    expect(evalOut.y).toEqual(ref.layerForward(noDropout, p.weights, p.batch).y);
    expect(evalOut.y).toEqual(ref.layerForward(p.spec, p.weights, p.batch, { training: false, dropoutSeed: 3 }).y);
    // Training changes layer 1's input only: layer 0's final states (hT rows 0..B-1) stay.
    const train = ref.layerForward(p.spec, p.weights, p.batch, { training: true, dropoutSeed: 3 });
    expect(train.hT.subarray(0, 6)).toEqual(evalOut.hT.subarray(0, 6));
    expect(relErr(train.hT.subarray(6), evalOut.hT.subarray(6))).toBeGreaterThan(1e-3);
    const single = randomEngineProblem(rng, { cell: 'lstm', D: 3, H: 3, L: 1, bidirectional: true, T: 4, B: 2, kind: 'dense', withLengths: false, dropout: 0.6 });
    expect(ref.layerForward(single.spec, single.weights, single.batch, { training: true }).y).toEqual(ref.layerForward(single.spec, single.weights, single.batch).y);
  });

  test('the same seed gives the same result, another seed another', () => {
    const p = randomEngineProblem(mulberry32(3200), { cell: 'tanh', D: 3, H: 3, L: 2, bidirectional: true, T: 4, B: 2, kind: 'tokens', withLengths: true, dropout: 0.3 });
    const a = ref.layerForward(p.spec, p.weights, p.batch, { training: true, dropoutSeed: 1 }).y;
    expect(ref.layerForward(p.spec, p.weights, p.batch, { training: true, dropoutSeed: 1 }).y).toEqual(a);
    expect(ref.layerForward(p.spec, p.weights, p.batch, { training: true, dropoutSeed: 2 }).y).not.toEqual(a);
  });
});
