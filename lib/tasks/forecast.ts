/**
 * Forecasting data: a series table cut into sliding windows (W past steps in, the next H steps
 * out), split chronologically into train / validation / test, with every input column normalised
 * by statistics of the training part only.
 *
 * Shapes (time-major, as the engine takes them):
 *   inputs  Float32Array [W, B, D]: at each past step the C normalised targets, then the covariates
 *           (a numeric covariate normalised, a one-hot covariate as one 0/1 input per category);
 *   targets Float32Array [H, B, C]: the next H values of the C targets, normalised like the inputs.
 * A window's origin is the index of its first forecast step: its inputs are rows [origin - W,
 * origin), its targets rows [origin, origin + H).
 *
 * The split: the last `test` steps are the test part, the `validation` steps before them the
 * validation part, the rest the training part. A window belongs to the part that holds all of its
 * targets; its inputs may reach back into earlier parts (that past is known when forecasting), never
 * forward. So no training window sees a validation or test value, as input or as target.
 */
import { CheckpointError } from '../errors';
import { checkSize, describeValue } from '../backend';
import { Rng } from '../rng';
import { shuffleInPlace } from './buffers';
import { SeriesTable, seriesColumn } from './series';

/**
 * How a covariate becomes model inputs: 'numeric', one input normalised by the training part's
 * mean and std; 'onehot', one 0/1 input per category seen in the training part (at most 1024),
 * for a column of a few codes such as a day of week.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { ForecastDataset, seriesFromColumns, type CovariateEncoding } from 'bptt';
 *
 * const table = seriesFromColumns({ y: [5, 6, 7, 8, 9, 10, 11, 12], weekday: [1, 2, 3, 1, 2, 3, 1, 2] });
 * const inputs = (encoding: CovariateEncoding) =>
 *   ForecastDataset.create(table, { target: 'y', covariates: [{ column: 'weekday', encoding }], window: 2, horizon: 1, split: { validation: 0, test: 0 } }).pipeline.inputSize;
 * assert.equal(inputs('numeric'), 2); // y, weekday
 * assert.equal(inputs('onehot'), 4); // y, weekday = 1, 2, 3
 * ```
 */
export type CovariateEncoding = 'numeric' | 'onehot';

/**
 * A covariate with its encoding; a plain column name means `{ column, encoding: 'numeric' }`.
 * Covariates are inputs only: the model reads their past values, it does not forecast them.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { ForecastPipeline, seriesFromColumns, type CovariateSpec } from 'bptt';
 *
 * const table = seriesFromColumns({ y: [1, 2, 3, 4], promo: [0, 1, 0, 1], temp: [10, 12, 14, 16] });
 * const covariates: (string | CovariateSpec)[] = ['temp', { column: 'promo', encoding: 'onehot' }];
 * const pipeline = ForecastPipeline.fit(table, { target: 'y', covariates, window: 2, horizon: 1 }, 4);
 * assert.deepEqual(pipeline.covariates.map((f) => f.encoding), ['numeric', 'onehot']);
 * assert.equal(pipeline.inputSize, 1 + 1 + 2); // y, temp, promo = 0 and promo = 1
 * ```
 */
export interface CovariateSpec {
  column: string;
  /** 'numeric' (default): normalised like the targets. 'onehot': one input per category seen in training. */
  encoding?: CovariateEncoding;
}

/**
 * A numeric column's normalisation, fitted on the training part: z = (x - mean) / std.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { ForecastPipeline, seriesFromColumns, type NumericFeature } from 'bptt';
 *
 * const table = seriesFromColumns({ y: [2, 4, 6, 100] });
 * const pipeline = ForecastPipeline.fit(table, { target: 'y', window: 1, horizon: 1 }, 3); // rows 0..2 only
 * const y: NumericFeature = pipeline.targets[0];
 * assert.equal(y.mean, 4); // (2 + 4 + 6) / 3: the held-out 100 is not seen
 * assert.equal(y.std, Math.sqrt(8 / 3)); // population std: sqrt((4 + 0 + 4) / 3)
 * assert.equal(pipeline.normalize(0, 6), 2 / Math.sqrt(8 / 3));
 * ```
 */
export interface NumericFeature {
  column: string;
  encoding: 'numeric';
  mean: number;
  /** The training part's population standard deviation, or 1 when that is 0 (a constant column). */
  std: number;
}

