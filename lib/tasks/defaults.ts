/**
 * The data the CLI uses when the user brings none, ready to train on: no network, no files (the
 * data ships in npm packages).
 */
import * as fs from 'fs';
import { firstNameLists } from '../train/data';
import { ForecastDataset } from './forecast';
import { LabelledData, SplitIndices, labelledFromRecords, stratifiedSplit } from './labelled';
import { SeriesTable, seriesFromColumns } from './series';
import { EncodedSequences, SequenceEncoder } from './sequences';

const BIRTHS_PACKAGE = '@stdlib/datasets-cdc-nchs-us-births-1969-1988';

/**
 * The default forecast's settings: the next 14 days from the last 8 weeks, a weekly season.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { BIRTHS_FORECAST, birthsForecast } from 'bptt';
 *
 * assert.deepEqual(BIRTHS_FORECAST, { window: 56, horizon: 14, season: 7 });
 * const { window, horizon, season } = birthsForecast().pipeline;
 * assert.deepEqual({ window, horizon, season }, BIRTHS_FORECAST);
 * ```
 */
export const BIRTHS_FORECAST = Object.freeze({ window: 56, horizon: 14, season: 7 });

/**
 * Daily US births, 1969-01-01 to 1988-12-31 (7,305 days, none missing; CDC/NCHS via the
 * `@stdlib/datasets-cdc-nchs-us-births-1969-1988` package, read from disk): columns 'births' and
 * 'day_of_week' (1 = Monday ... 7 = Sunday), times the ISO dates. Rows are checked to be
 * consecutive days.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { birthsTable, seriesColumn } from 'bptt';
 *
 * const table = birthsTable();
 * assert.equal(table.length, 7305); // 20 years, 5 of them leap years
 * assert.deepEqual([table.times?.[0], table.times?.[7304]], ['1969-01-01', '1988-12-31']);
 * const births = seriesColumn(table, 'births');
 * const day = seriesColumn(table, 'day_of_week');
 * assert.equal(day[0], 3); // 1969-01-01 was a Wednesday
 * // The weekly season: fewer births on Sundays than on Tuesdays (scheduled deliveries).
 * const mean = (d: number) => births.filter((_, i) => day[i] === d).reduce((a, b) => a + b) / day.filter((x) => x === d).length;
 * assert.ok(mean(7) < 0.9 * mean(2));
 * ```
 */
export function birthsTable(): SeriesTable {
  const file = require.resolve(`${BIRTHS_PACKAGE}/data/data.json`);
  const rows: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (!Array.isArray(rows) || rows.length === 0) throw new TypeError(`${file} is not a JSON array of days`);
  const births = new Float64Array(rows.length);
  const dayOfWeek = new Float64Array(rows.length);
  const times: string[] = [];
  let previous = NaN;
  rows.forEach((r: Record<string, unknown>, i) => {
    const ok = typeof r === 'object' && r !== null && [r.year, r.month, r.date_of_month, r.day_of_week, r.births].every((v) => Number.isInteger(v));
    const day = ok ? Date.UTC(r.year as number, (r.month as number) - 1, r.date_of_month as number) : NaN;
    if (!ok || (i > 0 && day - previous !== 86_400_000) || ((new Date(day).getUTCDay() + 6) % 7) + 1 !== r.day_of_week) {
      throw new TypeError(`${file}: entry ${i} is not the day after the entry before it, with its day of week and birth count`);
    }
    previous = day;
    births[i] = r.births as number;
    dayOfWeek[i] = r.day_of_week as number;
    times.push(new Date(day).toISOString().slice(0, 10));
  });
  return seriesFromColumns({ births, day_of_week: dayOfWeek }, { times });
}

/**
 * The births forecasting task: target 'births', day of week one-hot (D = 8 inputs), window 56,
 * horizon 14, season 7; the last year (1988, 366 days) held out as the test part and the year
 * before (1987) as the validation part, the normalisation fitted on 1969-1986.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { birthsForecast, forecastReport } from 'bptt';
 *
 * const ds = birthsForecast();
 * assert.deepEqual(ds.parts.test, { start: 6939, end: 7305 }); // 1988: 366 days
 * assert.deepEqual(ds.parts.validation, { start: 6574, end: 6939 }); // 1987: 365 days
 * assert.equal(ds.pipeline.inputSize, 8); // births, then 7 one-hot days
 * const windows = ds.origins('test').length;
 * assert.equal(windows, 366 - 14 + 1);
 * // The bar to clear: the seasonal-naive forecast (same weekday last week) is far better than the naive one.
 * const { naive, seasonalNaive } = forecastReport(ds, 'test', new Float64Array(14 * windows)).columns[0];
 * assert.ok(seasonalNaive.mae < naive.mae / 2);
 * ```
 */
