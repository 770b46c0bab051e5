/**
 * Classification data for the model: a vocabulary and label set fitted on the training examples
 * (SequenceEncoder, what a checkpoint saves), the examples encoded with it (EncodedSequences), and
 * padded batches grouped by length so padding stays small (SequenceBatcher).
 *
 * Shapes (time-major, as the engine takes them): inputs Int32Array [T, B] of token ids, or
 * Float32Array [T, B, D]; lengths Int32Array [B], each in [1, T], steps t >= lengths[b] padding
 * (id 0, or zeros); labels Int32Array [B], class ids.
 */
import { CheckpointError } from '../errors';
import { checkSize, describeValue } from '../backend';
import { Rng } from '../rng';
import { shuffleInPlace } from './buffers';
import { DenseExamples, LabelledData, TokenExamples, TokenizeOptions, Tokenization, checkTokenizeOptions, labelKey, tokenize } from './labelled';

/**
 * Token id 0 stands for every token the vocabulary lacks; known tokens are 1..V, so a model reads
 * V + 1 token ids ({@link SequenceEncoder.inputSize}).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { SequenceEncoder, UNKNOWN_ID, labelledFromRecords } from 'bptt';
 *
 * const encoder = SequenceEncoder.fit(labelledFromRecords([{ text: 'ab', label: 'x' }]));
 * assert.deepEqual(Array.from(encoder.encodeText('abc')), [1, 2, UNKNOWN_ID]); // 'c' was never seen
 * assert.equal(encoder.inputSize, 3);
 * ```
 */
export const UNKNOWN_ID = 0;

/**
 * Options of {@link SequenceEncoder.fit}: for text, which tokens make the vocabulary (the rest
 * become {@link UNKNOWN_ID}); for numeric sequences, whether to standardise the inputs.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { SequenceEncoder, labelledFromRecords, type EncoderOptions } from 'bptt';
 *
 * const text = labelledFromRecords([{ text: 'aaab', label: 'x' }, { text: 'acbd', label: 'y' }]); // a 4, b 2, c 1, d 1
 * const fit = (options: EncoderOptions) => SequenceEncoder.fit(text, undefined, options).tokens;
 * assert.deepEqual(fit({ minCount: 2 }), ['a', 'b']);
 * assert.deepEqual(fit({ maxTokens: 3 }), ['a', 'b', 'c']); // the 3 most frequent; c before d on the tie
 * const dense = labelledFromRecords([{ sequence: [10, 20], label: 'x' }]);
 * const raw = SequenceEncoder.fit(dense, undefined, { normalize: false }).encode(dense);
 * assert.deepEqual(Array.from(raw.data), [10, 20]);
 * ```
 */
export interface EncoderOptions {
  /** Tokens seen fewer times in training become UNKNOWN_ID (default 1: keep every token). */
  minCount?: number;
  /** Keep at most this many tokens, the most frequent (ties by token order). Default: all. */
  maxTokens?: number;
  /** Numeric sequences: standardise each of the D inputs by its training mean and std (default true). */
  normalize?: boolean;
}

interface EncodedCommon {
  readonly count: number;
  /** Where each example's steps are, [count + 1]: example i's are [offsets[i], offsets[i + 1]). */
  readonly offsets: Int32Array;
  /** Each example's class id, [count]. */
  readonly labels: Int32Array;
  /** Where each example came from (see LabelledData.lines), for messages, [count]. */
  readonly lines: Int32Array;
  readonly unit: 'line' | 'record';
}

/**
 * Text examples encoded with a fitted vocabulary: token ids in [0, V], concatenated, with the
 * count of tokens the vocabulary lacked (a check on how well it covers a held-out part).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { SequenceEncoder, labelledFromRecords, type EncodedTokens } from 'bptt';
 *
 * const data = labelledFromRecords([{ text: 'abc', label: 'x' }, { text: 'cad', label: 'y' }]);
 * const encoder = SequenceEncoder.fit(data, Int32Array.of(0, 1)); // vocabulary a b c d: ids 1..4
 * const train = encoder.encode(data) as EncodedTokens;
 * assert.deepEqual(Array.from(train.data), [1, 2, 3, 3, 1, 4]);
 * assert.equal(train.unknownTokens, 0);
 * const onlyFirst = SequenceEncoder.fit(data, Int32Array.of(0)); // vocabulary a b c; class 'x' only
 * const held = onlyFirst.encode(labelledFromRecords([{ text: 'dab', label: 'x' }])) as EncodedTokens;
 * assert.deepEqual(Array.from(held.data), [0, 1, 2]);
 * assert.equal(held.unknownTokens, 1);
 * ```
 */