/**
 * A categorical column's categories seen in the training part, sorted; category k is input k of
 * its block. A value outside them is a RangeError when inputs are made (the model has no input
 * for it).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { ForecastPipeline, seriesFromColumns, type OneHotFeature } from 'bptt';
 *
 * const table = seriesFromColumns({ y: [1, 2, 3, 4], shift: [3, 1, 3, 1] });
 * const pipeline = ForecastPipeline.fit(table, { target: 'y', covariates: [{ column: 'shift', encoding: 'onehot' }], window: 1, horizon: 1 }, 4);
 * const shift = pipeline.covariates[0] as OneHotFeature;
 * assert.deepEqual(shift.categories, [1, 3]);
 * const rows = pipeline.transform(table); // [4, 3]: y normalised, shift = 1, shift = 3
 * assert.deepEqual(Array.from(rows.subarray(1, 3)), [0, 1]); // row 0: shift 3
 * assert.throws(() => pipeline.transform(seriesFromColumns({ y: [1], shift: [2] })), /value 2 is not one of the categories/);
 * ```
 */
export interface OneHotFeature {
  column: string;
  encoding: 'onehot';
  categories: number[];
}

/**
 * A fitted input column: {@link NumericFeature} or {@link OneHotFeature}, told apart by `encoding`.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { ForecastPipeline, seriesFromColumns, type Feature } from 'bptt';
 *
 * const table = seriesFromColumns({ y: [1, 2, 3], dow: [1, 2, 1], temp: [5, 7, 9] });
 * const pipeline = ForecastPipeline.fit(table, { target: 'y', covariates: ['temp', { column: 'dow', encoding: 'onehot' }], window: 1, horizon: 1 }, 3);
 * const width = (f: Feature) => (f.encoding === 'numeric' ? 1 : f.categories.length);
 * assert.deepEqual(pipeline.covariates.map(width), [1, 2]);
 * assert.equal(pipeline.inputSize, 1 + 1 + 2);
 * ```
 */
export type Feature = NumericFeature | OneHotFeature;

/** One-hot encoding is for a few categories; more usually means a continuous column. */
export const MAX_CATEGORIES = 1024;

/**
 * The window settings: W past steps in, H future steps out, and the season the seasonal-naive
 * baseline uses (it must fit in the window, since the model must see what the baseline reads).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { ForecastPipeline, seriesFromColumns, type ForecastSettings } from 'bptt';
 *
 * const table = seriesFromColumns({ y: Array.from({ length: 30 }, (_, t) => t % 7) });
 * const settings: ForecastSettings = { window: 14, horizon: 7, season: 7 };
 * const pipeline = ForecastPipeline.fit(table, { target: 'y', ...settings }, 30);
 * assert.deepEqual([pipeline.window, pipeline.horizon, pipeline.season], [14, 7, 7]);
 * assert.throws(() => ForecastPipeline.fit(table, { target: 'y', window: 5, horizon: 1, season: 7 }, 30), /season \(7\) must not exceed window \(5\)/);
 * ```
 */
export interface ForecastSettings {
  /** Past steps the model reads (W). */
  window: number;
  /** Future steps it forecasts (H). */
  horizon: number;
  /** Steps in one season (7 for daily data with a weekly pattern); 1 for none. Default 1. */
  season?: number;
}

/**
 * Which columns are forecast (one or several targets, C) and which are only read (covariates).
 * Inputs at each step are the C targets first, then the covariates; a column may appear once.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { ForecastPipeline, seriesFromColumns, type ForecastFeatureSpec } from 'bptt';
 *
 * const table = seriesFromColumns({ north: [1, 2, 3, 4], south: [4, 3, 2, 1], holiday: [0, 0, 1, 0] });
 * const spec: ForecastFeatureSpec = { target: ['north', 'south'], covariates: ['holiday'] };
 * const pipeline = ForecastPipeline.fit(table, { ...spec, window: 2, horizon: 1 }, 4);
 * assert.equal(pipeline.targetSize, 2);
 * assert.deepEqual(pipeline.targets.map((f) => f.column), ['north', 'south']);
 * assert.throws(() => ForecastPipeline.fit(table, { target: 'north', covariates: ['north'], window: 2, horizon: 1 }, 4), /used twice/);
 * ```
 */
