/**
 * `bptt train --task classify|forecast|adding|copy`, and `eval` / `predict` of their checkpoints:
 * the data of each task turned into whole-sequence batches for the one Trainer, its validation
 * and test metrics (with the task's baseline), and the task metadata a checkpoint keeps so that
 * eval and predict need nothing but the checkpoint and a file.
 */
import * as fs from 'fs';
import * as path from 'path';
import { OptimizerKind } from '../optim';
import { nativeAvailable } from '../native';
import { CellKind } from '../engine/spec';
import { BackendName, RNN } from '../rnn';
import type { HeadSpec } from '../engine/model';
import type { InitKind } from '../stack';
import { Tensor } from '../tensor';
import { Checkpoint, defaultBackend, loadCheckpoint, saveCheckpoint } from '../train/checkpoint';
import { EpochBatcher, SequenceBatch } from '../train/epochs';
import { ScheduleKind } from '../train/schedules';
import { StepInfo, Trainer, Validation } from '../train/trainer';
import { csvRows } from '../tasks/csv';
import { birthsForecast, nameGenderTask } from '../tasks/defaults';
import { CovariateSpec, ForecastBatch, ForecastDataset, ForecastPipeline } from '../tasks/forecast';
import { LabelledData, readLabelledCsv, readLabelledJsonl, labelledFromRecords, stratifiedSplit } from '../tasks/labelled';
import { argmaxRows, classificationMetrics, forecastErrors, seasonalScale } from '../tasks/metrics';
import { majorityClass, seasonalNaiveForecasts } from '../tasks/baselines';
import { collectForecasts, forecastReport } from '../tasks/reports';
import { EncodedSequences, SequenceBatcher, SequenceEncoder } from '../tasks/sequences';
import { FillPolicy, SeriesTable, readSeriesCsv, seriesColumn } from '../tasks/series';
import { textChunks, textLines } from '../tasks/text';
import { LongRangeBatch, longRangeTask } from '../tasks/longrange';
import { CliIO, CliOptions, SaveError, UsageError, checkOutput, describeModel, formatDuration, interruption, progress, scheduleFromFlags } from './common';

/** The tasks `bptt train --task` knows. */
export const TASKS = ['lm', 'classify', 'forecast', 'adding', 'copy'] as const;
export type TaskKind = (typeof TASKS)[number];

/** Flags of `bptt train` a task run reads. */
export interface TaskTrainFlags {
  cell: CellKind;
  layers: number;
  bidirectional?: boolean;
  dropout: number;
  init?: InitKind;
  hidden: number;
  batch: number;
  clip: number;
  clipValue?: number;
  optim: OptimizerKind;
  lr: number;
  schedule: ScheduleKind;
  warmup: number;
  decaySteps?: number;
  steps: number;
  epochs?: number;
  patience?: number;
  truncate?: number;
  seed: number;
  out?: string;
  resume?: string;
  json?: boolean;
  log?: string;
  logEvery?: number;
  // forecast
  column?: string;
  covariates?: string;
  window?: number;
  horizon?: number;
  season?: number;
  fill?: FillPolicy;
  validation?: number;
  test?: number;
  // classify
  textField?: string;
  labelField?: string;
  tokenize?: 'char' | 'word';
  lowercase?: boolean;
  // adding / copy
  length?: number;
  backend?: BackendName;
}

/** Per-task defaults for flags the user did not give. */
const TASK_DEFAULTS: Record<Exclude<TaskKind, 'lm'>, { cell: CellKind; hidden: number; epochs: number; lr: number; batch: number }> = {
  forecast: { cell: 'gru', hidden: 64, epochs: 10, lr: 3e-3, batch: 64 },
  classify: { cell: 'lstm', hidden: 64, epochs: 6, lr: 3e-3, batch: 32 },
  adding: { cell: 'lstm', hidden: 64, epochs: 1, lr: 3e-3, batch: 32 },
  copy: { cell: 'lstm', hidden: 64, epochs: 1, lr: 3e-3, batch: 32 },
};

/** A task's data made ready for the trainer and its scoring. */
interface PreparedTask {
  kind: Exclude<TaskKind, 'lm'>;
  /** The model's input width (token ids or features), output width and head. */
  inputSize: number;
  outputSize: number;
  head: HeadSpec;
  train: EpochBatcher;
  /** Scores on the validation part (lower metric is better); absent when there is none. */
  validate?: (rnn: RNN) => Promise<Validation>;
  /** The final metrics on the test part: the JSON line's fields. */
  test: (rnn: RNN) => Promise<Record<string, unknown>>;
  /** What the checkpoint keeps for eval and predict. */
  meta: Record<string, unknown>;
  /** One line: what is trained on. */
  summary: string;
}

function seedFor(seed: number, epoch: number): number {
  return (seed * 1_000_003 + epoch * 7919 + 17) >>> 0;
}

/** The model's outputs for a batch (probabilities or values), off the main thread. */
async function predictBatch(rnn: RNN, inputs: { data: Int32Array | Float32Array; shape: number[] }, lengths?: Int32Array): Promise<Float32Array> {
  const x = Tensor.from(inputs.data, inputs.shape);
  try {
    const y = await rnn.predictAsync(x, lengths ? { lengths } : {});
    try {
      return y.toArray() as Float32Array;
    } finally {
      y.dispose();
    }
  } finally {
    x.dispose();
  }
}

// ---------------------------------------------------------------- forecast

/** [H, B, C] time-major (the dataset's layout) as the regress head's [B, H*C] and back. */
function toRows(t: Float32Array, H: number, B: number, C: number): Float32Array {
  const out = new Float32Array(H * B * C);
  for (let h = 0; h < H; h++) for (let b = 0; b < B; b++) for (let c = 0; c < C; c++) out[b * H * C + h * C + c] = t[(h * B + b) * C + c];
  return out;
}

