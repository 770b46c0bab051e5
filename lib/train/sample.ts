/**
 * Text generation: feed a primer, then draw one token at a time from the softmax of the logits
 * (scaled by 1/temperature, optionally restricted to the top k), feeding each draw back in with
 * the carried hidden state. Deterministic for a seed.
 */
import type { RNN } from '../rnn';
import { Rng } from '../rng';
import { Tensor } from '../tensor';
import type { CharTokenizer } from './tokenizer';

/**
 * How {@link sample} draws: how many tokens, the temperature, top-k, and the random generator.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, Rng, sample, type SampleOptions } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 5, hiddenSize: 8, outputSize: 5, seed: 1 });
 * const rng = new Rng(3);
 * const options: SampleOptions = { length: 10, temperature: 0.7, topK: 3, rng };
 * const a = sample(rnn, { ...options, prime: [0] });
 * const b = sample(rnn, { ...options, prime: [0] }); // rng has moved on: another draw
 * assert.equal(a.length + b.length, 20);
 * ```
 */
export interface SampleOptions {
  /** Tokens to generate. */
  length: number;
  /** Softmax temperature; 0 picks the most likely token every time. Default 1. */
  temperature?: number;
  /** Draw only among the k most likely tokens. */
  topK?: number;
  /** Seed of the sampling RNG (default 0); ignored when `rng` is given. */
  seed?: number;
  /** Generator to draw from (and advance), for callers that keep one RNG across calls. */
  rng?: Rng;
}

/**
 * {@link sample} options for text: a tokenizer, and a text primer.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { CharTokenizer, RNN, sample, type TextSampleOptions } from 'bptt';
 *
 * const tokenizer = CharTokenizer.fromText('abc\n');
 * const rnn = new RNN({ inputSize: 4, hiddenSize: 8, outputSize: 4, seed: 1 });
 * const options: TextSampleOptions = { tokenizer, length: 12, prime: 'ab', seed: 1 };
 * assert.equal(sample(rnn, options).length, 12);
 * ```
 */
export interface TextSampleOptions extends SampleOptions {
  /** Encodes the primer and decodes the draw; its vocabSize must be the model's inputSize. */
  tokenizer: CharTokenizer;
  /** Text to condition on; default: a line break when the vocabulary has one (starts a new line). */
  prime?: string;
}

/**
 * {@link sample} options for token ids: no tokenizer, an id primer.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, sample, type TokenSampleOptions } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 5, hiddenSize: 8, outputSize: 5, seed: 1 });
 * const options: TokenSampleOptions = { length: 6, prime: [4, 2], temperature: 0 };
 * const ids = sample(rnn, options);
 * assert.ok(ids.every((id) => id >= 0 && id < 5));
 * ```
 */
export interface TokenSampleOptions extends SampleOptions {
  tokenizer?: undefined;
  /** Token ids to condition on; default: one token drawn uniformly. */
  prime?: ArrayLike<number>;
}

/**
 * Returns the generated continuation (without the primer): text with a tokenizer, else token ids.
 * The primer is run through the model, then each token is drawn from softmax(logits /
 * temperature) (among the topK most likely, ties at the cut included) and fed back with the
 * carried state. Temperature 0 (or topK 1) always picks the most likely token.
 *
 * @throws TypeError for a bidirectional model or options that are not an object; RangeError for
 * a length that is not a non-negative integer, a negative or non-finite temperature, a topK that
 * is not a positive integer, prime ids outside [0, inputSize), a tokenizer of another size, or
 * outputSize > inputSize (outputs are fed back as inputs).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { CharTokenizer, RNN, sample } from 'bptt';
 *
 * const tokenizer = CharTokenizer.fromText('abc\n');
 * const rnn = new RNN({ inputSize: 4, hiddenSize: 8, outputSize: 4, cell: 'gru', seed: 1 });
 * const greedy = sample(rnn, { tokenizer, length: 8, prime: 'a', temperature: 0 });
 * assert.equal(greedy, sample(rnn, { tokenizer, length: 8, prime: 'a', temperature: 0 }));
 * const ids = sample(rnn, { length: 8, seed: 5 }); // token ids, a random first token
 * assert.equal(ids.length, 8);
 * ```
 */
