/**
 * The oracle checked on its own terms: gradients against central finite differences in float64,
 * truncated gradients against a brute-force definition, and the forward pass against its
 * defining equations.
 */
import { DTypeError, NonFiniteError, ShapeError, backends } from '../lib';
import { Backend, Dims, PARAM_NAMES, ParamArrays, Reduction, Sequence } from '../lib/backend';
import { Problem, mulberry32, randomProblem, relErr } from './helpers/oracle-checks';

const ref = backends.reference;

function toF64(p: ParamArrays): ParamArrays<Float64Array> {
  return { U: Float64Array.from(p.U), W: Float64Array.from(p.W), b: Float64Array.from(p.b), V: Float64Array.from(p.V), c: Float64Array.from(p.c) };
}

function lossOf(p: Problem, params: ParamArrays, h0: Float64Array | null, reduction: Reduction): number {
  return ref.lossAndGradients(p.dims, params, p.seq, p.targets, { h0, reduction }).loss;
}

describe('reference gradients vs central finite differences (float64)', () => {
  const cases = [
    { D: 3, H: 4, K: 5, T: 4, B: 2, kind: 'tokens' as const, ignoreFraction: 0.3, withH0: true, reduction: 'mean' as const },
    { D: 4, H: 3, K: 2, T: 5, B: 1, kind: 'dense' as const, ignoreFraction: 0, withH0: false, reduction: 'sum' as const },
    { D: 2, H: 5, K: 3, T: 1, B: 3, kind: 'dense' as const, ignoreFraction: 0.3, withH0: true, reduction: 'sum' as const },
    { D: 5, H: 2, K: 4, T: 6, B: 2, kind: 'tokens' as const, ignoreFraction: 0, withH0: true, reduction: 'mean' as const },
  ];
  test.each(cases.map((c, i) => [i, c] as const))('case %i', (i, c) => {
    const p = randomProblem(mulberry32(100 + i), { ...c, scale: 0.8 });
    const params = toF64(p.params);
    const h0 = p.h0 ? Float64Array.from(p.h0) : new Float64Array(c.B * c.H);
    const g = ref.lossAndGradients(p.dims, params, p.seq, p.targets, { h0, reduction: c.reduction }).grads;
    const eps = 1e-6;
    const numeric = (arr: Float64Array, evaluate: () => number): Float64Array => {
      const out = new Float64Array(arr.length);
      for (let j = 0; j < arr.length; j++) {
        const keep = arr[j];
        arr[j] = keep + eps;
        const up = evaluate();
        arr[j] = keep - eps;
        const down = evaluate();
        arr[j] = keep;
        out[j] = (up - down) / (2 * eps);
      }
      return out;
    };
    for (const name of PARAM_NAMES) {
      const fd = numeric(params[name], () => lossOf(p, params, h0, c.reduction));
      expect(relErr(g[name], fd)).toBeLessThan(1e-6);
    }
    const fdH0 = numeric(h0, () => lossOf(p, params, h0, c.reduction));
    expect(relErr(g.h0, fdH0)).toBeLessThan(1e-6);
  });
});

/**
 * Truncation by brute force: L_t's truncated gradient is the full gradient of L_t on the
 * sub-sequence x_{t-k+1..t} started from the (detached) state s_{t-k}, or from h0 when the
 * window reaches the start, in which case its dh0 counts.
 */
function bruteForceTruncated(p: Problem, k: number, reduction: Reduction) {
  const { dims, seq, targets } = p;
  const { steps: T, batch: B } = seq;
  const { inputSize: D, hiddenSize: H } = dims;
  const states = ref.forward(dims, p.params, seq, p.h0).states;
  const total = { U: new Float64Array(H * D), W: new Float64Array(H * H), b: new Float64Array(H), V: new Float64Array(dims.outputSize * H), c: new Float64Array(dims.outputSize), h0: new Float64Array(B * H) };
  let loss = 0;
  let counted = 0;
  for (const y of targets) if (y >= 0) counted++;
  for (let t = 0; t < T; t++) {
    const start = Math.max(0, t - k + 1);
    const len = t - start + 1;
    const subTargets = new Int32Array(len * B).fill(-1);
    subTargets.set(targets.subarray(t * B, (t + 1) * B), (len - 1) * B);
    const input = seq.input.kind === 'tokens'
      ? { kind: 'tokens' as const, data: seq.input.data.slice(start * B, (t + 1) * B) }
      : { kind: 'dense' as const, data: seq.input.data.slice(start * B * D, (t + 1) * B * D) };
    const sub: Sequence = { steps: len, batch: B, input };
    const h0 = start === 0 ? p.h0 : Float64Array.from(states.subarray((start - 1) * B * H, start * B * H));
    const r = ref.lossAndGradients(dims, p.params, sub, subTargets, { h0, reduction: 'sum' });
    loss += r.loss;
    for (const name of PARAM_NAMES) r.grads[name].forEach((v, i) => (total[name][i] += v));
    if (start === 0) r.grads.h0.forEach((v, i) => (total.h0[i] += v));
  }
  const scale = reduction === 'mean' && counted > 0 ? 1 / counted : 1;
  for (const arr of Object.values(total)) for (let i = 0; i < arr.length; i++) arr[i] *= scale;
  return { loss: loss * scale, grads: total };
}