function fromRows(y: Float32Array, H: number, B: number, C: number): Float32Array {
  const out = new Float32Array(H * B * C);
  for (let h = 0; h < H; h++) for (let b = 0; b < B; b++) for (let c = 0; c < C; c++) out[(h * B + b) * C + c] = y[b * H * C + h * C + c];
  return out;
}

function forecastBatch(b: ForecastBatch): SequenceBatch {
  return {
    inputs: { data: b.input.data, shape: [b.steps, b.batch, b.inputSize] },
    targets: { data: toRows(b.targets, b.horizon, b.batch, b.targetSize), shape: [b.batch, b.horizon * b.targetSize] },
  };
}

function parseCovariates(text: string | undefined): CovariateSpec[] {
  if (text === undefined || text.trim() === '') return [];
  return text.split(',').map((part) => {
    const [column, encoding] = part.trim().split(':');
    if (!column) throw new UsageError(`--covariates: empty column name in ${JSON.stringify(text)}`);
    if (encoding !== undefined && encoding !== 'numeric' && encoding !== 'onehot') throw new UsageError(`--covariates: ${JSON.stringify(part)}: the encoding after ':' must be numeric or onehot`);
    return { column, encoding: (encoding ?? 'numeric') as 'numeric' | 'onehot' };
  });
}

async function readTable(file: string, columns: string[], fill: FillPolicy): Promise<SeriesTable> {
  if (!fs.existsSync(file)) throw new UsageError(`cannot read ${file}: no such file`);
  return readSeriesCsv(file, { columns, fill });
}

/** The forecast metrics of the JSON line, for one target column's report. */
function forecastFields(c: { model: { mae: number; rmse: number; mase: number | null }; naive: { mae: number }; seasonalNaive: { mae: number; mase: number | null }; scale: number }, windows: number) {
  return {
    mae: c.model.mae,
    rmse: c.model.rmse,
    mase: c.model.mase,
    naive_mae: c.naive.mae,
    seasonal_naive_mae: c.seasonalNaive.mae,
    seasonal_naive_mase: c.seasonalNaive.mase,
    beats_seasonal_naive: c.model.mae < c.seasonalNaive.mae,
    windows,
  };
}

async function prepareForecast(file: string | undefined, flags: TaskTrainFlags): Promise<PreparedTask> {
  let dataset: ForecastDataset;
  const fill: FillPolicy = flags.fill ?? 'none';
  if (file === undefined) {
    dataset = birthsForecast();
  } else {
    if (flags.column === undefined) throw new UsageError('--task forecast FILE needs --column NAME (the column to forecast)');
    if (flags.window === undefined || flags.horizon === undefined) throw new UsageError('--task forecast FILE needs --window W and --horizon N');
    const covariates = parseCovariates(flags.covariates);
    const table = await readTable(file, [flags.column, ...covariates.map((c) => c.column)], fill);
    dataset = ForecastDataset.create(table, {
      target: flags.column,
      covariates,
      window: flags.window,
      horizon: flags.horizon,
      season: flags.season ?? 1,
      split: { validation: flags.validation ?? 0.1, test: flags.test ?? 0.1 },
    });
  }
  const p = dataset.pipeline;
  const H = p.horizon;
  const C = p.targetSize;
  const batchSize = flags.batch;
  const trainWindows = dataset.origins('train').length;
  const train = new EpochBatcher(function* (epoch) {
    for (const b of dataset.batches('train', { batchSize, shuffle: true, seed: seedFor(flags.seed, epoch) })) yield forecastBatch(b);
  }, Math.ceil(trainWindows / batchSize));
  const predict = (rnn: RNN) => async (b: ForecastBatch) => fromRows(await predictBatch(rnn, { data: b.input.data, shape: [b.steps, b.batch, b.inputSize] }), H, b.batch, C);
  const score = async (rnn: RNN, part: 'validation' | 'test') => forecastReport(dataset, part, await collectForecasts(dataset, part, predict(rnn), { batchSize: 256 }));
  // MASE's denominators, fixed by the training part: eval on another file is measured on the same scale.
  const scales = p.targets.map((f) => seasonalScale(dataset.table.values[dataset.table.columns.indexOf(f.column)].subarray(0, dataset.parts.train.end), p.season));
  const hasValidation = dataset.origins('validation').length > 0;
  const hasTest = dataset.origins('test').length > 0;
  return {
    kind: 'forecast',
    inputSize: p.inputSize,
    outputSize: H * C,
    head: { kind: 'regress', positions: 'last' },
    train,
    ...(hasValidation
      ? {
          validate: async (rnn: RNN): Promise<Validation> => {
            const r = await score(rnn, 'validation');
            const c = r.columns[0];
            return { metric: c.model.mase ?? c.model.mae, metrics: { mae: c.model.mae, rmse: c.model.rmse, ...(c.model.mase !== null ? { mase: c.model.mase } : {}), seasonal_naive_mae: c.seasonalNaive.mae } };
          },
        }
      : {}),
    test: async (rnn) => {
      const part = hasTest ? 'test' : hasValidation ? 'validation' : null;
      if (part === null) throw new UsageError('the series has no validation or test part to score the model on; pass --test or --validation');
      const r = await score(rnn, part);
      return { task: 'forecast', part, ...forecastFields(r.columns[0], r.windows) };
    },
    meta: { kind: 'forecast', pipeline: JSON.parse(p.serialize()), fill, scales },
    summary:
      `${file ?? 'default: daily US births 1969-1988 (@stdlib)'}: ${dataset.table.length} steps, ${trainWindows} training windows of ${p.window} steps, ` +
      `${H} ahead, season ${p.season}, ${p.inputSize} inputs (${[p.targets[0].column, ...p.covariates.map((c) => `${c.column}${c.encoding === 'onehot' ? ' one-hot' : ''}`)].join(', ')})`,
  };
}

