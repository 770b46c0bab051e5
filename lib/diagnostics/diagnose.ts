/**
 * `diagnose(model, inputs, targets)`: how far back the model's gradient reaches and why, for
 * every RNN configuration, from one batch.
 *
 * - perLag / perLagByLayer: for every layer-direction and lag m, sqrt(Σ_t Σ_b ‖∂L_t/∂h_s‖²) over
 *   the pairs with |t − s| = m, where L_t is step t's share of the model's loss (its own
 *   reduction) and h_s the layer-direction's state at step s. For a forward direction s = t − m;
 *   for a reverse one the lag runs forward in time, s = t + m; below the top layer of a
 *   bidirectional stack a source reaches both ways and m = |t − s| collects both. `perLag` is the
 *   top layer (both directions together: the root of the sum of their squares).
 * - jacobian: ‖∂h_{i+m}/∂h_i‖_F² by lag, averaged over i and the batch rows, per layer-direction
 *   through its own recurrence (for an LSTM with c_i held: the partial with respect to h_i):
 *   exact from the H basis vectors, or the unbiased Rademacher estimate E‖uᵀJ‖² = ‖J‖_F² with
 *   its standard error (from the spread between probe sets).
 * - spectral: every H×H recurrent block (W_hh for tanh/relu; each gate's rows of W_hh for LSTM
 *   i, f, g, o and GRU r, z, n), its spectral radius ρ and largest singular value σ.
 * - truncationBias: ‖g_k − g‖/‖g‖ and the cosine of the gradient with truncate k against the
 *   full one, over all trained parameters and per parameter.
 *
 * Everything heavy runs in the native engine (or the float64 reference for a reference model);
 * the per-source norms are one pass over all sources, not one backward pass per source.
 */
import { sourceGradientNorms as referenceSourceNorms, layerForward as referenceLayerForward } from '../engine/reference';
import { CellKind, LayerBatch, gatesPerCell, numDirections } from '../engine/spec';
import { Rng } from '../rng';
import { RNN } from '../rnn';
import { Tensor } from '../tensor';
import { SourceSpec, blockSpectrum, sourceGradientNorms, sourceGradientNormsAsync } from './sources';
import { MisalignmentEntry, MisalignmentOptions, tbpttMisalignment } from './misalignment';
import { largestSingularValue, spectralRadius } from './spectral';
import { fitDecayRate } from './decay';

/**
 * Options of {@link diagnose}.
 *
 * @example
 * ```ts
 * import type { DiagnoseOptions } from 'bptt';
 *
 * const options: DiagnoseOptions = { truncate: [1, 4, 16], jacobian: { mode: 'estimate', probes: 4, seed: 7 }, matrix: true };
 * console.log(options);
 * ```
 */
export interface DiagnoseOptions {
  /** Valid steps per sequence (models with cell, numLayers, bidirectional or dropout set). */
  lengths?: Int32Array | Tensor;
  /** The k of the truncation-bias entries (integers >= 1). Default: 1, 2, 4, ... below T. */
  truncate?: readonly number[];
  /**
   * Jacobian-product norms: `exact` (H passes of the primitive), `estimate` (`probes` Rademacher
   * probe sets, default 2, the fewest the standard error needs; each set costs one pass of the primitive; `seed` default 0), or `auto`
   * (default: exact when H <= 8). `false` skips them.
   */
  jacobian?: false | { mode?: 'auto' | 'exact' | 'estimate'; probes?: number; seed?: number };
  /** Also return each layer-direction's [t, s] matrix of sqrt(Σ_b ‖∂L_t/∂h_s‖²). Default false. */
  matrix?: boolean;
  /** Also measure the misalignment of online TBPTT(k1, k2) with SGD at lr on the batch as a stream (see {@link tbpttMisalignment}; on the calling thread). */
  misalignment?: MisalignmentOptions;
}