describe('truncated BPTT vs the brute-force definition', () => {
  const specs = [
    { D: 3, H: 4, K: 3, T: 6, B: 2, kind: 'tokens' as const, ignoreFraction: 0.2, withH0: true },
    { D: 2, H: 3, K: 4, T: 7, B: 1, kind: 'dense' as const, ignoreFraction: 0, withH0: false },
    { D: 4, H: 5, K: 2, T: 5, B: 3, kind: 'dense' as const, ignoreFraction: 0.3, withH0: true },
  ];
  for (const [i, spec] of specs.entries()) {
    for (const k of [1, 2, 3, spec.T, spec.T + 2]) {
      for (const reduction of ['mean', 'sum'] as const) {
        test(`problem ${i}, k = ${k}, ${reduction}`, () => {
          const p = randomProblem(mulberry32(200 + i), { ...spec, scale: 0.9 });
          const got = ref.lossAndGradients(p.dims, p.params, p.seq, p.targets, { h0: p.h0, truncate: k, reduction });
          const want = bruteForceTruncated(p, k, reduction);
          expect(Math.abs(got.loss - want.loss)).toBeLessThan(1e-12 * Math.max(1, Math.abs(want.loss)));
          for (const name of [...PARAM_NAMES, 'h0'] as const) expect(relErr(got.grads[name], want.grads[name])).toBeLessThan(1e-12);
        });
      }
    }
  }

  test('truncate >= T gives the full gradient exactly', () => {
    const p = randomProblem(mulberry32(7), { D: 3, H: 4, K: 3, T: 5, B: 2, kind: 'tokens', withH0: true });
    const full = ref.lossAndGradients(p.dims, p.params, p.seq, p.targets, { h0: p.h0 });
    for (const k of [5, 6, 50]) {
      const trunc = ref.lossAndGradients(p.dims, p.params, p.seq, p.targets, { h0: p.h0, truncate: k });
      for (const name of [...PARAM_NAMES, 'h0'] as const) expect(Array.from(trunc.grads[name])).toEqual(Array.from(full.grads[name]));
    }
  });

  test('truncation changes the gradient of a generic problem', () => {
    const p = randomProblem(mulberry32(8), { D: 3, H: 4, K: 3, T: 6, B: 2, kind: 'dense', scale: 1.2 });
    const full = ref.lossAndGradients(p.dims, p.params, p.seq, p.targets);
    const trunc = ref.lossAndGradients(p.dims, p.params, p.seq, p.targets, { truncate: 1 });
    expect(relErr(trunc.grads.W, full.grads.W)).toBeGreaterThan(1e-3);
    expect(Array.from(trunc.grads.V)).toEqual(Array.from(full.grads.V)); // dL/dV needs no recursion
  });
});

