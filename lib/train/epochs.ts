/**
 * Whole-sequence training data (forecast windows, labelled sequences, generated long-range
 * problems) as the {@link Trainer} consumes it: batches in an order fixed by the epoch number, so
 * the position (epoch, batches taken) is all a resumed run needs to see the same batches again.
 */
import type { BatcherState } from './batcher';

/**
 * One training batch of whole sequences, time-major, in the layout the model's head takes:
 * inputs int32 [T, B] token ids or float32 [T, B, D]; targets int32 [B] (classify), int32 [T, B]
 * (tokens) or float32 [B, K] / [T, B, K] (regress); lengths [B] when sequences are padded.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import type { SequenceBatch } from 'bptt';
 *
 * const batch: SequenceBatch = {
 *   inputs: { data: Int32Array.of(1, 2, 3, 0), shape: [2, 2] }, // two sequences, the second one step long
 *   targets: { data: Int32Array.of(0, 1), shape: [2] },
 *   lengths: Int32Array.of(2, 1),
 * };
 * assert.equal(batch.inputs.shape[1], batch.targets.shape[0]);
 * ```
 */
export interface SequenceBatch {
  inputs: { data: Int32Array | Float32Array; shape: number[] };
  targets: { data: Int32Array | Float32Array; shape: number[] };
  /** Valid steps of each sequence, each in [1, T]; omitted when none is padded. */
  lengths?: Int32Array;
}

/**
 * Batches of whole sequences for the {@link Trainer}: `epochBatches(e)` gives epoch e's batches
 * (the same ones, in the same order, every time it is called with e: seed its shuffle with e), and
 * the batcher walks through them epoch after epoch. Its state is the epoch and the batches taken,
 * in the {@link BatcherState} form checkpoints save.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { EpochBatcher, type SequenceBatch } from 'bptt';
 *
 * const batch = (e: number, i: number): SequenceBatch => ({ inputs: { data: Float32Array.of(e, i), shape: [1, 2, 1] }, targets: { data: Float32Array.of(0, 0), shape: [2, 1] } });
 * const data = new EpochBatcher((e) => [batch(e, 0), batch(e, 1), batch(e, 2)], 3);
 * data.next();
 * data.next();
 * const saved = data.state();
 * const third = data.next();
 * data.restore(saved);
 * assert.deepEqual(data.next(), third); // epoch 0, batch 2 again
 * data.next(); // the first batch of epoch 1
 * assert.equal(data.epoch, 1);
 * ```
 */
export class EpochBatcher {
  readonly batchesPerEpoch: number;
  readonly #epochBatches: (epoch: number) => Iterable<SequenceBatch>;
  #epoch = 0;
  #position = 0;
  #started = false;
  #iterator: Iterator<SequenceBatch> | null = null;

  /**
   * @throws RangeError when batchesPerEpoch is not an integer >= 1; TypeError when epochBatches is not a function.
   */
  constructor(epochBatches: (epoch: number) => Iterable<SequenceBatch>, batchesPerEpoch: number) {
    if (typeof epochBatches !== 'function') throw new TypeError('epochBatches must be a function of the epoch number');
    if (!Number.isSafeInteger(batchesPerEpoch) || batchesPerEpoch < 1) throw new RangeError(`batchesPerEpoch must be an integer >= 1, got ${String(batchesPerEpoch)}`);
    this.#epochBatches = epochBatches;
    this.batchesPerEpoch = batchesPerEpoch;
  }

  /** Completed passes (the epoch of the next batch once the current one is used up). */
  get epoch(): number {
    return this.#epoch;
  }

  /** Batches per epoch, under the name {@link StreamBatcher.chunksPerEpoch} uses. */
  chunksPerEpoch(): number {
    return this.batchesPerEpoch;
  }

  /**
   * The next batch; after the last one of an epoch, the first of the next epoch.
   *
   * @throws RangeError when epochBatches(e) yields fewer batches than batchesPerEpoch.
   */
  next(): SequenceBatch {
    if (this.#position === this.batchesPerEpoch) {
      this.#epoch++;
      this.#position = 0;
      this.#iterator = null;
    }
    if (this.#iterator === null) {
      this.#iterator = this.#epochBatches(this.#epoch)[Symbol.iterator]();
      for (let i = 0; i < this.#position; i++) this.take();
    }
    const batch = this.take();
    this.#position++;
    this.#started = true;
    return batch;
  }

  /** Where the data is: `position` counts the batches taken in epoch `epoch`. */
  state(): BatcherState {
    return { position: this.#position, epoch: this.#epoch, started: this.#started };
  }

  /**
   * Moves to a saved position.
   *
   * @throws RangeError for a position outside [0, batchesPerEpoch] or a negative epoch.
   */
  restore(state: BatcherState): void {
    const { position, epoch, started } = state;
    if (!Number.isInteger(position) || position < 0 || position > this.batchesPerEpoch) throw new RangeError(`data position ${position} is outside [0, ${this.batchesPerEpoch}]`);
    if (!Number.isInteger(epoch) || epoch < 0) throw new RangeError(`epoch must be a non-negative integer, got ${epoch}`);
    this.#position = position;
    this.#epoch = epoch;
    this.#started = started === true;
    this.#iterator = null;
  }

  private take(): SequenceBatch {
    const r = this.#iterator!.next();
    if (r.done) throw new RangeError(`epoch ${this.#epoch} has fewer than the ${this.batchesPerEpoch} batches the batcher was told it has`);
    return r.value;
  }
}
