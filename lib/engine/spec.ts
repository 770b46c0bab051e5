/**
 * The recurrent engine's contract: types, the parameter layout, and every validation, shared by
 * the float64 oracle (lib/engine/reference.ts) and the native backend so both accept and refuse
 * exactly the same requests with the same errors.
 *
 * Layout: row-major, time-major, as PyTorch's nn.RNN / nn.LSTM / nn.GRU with batch_first=False.
 * For L layers, dirs = 2 if bidirectional else 1, hidden size H and G gates per cell:
 *   dense input   [T, B, inputSize]       element (t, b, i) at (t*B + b)*inputSize + i
 *   token input   Int32Array [T, B]       ids in [0, inputSize) standing for one-hot vectors
 *   y             [T, B, dirs*H]          direction d of step t in columns [d*H, (d+1)*H)
 *   h0, hT, c0, cT, dh0, ... [L*dirs, B, H]  state of layer l, direction d at index l*dirs + d
 *   weight_ih_l{l}[_reverse] [G*H, layerInputSize(l)], weight_hh [G*H, H], bias_ih, bias_hh [G*H]
 */
import { FloatArray, checkFinite, checkFloatArray, checkIntRange, checkSize, checkedProduct, describeValue, MAX_ELEMENTS } from '../backend';
import { DTypeError, DisposedError, ShapeError } from '../errors';

/**
 * The recurrent cell, as PyTorch defines it: 'tanh' and 'relu' (nn.RNN, h' = act(W_ih x + b_ih +
 * W_hh h + b_hh), 1 gate), 'lstm' (nn.LSTM, gates i, f, g, o, with a cell state c) and 'gru'
 * (nn.GRU, gates r, z, n).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, gatesPerCell, type CellKind } from 'bptt';
 *
 * const cell: CellKind = 'gru';
 * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, cell });
 * assert.deepEqual(rnn.params['rnn.weight_hh_l0'].shape, [gatesPerCell(cell) * 4, 4]);
 * ```
 */
export type CellKind = 'tanh' | 'relu' | 'lstm' | 'gru';

/** What the layout and the validation need to know of a cell; its math is in cells.ts. */
const CELL_LAYOUT: Readonly<Record<CellKind, { gates: number; hasCellState: boolean }>> = {
  tanh: { gates: 1, hasCellState: false },
  relu: { gates: 1, hasCellState: false },
  lstm: { gates: 4, hasCellState: true }, // i, f, g, o
  gru: { gates: 3, hasCellState: false }, // r, z, n
};

/**
 * Every {@link CellKind}: 'tanh', 'relu', 'lstm', 'gru'.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { CELL_KINDS } from 'bptt';
 *
 * assert.deepEqual(CELL_KINDS, ['tanh', 'relu', 'lstm', 'gru']);
 * ```
 */
export const CELL_KINDS = Object.keys(CELL_LAYOUT) as readonly CellKind[];

/**
 * A recurrent stack, as the arguments of PyTorch's nn.RNN / nn.LSTM / nn.GRU (batch_first =
 * false): the layer-level calls ({@link LayerBackend}) and {@link layerParameterShapes} take it.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { layerOutputSize, type LayerSpec } from 'bptt';
 *
 * const spec: LayerSpec = { cell: 'lstm', inputSize: 32, hiddenSize: 64, numLayers: 2, bidirectional: true, dropout: 0.1 };
 * assert.equal(layerOutputSize(spec), 128);
 * ```
 */
export interface LayerSpec {
  /** The cell of every layer. */
  cell: CellKind;
  /** The width of layer 0's input (dense), or the number of token ids. */
  inputSize: number;
  /** H: hidden units per layer and direction. */
  hiddenSize: number;
  /** Default 1. */
  numLayers?: number;
  /** Default false. */
  bidirectional?: boolean;
  /** Dropout probability in [0, 1) on each layer's output that feeds the next layer, in training only. Default 0. */
  dropout?: number;
}

/**
 * A spec after validation, every field present (defaults filled in), frozen: what a
 * {@link SavedForward} records.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { backends, type NormalizedLayerSpec } from 'bptt';
 *
 * const weights = { weight_ih_l0: new Float32Array(2), weight_hh_l0: new Float32Array(4), bias_ih_l0: new Float32Array(2), bias_hh_l0: new Float32Array(2) };
 * const { saved } = backends.reference.layerForward({ cell: 'tanh', inputSize: 1, hiddenSize: 2 }, weights, { steps: 1, batch: 1, input: { kind: 'dense', data: Float32Array.of(1) } });
 * const spec: NormalizedLayerSpec = saved.spec;
 * assert.deepEqual(spec, { cell: 'tanh', inputSize: 1, hiddenSize: 2, numLayers: 1, bidirectional: false, dropout: 0 });
 * ```
 */
export type NormalizedLayerSpec = Readonly<Required<LayerSpec>>;

