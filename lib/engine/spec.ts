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

export type CellKind = 'tanh' | 'relu' | 'lstm' | 'gru';

/** What the layout and the validation need to know of a cell; its math is in cells.ts. */
const CELL_LAYOUT: Readonly<Record<CellKind, { gates: number; hasCellState: boolean }>> = {
  tanh: { gates: 1, hasCellState: false },
  relu: { gates: 1, hasCellState: false },
  lstm: { gates: 4, hasCellState: true }, // i, f, g, o
  gru: { gates: 3, hasCellState: false }, // r, z, n
};

export const CELL_KINDS = Object.keys(CELL_LAYOUT) as readonly CellKind[];

export interface LayerSpec {
  cell: CellKind;
  inputSize: number;
  hiddenSize: number;
  /** Default 1. */
  numLayers?: number;
  /** Default false. */
  bidirectional?: boolean;
  /** Dropout probability in [0, 1) on each layer's output that feeds the next layer, in training only. Default 0. */
  dropout?: number;
}

/** A spec after checkLayerSpec: every field present. */
export type NormalizedLayerSpec = Readonly<Required<LayerSpec>>;

/** Exactly the names of layerParameterShapes(spec), each a row-major array. */
export type LayerWeights<A extends FloatArray = FloatArray> = Record<string, A>;

export type LayerInput = { kind: 'dense'; data: FloatArray } | { kind: 'tokens'; data: Int32Array };

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

export interface LayerForwardOptions {
  /** Training mode applies dropout between layers. Default false. */
  training?: boolean;
  /** Seed of the dropout masks (see dropout.ts), an integer in [0, 2^32). Required when training with dropout > 0. */
  dropoutSeed?: number;
}

/**
 * What a forward keeps for its backward. Only the backend that made it can use it, only with the
 * same spec, and not after dispose().
 */
export interface SavedForward {
  /** The name of the backend whose layerForward made it. */
  readonly backend: string;
  readonly spec: NormalizedLayerSpec;
  readonly steps: number;
  readonly batch: number;
  readonly inputKind: LayerInput['kind'];
  readonly isDisposed: boolean;
  /** Frees what it holds; idempotent. */
  dispose(): void;
  [Symbol.dispose](): void;
}

export interface LayerForwardResult<A extends FloatArray = FloatArray> {
  /** [T, B, dirs*H], zero at padding. */
  y: A;
  /** [L*dirs, B, H]: the state after each sequence's last valid step (step 0 for a reverse direction). */
  hT: A;
  /** [L*dirs, B, H] for an LSTM, else null. */
  cT: A | null;
  saved: SavedForward;
}

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

export interface LayerBackwardResult<A extends FloatArray = FloatArray> {
  /** [T, B, inputSize] for dense input; null for tokens. */
  dx: A | null;
  dh0: A;
  /** LSTM only, else null. */
  dc0: A | null;
  /** The gradient of every weight, under the weights' names. */
  grads: LayerWeights<A>;
}

/** The layer-level engine a backend offers (the cuDNN/oneDNN contract). */
export interface LayerBackend<A extends FloatArray = FloatArray> {
  readonly name: string;
  layerForward(spec: LayerSpec, weights: LayerWeights, batch: LayerBatch, options?: LayerForwardOptions): LayerForwardResult<A>;
  layerBackward(spec: LayerSpec, weights: LayerWeights, saved: SavedForward, args: LayerBackwardArgs): LayerBackwardResult<A>;
}

// ---------------------------------------------------------------------------------------------
// Layout helpers

export function gatesPerCell(cell: CellKind): number {
  return CELL_LAYOUT[cell].gates;
}

export function hasCellState(cell: CellKind): boolean {
  return CELL_LAYOUT[cell].hasCellState;
}

export function numDirections(spec: Pick<LayerSpec, 'bidirectional'>): 1 | 2 {
  return spec.bidirectional ? 2 : 1;
}

/** Width of layer l's input: inputSize for layer 0, dirs*H above. */
export function layerInputSize(spec: LayerSpec, layer: number): number {
  return layer === 0 ? spec.inputSize : numDirections(spec) * spec.hiddenSize;
}

/** Width of every layer's output, y included: dirs*H. */
export function layerOutputSize(spec: LayerSpec): number {
  return numDirections(spec) * spec.hiddenSize;
}

export type ParameterKind = 'weight_ih' | 'weight_hh' | 'bias_ih' | 'bias_hh';

export interface ParameterEntry {
  /** PyTorch's name, e.g. 'weight_hh_l1_reverse'. */
  name: string;
  kind: ParameterKind;
  layer: number;
  /** 0 forward, 1 reverse. */
  direction: number;
  shape: number[];
  size: number;
  /** Offset of this parameter in all of them concatenated in this order. */
  offset: number;
}

export function parameterName(kind: ParameterKind, layer: number, direction: number): string {
  return `${kind}_l${layer}${direction === 1 ? '_reverse' : ''}`;
}

/**
 * Every parameter in PyTorch's order (its _flat_weights_names): for each layer, forward then
 * reverse, each with weight_ih, weight_hh, bias_ih, bias_hh. Expects a checked spec.
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

/** PyTorch's parameter names and shapes, in PyTorch's order. */
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