export function birthsForecast(): ForecastDataset {
  const table = birthsTable();
  const times = table.times as readonly string[];
  const year = (t: string) => t.slice(0, 4);
  const lastYear = year(times[times.length - 1]);
  const test = times.filter((t) => year(t) === lastYear).length;
  const validation = times.filter((t) => year(t) === String(Number(lastYear) - 1)).length;
  return ForecastDataset.create(table, {
    target: 'births',
    covariates: [{ column: 'day_of_week', encoding: 'onehot' }],
    ...BIRTHS_FORECAST,
    split: { validation, test },
  });
}

/**
 * First names labelled 'female' or 'male', from the two `@stdlib` first-name lists (English) with
 * every name that is in both removed (it has no single answer), sorted, as character tokens.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { nameGenderData } from 'bptt';
 *
 * const data = nameGenderData();
 * assert.equal(data.kind, 'tokens');
 * assert.deepEqual(data.labelNames, ['female', 'male']);
 * if (data.kind !== 'tokens') throw new Error('text expected');
 * const name = (i: number) => Array.from(data.ids.subarray(data.offsets[i], data.offsets[i + 1]), (id) => data.tokens[id]).join('');
 * const names = Array.from({ length: data.count }, (_, i) => name(i));
 * assert.equal(new Set(names).size, data.count); // each name once, with one label
 * assert.ok(names.every((n, i) => i === 0 || names[i - 1] < n)); // sorted
 * ```
 */
export function nameGenderData(): LabelledData {
  const { female, male } = firstNameLists();
  const f = new Set(female);
  const m = new Set(male);
  const records = [...[...f].filter((n) => !m.has(n)).map((text) => ({ text, label: 'female' })), ...[...m].filter((n) => !f.has(n)).map((text) => ({ text, label: 'male' }))];
  records.sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
  return labelledFromRecords(records, { tokenize: 'char', name: 'first names' });
}

/**
 * A classification task ready to train: the data as read, its stratified split, the encoder
 * fitted on the training part, and the three parts encoded with it.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { nameGenderTask, type ClassificationTask } from 'bptt';
 *
 * const task: ClassificationTask = nameGenderTask(0);
 * assert.equal(task.train.count + task.validation.count + task.test.count, task.data.count);
 * assert.equal(task.train.count, task.split.train.length);
 * assert.deepEqual(task.encoder.labels, ['female', 'male']);
 * ```
 */
export interface ClassificationTask {
  data: LabelledData;
  split: SplitIndices;
  /** Fitted on the training part only. */
  encoder: SequenceEncoder;
  train: EncodedSequences;
  validation: EncodedSequences;
  test: EncodedSequences;
}

/**
 * The name → female/male task, split 80/10/10 by class (seeded), encoded and ready to batch.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { SequenceBatcher, majorityClass, nameGenderTask, paddingFraction } from 'bptt';
 *
 * const task = nameGenderTask(0);
 * const ratio = task.validation.count / task.data.count;
 * assert.ok(ratio > 0.09 && ratio < 0.11);
 * // The baseline to beat: always the more frequent class of the training part.
 * const majority = majorityClass(task.train.labels, task.encoder.numClasses);
 * const baseline = task.test.labels.filter((l) => l === majority).length / task.test.count;
 * assert.ok(baseline > 0.5 && baseline < 0.75);
 * // Batches by length: bucketing keeps padding far below one shuffled bucket's.
 * const bucketed = new SequenceBatcher(task.train, { batchSize: 64 });
 * const single = new SequenceBatcher(task.train, { batchSize: 64, buckets: [bucketed.buckets[bucketed.buckets.length - 1]] });
 * assert.ok(paddingFraction(bucketed.batches({ shuffle: true, seed: 1 })) < paddingFraction(single.batches({ shuffle: true, seed: 1 })) / 4);
 * ```
 */
export function nameGenderTask(seed = 0): ClassificationTask {
  const data = nameGenderData();
  const split = stratifiedSplit(data, { validation: 0.1, test: 0.1, seed });
  const encoder = SequenceEncoder.fit(data, split.train);
  return { data, split, encoder, train: encoder.encode(data, split.train), validation: encoder.encode(data, split.validation), test: encoder.encode(data, split.test) };
}
