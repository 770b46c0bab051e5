/**
 * Truncated BPTT in the engine's oracle, checked against an independent brute-force definition:
 * the gradient that enters layer l's output at step t (direction d) is the full gradient of a
 * fresh forward over the window of the k steps that end at t in d's order, started from the state
 * that enters the window held constant (a detached re-run), with dhT/dcT joining at the
 * sequence's last step and dh0/dc0 kept only for windows that start at the direction's first
 * step. Layers are truncated one at a time: layer l's truncated input gradient dX_l (times the
 * dropout mask) is what enters layer l-1. With k >= T truncation is full BPTT.
 */
import { CELL_KINDS, LayerInput, LayerSpec, backends, dropoutScales, hasCellState, layerInputSize } from '../lib';
import { EngineProblem, EngineProblemSpec, gradients, randomEngineProblem } from './helpers/engine-problems';
import { mulberry32, relErr } from './helpers/oracle-checks';

const ref = backends.reference;
const KINDS = ['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'];

const rowOf = (a: Float64Array | null, index: number, width: number): Float64Array | null => (a ? a.slice(index * width, (index + 1) * width) : null);

function addInto(target: Float64Array, source: ArrayLike<number>, offset = 0): void {
  for (let i = 0; i < source.length; i++) target[offset + i] += source[i];
}

interface LayerGradients {
  grads: Record<string, Float64Array>;
  dX: Float64Array | null;
}

/**
 * Brute-force truncated backward of layer l of a stack, with X its input [T, B, width] (or the
 * tokens), dY the gradient entering its output. Adds to dh0/dc0 (stack layout) in place.
 */
function bruteForceLayer(p: EngineProblem, l: number, X: LayerInput, dY: Float64Array, k: number, dh0: Float64Array, dc0: Float64Array | null): LayerGradients {
  const { cell, hiddenSize: H } = p.spec;
  const dirs = p.spec.bidirectional ? 2 : 1;
  const { steps: T, batch: B } = p.batch;
  const inW = layerInputSize(p.spec, l);
  const lengths = p.batch.lengths ?? new Int32Array(B).fill(T);
  const uni: LayerSpec = { cell, inputSize: inW, hiddenSize: H };
  const grads: Record<string, Float64Array> = {};
  for (let d = 0; d < dirs; d++) for (const kind of KINDS) grads[`${kind}_l${l}${d ? '_reverse' : ''}`] = new Float64Array(p.weights[`${kind}_l${l}${d ? '_reverse' : ''}`].length);
  const dX = X.kind === 'dense' ? new Float64Array(T * B * inW) : null;
  for (let d = 0; d < dirs; d++) {
    const suffix = d ? '_reverse' : '';
    const w = Object.fromEntries(KINDS.map((kind) => [`${kind}_l0`, p.weights[`${kind}_l${l}${suffix}`]]));
    const state = l * dirs + d;
    for (let b = 0; b < B; b++) {
      const len = lengths[b];
      // The steps of this sequence in the direction's processing order.
      const order = Array.from({ length: len }, (_, i) => (d === 0 ? i : len - 1 - i));
      const inputAt = (steps: number[]): LayerInput =>
        X.kind === 'tokens' ? { kind: 'tokens', data: Int32Array.from(steps, (t) => X.data[t * B + b]) } : { kind: 'dense', data: Float64Array.from({ length: steps.length * inW }, (_, i) => X.data[(steps[Math.floor(i / inW)] * B + b) * inW + (i % inW)]) };
      const h0 = rowOf(p.batch.h0, state * B + b, H) as Float64Array;
      const c0 = rowOf(p.batch.c0, state * B + b, H);
      for (let pos = 0; pos < len; pos++) {
        const t = order[pos];
        const start = Math.max(0, pos - k + 1);
        // The state entering the window, as a constant.
        let hs: Float64Array = h0;
        let cs: Float64Array | null = c0;
        if (start > 0) {
          const prefix = ref.layerForward(uni, w, { steps: start, batch: 1, input: inputAt(order.slice(0, start)), h0, c0 });
          hs = prefix.hT;
          cs = prefix.cT;
        }
        const window = order.slice(start, pos + 1);
        const n = window.length;
        const run = ref.layerForward(uni, w, { steps: n, batch: 1, input: inputAt(window), h0: hs, c0: cs });
        const dy = new Float64Array(n * H);
        dy.set(dY.subarray((t * B + b) * dirs * H + d * H, (t * B + b) * dirs * H + (d + 1) * H), (n - 1) * H);
        const last = pos === len - 1;
        const g = ref.layerBackward(uni, w, run.saved, { dy, dhT: last ? rowOf(p.upstream.dhT, state * B + b, H) : null, dcT: last ? rowOf(p.upstream.dcT, state * B + b, H) : null });
        for (const kind of KINDS) addInto(grads[`${kind}_l${l}${suffix}`], g.grads[`${kind}_l0`]);
        if (dX && g.dx) for (let j = 0; j < n; j++) addInto(dX, g.dx.subarray(j * inW, (j + 1) * inW), (window[j] * B + b) * inW);
        if (start === 0) {
          addInto(dh0, g.dh0, (state * B + b) * H);
          if (dc0 && g.dc0) addInto(dc0, g.dc0, (state * B + b) * H);
        }
      }
    }
  }
  return { grads, dX };
}