/**
 * A stack's weights: exactly the names of layerParameterShapes(spec), each a row-major array of
 * its shape's element count (the layout of PyTorch's parameters, without the `rnn.` prefix).
 *
 * @example
 * ```ts
 * import { backends, layerParameterShapes, type LayerWeights } from 'bptt';
 *
 * const spec = { cell: 'gru', inputSize: 4, hiddenSize: 8 } as const;
 * const weights: LayerWeights<Float32Array> = {};
 * for (const [name, shape] of Object.entries(layerParameterShapes(spec))) {
 *   weights[name] = Float32Array.from({ length: shape.reduce((a, b) => a * b) }, (_, i) => Math.cos(i) / 8);
 * }
 * backends.reference.layerForward(spec, weights, { steps: 2, batch: 1, input: { kind: 'tokens', data: Int32Array.of(3, 0) } });
 * ```
 */
export type LayerWeights<A extends FloatArray = FloatArray> = Record<string, A>;

/**
 * A stack's input: dense vectors [T, B, inputSize] or token ids Int32Array [T, B] in
 * [0, inputSize), which stand for one-hot vectors (layer 0 gathers a column of weight_ih).
 *
 * @example
 * ```ts
 * import { type LayerInput } from 'bptt';
 *
 * const dense: LayerInput = { kind: 'dense', data: new Float32Array(10 * 4 * 16) }; // T = 10, B = 4, D = 16
 * const tokens: LayerInput = { kind: 'tokens', data: new Int32Array(10 * 4) };
 * console.log(dense.kind, tokens.kind);
 * ```
 */
export type LayerInput = { kind: 'dense'; data: FloatArray } | { kind: 'tokens'; data: Int32Array };

/**
 * A batch for {@link LayerBackend.layerForward}: T steps of B sequences, time-major, with
 * optional lengths (PyTorch's packed-sequence semantics: steps t >= lengths[b] are padding, not
 * computed, output 0, the state carried through unchanged) and initial states.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { backends, layerParameterShapes, type LayerBatch } from 'bptt';
 *
 * const spec = { cell: 'tanh', inputSize: 3, hiddenSize: 2 } as const;
 * const weights = Object.fromEntries(Object.entries(layerParameterShapes(spec)).map(([name, shape]) => [name, new Float32Array(shape[0] * (shape[1] ?? 1)).fill(0.1)]));
 * const batch: LayerBatch = { steps: 3, batch: 2, input: { kind: 'tokens', data: Int32Array.of(0, 1, 2, 0, 1, 2) }, lengths: Int32Array.of(3, 1) };
 * const { y, hT } = backends.reference.layerForward(spec, weights, batch);
 * assert.deepEqual(Array.from(y.subarray((1 * 2 + 1) * 2, (1 * 2 + 2) * 2)), [0, 0]); // step 1 of sequence 1 is padding
 * assert.deepEqual(Array.from(hT.subarray(2, 4)), Array.from(y.subarray(2, 4))); // its last valid step is step 0
 * ```
 */
export interface LayerBatch {
  steps: number; // T
  batch: number; // B
  input: LayerInput;
  /** Valid steps of each sequence, in [1, T], any order; steps t >= lengths[b] are padding. Default: all T. */
  lengths?: Int32Array | null;
  /** [L*dirs, B, H]; default zeros. */
  h0?: FloatArray | null;
  /** [L*dirs, B, H], LSTM only; default zeros. */
  c0?: FloatArray | null;
}

/**
 * Options of {@link LayerBackend.layerForward}: training mode and the seed of its dropout masks
 * (see {@link dropoutBits}); without dropout, training changes nothing.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { backends, layerParameterShapes, type LayerForwardOptions } from 'bptt';
 *
 * const spec = { cell: 'tanh', inputSize: 2, hiddenSize: 4, numLayers: 2, dropout: 0.5 } as const;
 * const weights = Object.fromEntries(Object.entries(layerParameterShapes(spec)).map(([name, shape]) => [name, new Float32Array(shape[0] * (shape[1] ?? 1)).fill(0.1)]));
 * const batch = { steps: 2, batch: 1, input: { kind: 'dense', data: Float32Array.of(1, 2, 3, 4) } } as const;
 * const options: LayerForwardOptions = { training: true, dropoutSeed: 1234 };
 * const a = backends.reference.layerForward(spec, weights, batch, options);
 * const b = backends.reference.layerForward(spec, weights, batch, options);
 * assert.deepEqual(a.y, b.y); // the same seed draws the same masks
 * assert.throws(() => backends.reference.layerForward(spec, weights, batch, { training: true }), TypeError); // no seed
 * ```
 */
export interface LayerForwardOptions {
  /** Training mode applies dropout between layers. Default false. */
  training?: boolean;
  /** Seed of the dropout masks (see dropout.ts), an integer in [0, 2^32). Required when training with dropout > 0. */
  dropoutSeed?: number;
}