export interface EncodedTokens extends EncodedCommon {
  readonly kind: 'tokens';
  /** Every example's token ids, concatenated; ids in [0, vocabulary size). */
  readonly data: Int32Array;
  /** Tokens of these examples that the vocabulary lacks (encoded as UNKNOWN_ID). */
  readonly unknownTokens: number;
}

/**
 * Numeric sequences encoded with a fitted encoder: each input standardised by its training mean
 * and population std (unless fitted with `normalize: false`), float32, concatenated.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { SequenceEncoder, labelledFromRecords, type EncodedDense } from 'bptt';
 *
 * const data = labelledFromRecords([{ sequence: [1, 3], label: 'a' }, { sequence: [5], label: 'b' }]);
 * const set = SequenceEncoder.fit(data).encode(data) as EncodedDense; // mean 3, std sqrt((4 + 0 + 4) / 3)
 * const s = Math.sqrt(8 / 3);
 * assert.equal(set.inputSize, 1);
 * Array.from(set.data).forEach((z, i) => assert.ok(Math.abs(z - [-2 / s, 0, 2 / s][i]) < 1e-6));
 * ```
 */
export interface EncodedDense extends EncodedCommon {
  readonly kind: 'dense';
  /** Every example's steps, concatenated and normalised, [total steps * D]. */
  readonly data: Float32Array;
  readonly inputSize: number;
}

/**
 * Examples encoded for the model (what {@link SequenceEncoder.encode} returns and
 * {@link SequenceBatcher} batches), text or numeric, told apart by `kind`.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { SequenceEncoder, labelledFromRecords, type EncodedSequences } from 'bptt';
 *
 * const data = labelledFromRecords([{ text: 'hi', label: 'greet' }, { text: 'bye', label: 'leave' }]);
 * const set: EncodedSequences = SequenceEncoder.fit(data).encode(data);
 * const lengths = Array.from({ length: set.count }, (_, i) => set.offsets[i + 1] - set.offsets[i]);
 * assert.deepEqual(lengths, [2, 3]);
 * assert.deepEqual(Array.from(set.labels), [0, 1]); // classes 'greet', 'leave' in sorted order
 * ```
 */
export type EncodedSequences = EncodedTokens | EncodedDense;

type EncoderState =
  | { kind: 'tokens'; tokenize: Tokenization; lowercase: boolean; tokens: string[]; labels: string[] }
  | { kind: 'dense'; inputSize: number; mean: number[]; std: number[]; labels: string[] };

/**
 * The vocabulary (text) or input normalisation (numeric) and the label set, fitted on the
 * training examples: it turns read examples, or a new text, into model inputs and class ids.
 * What a checkpoint saves (serialize()), so a trained classifier reads new text as it was trained.
 * Classes are sorted (numerically when every label is an integer); known tokens are sorted and
 * numbered from 1 ({@link UNKNOWN_ID} is 0).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { SequenceEncoder, labelledFromRecords, stratifiedSplit } from 'bptt';
 *
 * const data = labelledFromRecords([
 *   { text: 'anna', label: 'f' }, { text: 'maria', label: 'f' }, { text: 'ida', label: 'f' },
 *   { text: 'otto', label: 'm' }, { text: 'bo', label: 'm' }, { text: 'tom', label: 'm' },
 * ]);
 * const split = stratifiedSplit(data, { validation: 0, test: 0.34, seed: 1 }); // one of each class held out
 * const encoder = SequenceEncoder.fit(data, split.train); // from the training rows only
 * assert.deepEqual(encoder.labels, ['f', 'm']);
 * assert.equal(encoder.numClasses, 2);
 * assert.equal(encoder.inputSize, encoder.tokens.length + 1);
 * const test = encoder.encode(data, split.test);
 * assert.equal(test.count, 2);
 * // Saved with a model and loaded again, it encodes new text the same way.
 * const loaded = SequenceEncoder.deserialize(encoder.serialize());
 * assert.deepEqual(loaded.encodeText('emma'), encoder.encodeText('emma'));
 * assert.equal(loaded.labelId('m'), 1);
 * assert.throws(() => loaded.labelId('x'), /label "x" was not in the training data/);
 * ```
 */
