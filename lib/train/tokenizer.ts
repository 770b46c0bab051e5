/**
 * Character-level tokenizer. The vocabulary is the set of code points of the training text,
 * sorted by code point, so the same text always gives the same ids on every platform and the
 * vocabulary can be stored in a checkpoint as a plain JSON array.
 */
import { CheckpointError } from '../errors';

function byCodePoint(a: string, b: string): number {
  return (a.codePointAt(0) as number) - (b.codePointAt(0) as number);
}

/**
 * Options of {@link CharTokenizer.encode}.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { CharTokenizer, type EncodeOptions } from 'bptt';
 *
 * const tokenizer = CharTokenizer.fromText('abc');
 * const options: EncodeOptions = { skipUnknown: true };
 * assert.deepEqual(tokenizer.encode('a?c', options), Int32Array.of(0, 2));
 * ```
 */
export interface EncodeOptions {
  /** Drop characters outside the vocabulary instead of throwing. */
  skipUnknown?: boolean;
}

/**
 * A character-level tokenizer: one id per distinct code point of the training text, the
 * vocabulary sorted by code point, so the same text gives the same ids on every platform.
 * Checkpoints store it (`serialize`), and a model with one samples text.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { CharTokenizer } from 'bptt';
 *
 * const tokenizer = CharTokenizer.fromText('hello world\n');
 * assert.equal(tokenizer.vocabSize, 9); // '\n', ' ', d, e, h, l, o, r, w
 * const ids = tokenizer.encode('hello');
 * assert.deepEqual(ids, Int32Array.of(4, 3, 5, 5, 6));
 * assert.equal(tokenizer.decode(ids), 'hello');
 * ```
 */
export class CharTokenizer {
  /** The vocabulary: one character (code point) per id, sorted by code point. */
  readonly chars: readonly string[];
  private readonly ids: ReadonlyMap<string, number>;

  /**
   * A tokenizer over `chars`, which must be distinct single code points sorted by code point.
   *
   * @throws TypeError for an empty, unsorted or duplicated vocabulary or an entry that is not one
   * character.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { CharTokenizer } from 'bptt';
   *
   * const dna = new CharTokenizer(['A', 'C', 'G', 'T']);
   * assert.deepEqual(dna.encode('GATTACA'), Int32Array.of(2, 0, 3, 3, 0, 1, 0));
   * assert.throws(() => new CharTokenizer(['b', 'a']), TypeError); // not sorted
   * ```
   */
  constructor(chars: readonly string[]) {
    if (!Array.isArray(chars) || chars.length === 0) throw new TypeError('a vocabulary needs at least one character');
    const ids = new Map<string, number>();
    chars.forEach((ch, i) => {
      if (typeof ch !== 'string' || [...ch].length !== 1) throw new TypeError(`vocabulary entry ${i} must be a single character, got ${JSON.stringify(ch)}`);
      if (ids.has(ch)) throw new TypeError(`vocabulary entry ${i} (${JSON.stringify(ch)}) is a duplicate`);
      if (i > 0 && byCodePoint(chars[i - 1], ch) > 0) throw new TypeError('vocabulary must be sorted by code point');
      ids.set(ch, i);
    });
    this.chars = Object.freeze([...chars]);
    this.ids = ids;
  }

  /**
   * Builds the vocabulary from every distinct character (code point) of `text`.
   *
   * @throws TypeError for empty text.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { CharTokenizer } from 'bptt';
   *
   * assert.deepEqual(CharTokenizer.fromText('banana').chars, ['a', 'b', 'n']);
   * assert.equal(CharTokenizer.fromText('😀a').vocabSize, 2); // code points, not UTF-16 units
   * ```
   */
  static fromText(text: string): CharTokenizer {
    if (typeof text !== 'string' || text.length === 0) throw new TypeError('cannot build a vocabulary from empty text');
    return new CharTokenizer([...new Set(text)].sort(byCodePoint));
  }

  /**
   * The number of ids: a character model's inputSize and outputSize.
   *
   * @example
   * ```ts
   * import { CharTokenizer, RNN } from 'bptt';
   *
   * const tokenizer = CharTokenizer.fromText('to be or not to be');
   * const rnn = new RNN({ inputSize: tokenizer.vocabSize, hiddenSize: 32, outputSize: tokenizer.vocabSize });
   * console.log(rnn.inputSize);
   * ```
   */
  get vocabSize(): number {
    return this.chars.length;
  }

