/**
 * Time series tables: numeric columns in time order, read from CSV (streamed, keeping only the
 * columns asked for) or from arrays. Missing values (an empty cell, NA, N/A, NaN, null, None) are
 * an error unless a fill policy says what to put there; a table never holds NaN.
 */
import { NonFiniteError } from '../errors';
import { describeValue } from '../backend';
import { Growable } from './buffers';
import { CsvOptions, csvRows } from './csv';
import { TextSource, sourceName } from './text';

/**
 * What to do with a missing value: 'none' refuses it; 'previous' repeats the last known value;
 * 'linear' interpolates between the known values on both sides; 'zero' writes 0. 'previous' and
 * 'linear' need a known value before the gap ('linear' one after it too). 'linear' reads the value
 * after a gap, so a gap just before a split point sees one value of the later part; 'previous' is
 * strictly causal. `table.filled` counts the values filled per column.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { seriesFromColumns, NonFiniteError, type FillPolicy } from 'bptt';
 *
 * const filledWith = (fill: FillPolicy) => Array.from(seriesFromColumns({ y: [2, null, null, 8] }, { fill }).values[0]);
 * assert.deepEqual(filledWith('previous'), [2, 2, 2, 8]);
 * assert.deepEqual(filledWith('linear'), [2, 4, 6, 8]); // 2 + (8 - 2) * 1/3, 2 + (8 - 2) * 2/3
 * assert.deepEqual(filledWith('zero'), [2, 0, 0, 8]);
 * assert.throws(() => filledWith('none'), NonFiniteError);
 * assert.throws(() => seriesFromColumns({ y: [2, null] }, { fill: 'linear' }), /no later value/);
 * ```
 */
export type FillPolicy = 'none' | 'previous' | 'linear' | 'zero';
/**
 * Every {@link FillPolicy}, e.g. to check a command-line flag before reading a file.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { FILL_POLICIES, type FillPolicy } from 'bptt';
 *
 * const flag: string = 'linear';
 * assert.ok((FILL_POLICIES as readonly string[]).includes(flag));
 * const fill = flag as FillPolicy;
 * assert.equal(fill, 'linear');
 * assert.deepEqual(FILL_POLICIES, ['none', 'previous', 'linear', 'zero']);
 * ```
 */
export const FILL_POLICIES: readonly FillPolicy[] = ['none', 'previous', 'linear', 'zero'];

/**
 * Numeric columns of equal length, in time order, every value finite (float64), frozen. Made by
 * {@link readSeriesCsv} or {@link seriesFromColumns}; {@link ForecastDataset.create} cuts it into
 * windows.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { seriesFromColumns, type SeriesTable } from 'bptt';
 *
 * const table: SeriesTable = seriesFromColumns({ sales: [10, NaN, 14], price: [2, 2, 3] }, { fill: 'previous', times: ['mon', 'tue', 'wed'] });
 * assert.deepEqual(table.columns, ['sales', 'price']);
 * assert.equal(table.length, 3);
 * assert.deepEqual(Array.from(table.values[0]), [10, 10, 14]); // NaN was missing: the previous value
 * assert.deepEqual(table.filled, [1, 0]);
 * assert.equal(table.times?.[2], 'wed');
 * ```
 */
export interface SeriesTable {
  /** Column names, in the order they were asked for. */
  readonly columns: readonly string[];
  /** One array per column. */
  readonly values: readonly Float64Array[];
  /** Rows (time steps). */
  readonly length: number;
  /** The time column's text for each row, when one was named (for reports). */
  readonly times?: readonly string[];
  /** Values that were missing and filled, per column. */
  readonly filled: readonly number[];
}