export class SequenceEncoder {
  private readonly state: EncoderState;
  private readonly tokenIds: ReadonlyMap<string, number>;
  private readonly labelIds: ReadonlyMap<string, number>;

  private constructor(state: EncoderState) {
    this.state = state;
    this.tokenIds = new Map(state.kind === 'tokens' ? state.tokens.map((t, i) => [t, i + 1]) : []);
    this.labelIds = new Map(state.labels.map((l, i) => [l, i]));
  }

  /** Fits the vocabulary (or the normalisation) and the label set on `rows` of the data (default: all). */
  static fit(data: LabelledData, rows?: Int32Array, options: EncoderOptions = {}): SequenceEncoder {
    const examples = checkRows(data, rows);
    if (examples.length === 0) throw new RangeError('cannot fit an encoder on no examples');
    const seen = new Set<number>();
    for (const i of examples) seen.add(data.labels[i]);
    const labels = sortLabels([...seen].map((l) => data.labelNames[l]));
    if (data.kind === 'tokens') {
      const minCount = checkSize('minCount', options.minCount ?? 1);
      const maxTokens = options.maxTokens === undefined ? Infinity : checkSize('maxTokens', options.maxTokens);
      const counts = new Float64Array(data.tokens.length);
      for (const i of examples) for (let s = data.offsets[i]; s < data.offsets[i + 1]; s++) counts[data.ids[s]]++;
      const kept = data.tokens.map((token, id) => ({ token, n: counts[id] })).filter((t) => t.n >= minCount);
      kept.sort((a, b) => b.n - a.n || compare(a.token, b.token));
      const tokens = kept.slice(0, maxTokens).map((t) => t.token).sort(compare);
      return new SequenceEncoder({ kind: 'tokens', tokenize: data.tokenize, lowercase: data.lowercase, tokens, labels });
    }
    const D = data.inputSize;
    const mean = new Array<number>(D).fill(0);
    const std = new Array<number>(D).fill(1);
    if (options.normalize ?? true) {
      const sum = new Float64Array(D);
      const sq = new Float64Array(D);
      let steps = 0;
      for (const i of examples) {
        for (let s = data.offsets[i]; s < data.offsets[i + 1]; s++, steps++) for (let d = 0; d < D; d++) sum[d] += data.values[s * D + d];
      }
      for (let d = 0; d < D; d++) mean[d] = sum[d] / steps;
      for (const i of examples) {
        for (let s = data.offsets[i]; s < data.offsets[i + 1]; s++) for (let d = 0; d < D; d++) sq[d] += (data.values[s * D + d] - mean[d]) ** 2;
      }
      for (let d = 0; d < D; d++) {
        const sd = Math.sqrt(sq[d] / steps);
        std[d] = sd > 0 && Number.isFinite(1 / sd) ? sd : 1; // a constant input stays 0
      }
    }
    return new SequenceEncoder({ kind: 'dense', inputSize: D, mean, std, labels });
  }

  /** 'tokens' for text, 'dense' for numeric sequences. */
  get kind(): 'tokens' | 'dense' {
    return this.state.kind;
  }

  /** The model's input size: V + 1 token ids (UNKNOWN_ID and the V known tokens), or D. */
  get inputSize(): number {
    return this.state.kind === 'tokens' ? this.state.tokens.length + 1 : this.state.inputSize;
  }

  /** Class names; class id k is labels[k]. */
  get labels(): readonly string[] {
    return this.state.labels;
  }

  /** K: the classifier's outputs. */
  get numClasses(): number {
    return this.state.labels.length;
  }

  /** Known tokens; token id k (k >= 1) is tokens[k - 1]. */
  get tokens(): readonly string[] {
    return this.state.kind === 'tokens' ? this.state.tokens : [];
  }