interface ForecastMeta {
  pipeline: ForecastPipeline;
  fill: FillPolicy;
  scales: number[];
}

function forecastMeta(task: Record<string, unknown>, what: string): ForecastMeta {
  const fill = task.fill as FillPolicy;
  const scales = task.scales;
  if (!Array.isArray(scales) || !scales.every((s) => typeof s === 'number' && s >= 0)) throw new UsageError(`${what}: its forecast metadata has no valid scales`);
  return { pipeline: ForecastPipeline.deserialize(JSON.stringify(task.pipeline)), fill: fill ?? 'none', scales: scales as number[] };
}

/** The table columns a forecast pipeline reads, targets first. */
function pipelineColumns(p: ForecastPipeline): string[] {
  return [...p.targets.map((f) => f.column), ...p.covariates.map((f) => f.column)];
}

/** The origins of every window of a file: each whose W inputs and H targets are rows of it. */
function fileOrigins(p: ForecastPipeline, table: SeriesTable, file: string): Int32Array {
  const N = table.length - p.horizon - p.window + 1;
  if (N < 1) throw new UsageError(`${file} has ${table.length} rows; one window of ${p.window} steps and a horizon of ${p.horizon} need ${p.window + p.horizon}`);
  return Int32Array.from({ length: N }, (_, i) => p.window + i);
}

/** Every window of a file forecast with the checkpoint's normalisation, scored like training's test part. */
async function evalForecast(rnn: RNN, meta: ForecastMeta, file: string, fill: FillPolicy): Promise<Record<string, unknown>> {
  const p = meta.pipeline;
  const table = await readTable(file, pipelineColumns(p), fill);
  const W = p.window;
  const H = p.horizon;
  const C = p.targetSize;
  const origins = fileOrigins(p, table, file);
  const N = origins.length;
  const y = table.values[0];
  const actual = new Float64Array(H * N);
  const model = new Float64Array(H * N);
  const batchSize = 256;
  for (let from = 0; from < N; from += batchSize) {
    const o = origins.subarray(from, from + batchSize);
    const B = o.length;
    const out = await predictBatch(rnn, { data: p.inputs(table, o), shape: [W, B, p.inputSize] });
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        actual[h * N + from + b] = y[o[b] + h];
        model[h * N + from + b] = p.denormalize(0, out[b * H * C + h * C]);
      }
    }
  }
  const scale = meta.scales[0];
  const modelErr = forecastErrors(actual, model, scale);
  const naive = forecastErrors(actual, seasonalNaiveForecasts(y, origins, H, 1), scale);
  const seasonal = forecastErrors(actual, seasonalNaiveForecasts(y, origins, H, p.season), scale);
  return { task: 'forecast', ...forecastFields({ model: modelErr, naive, seasonalNaive: seasonal, scale }, N) };
}

/** The next `horizon` values after the file's last row. */
async function predictForecast(rnn: RNN, meta: ForecastMeta, file: string, fill: FillPolicy): Promise<Record<string, unknown>[]> {
  const p = meta.pipeline;
  const table = await readTable(file, pipelineColumns(p), fill);
  if (table.length < p.window) throw new UsageError(`${file} has ${table.length} rows; the model reads windows of ${p.window}`);
  const H = p.horizon;
  const C = p.targetSize;
  const out = await predictBatch(rnn, { data: p.inputs(table, [table.length]), shape: [p.window, 1, p.inputSize] });
  return p.targets.map((f, c) => ({ column: f.column, after_row: table.length, forecast: Array.from({ length: H }, (_, h) => p.denormalize(c, out[h * C + c])) }));
}

// ---------------------------------------------------------------- classify

/** The JSON value of each non-blank line of a JSONL file, with its line number; invalid JSON is a UsageError naming the line. */
async function* jsonLines(file: string): AsyncGenerator<{ value: Record<string, unknown> | null; line: number }> {
  for await (const { text, line } of textLines(textChunks(file, file))) {
    if (text.trim() === '') continue;
    let value: Record<string, unknown> | null;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new UsageError(`${file}: line ${line}: not valid JSON (${(err as Error).message})`);
    }
    yield { value, line };
  }
}

async function readLabelled(file: string, textField: string, labelField: string, tokenize: 'char' | 'word', lowercase: boolean): Promise<LabelledData> {
  if (!fs.existsSync(file)) throw new UsageError(`cannot read ${file}: no such file`);
  const options = { tokenize, lowercase };
  if (/\.csv$/i.test(file)) return readLabelledCsv(file, { ...options, textColumn: textField, labelColumn: labelField });
  if (textField === 'text' && labelField === 'label') return readLabelledJsonl(file, options);
  // Other field names: each line's fields renamed to what the reader takes.
  const records: { text?: string; sequence?: number[][]; label: string | number }[] = [];
  for await (const { value: r, line } of jsonLines(file)) {
    if (typeof r !== 'object' || r === null) throw new UsageError(`${file}: line ${line}: expected a JSON object`);
    if (!(labelField in r)) throw new UsageError(`${file}: line ${line}: no ${JSON.stringify(labelField)} field (--label-field)`);
    if (!(textField in r) && !('sequence' in r)) throw new UsageError(`${file}: line ${line}: no ${JSON.stringify(textField)} field (--text-field)`);
    records.push({ ...(textField in r ? { text: r[textField] as string } : { sequence: r.sequence as number[][] }), label: r[labelField] as string });
  }
  return labelledFromRecords(records, { ...options, name: file });
}

