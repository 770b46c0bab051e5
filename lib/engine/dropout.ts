/**
 * The dropout masks between stacked layers, defined bit for bit so every backend draws the same
 * ones from the same seed (the native engine mirrors these functions exactly). The boundary after
 * layer l (l = 0 .. L-2) masks that layer's output Y_l [T, B, dirs*H]: flat element i is kept iff
 * dropoutBits(seed, l, i) >= dropoutThreshold(p), and kept values are scaled by 1/(1-p).
 * A counter-based hash rather than a sequential generator: any element's bit can be computed on
 * its own, in any order, on any thread.
 */

/** MurmurHash3's 32-bit finalizer. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The uint32 drawn for element `index` (< 2^31) of the boundary after layer `boundary`:
 * fmix32(fmix32(seed ^ imul(boundary + 1, 0x9e3779b9)) ^ index), in 32-bit unsigned arithmetic.
 * Element i of layer l's output Y_l [T, B, dirs*H] (flat index) is kept iff its bits are >=
 * dropoutThreshold(p); every backend draws these same masks from the same seed.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { dropoutBits, dropoutThreshold } from 'bptt';
 *
 * const seed = 99;
 * const kept = Array.from({ length: 10000 }, (_, i) => dropoutBits(seed, 0, i) >= dropoutThreshold(0.25)).filter(Boolean).length;
 * assert.ok(Math.abs(kept / 10000 - 0.75) < 0.02);
 * assert.equal(dropoutBits(seed, 0, 7), dropoutBits(seed, 0, 7)); // any element, any order
 * ```
 */
export function dropoutBits(seed: number, boundary: number, index: number): number {
  return fmix32(fmix32((seed >>> 0) ^ Math.imul(boundary + 1, 0x9e3779b9)) ^ index);
}

/**
 * floor(p * 2^32): elements whose bits are below it are dropped, so each is kept with probability 1 - p.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { dropoutThreshold } from 'bptt';
 *
 * assert.equal(dropoutThreshold(0), 0); // nothing dropped
 * assert.equal(dropoutThreshold(0.5), 2 ** 31);
 * ```
 */
export function dropoutThreshold(p: number): number {
  return Math.floor(p * 2 ** 32);
}

/**
 * The mask of one boundary as the factor each element is multiplied by: 0 (dropped) or
 * 1/(1-p) (kept). `size` = T*B*dirs*H.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { dropoutScales } from 'bptt';
 *
 * const scales = dropoutScales(1, 0, 0.5, 8); // seed 1, after layer 0, p = 0.5, 8 elements
 * assert.ok(scales.every((s) => s === 0 || s === 2));
 * ```
 */
export function dropoutScales(seed: number, boundary: number, p: number, size: number): Float64Array {
  const threshold = dropoutThreshold(p);
  const keep = 1 / (1 - p);
  const scales = new Float64Array(size);
  for (let i = 0; i < size; i++) scales[i] = dropoutBits(seed, boundary, i) >= threshold ? keep : 0;
  return scales;
}
