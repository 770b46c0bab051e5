/**
 * The oracle checked on its own terms: gradients against central finite differences in float64,
 * truncated gradients against a brute-force definition, and the forward pass against its
 * defining equations.
 */
import { DTypeError, NonFiniteError, ShapeError, backends, setIsa, supportedIsas } from '../lib';
import { addon } from '../lib/native';
import { jacobianProductNorms, lagGradientNorms, truncationBias } from '../lib/backends/reference';
import { Backend, Dims, GradientOptions, PARAM_NAMES, ParamArrays, Reduction, Sequence, checkFinite } from '../lib/backend';
import { Problem, mulberry32, randomProblem, relErr } from './helpers/oracle-checks';

const ref = backends.reference;

function toF64(p: ParamArrays): ParamArrays<Float64Array> {
  return { U: Float64Array.from(p.U), W: Float64Array.from(p.W), b: Float64Array.from(p.b), V: Float64Array.from(p.V), c: Float64Array.from(p.c) };
}

function lossOf(p: Problem, params: ParamArrays, h0: Float64Array | null, reduction: Reduction): number {
  return ref.lossAndGradients(p.dims, params, p.seq, p.targets, { h0, reduction }).loss;
}

describe('reference gradients vs central finite differences (float64)', () => {
  // Every combination of input kind, reduction, h0 given or omitted, and ignored targets or not.
  const cases = (['tokens', 'dense'] as const).flatMap((kind) =>
    (['mean', 'sum'] as const).flatMap((reduction) =>
      [true, false].flatMap((withH0) => [0, 0.4].map((ignoreFraction) => ({ kind, reduction, withH0, ignoreFraction }))),
    ),
  );
  const sizes = [
    { D: 3, H: 4, K: 5, T: 4, B: 2 },
    { D: 4, H: 3, K: 2, T: 5, B: 1 },
    { D: 2, H: 5, K: 3, T: 1, B: 3 },
    { D: 5, H: 2, K: 4, T: 6, B: 2 },
  ];
  test.each(cases.map((c, i) => [i, c.kind, c.reduction, c.withH0 ? 'h0' : 'no h0', c.ignoreFraction, c] as const))('case %i: %s, %s, %s, ignored %d', (i, _kind, _reduction, _h0, _ignore, c) => {
    const size = sizes[i % sizes.length];
    const p = randomProblem(mulberry32(100 + i), { ...size, ...c, scale: 0.8 });
    expect(p.targets.some((y) => y >= 0)).toBe(true);
    const params = toF64(p.params);
    // Omitted h0 means zeros; finite differences still need a buffer to perturb.
    const h0 = p.h0 ? Float64Array.from(p.h0) : new Float64Array(size.B * size.H);
    const g = ref.lossAndGradients(p.dims, params, p.seq, p.targets, { h0: p.h0 ? h0 : undefined, reduction: c.reduction }).grads;
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

/** Steps [start, end) of a sequence. */
function subSequence(seq: Sequence, D: number, start: number, end: number): Sequence {
  const B = seq.batch;
  const input: Sequence['input'] = seq.input.kind === 'tokens'
    ? { kind: 'tokens', data: seq.input.data.slice(start * B, end * B) }
    : { kind: 'dense', data: seq.input.data.slice(start * B * D, end * B * D) };
  return { steps: end - start, batch: B, input };
}

function norm(a: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * a[i];
  return Math.sqrt(sum);
}

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
    const sub = subSequence(seq, D, start, t + 1);
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
    ['Infinity in b', () => be.forward(dims, { ...p.params, b: new Float32Array(4).fill(Infinity) }, p.seq), NonFiniteError],
    ['NaN in dense inputs', () => be.forward(dims, p.params, { ...p.seq, input: { kind: 'dense', data: nan(12) } }), NonFiniteError],
    ['dense inputs as Float64Array', () => be.forward(dims, p.params, { ...p.seq, input: { kind: 'dense', data: new Float64Array(12) as unknown as Float32Array } }), DTypeError],
    ['negative token', () => be.forward(dims, p.params, { ...p.seq, input: { kind: 'tokens', data: new Int32Array([0, -1, 1, 1]) } }), RangeError],
    ['token inputs of the wrong length', () => be.forward(dims, p.params, { ...p.seq, input: { kind: 'tokens', data: new Int32Array(5) } }), ShapeError],
    ['input kind sparse', () => be.forward(dims, p.params, { ...p.seq, input: { kind: 'sparse', data: new Int32Array(4) } as unknown as Sequence['input'] }), TypeError],
    ['params.c missing', () => be.forward(dims, { ...p.params, c: undefined as unknown as Float32Array }, p.seq), DTypeError],
    ['params null', () => be.forward(dims, null as unknown as ParamArrays, p.seq), TypeError],
    ['dims null', () => be.forward(null as unknown as Dims, p.params, p.seq), TypeError],
    ['sequence null', () => be.forward(dims, p.params, null as unknown as Sequence), TypeError],
    ['inputSize 2.5', () => be.forward({ ...dims, inputSize: 2.5 }, p.params, p.seq), RangeError],
    ['steps -2', () => be.forward(dims, p.params, { ...p.seq, steps: -2 }), RangeError],
    ['h0 as Int32Array', () => be.forward(dims, p.params, p.seq, new Int32Array(8) as unknown as Float32Array), DTypeError],
    ['gradient h0 of the wrong length', () => be.lossAndGradients(dims, p.params, p.seq, p.targets, { h0: new Float32Array(9) }), ShapeError],
    ['gradient h0 with -Infinity', () => be.lossAndGradients(dims, p.params, p.seq, p.targets, { h0: new Float32Array(8).fill(-Infinity) }), NonFiniteError],
    ['targets as Float32Array', () => be.lossAndGradients(dims, p.params, p.seq, new Float32Array(4) as unknown as Int32Array), DTypeError],
    ['target -2', () => be.lossAndGradients(dims, p.params, p.seq, new Int32Array([0, -2, 0, 0])), RangeError],
    ['truncate -1', () => be.lossAndGradients(dims, p.params, p.seq, p.targets, { truncate: -1 }), RangeError],
    ['truncate NaN', () => be.lossAndGradients(dims, p.params, p.seq, p.targets, { truncate: NaN }), RangeError],
    ['options a number', () => be.lossAndGradients(dims, p.params, p.seq, p.targets, 3 as unknown as GradientOptions), TypeError],
  ];
  test.each(bad)('%s', (_name, call, type) => {
    expect(call).toThrow(type);
  });
});

describe('checkFinite', () => {
  test('finds NaN and ±Infinity anywhere (the unrolled body and the tail), in both float types, and passes the largest finite values', () => {
    for (const n of [1, 3, 4, 7, 8, 33]) {
      for (const make of [(k: number) => new Float32Array(k), (k: number) => new Float64Array(k)]) {
        const finite = make(n).map((_, i) => (i % 2 ? -1 : 1) * (i + 0.5));
        finite[n - 1] = finite instanceof Float32Array ? 3.4e38 : 1.7e308;
        expect(() => checkFinite('x', finite)).not.toThrow();
        for (const at of new Set([0, Math.floor(n / 2), n - 1])) {
          for (const bad of [NaN, Infinity, -Infinity]) {
            const a = finite.slice();
            a[at] = bad;
            expect(() => checkFinite('x', a)).toThrow(new NonFiniteError(`x must be finite, but element ${at} is ${bad}`));
          }
        }
      }
    }
  });

  test('large float32 arrays, checked by the loaded addon on every ISA, report the same first bad element', () => {
    addon(); // loaded: checkFinite then asks it first from 2^16 elements
    for (const isa of supportedIsas()) {
      setIsa(isa as 'scalar');
      try {
        for (const n of [1 << 16, (1 << 16) + 37, 300_007]) {
          for (const make of [(k: number) => new Float32Array(k), (k: number) => new Float64Array(k)]) {
            const a = make(n).fill(0.25);
            expect(() => checkFinite('x', a)).not.toThrow();
            for (const at of [0, n >> 1, n - 2, n - 1]) {
              for (const bad of [NaN, Infinity, -Infinity]) {
                a[at] = bad;
                expect(() => checkFinite('x', a)).toThrow(new NonFiniteError(`x must be finite, but element ${at} is ${bad}`));
                a[at] = 0.25;
              }
            }
          }
        }
      } finally {
        setIsa('auto');
      }
    }
  });
});

describe('lagGradientNorms', () => {
  /** sqrt(sum over the batch of ||V^T dz||^2) at step t, with dz = scale (softmax(z) - onehot), from the logits. */
  function outputGradientNorm(p: Problem, t: number, scale: number): number {
    const { hiddenSize: H, outputSize: K } = p.dims;
    const B = p.seq.batch;
    const logits = ref.forward(p.dims, p.params, p.seq, p.h0).logits;
    let sum = 0;
    for (let b = 0; b < B; b++) {
      const y = p.targets[t * B + b];
      if (y < 0) continue;
      const z = Array.from(logits.subarray((t * B + b) * K, (t * B + b + 1) * K));
      const total = z.reduce((acc, v) => acc + Math.exp(v), 0);
      const e = new Float64Array(H);
      z.forEach((v, k) => {
        const dz = scale * (Math.exp(v) / total - (k === y ? 1 : 0));
        for (let j = 0; j < H; j++) e[j] += p.params.V[k * H + j] * dz;
      });
      sum += norm(e) ** 2;
    }
    return Math.sqrt(sum);
  }

  test('T = 1: the single entry is ||V^T dz||', () => {
    const p = randomProblem(mulberry32(300), { D: 3, H: 4, K: 5, T: 1, B: 3, kind: 'dense', withH0: true });
    const n = p.targets.filter((y) => y >= 0).length;
    for (const reduction of ['mean', 'sum'] as const) {
      const { perLag, matrix } = lagGradientNorms(p.dims, p.params, p.seq, p.targets, { h0: p.h0, reduction });
      const want = outputGradientNorm(p, 0, reduction === 'mean' ? 1 / n : 1);
      expect(want).toBeGreaterThan(0);
      expect(matrix[0]).toBeCloseTo(want, 12);
      expect(perLag[0]).toBeCloseTo(want, 12);
    }
  });

  // dL_t/ds_i for i < t is dh0 of the full-BPTT oracle run on x_{i+1..t} from s_i with only
  // target t kept: an independent route through lossAndGradients, which finite differences check.
  const specs = [
    { D: 3, H: 4, K: 3, T: 5, B: 2, kind: 'tokens' as const, ignoreFraction: 0.3, withH0: true, reduction: 'mean' as const },
    { D: 2, H: 3, K: 4, T: 6, B: 1, kind: 'dense' as const, ignoreFraction: 0, withH0: false, reduction: 'sum' as const },
  ];
  test.each(specs.map((s, i) => [i, s] as const))('every entry matches the oracle on sub-sequences (problem %i)', (i, spec) => {
    const p = randomProblem(mulberry32(310 + i), { ...spec, scale: 1.1 });
    const { dims, seq, targets } = p;
    const { steps: T, batch: B } = seq;
    const H = dims.hiddenSize;
    const n = targets.filter((y) => y >= 0).length;
    const scale = spec.reduction === 'mean' ? 1 / n : 1;
    const states = ref.forward(dims, p.params, seq, p.h0).states;
    const { perLag, matrix } = lagGradientNorms(dims, p.params, seq, targets, { h0: p.h0, reduction: spec.reduction });
    for (let t = 0; t < T; t++) {
      expect(matrix[t * T + t]).toBeCloseTo(outputGradientNorm(p, t, scale), 12);
      for (let i = 0; i < t; i++) {
        const sub = subSequence(seq, dims.inputSize, i + 1, t + 1);
        const subTargets = new Int32Array(sub.steps * B).fill(-1);
        subTargets.set(targets.subarray(t * B, (t + 1) * B), (sub.steps - 1) * B);
        const h0 = Float64Array.from(states.subarray(i * B * H, (i + 1) * B * H));
        const dh0 = ref.lossAndGradients(dims, p.params, sub, subTargets, { h0, reduction: 'sum' }).grads.h0;
        expect(Math.abs(matrix[t * T + i] - scale * norm(dh0))).toBeLessThan(1e-12 * Math.max(1, scale * norm(dh0)));
      }
      for (let i = t + 1; i < T; i++) expect(matrix[t * T + i]).toBe(0);
    }
    for (let m = 0; m < T; m++) {
      let sum = 0;
      for (let t = m; t < T; t++) sum += matrix[t * T + t - m] ** 2;
      expect(perLag[m]).toBeCloseTo(Math.sqrt(sum), 12);
    }
  });

  test('a contractive W makes the gradient vanish with the lag', () => {
    const p = randomProblem(mulberry32(320), { D: 3, H: 4, K: 3, T: 8, B: 2, kind: 'tokens' });
    const frobenius = norm(p.params.W);
    const W = p.params.W.map((w) => (0.5 * w) / frobenius); // spectral norm <= Frobenius = 0.5
    const { perLag } = lagGradientNorms(p.dims, { ...p.params, W }, p.seq, p.targets);
    for (let m = 1; m < 8; m++) expect(perLag[m]).toBeLessThanOrEqual(0.5 * perLag[m - 1]);
  });

  test('validates like a gradient request', () => {
    const p = randomProblem(mulberry32(321), { D: 3, H: 4, K: 3, T: 2, B: 2, kind: 'tokens' });
    expect(() => lagGradientNorms(p.dims, p.params, p.seq, new Int32Array(3))).toThrow(ShapeError);
    expect(() => lagGradientNorms(p.dims, p.params, p.seq, p.targets, { h0: new Float32Array(8).fill(NaN) })).toThrow(NonFiniteError);
  });
});

describe('jacobianProductNorms', () => {
  test('lag 0 is the identity and lag 1 is ||diag(1 - s_{i+1}^2) W||_F averaged', () => {
    const p = randomProblem(mulberry32(400), { D: 3, H: 4, K: 2, T: 4, B: 2, kind: 'dense', withH0: true });
    const H = 4;
    const B = 2;
    const norms = jacobianProductNorms(p.dims, p.params, p.seq, { h0: p.h0 });
    expect(norms).toBeInstanceOf(Float64Array);
    expect(norms.length).toBe(4);
    expect(norms[0]).toBeCloseTo(Math.sqrt(H), 14);
    const states = ref.forward(p.dims, p.params, p.seq, p.h0).states;
    let sum = 0;
    for (let i = 0; i < 3; i++) {
      for (let b = 0; b < B; b++) {
        const s = states.subarray(((i + 1) * B + b) * H, ((i + 1) * B + b + 1) * H);
        let fro = 0;
        for (let r = 0; r < H; r++) for (let q = 0; q < H; q++) fro += ((1 - s[r] ** 2) * p.params.W[r * H + q]) ** 2;
        sum += Math.sqrt(fro);
      }
    }
    expect(norms[1]).toBeCloseTo(sum / (3 * B), 12);
  });

  test('every lag matches finite differences of the forward pass', () => {
    const p = randomProblem(mulberry32(401), { D: 2, H: 3, K: 2, T: 5, B: 2, kind: 'tokens', scale: 1.2 });
    const { dims, seq } = p;
    const { steps: T, batch: B } = seq;
    const H = dims.hiddenSize;
    const states = ref.forward(dims, p.params, seq).states;
    const norms = jacobianProductNorms(dims, p.params, seq);
    const eps = 1e-6;
    for (let m = 1; m < T; m++) {
      let sum = 0;
      for (let i = 0; i + m < T; i++) {
        const sub = subSequence(seq, dims.inputSize, i + 1, i + m + 1);
        const base = Float64Array.from(states.subarray(i * B * H, (i + 1) * B * H));
        // Perturbing s_i[q] in every batch row at once is fine: rows do not interact.
        const fro = new Float64Array(B);
        for (let q = 0; q < H; q++) {
          const at = (delta: number) => {
            const h0 = base.slice();
            for (let b = 0; b < B; b++) h0[b * H + q] += delta;
            return ref.forward(dims, p.params, sub, h0).hT;
          };
          const up = at(eps);
          const down = at(-eps);
          for (let b = 0; b < B; b++) for (let r = 0; r < H; r++) fro[b] += ((up[b * H + r] - down[b * H + r]) / (2 * eps)) ** 2;
        }
        for (let b = 0; b < B; b++) sum += Math.sqrt(fro[b]);
      }
      expect(Math.abs(norms[m] - sum / ((T - m) * B))).toBeLessThan(1e-7 * Math.max(1, norms[m]));
    }
  });

  test('validates like a forward request', () => {
    const p = randomProblem(mulberry32(402), { D: 3, H: 4, K: 2, T: 2, B: 2, kind: 'tokens' });
    expect(() => jacobianProductNorms(p.dims, p.params, p.seq, { h0: new Float32Array(3) })).toThrow(ShapeError);
    expect(() => jacobianProductNorms(p.dims, { ...p.params, W: new Float32Array(16).fill(Infinity) }, p.seq)).toThrow(NonFiniteError);
  });
});

describe('truncationBias', () => {
  const p = randomProblem(mulberry32(500), { D: 3, H: 4, K: 3, T: 6, B: 2, kind: 'dense', ignoreFraction: 0.2, withH0: true, scale: 1.2 });

  test('no bias when truncate >= T', () => {
    for (const truncate of [6, 9]) {
      const bias = truncationBias(p.dims, p.params, p.seq, p.targets, { h0: p.h0, truncate });
      expect(bias.relativeError).toBe(0);
      expect(bias.cosineSimilarity).toBeCloseTo(1, 14);
      for (const name of PARAM_NAMES) expect(bias.perParameter[name]).toBe(0);
    }
  });

  test('k = 1 is biased; V and c, which need no recursion, are not', () => {
    const bias = truncationBias(p.dims, p.params, p.seq, p.targets, { h0: p.h0, truncate: 1, reduction: 'sum' });
    expect(bias.relativeError).toBeGreaterThan(1e-3);
    expect(bias.cosineSimilarity).toBeLessThan(1);
    expect(bias.perParameter.W).toBeGreaterThan(1e-3);
    expect(bias.perParameter.V).toBe(0);
    expect(bias.perParameter.c).toBe(0);
  });

  test('the numbers are the definitions applied to lossAndGradients', () => {
    const full = ref.lossAndGradients(p.dims, p.params, p.seq, p.targets, { h0: p.h0 }).grads;
    const trunc = ref.lossAndGradients(p.dims, p.params, p.seq, p.targets, { h0: p.h0, truncate: 2 }).grads;
    const concat = (g: ParamArrays) => PARAM_NAMES.flatMap((name) => Array.from(g[name]));
    const f = concat(full);
    const t = concat(trunc);
    const bias = truncationBias(p.dims, p.params, p.seq, p.targets, { h0: p.h0, truncate: 2 });
    expect(bias.relativeError).toBeCloseTo(norm(t.map((v, i) => v - f[i])) / norm(f), 12);
    expect(bias.cosineSimilarity).toBeCloseTo(t.reduce((acc, v, i) => acc + v * f[i], 0) / (norm(t) * norm(f)), 12);
    const b = Array.from(full.b);
    expect(bias.perParameter.b).toBeCloseTo(norm(Array.from(trunc.b).map((v, i) => v - b[i])) / norm(b), 12);
  });

  test('all targets ignored: zero gradients agree', () => {
    const bias = truncationBias(p.dims, p.params, p.seq, new Int32Array(12).fill(-1), { truncate: 1 });
    expect(bias.relativeError).toBe(0);
    expect(bias.cosineSimilarity).toBe(1);
  });

  test('truncate is required and validated', () => {
    expect(() => truncationBias(p.dims, p.params, p.seq, p.targets, {} as { truncate: number })).toThrow(RangeError);
    expect(() => truncationBias(p.dims, p.params, p.seq, p.targets, { truncate: 0 })).toThrow(RangeError);
    expect(() => truncationBias(p.dims, p.params, p.seq, p.targets, null as unknown as { truncate: number })).toThrow(TypeError);
    expect(() => truncationBias(p.dims, p.params, p.seq, new Int32Array(3), { truncate: 1 })).toThrow(ShapeError);
  });
});
