/**
 * The task heads' float64 oracle (lib/engine/model.ts): every head's gradients against central
 * finite differences, and its meaning checked by independent routes — the pooled 'last' vector is
 * the top layer's h_n, padding never counts (a padded batch = each sequence run alone), class
 * weights average as Σ w_y·l / Σ w_y, Huber on both sides of delta, ignored targets.
 */
import { CellKind } from '../lib';
import {
  HeadSpec,
  ModelTargets,
  NormalizedModelSpec,
  checkModelCall,
  checkModelSpec,
  modelParameters,
  referenceModelForward,
  referenceModelLossAndGradients,
} from '../lib/engine/model';
import { LayerBatch } from '../lib/engine/spec';
import { randomLengths, uniform64 } from './helpers/engine-problems';
import { ModelCase } from './helpers/model-problems';
import { Random, mulberry32 } from './helpers/oracle-checks';

const CELLS: CellKind[] = ['tanh', 'relu', 'lstm', 'gru'];
const D = 3;

type Case = Pick<ModelCase, 'cell' | 'L' | 'bidirectional' | 'head' | 'K' | 'H' | 'T' | 'B' | 'lengths'> & { tokens?: boolean };

function targetsFor(rng: Random, spec: NormalizedModelSpec, T: number, B: number): ModelTargets {
  const K = spec.outputSize;
  const head = spec.head;
  if (head.kind === 'tokens') return Int32Array.from({ length: T * B }, () => (rng() < 0.2 ? -1 : Math.floor(rng() * K)));
  if (head.kind === 'classify') return Int32Array.from({ length: B }, (_, b) => (b === 1 ? -1 : Math.floor(rng() * K)));
  const n = (head.positions === 'every' ? T * B : B) * K;
  return Float32Array.from({ length: n }, () => 2 * rng() - 1);
}

function build(seed: number, c: Case) {
  const rng = mulberry32(seed);
  const spec = checkModelSpec({ cell: c.cell, inputSize: D, hiddenSize: c.H, numLayers: c.L, bidirectional: c.bidirectional, outputSize: c.K, head: c.head });
  const params: Record<string, Float64Array> = {};
  const scale = Math.min(0.8, 1.5 / Math.sqrt(c.H));
  for (const p of modelParameters(spec)) params[p.name] = uniform64(rng, p.size, scale);
  const batch: LayerBatch = {
    steps: c.T,
    batch: c.B,
    input: c.tokens ? { kind: 'tokens', data: Int32Array.from({ length: c.T * c.B }, () => Math.floor(rng() * D)) } : { kind: 'dense', data: uniform64(rng, c.T * c.B * D, 1) },
    lengths: c.lengths ? randomLengths(rng, c.T, c.B) : null,
  };
  const call = checkModelCall(spec, batch, { reduction: 'mean' }, true);
  return { spec, params, call, targets: targetsFor(rng, spec, c.T, c.B) };
}

function finiteDifferences(m: ReturnType<typeof build>): number {
  const loss = () => referenceModelLossAndGradients(m.spec, m.params, m.call.batch, m.targets, m.call.options).loss;
  const g = referenceModelLossAndGradients(m.spec, m.params, m.call.batch, m.targets, m.call.options);
  let worst = 0;
  for (const [name, arr] of Object.entries(m.params)) {
    for (let j = 0; j < arr.length; j += Math.max(1, Math.floor(arr.length / 5))) {
      const eps = 1e-6;
      const keep = arr[j];
      arr[j] = keep + eps;
      const up = loss();
      arr[j] = keep - eps;
      const down = loss();
      arr[j] = keep;
      const fd = (up - down) / (2 * eps);
      worst = Math.max(worst, Math.abs(fd - g.grads[name][j]) / Math.max(1, Math.abs(fd)));
    }
  }
  return worst;
}

