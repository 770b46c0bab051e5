/**
 * Evaluation metrics, in float64 over plain arrays.
 *
 * Language models: mean cross-entropy in nats per token, perplexity exp(loss), bits per token
 * loss / ln 2 (bits per character for a character model).
 *
 * Classification: accuracy; per class precision tp / (tp + fp), recall tp / (tp + fn) and F1
 * 2pr / (p + r), each 0 when its denominator is; macro-F1 the mean F1 over the classes that occur
 * among the labels or the predictions (scikit-learn's default); the confusion matrix [K, K] with
 * row = true class, column = predicted class.
 *
 * Forecasting, over every (window, step ahead) pair: MAE, RMSE, and MASE = MAE / scale, where
 * scale is the in-sample MAE of the seasonal-naive forecast on the training part:
 * mean over t in [m, n) of |y_t - y_{t-m}|, m the season (m = 1 gives the naive forecast's, for
 * series without a season). This is the M4 competition's definition: the seasonal-naive error is
 * the bar a seasonal series' forecast must clear, and the training part fixes one scale that every
 * model, baseline and held-out part is measured on. MASE < 1: better than that in-sample benchmark.
 */
import { NonFiniteError } from '../errors';
import { checkSize, describeValue } from '../backend';

/**
 * A language model's score: mean cross-entropy in nats per token, and the same as perplexity and
 * bits per token.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { languageModelMetrics, type LanguageModelMetrics } from 'bptt';
 *
 * const m: LanguageModelMetrics = languageModelMetrics(Math.LN2, 1000); // one bit per token
 * assert.equal(m.perplexity, 2);
 * assert.equal(m.bitsPerToken, 1);
 * assert.equal(m.tokens, 1000);
 * ```
 */
export interface LanguageModelMetrics {
  /** Mean cross-entropy per token, nats. */
  loss: number;
  perplexity: number;
  /** loss / ln 2: bits per character for a character-level model. */
  bitsPerToken: number;
  tokens: number;
}

/**
 * The metrics of a mean loss in nats over `tokens` predicted tokens (what {@link evaluate}
 * returns): perplexity exp(loss), bits per token loss / ln 2.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { languageModelMetrics } from 'bptt';
 *
 * // A model that spreads its probability evenly over 27 characters: loss ln 27.
 * const m = languageModelMetrics(Math.log(27), 500);
 * assert.ok(Math.abs(m.perplexity - 27) < 1e-12);
 * assert.ok(Math.abs(m.bitsPerToken - Math.log2(27)) < 1e-12); // 4.75 bits per character
 * assert.throws(() => languageModelMetrics(NaN, 500), RangeError);
 * ```
 */
export function languageModelMetrics(loss: number, tokens: number): LanguageModelMetrics {
  if (typeof loss !== 'number' || !Number.isFinite(loss) || loss < 0) throw new RangeError(`loss must be a finite number >= 0 (mean nats per token), got ${describeValue(loss)}`);
  checkSize('tokens', tokens);
  return { loss, perplexity: Math.exp(loss), bitsPerToken: loss / Math.LN2, tokens };
}

/**
 * One class's scores: precision tp / (tp + fp), recall tp / (tp + fn), F1 their harmonic mean
 * (each 0 when its denominator is), and the class's count among the labels.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { classificationMetrics, type ClassMetrics } from 'bptt';
 *
 * // Class 1: predicted 3 times, right twice (tp 2, fp 1); 2 examples, both found (fn 0).
 * const one: ClassMetrics = classificationMetrics([0, 0, 1, 1], [0, 1, 1, 1], 2).perClass[1];
 * assert.deepEqual(one, { precision: 2 / 3, recall: 1, f1: 0.8, support: 2 }); // 2 * (2/3) * 1 / (2/3 + 1) = 0.8
 * ```
 */
export interface ClassMetrics {
  precision: number;
  recall: number;
  f1: number;
  /** Examples of this class. */
  support: number;
}

/**
 * A classifier's scores over a set of examples: accuracy, macro-F1, per-class scores and the
 * confusion matrix.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { classificationMetrics, type ClassificationMetrics } from 'bptt';
 *
 * const m: ClassificationMetrics = classificationMetrics([0, 0, 1, 1], [0, 1, 1, 1], 2);
 * assert.equal(m.accuracy, 3 / 4);
 * assert.equal(m.macroF1, (2 / 3 + 0.8) / 2); // F1 of class 0: p 1, r 1/2; of class 1: p 2/3, r 1
 * assert.deepEqual(Array.from(m.confusion), [1, 1, 0, 2]);
 * ```
 */
