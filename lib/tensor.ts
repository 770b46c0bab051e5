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

/**
 * A tensor's element type: 'float32' (inputs, parameters, states, gradients) or 'int32' (token
 * ids, targets, lengths).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { Tensor, type DType } from 'bptt';
 *
 * const dtype: DType = 'int32';
 * assert.equal(Tensor.zeros([2], dtype).toArray().constructor, Int32Array);
 * ```
 */
export type DType = 'float32' | 'int32';

/**
 * The typed array that holds a tensor's elements: Float32Array for 'float32', Int32Array for
 * 'int32' (what {@link Tensor.toArray} returns and {@link Tensor.write} takes).
 *
 * @example
 * ```ts
 * import { Tensor, type TypedArrayFor } from 'bptt';
 *
 * const t = Tensor.from(Int32Array.of(3, 1, 2), [3]);
 * const ids: TypedArrayFor<'int32'> = t.toArray(); // an Int32Array copy
 * console.log(ids);
 * ```
 */
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

/**
 * A float32 or int32 array of a fixed shape in 64-byte aligned memory owned by V8, which the
 * kernels read in place: the model's parameters, inputs, targets, states and gradients. Shapes
 * are row-major; sequences are time-major ([T, B] token ids, [T, B, D] dense inputs). Up to
 * 2^31 - 1 elements; zero-element tensors are fine.
 *
 * A tensor never hands out its storage: {@link Tensor.toArray} copies and {@link Tensor.write}
 * copies in. {@link Tensor.dispose} frees the memory at once (idempotent; later use throws
 * DisposedError), `using` does it at the end of a scope, and the GC frees what you forget (also
 * inside a synchronous loop). While an asynchronous job (e.g. `trainStepAsync`) uses a tensor,
 * disposing or writing it throws TensorInUseError.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { Tensor } from 'bptt';
 *
 * const x = Tensor.from(Float32Array.of(1, 2, 3, 4, 5, 6), [3, 2]); // [T, B] = [3, 2]
 * assert.deepEqual(x.shape, [3, 2]);
 * assert.equal(x.size, 6);
 * assert.equal(x.dtype, 'float32');
 * assert.equal(x.toArray()[2 * 2 + 1], 6); // element (t = 2, b = 1) at t*B + b
 * x.dispose();
 * ```
 */
export class Tensor<D extends DType = DType> {
  /** The element type. */
  readonly dtype: D;
  /** The sizes of the dimensions, row-major (frozen). */
  readonly shape: readonly number[];
  /** The number of elements: the product of the shape (1 for shape []). */
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

  /**
   * A tensor holding a copy of `data`, whose dtype follows the array type (Float32Array gives
   * float32, Int32Array int32).
   *
   * @throws DTypeError for any other array type; ShapeError when `data.length` is not the
   * shape's element count; RangeError for sizes that are not non-negative integers or whose
   * product exceeds 2^31 - 1, or memory that cannot be allocated (naming the size).
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { Tensor } from 'bptt';
   *
   * const tokens = Tensor.from(Int32Array.of(0, 2, 1, 3), [2, 2]); // int32 [T, B]
   * assert.equal(tokens.dtype, 'int32');
   * assert.throws(() => Tensor.from(new Float32Array(5), [2, 3]), { name: 'ShapeError' });
   * ```
   */
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

  /**
   * A tensor of zeros, float32 unless `dtype` says 'int32'.
   *
   * @throws DTypeError for another dtype; RangeError for a bad shape (see {@link Tensor.from}).
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { Tensor } from 'bptt';
   *
   * const h0 = Tensor.zeros([4, 16]); // a state [B, H] for B = 4, H = 16
   * assert.ok(h0.toArray().every((v) => v === 0));
   * ```
   */
  static zeros(shape: readonly number[], dtype: DType = 'float32'): Tensor {
    if (dtype !== 'float32' && dtype !== 'int32') throw new DTypeError(`dtype must be 'float32' or 'int32', got ${String(dtype)}`);
    return new Tensor(dtype, checkShape(shape));
  }

  /**
   * Standard-normal float32 values, the same for the same seed (default 0) on every platform.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { Tensor } from 'bptt';
   *
   * const a = Tensor.randn([5, 2, 3], { seed: 7 }); // e.g. dense inputs [T, B, D]
   * const b = Tensor.randn([5, 2, 3], { seed: 7 });
   * assert.deepEqual(a.toArray(), b.toArray());
   * ```
   */
  static randn(shape: readonly number[], options: { seed?: number } = {}): Tensor<'float32'> {
    const t = new Tensor('float32', checkShape(shape));
    const rng = new Rng(options.seed ?? 0);
    const v = t.#view!;
    for (let i = 0; i < v.length; i++) v[i] = rng.normal();
    return t;
  }

  /**
   * Whether {@link Tensor.dispose} has freed the memory.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { Tensor } from 'bptt';
   *
   * const t = Tensor.zeros([3]);
   * t.dispose();
   * assert.equal(t.isDisposed, true);
   * assert.throws(() => t.toArray(), { name: 'DisposedError' });
   * ```
   */
  get isDisposed(): boolean {
    return this.#view === null;
  }

  /**
   * A copy of the elements in row-major order; changing it does not change the tensor.
   *
   * @throws DisposedError after {@link Tensor.dispose}.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { Tensor } from 'bptt';
   *
   * const t = Tensor.from(Float32Array.of(1, 2), [2]);
   * const copy = t.toArray();
   * copy[0] = 99;
   * assert.deepEqual(t.toArray(), Float32Array.of(1, 2));
   * ```
   */
  toArray(): TypedArrayFor<D> {
    return this.data().slice() as TypedArrayFor<D>;
  }

  /**
   * Overwrites the elements with a copy of `values` (same dtype and element count).
   *
   * @throws DTypeError for another array type; ShapeError for another length; DisposedError after
   * dispose; TensorInUseError while an asynchronous job uses the tensor.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { Tensor } from 'bptt';
   *
   * const lengths = Tensor.zeros([3], 'int32');
   * lengths.write(Int32Array.of(5, 3, 4));
   * assert.deepEqual(lengths.toArray(), Int32Array.of(5, 3, 4));
   * ```
   */
  write(values: TypedArrayFor<D>): void {
    const view = this.data();
    this.checkWritable();
    if (Object.getPrototypeOf(values) !== Object.getPrototypeOf(view)) {
      throw new DTypeError(`write: tensor is ${this.dtype}, got ${describeValue(values)}`);
    }
    if (values.length !== view.length) throw new ShapeError(`write: tensor has ${view.length} elements, got ${values.length}`);
    view.set(values);
  }

  /**
   * Frees the memory now; idempotent. Later reads and writes throw DisposedError.
   *
   * @throws TensorInUseError while an asynchronous job uses the tensor (nothing is freed).
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { Tensor } from 'bptt';
   *
   * const t = Tensor.zeros([1024, 1024]);
   * t.dispose();
   * t.dispose(); // no-op
   * {
   *   using scoped = Tensor.zeros([8]); // disposed at the end of the block
   *   assert.equal(scoped.size, 8);
   * }
   * ```
   */
  dispose(): void {
    if (this.#view === null) return;
    if (this.#pins > 0) throw new TensorInUseError(`cannot dispose a ${this.describe()} while an asynchronous job uses it`);
    const buffer = this.#buffer!;
    this.#view = null;
    this.#buffer = null;
    if (nativeAvailable()) addon().release(buffer);
  }

  /** Disposes the tensor: what `using t = ...` calls at the end of the scope. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** For messages: e.g. 'Tensor(float32 tensor [2, 3])', with ', disposed' once freed. */
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
