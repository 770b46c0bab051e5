import { PARAM_NAMES } from '../lib/backend';
import { RNN } from '../lib/rnn';
import { Rng } from '../lib/rng';
import { StreamBatcher } from '../lib/train/batcher';
import { evaluate } from '../lib/train/evaluate';
import { sample } from '../lib/train/sample';
import { CharTokenizer } from '../lib/train/tokenizer';

const tokenizer = CharTokenizer.fromText('abcdef\n');
const V = tokenizer.vocabSize;

/** A model whose next-token distribution is softmax(c), whatever the input and state. */
function fixedDistribution(c: number[]): RNN {
  const rnn = new RNN({ inputSize: V, hiddenSize: 4, outputSize: V, seed: 1 });
  const p = Object.fromEntries(PARAM_NAMES.map((n) => [n, rnn.params[n].toArray() as Float32Array])) as Record<(typeof PARAM_NAMES)[number], Float32Array>;
  rnn.setParams({ ...p, V: new Float32Array(p.V.length), c: Float32Array.from(c) });
  return rnn;
}

describe('sample', () => {
  const rnn = new RNN({ inputSize: V, hiddenSize: 16, outputSize: V, seed: 3 });

  it('is deterministic for a seed and varies with it', () => {
    const a = sample(rnn, { tokenizer, length: 60, seed: 42 });
    expect(sample(rnn, { tokenizer, length: 60, seed: 42 })).toBe(a);
    expect(sample(rnn, { tokenizer, length: 60, seed: 43 })).not.toBe(a);
    expect([...a].length).toBe(60);
    expect([...a].every((ch) => tokenizer.has(ch))).toBe(true);
    expect(sample(rnn, { tokenizer, length: 0 })).toBe('');
  });

  it('continues a primer, and a shared RNG continues across calls', () => {
    const whole = sample(rnn, { tokenizer, prime: 'abc', length: 20, rng: new Rng(7) });
    const rng = new Rng(7);
    const first = sample(rnn, { tokenizer, prime: 'abc', length: 20, rng });
    expect(first).toBe(whole);
    expect(sample(rnn, { tokenizer, prime: 'abc', length: 20, rng })).not.toBe(whole);
  });

  it('temperature 0 and topK 1 pick the most likely token whatever the seed', () => {
    const greedy = sample(rnn, { tokenizer, length: 30, temperature: 0, seed: 1 });
    expect(sample(rnn, { tokenizer, length: 30, temperature: 0, seed: 2 })).toBe(greedy);
    expect(sample(rnn, { tokenizer, length: 30, topK: 1, seed: 3 })).toBe(greedy);
  });

  it('draws from softmax(logits / temperature), restricted to the top k', () => {
    const c = [2, 1, 0, -1, 0.5, -2, 1.5];
    const model = fixedDistribution(c);
    const n = 6000;
    const counts = (ids: Int32Array) => ids.reduce((acc, id) => (acc[id]++, acc), new Array(V).fill(0) as number[]);
    for (const temperature of [1, 0.5]) {
      const seen = counts(sample(model, { length: n, temperature, seed: 5, prime: [0] }));
      const w = c.map((v) => Math.exp(v / temperature));
      const total = w.reduce((a, b) => a + b, 0);
      c.forEach((_, k) => expect(Math.abs(seen[k] / n - w[k] / total)).toBeLessThan(0.03));
    }
    const top3 = counts(sample(model, { length: 2000, topK: 3, seed: 6, prime: [0] }));
    expect(top3.map((x, k) => (x > 0 ? k : -1)).filter((k) => k >= 0)).toEqual([0, 1, 6]);
  });

  it('rejects bad options', () => {
    expect(() => sample(rnn, { tokenizer, length: -1 })).toThrow(RangeError);
    expect(() => sample(rnn, { tokenizer, length: 5, temperature: -1 })).toThrow(RangeError);
    expect(() => sample(rnn, { tokenizer, length: 5, topK: 0 })).toThrow(RangeError);
    expect(() => sample(rnn, { tokenizer, length: 5, prime: 'xyz' })).toThrow(RangeError);
    expect(() => sample(rnn, { length: 5, prime: [V] })).toThrow(RangeError);
    expect(() => sample(rnn, { tokenizer: CharTokenizer.fromText('ab'), length: 5 })).toThrow(RangeError);
  });
});

describe('evaluate', () => {
  it('gives the cross-entropy of the model on the stream, carrying state across chunks', () => {
    const c = [2, 1, 0, -1, 0.5, -2, 1.5];
    const model = fixedDistribution(c);
    const tokens = Int32Array.from({ length: 501 }, (_, i) => (i * 5) % V);
    const r = evaluate(model, tokens, { batch: 4, seq: 7 });
    const logZ = Math.log(c.reduce((a, v) => a + Math.exp(v), 0));
    const L = new StreamBatcher(tokens, 4).streamLength;
    let expected = 0;
    for (let b = 0; b < 4; b++) for (let t = 0; t < L; t++) expected += logZ - c[tokens[b * L + t + 1]];
    expect(r.tokens).toBe(4 * L);
    expect(r.loss).toBeCloseTo(expected / r.tokens, 5);
    expect(r.perplexity).toBeCloseTo(Math.exp(r.loss), 8);
    // Chunk length does not change the result: the state carries across chunks.
    const rnn = new RNN({ inputSize: V, hiddenSize: 8, outputSize: V, seed: 2 });
    expect(evaluate(rnn, tokens, { batch: 3, seq: 5 }).loss).toBeCloseTo(evaluate(rnn, tokens, { batch: 3, seq: 1000 }).loss, 5);
  });
});