export interface ClassificationMetrics {
  count: number;
  accuracy: number;
  macroF1: number;
  perClass: ClassMetrics[];
  /** The confusion matrix, [K, K] row-major: confusion[t * K + p] counts examples of class t predicted as p. */
  confusion: Int32Array;
  numClasses: number;
}

/**
 * The confusion matrix [K, K], row-major: entry [t, p] counts the examples of true class t
 * predicted as p. A class id outside [0, K) is a RangeError.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { confusionMatrix } from 'bptt';
 *
 * const m = confusionMatrix([0, 0, 1, 2], [0, 2, 1, 2], 3);
 * assert.deepEqual(Array.from(m), [
 *   1, 0, 1, // class 0: once right, once taken for 2
 *   0, 1, 0,
 *   0, 0, 1,
 * ]);
 * assert.throws(() => confusionMatrix([0], [3], 3), /predictions\[0\] = 3 is outside \[0, 3\)/);
 * ```
 */
export function confusionMatrix(labels: ArrayLike<number>, predictions: ArrayLike<number>, numClasses: number): Int32Array {
  const K = checkSize('numClasses', numClasses);
  if (labels.length !== predictions.length) throw new RangeError(`labels and predictions must have one length, got ${labels.length} and ${predictions.length}`);
  if (labels.length === 0) throw new RangeError('no examples to evaluate');
  const m = new Int32Array(K * K);
  for (let i = 0; i < labels.length; i++) {
    const t = labels[i];
    const p = predictions[i];
    if (!Number.isInteger(t) || t < 0 || t >= K) throw new RangeError(`labels[${i}] = ${t} is outside [0, ${K})`);
    if (!Number.isInteger(p) || p < 0 || p >= K) throw new RangeError(`predictions[${i}] = ${p} is outside [0, ${K})`);
    m[t * K + p]++;
  }
  return m;
}

/**
 * Accuracy, per-class precision, recall and F1, macro-F1 and the confusion matrix of predicted
 * class ids against true ones (see the module comment for the definitions). Macro-F1 averages over
 * the classes that occur among the labels or the predictions, as scikit-learn does.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { classificationMetrics } from 'bptt';
 *
 * // K = 3, but class 2 occurs neither as a label nor as a prediction: macro-F1 is over classes 0 and 1.
 * const m = classificationMetrics([0, 0, 1, 1], [0, 1, 1, 1], 3);
 * assert.equal(m.macroF1, (2 / 3 + 0.8) / 2);
 * assert.deepEqual(m.perClass[2], { precision: 0, recall: 0, f1: 0, support: 0 });
 * assert.equal(m.count, 4);
 * ```
 */
export function classificationMetrics(labels: ArrayLike<number>, predictions: ArrayLike<number>, numClasses: number): ClassificationMetrics {
  const confusion = confusionMatrix(labels, predictions, numClasses);
  const K = numClasses;
  let correct = 0;
  let f1Sum = 0;
  let present = 0;
  const perClass: ClassMetrics[] = [];
  for (let k = 0; k < K; k++) {
    const tp = confusion[k * K + k];
    let support = 0;
    let predicted = 0;
    for (let j = 0; j < K; j++) {
      support += confusion[k * K + j];
      predicted += confusion[j * K + k];
    }
    const precision = predicted > 0 ? tp / predicted : 0;
    const recall = support > 0 ? tp / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    perClass.push({ precision, recall, f1, support });
    correct += tp;
    if (support > 0 || predicted > 0) {
      f1Sum += f1;
      present++;
    }
  }
  return { count: labels.length, accuracy: correct / labels.length, macroF1: f1Sum / present, perClass, confusion, numClasses: K };
}

/**
 * The highest-scoring class of each row of scores [N, K] (the first on ties): class ids from a
 * classifier's probabilities or logits. A NaN score is a NonFiniteError.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { argmaxRows } from 'bptt';
 *
 * const probabilities = Float32Array.of(0.1, 0.7, 0.2, 0.4, 0.4, 0.2); // [N = 2, K = 3]
 * assert.deepEqual(Array.from(argmaxRows(probabilities, 3)), [1, 0]); // row 1: a tie, the first wins
 * ```
 */
