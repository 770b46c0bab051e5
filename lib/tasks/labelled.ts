/**
 * Labelled sequences as read: from JSONL ({"text": "...", "label": ...} or {"sequence": [[...],
 * ...], "label": ...} per line), from CSV (a text column and a label column), or from an array of
 * such records. Reading is one streaming pass; text is tokenised as it arrives and its tokens are
 * interned, so a file's examples are held once, as int32 ids, not as strings. No vocabulary is
 * fixed here: SequenceEncoder.fit builds one from the training rows only.
 */
import { ShapeError } from '../errors';
import { describeValue } from '../backend';
import { Rng } from '../rng';
import { Growable, shuffleInPlace } from './buffers';
import { CsvOptions, csvRows } from './csv';
import { TextSource, sourceName, textChunks, textLines } from './text';

/** 'char': one token per code point. 'word': runs of letters, digits, marks and '_' (with inner apostrophes), and each other non-space character. */
export type Tokenization = 'char' | 'word';
export const TOKENIZATIONS: readonly Tokenization[] = ['char', 'word'];

export interface TokenizeOptions {
  /** Default 'char'. */
  tokenize?: Tokenization;
  /** Lower-case the text first (default false). */
  lowercase?: boolean;
}

const WORD = /[\p{L}\p{M}\p{N}_]+(?:['\u2019][\p{L}\p{M}\p{N}_]+)*|[^\s\p{L}\p{M}\p{N}_]/gu;

/** The tokens of a text, as reading and SequenceEncoder.encodeText cut them. */
export function tokenize(text: string, options: TokenizeOptions = {}): string[] {
  const { tokenize: mode, lowercase } = checkTokenizeOptions(options);
  const t = lowercase ? text.toLowerCase() : text;
  return mode === 'char' ? Array.from(t) : t.match(WORD) ?? [];
}

export function checkTokenizeOptions(options: TokenizeOptions): Required<TokenizeOptions> {
  const tokenize = options.tokenize ?? 'char';
  if (!TOKENIZATIONS.includes(tokenize)) throw new RangeError(`tokenize must be 'char' or 'word', got ${JSON.stringify(tokenize)}`);
  const lowercase = options.lowercase ?? false;
  if (typeof lowercase !== 'boolean') throw new TypeError(`lowercase must be a boolean, got ${describeValue(lowercase)}`);
  return { tokenize, lowercase };
}

interface LabelledCommon {
  /** Where the examples came from (a path or a name), for error messages. */
  readonly source: string;
  readonly count: number;
  /** [count + 1]: example i's steps are [offsets[i], offsets[i + 1]). */
  readonly offsets: Int32Array;
  /** [count]: each example's label, an index into labelNames. */
  readonly labels: Int32Array;
  /** The labels as read (numbers as their decimal text), in order of first appearance. */
  readonly labelNames: readonly string[];
  /** [count]: where each example came from: its line in a file, its index among records. */
  readonly lines: Int32Array;
  /** What `lines` counts: 'line' (files) or 'record' (labelledFromRecords). */
  readonly unit: 'line' | 'record';
}

/** Text examples: interned tokens. */
export interface TokenExamples extends LabelledCommon {
  readonly kind: 'tokens';
  readonly tokenize: Tokenization;
  readonly lowercase: boolean;
  /** Distinct tokens in order of first appearance; ids index it. */
  readonly tokens: readonly string[];
  /** Every example's token ids, concatenated. */
  readonly ids: Int32Array;
}

/** Numeric sequences: D values per step. */
export interface DenseExamples extends LabelledCommon {
  readonly kind: 'dense';
  /** D. */
  readonly inputSize: number;
  /** [total steps * D]: every example's steps, concatenated. */
  readonly values: Float32Array;
}

export type LabelledData = TokenExamples | DenseExamples;

/** One example: `text` or `sequence` (an array of steps, each a number or an array of D numbers), and a label (a string or an integer). */
export interface LabelledRecord {
  text?: string;
  sequence?: readonly number[] | readonly (readonly number[])[];
  label: string | number;
}

export type ReadLabelledOptions = TokenizeOptions & { name?: string };

/** Reads a JSONL file of labelled examples, one JSON object a line (blank lines are skipped). */
export async function readLabelledJsonl(source: TextSource, options: ReadLabelledOptions = {}): Promise<LabelledData> {
  const name = sourceName(source, options.name);
  const builder = new LabelledBuilder(options, name);
  for await (const { text, line } of textLines(textChunks(source, name))) {
    if (text.trim() === '') continue;
    let record: unknown;
    try {
      record = JSON.parse(text);
    } catch (err) {
      throw new TypeError(`${name}: line ${line}: not valid JSON (${(err as Error).message})`);
    }
    builder.add(record, line, `line ${line}`);
  }
  return builder.finish('line');
}

export interface LabelledCsvOptions extends ReadLabelledOptions, CsvOptions {
  /** Default 'text'. */
  textColumn?: string;
  /** Default 'label'. */
  labelColumn?: string;
}

/** Reads labelled text from a CSV file with a header; labels are the label column's text. */
export async function readLabelledCsv(source: TextSource, options: LabelledCsvOptions = {}): Promise<LabelledData> {
  const name = sourceName(source, options.name);
  const builder = new LabelledBuilder(options, name);
  const columns = [options.textColumn ?? 'text', options.labelColumn ?? 'label'];
  for await (const row of csvRows(source, columns, options)) builder.add({ text: row.values[0], label: row.values[1] }, row.line, `line ${row.line}`);
  return builder.finish('line');
}

/** Labelled examples from records in memory. */
export function labelledFromRecords(records: Iterable<LabelledRecord>, options: ReadLabelledOptions = {}): LabelledData {
  if (typeof records !== 'object' || records === null || !(Symbol.iterator in records)) throw new TypeError(`records must be an iterable of { text | sequence, label }, got ${describeValue(records)}`);
  const builder = new LabelledBuilder(options, options.name ?? '<records>');
  let i = 0;
  for (const r of records) {
    builder.add(r, i, `record ${i}`);
    i++;
  }
  return builder.finish('record');
}

/** Collects examples one by one into compact arrays; the first example decides text or numeric. */
class LabelledBuilder {
  private readonly options: Required<TokenizeOptions>;
  private kind: 'tokens' | 'dense' | null = null;
  private readonly offsets = new Growable(Int32Array);
  private readonly labels = new Growable(Int32Array);
  private readonly lines = new Growable(Int32Array);
  private readonly labelIds = new Map<string, number>();
  private readonly tokenIds = new Map<string, number>();
  private readonly ids = new Growable(Int32Array);
  private readonly values = new Growable(Float32Array);
  private inputSize = 0;

  constructor(options: TokenizeOptions, private readonly name: string) {
    this.options = checkTokenizeOptions(options);
    this.offsets.push(0);
  }

  add(record: unknown, line: number, where: string): void {
    const at = `${this.name}: ${where}`;
    if (typeof record !== 'object' || record === null || Array.isArray(record)) throw new TypeError(`${at}: expected an object { "text": ..., "label": ... } or { "sequence": ..., "label": ... }, got ${Array.isArray(record) ? 'an array' : describeValue(record)}`);
    const r = record as Record<string, unknown>;
    const hasText = r.text !== undefined;
    const hasSequence = r.sequence !== undefined;
    if (hasText === hasSequence) throw new TypeError(`${at}: expected exactly one of "text" and "sequence", got ${hasText ? 'both' : 'neither'}`);
    const kind = hasText ? 'tokens' : 'dense';
    if (this.kind !== null && kind !== this.kind) throw new TypeError(`${at}: has "${hasText ? 'text' : 'sequence'}", but the examples before it have "${hasText ? 'sequence' : 'text'}"; one source holds one kind`);
    this.kind = kind;
    const label = labelKey(r.label, at);
    const before = this.steps();
    if (hasText) this.addText(r.text, at);
    else this.addSequence(r.sequence, at);
    const steps = this.steps();
    if (steps === before) throw new RangeError(`${at}: the ${hasText ? `text has no ${this.options.tokenize === 'word' ? 'words' : 'characters'}` : 'sequence has no steps'}; every example needs at least one step`);
    this.offsets.push(steps);
    let id = this.labelIds.get(label);
    if (id === undefined) this.labelIds.set(label, (id = this.labelIds.size));
    this.labels.push(id);
    this.lines.push(line);
  }

  /** Steps read so far. */
  private steps(): number {
    if (this.kind === 'tokens') return this.ids.length;
    return this.inputSize === 0 ? 0 : this.values.length / this.inputSize;
  }

  private addText(text: unknown, at: string): void {
    if (typeof text !== 'string') throw new TypeError(`${at}: "text" must be a string, got ${describeValue(text)}`);
    for (const token of tokenize(text, this.options)) {
      let id = this.tokenIds.get(token);
      if (id === undefined) this.tokenIds.set(token, (id = this.tokenIds.size));
      this.ids.push(id);
    }
  }

  private addSequence(sequence: unknown, at: string): void {
    if (!Array.isArray(sequence)) throw new TypeError(`${at}: "sequence" must be an array of steps (numbers, or arrays of numbers), got ${describeValue(sequence)}`);
    for (let t = 0; t < sequence.length; t++) {
      const step: unknown = sequence[t];
      const row = Array.isArray(step) ? step : [step];
      if (this.inputSize === 0) {
        if (row.length === 0) throw new ShapeError(`${at}: step ${t} has no values`);
        this.inputSize = row.length;
      } else if (row.length !== this.inputSize) {
        throw new ShapeError(`${at}: step ${t} has ${row.length} values, but earlier steps have ${this.inputSize}`);
      }
      for (const v of row) {
        if (typeof v !== 'number') throw new TypeError(`${at}: step ${t} must hold numbers, got ${describeValue(v)}`);
        if (!Number.isFinite(Math.fround(v))) throw new RangeError(`${at}: step ${t}: ${v} does not fit in float32`);
        this.values.push(v);
      }
    }
  }

  finish(unit: 'line' | 'record'): LabelledData {
    if (this.kind === null) throw new RangeError(`${this.name} has no examples`);
    const labelNames = Object.freeze([...this.labelIds.keys()]);
    const common = { source: this.name, count: this.labels.length, offsets: this.offsets.toArray(), labels: this.labels.toArray(), labelNames, lines: this.lines.toArray(), unit };
    if (this.kind === 'tokens') {
      return Object.freeze({ ...common, kind: 'tokens', tokenize: this.options.tokenize, lowercase: this.options.lowercase, tokens: Object.freeze([...this.tokenIds.keys()]), ids: this.ids.toArray() });
    }
    return Object.freeze({ ...common, kind: 'dense', inputSize: this.inputSize, values: this.values.toArray() });
  }
}

/** A label's key: a non-empty string, or an integer as its decimal text. */
export function labelKey(label: unknown, at: string): string {
  if (typeof label === 'string' && label.length > 0) return label;
  if (typeof label === 'number' && Number.isSafeInteger(label)) return String(label);
  throw new TypeError(`${at}: "label" must be a non-empty string or an integer, got ${typeof label === 'string' ? 'an empty string' : describeValue(label)}`);
}

/** Fractions of each class held out. */
export interface StratifiedSplitOptions {
  /** Default 0.1. */
  validation?: number;
  /** Default 0.1. */
  test?: number;
  /** Default 0. */
  seed?: number;
}

/** Example indices of each part, ascending. */
export interface SplitIndices {
  train: Int32Array;
  validation: Int32Array;
  test: Int32Array;
}

/**
 * Splits examples so that every class keeps its share in each part: of a class's n examples,
 * round(n * test) go to the test part and round(n * validation) to the validation part, chosen at
 * random (seeded); at least one always stays in training, so every label of a held-out part is
 * one the training part has.
 */
export function stratifiedSplit(data: LabelledData, options: StratifiedSplitOptions = {}): SplitIndices {
  const fv = fraction('validation', options.validation);
  const ft = fraction('test', options.test);
  if (fv + ft >= 1) throw new RangeError(`validation + test must be below 1, got ${fv} + ${ft}`);
  const rng = new Rng(options.seed ?? 0);
  const byLabel: number[][] = data.labelNames.map(() => []);
  for (let i = 0; i < data.count; i++) byLabel[data.labels[i]].push(i);
  const parts = { train: [] as number[], validation: [] as number[], test: [] as number[] };
  for (const members of byLabel) {
    const idx = Int32Array.from(members);
    shuffleInPlace(idx, rng);
    const n = idx.length;
    let nt = Math.round(n * ft);
    let nv = Math.round(n * fv);
    while (n - nt - nv < 1) {
      if (nt >= nv) nt--;
      else nv--;
    }
    idx.forEach((example, k) => (k < nt ? parts.test : k < nt + nv ? parts.validation : parts.train).push(example));
  }
  const sorted = (a: number[]) => Int32Array.from(a).sort();
  return { train: sorted(parts.train), validation: sorted(parts.validation), test: sorted(parts.test) };
}

function fraction(name: string, value: number | undefined): number {
  const v = value ?? 0.1;
  if (typeof v !== 'number' || !(v >= 0 && v < 1)) throw new RangeError(`${name} must be a fraction in [0, 1), got ${describeValue(value)}`);
  return v;
}