describe('reference forward pass', () => {
  test('follows its defining equations; hT is the last state', () => {
    const p = randomProblem(mulberry32(9), { D: 3, H: 2, K: 2, T: 3, B: 2, kind: 'tokens', withH0: true });
    const f = ref.forward(p.dims, p.params, p.seq, p.h0);
    const { U, W, b, V, c } = p.params;
    const x = (p.seq.input as { data: Int32Array }).data;
    const B = 2;
    for (let t = 0; t < 3; t++) {
      for (let r = 0; r < B; r++) {
        const prev = t === 0 ? [p.h0![r * 2], p.h0![r * 2 + 1]] : [f.states[((t - 1) * B + r) * 2], f.states[((t - 1) * B + r) * 2 + 1]];
        for (let i = 0; i < 2; i++) {
          const pre = U[i * 3 + x[t * B + r]] + W[i * 2] * prev[0] + W[i * 2 + 1] * prev[1] + b[i];
          expect(f.states[(t * B + r) * 2 + i]).toBeCloseTo(Math.tanh(pre), 12);
        }
        for (let k = 0; k < 2; k++) {
          const s = f.states.subarray((t * B + r) * 2, (t * B + r) * 2 + 2);
          expect(f.logits[(t * B + r) * 2 + k]).toBeCloseTo(V[k * 2] * s[0] + V[k * 2 + 1] * s[1] + c[k], 12);
        }
      }
    }
    expect(Array.from(f.hT)).toEqual(Array.from(f.states.subarray(2 * B * 2)));
  });

  test('the loss is the mean (or sum) cross-entropy of the logits over counted targets', () => {
    const p = randomProblem(mulberry32(10), { D: 4, H: 3, K: 5, T: 4, B: 3, kind: 'dense', ignoreFraction: 0.3 });
    const f = ref.forward(p.dims, p.params, p.seq);
    let sum = 0;
    let n = 0;
    p.targets.forEach((y, r) => {
      if (y < 0) return;
      const z = Array.from(f.logits.subarray(r * 5, r * 5 + 5));
      sum += Math.log(z.reduce((s, v) => s + Math.exp(v), 0)) - z[y];
      n++;
    });
    expect(ref.lossAndGradients(p.dims, p.params, p.seq, p.targets, { reduction: 'sum' }).loss).toBeCloseTo(sum, 10);
    expect(ref.lossAndGradients(p.dims, p.params, p.seq, p.targets).loss).toBeCloseTo(sum / n, 10);
  });

  test('all targets ignored: loss 0 and zero gradients', () => {
    const p = randomProblem(mulberry32(11), { D: 2, H: 3, K: 2, T: 3, B: 2, kind: 'tokens', ignoreFraction: 1 });
    const r = ref.lossAndGradients(p.dims, p.params, p.seq, p.targets);
    expect(r.loss).toBe(0);
    for (const name of [...PARAM_NAMES, 'h0'] as const) expect(r.grads[name].every((v) => v === 0)).toBe(true);
  });
});

describe.each(['reference', 'native'] as const)('backend-level validation: %s', (name) => {
  const be = backends[name] as Backend;
  const p = randomProblem(mulberry32(12), { D: 3, H: 4, K: 2, T: 2, B: 2, kind: 'tokens', withH0: true });
  const dims: Dims = p.dims;
  const nan = (n: number) => new Float32Array(n).fill(NaN);
  const bad: [string, () => unknown, new (...a: never[]) => Error][] = [
    ['U too short', () => be.forward(dims, { ...p.params, U: new Float32Array(11) }, p.seq), ShapeError],
    ['W as Int32Array', () => be.forward(dims, { ...p.params, W: new Int32Array(16) as unknown as Float32Array }, p.seq), DTypeError],
    ['NaN in V', () => be.forward(dims, { ...p.params, V: nan(8) }, p.seq), NonFiniteError],
    ['token out of range', () => be.forward(dims, p.params, { ...p.seq, input: { kind: 'tokens', data: new Int32Array([0, 3, 1, 1]) } }), RangeError],
    ['token inputs as Float32Array', () => be.forward(dims, p.params, { ...p.seq, input: { kind: 'tokens', data: new Float32Array(4) as unknown as Int32Array } }), DTypeError],
    ['dense with Infinity', () => be.forward(dims, p.params, { ...p.seq, input: { kind: 'dense', data: new Float32Array(12).fill(Infinity) } }), NonFiniteError],
    ['dense of the wrong length', () => be.forward(dims, p.params, { ...p.seq, input: { kind: 'dense', data: new Float32Array(11) } }), ShapeError],
    ['steps 0', () => be.forward(dims, p.params, { ...p.seq, steps: 0 }), RangeError],
    ['batch 1.5', () => be.forward(dims, p.params, { ...p.seq, batch: 1.5 }), RangeError],
    ['hiddenSize -1', () => be.forward({ ...dims, hiddenSize: -1 }, p.params, p.seq), RangeError],
    ['sizes that overflow', () => be.forward({ inputSize: 3, hiddenSize: 50000, outputSize: 2 }, p.params, p.seq), RangeError],
    ['h0 of the wrong length', () => be.forward(dims, p.params, p.seq, new Float32Array(7)), ShapeError],
    ['h0 with NaN', () => be.forward(dims, p.params, p.seq, nan(8)), NonFiniteError],
    ['target out of range', () => be.lossAndGradients(dims, p.params, p.seq, new Int32Array([0, 2, 0, 0])), RangeError],
    ['targets of the wrong length', () => be.lossAndGradients(dims, p.params, p.seq, new Int32Array(3)), ShapeError],
    ['truncate 0', () => be.lossAndGradients(dims, p.params, p.seq, p.targets, { truncate: 0 }), RangeError],
    ['truncate 1.5', () => be.lossAndGradients(dims, p.params, p.seq, p.targets, { truncate: 1.5 }), RangeError],
    ['reduction max', () => be.lossAndGradients(dims, p.params, p.seq, p.targets, { reduction: 'max' as 'sum' }), TypeError],
  ];
  test.each(bad)('%s', (_name, call, type) => {
    expect(call).toThrow(type);
  });
});