export interface ForecastFeatureSpec {
  /** The column(s) to forecast. */
  target: string | readonly string[];
  /** Other columns the model reads (e.g. day of week), by name or with an encoding. */
  covariates?: readonly (string | CovariateSpec)[];
}

/**
 * Everything needed to turn a series into model inputs and model outputs back into values: the
 * fitted normalisation and the window settings. What a checkpoint saves (serialize()), so that a
 * trained model can forecast from new data with the normalisation it was trained with.
 * {@link ForecastDataset.create} fits one on its training part; `fit` does it for given rows.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { ForecastPipeline, seriesFromColumns } from 'bptt';
 *
 * const table = seriesFromColumns({ y: [10, 12, 14, 16, 18] });
 * const pipeline = ForecastPipeline.fit(table, { target: 'y', window: 2, horizon: 1 }, 4); // rows 0..3: mean 13, std sqrt(5)
 * const saved = pipeline.serialize(); // e.g. into a checkpoint's metadata
 * const restored = ForecastPipeline.deserialize(saved);
 * // The inputs of the window that forecasts past the table's end (origin = rows = 5): rows 3 and 4.
 * const x = restored.inputs(table, [5]); // [W = 2, B = 1, D = 1]
 * assert.ok(Math.abs(x[0] - 3 / Math.sqrt(5)) < 1e-6 && Math.abs(x[1] - 5 / Math.sqrt(5)) < 1e-6);
 * // A model's normalised output back in the series' units.
 * assert.equal(restored.denormalize(0, 1), 13 + Math.sqrt(5));
 * ```
 */
export class ForecastPipeline {
  /** The target columns' normalisations, in the order of the model's outputs. */
  readonly targets: readonly NumericFeature[];
  /** The covariates' encodings, in the order of their inputs (after the targets). */
  readonly covariates: readonly Feature[];
  /** W: past steps the model reads. */
  readonly window: number;
  /** H: future steps it forecasts. */
  readonly horizon: number;
  /** Steps in one season (1: none). */
  readonly season: number;

  private constructor(targets: NumericFeature[], covariates: Feature[], settings: Required<ForecastSettings>) {
    this.targets = Object.freeze(targets.map((f) => Object.freeze(f)));
    this.covariates = Object.freeze(covariates.map((f) => Object.freeze(f)));
    this.window = settings.window;
    this.horizon = settings.horizon;
    this.season = settings.season;
  }

  /** Fits the normalisation on rows [0, trainEnd) of the table. */
  static fit(table: SeriesTable, spec: ForecastFeatureSpec & ForecastSettings, trainEnd: number): ForecastPipeline {
    const settings = checkSettings(spec);
    if (!Number.isInteger(trainEnd) || trainEnd < 1 || trainEnd > table.length) throw new RangeError(`trainEnd must be an integer in [1, ${table.length}], got ${describeValue(trainEnd)}`);
    const targetNames = typeof spec.target === 'string' ? [spec.target] : spec.target;
    if (!Array.isArray(targetNames) || targetNames.length === 0 || !targetNames.every((t) => typeof t === 'string')) {
      throw new TypeError(`target must be a column name or a non-empty array of them, got ${describeValue(spec.target)}`);
    }
    const covariateSpecs = (spec.covariates ?? []).map((c): Required<CovariateSpec> => {
      if (typeof c === 'string') return { column: c, encoding: 'numeric' };
      if (typeof c !== 'object' || c === null || typeof c.column !== 'string') throw new TypeError(`a covariate must be a column name or { column, encoding }, got ${describeValue(c)}`);
      const encoding = c.encoding ?? 'numeric';
      if (encoding !== 'numeric' && encoding !== 'onehot') throw new RangeError(`covariate ${JSON.stringify(c.column)}: encoding must be 'numeric' or 'onehot', got ${JSON.stringify(encoding)}`);
      return { column: c.column, encoding };
    });
    const all = [...targetNames, ...covariateSpecs.map((c) => c.column)];
    const dup = all.find((c, i) => all.indexOf(c) !== i);
    if (dup !== undefined) throw new TypeError(`column ${JSON.stringify(dup)} is used twice (as a target or covariate)`);
    const targets = targetNames.map((column) => fitNumeric(column, seriesColumn(table, column), trainEnd));
    const covariates = covariateSpecs.map((c) => (c.encoding === 'numeric' ? fitNumeric(c.column, seriesColumn(table, c.column), trainEnd) : fitOneHot(c.column, seriesColumn(table, c.column), trainEnd)));
    return new ForecastPipeline(targets, covariates, settings);
  }