/**
 * What {@link readSeriesCsv} keeps of a file: the numeric columns, an optional time column kept as
 * text, and the fill policy for missing cells (empty, NA, N/A, NaN, null or None, any case);
 * plus the {@link CsvOptions}. A cell must be a plain decimal number (like -1.5 or 2e3).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { readSeriesCsv, type ReadSeriesOptions } from 'bptt';
 *
 * const csv = 'date\tstore\ttemp\tsales\n2024-01-01\tA\t3.5\t120\n2024-01-02\tA\tNA\t98\n2024-01-03\tA\t4.5\t101\n';
 * const options: ReadSeriesOptions = { columns: ['sales', 'temp'], time: 'date', fill: 'linear', delimiter: '\t' };
 * const table = await readSeriesCsv([csv], options);
 * assert.deepEqual(table.columns, ['sales', 'temp']); // in the order asked for; 'store' is not read
 * assert.deepEqual(Array.from(table.values[1]), [3.5, 4, 4.5]); // NA interpolated
 * assert.deepEqual(table.times, ['2024-01-01', '2024-01-02', '2024-01-03']);
 * ```
 */
export interface ReadSeriesOptions extends CsvOptions {
  /** Numeric columns to keep (targets and covariates), by header name. */
  columns: readonly string[];
  /** A column kept as text labels of the rows (e.g. a date), not parsed. */
  time?: string;
  /** Default 'none'. */
  fill?: FillPolicy;
}

/**
 * Reads the named columns of a CSV file with a header, streaming its rows: only the columns asked
 * for are kept, as float64. Rows must be in time order. A missing column is a RangeError listing
 * the header's columns; a cell that is not a number, or a row with another field count than the
 * header, is a TypeError naming its line; a missing value without a fill policy is a
 * NonFiniteError.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import * as fs from 'node:fs';
 * import * as os from 'node:os';
 * import * as path from 'node:path';
 * import { readSeriesCsv } from 'bptt';
 *
 * const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-series-'));
 * try {
 *   const file = path.join(dir, 'load.csv');
 *   fs.writeFileSync(file, 'hour,load_mw,temp_c\n0,31.5,4\n1,,3.5\n2,29.25,3\n');
 *   const table = await readSeriesCsv(file, { columns: ['load_mw'], time: 'hour', fill: 'previous' });
 *   assert.deepEqual(Array.from(table.values[0]), [31.5, 31.5, 29.25]);
 *   assert.deepEqual(table.filled, [1]);
 *   await assert.rejects(readSeriesCsv(file, { columns: ['load'] }), /has no column "load"; its columns are "hour", "load_mw", "temp_c"/);
 *   await assert.rejects(readSeriesCsv(file, { columns: ['load_mw'] }), /column "load_mw": line 3: the value is missing/);
 * } finally {
 *   fs.rmSync(dir, { recursive: true, force: true });
 * }
 * ```
 */
export async function readSeriesCsv(source: TextSource, options: ReadSeriesOptions): Promise<SeriesTable> {
  const name = sourceName(source, options?.name);
  const columns = checkColumnNames(options?.columns);
  const fill = checkFill(options.fill);
  if (options.time !== undefined && (typeof options.time !== 'string' || columns.includes(options.time))) {
    throw new TypeError(`time must name a column other than the numeric ones, got ${describeValue(options.time)}`);
  }
  const wanted = options.time === undefined ? columns : [...columns, options.time];
  const fillers = columns.map((c) => new ColumnFiller(fill, `${name}: column ${JSON.stringify(c)}`));
  const times: string[] | undefined = options.time === undefined ? undefined : [];
  for await (const row of csvRows(source, wanted, options)) {
    const where = `line ${row.line}`;
    for (let c = 0; c < columns.length; c++) fillers[c].push(parseCell(row.values[c], () => `${name}: line ${row.line}: column ${JSON.stringify(columns[c])}`), where);
    times?.push(row.values[columns.length]);
  }
  if (fillers[0].length === 0) throw new RangeError(`${name} has a header but no data rows`);
  return table(columns, fillers, times);
}

/**
 * Options of {@link seriesFromColumns}: the fill policy for missing values (null, undefined, NaN)
 * and text labels of the rows.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { seriesFromColumns, type SeriesFromColumnsOptions } from 'bptt';
 *
 * const options: SeriesFromColumnsOptions = { fill: 'zero', times: ['q1', 'q2', 'q3'] };
 * const table = seriesFromColumns({ revenue: [5, undefined, 7] }, options);
 * assert.deepEqual(Array.from(table.values[0]), [5, 0, 7]);
 * assert.deepEqual(table.times, ['q1', 'q2', 'q3']);
 * assert.throws(() => seriesFromColumns({ revenue: [5, 6, 7] }, { times: ['q1'] }), /times must be an array of 3 strings/);
 * ```
 */
