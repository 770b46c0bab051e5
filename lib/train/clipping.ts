/** Running statistics of gradient clipping over the steps of a run. */

/**
 * Clipping over a run so far: how many updates were clipped, and the pre-clip global gradient
 * norms (last, mean, max). {@link Trainer.clipStats} and every {@link StepInfo} carry one.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { ClipStats, type ClipSummary } from 'bptt';
 *
 * const stats = new ClipStats();
 * stats.record(2, false);
 * stats.record(8, true);
 * const summary: ClipSummary = stats.summary();
 * assert.deepEqual(summary, { steps: 2, clippedSteps: 1, fractionClipped: 0.5, lastNorm: 8, meanNorm: 5, maxNorm: 8 });
 * ```
 */
export interface ClipSummary {
  /** Steps recorded. */
  steps: number;
  /** Steps whose gradient was clipped. */
  clippedSteps: number;
  /** clippedSteps / steps (0 before the first step). */
  fractionClipped: number;
  /** Pre-clip global gradient norm of the latest step. */
  lastNorm: number;
  /** Mean pre-clip norm over the steps (0 before the first). */
  meanNorm: number;
  /** Largest pre-clip norm so far. */
  maxNorm: number;
}

/**
 * Running statistics of gradient clipping over the steps of a run: record each step's pre-clip
 * norm and whether it was clipped, read a {@link ClipSummary}.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { ClipStats, RNN, Tensor } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1 });
 * const x = Tensor.from(Int32Array.of(0, 1, 2), [3, 1]);
 * const y = Tensor.from(Int32Array.of(1, 2, 0), [3, 1]);
 * const stats = new ClipStats();
 * for (let i = 0; i < 5; i++) {
 *   const { gradNorm, clipped } = rnn.trainStep(x, y, { lr: 0.1, clipNorm: 0.5 });
 *   stats.record(gradNorm, clipped);
 * }
 * assert.equal(stats.summary().steps, 5);
 * ```
 */
export class ClipStats {
  private steps = 0;
  private clippedSteps = 0;
  private normSum = 0;
  private lastNorm = 0;
  private maxNorm = 0;

  /**
   * Counts one step.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { ClipStats } from 'bptt';
   *
   * const stats = new ClipStats();
   * stats.record(3.5, true);
   * assert.equal(stats.summary().clippedSteps, 1);
   * ```
   */
  record(preClipNorm: number, clipped: boolean): void {
    this.steps++;
    if (clipped) this.clippedSteps++;
    this.normSum += preClipNorm;
    this.lastNorm = preClipNorm;
    if (preClipNorm > this.maxNorm) this.maxNorm = preClipNorm;
  }

  /**
   * The statistics so far (zeros before the first step).
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { ClipStats } from 'bptt';
   *
   * assert.equal(new ClipStats().summary().fractionClipped, 0);
   * ```
   */
  summary(): ClipSummary {
    return {
      steps: this.steps,
      clippedSteps: this.clippedSteps,
      fractionClipped: this.steps === 0 ? 0 : this.clippedSteps / this.steps,
      lastNorm: this.lastNorm,
      meanNorm: this.steps === 0 ? 0 : this.normSum / this.steps,
      maxNorm: this.maxNorm,
    };
  }

  /**
   * Restores counts from a summary saved with a checkpoint, so fractions continue after resume.
   *
   * @example
   * ```ts
   * import assert from 'node:assert/strict';
   * import { ClipStats } from 'bptt';
   *
   * const resumed = ClipStats.fromSummary({ steps: 4, clippedSteps: 1, fractionClipped: 0.25, lastNorm: 1, meanNorm: 2, maxNorm: 3 });
   * resumed.record(6, true);
   * assert.equal(resumed.summary().fractionClipped, 2 / 5);
   * ```
   */
  static fromSummary(s: ClipSummary): ClipStats {
    const c = new ClipStats();
    c.steps = s.steps;
    c.clippedSteps = s.clippedSteps;
    c.normSum = s.meanNorm * s.steps;
    c.lastNorm = s.lastNorm;
    c.maxNorm = s.maxNorm;
    return c;
  }
}