  /** C: the target columns. */
  get targetSize(): number {
    return this.targets.length;
  }

  /** D: the inputs at each step (targets, then covariates; a one-hot one counts its categories). */
  get inputSize(): number {
    return this.covariates.reduce((d, f) => d + featureWidth(f), this.targets.length);
  }

  /** Every row of the table as model inputs, Float32Array [N, D]. An unseen one-hot category is a RangeError. */
  transform(table: SeriesTable): Float32Array {
    const D = this.inputSize;
    const N = table.length;
    const out = new Float32Array(N * D);
    let at = 0;
    for (const f of [...this.targets, ...this.covariates]) {
      const x = seriesColumn(table, f.column);
      if (f.encoding === 'numeric') {
        for (let t = 0; t < N; t++) out[t * D + at] = (x[t] - f.mean) / f.std;
      } else {
        const index = new Map(f.categories.map((v, k) => [v, k]));
        for (let t = 0; t < N; t++) {
          const k = index.get(x[t]);
          if (k === undefined) {
            throw new RangeError(`column ${JSON.stringify(f.column)}, row ${t}: value ${x[t]} is not one of the categories the training part had (${f.categories.join(', ')}), so one-hot encoding cannot represent it`);
          }
          out[t * D + at + k] = 1;
        }
      }
      at += featureWidth(f);
    }
    return out;
  }

  /** Inputs [W, B, D] of the windows with these origins (each in [W, N]); origin N forecasts past the table's end. */
  inputs(table: SeriesTable, origins: ArrayLike<number>): Float32Array {
    for (let b = 0; b < origins.length; b++) {
      if (!Number.isInteger(origins[b]) || origins[b] < this.window || origins[b] > table.length) {
        throw new RangeError(`origin ${b} must be an integer in [window = ${this.window}, rows = ${table.length}], got ${origins[b]}`);
      }
    }
    return gatherWindows(this.transform(table), this.inputSize, origins, this.window);
  }

  /** Target c's value from a normalised one. */
  denormalize(c: number, z: number): number {
    const f = this.targets[c];
    return z * f.std + f.mean;
  }

  /** Target c's value as the model sees it: (x - mean) / std. */
  normalize(c: number, x: number): number {
    const f = this.targets[c];
    return (x - f.mean) / f.std;
  }

  /** JSON for a checkpoint's metadata. */
  serialize(): string {
    return JSON.stringify({ targets: this.targets, covariates: this.covariates, window: this.window, horizon: this.horizon, season: this.season });
  }

  /** The pipeline serialize() wrote; anything else is a CheckpointError saying what is wrong. */
  static deserialize(json: string): ForecastPipeline {
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(json);
    } catch (err) {
      throw new CheckpointError(`forecast pipeline is not valid JSON: ${(err as Error).message}`);
    }
    try {
      if (typeof o !== 'object' || o === null || !Array.isArray(o.targets) || o.targets.length === 0 || !Array.isArray(o.covariates)) throw new TypeError('expected { targets: [...], covariates: [...], window, horizon, season }');
      const settings = checkSettings(o as unknown as ForecastSettings);
      const targets = o.targets.map((f) => checkFeature(f, 'numeric') as NumericFeature);
      const covariates = o.covariates.map((f) => checkFeature(f));
      return new ForecastPipeline(targets, covariates, settings);
    } catch (err) {
      throw new CheckpointError(`invalid forecast pipeline: ${(err as Error).message}`);
    }
  }
}

function featureWidth(f: Feature): number {
  return f.encoding === 'numeric' ? 1 : f.categories.length;
}

function checkSettings(s: ForecastSettings): Required<ForecastSettings> {
  const window = checkSize('window', s.window);
  const horizon = checkSize('horizon', s.horizon);
  const season = checkSize('season', s.season ?? 1);
  if (season > window) throw new RangeError(`season (${season}) must not exceed window (${window}): the seasonal-naive baseline reads the value one season back, which the model must see too`);
  return { window, horizon, season };
}

