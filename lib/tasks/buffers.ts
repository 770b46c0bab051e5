/**
 * Array helpers of the task pipelines. Growable typed arrays for readers that do not know how many values are coming: they double
 * their capacity, so appending n values costs O(n) and the data is held once, compactly, not as
 * arrays of boxed numbers.
 */
import { MAX_ELEMENTS } from '../backend';
import type { Rng } from '../rng';

type TypedArray = Int32Array | Float32Array | Float64Array;
type TypedArrayConstructor<A extends TypedArray> = { new (length: number): A };

export class Growable<A extends TypedArray> {
  private data: A;
  private size = 0;

  constructor(private readonly kind: TypedArrayConstructor<A>, capacity = 1024) {
    this.data = new kind(capacity);
  }

  get length(): number {
    return this.size;
  }

  push(value: number): void {
    if (this.size === this.data.length) this.grow(this.size + 1);
    this.data[this.size++] = value;
  }

  /** Element i, which must be below length. */
  at(i: number): number {
    return this.data[i];
  }

  set(i: number, value: number): void {
    this.data[i] = value;
  }

  /** The values, trimmed to length (a copy; the builder can be dropped afterwards). */
  toArray(): A {
    return this.data.slice(0, this.size) as A;
  }

  private grow(needed: number): void {
    if (needed > MAX_ELEMENTS) throw new RangeError(`more than ${MAX_ELEMENTS} values: too many to index`);
    const next = new this.kind(Math.min(MAX_ELEMENTS, Math.max(needed, this.data.length * 2)));
    next.set(this.data);
    this.data = next;
  }
}

/** A seeded Fisher-Yates shuffle in place. */
export function shuffleInPlace(a: Int32Array, rng: Rng): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}
