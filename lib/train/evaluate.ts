/** Held-out evaluation: mean cross-entropy per token (nats) and perplexity over a token stream. */
import type { RNN } from '../rnn';
import { Tensor } from '../tensor';
import { StreamBatcher } from './batcher';

/**
 * How {@link evaluate} cuts the token stream.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { CharTokenizer, RNN, evaluate, type EvalOptions } from 'bptt';
 *
 * const tokenizer = CharTokenizer.fromText('abc');
 * const rnn = new RNN({ inputSize: 3, hiddenSize: 8, outputSize: 3, seed: 1 });
 * const options: EvalOptions = { batch: 2, seq: 4 };
 * const { tokens } = evaluate(rnn, tokenizer.encode('abcabcabcabc'), options);
 * assert.equal(tokens, 2 * 5); // 2 streams of floor(11 / 2) predictions
 * ```
 */
export interface EvalOptions {
  /** Parallel streams (default 32, fewer when the text is short). */
  batch?: number;
  /** Steps per forward call (default 64). */
  seq?: number;
}

/**
 * What {@link evaluate} returns.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { RNN, evaluate, type EvalResult } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 4, hiddenSize: 8, outputSize: 4, seed: 1 });
 * const r: EvalResult = evaluate(rnn, Int32Array.of(0, 1, 2, 3, 0, 1, 2, 3, 0), { batch: 2 });
 * assert.ok(Math.abs(r.perplexity - Math.exp(r.loss)) < 1e-12);
 * assert.equal(r.tokens, 8); // 2 streams of 4 predictions
 * ```
 */
export interface EvalResult {
  /** Mean cross-entropy per predicted token, in nats. */
  loss: number;
  /** exp(loss). */
  perplexity: number;
  /** Tokens predicted. */
  tokens: number;
}

/**
 * Runs the model over the whole stream, cut into parallel streams like the training data, with
 * the hidden state carried across chunks so every prediction sees its full left context.
 * (A bidirectional model reads each chunk alone.) The parameters are not changed.
 *
 * @throws RangeError for fewer than 2 tokens or a seq that is not a positive integer; as
 * {@link RNN.forward} for tokens outside [0, inputSize).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { CharTokenizer, RNN, evaluate } from 'bptt';
 *
 * const tokenizer = CharTokenizer.fromText('abcd');
 * const rnn = new RNN({ inputSize: 4, hiddenSize: 8, outputSize: 4, seed: 1 });
 * rnn.setParams({ ...rnn.params, V: new Float32Array(4 * 8), c: new Float32Array(4) }); // uniform predictions
 * const { loss, perplexity } = evaluate(rnn, tokenizer.encode('abcdabcdabcd'));
 * assert.ok(Math.abs(loss - Math.log(4)) < 1e-6);
 * assert.ok(Math.abs(perplexity - 4) < 1e-5);
 * ```
 */
export function evaluate(rnn: RNN, tokens: Int32Array, options: EvalOptions = {}): EvalResult {
  const batch = Math.max(1, Math.min(options.batch ?? 32, tokens.length - 1));
  const seq = options.seq ?? 64;
  if (!Number.isInteger(seq) || seq < 1) throw new RangeError(`seq must be a positive integer, got ${seq}`);
  if (tokens.length < 2) throw new RangeError(`evaluation needs at least 2 tokens, got ${tokens.length}`);
  const data = new StreamBatcher(tokens, batch);
  const K = rnn.outputSize;
  let sum = 0;
  let count = 0;
  // The carried state (h, and an LSTM's c); a bidirectional model reads each chunk alone.
  let h: Tensor | undefined;
  let c: Tensor | undefined;
  try {
    for (let from = 0; from < data.streamLength; from += seq) {
      const chunk = data.slice(from, Math.min(seq, data.streamLength - from));
      const x = Tensor.from(chunk.inputs, [chunk.steps, batch]);
      try {
        const r = rnn.forward(x, { ...(h ? { h0: h } : {}), ...(c ? { c0: c } : {}) });
        h?.dispose();
        c?.dispose();
        h = rnn.bidirectional ? undefined : r.hT;
        c = rnn.bidirectional ? undefined : r.cT;
        if (rnn.bidirectional) {
          r.hT.dispose();
          r.cT?.dispose();
        }
        const logits = r.logits.toArray();
        r.states.dispose();
        r.logits.dispose();
        for (let row = 0; row < chunk.targets.length; row++) {
          sum += crossEntropy(logits, row * K, K, chunk.targets[row]);
          count++;
        }
      } finally {
        x.dispose();
      }
    }
  } finally {
    h?.dispose();
    c?.dispose();
  }
  const loss = sum / count;
  return { loss, perplexity: Math.exp(loss), tokens: count };
}

/** -log softmax(z)[target] in float64, shifted by the max for stability. */
function crossEntropy(z: ArrayLike<number>, at: number, K: number, target: number): number {
  let max = -Infinity;
  for (let k = 0; k < K; k++) if (z[at + k] > max) max = z[at + k];
  let s = 0;
  for (let k = 0; k < K; k++) s += Math.exp(z[at + k] - max);
  return Math.log(s) + max - z[at + target];
}

/** A language model's next-token distribution after reading `tokens` from a zero state (softmax in float64). */
export function nextTokenProbabilities(rnn: RNN, tokens: Int32Array): Float64Array {
  if (tokens.length < 1) throw new RangeError('need at least one token to condition on');
  const x = Tensor.from(tokens, [tokens.length, 1]);
  try {
    const r = rnn.forward(x);
    const K = rnn.outputSize;
    const z = r.logits.toArray();
    for (const t of [r.states, r.logits, r.hT, r.cT]) t?.dispose();
    const at = (tokens.length - 1) * K;
    let max = -Infinity;
    for (let k = 0; k < K; k++) max = Math.max(max, z[at + k]);
    const p = new Float64Array(K);
    let s = 0;
    for (let k = 0; k < K; k++) s += p[k] = Math.exp(z[at + k] - max);
    for (let k = 0; k < K; k++) p[k] /= s;
    return p;
  } finally {
    x.dispose();
  }
}