/**
 * One layer-direction's per-lag profile.
 *
 * @example
 * ```ts
 * import type { LagProfile } from 'bptt';
 *
 * const p: LagProfile = { layer: 0, direction: 0, perLag: Float64Array.of(1, 0.5, 0.25) };
 * console.log(p.perLag[1]);
 * ```
 */
export interface LagProfile {
  layer: number;
  /** 0 forward, 1 reverse. */
  direction: number;
  /** m = 0 .. T-1: sqrt(Σ over |t − s| = m of Σ_b ‖∂L_t/∂h_s‖²). */
  perLag: Float64Array;
  /** With `matrix: true`: [T (source t), T (step s)] of sqrt(Σ_b ‖∂L_t/∂h_s‖²). */
  matrix?: Float64Array;
}

/**
 * One layer-direction's Jacobian-product norms by lag.
 *
 * @example
 * ```ts
 * import type { JacobianProfile } from 'bptt';
 *
 * const j: JacobianProfile = { layer: 0, direction: 0, meanSquare: Float64Array.of(4, 1), norm: Float64Array.of(2, 1), standardError: Float64Array.of(0, 0.1), pairs: Float64Array.of(8, 6) };
 * console.log(j.norm[1]);
 * ```
 */
export interface JacobianProfile {
  layer: number;
  direction: number;
  /** m = 0 .. T-1: the mean over the (i, b) pairs of ‖∂h_{i+m}/∂h_i‖_F² (exact, or its unbiased estimate). */
  meanSquare: Float64Array;
  /** sqrt(meanSquare): the root-mean-square Frobenius norm. */
  norm: Float64Array;
  /** The standard error of meanSquare (0 when exact). */
  standardError: Float64Array;
  /** How many (i, b) pairs each lag averages over (padding counts for none). */
  pairs: Float64Array;
}

/**
 * One H×H recurrent block's spectrum and the theory's conditions (Pascanu et al., 2013) for
 * tanh/relu, whose derivative is bounded by γ = 1: σ < 1/γ is *sufficient* for vanishing
 * (‖∂h_t/∂h_s‖ <= (γσ)^(t−s)), so σ > 1/γ is *necessary* for exploding. ρ <= σ is the growth
 * rate per step of W^m (Gelfand): in the linear regime (derivatives near γ) the products grow iff
 * ρ > 1/γ, so ρ > 1/γ is necessary for exploding there, and it implies σ > 1/γ.
 *
 * @example
 * ```ts
 * import type { SpectralBlock } from 'bptt';
 *
 * const b: SpectralBlock = { layer: 0, direction: 0, gate: 'hh', spectralRadius: 0.9, singularValue: 1.3, vanishingGuaranteed: false, explodingPossible: true };
 * console.log(b.gate);
 * ```
 */
export interface SpectralBlock {
  layer: number;
  direction: number;
  /** 'hh' (tanh/relu), 'i' | 'f' | 'g' | 'o' (LSTM), 'r' | 'z' | 'n' (GRU). */
  gate: string;
  spectralRadius: number;
  singularValue: number;
  /** tanh/relu only: σ < 1/γ (γ = 1), sufficient for vanishing. */
  vanishingGuaranteed?: boolean;
  /** tanh/relu only: σ > 1/γ, necessary for exploding. */
  explodingPossible?: boolean;
}

/**
 * The truncated gradient against the full one.
 *
 * @example
 * ```ts
 * import type { TruncationBiasEntry } from 'bptt';
 *
 * const e: TruncationBiasEntry = { k: 4, relativeError: 0.1, cosine: 0.99, perParameter: { 'fc.bias': { relativeError: 0, cosine: 1 } } };
 * console.log(e.k);
 * ```
 */
export interface TruncationBiasEntry {
  k: number;
  /** ‖g_k − g‖ / ‖g‖ over all trained parameters together (0 when both are 0). */
  relativeError: number;
  /** g_k·g / (‖g_k‖‖g‖) (1 when both are 0). */
  cosine: number;
  perParameter: Record<string, { relativeError: number; cosine: number }>;
}