const HEADS: [string, HeadSpec, number][] = [
  ['tokens', { kind: 'tokens' }, 4],
  ['classify last', { kind: 'classify' }, 3],
  ['classify mean', { kind: 'classify', pool: 'mean' }, 3],
  ['classify weighted', { kind: 'classify', classWeights: [0.5, 2, 1.25] }, 3],
  ['regress every mse', { kind: 'regress' }, 2],
  ['regress last mse', { kind: 'regress', positions: 'last' }, 2],
  ['regress every huber', { kind: 'regress', loss: 'huber', delta: 0.3 }, 2],
  ['regress last huber', { kind: 'regress', positions: 'last', loss: 'huber', delta: 0.3 }, 2],
];

describe('task heads: the float64 oracle', () => {
  const cases: [string, Case][] = [];
  let n = 0;
  for (const [name, head, K] of HEADS)
    for (const cell of CELLS)
      for (const [L, bidirectional] of [
        [1, false],
        [2, true],
      ] as const) {
        cases.push([`${name} ${cell} L${L}${bidirectional ? ' bi' : ''}`, { cell, L, bidirectional, head, K, H: [1, 3][n % 2], T: [1, 4][(n >> 1) % 2], B: [1, 3][n % 2], lengths: n % 3 !== 0, tokens: n % 4 === 1 }]);
        n++;
      }

  test.each(cases)('%s: gradients = central differences (< 1e-6)', (_label, c) => {
    expect(finiteDifferences(build(11 + c.H * 7 + c.T, c))).toBeLessThan(1e-6);
  });

  test.each(CELLS)("%s: the pooled 'last' vector is the top layer's h_n (forward at the last valid step, reverse at step 0)", (cell) => {
    for (const bidirectional of [false, true]) {
      const m = build(5, { cell, L: 2, bidirectional, head: { kind: 'regress', positions: 'last' }, K: 2, H: 3, T: 5, B: 4, lengths: true });
      const fwd = referenceModelForward(m.spec, m.params, m.call.batch);
      const dirs = bidirectional ? 2 : 1;
      const H = 3;
      const B = 4;
      const W = dirs * H;
      const V = m.params['fc.weight'];
      const c = m.params['fc.bias'];
      for (let b = 0; b < B; b++)
        for (let k = 0; k < 2; k++) {
          let z = c[k];
          for (let d = 0; d < dirs; d++) {
            const top = (2 - 1) * dirs + d; // hT index l*dirs + d of the top layer
            for (let j = 0; j < H; j++) z += V[k * W + d * H + j] * fwd.hT[(top * B + b) * H + j];
          }
          expect(Math.abs(fwd.logits[b * 2 + k] - z)).toBeLessThan(1e-12);
        }
    }
  });

  test.each(HEADS.filter(([, h]) => h.kind !== 'tokens'))('%s: padding never counts (a padded batch = each sequence on its own)', (_name, head, K) => {
    for (const bidirectional of [false, true]) {
      const m = build(3, { cell: 'gru', L: 2, bidirectional, head, K, H: 3, T: 6, B: 3, lengths: true });
      const lengths = Int32Array.of(6, 2, 4);
      const batch = { ...m.call.batch, lengths };
      const whole = referenceModelLossAndGradients(m.spec, m.params, batch, m.targets, { ...m.call.options, reduction: 'sum' });
      let sum = 0;
      const grads: Record<string, Float64Array> = Object.fromEntries(Object.keys(whole.grads).map((k) => [k, new Float64Array(whole.grads[k].length)]));
      for (let b = 0; b < 3; b++) {
        const T = lengths[b];
        const x = batch.input.data as Float64Array;
        const alone = { steps: T, batch: 1, input: { kind: 'dense' as const, data: Float64Array.from({ length: T * D }, (_, i) => x[(Math.floor(i / D) * 3 + b) * D + (i % D)]) }, lengths: null, h0: null, c0: null };
        const y = m.targets;
        let t: ModelTargets;
        if (head.kind === 'classify') t = Int32Array.of(y[b]);
        else if (m.spec.head.kind === 'regress' && m.spec.head.positions === 'last') t = Float32Array.from({ length: K }, (_, k) => y[b * K + k]);
        else t = Float32Array.from({ length: T * K }, (_, i) => y[(Math.floor(i / K) * 3 + b) * K + (i % K)]);
        const r = referenceModelLossAndGradients(m.spec, m.params, alone, t, { ...m.call.options, reduction: 'sum' });
        sum += r.loss;
        for (const k of Object.keys(grads)) r.grads[k].forEach((v, i) => (grads[k][i] += v));
      }
      expect(Math.abs(whole.loss - sum)).toBeLessThan(1e-10);
      for (const k of Object.keys(grads)) grads[k].forEach((v, i) => expect(Math.abs(v - whole.grads[k][i])).toBeLessThan(1e-10));
    }
  });

  test("class weights: 'mean' is Σ w_y·l / Σ w_y, 'sum' Σ w_y·l, ignored sequences count for nothing", () => {
    const weights = [0.5, 2, 1.25];
    const plain = build(8, { cell: 'lstm', L: 1, bidirectional: false, head: { kind: 'classify' }, K: 3, H: 3, T: 3, B: 5, lengths: false });
    const weighted = build(8, { cell: 'lstm', L: 1, bidirectional: false, head: { kind: 'classify', classWeights: weights }, K: 3, H: 3, T: 3, B: 5, lengths: false });
    const y = plain.targets as Int32Array;
    expect(y[1]).toBe(-1);
    // Per-sequence unweighted losses, each from a batch where only that sequence counts.
    const single = (b: number) => {
      const t = Int32Array.from(y, (v, i) => (i === b ? v : -1));
      return referenceModelLossAndGradients(plain.spec, plain.params, plain.call.batch, t, { ...plain.call.options, reduction: 'sum' }).loss;
    };
    let num = 0;
    let den = 0;
    for (let b = 0; b < 5; b++) {
      if (y[b] < 0) continue;
      num += weights[y[b]] * single(b);
      den += weights[y[b]];
    }
    const mean = referenceModelLossAndGradients(weighted.spec, weighted.params, weighted.call.batch, y, weighted.call.options).loss;
    const sum = referenceModelLossAndGradients(weighted.spec, weighted.params, weighted.call.batch, y, { ...weighted.call.options, reduction: 'sum' }).loss;
    expect(Math.abs(mean - num / den)).toBeLessThan(1e-12);
    expect(Math.abs(sum - num)).toBeLessThan(1e-12);
    // Every target ignored: loss and gradients 0.
    const none = referenceModelLossAndGradients(weighted.spec, weighted.params, weighted.call.batch, new Int32Array(5).fill(-1), weighted.call.options);
    expect(none.loss).toBe(0);
    expect(none.grads['fc.bias'].every((v) => v === 0)).toBe(true);
  });

  test('Huber: quadratic inside delta, linear outside, mean over the counted elements', () => {
    const delta = Math.fround(0.3); // the head keeps delta as a float32, as the native side computes with it
    const m = build(4, { cell: 'tanh', L: 1, bidirectional: false, head: { kind: 'regress', positions: 'every', loss: 'huber', delta }, K: 2, H: 3, T: 4, B: 2, lengths: false });
    const batch = { ...m.call.batch, lengths: Int32Array.of(4, 1) };
    const z = referenceModelForward(m.spec, m.params, batch).logits;
    // Targets at chosen distances from the prediction (inside, outside and at delta); rows t*B + b.
    const offsets = [0.1, -0.2, 0.5, -1.5, 0.3, -0.3, 2, 0.05];
    const t = Float32Array.from(z, (v, i) => v - offsets[i % offsets.length]);
    const counted: number[] = [];
    for (const r of [0, 2, 4, 6, 1]) for (let k = 0; k < 2; k++) counted.push(z[r * 2 + k] - t[r * 2 + k]); // sequence 0: steps 0..3; sequence 1: step 0
    const huber = (d: number) => (Math.abs(d) <= delta ? 0.5 * d * d : delta * (Math.abs(d) - 0.5 * delta));
    const expected = counted.reduce((s, d) => s + huber(d), 0) / counted.length;
    const got = referenceModelLossAndGradients(m.spec, m.params, batch, t, m.call.options).loss;
    expect(counted.some((d) => Math.abs(d) < delta) && counted.some((d) => Math.abs(d) > delta)).toBe(true);
    expect(Math.abs(got - expected)).toBeLessThan(1e-12);
  });
});