function checkFeature(f: unknown, only?: CovariateEncoding): Feature {
  const o = f as Record<string, unknown>;
  if (typeof o !== 'object' || o === null || typeof o.column !== 'string') throw new TypeError(`a feature must be an object with a column name, got ${describeValue(f)}`);
  if (only !== undefined && o.encoding !== only) throw new TypeError(`feature ${JSON.stringify(o.column)} must be ${only}, got ${JSON.stringify(o.encoding)}`);
  if (o.encoding === 'numeric') {
    if (typeof o.mean !== 'number' || !Number.isFinite(o.mean) || typeof o.std !== 'number' || !(o.std > 0) || !Number.isFinite(o.std)) {
      throw new TypeError(`feature ${JSON.stringify(o.column)} needs a finite mean and a finite std > 0`);
    }
    return { column: o.column, encoding: 'numeric', mean: o.mean, std: o.std };
  }
  if (o.encoding === 'onehot') {
    const cats = o.categories;
    if (!Array.isArray(cats) || cats.length === 0 || cats.length > MAX_CATEGORIES || !cats.every((v, i) => typeof v === 'number' && Number.isFinite(v) && (i === 0 || v > cats[i - 1]))) {
      throw new TypeError(`feature ${JSON.stringify(o.column)} needs 1 to ${MAX_CATEGORIES} finite, increasing categories`);
    }
    return { column: o.column, encoding: 'onehot', categories: [...cats] };
  }
  throw new TypeError(`feature ${JSON.stringify(o.column)}: encoding must be 'numeric' or 'onehot', got ${JSON.stringify(o.encoding)}`);
}

function fitNumeric(column: string, x: Float64Array, trainEnd: number): NumericFeature {
  let mean = 0;
  for (let t = 0; t < trainEnd; t++) mean += x[t];
  mean /= trainEnd;
  let ss = 0;
  for (let t = 0; t < trainEnd; t++) ss += (x[t] - mean) ** 2;
  const std = Math.sqrt(ss / trainEnd);
  return { column, encoding: 'numeric', mean, std: std > 0 && Number.isFinite(1 / std) ? std : 1 };
}

function fitOneHot(column: string, x: Float64Array, trainEnd: number): OneHotFeature {
  const seen = new Set<number>();
  for (let t = 0; t < trainEnd; t++) {
    seen.add(x[t]);
    if (seen.size > MAX_CATEGORIES) throw new RangeError(`column ${JSON.stringify(column)} has more than ${MAX_CATEGORIES} distinct values in the training part; one-hot encoding is for a few categories (use encoding 'numeric')`);
  }
  return { column, encoding: 'onehot', categories: [...seen].sort((a, b) => a - b) };
}

/** Rows [origin - W, origin) of an [N, D] matrix for each origin, as [W, B, D]. */
function gatherWindows(matrix: Float32Array, D: number, origins: ArrayLike<number>, W: number): Float32Array {
  const B = origins.length;
  const out = new Float32Array(W * B * D);
  for (let b = 0; b < B; b++) {
    const first = origins[b] - W;
    for (let s = 0; s < W; s++) out.set(matrix.subarray((first + s) * D, (first + s + 1) * D), (s * B + b) * D);
  }
  return out;
}

/**
 * One of the chronological parts of a {@link ForecastDataset}: 'train', 'validation' or 'test'.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { ForecastDataset, seriesFromColumns, type ForecastPart } from 'bptt';
 *
 * const ds = ForecastDataset.create(seriesFromColumns({ y: Array.from({ length: 20 }, (_, t) => t) }), { target: 'y', window: 3, horizon: 2, split: { validation: 4, test: 4 } });
 * const part: ForecastPart = 'validation';
 * assert.deepEqual(Array.from(ds.origins(part)), [12, 13, 14]); // targets [12, 16): origins 12 to 16 - 2
 * ```
 */
export type ForecastPart = 'train' | 'validation' | 'test';
/**
 * The parts of a {@link ForecastDataset}, in time order.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { FORECAST_PARTS, ForecastDataset, seriesFromColumns } from 'bptt';
 *
 * const ds = ForecastDataset.create(seriesFromColumns({ y: Array.from({ length: 20 }, (_, t) => t) }), { target: 'y', window: 3, horizon: 2, split: { validation: 4, test: 4 } });
 * const windows = Object.fromEntries(FORECAST_PARTS.map((part) => [part, ds.origins(part).length]));
 * assert.deepEqual(windows, { train: 8, validation: 3, test: 3 }); // origins 3..10, 12..14, 16..18
 * ```
 */
