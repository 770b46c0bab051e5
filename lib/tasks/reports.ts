/**
 * A model's scores next to its baseline's, as data and as text to print. Every report says
 * whether the model beats its baseline, and the text says so in words when it does not.
 */
import { describeValue } from '../backend';
import { NonFiniteError } from '../errors';
import { majorityClass, seasonalNaiveForecasts, unigramLoss } from './baselines';
import { ForecastBatch, ForecastDataset, ForecastPart } from './forecast';
import { ClassificationMetrics, ForecastErrors, LanguageModelMetrics, classificationMetrics, forecastErrors, languageModelMetrics, seasonalScale } from './metrics';

/**
 * A language model's metrics next to the unigram baseline's on the same tokens.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { languageModelReport, type LanguageModelReport } from 'bptt';
 *
 * const r: LanguageModelReport = languageModelReport(0.5, [0, 0, 1], [0, 2], 3);
 * assert.ok(Math.abs(r.baseline.loss - Math.log(12) / 2) < 1e-12); // (ln(6/3) + ln(6/1)) / 2
 * assert.equal(r.beatsBaseline, true); // 0.5 < 1.24
 * ```
 */
export interface LanguageModelReport {
  model: LanguageModelMetrics;
  /** The unigram model of the training tokens (add-one smoothed), on the same tokens. */
  baseline: LanguageModelMetrics;
  beatsBaseline: boolean;
}

/**
 * Scores a language model against the unigram baseline ({@link unigramLoss} of the training
 * tokens). `loss`: the model's mean nats per token over `evalTokens` (what {@link evaluate}
 * returns). The baseline is scored on the same tokens.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { languageModelReport } from 'bptt';
 *
 * const train = [0, 1, 0, 1, 0, 1];
 * const held = [0, 1, 0, 1];
 * // The unigram model gives each token (3 + 1) / (6 + 2) = 1/2: ln 2 nats. A model that has
 * // learned the alternation does better; one at 0.8 nats does not.
 * assert.equal(languageModelReport(0.1, train, held, 2).beatsBaseline, true);
 * const r = languageModelReport(0.8, train, held, 2);
 * assert.ok(Math.abs(r.baseline.loss - Math.LN2) < 1e-12);
 * assert.equal(r.beatsBaseline, false);
 * ```
 */
export function languageModelReport(loss: number, trainTokens: ArrayLike<number>, evalTokens: ArrayLike<number>, vocabSize: number): LanguageModelReport {
  const model = languageModelMetrics(loss, evalTokens.length);
  const baseline = languageModelMetrics(unigramLoss(trainTokens, evalTokens, vocabSize), evalTokens.length);
  return { model, baseline, beatsBaseline: model.loss < baseline.loss };
}

/**
 * The report as a small table (loss, perplexity, bits per token of the model and the baseline)
 * and a sentence that says whether the model beats the baseline.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { formatLanguageModelReport, languageModelReport } from 'bptt';
 *
 * const text = formatLanguageModelReport(languageModelReport(0.1, [0, 1, 0, 1], [0, 1], 2));
 * console.log(text);
 * assert.match(text, /^model +0\.1000 +1\.11 +0\.144$/m); // e^0.1 = 1.105, 0.1 / ln 2 = 0.144
 * assert.match(text, /The model beats the unigram baseline\./);
 * ```
 */
export function formatLanguageModelReport(r: LanguageModelReport): string {
  const line = (name: string, m: LanguageModelMetrics) => `${name.padEnd(9)} ${fmt(m.loss, 4).padStart(9)} ${fmt(m.perplexity, 2).padStart(11)} ${fmt(m.bitsPerToken, 3).padStart(11)}`;
  return [
    `${r.model.tokens} tokens    loss (nats)  perplexity  bits/token`,
    line('model', r.model),
    line('unigram', r.baseline),
    r.beatsBaseline ? 'The model beats the unigram baseline.' : 'The model does NOT beat the unigram baseline: it has learned nothing from the context.',
  ].join('\n');
}

