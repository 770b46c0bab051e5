/**
 * The native gradient-diagnostics primitive (engine/layer.cc layer_source_norms) against its
 * float64 specification (lib/engine/reference.ts sourceGradientNorms, one backward pass per
 * source): every cell x {1 layer, 2 layers} x both directions x with and without lengths x token
 * and dense inputs, at odd sizes; with dropout masks; with probes and the basis. The reference
 * runs on the float32-rounded problem, so the only differences are native float32 arithmetic:
 * every norm within 1e-4 of the largest.
 */
import { CellKind, LayerSpec, backends, numDirections } from '../lib';
import { sourceGradientNorms as referenceNorms } from '../lib/engine/reference';
import { sourceGradientNorms, sourceGradientNormsAsync } from '../lib/diagnostics/sources';
import { EngineProblem, randomEngineProblem } from './helpers/engine-problems';
import { mulberry32 } from './helpers/oracle-checks';

const TOL = 1e-4;
const CELLS: CellKind[] = ['tanh', 'relu', 'lstm', 'gru'];

/** The problem rounded to float32, as both backends then see the same numbers. */
function rounded(p: EngineProblem) {
  const weights = Object.fromEntries(Object.entries(p.weights).map(([n, w]) => [n, Float32Array.from(w)]));
  const input = p.batch.input.kind === 'dense' ? { kind: 'dense' as const, data: Float32Array.from(p.batch.input.data) } : p.batch.input;
  const batch = { steps: p.batch.steps, batch: p.batch.batch, input, lengths: p.batch.lengths };
  return { spec: p.spec, weights, batch, dy: Float32Array.from(p.upstream.dy) };
}

function maxRelDiff(a: Float64Array, b: Float64Array): number {
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return scale === 0 ? worst : worst / scale;
}

function reference(spec: LayerSpec, weights: Record<string, Float32Array>, batch: ReturnType<typeof rounded>['batch'], sources: { dy: Float32Array } | { probes: Float32Array }, options?: { training: boolean; dropoutSeed: number }): Float64Array {
  const out = backends.reference.layerForward(spec, weights, batch, options);
  try {
    return referenceNorms(spec, weights, out.saved, sources);
  } finally {
    out.saved.dispose();
  }
}

describe('native source norms vs the float64 reference', () => {
  const rng = mulberry32(20261201);
  const cases: { cell: CellKind; L: number; bidirectional: boolean; withLengths: boolean; kind: 'dense' | 'tokens' }[] = [];
  for (const cell of CELLS)
    for (const L of [1, 2])
      for (const bidirectional of [false, true])
        for (const withLengths of [false, true]) cases.push({ cell, L, bidirectional, withLengths, kind: (cases.length % 3 === 0 ? 'tokens' : 'dense') });
  test.each(cases)('$cell L=$L bidirectional=$bidirectional lengths=$withLengths $kind', (c) => {
    const H = [1, 5, 17][cases.indexOf(c) % 3];
    const p = randomEngineProblem(rng, { ...c, D: 3, H, T: 9, B: 3 });
    const r = rounded(p);
    const want = reference(r.spec, r.weights, r.batch, { dy: r.dy });
    const got = sourceGradientNorms(r.spec, r.weights, r.batch, { kind: 'output', dy: r.dy });
    expect(got.length).toBe(c.L * numDirections(r.spec) * 9 * 9);
    expect(maxRelDiff(got, want)).toBeLessThan(TOL);
    // Not all zero: the check can fail.
    expect(want.some((v) => v > 0)).toBe(true);
  });

  test.each(CELLS)('%s with dropout between 3 layers, bidirectional', (cell) => {
    const p = randomEngineProblem(rng, { cell, L: 3, bidirectional: true, withLengths: true, kind: 'dense', D: 4, H: 6, T: 7, B: 2, dropout: 0.4 });
    const r = rounded(p);
    const options = { training: true, dropoutSeed: 77 };
    const want = reference(r.spec, r.weights, r.batch, { dy: r.dy }, options);
    expect(maxRelDiff(sourceGradientNorms(r.spec, r.weights, r.batch, { kind: 'output', dy: r.dy }, options), want)).toBeLessThan(TOL);
    // The masks matter: without them the norms differ.
    expect(maxRelDiff(sourceGradientNorms(r.spec, r.weights, r.batch, { kind: 'output', dy: r.dy }), want)).toBeGreaterThan(1e-3);
  });

  test.each(CELLS)('%s probes and basis through each recurrence', async (cell) => {
    const p = randomEngineProblem(rng, { cell, L: 2, bidirectional: true, withLengths: true, kind: 'tokens', D: 4, H: 3, T: 6, B: 2 });
    const r = rounded(p);
    const per = 2 * 2 * 6 * 2 * 3;
    const probes = Float32Array.from({ length: 2 * per }, () => (rng() < 0.5 ? -1 : 1));
    const got = sourceGradientNorms(r.spec, r.weights, r.batch, { kind: 'probes', probes, count: 2 });
    for (let k = 0; k < 2; k++) {
      const want = reference(r.spec, r.weights, r.batch, { probes: probes.subarray(k * per, (k + 1) * per) });
      expect(maxRelDiff(got.subarray(k * want.length, (k + 1) * want.length), want)).toBeLessThan(TOL);
    }
    const basis = await sourceGradientNormsAsync(r.spec, r.weights, r.batch, { kind: 'basis' });
    for (let j = 0; j < 3; j++) {
      const e = new Float32Array(per);
      for (let i = j; i < per; i += 3) e[i] = 1;
      const want = reference(r.spec, r.weights, r.batch, { probes: e });
      expect(maxRelDiff(basis.subarray(j * want.length, (j + 1) * want.length), want)).toBeLessThan(TOL);
    }
  });
});