  /**
   * Whether `ch` is in the vocabulary.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { CharTokenizer } from 'bptt';
   *
   * const tokenizer = CharTokenizer.fromText('abc');
   * assert.equal(tokenizer.has('b'), true);
   * assert.equal(tokenizer.has('z'), false);
   * ```
   */
  has(ch: string): boolean {
    return this.ids.has(ch);
  }

  /**
   * The id of one character.
   *
   * @throws RangeError for a character outside the vocabulary.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { CharTokenizer } from 'bptt';
   *
   * const tokenizer = CharTokenizer.fromText('abc');
   * assert.equal(tokenizer.id('c'), 2);
   * assert.throws(() => tokenizer.id('z'), RangeError);
   * ```
   */
  id(ch: string): number {
    const id = this.ids.get(ch);
    if (id === undefined) throw new RangeError(`character ${JSON.stringify(ch)} is not in the vocabulary`);
    return id;
  }

  /**
   * The ids of the characters of `text`, one per code point.
   *
   * @throws RangeError for a character outside the vocabulary (naming it and its code point),
   * unless skipUnknown drops it.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { CharTokenizer } from 'bptt';
   *
   * const tokenizer = CharTokenizer.fromText('abc');
   * assert.deepEqual(tokenizer.encode('cab'), Int32Array.of(2, 0, 1));
   * assert.throws(() => tokenizer.encode('abd'), /U\+0064/);
   * ```
   */
  encode(text: string, options: EncodeOptions = {}): Int32Array {
    const out: number[] = [];
    for (const ch of text) {
      const id = this.ids.get(ch);
      if (id !== undefined) out.push(id);
      else if (!options.skipUnknown) throw new RangeError(`character ${JSON.stringify(ch)} (U+${(ch.codePointAt(0) as number).toString(16).toUpperCase().padStart(4, '0')}) is not in the vocabulary`);
    }
    return Int32Array.from(out);
  }

  /**
   * The text of a sequence of ids.
   *
   * @throws RangeError for an id outside [0, vocabSize).
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { CharTokenizer } from 'bptt';
   *
   * const tokenizer = CharTokenizer.fromText('abc');
   * assert.equal(tokenizer.decode([1, 0, 2]), 'bac');
   * assert.throws(() => tokenizer.decode([3]), RangeError);
   * ```
   */
  decode(ids: ArrayLike<number>): string {
    let s = '';
    for (let i = 0; i < ids.length; i++) {
      const ch = this.chars[ids[i]];
      if (ch === undefined) throw new RangeError(`token id ${ids[i]} is outside [0, ${this.chars.length})`);
      s += ch;
    }
    return s;
  }

  /**
   * The vocabulary as a JSON array string, the form stored in checkpoint metadata.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { CharTokenizer } from 'bptt';
   *
   * assert.equal(CharTokenizer.fromText('ba').serialize(), '["a","b"]');
   * ```
   */
  serialize(): string {
    return JSON.stringify(this.chars);
  }

  /**
   * The tokenizer of a {@link CharTokenizer.serialize} string.
   *
   * @throws CheckpointError for JSON that is not a valid vocabulary.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { CharTokenizer, CheckpointError } from 'bptt';
   *
   * const tokenizer = CharTokenizer.fromText('hello');
   * assert.deepEqual(CharTokenizer.deserialize(tokenizer.serialize()).chars, tokenizer.chars);
   * assert.throws(() => CharTokenizer.deserialize('["b","a"]'), CheckpointError);
   * ```
   */
  static deserialize(json: string): CharTokenizer {
    let chars: unknown;
    try {
      chars = JSON.parse(json);
    } catch (err) {
      throw new CheckpointError(`vocabulary is not valid JSON: ${(err as Error).message}`);
    }
    if (!Array.isArray(chars) || !chars.every((c): c is string => typeof c === 'string')) {
      throw new CheckpointError('vocabulary must be a JSON array of strings');
    }
    try {
      return new CharTokenizer(chars);
    } catch (err) {
      throw new CheckpointError(`invalid vocabulary: ${(err as Error).message}`);
    }
  }
}
