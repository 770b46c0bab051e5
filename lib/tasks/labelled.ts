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

/**
 * How text is cut into tokens. 'char': one token per code point (an emoji is one token, not two
 * UTF-16 halves). 'word': runs of letters, digits, marks and '_' (with inner apostrophes), and
 * each other non-space character; spaces separate and are dropped.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { tokenize, type Tokenization } from 'bptt';
 *
 * const cut = (text: string, mode: Tokenization) => tokenize(text, { tokenize: mode });
 * assert.deepEqual(cut('n\u00e9 \u{1F642}', 'char'), ['n', '\u00e9', ' ', '\u{1F642}']);
 * assert.deepEqual(cut("Don't panic!", 'word'), ["Don't", 'panic', '!']);
 * ```
 */
export type Tokenization = 'char' | 'word';
/**
 * Every {@link Tokenization}, e.g. to check a command-line flag.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { TOKENIZATIONS } from 'bptt';
 *
 * assert.deepEqual(TOKENIZATIONS, ['char', 'word']);
 * assert.ok(!(TOKENIZATIONS as readonly string[]).includes('bpe'));
 * ```
 */
export const TOKENIZATIONS: readonly Tokenization[] = ['char', 'word'];

/**
 * How text is tokenised: {@link Tokenization} (default 'char') and lower-casing. The readers
 * take these, and the encoder fitted on their data keeps them, so new text is cut the same way.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { tokenize, type TokenizeOptions } from 'bptt';
 *
 * const options: TokenizeOptions = { tokenize: 'word', lowercase: true };
 * assert.deepEqual(tokenize('The CAT sat.', options), ['the', 'cat', 'sat', '.']);
 * assert.deepEqual(tokenize('Ab'), ['A', 'b']); // defaults: 'char', case kept
 * ```
 */
export interface TokenizeOptions {
  /** Default 'char'. */
  tokenize?: Tokenization;
  /** Lower-case the text first (default false). */
  lowercase?: boolean;
}

