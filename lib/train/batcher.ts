/**
 * Cuts one token stream into B parallel streams, as char-rnn does: stream b is the contiguous
 * slice [b*L, (b+1)*L] of the data, and consecutive chunks continue each stream where the previous
 * chunk stopped, so a hidden state carried from chunk to chunk sees one unbroken text per stream.
 */

/**
 * The next piece of every stream, from {@link StreamBatcher.next}, ready for `Tensor.from(...,
 * [steps, B])`.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { StreamBatcher, type Chunk } from 'bptt';
 *
 * const data = new StreamBatcher(Int32Array.from({ length: 9 }, (_, i) => i), 2); // streams 0..4 and 4..8
 * const chunk: Chunk = data.next(3);
 * assert.deepEqual(chunk.inputs, Int32Array.of(0, 4, 1, 5, 2, 6)); // [steps, B], time-major
 * assert.deepEqual(chunk.targets, Int32Array.of(1, 5, 2, 6, 3, 7));
 * assert.equal(chunk.reset, true); // the first chunk starts the streams
 * ```
 */
export interface Chunk {
  /** int32 [steps, B], time-major: element (t, b) at t*B + b. */
  inputs: Int32Array;
  /** int32 [steps, B]: the token that follows each input. */
  targets: Int32Array;
  /** Steps in this chunk. */
  steps: number;
  /** True when this chunk starts the streams from the beginning, so carried state must restart. */
  reset: boolean;
}

/**
 * Where a {@link StreamBatcher} is, to save and restore (checkpoints store it).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { StreamBatcher, type BatcherState } from 'bptt';
 *
 * const data = new StreamBatcher(new Int32Array(100), 4);
 * data.next(8);
 * const state: BatcherState = data.state();
 * assert.deepEqual(state, { position: 8, epoch: 0, started: true });
 * ```
 */
export interface BatcherState {
  /** Steps already taken into every stream in the current epoch. */
  position: number;
  /** Completed passes over the data. */
  epoch: number;
  /** Whether any chunk has been handed out yet (the first one always resets). */
  started: boolean;
}

/**
 * Cuts one token stream into B parallel streams, as char-rnn does: stream b is the contiguous
 * slice [b*L, (b+1)*L] of the tokens, and consecutive chunks continue each stream where the
 * previous one stopped, so a state carried from chunk to chunk sees one unbroken text per
 * stream. Targets are the inputs shifted by one token.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { CharTokenizer, StreamBatcher } from 'bptt';
 *
 * const text = 'the quick brown fox jumps over the lazy dog\n';
 * const tokenizer = CharTokenizer.fromText(text);
 * const data = new StreamBatcher(tokenizer.encode(text), 4);
 * assert.equal(data.streamLength, Math.floor((text.length - 1) / 4));
 * const chunk = data.next(5); // 5 steps of each of the 4 streams
 * assert.equal(tokenizer.decode(chunk.inputs.filter((_, i) => i % 4 === 0)), 'the q'); // stream 0
 * ```
 */
export class StreamBatcher {
  /** B: parallel streams. */
  readonly batch: number;
  /** Steps in each stream: every (input, target) pair of a stream, tail beyond B*L dropped. */
  readonly streamLength: number;
  private readonly tokens: Int32Array;
  private position = 0;
  private epochs = 0;
  private started = false;

