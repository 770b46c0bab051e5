/**
 * The native addon against the float64 oracle (lib/backends/reference.ts), on every ISA this CPU
 * supports: random configurations drawn from the sizes that exercise SIMD tails and tile edges,
 * both input kinds, ignored targets, with and without h0, full and truncated BPTT.
 * Bounds: forward outputs and loss <= 1e-5 relative; each gradient <= 1e-4 relative to its norm.
 * Forward outputs are compared relative to the magnitude of the terms summed into them (see
 * forwardMagnitudes): with cancellation, a float32 sum's error is relative to that, not to the
 * (possibly tiny) result.
 */
import fc from 'fast-check';
import { backends, setIsa, supportedIsas } from '../lib';
import { PARAM_NAMES } from '../lib/backend';
import { ProblemSpec, forwardMagnitudes, mulberry32, randomProblem, relErr, relErrTo } from './helpers/oracle-checks';

const SIZES = [1, 3, 7, 16, 17, 31, 33, 64, 65, 100, 129];
const BATCHES = [1, 2, 5, 32, 35];
const STEPS = [1, 2, 25, 200];
const FORWARD_TOL = 1e-5;
const GRAD_TOL = 1e-4;

interface Config extends ProblemSpec {
  ignoreFraction: number;
  withH0: boolean;
  truncate: number | 'T' | null;
  reduction: 'mean' | 'sum';
  seed: number;
}

function check(cfg: Config): void {
  const rng = mulberry32(cfg.seed);
  const p = randomProblem(rng, cfg);
  const truncate = cfg.truncate === 'T' ? cfg.T : cfg.truncate;
  const label = JSON.stringify(cfg);

  const nf = backends.native.forward(p.dims, p.params, p.seq, p.h0);
  const rf = backends.reference.forward(p.dims, p.params, p.seq, p.h0);
  const magnitude = forwardMagnitudes(p, rf.states);
  for (const key of ['states', 'logits', 'hT'] as const) {
    const e = relErrTo(nf[key], rf[key], key === 'logits' ? magnitude.logits : magnitude.states);
    if (!(e <= FORWARD_TOL)) throw new Error(`forward ${key} error ${e} > ${FORWARD_TOL} for ${label}`);
  }

  const opts = { h0: p.h0, truncate, reduction: cfg.reduction };
  const ng = backends.native.lossAndGradients(p.dims, p.params, p.seq, p.targets, opts);
  const rg = backends.reference.lossAndGradients(p.dims, p.params, p.seq, p.targets, opts);
  const lossErr = Math.abs(ng.loss - rg.loss) / Math.max(Math.abs(rg.loss), 1e-30);
  if (!(lossErr <= FORWARD_TOL)) throw new Error(`loss ${ng.loss} vs ${rg.loss} (error ${lossErr}) for ${label}`);
  for (const name of [...PARAM_NAMES, 'h0'] as const) {
    const e = relErr(ng.grads[name], rg.grads[name]);
    if (!(e <= GRAD_TOL)) throw new Error(`gradient ${name} error ${e} > ${GRAD_TOL} for ${label}`);
  }
  const e = relErrTo(ng.hT, rg.hT, magnitude.states);
  if (!(e <= FORWARD_TOL)) throw new Error(`hT error ${e} for ${label}`);
}

// Keeps each draw's float64 oracle affordable: the costliest are T=200 with large H and B.
const WORK_LIMIT = 6e8;
function work(c: Config): number {
  const k = c.truncate === null || c.truncate === 'T' ? 1 : Math.min(c.truncate, c.T);
  return c.T * c.B * (c.D * c.H + c.H * c.H * (1 + k) + c.H * c.K);
}

const configArb: fc.Arbitrary<Config> = fc
  .record({
    D: fc.constantFrom(...SIZES),
    H: fc.constantFrom(...SIZES),
    K: fc.constantFrom(...SIZES),
    T: fc.constantFrom(...STEPS),
    B: fc.constantFrom(...BATCHES),
    kind: fc.constantFrom('tokens' as const, 'dense' as const),
    ignoreFraction: fc.constantFrom(0, 0.3),
    withH0: fc.boolean(),
    truncate: fc.constantFrom(1, 2, 5, 'T' as const, null),
    reduction: fc.constantFrom('mean' as const, 'sum' as const),
    seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
  })
  .filter((c) => work(c) <= WORK_LIMIT);

