/**
 * The baselines a model must beat: what a forecast, a classifier or a language model scores
 * without learning anything from the sequence.
 */
import { checkSize } from '../backend';

/**
 * The most frequent class of the training labels (the lowest id on ties): the majority-class
 * classifier, which predicts it for every example.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { majorityClass } from 'bptt';
 *
 * assert.equal(majorityClass([2, 1, 2, 1, 0], 3), 1); // classes 1 and 2 twice each: the lower id
 * assert.equal(majorityClass(Int32Array.of(2, 2, 0), 3), 2);
 * ```
 */
export function majorityClass(trainLabels: ArrayLike<number>, numClasses: number): number {
  const K = checkSize('numClasses', numClasses);
  if (trainLabels.length === 0) throw new RangeError('the majority class of no labels is undefined');
  const counts = new Float64Array(K);
  for (let i = 0; i < trainLabels.length; i++) {
    const l = trainLabels[i];
    if (!Number.isInteger(l) || l < 0 || l >= K) throw new RangeError(`trainLabels[${i}] = ${l} is outside [0, ${K})`);
    counts[l]++;
  }
  let best = 0;
  for (let k = 1; k < K; k++) if (counts[k] > counts[best]) best = k;
  return best;
}

/**
 * The seasonal-naive forecasts of windows with these origins, [H, N] time-major: step h ahead
 * (h = 1..H) of the window at origin o is y[o + h - 1 - m * ceil(h / m)], the latest observed value
 * at the same point of the season. With m = 1 this is the naive forecast: y[o - 1] for every h.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { seasonalNaiveForecasts } from 'bptt';
 *
 * const y = [10, 20, 30, 11, 21, 31, 12, 22, 32]; // a season of 3
 * const f = seasonalNaiveForecasts(y, [6, 7], 4, 3); // [H = 4, N = 2]
 * // Origin 6: y[3], y[4], y[5], then y[3] again; origin 7: y[4], y[5], y[6], y[4].
 * assert.deepEqual(Array.from(f), [11, 21, 21, 31, 31, 12, 11, 21]);
 * ```
 */
export function seasonalNaiveForecasts(series: ArrayLike<number>, origins: ArrayLike<number>, horizon: number, season = 1): Float64Array {
  const H = checkSize('horizon', horizon);
  const m = checkSize('season', season);
  const N = origins.length;
  const out = new Float64Array(H * N);
  for (let n = 0; n < N; n++) {
    const o = origins[n];
    if (!Number.isInteger(o) || o < m || o > series.length) throw new RangeError(`origins[${n}] = ${o} must be an integer in [season = ${m}, ${series.length}]`);
    for (let h = 1; h <= H; h++) out[(h - 1) * N + n] = series[o + h - 1 - m * Math.ceil(h / m)];
  }
  return out;
}

/**
 * The naive (last value) forecasts, [H, N] time-major: y[o - 1] for every step ahead of the window
 * at origin o.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { naiveForecasts } from 'bptt';
 *
 * const y = [3, 5, 4, 6];
 * assert.deepEqual(Array.from(naiveForecasts(y, [2, 3], 2)), [5, 4, 5, 4]); // steps 1 and 2 ahead of origins 2 and 3
 * ```
 */
export function naiveForecasts(series: ArrayLike<number>, origins: ArrayLike<number>, horizon: number): Float64Array {
  return seasonalNaiveForecasts(series, origins, horizon, 1);
}

/**
 * Mean cross-entropy (nats per token) on `evalTokens` of the unigram model of `trainTokens`, with
 * add-one smoothing so a token unseen in training costs a finite amount: the language model that
 * ignores all context. Token ids must be in [0, vocabSize).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { unigramLoss } from 'bptt';
 *
 * // Counts + 1 over V = 3: token 0 has 2 + 1, token 1 has 1 + 1, token 2 has 0 + 1, out of 3 + 3.
 * const loss = unigramLoss([0, 0, 1], [0, 2], 3);
 * assert.ok(Math.abs(loss - (Math.log(6 / 3) + Math.log(6 / 1)) / 2) < 1e-12);
 * ```
 */
export function unigramLoss(trainTokens: ArrayLike<number>, evalTokens: ArrayLike<number>, vocabSize: number): number {
  const V = checkSize('vocabSize', vocabSize);
  if (evalTokens.length === 0) throw new RangeError('no tokens to evaluate');
  const counts = new Float64Array(V).fill(1);
  const check = (ids: ArrayLike<number>, name: string) => {
    for (let i = 0; i < ids.length; i++) if (!Number.isInteger(ids[i]) || ids[i] < 0 || ids[i] >= V) throw new RangeError(`${name}[${i}] = ${ids[i]} is outside [0, ${V})`);
  };
  check(trainTokens, 'trainTokens');
  check(evalTokens, 'evalTokens');
  for (let i = 0; i < trainTokens.length; i++) counts[trainTokens[i]]++;
  const logTotal = Math.log(trainTokens.length + V);
  let sum = 0;
  for (let i = 0; i < evalTokens.length; i++) sum += logTotal - Math.log(counts[evalTokens[i]]);
  return sum / evalTokens.length;
}