  /** A label's class id; one the training data did not have is a RangeError. */
  labelId(label: string | number): number {
    return this.classOf(labelKey(label, 'label'), 'label');
  }

  /** One text's token ids, cut as the training text was. */
  encodeText(text: string): Int32Array {
    if (this.state.kind !== 'tokens') throw new TypeError('this encoder is for numeric sequences, not text');
    if (typeof text !== 'string') throw new TypeError(`text must be a string, got ${describeValue(text)}`);
    return Int32Array.from(tokenize(text, this.state), (t) => this.tokenIds.get(t) ?? UNKNOWN_ID);
  }

  /**
   * Encodes `rows` of the data (default: all), read with the same tokenisation. Unknown tokens
   * become UNKNOWN_ID (and are counted); an unknown label is a RangeError naming its line.
   */
  encode(data: LabelledData, rows?: Int32Array): EncodedSequences {
    const examples = checkRows(data, rows);
    if (data.kind !== this.state.kind) throw new TypeError(`this encoder is for ${this.state.kind === 'tokens' ? 'text' : 'numeric sequences'}, but ${data.source} holds ${data.kind === 'tokens' ? 'text' : 'numeric sequences'}`);
    const count = examples.length;
    const offsets = new Int32Array(count + 1);
    const labels = new Int32Array(count);
    const lines = new Int32Array(count);
    const classOfRead = data.labelNames.map((name) => this.labelIds.get(name));
    examples.forEach((i, k) => {
      labels[k] = classOfRead[data.labels[i]] ?? this.classOf(data.labelNames[data.labels[i]], `${data.source}: ${data.unit} ${data.lines[i]}: label`);
      lines[k] = data.lines[i];
      offsets[k + 1] = offsets[k] + data.offsets[i + 1] - data.offsets[i];
    });
    const common = { count, offsets, labels, lines, unit: data.unit };
    const state = this.state;
    if (state.kind === 'tokens') {
      const d = data as TokenExamples;
      if (d.tokenize !== state.tokenize || d.lowercase !== state.lowercase) {
        throw new TypeError(`${d.source} was read with tokenize '${d.tokenize}', lowercase ${d.lowercase}; this encoder needs tokenize '${state.tokenize}', lowercase ${state.lowercase}`);
      }
      const idOfRead = Int32Array.from(d.tokens, (t) => this.tokenIds.get(t) ?? UNKNOWN_ID);
      const out = new Int32Array(offsets[count]);
      let unknownTokens = 0;
      examples.forEach((i, k) => {
        for (let s = d.offsets[i], o = offsets[k]; s < d.offsets[i + 1]; s++, o++) {
          out[o] = idOfRead[d.ids[s]];
          if (out[o] === UNKNOWN_ID) unknownTokens++;
        }
      });
      return Object.freeze({ ...common, kind: 'tokens', data: out, unknownTokens });
    }
    const d = data as DenseExamples;
    const { mean, std, inputSize: D } = state;
    if (d.inputSize !== D) throw new TypeError(`${d.source} has ${d.inputSize} values per step; this encoder needs ${D}`);
    const out = new Float32Array(offsets[count] * D);
    examples.forEach((i, k) => {
      for (let s = d.offsets[i], o = offsets[k]; s < d.offsets[i + 1]; s++, o++) {
        for (let j = 0; j < D; j++) out[o * D + j] = (d.values[s * D + j] - mean[j]) / std[j];
      }
    });
    return Object.freeze({ ...common, kind: 'dense', data: out, inputSize: D });
  }

  /** JSON for a checkpoint's metadata. */
  serialize(): string {
    return JSON.stringify(this.state);
  }

