/**
 * A small, fast, seedable PRNG (xoshiro128**, seeded through splitmix32) so that initialisation,
 * sampling and data order are reproducible across runs, backends and platforms. Its whole state
 * is four uint32 words, which checkpoints save to make resumed runs bit-identical.
 */
export class Rng {
  #s: Uint32Array;

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

  /** Next uint32. */
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

  /** Uniform in [0, 1) with 32 random bits. */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box-Muller; one value per call, for a simple serializable state). */
  normal(): number {
    const u = 1 - this.next(); // (0, 1]: log stays finite
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** The generator's state, to save and restore. */
  getState(): Uint32Array {
    return this.#s.slice();
  }

  setState(state: Uint32Array): void {
    if (!(state instanceof Uint32Array) || state.length !== 4) throw new TypeError('RNG state must be a Uint32Array of 4 words');
    this.#s = state.slice();
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
