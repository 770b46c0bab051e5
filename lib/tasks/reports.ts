/**
 * A model's scores next to its baseline's, as data and as text to print. Every report says
 * whether the model beats its baseline, and the text says so in words when it does not.
 */
import { describeValue } from '../backend';
import { NonFiniteError } from '../errors';
import { majorityClass, seasonalNaiveForecasts, unigramLoss } from './baselines';
import { ForecastBatch, ForecastDataset, ForecastPart } from './forecast';
import { ClassificationMetrics, ForecastErrors, LanguageModelMetrics, classificationMetrics, forecastErrors, languageModelMetrics, seasonalScale } from './metrics';

export interface LanguageModelReport {
  model: LanguageModelMetrics;
  /** The unigram model of the training tokens (add-one smoothed), on the same tokens. */
  baseline: LanguageModelMetrics;
  beatsBaseline: boolean;
}

/**
 * `loss`: the model's mean nats per token over `evalTokens` (what evaluate() returns). The
 * baseline is scored on the same tokens.
 */
export function languageModelReport(loss: number, trainTokens: ArrayLike<number>, evalTokens: ArrayLike<number>, vocabSize: number): LanguageModelReport {
  const model = languageModelMetrics(loss, evalTokens.length);
  const baseline = languageModelMetrics(unigramLoss(trainTokens, evalTokens, vocabSize), evalTokens.length);
  return { model, baseline, beatsBaseline: model.loss < baseline.loss };
}

export function formatLanguageModelReport(r: LanguageModelReport): string {
  const line = (name: string, m: LanguageModelMetrics) => `${name.padEnd(9)} ${fmt(m.loss, 4).padStart(9)} ${fmt(m.perplexity, 2).padStart(11)} ${fmt(m.bitsPerToken, 3).padStart(11)}`;
  return [
    `${r.model.tokens} tokens    loss (nats)  perplexity  bits/token`,
    line('model', r.model),
    line('unigram', r.baseline),
    r.beatsBaseline ? 'The model beats the unigram baseline.' : 'The model does NOT beat the unigram baseline: it has learned nothing from the context.',
  ].join('\n');
}

export interface ClassificationReport {
  /** Class names, by class id. */
  classes: readonly string[];
  model: ClassificationMetrics;
  /** Always predicting the training set's most frequent class. */
  baseline: { class: number; metrics: ClassificationMetrics };
  /** Better accuracy and better macro-F1 than the baseline. */
  beatsBaseline: boolean;
}

export function classificationReport(labels: ArrayLike<number>, predictions: ArrayLike<number>, classes: readonly string[], trainLabels: ArrayLike<number>): ClassificationReport {
  if (!Array.isArray(classes) || classes.length === 0) throw new TypeError(`classes must be a non-empty array of class names, got ${describeValue(classes)}`);
  const K = classes.length;
  const model = classificationMetrics(labels, predictions, K);
  const majority = majorityClass(trainLabels, K);
  const metrics = classificationMetrics(labels, new Int32Array(labels.length).fill(majority), K);
  return { classes, model, baseline: { class: majority, metrics }, beatsBaseline: model.accuracy > metrics.accuracy && model.macroF1 > metrics.macroF1 };
}

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

export interface ForecastColumnReport {
  column: string;
  /** MASE's denominator: the training part's in-sample seasonal-naive MAE (see metrics.ts). */
  scale: number;
  model: ForecastErrors;
  naive: ForecastErrors;
  seasonalNaive: ForecastErrors;
}

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