const EDGE_CASES: Config[] = [
  { D: 1, H: 1, K: 1, T: 1, B: 1, kind: 'tokens', ignoreFraction: 0, withH0: false, truncate: null, reduction: 'mean', seed: 1 },
  { D: 3, H: 17, K: 31, T: 1, B: 1, kind: 'dense', ignoreFraction: 0, withH0: true, truncate: 1, reduction: 'sum', seed: 2 },
  { D: 65, H: 33, K: 65, T: 200, B: 1, kind: 'tokens', ignoreFraction: 0.3, withH0: true, truncate: 5, reduction: 'mean', seed: 3 },
  { D: 129, H: 129, K: 129, T: 25, B: 32, kind: 'dense', ignoreFraction: 0.3, withH0: true, truncate: null, reduction: 'mean', seed: 4 },
  { D: 17, H: 65, K: 7, T: 200, B: 5, kind: 'tokens', ignoreFraction: 0, withH0: false, truncate: 2, reduction: 'sum', seed: 5 },
  { D: 100, H: 100, K: 100, T: 200, B: 2, kind: 'dense', ignoreFraction: 0, withH0: true, truncate: 'T', reduction: 'mean', seed: 6 },
  { D: 64, H: 64, K: 64, T: 2, B: 32, kind: 'tokens', ignoreFraction: 1, withH0: true, truncate: null, reduction: 'mean', seed: 7 },
  { D: 31, H: 16, K: 33, T: 25, B: 32, kind: 'dense', ignoreFraction: 0.3, withH0: false, truncate: 5, reduction: 'sum', seed: 8 },
  // BPTT goes back in chunks of about 1024 rows: T * B above that takes several, and truncation
  // windows that cross chunk boundaries, shorter and longer than a chunk.
  { D: 7, H: 20, K: 9, T: 520, B: 4, kind: 'dense', ignoreFraction: 0.1, withH0: true, truncate: null, reduction: 'mean', seed: 9 },
  { D: 5, H: 16, K: 6, T: 700, B: 3, kind: 'tokens', ignoreFraction: 0, withH0: false, truncate: 7, reduction: 'sum', seed: 10 },
  { D: 9, H: 24, K: 11, T: 600, B: 4, kind: 'dense', ignoreFraction: 0.2, withH0: true, truncate: 300, reduction: 'mean', seed: 11 },
  // From B = 32 rows and enough recurrent work a batch runs as two shards of its rows (rnn.h):
  // uneven shards (B = 33, 35 make 16 + 17 or 16 + 19 rows with AVX-512's 8-row tiles), dense rows
  // read in place across the whole batch, truncation and h0 per shard.
  { D: 17, H: 65, K: 7, T: 33, B: 33, kind: 'tokens', ignoreFraction: 0.3, withH0: true, truncate: 5, reduction: 'sum', seed: 12 },
  { D: 3, H: 33, K: 5, T: 65, B: 35, kind: 'dense', ignoreFraction: 0.3, withH0: true, truncate: null, reduction: 'mean', seed: 13 },
  { D: 33, H: 64, K: 17, T: 25, B: 33, kind: 'dense', ignoreFraction: 0, withH0: false, truncate: 2, reduction: 'mean', seed: 14 },
];

describe.each(supportedIsas())('native kernels (%s) vs the float64 oracle', (isa) => {
  beforeAll(() => setIsa(isa as 'scalar'));
  afterAll(() => setIsa('auto'));

  test.each(EDGE_CASES.map((c) => [JSON.stringify(c), c] as const))('edge case %s', (_label, cfg) => {
    check(cfg);
  });

  test('random configurations (property)', () => {
    fc.assert(fc.property(configArb, (cfg) => check(cfg)), { numRuns: 40, seed: 20261124 + isa.length });
  });
});