/**
 * What {@link diagnose} returns.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, Tensor, diagnose, type Diagnosis } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 4, hiddenSize: 6, outputSize: 4, cell: 'gru', seed: 1 });
 * const x = Tensor.from(Int32Array.from({ length: 10 }, (_, i) => i % 4), [5, 2]);
 * const d: Diagnosis = diagnose(rnn, x, x);
 * assert.deepEqual(d.gates, ['r', 'z', 'n']);
 * assert.equal(d.spectralRadius.length, 3);
 * ```
 */
export interface Diagnosis {
  cell: CellKind;
  numLayers: number;
  bidirectional: boolean;
  hiddenSize: number;
  steps: number;
  batch: number;
  /** The model's loss on the batch (its own reduction). */
  loss: number;
  /** m = 0 .. T-1, top layer (both directions together). */
  perLag: Float64Array;
  /** Index l*dirs + d. */
  perLagByLayer: LagProfile[];
  /** exp of the least-squares slope of ln perLag[m] over m >= 1 (perLag > 0): the factor per step (< 1 vanishing). NaN when fewer than two lags. */
  decayRate: number;
  jacobian: { method: 'exact' | 'estimate'; probes: number; byLayer: JacobianProfile[] } | null;
  /** Gate names of the blocks, in order: ['hh'], ['i','f','g','o'] or ['r','z','n']. */
  gates: string[];
  /** Index (l*dirs + d)*gates + g. */
  spectral: SpectralBlock[];
  /** spectral[i].spectralRadius, in the same order. */
  spectralRadius: number[];
  /** spectral[i].singularValue. */
  singularValue: number[];
  truncationBias: TruncationBiasEntry[];
  /** With `options.misalignment`: one entry per update, else null. */
  misalignment: MisalignmentEntry[] | null;
}

const GATES: Record<CellKind, string[]> = { tanh: ['hh'], relu: ['hh'], lstm: ['i', 'f', 'g', 'o'], gru: ['r', 'z', 'n'] };

function describe(v: unknown): string {
  if (Array.isArray(v)) return `an Array of ${v.length}`;
  if (v === null) return 'null';
  return typeof v === 'object' ? (v.constructor?.name ?? 'an object') : `${typeof v} ${String(v)}`;
}

interface Checked {
  lengths: Int32Array | null;
  truncate: number[];
  jacobian: { method: 'exact' | 'estimate'; probes: number; seed: number } | null;
  matrix: boolean;
  misalignment: MisalignmentOptions | null;
}

