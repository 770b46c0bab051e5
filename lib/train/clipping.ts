/** Running statistics of gradient clipping over the steps of a run. */

export interface ClipSummary {
  steps: number;
  clippedSteps: number;
  /** clippedSteps / steps (0 before the first step). */
  fractionClipped: number;
  /** Pre-clip global gradient norm of the latest step. */
  lastNorm: number;
  meanNorm: number;
  maxNorm: number;
}

export class ClipStats {
  private steps = 0;
  private clippedSteps = 0;
  private normSum = 0;
  private lastNorm = 0;
  private maxNorm = 0;

  record(preClipNorm: number, clipped: boolean): void {
    this.steps++;
    if (clipped) this.clippedSteps++;
    this.normSum += preClipNorm;
    this.lastNorm = preClipNorm;
    if (preClipNorm > this.maxNorm) this.maxNorm = preClipNorm;
  }

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

  /** Restores counts from a summary saved with a checkpoint, so fractions continue after resume. */
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