  /**
   * Streams over `tokens` (not copied: do not change them while in use).
   *
   * @throws TypeError unless tokens is an Int32Array; RangeError for a batch that is not a
   * positive integer or more streams than the tokens allow (at least batch + 1 tokens).
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { StreamBatcher } from 'bptt';
   *
   * assert.equal(new StreamBatcher(new Int32Array(33), 8).streamLength, 4);
   * assert.throws(() => new StreamBatcher(new Int32Array(8), 8), RangeError);
   * ```
   */
  constructor(tokens: Int32Array, batch: number) {
    if (!(tokens instanceof Int32Array)) throw new TypeError('tokens must be an Int32Array');
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`batch must be a positive integer, got ${batch}`);
    const length = Math.floor((tokens.length - 1) / batch);
    if (length < 1) throw new RangeError(`${tokens.length} tokens are too few for ${batch} streams: need at least ${batch + 1}`);
    this.tokens = tokens;
    this.batch = batch;
    this.streamLength = length;
  }

  /**
   * Completed passes over the data.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { StreamBatcher } from 'bptt';
   *
   * const data = new StreamBatcher(new Int32Array(9), 2); // streams of 4 steps
   * data.next(4);
   * data.next(4); // does not fit: the streams start over
   * assert.equal(data.epoch, 1);
   * ```
   */
  get epoch(): number {
    return this.epochs;
  }

  /**
   * Chunks of `steps` per epoch; the partial tail of each stream is skipped.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { StreamBatcher } from 'bptt';
   *
   * assert.equal(new StreamBatcher(new Int32Array(101), 4).chunksPerEpoch(8), 3); // streams of 25 steps
   * ```
   */
  chunksPerEpoch(steps: number): number {
    return Math.floor(this.streamLength / steps);
  }

  /**
   * The next `steps` steps of every stream. When fewer than `steps` remain, the streams restart
   * from the beginning of the data (a new epoch) and the chunk is marked `reset`.
   *
   * @throws RangeError for steps that are not a positive integer or exceed streamLength.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { StreamBatcher } from 'bptt';
   *
   * const data = new StreamBatcher(Int32Array.from({ length: 11 }, (_, i) => i), 2); // streams of 5
   * assert.deepEqual([data.next(2).reset, data.next(2).reset, data.next(2).reset], [true, false, true]);
   * ```
   */
  next(steps: number): Chunk {
    if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`steps must be a positive integer, got ${steps}`);
    if (steps > this.streamLength) {
      throw new RangeError(`chunks of ${steps} steps do not fit in streams of ${this.streamLength} steps (${this.tokens.length} tokens in ${this.batch} streams); use fewer steps or a smaller batch`);
    }
    let reset = !this.started;
    if (this.position + steps > this.streamLength) {
      this.position = 0;
      this.epochs++;
      reset = true;
    }
    this.started = true;
    const chunk = this.slice(this.position, steps);
    this.position += steps;
    return { ...chunk, reset };
  }

  /**
   * Steps [from, from + steps) of every stream, without moving the cursor.
   *
   * @throws RangeError for a range outside [0, streamLength].
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { StreamBatcher } from 'bptt';
   *
   * const data = new StreamBatcher(Int32Array.from({ length: 11 }, (_, i) => i), 2);
   * assert.deepEqual(data.slice(3, 1).inputs, Int32Array.of(3, 8));
   * assert.equal(data.state().position, 0);
   * ```
   */
  slice(from: number, steps: number): { inputs: Int32Array; targets: Int32Array; steps: number } {
    if (from < 0 || steps < 0 || from + steps > this.streamLength) throw new RangeError(`steps [${from}, ${from + steps}) are outside the streams' ${this.streamLength} steps`);
    const B = this.batch;
    const L = this.streamLength;
    const inputs = new Int32Array(steps * B);
    const targets = new Int32Array(steps * B);
    for (let t = 0; t < steps; t++) {
      for (let b = 0; b < B; b++) {
        const i = b * L + from + t;
        inputs[t * B + b] = this.tokens[i];
        targets[t * B + b] = this.tokens[i + 1];
      }
    }
    return { inputs, targets, steps };
  }

  /**
   * Where the streams are, to restore later.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { StreamBatcher } from 'bptt';
   *
   * const data = new StreamBatcher(new Int32Array(50), 2);
   * assert.deepEqual(data.state(), { position: 0, epoch: 0, started: false });
   * ```
   */
  state(): BatcherState {
    return { position: this.position, epoch: this.epochs, started: this.started };
  }

  /**
   * Moves the streams to a saved position.
   *
   * @throws RangeError for a position outside [0, streamLength] or a negative epoch; TypeError
   * when started is not a boolean.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { StreamBatcher } from 'bptt';
   *
   * const tokens = Int32Array.from({ length: 41 }, (_, i) => i);
   * const a = new StreamBatcher(tokens, 4);
   * a.next(3);
   * const b = new StreamBatcher(tokens, 4);
   * b.restore(a.state());
   * assert.deepEqual(b.next(3), a.next(3)); // both continue alike
   * ```
   */
  restore(state: BatcherState): void {
    const { position, epoch, started } = state;
    if (!Number.isInteger(position) || position < 0 || position > this.streamLength) throw new RangeError(`data position ${position} is outside [0, ${this.streamLength}]`);
    if (!Number.isInteger(epoch) || epoch < 0) throw new RangeError(`epoch must be a non-negative integer, got ${epoch}`);
    if (typeof started !== 'boolean') throw new TypeError('started must be a boolean');
    this.position = position;
    this.epochs = epoch;
    this.started = started;
  }
}

/**
 * Splits text into a training part and a held-out tail of about `fraction` of its length, cut at a
 * line break when there is one nearby so no line (e.g. a name) is split between the two.
 *
 * @throws RangeError unless 0 < fraction < 1.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { holdoutSplit } from 'bptt';
 *
 * const { train, valid } = holdoutSplit('Ann\nBob\nCarla\nDmitri\n', 0.3);
 * assert.equal(train, 'Ann\nBob\nCarla\n');
 * assert.equal(valid, 'Dmitri\n');
 * ```
 */
export function holdoutSplit(text: string, fraction: number): { train: string; valid: string } {
  if (!(fraction > 0 && fraction < 1)) throw new RangeError(`held-out fraction must be in (0, 1), got ${fraction}`);
  let cut = Math.round(text.length * (1 - fraction));
  const nl = text.lastIndexOf('\n', cut);
  if (nl > 0 && cut - nl < 200) cut = nl + 1;
  return { train: text.slice(0, cut), valid: text.slice(cut) };
}