/**
 * What a forward keeps for its backward. Only the backend that made it can use it, only with the
 * same spec, and not after dispose().
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { backends, layerParameterShapes, type SavedForward } from 'bptt';
 *
 * const spec = { cell: 'lstm', inputSize: 2, hiddenSize: 3 } as const;
 * const weights = Object.fromEntries(Object.entries(layerParameterShapes(spec)).map(([name, shape]) => [name, new Float32Array(shape[0] * (shape[1] ?? 1)).fill(0.1)]));
 * const { saved } = backends.native.layerForward(spec, weights, { steps: 4, batch: 2, input: { kind: 'dense', data: new Float32Array(16) } });
 * const handle: SavedForward = saved;
 * assert.equal(handle.backend, 'native');
 * assert.equal(handle.steps, 4);
 * handle.dispose(); // frees its native memory now; idempotent
 * assert.ok(handle.isDisposed);
 * ```
 */
export interface SavedForward {
  /** The name of the backend whose layerForward made it. */
  readonly backend: string;
  /** The spec of that forward; layerBackward must be given the same. */
  readonly spec: NormalizedLayerSpec;
  /** T of that forward. */
  readonly steps: number;
  /** B of that forward. */
  readonly batch: number;
  /** Whether that forward read dense inputs (layerBackward returns dx) or tokens (dx null). */
  readonly inputKind: LayerInput['kind'];
  /** Whether dispose() has freed it. */
  readonly isDisposed: boolean;
  /** Frees what it holds; idempotent. */
  dispose(): void;
  /** Disposes it: what `using` calls at the end of the scope. */
  [Symbol.dispose](): void;
}

/**
 * What {@link LayerBackend.layerForward} returns: the top layer's outputs, every layer's final
 * states, and the handle for the backward.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { backends, layerParameterShapes, type LayerForwardResult } from 'bptt';
 *
 * const spec = { cell: 'lstm', inputSize: 2, hiddenSize: 3, numLayers: 2, bidirectional: true } as const;
 * const weights = Object.fromEntries(Object.entries(layerParameterShapes(spec)).map(([name, shape]) => [name, new Float32Array(shape[0] * (shape[1] ?? 1)).fill(0.1)]));
 * const r: LayerForwardResult = backends.reference.layerForward(spec, weights, { steps: 5, batch: 1, input: { kind: 'dense', data: new Float32Array(10).fill(1) } });
 * assert.equal(r.y.length, 5 * 1 * 2 * 3); // [T, B, dirs*H]
 * assert.equal(r.cT!.length, 2 * 2 * 1 * 3); // [L*dirs, B, H]
 * // The forward direction's final state is its output at the last step:
 * assert.deepEqual(Array.from(r.hT.subarray(2 * 3, 3 * 3)), Array.from(r.y.subarray(4 * 6, 4 * 6 + 3)));
 * ```
 */
export interface LayerForwardResult<A extends FloatArray = FloatArray> {
  /** [T, B, dirs*H], zero at padding. */
  y: A;
  /** `[L*dirs, B, H]`: the state after each sequence's last valid step (step 0 for a reverse direction). */
  hT: A;
  /** [L*dirs, B, H] for an LSTM, else null. */
  cT: A | null;
  /** For {@link LayerBackend.layerBackward}; dispose() it when done. */
  saved: SavedForward;
}

/**
 * The upstream gradients {@link LayerBackend.layerBackward} propagates, and the truncation.
 *
 * @example
 * ```ts
 * import { backends, layerParameterShapes, type LayerBackwardArgs } from 'bptt';
 *
 * const spec = { cell: 'lstm', inputSize: 2, hiddenSize: 3 } as const;
 * const weights = Object.fromEntries(Object.entries(layerParameterShapes(spec)).map(([name, shape]) => [name, new Float32Array(shape[0] * (shape[1] ?? 1)).fill(0.1)]));
 * const { saved } = backends.reference.layerForward(spec, weights, { steps: 4, batch: 1, input: { kind: 'dense', data: new Float32Array(8).fill(1) } });
 * const args: LayerBackwardArgs = { dy: new Float32Array(4 * 3), dhT: new Float32Array(3).fill(1), dcT: null, truncate: 2 };
 * backends.reference.layerBackward(spec, weights, saved, args);
 * ```
 */
export interface LayerBackwardArgs {
  /** Upstream gradient of y, [T, B, dirs*H]; ignored at padding. */
  dy: FloatArray;
  /** Upstream gradient of hT, [L*dirs, B, H]; default zeros. */
  dhT?: FloatArray | null;
  /** Upstream gradient of cT (LSTM only), [L*dirs, B, H]; default zeros. */
  dcT?: FloatArray | null;
  /** Truncated BPTT window k >= 1 (see lib/engine/reference.ts); omitted: full BPTT. */
  truncate?: number | null;
}