  /** The encoder serialize() wrote; anything else is a CheckpointError saying what is wrong. */
  static deserialize(json: string): SequenceEncoder {
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(json);
    } catch (err) {
      throw new CheckpointError(`sequence encoder is not valid JSON: ${(err as Error).message}`);
    }
    const fail = (what: string): never => {
      throw new CheckpointError(`invalid sequence encoder: ${what}`);
    };
    if (typeof o !== 'object' || o === null) fail('expected an object');
    const labels = o.labels;
    if (!Array.isArray(labels) || labels.length === 0 || !labels.every((l) => typeof l === 'string' && l.length > 0) || new Set(labels).size !== labels.length) fail('labels must be distinct non-empty strings');
    if (o.kind === 'tokens') {
      let options: Required<TokenizeOptions> = { tokenize: 'char', lowercase: false };
      try {
        options = checkTokenizeOptions(o as TokenizeOptions);
      } catch (err) {
        fail((err as Error).message);
      }
      const tokens = o.tokens;
      if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === 'string' && t.length > 0) || new Set(tokens).size !== tokens.length) fail('tokens must be distinct non-empty strings');
      return new SequenceEncoder({ kind: 'tokens', ...options, tokens: [...(tokens as string[])], labels: [...(labels as string[])] });
    }
    if (o.kind === 'dense') {
      const D = o.inputSize;
      if (typeof D !== 'number' || !Number.isInteger(D) || D < 1) fail('inputSize must be a positive integer');
      const finite = (a: unknown, positive: boolean) => Array.isArray(a) && a.length === D && a.every((v) => typeof v === 'number' && Number.isFinite(v) && (!positive || v > 0));
      if (!finite(o.mean, false) || !finite(o.std, true)) fail(`mean and std must be ${D} finite numbers (std > 0)`);
      return new SequenceEncoder({ kind: 'dense', inputSize: D as number, mean: [...(o.mean as number[])], std: [...(o.std as number[])], labels: [...(labels as string[])] });
    }
    return fail(`kind must be 'tokens' or 'dense', got ${JSON.stringify(o.kind)}`);
  }

  private classOf(label: string, what: string): number {
    const id = this.labelIds.get(label);
    if (id === undefined) throw new RangeError(`${what} ${JSON.stringify(label)} was not in the training data, so the model has no class for it (its classes: ${this.state.labels.map((l) => JSON.stringify(l)).join(', ')})`);
    return id;
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Labels in numeric order when all are integers, else in string order. */
function sortLabels(labels: string[]): string[] {
  const numeric = labels.every((l) => /^-?\d+$/.test(l));
  return labels.sort(numeric ? (a, b) => Number(a) - Number(b) : compare);
}

function checkRows(data: LabelledData, rows: Int32Array | undefined): Int32Array {
  if (typeof data !== 'object' || data === null || (data.kind !== 'tokens' && data.kind !== 'dense')) throw new TypeError(`data must be LabelledData (from readLabelledJsonl, readLabelledCsv or labelledFromRecords), got ${describeValue(data)}`);
  if (rows === undefined) return Int32Array.from({ length: data.count }, (_, i) => i);
  if (!(rows instanceof Int32Array)) throw new TypeError(`rows must be an Int32Array of example indices, got ${describeValue(rows)}`);
  for (let k = 0; k < rows.length; k++) {
    if (rows[k] < 0 || rows[k] >= data.count) throw new RangeError(`rows[${k}] = ${rows[k]} is outside [0, ${data.count})`);
  }
  return rows;
}

/**
 * A padded batch of sequences, time-major; `steps`, `batch`, `input` and `lengths` are what the
 * engine's {@link LayerBatch} takes, so a batch goes straight into a recurrent layer, which skips
 * the padding.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { SequenceBatcher, SequenceEncoder, backends, labelledFromRecords, layerParameterShapes, type ClassificationBatch } from 'bptt';
 *
 * const data = labelledFromRecords([{ text: 'abc', label: 'x' }, { text: 'b', label: 'y' }]);
 * const encoder = SequenceEncoder.fit(data); // a = 1, b = 2, c = 3
 * const batcher = new SequenceBatcher(encoder.encode(data), { batchSize: 2 });
 * const batch: ClassificationBatch = batcher.batch([0, 1]);
 * assert.equal(batch.steps, 3);
 * assert.deepEqual(Array.from(batch.input.data), [1, 2, 2, 0, 3, 0]); // [T, B]: a b | b pad | c pad
 * assert.deepEqual(Array.from(batch.lengths), [3, 1]);
 * assert.deepEqual(Array.from(batch.labels), [0, 1]);
 *
 * const spec = { cell: 'lstm', inputSize: encoder.inputSize, hiddenSize: 2 } as const;
 * const weights = Object.fromEntries(Object.entries(layerParameterShapes(spec)).map(([name, shape]) => [name, new Float32Array(shape[0] * (shape[1] ?? 1)).fill(0.1)]));
 * const { y, saved } = backends.reference.layerForward(spec, weights, batch);
 * saved.dispose();
 * assert.deepEqual(Array.from(y.subarray((1 * 2 + 1) * 2, (1 * 2 + 2) * 2)), [0, 0]); // step 1 of sequence 1: padding
 * assert.ok(y[(2 * 2 + 0) * 2] !== 0); // step 2 of sequence 0 is computed
 * ```
 */
export interface ClassificationBatch {
  /** T: the longest sequence of the batch. */
  steps: number;
  /** B. */
  batch: number;
  /** [T, B] token ids or [T, B, D] values, time-major; padding is 0. */
  input: { kind: 'tokens'; data: Int32Array } | { kind: 'dense'; data: Float32Array };
  /** Valid steps of each sequence, in [1, T], [B]. */
  lengths: Int32Array;
  /** Each sequence's class id, [B]. */
  labels: Int32Array;
  /** The examples' indices in the EncodedSequences, [B]. */
  indices: Int32Array;
}

/**
 * How {@link SequenceBatcher} groups sequences: the batch size, the length buckets and what to do
 * with a sequence longer than the last bucket.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { SequenceBatcher, SequenceEncoder, labelledFromRecords, type BucketOptions } from 'bptt';
 *
 * const data = labelledFromRecords(['a', 'ab', 'abc', 'abcdefgh'].map((text) => ({ text, label: 'x' })));
 * const set = SequenceEncoder.fit(data).encode(data);
 * const options: BucketOptions = { batchSize: 8, buckets: [2, 4], overflow: 'truncate' };
 * const steps = [...new SequenceBatcher(set, options).batches()].map((b) => Array.from(b.lengths));
 * assert.deepEqual(steps, [[1, 2], [3, 4]]); // 'abcdefgh' keeps its first 4 steps
 * assert.throws(() => new SequenceBatcher(set, { batchSize: 8, buckets: [2, 4] }), /has 8 steps, more than the largest bucket \(4\)/);
 * ```
 */
export interface BucketOptions {
  batchSize: number;
  /**
   * Upper bounds of the buckets' lengths, increasing; a sequence goes to the first bucket that
   * holds it and batches are drawn from one bucket, so the sequences of a batch have similar
   * lengths. Default: the lengths at the 1/8, 2/8, ..., 8/8 quantiles of the set.
   */
  buckets?: readonly number[];
  /** A sequence longer than the last bucket: 'error' (default) or 'truncate' (keep its first steps). */
  overflow?: 'error' | 'truncate';
}

/**
 * Order of one epoch of {@link SequenceBatcher.batches}: in order (buckets by length, each sorted
 * by length), or shuffled within buckets and then the batches shuffled, from a seed.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { SequenceBatcher, SequenceEncoder, labelledFromRecords, type EpochOptions } from 'bptt';
 *
 * const data = labelledFromRecords(Array.from({ length: 12 }, (_, i) => ({ text: 'x'.repeat(1 + (i % 4)), label: 'a' })));
 * const batcher = new SequenceBatcher(SequenceEncoder.fit(data).encode(data), { batchSize: 3, buckets: [2, 4] });
 * const order = (options: EpochOptions) => [...batcher.batches(options)].map((b) => Array.from(b.indices));
 * const epoch1 = order({ shuffle: true, seed: 1 });
 * assert.deepEqual(order({ shuffle: true, seed: 1 }), epoch1); // the same seed, the same order
 * assert.deepEqual(epoch1.flat().sort((a, b) => a - b), Array.from({ length: 12 }, (_, i) => i)); // each once
 * ```
 */
export interface EpochOptions {
  /** Shuffle within buckets and the order of batches (default false: buckets in order, sorted by length). */
  shuffle?: boolean;
  /** Default 0; pass a new one each epoch for a new order. */
  seed?: number;
}

/**
 * Padded batches of encoded sequences, grouped into length buckets so that a batch holds
 * sequences of similar lengths and padding stays small. Each epoch yields every example once.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { SequenceBatcher, SequenceEncoder, labelledFromRecords, paddingFraction } from 'bptt';
 *
 * const texts = ['a', 'bb', 'c', 'dd', 'eeeee', 'fffff', 'g', 'hhhhh'];
 * const data = labelledFromRecords(texts.map((text, i) => ({ text, label: i % 2 })));
 * const set = SequenceEncoder.fit(data).encode(data);
 * const bucketed = new SequenceBatcher(set, { batchSize: 2, buckets: [2, 5] });
 * assert.equal(bucketed.batchCount, 5); // lengths <= 2: 5 sequences in 3 batches; 3 to 5: 3 sequences in 2
 * for (const batch of bucketed.batches({ shuffle: true, seed: 4 })) {
 *   assert.ok(Array.from(batch.lengths).every((n) => n <= 2) || Array.from(batch.lengths).every((n) => n > 2));
 * }
 * // One bucket for all: a shuffled batch may pair 'a' with 'eeeee' (4 steps of padding).
 * const single = new SequenceBatcher(set, { batchSize: 2, buckets: [5] });
 * assert.ok(paddingFraction(bucketed.batches({ shuffle: true, seed: 4 })) <= paddingFraction(single.batches({ shuffle: true, seed: 4 })));
 * ```
 */
export class SequenceBatcher {
  /** The sequences it batches. */
  readonly set: EncodedSequences;
  /** Most sequences in a batch. */
  readonly batchSize: number;
  /** Upper bounds of the length buckets, increasing. */
  readonly buckets: readonly number[];
  /** Examples of each bucket, by length then index. */
  private readonly members: Int32Array[];
  /** Steps used of each example (its length, or the last bucket's bound when truncated). */
  private readonly lengths: Int32Array;

  /**
   * Sorts the sequences into buckets. A sequence longer than the last bucket is a RangeError
   * unless `overflow` is 'truncate'.
   */
  constructor(set: EncodedSequences, options: BucketOptions) {
    if (typeof set !== 'object' || set === null || (set.kind !== 'tokens' && set.kind !== 'dense')) throw new TypeError(`set must be EncodedSequences (from SequenceEncoder.encode), got ${describeValue(set)}`);
    if (set.count === 0) throw new RangeError('cannot batch an empty set of sequences');
    this.set = set;
    this.batchSize = checkSize('batchSize', options?.batchSize);
    const overflow = options.overflow ?? 'error';
    if (overflow !== 'error' && overflow !== 'truncate') throw new RangeError(`overflow must be 'error' or 'truncate', got ${JSON.stringify(overflow)}`);
    const raw = Int32Array.from({ length: set.count }, (_, i) => set.offsets[i + 1] - set.offsets[i]);
    this.buckets = Object.freeze(options.buckets === undefined ? quantileBuckets(raw) : checkBuckets(options.buckets));
    const longest = this.buckets[this.buckets.length - 1];
    this.lengths = raw.map((n, i) => {
      if (n <= longest) return n;
      if (overflow === 'truncate') return longest;
      throw new RangeError(`the sequence of ${set.unit} ${set.lines[i]} has ${n} steps, more than the largest bucket (${longest}); add a larger bucket or pass overflow: 'truncate'`);
    });
    const byBucket: number[][] = this.buckets.map(() => []);
    for (let i = 0; i < set.count; i++) byBucket[bucketOf(this.buckets, this.lengths[i])].push(i);
    this.members = byBucket.map((m) => Int32Array.from(m.sort((a, b) => this.lengths[a] - this.lengths[b] || a - b)));
  }

  /** Batches in one epoch. */
  get batchCount(): number {
    return this.members.reduce((n, m) => n + Math.ceil(m.length / this.batchSize), 0);
  }

  /** One epoch: every example once, in batches of at most batchSize drawn from one bucket. */
  *batches(options: EpochOptions = {}): Generator<ClassificationBatch> {
    const shuffle = options.shuffle ?? false;
    const rng = new Rng(options.seed ?? 0);
    const groups: Int32Array[] = [];
    for (const m of this.members) {
      const order = shuffle ? m.slice() : m;
      if (shuffle) shuffleInPlace(order, rng);
      for (let from = 0; from < order.length; from += this.batchSize) groups.push(order.subarray(from, from + this.batchSize));
    }
    const sequence = Int32Array.from(groups, (_, g) => g);
    if (shuffle) shuffleInPlace(sequence, rng);
    for (const g of sequence) yield this.batch(groups[g]);
  }

  /** The examples with these indices as one padded batch. */
  batch(indices: ArrayLike<number>): ClassificationBatch {
    const B = indices.length;
    if (B < 1) throw new RangeError('a batch needs at least one sequence');
    const set = this.set;
    const lengths = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      const i = indices[b];
      if (!Number.isInteger(i) || i < 0 || i >= set.count) throw new RangeError(`indices[${b}] = ${i} is outside [0, ${set.count})`);
      lengths[b] = this.lengths[i];
    }
    const T = lengths.reduce((a, n) => Math.max(a, n), 0);
    const labels = Int32Array.from(indices, (i) => set.labels[i]);
    let input: ClassificationBatch['input'];
    if (set.kind === 'tokens') {
      const data = new Int32Array(T * B); // padding: id 0, never read (lengths)
      for (let b = 0; b < B; b++) for (let t = 0, s = set.offsets[indices[b]]; t < lengths[b]; t++, s++) data[t * B + b] = set.data[s];
      input = { kind: 'tokens', data };
    } else {
      const D = set.inputSize;
      const data = new Float32Array(T * B * D);
      for (let b = 0; b < B; b++) {
        const s = set.offsets[indices[b]];
        for (let t = 0; t < lengths[b]; t++) data.set(set.data.subarray((s + t) * D, (s + t + 1) * D), (t * B + b) * D);
      }
      input = { kind: 'dense', data };
    }
    return { steps: T, batch: B, input, lengths, labels, indices: Int32Array.from(indices) };
  }
}

