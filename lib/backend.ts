/**
 * The compute-backend contract, in plain typed arrays so other TypeScript libraries can program
 * against it without this package's Tensor class.
 *
 * Layout: row-major, time-major. For T time steps and a batch of B sequences:
 *   token inputs  Int32Array   [T, B]      element (t, b)    at t*B + b
 *   dense inputs  Float32Array [T, B, D]   element (t, b, d) at (t*B + b)*D + d
 *   targets       Int32Array   [T, B]      -1 marks an ignored position
 *   states        [T, B, H], logits [T, B, K], h0 / hT [B, H]
 *   U [H, D], W [H, H], b [H], V [K, H], c [K]
 * Model: s_t = tanh(U x_t + W s_{t-1} + b), z_t = V s_t + c, y_t = softmax(z_t), s_{-1} = h0.
 */
import { DTypeError, NonFiniteError, ShapeError } from './errors';

export type FloatArray = Float32Array | Float64Array;

export interface Dims {
  inputSize: number;
  hiddenSize: number;
  outputSize: number;
}

export interface ParamArrays<A extends FloatArray = FloatArray> {
  U: A;
  W: A;
  b: A;
  V: A;
  c: A;
}

export type ParamName = keyof ParamArrays;
export const PARAM_NAMES: readonly ParamName[] = ['U', 'W', 'b', 'V', 'c'];

export type InputArrays = { kind: 'tokens'; data: Int32Array } | { kind: 'dense'; data: Float32Array };

export interface Sequence {
  steps: number; // T
  batch: number; // B
  input: InputArrays;
}

export type Reduction = 'mean' | 'sum';

export interface ForwardResult<A extends FloatArray = FloatArray> {
  states: A;
  logits: A;
  hT: A;
}

export interface GradientOptions {
  h0?: FloatArray | null;
  /** Each loss term L_t backpropagates through s_t .. s_{t-k+1} only. Omitted: full BPTT. */
  truncate?: number | null;
  /** Cross-entropy averaged over non-ignored positions (default) or summed. */
  reduction?: Reduction;
}

export interface Gradients<A extends FloatArray = FloatArray> extends ParamArrays<A> {
  h0: A;
}

export interface GradientResult<A extends FloatArray = FloatArray> {
  /** 0 when every target is ignored (and then all gradients are zero). */
  loss: number;
  grads: Gradients<A>;
  hT: A;
}

export interface Backend<A extends FloatArray = FloatArray> {
  readonly name: string;
  forward(dims: Dims, params: ParamArrays, seq: Sequence, h0?: FloatArray | null): ForwardResult<A>;
  lossAndGradients(dims: Dims, params: ParamArrays, seq: Sequence, targets: Int32Array, options?: GradientOptions): GradientResult<A>;
}

/** Largest element count of any one array; keeps every index inside int32 and size_t math exact. */
export const MAX_ELEMENTS = 2 ** 31 - 1;