export interface SeriesFromColumnsOptions {
  /** Default 'none'. */
  fill?: FillPolicy;
  /** Text labels of the rows (e.g. dates). */
  times?: readonly string[];
}

/**
 * A table from arrays (plain or typed), one per column, all of one length; the columns keep the
 * object's key order. null, undefined and NaN are missing values (see `fill`); an infinity is a
 * NonFiniteError, columns of different lengths a RangeError. The values are copied.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { seriesFromColumns, NonFiniteError } from 'bptt';
 *
 * const table = seriesFromColumns({ y: Float64Array.of(1, 2, 3), x: [0, 1, 0] });
 * assert.deepEqual(table.columns, ['y', 'x']);
 * assert.equal(table.length, 3);
 * assert.ok(table.values[1] instanceof Float64Array);
 * assert.throws(() => seriesFromColumns({ y: [1, Infinity] }), NonFiniteError);
 * assert.throws(() => seriesFromColumns({ y: [1, 2], x: [1] }), RangeError);
 * ```
 */
export function seriesFromColumns(columns: Readonly<Record<string, ArrayLike<number | null | undefined>>>, options: SeriesFromColumnsOptions = {}): SeriesTable {
  if (typeof columns !== 'object' || columns === null) throw new TypeError(`columns must be an object of arrays by name, got ${describeValue(columns)}`);
  const names = checkColumnNames(Object.keys(columns));
  const fill = checkFill(options.fill);
  const length = columns[names[0]]?.length;
  const fillers = names.map((c) => {
    const values = columns[c];
    if (values === null || typeof values !== 'object' || typeof values.length !== 'number') throw new TypeError(`column ${JSON.stringify(c)} must be an array of numbers, got ${describeValue(values)}`);
    if (values.length !== length) throw new RangeError(`columns must have one length: ${JSON.stringify(names[0])} has ${length} values, ${JSON.stringify(c)} has ${values.length}`);
    const filler = new ColumnFiller(fill, `column ${JSON.stringify(c)}`);
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v !== null && v !== undefined && typeof v !== 'number') throw new TypeError(`column ${JSON.stringify(c)}: value ${i} must be a number (or null for missing), got ${typeof v}`);
      if (typeof v === 'number' && (v === Infinity || v === -Infinity)) throw new NonFiniteError(`column ${JSON.stringify(c)}: value ${i} is ${v}`);
      filler.push(v === null || v === undefined || Number.isNaN(v) ? null : v, `index ${i}`);
    }
    return filler;
  });
  if (length === 0) throw new RangeError('the columns are empty: a series needs at least one value');
  if (options.times !== undefined && (!Array.isArray(options.times) || options.times.length !== length || !options.times.every((t) => typeof t === 'string'))) {
    throw new TypeError(`times must be an array of ${length} strings, got ${describeValue(options.times)}`);
  }
  return table(names, fillers, options.times === undefined ? undefined : [...options.times]);
}

/**
 * A column's values by name (the table's own array, not a copy); a RangeError names the columns
 * there are.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { seriesColumn, seriesFromColumns } from 'bptt';
 *
 * const table = seriesFromColumns({ y: [1, 2, 3], x: [4, 5, 6] });
 * assert.deepEqual(Array.from(seriesColumn(table, 'x')), [4, 5, 6]);
 * assert.throws(() => seriesColumn(table, 'z'), /no column "z"; its columns are "y", "x"/);
 * ```
 */
export function seriesColumn(table: SeriesTable, column: string): Float64Array {
  const i = table.columns.indexOf(column);
  if (i < 0) throw new RangeError(`the series has no column ${JSON.stringify(column)}; its columns are ${table.columns.map((c) => JSON.stringify(c)).join(', ')}`);
  return table.values[i];
}