/**
 * A classifier's metrics next to the majority-class baseline's on the same examples.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { classificationReport, type ClassificationReport } from 'bptt';
 *
 * const r: ClassificationReport = classificationReport([0, 1, 1, 1], [0, 1, 1, 0], ['cat', 'dog'], [1, 1, 0]);
 * assert.equal(r.baseline.class, 1); // 'dog', the training set's most frequent class
 * assert.equal(r.baseline.metrics.accuracy, 3 / 4);
 * assert.equal(r.model.accuracy, 3 / 4);
 * assert.equal(r.beatsBaseline, false); // a better macro-F1, but no better accuracy
 * ```
 */
export interface ClassificationReport {
  /** Class names, by class id. */
  classes: readonly string[];
  model: ClassificationMetrics;
  /** Always predicting the training set's most frequent class. */
  baseline: { class: number; metrics: ClassificationMetrics };
  /** Better accuracy and better macro-F1 than the baseline. */
  beatsBaseline: boolean;
}

/**
 * Scores predicted class ids against the labels, next to the majority-class baseline: the
 * training labels' most frequent class predicted for every example. The model beats it when its
 * accuracy and its macro-F1 are both higher.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { classificationReport } from 'bptt';
 *
 * const labels = [0, 0, 0, 1, 1, 2];
 * const r = classificationReport(labels, [0, 0, 1, 1, 1, 2], ['low', 'mid', 'high'], [0, 0, 0, 1, 2]);
 * assert.equal(r.model.accuracy, 5 / 6);
 * assert.equal(r.baseline.metrics.accuracy, 3 / 6); // always 'low'
 * assert.equal(r.beatsBaseline, true);
 * ```
 */
export function classificationReport(labels: ArrayLike<number>, predictions: ArrayLike<number>, classes: readonly string[], trainLabels: ArrayLike<number>): ClassificationReport {
  if (!Array.isArray(classes) || classes.length === 0) throw new TypeError(`classes must be a non-empty array of class names, got ${describeValue(classes)}`);
  const K = classes.length;
  const model = classificationMetrics(labels, predictions, K);
  const majority = majorityClass(trainLabels, K);
  const metrics = classificationMetrics(labels, new Int32Array(labels.length).fill(majority), K);
  return { classes, model, baseline: { class: majority, metrics }, beatsBaseline: model.accuracy > metrics.accuracy && model.macroF1 > metrics.macroF1 };
}

/**
 * The report as text: accuracy and macro-F1 of the model and the baseline, per-class precision,
 * recall, F1 and support, the confusion matrix, and a sentence saying whether the model beats the
 * baseline (and in what it does not).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { classificationReport, formatClassificationReport } from 'bptt';
 *
 * const text = formatClassificationReport(classificationReport([0, 1, 1, 1], [0, 1, 1, 0], ['cat', 'dog'], [1, 1, 0]));
 * console.log(text);
 * assert.match(text, /^model +0\.7500 +0\.7333$/m); // macro-F1: (2/3 + 4/5) / 2
 * assert.match(text, /^majority \(dog\) +0\.7500 +0\.4286$/m); // (0 + 6/7) / 2
 * assert.match(text, /does NOT beat the majority-class baseline \(always "dog"\) in accuracy\./);
 * ```
 */
export function formatClassificationReport(r: ClassificationReport): string {
  const K = r.classes.length;
  const b = r.baseline.metrics;
  const names = r.classes.map((c) => c.slice(0, 12));
  const width = Math.max(9, ...names.map((n) => n.length + 1));
  const lines = [
    `${r.model.count} examples        accuracy  macro-F1`,
    `model                 ${fmt(r.model.accuracy, 4).padStart(8)}  ${fmt(r.model.macroF1, 4).padStart(8)}`,
    `majority (${names[r.baseline.class]})`.padEnd(22) + ` ${fmt(b.accuracy, 4).padStart(8)}  ${fmt(b.macroF1, 4).padStart(8)}`,
    '',
    `${'class'.padEnd(width)} precision  recall      F1  support`,
    ...r.model.perClass.map((m, k) => `${names[k].padEnd(width)} ${fmt(m.precision, 4).padStart(9)} ${fmt(m.recall, 4).padStart(7)} ${fmt(m.f1, 4).padStart(7)} ${String(m.support).padStart(8)}`),
    '',
    `confusion (rows: true class, columns: predicted)`,
    `${''.padEnd(width)}${names.map((n) => n.padStart(width)).join('')}`,
    ...names.map((n, t) => `${n.padEnd(width)}${Array.from(r.model.confusion.subarray(t * K, (t + 1) * K), (c) => String(c).padStart(width)).join('')}`),
    '',
  ];
  if (r.beatsBaseline) lines.push('The model beats the majority-class baseline in accuracy and macro-F1.');
  else {
    const worse = [r.model.accuracy <= b.accuracy ? 'accuracy' : '', r.model.macroF1 <= b.macroF1 ? 'macro-F1' : ''].filter(Boolean).join(' and ');
    lines.push(`The model does NOT beat the majority-class baseline (always "${r.classes[r.baseline.class]}") in ${worse}.`);
  }
  return lines.join('\n');
}

