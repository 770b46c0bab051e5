/**
 * The native recurrent engine against the float64 oracle (lib/engine/reference.ts) on every ISA
 * this CPU supports: every cell x numLayers {1, 2, 3} x both directions x with and without
 * lengths x truncate {none, 1, 3} x token and dense inputs, each at sizes drawn from the odd ones
 * that exercise SIMD tails and register-tile edges (H in {1, 3, 17, 33, 65}, B in {1, 5}, T in
 * {1, 7, 40}). The oracle runs on the float32-rounded problem, so the only differences are the
 * native float32 arithmetic: forward outputs within 2e-5 and every gradient within 1e-4 of the
 * largest element of its reference array.
 */
import { CellKind, LayerBackwardArgs, LayerSpec, backends, setIsa, supportedIsas } from '../lib';
import { EngineProblem, randomEngineProblem } from './helpers/engine-problems';
import { mulberry32, relErr } from './helpers/oracle-checks';

const FORWARD_TOL = 2e-5;
const GRAD_TOL = 1e-4;
const CELLS: CellKind[] = ['tanh', 'relu', 'lstm', 'gru'];
const HIDDEN = [1, 3, 17, 33, 65];
const BATCH = [1, 5];
const STEPS = [1, 7, 40];

interface Config {
  cell: CellKind;
  L: number;
  bidirectional: boolean;
  withLengths: boolean;
  truncate: number | null;
  kind: 'dense' | 'tokens';
  H: number;
  B: number;
  T: number;
  D: number;
  seed: number;
}

/** Every combination of the structural choices, each with sizes from a seeded walk over the odd ones. */
function configs(): Config[] {
  const out: Config[] = [];
  const pick = mulberry32(20261130);
  let i = 0;
  for (const cell of CELLS)
    for (const L of [1, 2, 3])
      for (const bidirectional of [false, true])
        for (const withLengths of [false, true])
          for (const truncate of [null, 1, 3])
            for (const kind of ['dense', 'tokens'] as const) {
              // Big hidden sizes with long sequences and deep stacks only now and then: the oracle is slow.
              const T = STEPS[i % STEPS.length];
              const H = HIDDEN[(i * 7 + Math.floor(pick() * 5)) % HIDDEN.length];
              const small = T === 40 && L === 3 ? Math.min(H, 33) : H;
              out.push({ cell, L, bidirectional, withLengths, truncate, kind, H: small, B: BATCH[Math.floor(pick() * 2)], T, D: 1 + Math.floor(pick() * 9) * 4, seed: 1000 + i });
              i++;
            }
  return out;
}

/** The problem with every float array rounded to float32: what the native engine is given. */
function float32Problem(p: EngineProblem) {
  const f32 = (a: Float64Array | null) => (a === null ? null : Float32Array.from(a));
  const weights = Object.fromEntries(Object.entries(p.weights).map(([k, v]) => [k, Float32Array.from(v)]));
  const input = p.batch.input.kind === 'dense' ? { kind: 'dense' as const, data: Float32Array.from(p.batch.input.data) } : p.batch.input;
  const batch = { ...p.batch, input, h0: f32(p.batch.h0), c0: f32(p.batch.c0) };
  const upstream = { dy: Float32Array.from(p.upstream.dy), dhT: Float32Array.from(p.upstream.dhT), dcT: f32(p.upstream.dcT) };
  return { weights, batch, upstream };
}

function runBoth(cfg: Config) {
  const rng = mulberry32(cfg.seed);
  const p = randomEngineProblem(rng, { cell: cfg.cell, D: cfg.D, H: cfg.H, L: cfg.L, bidirectional: cfg.bidirectional, T: cfg.T, B: cfg.B, kind: cfg.kind, withLengths: cfg.withLengths, scale: Math.min(0.7, 1.5 / Math.sqrt(cfg.H)) });
  const q = float32Problem(p);
  const args: LayerBackwardArgs = { ...q.upstream, truncate: cfg.truncate };
  const ref = backends.reference.layerForward(p.spec, q.weights, q.batch);
  const refGrads = backends.reference.layerBackward(p.spec, q.weights, ref.saved, args);
  return { spec: p.spec, q, args, ref, refGrads };
}

function compare(label: string, what: string, a: ArrayLike<number> | null, b: ArrayLike<number> | null, tol: number): void {
  if (a === null || b === null) {
    if (a !== b) throw new Error(`${what}: one side is null for ${label}`);
    return;
  }
  const e = relErr(a, b);
  if (!(e <= tol)) throw new Error(`${what} error ${e} > ${tol} for ${label}`);
}

function checkNative(spec: LayerSpec, run: ReturnType<typeof runBoth>, label: string): void {
  const out = backends.native.layerForward(spec, run.q.weights, run.q.batch);
  compare(label, 'y', out.y, run.ref.y, FORWARD_TOL);
  compare(label, 'hT', out.hT, run.ref.hT, FORWARD_TOL);
  compare(label, 'cT', out.cT, run.ref.cT, FORWARD_TOL);
  const g = backends.native.layerBackward(spec, run.q.weights, out.saved, run.args);
  out.saved.dispose();
  compare(label, 'dx', g.dx, run.refGrads.dx, GRAD_TOL);
  compare(label, 'dh0', g.dh0, run.refGrads.dh0, GRAD_TOL);
  compare(label, 'dc0', g.dc0, run.refGrads.dc0, GRAD_TOL);
  for (const name of Object.keys(run.refGrads.grads)) compare(label, `grads.${name}`, g.grads[name], run.refGrads.grads[name], GRAD_TOL);
}

const isas = supportedIsas();

describe('native recurrent engine vs the float64 oracle', () => {
  afterAll(() => setIsa('auto'));

  test.each(configs().map((c) => [`${c.cell} L${c.L}${c.bidirectional ? ' bi' : ''}${c.withLengths ? ' lengths' : ''} k=${c.truncate ?? '-'} ${c.kind} H${c.H} B${c.B} T${c.T}`, c] as const))('%s', (_name, cfg) => {
    const run = runBoth(cfg);
    for (const isa of isas) {
      setIsa(isa as 'scalar' | 'avx2' | 'avx512');
      checkNative(run.spec, run, `${isa} ${JSON.stringify(cfg)}`);
    }
  });

  test('padding outputs are exactly zero', () => {
    const cfg: Config = { cell: 'lstm', L: 2, bidirectional: true, withLengths: true, truncate: null, kind: 'dense', H: 5, B: 4, T: 6, D: 3, seed: 7 };
    const run = runBoth(cfg);
    const out = backends.native.layerForward(run.spec, run.q.weights, run.q.batch);
    const lengths = run.q.batch.lengths!;
    const width = 2 * cfg.H;
    for (let t = 0; t < cfg.T; t++)
      for (let b = 0; b < cfg.B; b++)
        if (t >= lengths[b]) for (let j = 0; j < width; j++) expect(out.y[(t * cfg.B + b) * width + j]).toBe(0);
    out.saved.dispose();
  });
});
