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
 */
export function dropoutBits(seed: number, boundary: number, index: number): number {
  return fmix32(fmix32((seed >>> 0) ^ Math.imul(boundary + 1, 0x9e3779b9)) ^ index);
}

/** floor(p * 2^32): elements whose bits are below it are dropped, so each is kept with probability 1 - p. */
export function dropoutThreshold(p: number): number {
  return Math.floor(p * 2 ** 32);
}

/**
 * The mask of one boundary as the factor each element is multiplied by: 0 (dropped) or
 * 1/(1-p) (kept). `size` = T*B*dirs*H.
 */
export function dropoutScales(seed: number, boundary: number, p: number, size: number): Float64Array {
  const threshold = dropoutThreshold(p);
  const keep = 1 / (1 - p);
  const scales = new Float64Array(size);
  for (let i = 0; i < size; i++) scales[i] = dropoutBits(seed, boundary, i) >= threshold ? keep : 0;
  return scales;
}