/**
 * One target column's forecast errors: the model's, the naive forecast's and the seasonal-naive
 * forecast's, with the MASE scale they share.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { ForecastDataset, forecastReport, seriesFromColumns, type ForecastColumnReport } from 'bptt';
 *
 * // y = t: the naive forecast is h behind at step h ahead; with season 2, the seasonal-naive one is 2 behind.
 * const ds = ForecastDataset.create(seriesFromColumns({ y: Array.from({ length: 40 }, (_, t) => t) }), { target: 'y', window: 4, horizon: 2, season: 2, split: { validation: 0, test: 8 } });
 * const windows = ds.origins('test').length;
 * const column: ForecastColumnReport = forecastReport(ds, 'test', new Float64Array(2 * windows)).columns[0];
 * assert.equal(column.scale, 2); // |y_t - y_{t-2}| on the training part
 * assert.deepEqual(column.naive, { mae: 1.5, rmse: Math.sqrt(2.5), mase: 0.75 }); // errors 1 and 2
 * assert.deepEqual(column.seasonalNaive, { mae: 2, rmse: 2, mase: 1 });
 * ```
 */
export interface ForecastColumnReport {
  column: string;
  /** MASE's denominator: the training part's in-sample seasonal-naive MAE (see metrics.ts). */
  scale: number;
  model: ForecastErrors;
  naive: ForecastErrors;
  seasonalNaive: ForecastErrors;
}

/**
 * Forecast errors of a part's windows, per target column, and whether the model beats the naive
 * and the seasonal-naive forecasts on every column.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { ForecastDataset, forecastReport, seriesFromColumns, type ForecastReport } from 'bptt';
 *
 * const ds = ForecastDataset.create(seriesFromColumns({ y: Array.from({ length: 40 }, (_, t) => t) }), { target: 'y', window: 4, horizon: 2, season: 2, split: { validation: 0, test: 8 } });
 * // Predicting the training mean (0 when normalised) every time: far worse than either baseline.
 * const r: ForecastReport = forecastReport(ds, 'test', new Float64Array(2 * 7));
 * assert.deepEqual([r.part, r.windows, r.horizon, r.season], ['test', 7, 2, 2]); // origins 32..38
 * assert.equal(r.beatsNaive, false);
 * assert.equal(r.beatsSeasonalNaive, false);
 * ```
 */
export interface ForecastReport {
  part: ForecastPart;
  windows: number;
  horizon: number;
  season: number;
  columns: ForecastColumnReport[];
  /** Lower MAE than the naive forecast on every target column. */
  beatsNaive: boolean;
  /** Lower MAE than the seasonal-naive forecast on every target column. */
  beatsSeasonalNaive: boolean;
}