export const FORECAST_PARTS: readonly ForecastPart[] = ['train', 'validation', 'test'];

/**
 * Steps held out at the end of the series: a count (an integer >= 0) or a fraction of the series
 * in (0, 1), rounded. The test part is last, the validation part just before it. A held-out part
 * that is not empty needs at least `horizon` steps.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { ForecastDataset, seriesFromColumns, type ChronologicalSplit } from 'bptt';
 *
 * const table = seriesFromColumns({ y: Array.from({ length: 50 }, (_, t) => Math.sin(t)) });
 * const split: ChronologicalSplit = { validation: 0.2, test: 5 }; // 0.2 * 50 = 10 steps, and 5 steps
 * const ds = ForecastDataset.create(table, { target: 'y', window: 4, horizon: 2, split });
 * assert.deepEqual(ds.parts, { train: { start: 0, end: 35 }, validation: { start: 35, end: 45 }, test: { start: 45, end: 50 } });
 * ```
 */
export interface ChronologicalSplit {
  /** Default 0.1. */
  validation?: number;
  /** Default 0.1. */
  test?: number;
}

/**
 * Options of {@link ForecastDataset.create}: the columns, the window settings, the split (default
 * 10 % validation, 10 % test) and the stride between window origins.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { ForecastDataset, seriesFromColumns, type ForecastOptions } from 'bptt';
 *
 * const table = seriesFromColumns({ y: Array.from({ length: 20 }, (_, t) => t) });
 * const options: ForecastOptions = { target: 'y', window: 3, horizon: 2, split: { validation: 4, test: 4 }, stride: 2 };
 * const ds = ForecastDataset.create(table, options);
 * assert.deepEqual(Array.from(ds.origins('train')), [3, 5, 7, 9]); // every second origin of 3..10
 * ```
 */
export interface ForecastOptions extends ForecastFeatureSpec, ForecastSettings {
  split?: ChronologicalSplit;
  /** Steps between the origins of consecutive windows. Default 1 (every window). */
  stride?: number;
}

/**
 * A batch of forecasting windows, time-major; `steps`, `batch` and `input` are what the engine's
 * {@link LayerBatch} takes, so a batch goes straight into a recurrent layer.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { ForecastDataset, backends, layerParameterShapes, seriesFromColumns, type ForecastBatch } from 'bptt';
 *
 * const ds = ForecastDataset.create(seriesFromColumns({ y: Array.from({ length: 20 }, (_, t) => t) }), { target: 'y', window: 3, horizon: 2, split: { validation: 4, test: 4 } });
 * const batch: ForecastBatch = ds.batch([3, 10]); // inputs rows 0..2 and 7..9, targets rows 3..4 and 10..11
 * const value = (z: number) => Math.round(ds.pipeline.denormalize(0, z) * 1e4) / 1e4 + 0; // (+ 0 turns -0 into 0)
 * // input [W, B, D]: step s of window b at (s * B + b) * D
 * assert.deepEqual(Array.from(batch.input.data, value), [0, 7, 1, 8, 2, 9]);
 * // targets [H, B, C]: step h ahead of window b at (h * B + b) * C
 * assert.deepEqual(Array.from(batch.targets, value), [3, 10, 4, 11]);
 *
 * const spec = { cell: 'gru', inputSize: batch.inputSize, hiddenSize: 4 } as const;
 * const weights = Object.fromEntries(Object.entries(layerParameterShapes(spec)).map(([name, shape]) => [name, new Float32Array(shape[0] * (shape[1] ?? 1)).fill(0.1)]));
 * const { y, hT, saved } = backends.reference.layerForward(spec, weights, batch);
 * saved.dispose();
 * assert.equal(y.length, batch.steps * batch.batch * 4);
 * assert.deepEqual(Array.from(hT), Array.from(y.subarray(2 * 2 * 4))); // the state after the last step
 * ```
 */
export interface ForecastBatch {
  /** W. */
  steps: number;
  /** B. */
  batch: number;
  /** [W, B, D], time-major. */
  input: { kind: 'dense'; data: Float32Array };
  /** D. */
  inputSize: number;
  /** [H, B, C], time-major, normalised. */
  targets: Float32Array;
  /** H. */
  horizon: number;
  /** C. */
  targetSize: number;
  /** Each window's origin (the row of its first target), [B]. */
  origins: Int32Array;
}

