/** Random recurrent-engine problems in float64, and the linear functional the gradient tests differentiate. */
import { CellKind, LayerBackwardArgs, LayerBatch, LayerForwardOptions, LayerSpec, backends, hasCellState, layerParameterShapes, numDirections } from '../../lib';
import { Random } from './oracle-checks';

export interface EngineProblemSpec {
  cell: CellKind;
  D: number;
  H: number;
  L: number;
  bidirectional: boolean;
  T: number;
  B: number;
  kind: 'dense' | 'tokens';
  /** Random lengths in [1, T] (at least one short when T > 1), else all T. */
  withLengths: boolean;
  dropout?: number;
  /** Half-width of the uniform weights; default 0.7. */
  scale?: number;
}

export interface DenseBatch extends LayerBatch {
  h0: Float64Array;
  c0: Float64Array | null;
}

export interface EngineProblem {
  spec: LayerSpec;
  weights: Record<string, Float64Array>;
  batch: DenseBatch;
  /** The upstream gradients: L = <dy, y> + <dhT, hT> (+ <dcT, cT>). */
  upstream: { dy: Float64Array; dhT: Float64Array; dcT: Float64Array | null };
}

export function uniform64(rng: Random, n: number, scale: number): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = (2 * rng() - 1) * scale;
  return a;
}

export function randomLengths(rng: Random, T: number, B: number): Int32Array {
  const lengths = new Int32Array(B);
  for (let b = 0; b < B; b++) lengths[b] = 1 + Math.floor(rng() * T);
  if (T > 1 && lengths.every((n) => n === T)) lengths[Math.floor(rng() * B)] = 1 + Math.floor(rng() * (T - 1));
  return lengths;
}

export function randomWeights(rng: Random, spec: LayerSpec, scale: number): Record<string, Float64Array> {
  return Object.fromEntries(Object.entries(layerParameterShapes(spec)).map(([name, shape]) => [name, uniform64(rng, shape.reduce((a, b) => a * b, 1), scale)]));
}

export function randomEngineProblem(rng: Random, p: EngineProblemSpec): EngineProblem {
  const spec: LayerSpec = { cell: p.cell, inputSize: p.D, hiddenSize: p.H, numLayers: p.L, bidirectional: p.bidirectional, dropout: p.dropout ?? 0 };
  const weights = randomWeights(rng, spec, p.scale ?? 0.7);
  // Positive ReLU biases keep most units alive, so that gradients are rarely all zero.
  if (p.cell === 'relu') for (const [name, w] of Object.entries(weights)) if (name.startsWith('bias')) w.forEach((v, i) => (w[i] = 0.1 + Math.abs(v)));
  const states = p.L * numDirections(spec) * p.B * p.H;
  const input: LayerBatch['input'] =
    p.kind === 'dense'
      ? { kind: 'dense', data: uniform64(rng, p.T * p.B * p.D, 1) }
      : { kind: 'tokens', data: Int32Array.from({ length: p.T * p.B }, () => Math.floor(rng() * p.D)) };
  const withCell = hasCellState(p.cell);
  const batch: DenseBatch = {
    steps: p.T,
    batch: p.B,
    input,
    lengths: p.withLengths ? randomLengths(rng, p.T, p.B) : null,
    h0: uniform64(rng, states, 0.5),
    c0: withCell ? uniform64(rng, states, 0.5) : null,
  };
  const upstream = {
    dy: uniform64(rng, p.T * p.B * numDirections(spec) * p.H, 1),
    dhT: uniform64(rng, states, 1),
    dcT: withCell ? uniform64(rng, states, 1) : null,
  };
  return { spec, weights, batch, upstream };
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

/** L = <dy, y> + <dhT, hT> (+ <dcT, cT>) on the reference backend. */
export function functional(p: EngineProblem, options?: LayerForwardOptions): number {
  const out = backends.reference.layerForward(p.spec, p.weights, p.batch, options);
  out.saved.dispose();
  let L = dot(p.upstream.dy, out.y) + dot(p.upstream.dhT, out.hT);
  if (p.upstream.dcT && out.cT) L += dot(p.upstream.dcT, out.cT);
  return L;
}

/** Forward then backward of the problem's upstream gradients (and any extra backward args). */
export function gradients(p: EngineProblem, options?: LayerForwardOptions, extra?: Partial<LayerBackwardArgs>) {
  const out = backends.reference.layerForward(p.spec, p.weights, p.batch, options);
  const g = backends.reference.layerBackward(p.spec, p.weights, out.saved, { ...p.upstream, ...extra });
  return { out, g };
}

/** Central differences of f with respect to every element of arr (restored afterwards). */
export function centralDifferences(arr: Float64Array, f: () => number, eps = 1e-6): Float64Array {
  const out = new Float64Array(arr.length);
  for (let j = 0; j < arr.length; j++) {
    const keep = arr[j];
    arr[j] = keep + eps;
    const up = f();
    arr[j] = keep - eps;
    const down = f();
    arr[j] = keep;
    out[j] = (up - down) / (2 * eps);
  }
  return out;
}