/**
 * Scores forecasts of a part's windows (in the order of dataset.origins(part)) against the naive
 * and seasonal-naive forecasts, in the series' units. `predictions`: the model's normalised
 * outputs, Float32Array or Float64Array [H, N, C] time-major, as collectForecasts assembles them.
 * MASE's scale is the training part's in-sample seasonal-naive MAE ({@link seasonalScale}).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { ForecastDataset, collectForecasts, forecastReport, seriesFromColumns, type ForecastBatch } from 'bptt';
 *
 * const ds = ForecastDataset.create(seriesFromColumns({ y: Array.from({ length: 40 }, (_, t) => t) }), { target: 'y', window: 4, horizon: 2, season: 2, split: { validation: 0, test: 8 } });
 * // A drift model: continue the last step's change (normalisation is affine, so this works on normalised values).
 * const drift = ({ input, batch: B, steps: W }: ForecastBatch) => {
 *   const out = new Float64Array(2 * B);
 *   for (let b = 0; b < B; b++) {
 *     const last = input.data[(W - 1) * B + b];
 *     const change = last - input.data[(W - 2) * B + b];
 *     for (let h = 0; h < 2; h++) out[h * B + b] = last + (h + 1) * change;
 *   }
 *   return out;
 * };
 * const r = forecastReport(ds, 'test', await collectForecasts(ds, 'test', drift, { batchSize: 4 }));
 * assert.ok(r.columns[0].model.mae < 1e-4); // y = t is a straight line: drift is exact (up to float32)
 * assert.equal(r.columns[0].naive.mae, 1.5);
 * assert.ok(r.beatsNaive && r.beatsSeasonalNaive);
 * ```
 */
export function forecastReport(dataset: ForecastDataset, part: ForecastPart, predictions: ArrayLike<number>): ForecastReport {
  const p = dataset.pipeline;
  const origins = dataset.origins(part);
  const N = origins.length;
  const H = p.horizon;
  const C = p.targetSize;
  if (N === 0) throw new RangeError(`the ${part} part has no windows to evaluate`);
  if (predictions.length !== H * N * C) throw new RangeError(`predictions must hold horizon * windows * targets = ${H} * ${N} * ${C} = ${H * N * C} values [H, N, C], got ${predictions.length}`);
  const columns = p.targets.map((f, c): ForecastColumnReport => {
    const y = dataset.table.values[dataset.table.columns.indexOf(f.column)];
    const actual = new Float64Array(H * N);
    const model = new Float64Array(H * N);
    for (let h = 0; h < H; h++) {
      for (let n = 0; n < N; n++) {
        actual[h * N + n] = y[origins[n] + h];
        model[h * N + n] = p.denormalize(c, predictions[(h * N + n) * C + c]);
      }
    }
    const scale = seasonalScale(y.subarray(0, dataset.parts.train.end), p.season);
    return {
      column: f.column,
      scale,
      model: forecastErrors(actual, model, scale),
      naive: forecastErrors(actual, seasonalNaiveForecasts(y, origins, H, 1), scale),
      seasonalNaive: forecastErrors(actual, seasonalNaiveForecasts(y, origins, H, p.season), scale),
    };
  });
  return {
    part,
    windows: N,
    horizon: H,
    season: p.season,
    columns,
    beatsNaive: columns.every((c) => c.model.mae < c.naive.mae),
    beatsSeasonalNaive: columns.every((c) => c.model.mae < c.seasonalNaive.mae),
  };
}

/**
 * Runs `predict` over a part's windows in batches and assembles its outputs, normalised
 * [H, B, C] per batch (the layout of ForecastBatch.targets), into [H, N, C] for forecastReport.
 * `predict` may be async (e.g. a model's predictAsync); windows come in time order.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { ForecastDataset, collectForecasts, seriesFromColumns } from 'bptt';
 *
 * const ds = ForecastDataset.create(seriesFromColumns({ y: Array.from({ length: 20 }, (_, t) => t) }), { target: 'y', window: 3, horizon: 2, split: { validation: 4, test: 4 } });
 * // A model that knows the answers: the batch's own targets. Assembled, they are the part's targets [H, N, C].
 * const sizes: number[] = [];
 * const all = await collectForecasts(ds, 'test', async (batch) => (sizes.push(batch.batch), batch.targets), { batchSize: 2 });
 * assert.deepEqual(sizes, [2, 1]); // the test part's 3 windows, origins 16, 17, 18
 * const value = (z: number) => Math.round(ds.pipeline.denormalize(0, z) * 1e4) / 1e4;
 * assert.deepEqual(Array.from(all, value), [16, 17, 18, 17, 18, 19]); // step 1 ahead of each origin, then step 2
 * ```
 */
