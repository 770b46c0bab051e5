/**
 * Safe tensor handles over 64-byte aligned memory.
 *
 * The data lives in an ArrayBuffer the addon allocates (V8-owned memory at an aligned offset), so
 * kernels read it in place. A Tensor never hands out its storage: toArray() copies. dispose()
 * frees the memory at once; a forgotten tensor is freed by the GC, inside a synchronous loop too.
 * While an asynchronous job uses a tensor it is pinned: dispose() and writes throw
 * TensorInUseError instead of racing the native thread.
 */
import { checkedProduct, describeValue } from './backend';
import { DisposedError, DTypeError, ShapeError, TensorInUseError } from './errors';
import { addon, nativeAvailable } from './native';
import { Rng } from './rng';

export type DType = 'float32' | 'int32';
export type TypedArrayFor<D extends DType> = D extends 'float32' ? Float32Array : Int32Array;

/** `bytes` zeroed bytes, 64-byte aligned (their byteOffset into a buffer of their own). */
function allocateBytes(bytes: number): ArrayBufferView {
  // Falls back to JS memory where the addon cannot load (the reference backend still works).
  return nativeAvailable() ? (addon().allocate(bytes) as DataView) : new DataView(new ArrayBuffer(bytes));
}

function checkShape(shape: unknown): number[] {
  if (!Array.isArray(shape)) throw new TypeError(`shape must be an array of sizes, got ${typeof shape}`);
  for (const s of shape) {
    if (typeof s !== 'number' || !Number.isInteger(s) || s < 0) {
      throw new RangeError(`shape [${shape.join(', ')}] must hold non-negative integers`);
    }
  }
  checkedProduct(`a tensor of shape [${shape.join(', ')}]`, shape as number[]);
  return [...(shape as number[])];
}

export class Tensor<D extends DType = DType> {
  readonly dtype: D;
  readonly shape: readonly number[];
  readonly size: number;
  #buffer: ArrayBuffer | null;
  #view: TypedArrayFor<D> | null;
  #pins = 0;

  private constructor(dtype: D, shape: number[]) {
    this.dtype = dtype;
    this.shape = Object.freeze(shape);
    this.size = shape.reduce((a, b) => a * b, 1);
    const bytesPer = 4;
    const block = allocateBytes(this.size * bytesPer);
    this.#buffer = block.buffer as ArrayBuffer;
    this.#view = (dtype === 'float32' ? new Float32Array(this.#buffer, block.byteOffset, this.size) : new Int32Array(this.#buffer, block.byteOffset, this.size)) as TypedArrayFor<D>;
  }

  /** A tensor holding a copy of `data`, whose dtype follows the array type. */
  static from(data: Float32Array, shape: readonly number[]): Tensor<'float32'>;
  static from(data: Int32Array, shape: readonly number[]): Tensor<'int32'>;
  static from(data: Float32Array | Int32Array, shape: readonly number[]): Tensor;
  static from(data: Float32Array | Int32Array, shape: readonly number[]): Tensor {
    let dtype: DType;
    if (data instanceof Float32Array) dtype = 'float32';
    else if (data instanceof Int32Array) dtype = 'int32';
    else throw new DTypeError(`Tensor.from needs a Float32Array or Int32Array, got ${describeValue(data)}`);
    const dims = checkShape(shape);
    const n = dims.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new ShapeError(`Tensor.from: shape [${dims.join(', ')}] needs ${n} elements, got ${data.length}`);
    const t = new Tensor(dtype, dims);
    t.#view!.set(data);
    return t;
  }

  static zeros(shape: readonly number[], dtype: DType = 'float32'): Tensor {
    if (dtype !== 'float32' && dtype !== 'int32') throw new DTypeError(`dtype must be 'float32' or 'int32', got ${String(dtype)}`);
    return new Tensor(dtype, checkShape(shape));
  }

  /** Standard-normal float32 values, reproducible from the seed. */
  static randn(shape: readonly number[], options: { seed?: number } = {}): Tensor<'float32'> {
    const t = new Tensor('float32', checkShape(shape));
    const rng = new Rng(options.seed ?? 0);
    const v = t.#view!;
    for (let i = 0; i < v.length; i++) v[i] = rng.normal();
    return t;
  }

  get isDisposed(): boolean {
    return this.#view === null;
  }

  /** A copy of the data. */
  toArray(): TypedArrayFor<D> {
    return this.data().slice() as TypedArrayFor<D>;
  }

  /** Overwrites the data with a copy of `values` (same dtype and element count). */
  write(values: TypedArrayFor<D>): void {
    const view = this.data();
    this.checkWritable();
    if (Object.getPrototypeOf(values) !== Object.getPrototypeOf(view)) {
      throw new DTypeError(`write: tensor is ${this.dtype}, got ${describeValue(values)}`);
    }
    if (values.length !== view.length) throw new ShapeError(`write: tensor has ${view.length} elements, got ${values.length}`);
    view.set(values);
  }

  /** Frees the memory now. Idempotent. */
  dispose(): void {
    if (this.#view === null) return;
    if (this.#pins > 0) throw new TensorInUseError(`cannot dispose a ${this.describe()} while an asynchronous job uses it`);
    const buffer = this.#buffer!;
    this.#view = null;
    this.#buffer = null;
    if (nativeAvailable()) addon().release(buffer);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    return `Tensor(${this.describe()}${this.isDisposed ? ', disposed' : ''})`;
  }

  /**
   * The live view of the storage, for backends (not for users: it is invalid after dispose and
   * must not be written while pinned). Throws DisposedError.
   * @internal
   */
  data(): TypedArrayFor<D> {
    if (this.#view === null) throw new DisposedError(`this ${this.describe()} was disposed`);
    return this.#view;
  }

  /** @internal */
  pin(): void {
    this.data();
    this.#pins++;
  }

  /** @internal */
  unpin(): void {
    this.#pins--;
  }

  /** @internal Throws if an asynchronous job holds this tensor. */
  checkWritable(): void {
    if (this.#pins > 0) throw new TensorInUseError(`cannot write a ${this.describe()} while an asynchronous job uses it`);
  }

  private describe(): string {
    return `${this.dtype} tensor [${this.shape.join(', ')}]`;
  }
}