/**
 * Padding steps over all steps of the batches (0 when no batch is padded): the share of a
 * recurrent layer's work that bucketing saves.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { SequenceBatcher, SequenceEncoder, labelledFromRecords, paddingFraction } from 'bptt';
 *
 * const data = labelledFromRecords([{ text: 'abc', label: 'x' }, { text: 'a', label: 'x' }]);
 * const set = SequenceEncoder.fit(data).encode(data);
 * // One bucket: one batch of T = 3 steps for sequences of 3 and 1 valid steps; 2 of its 6 steps are padding.
 * assert.ok(Math.abs(paddingFraction(new SequenceBatcher(set, { batchSize: 2, buckets: [3] }).batches()) - 2 / 6) < 1e-12);
 * // The default buckets (length quantiles) put the two in different batches: no padding.
 * assert.equal(paddingFraction(new SequenceBatcher(set, { batchSize: 2 }).batches()), 0);
 * ```
 */
export function paddingFraction(batches: Iterable<ClassificationBatch>): number {
  let padded = 0;
  let valid = 0;
  for (const b of batches) {
    padded += b.steps * b.batch;
    for (const n of b.lengths) valid += n;
  }
  return padded === 0 ? 0 : 1 - valid / padded;
}

function quantileBuckets(lengths: Int32Array): number[] {
  const sorted = lengths.slice().sort();
  const bounds = new Set<number>();
  for (let q = 1; q <= 8; q++) bounds.add(sorted[Math.ceil((q * sorted.length) / 8) - 1]);
  return [...bounds].sort((a, b) => a - b);
}

function checkBuckets(buckets: readonly number[]): number[] {
  if (!Array.isArray(buckets) || buckets.length === 0) throw new TypeError(`buckets must be a non-empty array of lengths, got ${describeValue(buckets)}`);
  buckets.forEach((n, i) => {
    checkSize(`buckets[${i}]`, n);
    if (i > 0 && n <= buckets[i - 1]) throw new RangeError(`buckets must increase, but buckets[${i}] = ${n} follows ${buckets[i - 1]}`);
  });
  return [...buckets];
}

/** The first bucket whose bound is at least n (n never exceeds the last). */
function bucketOf(bounds: readonly number[], n: number): number {
  let lo = 0;
  let hi = bounds.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (bounds[mid] >= n) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