/** The whole stack's truncated backward, one layer at a time from the top, each by brute force. */
function bruteForceStack(p: EngineProblem, k: number, dropout: { seed: number } | null) {
  const { cell, hiddenSize: H, numLayers = 1, bidirectional = false } = p.spec;
  const dirs = bidirectional ? 2 : 1;
  const layerStates = dirs * p.batch.batch * H;
  // Each layer's input, from one-layer forwards (the masks of the layers below applied).
  const inputs: LayerInput[] = [p.batch.input];
  const masks: Float64Array[] = [];
  for (let l = 0; l + 1 < numLayers; l++) {
    const w = Object.fromEntries(Object.entries(p.weights).filter(([name]) => name.includes(`_l${l}`)).map(([name, v]) => [name.replace(`_l${l}`, '_l0'), v]));
    const y = ref.layerForward({ cell, inputSize: layerInputSize(p.spec, l), hiddenSize: H, bidirectional }, w, {
      ...p.batch,
      input: inputs[l],
      h0: p.batch.h0.slice(l * layerStates, (l + 1) * layerStates),
      c0: p.batch.c0 && p.batch.c0.slice(l * layerStates, (l + 1) * layerStates),
    }).y;
    const mask = dropout ? dropoutScales(dropout.seed, l, p.spec.dropout ?? 0, y.length) : new Float64Array(y.length).fill(1);
    masks.push(mask);
    inputs.push({ kind: 'dense', data: y.map((v, i) => v * mask[i]) });
  }
  const dh0 = new Float64Array(p.batch.h0.length);
  const dc0 = hasCellState(cell) ? new Float64Array(p.batch.h0.length) : null;
  const grads: Record<string, Float64Array> = {};
  let dY = p.upstream.dy;
  let dx: Float64Array | null = null;
  for (let l = numLayers - 1; l >= 0; l--) {
    const layer = bruteForceLayer(p, l, inputs[l], dY, k, dh0, dc0);
    Object.assign(grads, layer.grads);
    if (l > 0) dY = (layer.dX as Float64Array).map((v, i) => v * masks[l - 1][i]);
    else dx = layer.dX;
  }
  return { grads, dx, dh0, dc0 };
}

describe('truncated BPTT vs its brute-force definition', () => {
  const configs: (Omit<EngineProblemSpec, 'cell'> & { training: boolean })[] = [
    { L: 1, bidirectional: false, kind: 'dense', withLengths: true, D: 3, H: 3, T: 6, B: 3, training: false },
    { L: 1, bidirectional: true, kind: 'tokens', withLengths: true, D: 4, H: 2, T: 5, B: 3, training: false },
    { L: 2, bidirectional: true, kind: 'dense', withLengths: true, D: 3, H: 3, T: 5, B: 2, dropout: 0.3, training: true },
    { L: 3, bidirectional: false, kind: 'dense', withLengths: false, D: 2, H: 3, T: 5, B: 2, training: false },
  ];
  const cases = CELL_KINDS.flatMap((cell) => configs.flatMap((config) => [1, 2, 3].map((k) => ({ cell, k, ...config }))));
  test.each(cases.map((c, i) => [i, c.cell, c.L, c.bidirectional ? 'bidirectional' : 'forward', c.kind, c.training ? 'dropout' : 'eval', c.k, c] as const))(
    'case %i: %s, %i layer(s), %s, %s, %s, k = %i',
    (i, _cell, _L, _dir, _kind, _mode, _k, c) => {
      const p = randomEngineProblem(mulberry32(2000 + i), c);
      if (p.batch.lengths) p.batch.lengths[0] = c.T; // so that some window is cut
      const options = c.training ? { training: true, dropoutSeed: 99 } : undefined;
      const { g } = gradients(p, options, { truncate: c.k });
      const want = bruteForceStack(p, c.k, c.training ? { seed: 99 } : null);
      const errors: Record<string, number> = { dh0: relErr(g.dh0, want.dh0) };
      for (const name of Object.keys(p.weights)) errors[name] = relErr(g.grads[name], want.grads[name]);
      if (want.dx) errors.dx = relErr(g.dx as Float64Array, want.dx);
      else expect(g.dx).toBeNull();
      if (want.dc0) errors.dc0 = relErr(g.dc0 as Float64Array, want.dc0);
      const wrong = Object.entries(errors).filter(([, e]) => !(e < 1e-12));
      expect(wrong).toEqual([]);
      // Truncation must change something here, or the comparison proves little.
      const full = gradients(p, options).g;
      const changed = [g.dh0, ...Object.values(g.grads)].some((a, j) => relErr(a, [full.dh0, ...Object.values(full.grads)][j]) > 1e-6);
      expect(changed).toBe(true);
    },
  );
});

describe('truncate k >= T is full BPTT', () => {
  test.each(CELL_KINDS.flatMap((cell) => [5, 6, 40].map((k) => [cell, k] as const)))('%s, k = %i, T = 5', (cell, k) => {
    const p = randomEngineProblem(mulberry32(2200 + CELL_KINDS.indexOf(cell) * 100 + k), { cell, D: 3, H: 3, L: 2, bidirectional: true, T: 5, B: 3, kind: 'dense', withLengths: true, dropout: 0.25 });
    const options = { training: true, dropoutSeed: 5 };
    const full = gradients(p, options).g;
    const truncated = gradients(p, options, { truncate: k }).g;
    expect(relErr(truncated.dx as Float64Array, full.dx as Float64Array)).toBeLessThan(1e-13);
    expect(relErr(truncated.dh0, full.dh0)).toBeLessThan(1e-13);
    if (full.dc0) expect(relErr(truncated.dc0 as Float64Array, full.dc0)).toBeLessThan(1e-13);
    for (const name of Object.keys(full.grads)) expect([name, relErr(truncated.grads[name], full.grads[name]) < 1e-13]).toEqual([name, true]);
  });
});