export function sample(rnn: RNN, options: TextSampleOptions): string;
export function sample(rnn: RNN, options: TokenSampleOptions): Int32Array;
export function sample(rnn: RNN, options: TextSampleOptions | TokenSampleOptions): string | Int32Array {
  if (typeof options !== 'object' || options === null) throw new TypeError('sample options must be an object');
  const { length, temperature = 1, topK } = options;
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`length must be a non-negative integer, got ${length}`);
  if (typeof temperature !== 'number' || !(Number.isFinite(temperature) && temperature >= 0)) throw new RangeError(`temperature must be a finite number >= 0, got ${temperature}`);
  const K = rnn.outputSize;
  if (topK !== undefined && !(Number.isInteger(topK) && topK >= 1)) throw new RangeError(`topK must be a positive integer, got ${topK}`);
  if (rnn.bidirectional) throw new TypeError('sampling runs the model one step at a time, forward: a bidirectional model would need the future it is generating');
  if (K > rnn.inputSize) throw new RangeError(`sampling feeds outputs back as inputs, so outputSize (${K}) must not exceed inputSize (${rnn.inputSize})`);
  if (options.seed !== undefined && !Number.isSafeInteger(options.seed)) throw new RangeError(`seed must be an integer, got ${options.seed}`);
  const rng = options.rng ?? new Rng(options.seed ?? 0);

  let primer: Int32Array;
  if (options.tokenizer) {
    const tok = options.tokenizer;
    if (tok.vocabSize !== rnn.inputSize) throw new RangeError(`the tokenizer has ${tok.vocabSize} characters but the model takes ${rnn.inputSize} inputs`);
    const text = options.prime ?? (tok.has('\n') ? '\n' : '');
    primer = tok.encode(text);
  } else {
    primer = Int32Array.from(options.prime ?? []);
    for (const id of primer) if (!(id >= 0 && id < rnn.inputSize)) throw new RangeError(`prime token ${id} is outside [0, ${rnn.inputSize})`);
  }
  if (primer.length === 0) primer = Int32Array.of(rng.int(K));

  const out = new Int32Array(length);
  const scratch = new Float64Array(K);
  // The carried state: h, and an LSTM's c beside it.
  let h: Tensor | undefined;
  let c: Tensor | undefined;
  let inputs = primer;
  try {
    for (let i = 0; i < length; i++) {
      const x = Tensor.from(inputs, [inputs.length, 1]);
      let logits: Float32Array;
      try {
        const r = rnn.forward(x, { ...(h ? { h0: h } : {}), ...(c ? { c0: c } : {}) });
        h?.dispose();
        c?.dispose();
        h = r.hT;
        c = r.cT;
        logits = (r.logits.toArray() as Float32Array).subarray((inputs.length - 1) * K);
        r.states.dispose();
        r.logits.dispose();
      } finally {
        x.dispose();
      }
      out[i] = pick(logits, temperature, topK, rng, scratch);
      inputs = out.subarray(i, i + 1);
    }
  } finally {
    h?.dispose();
    c?.dispose();
  }
  return options.tokenizer ? options.tokenizer.decode(out) : out;
}

/** Draws an index from softmax(logits / temperature), restricted to the topK largest. */
function pick(logits: ArrayLike<number>, temperature: number, topK: number | undefined, rng: Rng, p: Float64Array): number {
  const K = logits.length;
  let best = 0;
  for (let k = 1; k < K; k++) if (logits[k] > logits[best]) best = k;
  if (temperature === 0 || topK === 1) return best;
  let threshold = -Infinity;
  if (topK !== undefined && topK < K) {
    const sorted = Array.from(logits).sort((a, b) => b - a);
    threshold = sorted[topK - 1];
  }
  // Ties at the threshold may admit a few more than topK; keeping them all avoids an arbitrary
  // order-dependent choice.
  let total = 0;
  for (let k = 0; k < K; k++) {
    p[k] = logits[k] >= threshold ? Math.exp((logits[k] - logits[best]) / temperature) : 0;
    total += p[k];
  }
  let r = rng.next() * total;
  let last = best;
  for (let k = 0; k < K; k++) {
    if (p[k] === 0) continue;
    r -= p[k];
    if (r < 0) return k;
    last = k;
  }
  return last; // r stayed >= 0 only through rounding: the draw belongs to the last candidate
}