/**
 * What {@link LayerBackend.layerBackward} returns: the gradients of the inputs, the initial
 * states and every weight.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { backends, layerParameterShapes, type LayerBackwardResult } from 'bptt';
 *
 * const spec = { cell: 'gru', inputSize: 3, hiddenSize: 2 } as const;
 * const weights = Object.fromEntries(Object.entries(layerParameterShapes(spec)).map(([name, shape]) => [name, new Float32Array(shape[0] * (shape[1] ?? 1)).fill(0.1)]));
 * const { y, saved } = backends.reference.layerForward(spec, weights, { steps: 2, batch: 1, input: { kind: 'tokens', data: Int32Array.of(2, 0) } });
 * const r: LayerBackwardResult = backends.reference.layerBackward(spec, weights, saved, { dy: new Float64Array(y.length).fill(1) });
 * assert.equal(r.dx, null); // token inputs have no gradient
 * assert.equal(r.grads.weight_ih_l0.length, 3 * 2 * 3);
 * ```
 */
export interface LayerBackwardResult<A extends FloatArray = FloatArray> {
  /** [T, B, inputSize] for dense input; null for tokens. */
  dx: A | null;
  /** The gradient of h0, [L*dirs, B, H]. */
  dh0: A;
  /** LSTM only, else null. */
  dc0: A | null;
  /** The gradient of every weight, under the weights' names. */
  grads: LayerWeights<A>;
}

/**
 * The layer-level engine a backend offers (the cuDNN/oneDNN contract): the recurrent stack alone,
 * forward and backward, for libraries that bring their own loss. `backends.native` (float32) and
 * `backends.reference` (float64) implement it and validate every call alike.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { backends, layerParameterShapes, type LayerBackend } from 'bptt';
 *
 * // Loss = 0.5 * sum(y^2), so dL/dy = y: one gradient computation on any backend.
 * function weightGradients(backend: LayerBackend): Record<string, ArrayLike<number>> {
 *   const spec = { cell: 'lstm', inputSize: 2, hiddenSize: 3 } as const;
 *   const weights = Object.fromEntries(Object.entries(layerParameterShapes(spec)).map(([name, shape]) => [name, new Float32Array(shape[0] * (shape[1] ?? 1)).fill(0.1)]));
 *   const { y, saved } = backend.layerForward(spec, weights, { steps: 3, batch: 2, input: { kind: 'dense', data: Float32Array.of(1, 0, 0, 1, 1, 1, 0, 0, 1, -1, -1, 1) } });
 *   const { grads } = backend.layerBackward(spec, weights, saved, { dy: Float32Array.from(y) });
 *   saved.dispose();
 *   return grads;
 * }
 * const native = weightGradients(backends.native);
 * const reference = weightGradients(backends.reference);
 * Array.from(reference.weight_hh_l0).forEach((g, i) => assert.ok(Math.abs(g - native.weight_hh_l0[i]) < 1e-5));
 * ```
 */
export interface LayerBackend<A extends FloatArray = FloatArray> {
  /** 'native' or 'reference'. */
  readonly name: string;
  /**
   * The stack's forward: y [T, B, dirs*H], hT and cT [L*dirs, B, H], and the saved handle.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { backends, layerParameterShapes } from 'bptt';
   *
   * const spec = { cell: 'relu', inputSize: 2, hiddenSize: 2 } as const;
   * const weights = { weight_ih_l0: Float32Array.of(1, 0, 0, 1), weight_hh_l0: new Float32Array(4), bias_ih_l0: new Float32Array(2), bias_hh_l0: new Float32Array(2) };
   * assert.deepEqual(Object.keys(layerParameterShapes(spec)), Object.keys(weights));
   * const { y } = backends.reference.layerForward(spec, weights, { steps: 1, batch: 1, input: { kind: 'dense', data: Float32Array.of(3, -3) } });
   * assert.deepEqual(Array.from(y), [3, 0]); // relu(W_ih x)
   * ```
   */
  layerForward(spec: LayerSpec, weights: LayerWeights, batch: LayerBatch, options?: LayerForwardOptions): LayerForwardResult<A>;
  /**
   * The stack's backward from a saved forward: dx, dh0, dc0 and the weights' gradients.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { backends } from 'bptt';
   *
   * const spec = { cell: 'tanh', inputSize: 1, hiddenSize: 1 } as const;
   * const weights = { weight_ih_l0: Float32Array.of(1), weight_hh_l0: Float32Array.of(0.5), bias_ih_l0: Float32Array.of(0), bias_hh_l0: Float32Array.of(0) };
   * const { saved } = backends.reference.layerForward(spec, weights, { steps: 2, batch: 1, input: { kind: 'dense', data: Float32Array.of(1, 0) } });
   * // Only the last output counts: dL/dy = [0, 1].
   * const { grads } = backends.reference.layerBackward(spec, weights, saved, { dy: Float32Array.of(0, 1) });
   * const s0 = Math.tanh(1);
   * const s1 = Math.tanh(0.5 * s0);
   * assert.ok(Math.abs(grads.weight_hh_l0[0] - (1 - s1 ** 2) * s0) < 1e-12);
   * ```
   */
  layerBackward(spec: LayerSpec, weights: LayerWeights, saved: SavedForward, args: LayerBackwardArgs): LayerBackwardResult<A>;
}

// ---------------------------------------------------------------------------------------------
// Layout helpers

