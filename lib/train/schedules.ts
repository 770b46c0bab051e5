/**
 * Learning-rate schedules as plain data, so a checkpoint can store the schedule and a resumed run
 * computes exactly the same rate for every step. `step` counts updates already done (0-based).
 */
import { checkFloat32Scalar } from '../backend';

/**
 * A learning-rate schedule as plain data (JSON-serializable, so checkpoints store it): constant,
 * step decay, or linear warm-up then cosine decay.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { learningRate, type Schedule } from 'bptt';
 *
 * const schedule: Schedule = { kind: 'cosine', lr: 1e-3, warmup: 100, total: 1000, minLr: 1e-5 };
 * assert.equal(learningRate(schedule, 99), 1e-3); // end of the warm-up
 * assert.equal(learningRate(schedule, 1000), 1e-5);
 * ```
 */
export type Schedule =
  | { kind: 'constant'; lr: number }
  /** lr * gamma^floor(step / every) */
  | { kind: 'step'; lr: number; every: number; gamma: number }
  /** Linear warm-up over `warmup` steps to lr, then a cosine decay to minLr at step `total`. */
  | { kind: 'cosine'; lr: number; warmup: number; total: number; minLr?: number };

/**
 * The kinds of {@link Schedule}: 'constant', 'step', 'cosine'.
 *
 * @example
 * ```ts
 * import { type ScheduleKind } from 'bptt';
 *
 * const kinds: ScheduleKind[] = ['constant', 'step', 'cosine'];
 * console.log(kinds);
 * ```
 */
export type ScheduleKind = Schedule['kind'];

function positive(name: string, v: number): void {
  if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`${name} must be a positive number, got ${v}`);
}

function count(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${v}`);
}

/**
 * Returns the schedule if it is valid; throws a RangeError or TypeError naming the first invalid
 * field (lr must be a float32-representable number > 0; every > 0 integer, gamma > 0; warmup >= 0
 * and total >= 1 integers, 0 <= minLr <= lr).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { checkSchedule } from 'bptt';
 *
 * checkSchedule({ kind: 'step', lr: 0.1, every: 1000, gamma: 0.5 });
 * assert.throws(() => checkSchedule({ kind: 'step', lr: 0.1, every: 0, gamma: 0.5 }), /schedule.every/);
 * ```
 */
export function checkSchedule(s: Schedule): Schedule {
  if (typeof s !== 'object' || s === null) throw new TypeError('schedule must be an object');
  checkFloat32Scalar('lr', s.lr, false);
  switch (s.kind) {
    case 'constant':
      break;
    case 'step':
      count('schedule.every', s.every, 1);
      positive('schedule.gamma', s.gamma);
      break;
    case 'cosine':
      count('schedule.warmup', s.warmup, 0);
      count('schedule.total', s.total, 1);
      if (s.minLr !== undefined && !(Number.isFinite(s.minLr) && s.minLr >= 0 && s.minLr <= s.lr)) throw new RangeError(`schedule.minLr must be in [0, lr], got ${s.minLr}`);
      break;
    default:
      throw new TypeError(`schedule kind must be 'constant', 'step' or 'cosine', got ${JSON.stringify((s as { kind: unknown }).kind)}`);
  }
  return s;
}

/**
 * The learning rate for the update that follows `step` completed updates.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { learningRate } from 'bptt';
 *
 * const decay = { kind: 'step', lr: 0.1, every: 10, gamma: 0.5 } as const;
 * assert.equal(learningRate(decay, 9), 0.1);
 * assert.equal(learningRate(decay, 25), 0.025); // halved twice
 * ```
 */
export function learningRate(s: Schedule, step: number): number {
  switch (s.kind) {
    case 'constant':
      return s.lr;
    case 'step':
      return s.lr * Math.pow(s.gamma, Math.floor(step / s.every));
    case 'cosine': {
      if (step < s.warmup) return (s.lr * (step + 1)) / s.warmup;
      const minLr = s.minLr ?? 0;
      const span = Math.max(1, s.total - s.warmup);
      const progress = Math.min(1, (step - s.warmup) / span);
      return minLr + 0.5 * (s.lr - minLr) * (1 + Math.cos(Math.PI * progress));
    }
  }
}