/**
 * How {@link ForecastDataset.batches} deals a part's windows: batch size, and a seeded shuffle
 * (the same seed gives the same order).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { ForecastDataset, seriesFromColumns, type ForecastBatchOptions } from 'bptt';
 *
 * const ds = ForecastDataset.create(seriesFromColumns({ y: Array.from({ length: 20 }, (_, t) => t) }), { target: 'y', window: 3, horizon: 2, split: { validation: 4, test: 4 } });
 * const epoch = (options: ForecastBatchOptions) => [...ds.batches('train', options)].map((b) => Array.from(b.origins));
 * assert.deepEqual(epoch({ batchSize: 3 }), [[3, 4, 5], [6, 7, 8], [9, 10]]);
 * const shuffled = epoch({ batchSize: 3, shuffle: true, seed: 1 });
 * assert.deepEqual(shuffled.flat().sort((a, b) => a - b), [3, 4, 5, 6, 7, 8, 9, 10]); // every window once
 * assert.deepEqual(epoch({ batchSize: 3, shuffle: true, seed: 1 }), shuffled);
 * ```
 */
export interface ForecastBatchOptions {
  batchSize: number;
  /** Shuffle the windows (within the part; default false). */
  shuffle?: boolean;
  /** Seed of the shuffle (default 0); pass a new one each epoch for a new order. */
  seed?: number;
}

/**
 * The rows of each part, half-open ranges [start, end) in time order.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { ForecastDataset, seriesFromColumns, type PartRanges } from 'bptt';
 *
 * const ds = ForecastDataset.create(seriesFromColumns({ y: Array.from({ length: 20 }, (_, t) => t) }), { target: 'y', window: 3, horizon: 2, split: { validation: 4, test: 4 } });
 * const parts: PartRanges = ds.parts;
 * assert.deepEqual(parts.train, { start: 0, end: 12 });
 * assert.deepEqual(parts.test, { start: 16, end: 20 });
 * ```
 */
export type PartRanges = Readonly<Record<ForecastPart, Readonly<{ start: number; end: number }>>>;

/**
 * A series cut into forecasting windows and split chronologically into train, validation and
 * test parts, the normalisation fitted on the training part only (see the module comment for the
 * layout). A window belongs to the part that holds all of its targets, so no training window sees
 * a later value.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { ForecastDataset, seriesFromColumns } from 'bptt';
 *
 * const table = seriesFromColumns({ y: Array.from({ length: 20 }, (_, t) => t) }); // 0, 1, ..., 19
 * const ds = ForecastDataset.create(table, { target: 'y', window: 3, horizon: 2, split: { validation: 4, test: 4 } });
 * // Training rows 0..11: mean 5.5, population std sqrt((12^2 - 1) / 12).
 * assert.equal(ds.pipeline.targets[0].mean, 5.5);
 * assert.ok(Math.abs(ds.pipeline.targets[0].std - Math.sqrt(143 / 12)) < 1e-12);
 * const train = ds.origins('train');
 * assert.deepEqual(Array.from(train), [3, 4, 5, 6, 7, 8, 9, 10]);
 * assert.ok(train.every((o) => o + ds.pipeline.horizon <= ds.parts.train.end)); // no target past row 11
 * let windows = 0;
 * for (const batch of ds.batches('train', { batchSize: 4, shuffle: true, seed: 7 })) windows += batch.batch;
 * assert.equal(windows, 8);
 * ```
 */
export class ForecastDataset {
  /** The whole series, every part. */
  readonly table: SeriesTable;
  /** Fitted on the training part; save it with the model. */
  readonly pipeline: ForecastPipeline;
  /** The rows of each part. */
  readonly parts: PartRanges;
  /** Steps between consecutive window origins. */
  readonly stride: number;
  /** The table as inputs, [N, D], computed once. */
  private readonly matrix: Float32Array;

  private constructor(table: SeriesTable, pipeline: ForecastPipeline, parts: PartRanges, stride: number) {
    this.table = table;
    this.pipeline = pipeline;
    this.parts = parts;
    this.stride = stride;
    this.matrix = pipeline.transform(table);
  }

