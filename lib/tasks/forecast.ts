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

export type CovariateEncoding = 'numeric' | 'onehot';

export interface CovariateSpec {
  column: string;
  /** 'numeric' (default): normalised like the targets. 'onehot': one input per category seen in training. */
  encoding?: CovariateEncoding;
}

/** A numeric column's normalisation: z = (x - mean) / std. */
export interface NumericFeature {
  column: string;
  encoding: 'numeric';
  mean: number;
  /** The training part's population standard deviation, or 1 when that is 0 (a constant column). */
  std: number;
}

/** A categorical column's categories, sorted; category k is input k of its block. */
export interface OneHotFeature {
  column: string;
  encoding: 'onehot';
  categories: number[];
}

export type Feature = NumericFeature | OneHotFeature;

/** One-hot encoding is for a few categories; more usually means a continuous column. */
export const MAX_CATEGORIES = 1024;

export interface ForecastSettings {
  /** Past steps the model reads (W). */
  window: number;
  /** Future steps it forecasts (H). */
  horizon: number;
  /** Steps in one season (7 for daily data with a weekly pattern); 1 for none. Default 1. */
  season?: number;
}

export interface ForecastFeatureSpec {
  /** The column(s) to forecast. */
  target: string | readonly string[];
  /** Other columns the model reads (e.g. day of week), by name or with an encoding. */
  covariates?: readonly (string | CovariateSpec)[];
}

/**
 * Everything needed to turn a series into model inputs and model outputs back into values: the
 * fitted normalisation and the window settings. What a checkpoint saves (serialize()).
 */
export class ForecastPipeline {
  readonly targets: readonly NumericFeature[];
  readonly covariates: readonly Feature[];
  readonly window: number;
  readonly horizon: number;
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

  normalize(c: number, x: number): number {
    const f = this.targets[c];
    return (x - f.mean) / f.std;
  }

  /** JSON for a checkpoint's metadata. */
  serialize(): string {
    return JSON.stringify({ targets: this.targets, covariates: this.covariates, window: this.window, horizon: this.horizon, season: this.season });
  }

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

export type ForecastPart = 'train' | 'validation' | 'test';
export const FORECAST_PARTS: readonly ForecastPart[] = ['train', 'validation', 'test'];

/** Steps held out at the end: a count (an integer >= 0) or a fraction of the series in (0, 1). */
export interface ChronologicalSplit {
  /** Default 0.1. */
  validation?: number;
  /** Default 0.1. */
  test?: number;
}

export interface ForecastOptions extends ForecastFeatureSpec, ForecastSettings {
  split?: ChronologicalSplit;
  /** Steps between the origins of consecutive windows. Default 1 (every window). */
  stride?: number;
}

/** A batch of forecasting windows; `steps`, `batch` and `input` are what the engine's LayerBatch takes. */
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
  /** [B]: each window's origin (row of its first target). */
  origins: Int32Array;
}

export interface ForecastBatchOptions {
  batchSize: number;
  /** Shuffle the windows (within the part; default false). */
  shuffle?: boolean;
  /** Seed of the shuffle (default 0); pass a new one each epoch for a new order. */
  seed?: number;
}

/** Half-open row ranges. */
export type PartRanges = Readonly<Record<ForecastPart, Readonly<{ start: number; end: number }>>>;

export class ForecastDataset {
  readonly table: SeriesTable;
  readonly pipeline: ForecastPipeline;
  readonly parts: PartRanges;
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