/** A short description of a value for error messages ("Float64Array(12)", "null", ...). */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'object' && value.constructor?.name === 'Tensor') return String(value);
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${(value as unknown as { length: number }).length})`;
  if (Array.isArray(value)) return `Array(${value.length})`;
  return typeof value === 'number' ? String(value) : typeof value;
}

/** The largest finite float32. */
export const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * A non-negative scalar that the float32 kernels receive (a learning rate, a clipping bound):
 * finite, and unchanged in kind by rounding to float32. Values above FLOAT32_MAX would become
 * Infinity there, and positive values below float32's smallest (about 1.4e-45) would become 0,
 * which for a clipping bound silently means "no clipping".
 */
export function checkFloat32Scalar(name: string, value: unknown, allowZero: boolean): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new RangeError(`${name} must be a finite number ${allowZero ? '>= 0' : '> 0'}, got ${describeValue(value)}`);
  }
  const f = Math.fround(value);
  if (!Number.isFinite(f)) throw new RangeError(`${name} = ${value} overflows float32 (largest ${FLOAT32_MAX})`);
  if (value > 0 && f === 0) throw new RangeError(`${name} = ${value} rounds to 0 in float32 (smallest positive ${Math.fround(2 ** -149)})`);
  return value;
}

export function checkSize(name: string, value: unknown, min = 1): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > MAX_ELEMENTS) {
    throw new RangeError(`${name} must be an integer in [${min}, ${MAX_ELEMENTS}], got ${describeValue(value)}`);
  }
  return value;
}

/** Product of sizes, refusing results that would overflow an index. */
export function checkedProduct(what: string, sizes: readonly number[]): number {
  let n = 1;
  for (const s of sizes) {
    n *= s;
    if (n > MAX_ELEMENTS) {
      throw new RangeError(`${what} would have ${sizes.join('*')} elements, more than the ${MAX_ELEMENTS} allowed`);
    }
  }
  return n;
}

export function checkFloatArray(name: string, value: unknown, length: number, allowF64 = true): FloatArray {
  const ok = value instanceof Float32Array || (allowF64 && value instanceof Float64Array);
  if (!ok) throw new DTypeError(`${name} must be a Float32Array${allowF64 ? ' or Float64Array' : ''}, got ${describeValue(value)}`);
  const arr = value as FloatArray;
  if (arr.length !== length) throw new ShapeError(`${name} must have ${length} elements, got ${arr.length}`);
  return arr;
}

export function checkFinite(name: string, arr: FloatArray): void {
  for (let i = 0; i < arr.length; i++) {
    if (!Number.isFinite(arr[i])) throw new NonFiniteError(`${name} must be finite, but element ${i} is ${arr[i]}`);
  }
}

/** Checks ints are in [lo, hi), or equal to `ignore` when given. */
export function checkIntRange(name: string, arr: Int32Array, lo: number, hi: number, ignore?: number): void {
  for (let i = 0; i < arr.length; i++) {
    const v = arr[i];
    if ((v < lo || v >= hi) && v !== ignore) {
      throw new RangeError(`${name}[${i}] = ${v} is outside [${lo}, ${hi})${ignore !== undefined ? ` and is not ${ignore} (ignored)` : ''}`);
    }
  }
}

export function paramShapes(dims: Dims): Record<ParamName, number[]> {
  const { inputSize: D, hiddenSize: H, outputSize: K } = dims;
  return { U: [H, D], W: [H, H], b: [H], V: [K, H], c: [K] };
}

export function checkDims(dims: Dims): Dims {
  if (typeof dims !== 'object' || dims === null) throw new TypeError(`dims must be an object, got ${describeValue(dims)}`);
  checkSize('inputSize', dims.inputSize);
  checkSize('hiddenSize', dims.hiddenSize);
  checkSize('outputSize', dims.outputSize);
  const shapes = paramShapes(dims);
  for (const name of PARAM_NAMES) checkedProduct(`parameter ${name}`, shapes[name]);
  return dims;
}

/** Validates parameters: types, lengths and finiteness. */
export function checkParams(dims: Dims, params: ParamArrays): void {
  if (typeof params !== 'object' || params === null) throw new TypeError(`params must be an object with U, W, b, V, c, got ${describeValue(params)}`);
  const shapes = paramShapes(dims);
  for (const name of PARAM_NAMES) {
    const arr = checkFloatArray(`params.${name} [${shapes[name].join(', ')}]`, params[name], checkedProduct(name, shapes[name]));
    checkFinite(`params.${name}`, arr);
  }
}

/** Validates a sequence batch against the model's input size. */
export function checkSequence(dims: Dims, seq: Sequence): void {
  if (typeof seq !== 'object' || seq === null) throw new TypeError(`sequence must be an object, got ${describeValue(seq)}`);
  const T = checkSize('steps (T)', seq.steps);
  const B = checkSize('batch (B)', seq.batch);
  const input = seq.input;
  if (typeof input !== 'object' || input === null) throw new TypeError(`sequence.input must be an object, got ${describeValue(input)}`);
  if (input.kind === 'tokens') {
    if (!(input.data instanceof Int32Array)) throw new DTypeError(`token inputs must be an Int32Array [T, B], got ${describeValue(input.data)}`);
    const n = checkedProduct('token inputs', [T, B]);
    if (input.data.length !== n) throw new ShapeError(`token inputs must have T*B = ${T}*${B} = ${n} elements, got ${input.data.length}`);
    checkIntRange('token inputs', input.data, 0, dims.inputSize);
  } else if (input.kind === 'dense') {
    if (!(input.data instanceof Float32Array)) throw new DTypeError(`dense inputs must be a Float32Array [T, B, D], got ${describeValue(input.data)}`);
    const n = checkedProduct('dense inputs', [T, B, dims.inputSize]);
    if (input.data.length !== n) throw new ShapeError(`dense inputs must have T*B*D = ${T}*${B}*${dims.inputSize} = ${n} elements, got ${input.data.length}`);
    checkFinite('dense inputs', input.data);
  } else {
    throw new TypeError(`sequence.input.kind must be 'tokens' or 'dense', got ${describeValue((input as { kind: unknown }).kind)}`);
  }
  checkedProduct('states', [T, B, dims.hiddenSize]);
  checkedProduct('logits', [T, B, dims.outputSize]);
}

export function checkTargets(dims: Dims, seq: Sequence, targets: Int32Array): void {
  if (!(targets instanceof Int32Array)) throw new DTypeError(`targets must be an Int32Array [T, B], got ${describeValue(targets)}`);
  const n = seq.steps * seq.batch;
  if (targets.length !== n) throw new ShapeError(`targets must have T*B = ${seq.steps}*${seq.batch} = ${n} elements, got ${targets.length}`);
  checkIntRange('targets', targets, 0, dims.outputSize, -1);
}

export function checkH0(dims: Dims, seq: Sequence, h0: FloatArray | null | undefined): void {
  if (h0 === undefined || h0 === null) return;
  checkFinite('h0', checkFloatArray(`h0 [B, H] = [${seq.batch}, ${dims.hiddenSize}]`, h0, seq.batch * dims.hiddenSize));
}

export interface NormalizedGradientOptions {
  h0: FloatArray | null;
  truncate: number | null;
  reduction: Reduction;
}

export function checkGradientOptions(dims: Dims, seq: Sequence, options: GradientOptions | undefined): NormalizedGradientOptions {
  const o = options ?? {};
  if (typeof o !== 'object' || o === null) throw new TypeError(`options must be an object, got ${describeValue(o)}`);
  checkH0(dims, seq, o.h0);
  const truncate = o.truncate ?? null;
  if (truncate !== null) checkSize('truncate', truncate);
  const reduction = o.reduction ?? 'mean';
  if (reduction !== 'mean' && reduction !== 'sum') throw new TypeError(`reduction must be 'mean' or 'sum', got ${describeValue(reduction)}`);
  return { h0: o.h0 ?? null, truncate, reduction };
}

/** Full validation of a loss-and-gradients request, shared by every backend. */
export function checkGradientRequest(dims: Dims, params: ParamArrays, seq: Sequence, targets: Int32Array, options?: GradientOptions): NormalizedGradientOptions {
  checkDims(dims);
  checkParams(dims, params);
  checkSequence(dims, seq);
  checkTargets(dims, seq, targets);
  return checkGradientOptions(dims, seq, options);
}

export function checkForwardRequest(dims: Dims, params: ParamArrays, seq: Sequence, h0: FloatArray | null | undefined): void {
  checkDims(dims);
  checkParams(dims, params);
  checkSequence(dims, seq);
  checkH0(dims, seq, h0);
}
