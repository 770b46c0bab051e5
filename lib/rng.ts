/**
 * A small, fast, seedable PRNG (xoshiro128**, seeded through splitmix32) so that initialisation,
 * sampling and data order are reproducible across runs, backends and platforms. Its whole state
 * is four uint32 words, which checkpoints save to make resumed runs bit-identical.
 */
/**
 * A seedable pseudo-random generator (xoshiro128**): the same seed gives the same numbers on
 * every platform. The library draws initial weights, samples and data order from it; its state
 * is four uint32 words that checkpoints save.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { Rng } from 'bptt';
 *
 * const a = new Rng(42);
 * const b = new Rng(42);
 * assert.equal(a.next(), b.next());
 * const x = a.uniform(-1, 1);
 * assert.ok(x >= -1 && x < 1);
 * ```
 */
export class Rng {
  #s: Uint32Array;

  /**
   * A generator seeded with `seed` (default 0); nearby seeds give unrelated streams.
   *
   * @throws RangeError unless `seed` is a safe integer.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { Rng } from 'bptt';
   *
   * assert.notEqual(new Rng(1).nextUint32(), new Rng(2).nextUint32());
   * assert.throws(() => new Rng(0.5), RangeError);
   * ```
   */
  constructor(seed = 0) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
    this.#s = new Uint32Array(4);
    // splitmix32 over both halves of the seed spreads nearby seeds far apart
    let x = (seed ^ Math.floor(seed / 2 ** 32)) >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if (this.#s.every((w) => w === 0)) this.#s[0] = 1;
  }

  /**
   * The next uint32, in [0, 2^32).
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { Rng } from 'bptt';
   *
   * const u = new Rng(3).nextUint32();
   * assert.ok(Number.isInteger(u) && u >= 0 && u < 2 ** 32);
   * ```
   */
  nextUint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /**
   * Uniform in [0, 1), with 32 random bits.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { Rng } from 'bptt';
   *
   * const rng = new Rng(5);
   * let sum = 0;
   * for (let i = 0; i < 10000; i++) sum += rng.next();
   * assert.ok(Math.abs(sum / 10000 - 0.5) < 0.02);
   * ```
   */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /**
   * Uniform in [lo, hi).
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { Rng } from 'bptt';
   *
   * const bound = 1 / Math.sqrt(128); // PyTorch's initialisation range for H = 128
   * const w = new Rng(1).uniform(-bound, bound);
   * assert.ok(Math.abs(w) <= bound);
   * ```
   */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /**
   * A uniform integer in [0, n).
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { Rng } from 'bptt';
   *
   * const die = new Rng(9);
   * for (let i = 0; i < 100; i++) assert.ok([0, 1, 2, 3, 4, 5].includes(die.int(6)));
   * ```
   */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /**
   * A standard normal value (Box-Muller; one value per call, so the state stays the four words).
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { Rng } from 'bptt';
   *
   * const rng = new Rng(11);
   * const xs = Array.from({ length: 20000 }, () => rng.normal());
   * const mean = xs.reduce((a, b) => a + b) / xs.length;
   * const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length;
   * assert.ok(Math.abs(mean) < 0.03 && Math.abs(variance - 1) < 0.05);
   * ```
   */
  normal(): number {
    const u = 1 - this.next(); // (0, 1]: log stays finite
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /**
   * A copy of the generator's state (four uint32 words), to save and restore with
   * {@link Rng.setState}.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { Rng } from 'bptt';
   *
   * const rng = new Rng(7);
   * const saved = rng.getState();
   * const first = rng.next();
   * rng.setState(saved);
   * assert.equal(rng.next(), first); // the same draw again
   * ```
   */
  getState(): Uint32Array {
    return this.#s.slice();
  }

  /**
   * Restores a state from {@link Rng.getState} (copied), so the generator continues from there.
   *
   * @throws TypeError unless `state` is a Uint32Array of 4 words.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { Rng } from 'bptt';
   *
   * const a = new Rng(1);
   * a.next();
   * const b = new Rng();
   * b.setState(a.getState());
   * assert.equal(b.nextUint32(), a.nextUint32());
   * assert.throws(() => b.setState(new Uint32Array(3)), TypeError);
   * ```
   */
  setState(state: Uint32Array): void {
    if (!(state instanceof Uint32Array) || state.length !== 4) throw new TypeError('RNG state must be a Uint32Array of 4 words');
    this.#s = state.slice();
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