function checkOptions(rnn: RNN, inputs: Tensor, targets: Tensor, options: DiagnoseOptions): Checked {
  if (!(rnn instanceof RNN)) throw new TypeError(`model must be an RNN, got ${describe(rnn)}`);
  if (!(inputs instanceof Tensor)) throw new TypeError(`inputs must be a Tensor (int32 [T, B] or float32 [T, B, D]), got ${describe(inputs)}`);
  if (!(targets instanceof Tensor)) throw new TypeError(`targets must be a Tensor (as the model's head takes them), got ${describe(targets)}`);
  if (typeof options !== 'object' || options === null) throw new TypeError(`options must be an object, got ${describe(options)}`);
  const T = inputs.shape[0];
  let lengths: Int32Array | null = null;
  if (options.lengths !== undefined) {
    const l = options.lengths instanceof Tensor ? options.lengths.data() : options.lengths;
    if (!(l instanceof Int32Array)) throw new TypeError(`options.lengths must be an Int32Array or an int32 Tensor [B], got ${describe(options.lengths)}`);
    lengths = Int32Array.from(l);
  }
  let truncate: number[] = [];
  if (options.truncate === undefined) {
    for (let k = 1; k < T; k *= 2) truncate.push(k);
  } else {
    if (!Array.isArray(options.truncate)) throw new TypeError(`options.truncate must be an array of integers >= 1, got ${describe(options.truncate)}`);
    for (const k of options.truncate) {
      if (!Number.isSafeInteger(k) || k < 1) throw new RangeError(`options.truncate must hold integers >= 1, got ${String(k)}`);
    }
    truncate = [...options.truncate];
  }
  let jacobian: Checked['jacobian'] = null;
  if (options.jacobian !== false) {
    const j = options.jacobian ?? {};
    if (typeof j !== 'object' || j === null) throw new TypeError(`options.jacobian must be false or an object { mode?, probes?, seed? }, got ${describe(j)}`);
    const mode = j.mode ?? 'auto';
    if (mode !== 'auto' && mode !== 'exact' && mode !== 'estimate') throw new TypeError(`options.jacobian.mode must be 'auto', 'exact' or 'estimate', got ${describe(mode)}`);
    const probes = j.probes ?? 2;
    if (!Number.isSafeInteger(probes) || probes < 2) throw new RangeError(`options.jacobian.probes must be an integer >= 2 (the standard error needs two), got ${String(probes)}`);
    const seed = j.seed ?? 0;
    if (!Number.isSafeInteger(seed)) throw new RangeError(`options.jacobian.seed must be a safe integer, got ${String(seed)}`);
    const exact = mode === 'exact' || (mode === 'auto' && rnn.hiddenSize <= 8);
    jacobian = { method: exact ? 'exact' : 'estimate', probes: exact ? rnn.hiddenSize : probes, seed };
  }
  if (options.matrix !== undefined && typeof options.matrix !== 'boolean') throw new TypeError(`options.matrix must be a boolean, got ${describe(options.matrix)}`);
  if (options.misalignment !== undefined && (typeof options.misalignment !== 'object' || options.misalignment === null)) {
    throw new TypeError(`options.misalignment must be an object { k1, k2, lr }, got ${describe(options.misalignment)}`);
  }
  return { lengths, truncate, jacobian, matrix: options.matrix ?? false, misalignment: options.misalignment ?? null };
}

/** What the plan asks the runner for: a model gradient (truncated or not) or the primitive's norms. */
type Request = { kind: 'gradients'; truncate: number | null } | { kind: 'norms'; sources: SourceSpec };
type GradientsResult = { loss: number; grads: Record<string, Float64Array> };

/** Σ over |t − s| = m of a [T, T] block, m = 0 .. T-1. */
function sumByLag(block: Float64Array, T: number): Float64Array {
  const out = new Float64Array(T);
  for (let t = 0; t < T; t++) for (let s = 0; s < T; s++) out[Math.abs(t - s)] += block[t * T + s];
  return out;
}

function compare(a: Record<string, Float64Array>, b: Record<string, Float64Array>, names: string[]): { relativeError: number; cosine: number } {
  let dd = 0;
  let bb = 0;
  let aa = 0;
  let ab = 0;
  for (const n of names) {
    const x = a[n];
    const y = b[n];
    for (let i = 0; i < x.length; i++) {
      dd += (x[i] - y[i]) ** 2;
      aa += x[i] * x[i];
      bb += y[i] * y[i];
      ab += x[i] * y[i];
    }
  }
  return {
    relativeError: bb === 0 ? (aa === 0 ? 0 : Infinity) : Math.sqrt(dd / bb),
    cosine: aa === 0 && bb === 0 ? 1 : aa === 0 || bb === 0 ? 0 : ab / Math.sqrt(aa * bb),
  };
}