  /**
   * Splits the table and fits the pipeline on its training part. A training part shorter than one
   * window plus its horizon, or a non-empty held-out part shorter than the horizon, is a RangeError.
   */
  static create(table: SeriesTable, options: ForecastOptions): ForecastDataset {
    if (typeof options !== 'object' || options === null) throw new TypeError(`options must be an object { target, window, horizon, ... }, got ${describeValue(options)}`);
    const { window, horizon } = checkSettings(options);
    const stride = checkSize('stride', options.stride ?? 1);
    const N = table.length;
    const test = heldOut('split.test', options.split?.test, N);
    const validation = heldOut('split.validation', options.split?.validation, N);
    const trainEnd = N - test - validation;
    if (trainEnd < window + horizon) {
      throw new RangeError(`the training part has ${Math.max(trainEnd, 0)} steps (${N} in all, ${validation} for validation, ${test} for test), but one window of ${window} steps and a horizon of ${horizon} need ${window + horizon}`);
    }
    for (const [part, steps] of [['validation', validation], ['test', test]] as const) {
      if (steps > 0 && steps < horizon) throw new RangeError(`the ${part} part has ${steps} steps, fewer than the horizon (${horizon}): no window's targets fit in it`);
    }
    const parts: PartRanges = Object.freeze({
      train: Object.freeze({ start: 0, end: trainEnd }),
      validation: Object.freeze({ start: trainEnd, end: trainEnd + validation }),
      test: Object.freeze({ start: trainEnd + validation, end: N }),
    });
    return new ForecastDataset(table, ForecastPipeline.fit(table, options, trainEnd), parts, stride);
  }

  /** Origins of a part's windows, ascending: every window whose targets all lie in the part. */
  origins(part: ForecastPart): Int32Array {
    const { start, end } = this.range(part);
    const first = Math.max(start, this.pipeline.window);
    const last = end - this.pipeline.horizon;
    if (last < first) return new Int32Array(0);
    const out = new Int32Array(Math.floor((last - first) / this.stride) + 1);
    for (let k = 0; k < out.length; k++) out[k] = first + k * this.stride;
    return out;
  }

  /** The windows with these origins. */
  batch(origins: ArrayLike<number>): ForecastBatch {
    const { window: W, horizon: H } = this.pipeline;
    const C = this.pipeline.targetSize;
    const D = this.pipeline.inputSize;
    const B = origins.length;
    if (B < 1) throw new RangeError('a batch needs at least one window');
    for (let b = 0; b < B; b++) {
      if (!Number.isInteger(origins[b]) || origins[b] < W || origins[b] > this.table.length - H) {
        throw new RangeError(`origin ${b} must be an integer in [window = ${W}, rows - horizon = ${this.table.length - H}], got ${origins[b]}`);
      }
    }
    const targets = new Float32Array(H * B * C);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        // The targets are the first C inputs of the forecast rows.
        targets.set(this.matrix.subarray((origins[b] + h) * D, (origins[b] + h) * D + C), (h * B + b) * C);
      }
    }
    return {
      steps: W,
      batch: B,
      input: { kind: 'dense', data: gatherWindows(this.matrix, D, origins, W) },
      inputSize: D,
      targets,
      horizon: H,
      targetSize: C,
      origins: Int32Array.from(origins),
    };
  }

  /** A part's windows in batches of batchSize (the last one smaller), in time order or shuffled within the part. */
  *batches(part: ForecastPart, options: ForecastBatchOptions): Generator<ForecastBatch> {
    const batchSize = checkSize('batchSize', options?.batchSize);
    const origins = this.origins(part);
    if (options.shuffle) shuffleInPlace(origins, new Rng(options.seed ?? 0));
    for (let from = 0; from < origins.length; from += batchSize) yield this.batch(origins.subarray(from, from + batchSize));
  }

  private range(part: ForecastPart): { start: number; end: number } {
    if (!FORECAST_PARTS.includes(part)) throw new RangeError(`part must be one of ${FORECAST_PARTS.map((p) => `'${p}'`).join(', ')}, got ${JSON.stringify(part)}`);
    return this.parts[part];
  }
}

function heldOut(name: string, value: number | undefined, N: number): number {
  const v = value ?? 0.1;
  if (typeof v !== 'number' || !(v >= 0) || (v >= 1 && !Number.isInteger(v)) || v >= N) {
    throw new RangeError(`${name} must be a count of steps (an integer in [0, ${N})) or a fraction in (0, 1), got ${describeValue(value)}`);
  }
  return v < 1 ? Math.round(v * N) : v;
}