const WORD = /[\p{L}\p{M}\p{N}_]+(?:['\u2019][\p{L}\p{M}\p{N}_]+)*|[^\s\p{L}\p{M}\p{N}_]/gu;

/**
 * The tokens of a text, as the readers and {@link SequenceEncoder.encodeText} cut them.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { tokenize } from 'bptt';
 *
 * assert.deepEqual(tokenize('x_1 = 3.5', { tokenize: 'word' }), ['x_1', '=', '3', '.', '5']);
 * assert.deepEqual(tokenize('\u00c9t\u00e9', { lowercase: true }), ['\u00e9', 't', '\u00e9']);
 * assert.throws(() => tokenize('a', { tokenize: 'bpe' as 'word' }), RangeError);
 * ```
 */
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
  /** Where each example's steps are, [count + 1]: example i's are [offsets[i], offsets[i + 1]). */
  readonly offsets: Int32Array;
  /** Each example's label, an index into labelNames, [count]. */
  readonly labels: Int32Array;
  /** The labels as read (numbers as their decimal text), in order of first appearance. */
  readonly labelNames: readonly string[];
  /** Where each example came from, [count]: its line in a file, its index among records. */
  readonly lines: Int32Array;
  /** What `lines` counts: 'line' (files) or 'record' (labelledFromRecords). */
  readonly unit: 'line' | 'record';
}

/**
 * Text examples as read: each distinct token stored once (`tokens`, in order of first
 * appearance), every example's tokens as ids into it, concatenated; labels as ids into
 * `labelNames`. Not yet a vocabulary: {@link SequenceEncoder.fit} makes one from the training rows.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { labelledFromRecords, type TokenExamples } from 'bptt';
 *
 * const data = labelledFromRecords([{ text: 'abba', label: 'x' }, { text: 'cab', label: 'y' }]) as TokenExamples;
 * assert.equal(data.kind, 'tokens');
 * assert.deepEqual(data.tokens, ['a', 'b', 'c']);
 * assert.deepEqual(Array.from(data.ids), [0, 1, 1, 0, 2, 0, 1]); // a b b a | c a b
 * assert.deepEqual(Array.from(data.offsets), [0, 4, 7]);
 * assert.deepEqual(Array.from(data.labels, (l) => data.labelNames[l]), ['x', 'y']);
 * assert.deepEqual([data.unit, Array.from(data.lines)], ['record', [0, 1]]);
 * ```
 */
export interface TokenExamples extends LabelledCommon {
  readonly kind: 'tokens';
  readonly tokenize: Tokenization;
  readonly lowercase: boolean;
  /** Distinct tokens in order of first appearance; ids index it. */
  readonly tokens: readonly string[];
  /** Every example's token ids, concatenated. */
  readonly ids: Int32Array;
}

/**
 * Numeric sequences as read: D values per step (a step given as a plain number has D = 1), every
 * example's steps concatenated as float32.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { labelledFromRecords, type DenseExamples } from 'bptt';
 *
 * const data = labelledFromRecords([
 *   { sequence: [[1, 2], [3, 4]], label: 1 },
 *   { sequence: [[5, 6]], label: 0 },
 * ]) as DenseExamples;
 * assert.equal(data.inputSize, 2);
 * assert.deepEqual(Array.from(data.values), [1, 2, 3, 4, 5, 6]);
 * assert.deepEqual(Array.from(data.offsets), [0, 2, 3]); // in steps
 * assert.deepEqual(data.labelNames, ['1', '0']); // integer labels as text, in order of appearance
 * ```
 */
export interface DenseExamples extends LabelledCommon {
  readonly kind: 'dense';
  /** D. */
  readonly inputSize: number;
  /** Every example's steps, concatenated, [total steps * D]. */
  readonly values: Float32Array;
}

/**
 * Labelled examples as read, text or numeric: one source holds one kind, told apart by `kind`.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { labelledFromRecords, type LabelledData } from 'bptt';
 *
 * const steps = (data: LabelledData) => (data.kind === 'tokens' ? data.ids.length : data.values.length / data.inputSize);
 * assert.equal(steps(labelledFromRecords([{ text: 'hello', label: 'en' }])), 5);
 * assert.equal(steps(labelledFromRecords([{ sequence: [0.5, 1.5, 2.5], label: 'up' }])), 3);
 * ```
 */
export type LabelledData = TokenExamples | DenseExamples;

/**
 * One example: `text` or `sequence` (an array of steps, each a number or an array of D numbers),
 * and a label (a non-empty string or an integer). This is also the shape of a JSONL line.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { labelledFromRecords, type LabelledRecord } from 'bptt';
 *
 * const records: LabelledRecord[] = [{ text: 'great film', label: 'pos' }, { text: 'dull', label: 'neg' }];
 * assert.equal(labelledFromRecords(records).count, 2);
 * assert.throws(() => labelledFromRecords([{ text: 'x', sequence: [1], label: 'a' }]), /record 0: expected exactly one of "text" and "sequence", got both/);
 * assert.throws(() => labelledFromRecords([{ text: '', label: 'a' }]), /record 0: the text has no characters/);
 * ```
 */
export interface LabelledRecord {
  text?: string;
  sequence?: readonly number[] | readonly (readonly number[])[];
  label: string | number;
}

/**
 * Options of the labelled readers: the {@link TokenizeOptions}, and the name error messages give
 * the source (default: the path, or '<input>').
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { readLabelledJsonl, type ReadLabelledOptions } from 'bptt';
 *
 * const options: ReadLabelledOptions = { tokenize: 'word', name: 'reviews' };
 * const data = await readLabelledJsonl(['{"text": "Not bad", "label": "pos"}\n'], options);
 * assert.deepEqual(data.kind === 'tokens' && data.tokens, ['Not', 'bad']);
 * await assert.rejects(readLabelledJsonl(['{"text": "ok"}\n'], options), /^TypeError: reviews: line 1: "label" must be/);
 * ```
 */
export type ReadLabelledOptions = TokenizeOptions & { name?: string };

/**
 * Reads a JSONL file of labelled examples, one {@link LabelledRecord} a line (blank lines are
 * skipped), in one streaming pass. A line that is not JSON or not a record is a TypeError naming
 * the line.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import * as fs from 'node:fs';
 * import * as os from 'node:os';
 * import * as path from 'node:path';
 * import { readLabelledJsonl } from 'bptt';
 *
 * const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-jsonl-'));
 * try {
 *   const file = path.join(dir, 'moves.jsonl');
 *   fs.writeFileSync(file, '{"sequence": [[0, 1], [1, 1]], "label": "up"}\n\n{"sequence": [[1, 0]], "label": "flat"}\n');
 *   const data = await readLabelledJsonl(file);
 *   assert.equal(data.kind, 'dense');
 *   assert.equal(data.count, 2);
 *   assert.deepEqual(Array.from(data.lines), [1, 3]); // the blank line 2 is skipped
 *   fs.appendFileSync(file, '{"sequence": [[1, 0]], label: "flat"}\n');
 *   await assert.rejects(readLabelledJsonl(file), /moves\.jsonl: line 4: not valid JSON/);
 * } finally {
 *   fs.rmSync(dir, { recursive: true, force: true });
 * }
 * ```
 */
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

/**
 * Options of {@link readLabelledCsv}: which columns hold the text and the label, the
 * {@link ReadLabelledOptions} and the {@link CsvOptions}.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { readLabelledCsv, type LabelledCsvOptions } from 'bptt';
 *
 * const options: LabelledCsvOptions = { textColumn: 'name', labelColumn: 'lang', delimiter: ';', lowercase: true };
 * const data = await readLabelledCsv(['id;name;lang\n1;Anna;sv\n2;Ana;es\n'], options);
 * assert.deepEqual(data.labelNames, ['sv', 'es']);
 * assert.deepEqual(data.kind === 'tokens' && data.tokens, ['a', 'n']);
 * ```
 */
export interface LabelledCsvOptions extends ReadLabelledOptions, CsvOptions {
  /** Default 'text'. */
  textColumn?: string;
  /** Default 'label'. */
  labelColumn?: string;
}

/**
 * Reads labelled text from a CSV file with a header (columns 'text' and 'label' unless named
 * otherwise); labels are the label column's text. A quoted field may hold commas and newlines.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { readLabelledCsv } from 'bptt';
 *
 * const csv = 'text,label\n"Fine, thanks",pos\nAwful,neg\n"Two\nlines",pos\n';
 * const data = await readLabelledCsv([csv], { tokenize: 'word' });
 * assert.equal(data.count, 3);
 * assert.deepEqual(Array.from(data.lines), [2, 3, 4]); // the line each record starts on
 * assert.deepEqual(Array.from(data.labels, (l) => data.labelNames[l]), ['pos', 'neg', 'pos']);
 * assert.deepEqual(Array.from(data.offsets), [0, 3, 4, 6]); // Fine , thanks | Awful | Two lines
 * ```
 */
export async function readLabelledCsv(source: TextSource, options: LabelledCsvOptions = {}): Promise<LabelledData> {
  const name = sourceName(source, options.name);
  const builder = new LabelledBuilder(options, name);
  const columns = [options.textColumn ?? 'text', options.labelColumn ?? 'label'];
  for await (const row of csvRows(source, columns, options)) builder.add({ text: row.values[0], label: row.values[1] }, row.line, `line ${row.line}`);
  return builder.finish('line');
}

/**
 * Labelled examples from records in memory (any iterable); error messages name the record's
 * index.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { labelledFromRecords } from 'bptt';
 *
 * const data = labelledFromRecords([{ text: 'ab', label: 'x' }, { text: 'ba', label: 'x' }, { text: 'c', label: 'z' }]);
 * assert.equal(data.count, 3);
 * assert.deepEqual(data.labelNames, ['x', 'z']);
 * assert.throws(() => labelledFromRecords([{ text: 'ab', label: 'x' }, { sequence: [1], label: 'x' }]), /record 1: has "sequence", but the examples before it have "text"/);
 * ```
 */
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

/**
 * Fractions of each class held out for validation and test (each in [0, 1), together below 1),
 * and the seed of the random choice.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { labelledFromRecords, stratifiedSplit, type StratifiedSplitOptions } from 'bptt';
 *
 * const data = labelledFromRecords(Array.from({ length: 20 }, (_, i) => ({ text: `n${i}`, label: 'a' })));
 * const options: StratifiedSplitOptions = { validation: 0.25, test: 0, seed: 3 };
 * const split = stratifiedSplit(data, options);
 * assert.deepEqual([split.train.length, split.validation.length, split.test.length], [15, 5, 0]);
 * assert.throws(() => stratifiedSplit(data, { validation: 0.5, test: 0.5 }), /validation \+ test must be below 1/);
 * ```
 */
export interface StratifiedSplitOptions {
  /** Default 0.1. */
  validation?: number;
  /** Default 0.1. */
  test?: number;
  /** Default 0. */
  seed?: number;
}

/**
 * Example indices of each part, ascending, disjoint, together every example once; pass a part to
 * {@link SequenceEncoder.fit} and {@link SequenceEncoder.encode}.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { labelledFromRecords, stratifiedSplit, type SplitIndices } from 'bptt';
 *
 * const data = labelledFromRecords(Array.from({ length: 10 }, (_, i) => ({ text: `n${i}`, label: i % 2 })));
 * const split: SplitIndices = stratifiedSplit(data, { seed: 1, validation: 0.2, test: 0.2 });
 * const all = [...split.train, ...split.validation, ...split.test].sort((a, b) => a - b);
 * assert.deepEqual(all, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
 * assert.ok(split.test.every((v, k) => k === 0 || v > split.test[k - 1]));
 * ```
 */
export interface SplitIndices {
  train: Int32Array;
  validation: Int32Array;
  test: Int32Array;
}

/**
 * Splits examples so that every class keeps its share in each part: of a class's n examples,
 * round(n * test) go to the test part and round(n * validation) to the validation part, chosen at
 * random (seeded); at least one always stays in training, so every label of a held-out part is
 * one the training part has. The same seed gives the same split.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { labelledFromRecords, stratifiedSplit } from 'bptt';
 *
 * // 10 examples of 'a', 5 of 'b'.
 * const records = Array.from({ length: 15 }, (_, i) => ({ text: `x${i}`, label: i < 10 ? 'a' : 'b' }));
 * const data = labelledFromRecords(records);
 * const split = stratifiedSplit(data, { validation: 0.2, test: 0.2, seed: 5 });
 * const count = (part: Int32Array, label: string) => part.filter((i) => data.labelNames[data.labels[i]] === label).length;
 * assert.deepEqual([count(split.train, 'a'), count(split.validation, 'a'), count(split.test, 'a')], [6, 2, 2]); // round(10 * 0.2) = 2
 * assert.deepEqual([count(split.train, 'b'), count(split.validation, 'b'), count(split.test, 'b')], [3, 1, 1]); // round(5 * 0.2) = 1
 * assert.deepEqual(stratifiedSplit(data, { validation: 0.2, test: 0.2, seed: 5 }), split);
 * ```
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