/** The diagnosis as a sequence of requests (so the sync and async runners share it). */
function* plan(rnn: RNN, inputs: Tensor, targets: Tensor, o: Checked): Generator<Request, Diagnosis, unknown> {
  const full = (yield { kind: 'gradients', truncate: null }) as GradientsResult; // validates the call
  const { spec, weights } = rnn.layerView();
  const [T, B] = inputs.shape;
  const H = rnn.hiddenSize;
  const dirs = numDirections(spec);
  const states = rnn.numLayers * dirs;
  const { dy } = rnn.outputGradients(inputs, targets, o.lengths ? { lengths: o.lengths } : {});
  const norms = (yield { kind: 'norms', sources: { kind: 'output', dy } }) as Float64Array;
  const perLagByLayer: LagProfile[] = [];
  for (let index = 0; index < states; index++) {
    const block = norms.subarray(index * T * T, (index + 1) * T * T);
    const profile: LagProfile = { layer: Math.floor(index / dirs), direction: index % dirs, perLag: sumByLag(block, T).map(Math.sqrt) };
    if (o.matrix) profile.matrix = block.map(Math.sqrt);
    perLagByLayer.push(profile);
  }
  const perLag = new Float64Array(T);
  for (const p of perLagByLayer.slice(states - dirs)) for (let m = 0; m < T; m++) perLag[m] += p.perLag[m] ** 2;
  perLag.forEach((v, m) => (perLag[m] = Math.sqrt(v)));

  let jacobian: Diagnosis['jacobian'] = null;
  if (o.jacobian) {
    const { method, probes: P, seed } = o.jacobian;
    const per = states * T * B * H;
    let sources: SourceSpec = { kind: 'basis' };
    if (method === 'estimate') {
      const rng = new Rng(seed);
      const probes = new Float32Array(P * per);
      for (let i = 0; i < probes.length; i++) probes[i] = rng.next() < 0.5 ? -1 : 1;
      sources = { kind: 'probes', probes, count: P };
    }
    const sets = (yield { kind: 'norms', sources }) as Float64Array;
    const lengths = o.lengths ?? new Int32Array(B).fill(T);
    const pairs = Float64Array.from({ length: T }, (_, m) => lengths.reduce((a, len) => a + Math.max(0, len - m), 0));
    const byLayer: JacobianProfile[] = [];
    for (let index = 0; index < states; index++) {
      const meanSquare = new Float64Array(T);
      const variance = new Float64Array(T); // Σ_t of the spread of X_{t,p} over p, per lag
      for (let t = 0; t < T; t++) {
        for (let s = 0; s < T; s++) {
          let sum = 0;
          let sumSq = 0;
          for (let p = 0; p < P; p++) {
            const x = sets[((p * states + index) * T + t) * T + s];
            sum += x;
            sumSq += x * x;
          }
          const m = Math.abs(t - s);
          meanSquare[m] += method === 'exact' ? sum : sum / P;
          if (method === 'estimate') variance[m] += Math.max(0, (sumSq - (sum * sum) / P) / (P - 1)) / P;
        }
      }
      const standardError = new Float64Array(T);
      for (let m = 0; m < T; m++) {
        meanSquare[m] = pairs[m] > 0 ? meanSquare[m] / pairs[m] : 0;
        standardError[m] = pairs[m] > 0 ? Math.sqrt(variance[m]) / pairs[m] : 0;
      }
      byLayer.push({ layer: Math.floor(index / dirs), direction: index % dirs, meanSquare, norm: meanSquare.map(Math.sqrt), standardError, pairs });
    }
    jacobian = { method, probes: P, byLayer };
  }

  const gates = GATES[rnn.cell];
  const simple = gates.length === 1;
  const spectral: SpectralBlock[] = [];
  for (let index = 0; index < states; index++) {
    const l = Math.floor(index / dirs);
    const d = index % dirs;
    const whh = weights[`weight_hh_l${l}${d === 1 ? '_reverse' : ''}`];
    for (let g = 0; g < gatesPerCell(rnn.cell); g++) {
      const block = whh.subarray(g * H * H, (g + 1) * H * H);
      let rho: number;
      let sigma: number;
      if (rnn.backend === 'native') {
        const spectrum = blockSpectrum(block, H);
        rho = Math.max(...spectrum.eigenvalues.map((e) => Math.hypot(e.re, e.im)));
        sigma = spectrum.singularValue;
      } else {
        rho = spectralRadius(block, H);
        sigma = largestSingularValue(block, H, H);
      }
      const entry: SpectralBlock = { layer: l, direction: d, gate: gates[g], spectralRadius: rho, singularValue: sigma };
      if (simple) {
        entry.vanishingGuaranteed = sigma < 1;
        entry.explodingPossible = sigma > 1;
      }
      spectral.push(entry);
    }
  }

  const names = Object.keys(rnn.params);
  const truncationBias: TruncationBiasEntry[] = [];
  for (const k of o.truncate) {
    const g = (yield { kind: 'gradients', truncate: k }) as GradientsResult;
    const perParameter: TruncationBiasEntry['perParameter'] = {};
    for (const n of names) perParameter[n] = compare(g.grads, full.grads, [n]);
    truncationBias.push({ k, ...compare(g.grads, full.grads, names), perParameter });
  }

  return {
    cell: rnn.cell,
    numLayers: rnn.numLayers,
    bidirectional: rnn.bidirectional,
    hiddenSize: H,
    steps: T,
    batch: B,
    loss: full.loss,
    perLag,
    perLagByLayer,
    decayRate: fitDecayRate(perLag)?.factor ?? NaN,
    jacobian,
    gates,
    spectral,
    spectralRadius: spectral.map((s) => s.spectralRadius),
    singularValue: spectral.map((s) => s.singularValue),
    truncationBias,
    misalignment: o.misalignment ? tbpttMisalignment(rnn, inputs, targets, o.misalignment) : null,
  };
}