export function argmaxRows(scores: ArrayLike<number>, numClasses: number): Int32Array {
  const K = checkSize('numClasses', numClasses);
  if (scores.length % K !== 0) throw new RangeError(`scores must hold N * ${K} values, got ${scores.length}`);
  const out = new Int32Array(scores.length / K);
  for (let n = 0; n < out.length; n++) {
    let best = 0;
    for (let k = 0; k < K; k++) {
      const v = scores[n * K + k];
      if (Number.isNaN(v)) throw new NonFiniteError(`scores row ${n} has NaN at class ${k}`);
      if (v > scores[n * K + best]) best = k;
    }
    out[n] = best;
  }
  return out;
}

/**
 * Forecast errors in the series' units: MAE, RMSE, and MASE, the MAE over the in-sample
 * seasonal-naive MAE of the training part ({@link seasonalScale}).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { forecastErrors, type ForecastErrors } from 'bptt';
 *
 * const e: ForecastErrors = forecastErrors([10, 20], [12, 20], 4); // errors 2 and 0
 * assert.deepEqual(e, { mae: 1, rmse: Math.sqrt(2), mase: 0.25 });
 * assert.equal(forecastErrors([10, 20], [12, 20], 0).mase, null); // no scale: MASE is undefined
 * ```
 */
export interface ForecastErrors {
  mae: number;
  rmse: number;
  /** MAE / scale; null when the scale is 0 (a training part with no seasonal change), where MASE is undefined. */
  mase: number | null;
}

/**
 * MAE, RMSE and MASE (MAE / scale) of forecasts against the actual values, over every value
 * given (each window and step ahead). A non-finite forecast is a NonFiniteError.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { forecastErrors, seasonalScale } from 'bptt';
 *
 * const history = [5, 7, 6, 8]; // the training part: naive errors 2, 1, 2, so scale 5 / 3
 * const e = forecastErrors([9, 10, 8], [8, 10, 10], seasonalScale(history, 1)); // errors 1, 0, 2
 * assert.equal(e.mae, 1);
 * assert.equal(e.rmse, Math.sqrt(5 / 3));
 * assert.ok(Math.abs((e.mase as number) - 0.6) < 1e-12); // 1 / (5 / 3)
 * ```
 */
export function forecastErrors(actual: ArrayLike<number>, predicted: ArrayLike<number>, scale: number): ForecastErrors {
  if (actual.length !== predicted.length) throw new RangeError(`actual and predicted must have one length, got ${actual.length} and ${predicted.length}`);
  if (actual.length === 0) throw new RangeError('no forecasts to evaluate');
  if (typeof scale !== 'number' || !(scale >= 0) || !Number.isFinite(scale)) throw new RangeError(`scale must be a finite number >= 0, got ${describeValue(scale)}`);
  let abs = 0;
  let sq = 0;
  for (let i = 0; i < actual.length; i++) {
    const e = predicted[i] - actual[i];
    if (!Number.isFinite(e)) throw new NonFiniteError(`forecast ${i}: predicted ${predicted[i]}, actual ${actual[i]}: not finite`);
    abs += Math.abs(e);
    sq += e * e;
  }
  const mae = abs / actual.length;
  return { mae, rmse: Math.sqrt(sq / actual.length), mase: scale > 0 ? mae / scale : null };
}

/**
 * MASE's denominator: mean over t in [m, n) of |y_t - y_{t-m}|, the in-sample seasonal-naive MAE
 * of a history (the training part), m the season. It needs more than m values.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { seasonalScale } from 'bptt';
 *
 * const history = [1, 2, 3, 1, 2, 4];
 * assert.equal(seasonalScale(history, 3), 1 / 3); // |1 - 1|, |2 - 2|, |4 - 3|
 * assert.equal(seasonalScale(history, 1), 7 / 5); // 1, 1, 2, 1, 2
 * assert.throws(() => seasonalScale([1, 2, 3], 3), RangeError);
 * ```
 */
export function seasonalScale(history: ArrayLike<number>, season: number): number {
  const m = checkSize('season', season);
  if (history.length <= m) throw new RangeError(`the in-sample scale needs more than one season of history (${m} steps), got ${history.length}`);
  let sum = 0;
  for (let t = m; t < history.length; t++) sum += Math.abs(history[t] - history[t - m]);
  return sum / (history.length - m);
}