/**
 * G: the gate blocks a cell stacks in its weights' rows (1 for tanh and relu, 4 for LSTM, 3 for
 * GRU), so weight_ih is [G*H, in].
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { gatesPerCell } from 'bptt';
 *
 * assert.deepEqual((['tanh', 'relu', 'lstm', 'gru'] as const).map(gatesPerCell), [1, 1, 4, 3]);
 * ```
 */
export function gatesPerCell(cell: CellKind): number {
  return CELL_LAYOUT[cell].gates;
}

/**
 * Whether the cell carries a cell state c beside h (only the LSTM), i.e. takes c0 and returns cT.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { hasCellState } from 'bptt';
 *
 * assert.equal(hasCellState('lstm'), true);
 * assert.equal(hasCellState('gru'), false);
 * ```
 */
export function hasCellState(cell: CellKind): boolean {
  return CELL_LAYOUT[cell].hasCellState;
}

/**
 * dirs: 2 for a bidirectional stack, else 1.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { numDirections } from 'bptt';
 *
 * assert.equal(numDirections({ bidirectional: true }), 2);
 * assert.equal(numDirections({}), 1);
 * ```
 */
export function numDirections(spec: Pick<LayerSpec, 'bidirectional'>): 1 | 2 {
  return spec.bidirectional ? 2 : 1;
}

/**
 * Width of layer l's input: inputSize for layer 0, dirs*H above.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { layerInputSize } from 'bptt';
 *
 * const spec = { cell: 'gru', inputSize: 10, hiddenSize: 6, numLayers: 3, bidirectional: true } as const;
 * assert.deepEqual([0, 1, 2].map((l) => layerInputSize(spec, l)), [10, 12, 12]);
 * ```
 */
export function layerInputSize(spec: LayerSpec, layer: number): number {
  return layer === 0 ? spec.inputSize : numDirections(spec) * spec.hiddenSize;
}

/**
 * Width of every layer's output, y included: dirs*H.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { layerOutputSize } from 'bptt';
 *
 * assert.equal(layerOutputSize({ cell: 'tanh', inputSize: 4, hiddenSize: 8, bidirectional: true }), 16);
 * ```
 */
export function layerOutputSize(spec: LayerSpec): number {
  return numDirections(spec) * spec.hiddenSize;
}

/**
 * The four parameters of each layer and direction, as PyTorch names them: weight_ih [G*H, in],
 * weight_hh [G*H, H], bias_ih and bias_hh [G*H].
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { parameterName, type ParameterKind } from 'bptt';
 *
 * const kind: ParameterKind = 'bias_hh';
 * assert.equal(parameterName(kind, 0, 1), 'bias_hh_l0_reverse');
 * ```
 */
export type ParameterKind = 'weight_ih' | 'weight_hh' | 'bias_ih' | 'bias_hh';

/**
 * One parameter of a stack, as {@link layerParameterTable} lists it.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { layerParameterTable, type ParameterEntry } from 'bptt';
 *
 * const entry: ParameterEntry = layerParameterTable({ cell: 'lstm', inputSize: 3, hiddenSize: 2 })[1];
 * assert.deepEqual(entry, { name: 'weight_hh_l0', kind: 'weight_hh', layer: 0, direction: 0, shape: [8, 2], size: 16, offset: 24 });
 * ```
 */
export interface ParameterEntry {
  /** PyTorch's name, e.g. 'weight_hh_l1_reverse'. */
  name: string;
  kind: ParameterKind;
  /** 0 for the layer that reads the input. */
  layer: number;
  /** 0 forward, 1 reverse. */
  direction: number;
  /** [G*H, in] for weight_ih, [G*H, H] for weight_hh, [G*H] for the biases. */
  shape: number[];
  /** Elements: the product of the shape. */
  size: number;
  /** Offset of this parameter in all of them concatenated in this order. */
  offset: number;
}

/**
 * PyTorch's name of a parameter: `${kind}_l${layer}`, with `_reverse` for direction 1.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { parameterName } from 'bptt';
 *
 * assert.equal(parameterName('weight_ih', 2, 0), 'weight_ih_l2');
 * assert.equal(parameterName('weight_hh', 0, 1), 'weight_hh_l0_reverse');
 * ```
 */
export function parameterName(kind: ParameterKind, layer: number, direction: number): string {
  return `${kind}_l${layer}${direction === 1 ? '_reverse' : ''}`;
}

/**
 * Every parameter in PyTorch's order (its _flat_weights_names): for each layer, forward then
 * reverse, each with weight_ih, weight_hh, bias_ih, bias_hh. Expects a checked spec.
 * Offsets are those of all parameters concatenated in this order (one flat buffer).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { layerParameterTable } from 'bptt';
 *
 * const table = layerParameterTable({ cell: 'tanh', inputSize: 3, hiddenSize: 2, bidirectional: true });
 * assert.deepEqual(table.map((p) => p.name), [
 *   'weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0',
 *   'weight_ih_l0_reverse', 'weight_hh_l0_reverse', 'bias_ih_l0_reverse', 'bias_hh_l0_reverse',
 * ]);
 * const total = table.reduce((sum, p) => sum + p.size, 0); // one flat buffer of them all
 * assert.equal(table[4].offset, total / 2);
 * ```
 */