/** Predictions (class ids) and probabilities of an encoded set, in its order. */
async function classifySet(rnn: RNN, set: EncodedSequences): Promise<{ predicted: Int32Array; probabilities: Float32Array }> {
  const K = rnn.outputSize;
  const batcher = new SequenceBatcher(set, { batchSize: 256 });
  const predicted = new Int32Array(set.count);
  const probabilities = new Float32Array(set.count * K);
  for (const b of batcher.batches()) {
    const shape = b.input.kind === 'tokens' ? [b.steps, b.batch] : [b.steps, b.batch, set.kind === 'dense' ? set.inputSize : 1];
    const p = await predictBatch(rnn, { data: b.input.data, shape }, b.lengths);
    const best = argmaxRows(p, K);
    b.indices.forEach((i, k) => {
      predicted[i] = best[k];
      probabilities.set(p.subarray(k * K, (k + 1) * K), i * K);
    });
  }
  return { predicted, probabilities };
}

function classifyFields(labels: Int32Array, predicted: Int32Array, K: number, majority: number): Record<string, unknown> {
  const m = classificationMetrics(labels, predicted, K);
  let hits = 0;
  for (const l of labels) if (l === majority) hits++;
  return { task: 'classify', accuracy: m.accuracy, macro_f1: m.macroF1, majority_accuracy: hits / labels.length, beats_majority: m.accuracy > hits / labels.length, examples: labels.length };
}

function sequenceBatch(b: ReturnType<SequenceBatcher['batch']>, inputSize: number): SequenceBatch {
  return {
    inputs: { data: b.input.data, shape: b.input.kind === 'tokens' ? [b.steps, b.batch] : [b.steps, b.batch, inputSize] },
    targets: { data: b.labels, shape: [b.batch] },
    lengths: b.lengths,
  };
}

async function prepareClassify(file: string | undefined, flags: TaskTrainFlags): Promise<PreparedTask> {
  let encoder: SequenceEncoder;
  let train: EncodedSequences;
  let validation: EncodedSequences;
  let test: EncodedSequences;
  let source: string;
  if (file === undefined) {
    ({ encoder, train, validation, test } = nameGenderTask(flags.seed));
    source = 'default: first names → female/male (@stdlib, names in both lists removed)';
  } else {
    const data = await readLabelled(file, flags.textField ?? 'text', flags.labelField ?? 'label', flags.tokenize ?? 'char', flags.lowercase ?? false);
    if (data.labelNames.length < 2) throw new UsageError(`${file} has one label (${JSON.stringify(data.labelNames[0])}); classification needs at least two`);
    const split = stratifiedSplit(data, { validation: flags.validation ?? 0.1, test: flags.test ?? 0.1, seed: flags.seed });
    encoder = SequenceEncoder.fit(data, split.train);
    train = encoder.encode(data, split.train);
    validation = encoder.encode(data, split.validation);
    test = encoder.encode(data, split.test);
    source = file;
  }
  const K = encoder.numClasses;
  const D = encoder.inputSize;
  const majority = majorityClass(train.labels, K);
  const batcher = new SequenceBatcher(train, { batchSize: flags.batch });
  const data = new EpochBatcher(function* (epoch) {
    for (const b of batcher.batches({ shuffle: true, seed: seedFor(flags.seed, epoch) })) yield sequenceBatch(b, D);
  }, batcher.batchCount);
  const score = async (rnn: RNN, set: EncodedSequences) => classifyFields(set.labels, (await classifySet(rnn, set)).predicted, K, majority);
  return {
    kind: 'classify',
    inputSize: D,
    outputSize: K,
    head: { kind: 'classify', pool: 'last' },
    train: data,
    ...(validation.count > 0
      ? {
          validate: async (rnn: RNN): Promise<Validation> => {
            const f = await score(rnn, validation);
            return { metric: -(f.macro_f1 as number), metrics: { accuracy: f.accuracy as number, macro_f1: f.macro_f1 as number } };
          },
        }
      : {}),
    test: async (rnn) => {
      const set = test.count > 0 ? test : validation.count > 0 ? validation : train;
      return { ...(await score(rnn, set)), part: set === test ? 'test' : set === validation ? 'validation' : 'train' };
    },
    meta: { kind: 'classify', encoder: JSON.parse(encoder.serialize()), majority, textField: flags.textField ?? 'text', labelField: flags.labelField ?? 'label' },
    summary: `${source}: ${train.count} training, ${validation.count} validation, ${test.count} test examples; ${K} classes (${encoder.labels.join(', ')}); ${encoder.kind === 'tokens' ? `${D - 1} tokens` : `${D} inputs per step`}`,
  };
}

interface ClassifyMeta {
  encoder: SequenceEncoder;
  majority: number;
  textField: string;
  labelField: string;
  tokenize: 'char' | 'word';
  lowercase: boolean;
}

function classifyMeta(task: Record<string, unknown>): ClassifyMeta {
  const encoder = SequenceEncoder.deserialize(JSON.stringify(task.encoder));
  const state = task.encoder as { tokenize?: 'char' | 'word'; lowercase?: boolean };
  return { encoder, majority: Number(task.majority ?? 0), textField: String(task.textField ?? 'text'), labelField: String(task.labelField ?? 'label'), tokenize: state.tokenize ?? 'char', lowercase: state.lowercase ?? false };
}