export async function collectForecasts(dataset: ForecastDataset, part: ForecastPart, predict: (batch: ForecastBatch) => Float32Array | Float64Array | Promise<Float32Array | Float64Array>, options: { batchSize: number }): Promise<Float64Array> {
  const N = dataset.origins(part).length;
  const H = dataset.pipeline.horizon;
  const C = dataset.pipeline.targetSize;
  const out = new Float64Array(H * N * C);
  let from = 0;
  for (const batch of dataset.batches(part, options)) {
    const y = await predict(batch);
    const B = batch.batch;
    if ((!(y instanceof Float32Array) && !(y instanceof Float64Array)) || y.length !== H * B * C) {
      throw new RangeError(`predict must return a Float32Array or Float64Array [H, B, C] of ${H} * ${B} * ${C} = ${H * B * C} values, got ${describeValue(y)}`);
    }
    for (let h = 0; h < H; h++) {
      for (let b = 0; b < B; b++) {
        for (let c = 0; c < C; c++) {
          const v = y[(h * B + b) * C + c];
          if (!Number.isFinite(v)) throw new NonFiniteError(`predict returned ${v} for window ${from + b}, step ${h + 1} ahead, target ${c}`);
          out[(h * N + from + b) * C + c] = v;
        }
      }
    }
    from += B;
  }
  return out;
}

/**
 * The report as text: MAE, RMSE and MASE of the model and both baselines per target column, and
 * a sentence for each baseline the model does not beat.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { ForecastDataset, forecastReport, formatForecastReport, seriesFromColumns } from 'bptt';
 *
 * const ds = ForecastDataset.create(seriesFromColumns({ sales: Array.from({ length: 40 }, (_, t) => t) }), { target: 'sales', window: 4, horizon: 2, season: 2, split: { validation: 0, test: 8 } });
 * const text = formatForecastReport(forecastReport(ds, 'test', new Float64Array(2 * 7)));
 * console.log(text);
 * assert.match(text, /^test: 7 windows, 2 steps ahead$/m);
 * assert.match(text, /^ {2}naive \(last value\) +1\.5000 +1\.5811 +0\.7500$/m); // RMSE sqrt(2.5)
 * assert.match(text, /The model does NOT beat the naive forecast: MAE/);
 * ```
 */
export function formatForecastReport(r: ForecastReport): string {
  const seasonal = r.season > 1 ? `seasonal naive (${r.season})` : 'seasonal naive (= naive)';
  const lines = [`${r.part}: ${r.windows} windows, ${r.horizon} steps ahead`];
  for (const c of r.columns) {
    const row = (name: string, e: ForecastErrors) => `  ${name.padEnd(24)} ${fmt(e.mae, 4).padStart(12)} ${fmt(e.rmse, 4).padStart(12)} ${(e.mase === null ? 'undefined' : fmt(e.mase, 4)).padStart(8)}`;
    lines.push(`${c.column.padEnd(26)} ${'MAE'.padStart(12)} ${'RMSE'.padStart(12)} ${'MASE'.padStart(8)}`, row('model', c.model), row('naive (last value)', c.naive), row(seasonal, c.seasonalNaive));
  }
  if (r.beatsNaive && r.beatsSeasonalNaive) lines.push('The model beats the naive and the seasonal-naive forecasts.');
  for (const c of r.columns) {
    for (const [name, e] of [['naive', c.naive], ['seasonal-naive', c.seasonalNaive]] as const) {
      if (!(c.model.mae < e.mae)) lines.push(`The model does NOT beat the ${name} forecast${r.columns.length > 1 ? ` on ${c.column}` : ''}: MAE ${fmt(c.model.mae, 4)} against ${fmt(e.mae, 4)}.`);
    }
  }
  return lines.join('\n');
}

/** A number for a table: fixed digits, or exponent form when very large or small. */
function fmt(x: number, digits: number): string {
  if (x !== 0 && (Math.abs(x) >= 1e7 || Math.abs(x) < 10 ** -digits)) return x.toExponential(digits - 1);
  return x.toFixed(digits);
}