export function layerParameterTable(spec: LayerSpec): ParameterEntry[] {
  const H = spec.hiddenSize;
  const GH = gatesPerCell(spec.cell) * H;
  const table: ParameterEntry[] = [];
  let offset = 0;
  for (let layer = 0; layer < (spec.numLayers ?? 1); layer++) {
    for (let direction = 0; direction < numDirections(spec); direction++) {
      const shapes: [ParameterKind, number[]][] = [
        ['weight_ih', [GH, layerInputSize(spec, layer)]],
        ['weight_hh', [GH, H]],
        ['bias_ih', [GH]],
        ['bias_hh', [GH]],
      ];
      for (const [kind, shape] of shapes) {
        const size = shape.reduce((a, b) => a * b, 1);
        table.push({ name: parameterName(kind, layer, direction), kind, layer, direction, shape, size, offset });
        offset += size;
      }
    }
  }
  return table;
}

/**
 * PyTorch's parameter names and shapes, in PyTorch's order (that of nn.LSTM(...).named_parameters()
 * without the module prefix): the `weights` the layer calls take.
 *
 * @throws TypeError or RangeError for an invalid spec (unknown cell, sizes that are not integers
 * >= 1, dropout outside [0, 1), parameters beyond 2^31 - 1 elements).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { layerParameterShapes } from 'bptt';
 *
 * const shapes = layerParameterShapes({ cell: 'lstm', inputSize: 10, hiddenSize: 20, numLayers: 2 });
 * assert.deepEqual(shapes, {
 *   weight_ih_l0: [80, 10], weight_hh_l0: [80, 20], bias_ih_l0: [80], bias_hh_l0: [80],
 *   weight_ih_l1: [80, 20], weight_hh_l1: [80, 20], bias_ih_l1: [80], bias_hh_l1: [80],
 * });
 * ```
 */
export function layerParameterShapes(spec: LayerSpec): Record<string, number[]> {
  const normalized = checkLayerSpec(spec);
  return Object.fromEntries(layerParameterTable(normalized).map((p) => [p.name, p.shape]));
}

// ---------------------------------------------------------------------------------------------
// Validation. Each check throws a typed error saying what was expected and what came; none
// changes anything. `allowF64` lets a backend accept Float64Array besides Float32Array.

export function checkLayerSpec(spec: LayerSpec): NormalizedLayerSpec {
  if (typeof spec !== 'object' || spec === null) throw new TypeError(`spec must be an object { cell, inputSize, hiddenSize, ... }, got ${describeValue(spec)}`);
  if (!Object.prototype.hasOwnProperty.call(CELL_LAYOUT, spec.cell)) {
    throw new TypeError(`spec.cell must be one of ${CELL_KINDS.map((c) => `'${c}'`).join(', ')}, got ${typeof spec.cell === 'string' ? `'${spec.cell}'` : describeValue(spec.cell)}`);
  }
  const inputSize = checkSize('spec.inputSize', spec.inputSize);
  const hiddenSize = checkSize('spec.hiddenSize', spec.hiddenSize);
  const numLayers = checkSize('spec.numLayers', spec.numLayers ?? 1);
  const bidirectional = spec.bidirectional ?? false;
  if (typeof bidirectional !== 'boolean') throw new TypeError(`spec.bidirectional must be a boolean, got ${describeValue(bidirectional)}`);
  const dropout = spec.dropout ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) throw new RangeError(`spec.dropout must be a number in [0, 1), got ${describeValue(dropout)}`);
  const normalized: NormalizedLayerSpec = Object.freeze({ cell: spec.cell, inputSize, hiddenSize, numLayers, bidirectional, dropout });
  checkedProduct('the states h0/hT of one sequence', [numLayers, numDirections(normalized), hiddenSize]);
  const table = layerParameterTable(normalized);
  for (const p of table) checkedProduct(p.name, p.shape);
  const total = table[table.length - 1].offset + table[table.length - 1].size;
  if (total > MAX_ELEMENTS) throw new RangeError(`the ${table.length} parameters would have ${total} elements together, more than the ${MAX_ELEMENTS} allowed`);
  return normalized;
}

function specString(spec: NormalizedLayerSpec): string {
  return `{ cell: '${spec.cell}', inputSize: ${spec.inputSize}, hiddenSize: ${spec.hiddenSize}, numLayers: ${spec.numLayers}, bidirectional: ${spec.bidirectional}, dropout: ${spec.dropout} }`;
}