function batchOf(inputs: Tensor, lengths: Int32Array | null): LayerBatch {
  const [T, B] = inputs.shape;
  const input: LayerBatch['input'] = inputs.dtype === 'int32' ? { kind: 'tokens', data: inputs.data() as Int32Array } : { kind: 'dense', data: inputs.data() as Float32Array };
  return { steps: T, batch: B, input, lengths };
}

function gradientOptions(rnn: RNN, o: Checked, truncate: number | null) {
  // Dropout off: the diagnosis is of the model's function, not of one draw of masks.
  return { ...(o.lengths ? { lengths: o.lengths } : {}), ...(truncate === null ? {} : { truncate }), ...(rnn.dropout > 0 ? { training: false } : {}) };
}

function collect(rnn: RNN, r: { loss: number; grads: Record<string, Tensor> }): GradientsResult {
  const grads: Record<string, Float64Array> = {};
  for (const [n, t] of Object.entries(r.grads)) {
    if (n in rnn.params) grads[n] = Float64Array.from(t.data() as Float32Array);
    t.dispose();
  }
  return { loss: r.loss, grads };
}

function referenceNorms(rnn: RNN, o: Checked, inputs: Tensor, sources: SourceSpec): Float64Array {
  const { spec, weights } = rnn.layerView();
  const out = referenceLayerForward(spec, weights, batchOf(inputs, o.lengths));
  try {
    if (sources.kind === 'output') return referenceSourceNorms(spec, weights, out.saved, { dy: sources.dy });
    const per = rnn.numLayers * numDirections(spec) * inputs.shape[0] * inputs.shape[1] * rnn.hiddenSize;
    const count = sources.kind === 'probes' ? sources.count : rnn.hiddenSize;
    const parts: Float64Array[] = [];
    for (let p = 0; p < count; p++) {
      let probes: Float32Array;
      if (sources.kind === 'probes') probes = sources.probes.subarray(p * per, (p + 1) * per);
      else {
        probes = new Float32Array(per);
        for (let i = p; i < per; i += rnn.hiddenSize) probes[i] = 1;
      }
      parts.push(referenceSourceNorms(spec, weights, out.saved, { probes }));
    }
    const all = new Float64Array(parts.reduce((a, x) => a + x.length, 0));
    parts.forEach((x, i) => all.set(x, i * x.length));
    return all;
  } finally {
    out.saved.dispose();
  }
}

