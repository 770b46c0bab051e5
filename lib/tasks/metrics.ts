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

export interface LanguageModelMetrics {
  /** Mean cross-entropy per token, nats. */
  loss: number;
  perplexity: number;
  /** loss / ln 2: bits per character for a character-level model. */
  bitsPerToken: number;
  tokens: number;
}

/** From a mean loss in nats over `tokens` predicted tokens (what evaluate() returns). */
export function languageModelMetrics(loss: number, tokens: number): LanguageModelMetrics {
  if (typeof loss !== 'number' || !Number.isFinite(loss) || loss < 0) throw new RangeError(`loss must be a finite number >= 0 (mean nats per token), got ${describeValue(loss)}`);
  checkSize('tokens', tokens);
  return { loss, perplexity: Math.exp(loss), bitsPerToken: loss / Math.LN2, tokens };
}

export interface ClassMetrics {
  precision: number;
  recall: number;
  f1: number;
  /** Examples of this class. */
  support: number;
}

export interface ClassificationMetrics {
  count: number;
  accuracy: number;
  macroF1: number;
  perClass: ClassMetrics[];
  /** [K, K] row-major: confusion[t * K + p] counts examples of class t predicted as p. */
  confusion: Int32Array;
  numClasses: number;
}

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

/** The highest-scoring class of each row of scores [N, K] (the first on ties). */
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

export interface ForecastErrors {
  mae: number;
  rmse: number;
  /** MAE / scale; null when the scale is 0 (a training part with no seasonal change), where MASE is undefined. */
  mase: number | null;
}

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

/** MASE's denominator: mean over t in [m, n) of |y_t - y_{t-m}|, the in-sample seasonal-naive MAE. */
export function seasonalScale(history: ArrayLike<number>, season: number): number {
  const m = checkSize('season', season);
  if (history.length <= m) throw new RangeError(`the in-sample scale needs more than one season of history (${m} steps), got ${history.length}`);
  let sum = 0;
  for (let t = m; t < history.length; t++) sum += Math.abs(history[t] - history[t - m]);
  return sum / (history.length - m);
}