/** Exactly the names of layerParameterShapes(spec), each of its shape's length, finite. */
export function checkLayerWeights(spec: NormalizedLayerSpec, weights: LayerWeights, allowF64: boolean): void {
  const table = layerParameterTable(spec);
  const expected = () => `expected exactly ${table.map((p) => p.name).join(', ')}`;
  if (typeof weights !== 'object' || weights === null) throw new TypeError(`weights must be an object mapping parameter names to arrays (${expected()}), got ${describeValue(weights)}`);
  const names = new Set(table.map((p) => p.name));
  for (const key of Object.keys(weights)) {
    if (!names.has(key)) throw new TypeError(`weights has an unexpected entry '${key}' for this spec; ${expected()}`);
  }
  for (const p of table) {
    if (!Object.prototype.hasOwnProperty.call(weights, p.name)) throw new TypeError(`weights.${p.name} [${p.shape.join(', ')}] is missing; ${expected()}`);
    checkFinite(`weights.${p.name}`, checkFloatArray(`weights.${p.name} [${p.shape.join(', ')}]`, weights[p.name], p.size, allowF64));
  }
}

/** A batch after checkLayerBatch. lengths is null when every sequence has all T steps. */
export interface NormalizedLayerBatch {
  steps: number;
  batch: number;
  input: LayerInput;
  lengths: Int32Array | null;
  h0: FloatArray | null;
  c0: FloatArray | null;
}

/** A state-shaped array [L*dirs, B, H] (h0, c0, dhT, dcT), optional; `isCellState` for c0 and dcT. */
function checkStateArray(spec: NormalizedLayerSpec, B: number, name: string, value: FloatArray | null | undefined, isCellState: boolean, allowF64: boolean): FloatArray | null {
  if (value === undefined || value === null) return null;
  if (isCellState && !hasCellState(spec.cell)) {
    throw new TypeError(`${name} is only for cell 'lstm' (a '${spec.cell}' cell has no cell state), got ${describeValue(value)}`);
  }
  const shape = [spec.numLayers * numDirections(spec), B, spec.hiddenSize];
  const arr = checkFloatArray(`${name} [L*dirs, B, H] = [${shape.join(', ')}]`, value, checkedProduct(name, shape), allowF64);
  checkFinite(name, arr);
  return arr;
}

export function checkLayerBatch(spec: NormalizedLayerSpec, batch: LayerBatch, allowF64: boolean): NormalizedLayerBatch {
  if (typeof batch !== 'object' || batch === null) throw new TypeError(`batch must be an object { steps, batch, input, lengths?, h0?, c0? }, got ${describeValue(batch)}`);
  const T = checkSize('batch.steps (T)', batch.steps);
  const B = checkSize('batch.batch (B)', batch.batch);
  const H = spec.hiddenSize;
  const dirs = numDirections(spec);
  const input = batch.input;
  if (typeof input !== 'object' || input === null) throw new TypeError(`batch.input must be an object { kind, data }, got ${describeValue(input)}`);
  if (input.kind === 'tokens') {
    if (!(input.data instanceof Int32Array)) throw new DTypeError(`token input must be an Int32Array [T, B], got ${describeValue(input.data)}`);
    const n = checkedProduct('token input', [T, B]);
    if (input.data.length !== n) throw new ShapeError(`token input must have T*B = ${T}*${B} = ${n} elements, got ${input.data.length}`);
    checkIntRange('token input', input.data, 0, spec.inputSize);
  } else if (input.kind === 'dense') {
    const D = spec.inputSize;
    checkFinite('dense input', checkFloatArray(`dense input [T, B, inputSize] = [${T}, ${B}, ${D}]`, input.data, checkedProduct('dense input', [T, B, D]), allowF64));
  } else {
    throw new TypeError(`batch.input.kind must be 'dense' or 'tokens', got ${describeValue((input as { kind: unknown }).kind)}`);
  }
  checkedProduct('y', [T, B, dirs, H]);
  checkedProduct('the gates of one layer and direction', [T, B, gatesPerCell(spec.cell), H]);
  let lengths: Int32Array | null = null;
  if (batch.lengths !== undefined && batch.lengths !== null) {
    if (!(batch.lengths instanceof Int32Array)) throw new DTypeError(`batch.lengths must be an Int32Array [B], got ${describeValue(batch.lengths)}`);
    if (batch.lengths.length !== B) throw new ShapeError(`batch.lengths must have B = ${B} elements, got ${batch.lengths.length}`);
    checkIntRange(`batch.lengths (valid steps in [1, T = ${T}])`, batch.lengths, 1, T + 1);
    lengths = batch.lengths;
  }
  const h0 = checkStateArray(spec, B, 'h0', batch.h0, false, allowF64);
  const c0 = checkStateArray(spec, B, 'c0', batch.c0, true, allowF64);
  return { steps: T, batch: B, input, lengths, h0, c0 };
}

export interface NormalizedLayerForwardOptions {
  training: boolean;
  /** Meaningful only when dropout is active (training and spec.dropout > 0); else 0. */
  dropoutSeed: number;
}

