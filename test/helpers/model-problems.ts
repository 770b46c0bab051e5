/**
 * Random engine-model problems for the native-vs-oracle tests of heads and shards: float32
 * parameters, a batch (dense or tokens, lengths, h0/c0) and targets for a head.
 */
import { CellKind } from '../../lib';
import { HeadSpec, ModelTargets, checkModelCall, checkModelSpec, modelParameters } from '../../lib/engine/model';
import { LayerBatch } from '../../lib/engine/spec';
import { randomLengths, uniform64 } from './engine-problems';
import { Random, mulberry32, relErr } from './oracle-checks';

export interface ModelCase {
  cell: CellKind;
  L: number;
  bidirectional: boolean;
  head: HeadSpec;
  K: number;
  H: number;
  T: number;
  B: number;
  lengths: boolean;
  tokens: boolean;
  truncate: number | null;
  dropout: number;
  stateAt?: number | null;
}

/** Targets as the head takes them; a fifth of token targets and one sequence's class are ignored (-1). */
export function modelTargets(rng: Random, head: HeadSpec, K: number, T: number, B: number): ModelTargets {
  if (head.kind === 'tokens') return Int32Array.from({ length: T * B }, () => (rng() < 0.2 ? -1 : Math.floor(rng() * K)));
  if (head.kind === 'classify') return Int32Array.from({ length: B }, (_, b) => (B > 2 && b === 1 ? -1 : Math.floor(rng() * K)));
  const n = (head.positions === 'last' ? B : T * B) * K;
  return Float32Array.from({ length: n }, () => 2 * rng() - 1);
}

/** A problem of input width D from `seed`: spec, parameters, the checked call and targets. */
export function buildModelProblem(seed: number, c: ModelCase, D: number) {
  const rng = mulberry32(seed);
  const spec = checkModelSpec({ cell: c.cell, inputSize: D, hiddenSize: c.H, numLayers: c.L, bidirectional: c.bidirectional, dropout: c.dropout, outputSize: c.K, head: c.head });
  const params: Record<string, Float32Array> = {};
  const scale = Math.min(0.7, 1.5 / Math.sqrt(c.H));
  for (const p of modelParameters(spec)) params[p.name] = Float32Array.from(uniform64(rng, p.size, scale));
  const states = c.L * (c.bidirectional ? 2 : 1) * c.B * c.H;
  const batch: LayerBatch = {
    steps: c.T,
    batch: c.B,
    input: c.tokens ? { kind: 'tokens', data: Int32Array.from({ length: c.T * c.B }, () => Math.floor(rng() * D)) } : { kind: 'dense', data: Float32Array.from(uniform64(rng, c.T * c.B * D, 1)) },
    lengths: c.lengths ? randomLengths(rng, c.T, c.B) : null,
    h0: Float32Array.from(uniform64(rng, states, 0.5)),
    c0: c.cell === 'lstm' ? Float32Array.from(uniform64(rng, states, 0.5)) : null,
  };
  const options = { training: c.dropout > 0, dropoutSeed: c.dropout > 0 ? 99 : undefined, truncate: c.truncate, reduction: 'mean' as const, stateAt: c.stateAt ?? null };
  const call = checkModelCall(spec, batch, options, false);
  return { spec, params, call, targets: modelTargets(rng, c.head, c.K, c.T, c.B) };
}

/** Throws unless got is within `tolerance` (relative, worst element) of want. */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tolerance: number, what: string): void {
  const e = relErr(got, want);
  if (!(e <= tolerance)) throw new Error(`${what}: relative error ${e}`);
}

interface GradientResult {
  loss: number;
  grads: Record<string, ArrayLike<number>>;
  dh0: ArrayLike<number>;
  dc0: ArrayLike<number> | null;
}

/** A native lossAndGradients against the oracle's: loss, every weight gradient, dh0 and dc0. */
export function expectGradientsClose(got: GradientResult, want: GradientResult, label: string): void {
  if (!(Math.abs(got.loss - want.loss) <= 1e-5 * Math.max(1, Math.abs(want.loss)))) throw new Error(`${label} loss ${got.loss} vs ${want.loss}`);
  for (const name of Object.keys(want.grads)) expectClose(got.grads[name], want.grads[name], 1e-4, `${label} ${name}`);
  expectClose(got.dh0, want.dh0, 1e-4, `${label} dh0`);
  if (want.dc0) expectClose(got.dc0!, want.dc0, 1e-4, `${label} dc0`);
}
