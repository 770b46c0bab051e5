/**
 * The native gradient-diagnostics primitive (native/binding_diagnostics.cc over
 * engine/layer.cc's layer_source_norms), validated here like the layer API (spec.ts) and again
 * in C++: for a layer spec, its weights and a batch, runs the stack forward and
 * returns, for every layer-direction (index l*dirs + d), source t and step s, the squared norm
 * of dL_t/dh_s summed over the batch rows active at s, as [sets, L*dirs, T, T] (source-major);
 * and the spectra of recurrent blocks.
 */
import { NonFiniteError, ShapeError } from '../errors';
import { addon } from '../native';
import { Eigenvalue } from './spectral';
import { layerRunArgs } from '../engine/native';
import { LayerBatch, LayerForwardOptions, LayerSpec, LayerWeights, NormalizedLayerSpec, checkLayerForwardRequest, layerOutputSize, numDirections } from '../engine/spec';

/**
 * Where the sources come from: `output`: dy [T, B, dirs*H], the gradient of the top layer's
 * output, step t being source L_t (it travels through every layer); `probes`: `count` sets of
 * probes [L*dirs, T, B, H] (probe t enters its own layer-direction's state h_t and goes through
 * that recurrence only: u^T dh_t/dh_s); `basis`: the H basis vectors as H probe sets.
 */
export type SourceSpec = { kind: 'output'; dy: Float32Array } | { kind: 'probes'; probes: Float32Array; count: number } | { kind: 'basis' };

interface DiagnosticsAddon {
  sourceGradientNorms(...args: unknown[]): Float64Array;
  sourceGradientNormsAsync(...args: unknown[]): Promise<Float64Array>;
  blockSpectrum(block: Float32Array, n: number): Float64Array;
}

function prepare(spec: LayerSpec, weights: LayerWeights, batch: LayerBatch, sources: SourceSpec, options: LayerForwardOptions | undefined): { s: NormalizedLayerSpec; args: unknown[] } {
  const req = checkLayerForwardRequest(spec, weights, batch, options, false);
  const s = req.spec;
  const b = req.batch;
  const { steps: T, batch: B } = b;
  let entries: Float32Array | null = null;
  let count = 1;
  if (sources.kind === 'output') {
    const n = T * B * layerOutputSize(s);
    if (!(sources.dy instanceof Float32Array) || sources.dy.length !== n) {
      throw new ShapeError(`dy must be a Float32Array of T*B*dirs*H = ${n} elements, got ${sources.dy?.length ?? typeof sources.dy}`);
    }
    entries = sources.dy;
  } else if (sources.kind === 'probes') {
    const per = s.numLayers * numDirections(s) * T * B * s.hiddenSize;
    if (!Number.isSafeInteger(sources.count) || sources.count < 1) throw new RangeError(`probe count must be an integer >= 1, got ${sources.count}`);
    if (!(sources.probes instanceof Float32Array) || sources.probes.length !== sources.count * per) {
      throw new ShapeError(`probes must be a Float32Array of count*L*dirs*T*B*H = ${sources.count * per} elements, got ${sources.probes?.length ?? typeof sources.probes}`);
    }
    entries = sources.probes;
    count = sources.count;
  } else if (sources.kind !== 'basis') {
    throw new TypeError(`sources.kind must be 'output', 'probes' or 'basis', got ${String((sources as { kind?: unknown }).kind)}`);
  }
  const args = [
    s.cell,
    s.inputSize,
    s.hiddenSize,
    s.numLayers,
    s.bidirectional,
    s.dropout,
    ...layerRunArgs(req, weights),
    sources.kind,
    entries,
    count,
  ];
  return { s, args };
}

/**
 * The native primitive, on the calling thread. `options` as layerForward's (default: no
 * dropout); with dropout on, the sources go through the same masks as that forward pass.
 */
export function sourceGradientNorms(spec: LayerSpec, weights: LayerWeights, batch: LayerBatch, sources: SourceSpec, options?: LayerForwardOptions): Float64Array {
  const { args } = prepare(spec, weights, batch, sources, options);
  return (addon() as unknown as DiagnosticsAddon).sourceGradientNorms(...args);
}

/** The native primitive on a worker thread (its inputs are copied before it returns the promise). */
export function sourceGradientNormsAsync(spec: LayerSpec, weights: LayerWeights, batch: LayerBatch, sources: SourceSpec, options?: LayerForwardOptions): Promise<Float64Array> {
  const { args } = prepare(spec, weights, batch, sources, options);
  return (addon() as unknown as DiagnosticsAddon).sourceGradientNormsAsync(...args);
}

/**
 * The spectrum of an n x n block, natively in double (engine/diagnostics.cc, the same algorithms
 * as spectral.ts): its eigenvalues and largest singular value.
 */
export function blockSpectrum(block: Float32Array, n: number): { eigenvalues: Eigenvalue[]; singularValue: number } {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`n must be an integer >= 1, got ${String(n)}`);
  if (!(block instanceof Float32Array) || block.length !== n * n) throw new ShapeError(`block must be a Float32Array of n*n = ${n * n} elements, got ${String((block as { length?: unknown })?.length)}`);
  if (!block.every(Number.isFinite)) throw new NonFiniteError('block holds NaN or Infinity');
  const out = (addon() as unknown as DiagnosticsAddon).blockSpectrum(block, n);
  return { eigenvalues: Array.from({ length: n }, (_, i) => ({ re: out[2 * i], im: out[2 * i + 1] })), singularValue: out[2 * n] };
}