export function checkLayerForwardOptions(spec: NormalizedLayerSpec, options: LayerForwardOptions | undefined): NormalizedLayerForwardOptions {
  const o = options ?? {};
  if (typeof o !== 'object' || o === null) throw new TypeError(`options must be an object { training?, dropoutSeed? }, got ${describeValue(o)}`);
  const training = o.training ?? false;
  if (typeof training !== 'boolean') throw new TypeError(`options.training must be a boolean, got ${describeValue(training)}`);
  const seed = o.dropoutSeed;
  if (seed !== undefined && (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)) {
    throw new RangeError(`options.dropoutSeed must be an integer in [0, 2^32), got ${describeValue(seed)}`);
  }
  const active = dropoutActive(spec, training);
  if (active && seed === undefined) {
    throw new TypeError(`training with dropout ${spec.dropout} needs options.dropoutSeed (an integer in [0, 2^32)) so that its masks are reproducible; got none`);
  }
  return { training, dropoutSeed: active ? (seed as number) : 0 };
}

/** Whether a forward applies dropout between layers: in training, with p > 0 and a layer above the first. */
export function dropoutActive(spec: NormalizedLayerSpec, training: boolean): boolean {
  return training && spec.dropout > 0 && spec.numLayers > 1;
}

export interface LayerForwardRequest {
  spec: NormalizedLayerSpec;
  batch: NormalizedLayerBatch;
  options: NormalizedLayerForwardOptions;
}

/** Everything a layerForward call needs checked, in one call. */
export function checkLayerForwardRequest(spec: LayerSpec, weights: LayerWeights, batch: LayerBatch, options: LayerForwardOptions | undefined, allowF64: boolean): LayerForwardRequest {
  const s = checkLayerSpec(spec);
  checkLayerWeights(s, weights, allowF64);
  const b = checkLayerBatch(s, batch, allowF64);
  return { spec: s, batch: b, options: checkLayerForwardOptions(s, options) };
}

function sameSpec(a: NormalizedLayerSpec, b: NormalizedLayerSpec): boolean {
  return a.cell === b.cell && a.inputSize === b.inputSize && a.hiddenSize === b.hiddenSize && a.numLayers === b.numLayers && a.bidirectional === b.bidirectional && a.dropout === b.dropout;
}

/** The backend a saved handle must belong to: its name, and whether an object really is one of its handles (a name can be forged). */
export interface SavedOwner {
  readonly name: string;
  owns(saved: SavedForward): boolean;
}

/** A saved handle must come from this backend's layerForward, be alive and match the spec. */
export function checkSavedForward(spec: NormalizedLayerSpec, saved: SavedForward, owner: SavedOwner): void {
  if (typeof saved !== 'object' || saved === null || typeof (saved as { backend?: unknown }).backend !== 'string') {
    throw new TypeError(`saved must be the handle a layerForward returned, got ${describeValue(saved)}`);
  }
  if (saved.backend !== owner.name) {
    throw new TypeError(`saved comes from the '${saved.backend}' backend's layerForward; only that backend's layerBackward can use it, not '${owner.name}'`);
  }
  if (!owner.owns(saved)) throw new TypeError(`saved says it comes from the '${owner.name}' backend, but its layerForward did not make it`);
  if (saved.isDisposed) throw new DisposedError('saved was disposed; run layerForward again to get a new one');
  if (!sameSpec(saved.spec, spec)) throw new RangeError(`saved comes from a forward with spec ${specString(saved.spec)}, but layerBackward was given ${specString(spec)}`);
}

export interface NormalizedLayerBackwardArgs {
  dy: FloatArray;
  dhT: FloatArray | null;
  dcT: FloatArray | null;
  /** null: full BPTT. */
  truncate: number | null;
}

export function checkLayerBackwardArgs(spec: NormalizedLayerSpec, saved: SavedForward, args: LayerBackwardArgs, allowF64: boolean): NormalizedLayerBackwardArgs {
  if (typeof args !== 'object' || args === null) throw new TypeError(`layerBackward's last argument must be an object { dy, dhT?, dcT?, truncate? }, got ${describeValue(args)}`);
  const { steps: T, batch: B } = saved;
  const width = layerOutputSize(spec);
  const dy = checkFloatArray(`dy [T, B, dirs*H] = [${T}, ${B}, ${width}]`, args.dy, T * B * width, allowF64);
  checkFinite('dy', dy);
  const dhT = checkStateArray(spec, B, 'dhT', args.dhT, false, allowF64);
  const dcT = checkStateArray(spec, B, 'dcT', args.dcT, true, allowF64);
  const truncate = args.truncate ?? null;
  if (truncate !== null) checkSize('truncate', truncate);
  return { dy, dhT, dcT, truncate };
}

export interface LayerBackwardRequest {
  spec: NormalizedLayerSpec;
  args: NormalizedLayerBackwardArgs;
}

/** Everything a layerBackward call needs checked, in one call. */
export function checkLayerBackwardRequest(spec: LayerSpec, weights: LayerWeights, saved: SavedForward, args: LayerBackwardArgs, owner: SavedOwner, allowF64: boolean): LayerBackwardRequest {
  const s = checkLayerSpec(spec);
  checkSavedForward(s, saved, owner);
  checkLayerWeights(s, weights, allowF64);
  return { spec: s, args: checkLayerBackwardArgs(s, saved, args, allowF64) };
}
