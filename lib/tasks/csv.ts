/**
 * An incremental CSV parser (RFC 4180: quoted fields may hold delimiters, newlines and doubled
 * quotes; \n, \r\n and \r end records) and a reader that streams a file's records with the line
 * each starts on, for error messages. Text is fed in chunks of any size, split anywhere.
 */
import { TextSource, sourceName, textChunks } from './text';

export interface CsvRecord {
  fields: string[];
  /** 1-based line of the source where the record starts. */
  line: number;
}

/**
 * How the CSV readers (readSeriesCsv, readLabelledCsv) read a file: the delimiter, and the name
 * their error messages give the source. Fields follow RFC 4180: a quoted field may hold
 * delimiters, newlines and doubled quotes; \n, \r\n and \r end records.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { readSeriesCsv, type CsvOptions } from 'bptt';
 *
 * const options: CsvOptions = { delimiter: ';', name: 'shop.csv' };
 * const table = await readSeriesCsv(['day;"sales; EUR"\n1;10\n2;12.5\n'], { ...options, columns: ['sales; EUR'] });
 * assert.deepEqual(Array.from(table.values[0]), [10, 12.5]);
 * await assert.rejects(readSeriesCsv(['day;sales\n1;ten\n'], { ...options, columns: ['sales'] }), /^TypeError: shop\.csv: line 2: column "sales"/);
 * ```
 */
export interface CsvOptions {
  /** One character; default ','. */
  delimiter?: string;
  /** How error messages name the source (default: the path, or '<input>'). */
  name?: string;
}

const QUOTE = 34;
const LF = 10;
const CR = 13;

const enum State {
  /** At the start of a field. */
  FieldStart,
  /** Inside an unquoted field. */
  Unquoted,
  /** Inside a quoted field. */
  Quoted,
  /** After a quote inside a quoted field: a second quote is a literal one, anything else ends the field. */
  QuoteInQuoted,
}

export class CsvParser {
  private readonly delimiter: number;
  private state = State.FieldStart;
  private field = '';
  private fields: string[] = [];
  private line = 1;
  private recordLine = 1;
  /** The previous chunk ended with \r: a \n starting this one belongs to it. */
  private afterCR = false;
  /** The previous chunk's last character was \r (for counting lines inside quoted fields). */
  private endedWithCR = false;

  constructor(options: CsvOptions = {}, private readonly name = options.name ?? '<input>') {
    const delimiter = options.delimiter ?? ',';
    if (typeof delimiter !== 'string' || delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') {
      throw new RangeError(`delimiter must be one character other than a quote or a newline, got ${JSON.stringify(delimiter)}`);
    }
    this.delimiter = delimiter.charCodeAt(0);
  }

  /** Parses a chunk; returns the records it completes. */
  push(text: string): CsvRecord[] {
    const out: CsvRecord[] = [];
    if (text.length === 0) return out;
    const delim = this.delimiter;
    let i = 0;
    if (this.afterCR && text.charCodeAt(0) === LF) i = 1;
    this.afterCR = false;
    // Unquoted runs and quoted runs are sliced whole; only delimiters, quotes and newlines are looked at one by one.
    let runStart = i;
    for (; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (this.state === State.FieldStart) {
        if (c === QUOTE) {
          this.state = State.Quoted;
          runStart = i + 1;
          continue;
        }
        this.state = State.Unquoted;
        runStart = i;
      }
      switch (this.state) {
        case State.Unquoted:
          if (c === delim) {
            this.endField(text.slice(runStart, i));
          } else if (c === LF || c === CR) {
            this.endField(text.slice(runStart, i));
            out.push(this.endRecord());
            i = this.skipNewline(text, i);
          }
          break;
        case State.Quoted:
          if (c === QUOTE) {
            this.field += text.slice(runStart, i);
            this.state = State.QuoteInQuoted;
          } else if (c === CR || (c === LF && !(i > 0 ? text.charCodeAt(i - 1) === CR : this.endedWithCR))) {
            this.line++; // a newline inside the field: \r\n counts once
          }
          break;
        case State.QuoteInQuoted:
          if (c === QUOTE) {
            this.state = State.Quoted;
            runStart = i; // the second quote is the literal one
          } else if (c === delim) {
            this.endField('');
          } else if (c === LF || c === CR) {
            this.endField('');
            out.push(this.endRecord());
            i = this.skipNewline(text, i);
          } else {
            throw new TypeError(`${this.name}: line ${this.line}: a quoted field must end at its closing quote, but ${JSON.stringify(text[i])} follows it; write a quote inside a quoted field as ""`);
          }
          break;
      }
    }
    this.endedWithCR = text.charCodeAt(text.length - 1) === CR;
    // Keep the unfinished run of this chunk.
    if (this.state === State.Unquoted || this.state === State.Quoted) {
      this.field += text.slice(runStart, text.length);
    }
    return out;
  }