/**
 * Diagnoses the gradients of `model` on one batch (targets as its head takes them): per-lag
 * gradient norms of every layer, Jacobian-product norms, the spectra of the recurrent blocks and
 * the bias of truncated BPTT (see {@link Diagnosis}). Validates its arguments (TypeError,
 * RangeError, and the model's own ShapeError, DTypeError etc. for the batch).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, Tensor, diagnose } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 5, hiddenSize: 8, outputSize: 5, seed: 3 });
 * const x = Tensor.from(Int32Array.from({ length: 24 }, (_, i) => (i * 7) % 5), [12, 2]);
 * const y = Tensor.from(Int32Array.from({ length: 24 }, (_, i) => (i * 3) % 5), [12, 2]);
 * const d = diagnose(rnn, x, y, { truncate: [2, 12] });
 * assert.equal(d.perLag.length, 12);
 * assert.ok(d.perLag[0] > d.perLag[11]); // the gradient fades with the lag
 * assert.equal(d.truncationBias[1].relativeError, 0); // k >= T is exact BPTT
 * assert.equal(d.spectralRadius.length, 1);
 * ```
 */
export function diagnose(model: RNN, inputs: Tensor, targets: Tensor, options: DiagnoseOptions = {}): Diagnosis {
  const o = checkOptions(model, inputs, targets, options);
  const steps = plan(model, inputs, targets, o);
  let r = steps.next();
  while (!r.done) {
    const q = r.value;
    let answer: unknown;
    if (q.kind === 'gradients') answer = collect(model, model.lossAndGradients(inputs, targets, gradientOptions(model, o, q.truncate)));
    else if (model.backend === 'reference') answer = referenceNorms(model, o, inputs, q.sources);
    else {
      const { spec, weights } = model.layerView();
      answer = sourceGradientNorms(spec, weights, batchOf(inputs, o.lengths), q.sources);
    }
    r = steps.next(answer);
  }
  return r.value;
}

/**
 * {@link diagnose} with the gradients and the native primitive on worker threads.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, Tensor, diagnose, diagnoseAsync } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, cell: 'lstm', numLayers: 2, seed: 2 });
 * const x = Tensor.from(Int32Array.from({ length: 12 }, (_, i) => i % 3), [6, 2]);
 * const d = await diagnoseAsync(rnn, x, x, { truncate: [1] });
 * assert.deepEqual(d.perLag, diagnose(rnn, x, x, { truncate: [1] }).perLag);
 * ```
 */
export async function diagnoseAsync(model: RNN, inputs: Tensor, targets: Tensor, options: DiagnoseOptions = {}): Promise<Diagnosis> {
  const o = checkOptions(model, inputs, targets, options);
  const steps = plan(model, inputs, targets, o);
  let r = steps.next();
  while (!r.done) {
    const q = r.value;
    let answer: unknown;
    if (q.kind === 'gradients') answer = collect(model, await model.lossAndGradientsAsync(inputs, targets, gradientOptions(model, o, q.truncate)));
    else if (model.backend === 'reference') answer = referenceNorms(model, o, inputs, q.sources);
    else {
      const { spec, weights } = model.layerView();
      answer = await sourceGradientNormsAsync(spec, weights, batchOf(inputs, o.lengths), q.sources);
    }
    r = steps.next(answer);
  }
  return r.value;
}

/** A JSON-able copy: typed arrays become number arrays, non-finite numbers null. */
function plain(v: unknown): unknown {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (ArrayBuffer.isView(v)) return Array.from(v as Float64Array, (x) => (Number.isFinite(x) ? x : null));
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

/**
 * The diagnosis as plain JSON values (`JSON.stringify`-able: typed arrays as number arrays,
 * NaN/Infinity as null): what `bptt diagnose --json` prints.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, Tensor, diagnose, diagnosisToJson } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 });
 * const x = Tensor.from(Int32Array.of(0, 1, 2, 0), [4, 1]);
 * const json = diagnosisToJson(diagnose(rnn, x, x));
 * assert.ok(Array.isArray(json.perLag));
 * console.log(JSON.stringify(json).length);
 * ```
 */
export function diagnosisToJson(result: Diagnosis): Record<string, unknown> {
  return plain(result) as Record<string, unknown>;
}
