/**
 * Character-level tokenizer. The vocabulary is the set of code points of the training text,
 * sorted by code point, so the same text always gives the same ids on every platform and the
 * vocabulary can be stored in a checkpoint as a plain JSON array.
 */
import { CheckpointError } from '../errors';

function byCodePoint(a: string, b: string): number {
  return (a.codePointAt(0) as number) - (b.codePointAt(0) as number);
}

export interface EncodeOptions {
  /** Drop characters outside the vocabulary instead of throwing. */
  skipUnknown?: boolean;
}

export class CharTokenizer {
  /** The vocabulary: one character (code point) per id, sorted by code point. */
  readonly chars: readonly string[];
  private readonly ids: ReadonlyMap<string, number>;

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

  /** Builds the vocabulary from every distinct character of `text`. */
  static fromText(text: string): CharTokenizer {
    if (typeof text !== 'string' || text.length === 0) throw new TypeError('cannot build a vocabulary from empty text');
    return new CharTokenizer([...new Set(text)].sort(byCodePoint));
  }

  get vocabSize(): number {
    return this.chars.length;
  }

  has(ch: string): boolean {
    return this.ids.has(ch);
  }

  id(ch: string): number {
    const id = this.ids.get(ch);
    if (id === undefined) throw new RangeError(`character ${JSON.stringify(ch)} is not in the vocabulary`);
    return id;
  }

  encode(text: string, options: EncodeOptions = {}): Int32Array {
    const out: number[] = [];
    for (const ch of text) {
      const id = this.ids.get(ch);
      if (id !== undefined) out.push(id);
      else if (!options.skipUnknown) throw new RangeError(`character ${JSON.stringify(ch)} (U+${(ch.codePointAt(0) as number).toString(16).toUpperCase().padStart(4, '0')}) is not in the vocabulary`);
    }
    return Int32Array.from(out);
  }

  decode(ids: ArrayLike<number>): string {
    let s = '';
    for (let i = 0; i < ids.length; i++) {
      const ch = this.chars[ids[i]];
      if (ch === undefined) throw new RangeError(`token id ${ids[i]} is outside [0, ${this.chars.length})`);
      s += ch;
    }
    return s;
  }

  /** The vocabulary as a JSON array string, the form stored in checkpoint metadata. */
  serialize(): string {
    return JSON.stringify(this.chars);
  }

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