/** A labelled file read as the checkpoint's run read its data, encoded with its encoder. */
async function encodeFile(meta: ClassifyMeta, file: string): Promise<EncodedSequences> {
  const data = await readLabelled(file, meta.textField, meta.labelField, meta.tokenize, meta.lowercase);
  try {
    return meta.encoder.encode(data);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

async function evalClassify(rnn: RNN, meta: ClassifyMeta, file: string): Promise<Record<string, unknown>> {
  const set = await encodeFile(meta, file);
  return classifyFields(set.labels, (await classifySet(rnn, set)).predicted, meta.encoder.numClasses, meta.majority);
}

async function predictClassify(rnn: RNN, meta: ClassifyMeta, file: string): Promise<Record<string, unknown>[]> {
  if (!fs.existsSync(file)) throw new UsageError(`cannot read ${file}: no such file`);
  const texts: string[] = [];
  if (/\.csv$/i.test(file)) {
    for await (const row of csvRows(file, [meta.textField])) texts.push(row.values[0]);
  } else {
    for await (const { value: r, line } of jsonLines(file)) {
      const t = typeof r === 'object' && r !== null ? r[meta.textField] : undefined;
      if (typeof t !== 'string') throw new UsageError(`${file}: line ${line}: no text in field ${JSON.stringify(meta.textField)}`);
      texts.push(t);
    }
  }
  if (texts.length === 0) throw new UsageError(`${file} has no examples`);
  // Labels are not needed to predict: every example gets the first class as a stand-in.
  const data = labelledFromRecords(texts.map((text) => ({ text, label: meta.encoder.labels[0] })), { tokenize: meta.tokenize, lowercase: meta.lowercase, name: file });
  const empty = texts.findIndex((t) => meta.encoder.encodeText(t).length === 0);
  if (empty >= 0) throw new UsageError(`${file}: example ${empty + 1} has no tokens`);
  const set = meta.encoder.encode(data);
  const { predicted, probabilities } = await classifySet(rnn, set);
  const K = meta.encoder.numClasses;
  return texts.map((text, i) => ({ text, label: meta.encoder.labels[predicted[i]], probabilities: Object.fromEntries(meta.encoder.labels.map((l, k) => [l, probabilities[i * K + k]])) }));
}

// ---------------------------------------------------------------- a batch to diagnose

/**
 * One batch of a classify or forecast checkpoint's data, as the model read it in training: the
 * inputs [T, B] (token ids) or [T, B, D], the head's targets (class ids [B]; normalised forecasts
 * [B, H*C]) and, for padded sequences, their lengths. What `bptt diagnose` diagnoses.
 */
export interface TaskDataBatch {
  inputs: Tensor;
  targets: Tensor;
  /** Valid steps of each sequence, [B]; absent when every one has T. */
  lengths?: Int32Array;
  /** The batch in words: how many of what, from where. */
  what: string;
}

/** min(count, total) indices spread evenly over [0, total), the first and the last included. */
function spread(total: number, count: number): Int32Array {
  const B = Math.min(total, count);
  return Int32Array.from({ length: B }, (_, b) => (B === 1 ? 0 : Math.floor((b * (total - 1)) / (B - 1))));
}

/** The windows with these origins, normalised with the checkpoint's pipeline (a ForecastDataset fits its own). */
function pipelineWindows(p: ForecastPipeline, table: SeriesTable, origins: Int32Array): ForecastBatch {
  const B = origins.length;
  const H = p.horizon;
  const C = p.targetSize;
  const targets = new Float32Array(H * B * C);
  p.targets.forEach((f, c) => {
    const y = seriesColumn(table, f.column);
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) targets[(h * B + b) * C + c] = p.normalize(c, y[origins[b] + h]);
  });
  return { steps: p.window, batch: B, input: { kind: 'dense', data: p.inputs(table, origins) }, inputSize: p.inputSize, targets, horizon: H, targetSize: C, origins };
}

async function forecastDataBatch(meta: ForecastMeta, file: string | undefined, size: number, checkpoint: string): Promise<{ batch: SequenceBatch; what: string }> {
  const p = meta.pipeline;
  let table: SeriesTable;
  let origins: Int32Array;
  if (file === undefined) {
    const births = birthsForecast();
    if (births.pipeline.serialize() !== p.serialize()) {
      throw new RangeError(`${checkpoint} was trained on other data than the default births series (its columns, window, horizon or normalisation differ): give the file it was trained on`);
    }
    ({ table } = births);
    origins = births.origins('test');
  } else {
    table = await readTable(file, pipelineColumns(p), meta.fill);
    origins = fileOrigins(p, table, file);
  }
  const chosen = spread(origins.length, size).map((i) => origins[i]);
  const source = file ?? "the births series' test part";
  return { batch: forecastBatch(pipelineWindows(p, table, chosen)), what: `${chosen.length} windows of ${p.window} steps (${p.horizon} ahead) of ${source}` };
}

async function classifyDataBatch(meta: ClassifyMeta, file: string | undefined, size: number, seed: number, checkpoint: string): Promise<{ batch: SequenceBatch; what: string }> {
  let set: EncodedSequences;
  if (file === undefined) {
    const names = nameGenderTask(seed);
    if (names.encoder.labels.join('\n') !== meta.encoder.labels.join('\n')) {
      throw new RangeError(`${checkpoint} classifies ${meta.encoder.labels.join(', ')}, not the default first names' ${names.encoder.labels.join(', ')}: give the file it was trained on`);
    }
    set = meta.encoder.encode(names.data, names.split.test);
  } else {
    set = await encodeFile(meta, file);
  }
  const b = new SequenceBatcher(set, { batchSize: size }).batch(spread(set.count, size));
  const source = file ?? `the first names' test part (split with seed ${seed})`;
  return { batch: sequenceBatch(b, meta.encoder.inputSize), what: `${b.batch} examples of ${source}, up to ${b.steps} steps` };
}

/**
 * At most `size` sequences (classify) or windows (forecast) of a task checkpoint's data, spread
 * evenly over FILE (all of it, read and encoded or normalised as eval reads it) or, without one,
 * over the test part of the task's default data (births, first names) as its training run split
 * it. The data goes through the checkpoint's own encoder or normalisation.
 *
 * @throws UsageError for a file that cannot be read or holds too little; RangeError/TypeError for
 * data the checkpoint's encoder or normalisation cannot take, or a checkpoint that was not trained
 * on the default data when no file is given.
 */
export async function taskDataBatch(ck: Checkpoint, file: string | undefined, size: number, checkpoint = 'the checkpoint'): Promise<TaskDataBatch> {
  const task = ck.task;
  if (task?.kind !== 'forecast' && task?.kind !== 'classify') throw new RangeError(`${checkpoint} is not a classify or forecast checkpoint (task ${String(task?.kind ?? 'lm')})`);
  const run = ck.hyperparameters.run as { seed?: unknown } | undefined;
  const seed = typeof run?.seed === 'number' ? run.seed : 0;
  const { batch, what } = task.kind === 'forecast' ? await forecastDataBatch(forecastMeta(task, checkpoint), file, size, checkpoint) : await classifyDataBatch(classifyMeta(task), file, size, seed, checkpoint);
  return { inputs: Tensor.from(batch.inputs.data, batch.inputs.shape), targets: Tensor.from(batch.targets.data, batch.targets.shape), ...(batch.lengths ? { lengths: batch.lengths } : {}), what };
}

// ---------------------------------------------------------------- adding / copy

/** Batches per "epoch" of a generated task: the unit of validation and of the data position. */
const LONG_RANGE_EPOCH = 50;

function prepareLongRange(kind: 'adding' | 'copy', flags: TaskTrainFlags): PreparedTask {
  const length = flags.length ?? (kind === 'adding' ? 50 : 20);
  const make = (seed: number) => longRangeTask(kind, { length, seed });
  const gen = make(0);
  const asBatch = (b: LongRangeBatch): SequenceBatch => {
    const batch: SequenceBatch = { inputs: { data: b.inputs.toArray() as Float32Array | Int32Array, shape: [...b.inputs.shape] }, targets: { data: b.targets.toArray() as Float32Array | Int32Array, shape: [...b.targets.shape] } };
    b.inputs.dispose();
    b.targets.dispose();
    return batch;
  };
  const train = new EpochBatcher(function* (epoch) {
    const g = make(seedFor(flags.seed, epoch));
    for (let i = 0; i < LONG_RANGE_EPOCH; i++) yield asBatch(g.batch(flags.batch));
  }, LONG_RANGE_EPOCH);
  // Held-out sequences from their own seeds, the same for every run with this --seed.
  const validation = make(seedFor(flags.seed, -1)).batches(128, 2);
  const test = make(seedFor(flags.seed, -2)).batches(128, 4);
  const evaluate = (rnn: RNN, batches: LongRangeBatch[]): Record<string, number> => {
    const predict = (x: Tensor): Float32Array => {
      const y = rnn.predict(x);
      try {
        return y.toArray() as Float32Array;
      } finally {
        y.dispose();
      }
    };
    const m = { ...gen.evaluate(predict, batches) } as Record<string, number>;
    delete m.count;
    return m;
  };
  const metric = kind === 'adding' ? 'mse' : 'loss';
  return {
    kind,
    inputSize: gen.inputSize,
    outputSize: gen.outputSize,
    head: gen.head,
    train,
    validate: async (rnn: RNN): Promise<Validation> => {
      const m = evaluate(rnn, validation);
      return { metric: m[metric], metrics: m };
    },
    test: async (rnn) => {
      const m = evaluate(rnn, test);
      return { task: kind, ...m, beats_baseline: m[metric] < m[`baseline_${metric}`], length, sequences: 4 * 128 };
    },
    meta: { kind, length },
    summary: `${kind === 'adding' ? `the adding problem, T = ${length}` : `the copy task, delay ${length} (${length + 20} steps)`}, generated (${LONG_RANGE_EPOCH} batches an epoch); baseline ${gen.baseline.toFixed(4)}`,
  };
}

// ---------------------------------------------------------------- training

/** Writes the final JSON line or the human summary. */
function report(io: CliIO, json: boolean, fields: Record<string, unknown>, human: string): void {
  io.stdout.write(json ? `${JSON.stringify(fields)}\n` : `${human}\n`);
}

function describeFields(fields: Record<string, unknown>): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k} ${typeof v === 'number' ? (Number.isInteger(v) ? v : v.toFixed(4)) : String(v)}`)
    .join(', ');
}

/** The metrics in words, saying whether the model beats its baseline. */
function verdict(fields: Record<string, unknown>): string {
  const f = (v: unknown) => (typeof v === 'number' ? v.toFixed(4) : String(v));
  if (fields.task === 'forecast') {
    return fields.beats_seasonal_naive
      ? `The model beats the seasonal-naive forecast: MAE ${f(fields.mae)} against ${f(fields.seasonal_naive_mae)} (naive ${f(fields.naive_mae)}), MASE ${f(fields.mase)}.`
      : `The model does NOT beat the seasonal-naive forecast: MAE ${f(fields.mae)} against ${f(fields.seasonal_naive_mae)} (naive ${f(fields.naive_mae)}).`;
  }
  if (fields.task === 'classify') {
    return fields.beats_majority
      ? `The model beats the majority class: accuracy ${f(fields.accuracy)} against ${f(fields.majority_accuracy)}, macro-F1 ${f(fields.macro_f1)}.`
      : `The model does NOT beat the majority class: accuracy ${f(fields.accuracy)} against ${f(fields.majority_accuracy)}.`;
  }
  if (fields.task === 'adding' || fields.task === 'copy') {
    const m = fields.task === 'adding' ? 'mse' : 'loss';
    return `The model ${fields.beats_baseline ? 'beats' : 'does NOT beat'} the baseline: ${m} ${f(fields[m])} against ${f(fields[`baseline_${m}`])}.`;
  }
  return describeFields(fields);
}

/** The path of the latest-state checkpoint beside the best one: model.safetensors → model.last.safetensors. */
export function lastPath(out: string): string {
  const ext = path.extname(out);
  return `${out.slice(0, out.length - ext.length)}.last${ext || '.safetensors'}`;
}

export async function trainTask(kind: Exclude<TaskKind, 'lm'>, file: string | undefined, flags: TaskTrainFlags, given: (name: string) => boolean, io: CliIO, options: CliOptions): Promise<number> {
  const defaults = TASK_DEFAULTS[kind];
  const pick = <K extends 'cell' | 'hidden' | 'lr' | 'batch'>(name: K): TaskTrainFlags[K] => (given(name) ? flags[name] : (defaults[name] as TaskTrainFlags[K]));
  flags = { ...flags, cell: pick('cell'), hidden: pick('hidden'), lr: pick('lr'), batch: pick('batch') };
  const out = flags.out ?? `${kind}.safetensors`;
  checkOutput(out);
  const json = flags.json === true;
  // With --json, stdout carries the one JSON line; progress and notes go to stderr.
  const human: CliIO = json ? { stdout: io.stderr, stderr: io.stderr } : io;

  const resumed: Checkpoint | null = flags.resume ? loadCheckpoint(flags.resume, flags.backend ? { backend: flags.backend } : {}) : null;
  if (resumed && (!resumed.training || !resumed.optimizer || resumed.task?.kind !== kind)) {
    throw new UsageError(`${flags.resume} is not a training checkpoint of a --task ${kind} run (no training state, optimizer or task metadata)`);
  }
  const task = await prepare(kind, file, flags);
  const backend: BackendName = flags.backend ?? defaultBackend(task.head);
  if (backend === 'reference' && flags.backend === undefined) {
    io.stderr.write(`bptt: note: ${nativeAvailable() ? `the native backend does not run the '${task.head.kind}' head` : 'the native addon did not load'}; training on the (slow) pure-TS reference backend\n`);
  }
  const rnn =
    resumed?.rnn ??
    new RNN({
      inputSize: task.inputSize,
      hiddenSize: flags.hidden,
      outputSize: task.outputSize,
      seed: flags.seed,
      backend,
      cell: flags.cell,
      numLayers: flags.layers,
      bidirectional: flags.bidirectional ?? false,
      dropout: flags.dropout,
      head: task.head,
      ...(flags.init !== undefined ? { init: flags.init } : {}),
    });
  if (rnn.inputSize !== task.inputSize || rnn.outputSize !== task.outputSize) {
    throw new UsageError(`${flags.resume} has ${rnn.inputSize} inputs and ${rnn.outputSize} outputs, but this data needs ${task.inputSize} and ${task.outputSize}`);
  }
  const perEpoch = task.train.batchesPerEpoch;
  const steps = given('steps') ? flags.steps : (flags.epochs ?? defaults.epochs) * perEpoch;
  const schedule = scheduleFromFlags(flags.schedule, flags.lr, flags.warmup, flags.decaySteps, steps);
  const trainer = new Trainer(rnn, {
    optimizer: resumed?.optimizer ?? flags.optim,
    lr: schedule,
    ...(flags.truncate !== undefined ? { truncate: flags.truncate } : {}),
    ...(flags.clip ? { clipNorm: flags.clip } : {}),
    ...(flags.clipValue !== undefined ? { clipValue: flags.clipValue } : {}),
    ...(flags.log !== undefined ? { log: flags.log, ...(flags.logEvery !== undefined ? { logEvery: flags.logEvery } : {}) } : {}),
    task: kind,
    seed: flags.seed,
  });
  if (resumed?.training) trainer.loadState(resumed.training, task.train);

  const last = lastPath(out);
  const hyperparameters = { run: { task: kind, hidden: flags.hidden, batch: flags.batch, lr: flags.lr, optim: flags.optim, clip: flags.clip || null, seed: flags.seed, truncate: flags.truncate ?? null } };
  const save = (file: string): void => saveCheckpoint(file, rnn, { trainer, task: task.meta, hyperparameters });

  const stop = interruption(io, options);

  human.stdout.write(
    `training --task ${kind} on ${task.summary}; ${describeModel(rnn)} ${rnn.hiddenSize}, batch ${flags.batch}, ${perEpoch} updates per epoch, ` +
      `${flags.truncate !== undefined ? `BPTT truncated to ${flags.truncate} steps` : 'full BPTT'}, ${flags.optim}, lr ${flags.lr}${schedule.kind === 'constant' ? '' : ` (${schedule.kind})`}${flags.clip ? `, clip ${flags.clip}` : ''}; ` +
      `${resumed ? `resuming at step ${trainer.step}, ` : ''}${steps} steps\n`,
  );
  const bar = progress(human, steps);
  const started = performance.now();
  let smooth = 0;
  let done = 0;
  let improved = false;
  const startStep = trainer.step;
  let result;
  try {
    result = await trainer.fit(task.train, {
      steps,
      signal: stop.signal,
      ...(task.validate
        ? {
            validate: async (): Promise<Validation> => {
              const v = await task.validate!(rnn);
              bar.log(`step ${trainer.step}: validation ${describeFields(v.metrics)}`);
              return v;
            },
            ...(flags.patience !== undefined ? { patience: flags.patience } : {}),
            onImprove: () => {
              improved = true;
              try {
                save(out);
              } catch (err) {
                throw new SaveError(`${(err as Error).message}; the run stopped after step ${trainer.step}`);
              }
            },
          }
        : {}),
      onStep: (info: StepInfo) => {
        done++;
        smooth = 0.95 * smooth + 0.05 * info.loss;
        const elapsed = (performance.now() - started) / 1000;
        bar.update(info, done, steps, smooth / (1 - 0.95 ** done), (done * info.tokens) / elapsed, ((steps - done) * elapsed) / done);
      },
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (trainer.step === startStep || err instanceof SaveError) throw err;
    try {
      save(last);
    } catch (saveErr) {
      throw new UsageError(`${message} (saving the last good state, step ${trainer.step}, to ${last} failed too: ${(saveErr as Error).message})`);
    }
    throw new UsageError(`${message} (the last good state, step ${trainer.step}, was saved to ${last})`);
  } finally {
    bar.stop();
    stop.release();
    trainer.dispose();
  }
  // The latest state, to --resume from; --out holds the best model (by validation) or, without
  // validation, this same state.
  save(last);
  const bestSaved = improved || (resumed !== null && task.validate !== undefined && fs.existsSync(out));
  if (!bestSaved) save(out);
  const best = bestSaved ? loadCheckpoint(out, { backend: rnn.backend }).rnn : rnn;
  const metrics = await task.test(best);
  const fields = { ...metrics, steps: trainer.step, epochs: trainer.step / perEpoch, stopped_early: result.stoppedEarly, checkpoint: out };
  human.stdout.write(
    `${result.aborted ? 'stopped' : result.stoppedEarly ? 'stopped early (no better validation in --patience validations)' : 'done'} after ${result.steps} steps (step ${trainer.step} in all) in ${formatDuration(result.seconds)}; ` +
      `best model in ${out}, latest state in ${last}\n`,
  );
  report(io, json, fields, `${describeFields(metrics)}\n${verdict(metrics)}`);
  if (best !== rnn) best.dispose();
  return result.aborted ? 130 : 0;
}

async function prepare(kind: Exclude<TaskKind, 'lm'>, file: string | undefined, flags: TaskTrainFlags): Promise<PreparedTask> {
  try {
    if (kind === 'forecast') return await prepareForecast(file, flags);
    if (kind === 'classify') return await prepareClassify(file, flags);
    return prepareLongRange(kind, flags);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError((err as Error).message);
  }
}

// ---------------------------------------------------------------- eval / predict

/** `bptt eval CKPT FILE` for a task checkpoint: the whole file scored, one JSON line with --json. */
/**
 * What `command` does with a FILE for a task checkpoint: the forecast or classify action with the
 * checkpoint's settings; other tasks read no files. Every failure becomes a one-line UsageError.
 */
async function onTaskFile<R>(
  ck: Checkpoint,
  checkpoint: string,
  command: 'eval' | 'predict',
  actions: { forecast(meta: ForecastMeta): Promise<R>; classify(meta: ClassifyMeta): Promise<R> },
): Promise<R> {
  const task = ck.task!;
  try {
    if (task.kind === 'forecast') return await actions.forecast(forecastMeta(task, checkpoint));
    if (task.kind === 'classify') return await actions.classify(classifyMeta(task));
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError((err as Error).message);
  }
  throw new UsageError(`${checkpoint} is a --task ${String(task.kind)} checkpoint, which ${command} does not read files for`);
}

export async function evalTask(ck: Checkpoint, checkpoint: string, file: string, flags: { json?: boolean; fill?: FillPolicy }, io: CliIO): Promise<number> {
  const fields = await onTaskFile(ck, checkpoint, 'eval', {
    forecast: (meta) => evalForecast(ck.rnn, meta, file, flags.fill ?? meta.fill),
    classify: (meta) => evalClassify(ck.rnn, meta, file),
  });
  report(io, flags.json === true, fields, `${describeFields(fields)}\n${verdict(fields)}`);
  return 0;
}

/** `bptt predict CKPT FILE`: one JSON line per prediction (stdout or --out), or all in one line with --json. */
export async function predictTask(ck: Checkpoint, checkpoint: string, file: string, flags: { json?: boolean; out?: string; fill?: FillPolicy }, io: CliIO): Promise<number> {
  const rows = await onTaskFile(ck, checkpoint, 'predict', {
    forecast: (meta) => predictForecast(ck.rnn, meta, file, flags.fill ?? meta.fill),
    classify: (meta) => predictClassify(ck.rnn, meta, file),
  });
  writePredictions(rows, flags, io);
  return 0;
}

export function writePredictions(rows: Record<string, unknown>[], flags: { json?: boolean; out?: string }, io: CliIO): void {
  const text = flags.json ? `${JSON.stringify({ predictions: rows })}\n` : rows.map((r) => `${JSON.stringify(r)}\n`).join('');
  if (flags.out !== undefined) {
    checkOutput(flags.out);
    fs.writeFileSync(flags.out, text);
    io.stdout.write(flags.json ? `${JSON.stringify({ predictions: rows.length, out: flags.out })}\n` : `${rows.length} predictions written to ${flags.out}\n`);
  } else {
    io.stdout.write(text);
  }
}