function table(columns: string[], fillers: ColumnFiller[], times: string[] | undefined): SeriesTable {
  const values = fillers.map((f) => f.end());
  return Object.freeze({ columns: Object.freeze(columns), values: Object.freeze(values), length: values[0].length, filled: Object.freeze(fillers.map((f) => f.filled)), ...(times ? { times: Object.freeze(times) } : {}) });
}

function checkColumnNames(columns: unknown): string[] {
  if (!Array.isArray(columns) || columns.length === 0 || !columns.every((c) => typeof c === 'string' && c.length > 0)) {
    throw new TypeError(`columns must be a non-empty array of column names, got ${describeValue(columns)}`);
  }
  const dup = columns.find((c, i) => columns.indexOf(c) !== i);
  if (dup !== undefined) throw new TypeError(`column ${JSON.stringify(dup)} is named twice`);
  return [...columns];
}

function checkFill(fill: unknown): FillPolicy {
  if (fill === undefined) return 'none';
  if (!FILL_POLICIES.includes(fill as FillPolicy)) throw new RangeError(`fill must be one of ${FILL_POLICIES.map((p) => `'${p}'`).join(', ')}, got ${JSON.stringify(fill)}`);
  return fill as FillPolicy;
}

const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const MISSING = new Set(['', 'na', 'n/a', 'nan', 'null', 'none']);

/** A cell's number, or null when the cell says the value is missing. Only plain decimal numbers are numbers. */
export function parseCell(text: string, where: () => string): number | null {
  const t = text.trim();
  if (MISSING.has(t.toLowerCase())) return null;
  if (!NUMBER.test(t)) throw new TypeError(`${where()}: ${JSON.stringify(text)} is not a number (expected a decimal number like -1.5 or 2e3, or an empty cell, NA or NaN for a missing value)`);
  const v = Number(t);
  if (!Number.isFinite(v)) throw new NonFiniteError(`${where()}: ${JSON.stringify(text)} overflows to ${v}`);
  return v;
}

/** Collects one column's values, filling missing ones by its policy as they stream past. */
class ColumnFiller {
  private readonly values = new Growable(Float64Array);
  filled = 0;
  /** Index and place of the first value of an open gap ('linear'), or -1. */
  private gapStart = -1;
  private gapWhere = '';

  constructor(private readonly policy: FillPolicy, private readonly what: string) {}

  get length(): number {
    return this.values.length;
  }

  push(value: number | null, where: string): void {
    const n = this.values.length;
    if (value !== null) {
      if (this.gapStart >= 0) {
        // Linear interpolation across the gap [gapStart, n) between its two known neighbours.
        const before = this.values.at(this.gapStart - 1);
        const span = n - this.gapStart + 1;
        for (let i = this.gapStart; i < n; i++) this.values.set(i, before + ((value - before) * (i - this.gapStart + 1)) / span);
        this.gapStart = -1;
      }
      this.values.push(value);
      return;
    }
    if (this.policy === 'none') {
      throw new NonFiniteError(`${this.what}: ${where}: the value is missing (empty, NA or NaN); pass fill 'previous', 'linear' or 'zero' to fill missing values`);
    }
    if (this.policy !== 'zero' && n === 0) {
      throw new NonFiniteError(`${this.what}: ${where}: the first value is missing, so fill '${this.policy}' has no earlier value to use; use fill 'zero' or drop the leading rows`);
    }
    this.filled++;
    if (this.policy === 'zero') this.values.push(0);
    else if (this.policy === 'previous') this.values.push(this.values.at(n - 1));
    else {
      if (this.gapStart < 0) {
        this.gapStart = n;
        this.gapWhere = where;
      }
      this.values.push(NaN); // replaced when the gap closes; end() refuses an open gap
    }
  }

  end(): Float64Array {
    if (this.gapStart >= 0) {
      throw new NonFiniteError(`${this.what}: the values from ${this.gapWhere} to the end are missing, so fill 'linear' has no later value to interpolate to; use fill 'previous' or drop the trailing rows`);
    }
    return this.values.toArray();
  }
}
