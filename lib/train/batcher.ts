/**
 * Cuts one token stream into B parallel streams, as char-rnn does: stream b is the contiguous
 * slice [b*L, (b+1)*L] of the data, and consecutive chunks continue each stream where the previous
 * chunk stopped, so a hidden state carried from chunk to chunk sees one unbroken text per stream.
 */

export interface Chunk {
  /** int32 [steps, B], time-major: element (t, b) at t*B + b. */
  inputs: Int32Array;
  /** int32 [steps, B]: the token that follows each input. */
  targets: Int32Array;
  steps: number;
  /** True when this chunk starts the streams from the beginning, so carried state must restart. */
  reset: boolean;
}

export interface BatcherState {
  /** Steps already taken into every stream in the current epoch. */
  position: number;
  /** Completed passes over the data. */
  epoch: number;
  /** Whether any chunk has been handed out yet (the first one always resets). */
  started: boolean;
}

export class StreamBatcher {
  readonly batch: number;
  /** Steps in each stream: every (input, target) pair of a stream, tail beyond B*L dropped. */
  readonly streamLength: number;
  private readonly tokens: Int32Array;
  private position = 0;
  private epochs = 0;
  private started = false;

  constructor(tokens: Int32Array, batch: number) {
    if (!(tokens instanceof Int32Array)) throw new TypeError('tokens must be an Int32Array');
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`batch must be a positive integer, got ${batch}`);
    const length = Math.floor((tokens.length - 1) / batch);
    if (length < 1) throw new RangeError(`${tokens.length} tokens are too few for ${batch} streams: need at least ${batch + 1}`);
    this.tokens = tokens;
    this.batch = batch;
    this.streamLength = length;
  }

  get epoch(): number {
    return this.epochs;
  }

  /** Chunks of `steps` per epoch; the partial tail of each stream is skipped. */
  chunksPerEpoch(steps: number): number {
    return Math.floor(this.streamLength / steps);
  }

  /**
   * The next `steps` steps of every stream. When fewer than `steps` remain, the streams restart
   * from the beginning of the data (a new epoch) and the chunk is marked `reset`.
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

  /** Steps [from, from + steps) of every stream, without moving the cursor. */
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

  state(): BatcherState {
    return { position: this.position, epoch: this.epochs, started: this.started };
  }

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
 */
export function holdoutSplit(text: string, fraction: number): { train: string; valid: string } {
  if (!(fraction > 0 && fraction < 1)) throw new RangeError(`held-out fraction must be in (0, 1), got ${fraction}`);
  let cut = Math.round(text.length * (1 - fraction));
  const nl = text.lastIndexOf('\n', cut);
  if (nl > 0 && cut - nl < 200) cut = nl + 1;
  return { train: text.slice(0, cut), valid: text.slice(cut) };
}