  /** Ends the input; returns the last record when the text does not end with a newline. */
  end(): CsvRecord[] {
    if (this.state === State.Quoted) throw new TypeError(`${this.name}: the quoted field that starts on line ${this.recordLine} is never closed`);
    if (this.state === State.FieldStart && this.fields.length === 0) return [];
    this.endField('');
    return [this.endRecord()];
  }

  private endField(rest: string): void {
    this.fields.push(this.field + rest);
    this.field = '';
    this.state = State.FieldStart;
  }

  private endRecord(): CsvRecord {
    const record = { fields: this.fields, line: this.recordLine };
    this.fields = [];
    this.state = State.FieldStart;
    return record;
  }

  /** Moves past a newline at i (\r\n counts once); returns the index of its last character. */
  private skipNewline(text: string, i: number): number {
    this.line++;
    this.recordLine = this.line;
    if (text.charCodeAt(i) === CR) {
      if (i + 1 < text.length) return text.charCodeAt(i + 1) === LF ? i + 1 : i;
      this.afterCR = true;
    }
    return i;
  }
}

/** Streams the records of a CSV source, the header first. */
export async function* csvRecords(source: TextSource, options: CsvOptions = {}): AsyncGenerator<CsvRecord> {
  const name = sourceName(source, options.name);
  const parser = new CsvParser(options, name);
  for await (const chunk of textChunks(source, name)) yield* parser.push(chunk);
  yield* parser.end();
}

/** A row of the selected columns, in the order they were asked for. */
export interface CsvRow {
  values: string[];
  line: number;
}

/**
 * Streams the data rows of a CSV file with a header, keeping only `columns` (names as in the
 * header, which are trimmed). A name the header lacks is a RangeError listing the columns there
 * are; a row with another field count than the header is a TypeError. Blank lines are skipped
 * when the header has several columns; with one column a blank line is a missing value.
 * `onHeader` sees the header before the first row.
 */
export async function* csvRows(source: TextSource, columns: readonly string[], options: CsvOptions = {}, onHeader?: (header: string[]) => void): AsyncGenerator<CsvRow> {
  const name = sourceName(source, options.name);
  let index: number[] | null = null;
  let width = 0;
  for await (const record of csvRecords(source, options)) {
    if (index === null) {
      const header = record.fields.map((f) => f.trim());
      index = columnIndices(header, columns, name);
      width = header.length;
      onHeader?.(header);
      continue;
    }
    if (record.fields.length === 1 && record.fields[0] === '' && width > 1) continue;
    if (record.fields.length !== width) {
      throw new TypeError(`${name}: line ${record.line}: expected ${width} fields, as in the header, got ${record.fields.length}`);
    }
    yield { values: index.map((i) => record.fields[i]), line: record.line };
  }
  if (index === null) throw new RangeError(`${name} is empty: expected a header line naming the columns, then data rows`);
}

function columnIndices(header: string[], columns: readonly string[], name: string): number[] {
  const seen = new Map<string, number>();
  header.forEach((h, i) => {
    if (seen.has(h)) throw new TypeError(`${name}: the header names column ${JSON.stringify(h)} twice (fields ${(seen.get(h) as number) + 1} and ${i + 1})`);
    seen.set(h, i);
  });
  return columns.map((c) => {
    const i = seen.get(c);
    if (i === undefined) throw new RangeError(`${name} has no column ${JSON.stringify(c)}; its columns are ${header.map((h) => JSON.stringify(h)).join(', ')}`);
    return i;
  });
}
