/**
 * The long-range generators: layout, the task definitions (exactly two markers, one per half; the
 * copy layout), determinism per seed, baselines checked against their definitions by Monte Carlo
 * and by the memoryless guess, metric arithmetic, and typed errors.
 */
import { addingProblem, copyTask, copyBaselineLoss, longRangeTask, ADDING_BASELINE_MSE } from '../lib/tasks/longrange';
import { Tensor } from '../lib/tensor';

describe('adding problem', () => {
  test('time-major [T, B, 2] inputs with two markers, one in each half, and their sum as target', () => {
    for (const T of [2, 3, 7, 50]) {
      const { inputs, targets } = addingProblem({ length: T, seed: T }).batch(16);
      expect(inputs.shape).toEqual([T, 16, 2]);
      expect(targets.shape).toEqual([16, 1]);
      const x = inputs.toArray();
      const y = targets.toArray();
      const half = Math.ceil(T / 2);
      for (let b = 0; b < 16; b++) {
        const marked: number[] = [];
        let sum = 0;
        for (let t = 0; t < T; t++) {
          const v = x[(t * 16 + b) * 2];
          expect(v >= 0 && v < 1).toBe(true);
          const m = x[(t * 16 + b) * 2 + 1];
          expect([0, 1]).toContain(m);
          if (m === 1) {
            marked.push(t);
            sum += v;
          }
        }
        expect(marked.length).toBe(2);
        expect(marked[0]).toBeLessThan(half);
        expect(marked[1]).toBeGreaterThanOrEqual(half);
        expect(y[b]).toBeCloseTo(sum, 6);
      }
    }
  });

  test('the same seed gives the same stream; another seed another one', () => {
    const a = addingProblem({ length: 20, seed: 5 }).batches(4, 3);
    const b = addingProblem({ length: 20, seed: 5 }).batches(4, 3);
    const c = addingProblem({ length: 20, seed: 6 }).batches(4, 3);
    expect(a.map((x) => Array.from(x.inputs.toArray()))).toEqual(b.map((x) => Array.from(x.inputs.toArray())));
    expect(Array.from(a[0].inputs.toArray())).not.toEqual(Array.from(c[0].inputs.toArray()));
    expect(Array.from(a[0].inputs.toArray())).not.toEqual(Array.from(a[1].inputs.toArray()));
  });

  test('predicting 1 scores 1/6 (Monte Carlo within 4 standard errors); the mean is the best constant', () => {
    const task = addingProblem({ length: 30, seed: 11 });
    const batches = task.batches(1000, 20);
    const ones = (x: Tensor) => new Float32Array(x.shape[1]).fill(1);
    const m = task.evaluate(ones, batches);
    expect(m.count).toBe(20000);
    expect(m.baseline_mse).toBe(1 / 6);
    expect(ADDING_BASELINE_MSE).toBeCloseTo(0.1667, 4);
    // Var((s - 1)^2) for s = u1 + u2: E[(s-1)^4] - (1/6)^2 = 1/15 - 1/36
    const se = Math.sqrt((1 / 15 - 1 / 36) / m.count);
    expect(Math.abs(m.mse - 1 / 6)).toBeLessThan(4 * se);
    const off = task.evaluate((x) => new Float32Array(x.shape[1]).fill(1.2), batches);
    expect(off.mse).toBeGreaterThan(m.mse);
    // the perfect predictor scores 0
    let i = 0;
    expect(task.evaluate(() => batches[i++].targets, batches).mse).toBe(0);
  });

  test('metrics: mean squared error over the given pairs', () => {
    const m = addingProblem({ length: 4 }).metrics([1, 2, 0], [1, 0, 1]);
    expect(m).toEqual({ mse: 5 / 3, baseline_mse: 1 / 6, count: 3 });
  });

  test('bad options and predictions are typed errors', () => {
    expect(() => addingProblem({ length: 1 })).toThrow(RangeError);
    expect(() => addingProblem({ length: 2.5 })).toThrow(RangeError);
    expect(() => addingProblem({ length: 10, seed: 0.5 })).toThrow(/seed must be a safe integer/);
    expect(() => addingProblem(null as never)).toThrow(TypeError);
    const task = addingProblem({ length: 5 });
    expect(() => task.batch(0)).toThrow(/batch size/);
    expect(() => task.evaluate(() => new Float32Array(3), [task.batch(4)])).toThrow(/4 elements, got 3/);
    expect(() => task.evaluate(() => 'x' as never, [task.batch(4)])).toThrow(TypeError);
    expect(() => task.evaluate(() => new Float32Array(4), [])).toThrow(/non-empty/);
  });
});

describe('copy task', () => {
  test('10 symbols, T - 1 blanks, the marker, 10 blanks; targets blank then the 10 symbols', () => {
    for (const T of [1, 5, 30]) {
      const task = copyTask({ delay: T, seed: T });
      expect(task.steps).toBe(T + 20);
      expect(task.inputSize).toBe(10);
      expect(task.outputSize).toBe(9);
      const B = 5;
      const { inputs, targets } = task.batch(B);
      expect(inputs.shape).toEqual([T + 20, B]);
      expect(targets.shape).toEqual([T + 20, B]);
      const x = inputs.toArray();
      const y = targets.toArray();
      for (let b = 0; b < B; b++) {
        const col = (a: ArrayLike<number>) => Array.from({ length: T + 20 }, (_, t) => a[t * B + b]);
        const xs = col(x);
        const ys = col(y);
        const symbols = xs.slice(0, 10);
        for (const s of symbols) expect(s >= 1 && s <= 8).toBe(true);
        expect(xs.slice(10, T + 9)).toEqual(new Array(T - 1).fill(0));
        expect(xs[T + 9]).toBe(9);
        expect(xs.slice(T + 10)).toEqual(new Array(10).fill(0));
        expect(ys.slice(0, T + 10)).toEqual(new Array(T + 10).fill(0));
        expect(ys.slice(T + 10)).toEqual(symbols);
      }
    }
  });

  test('the memoryless guess scores exactly 10 ln 8 / (T + 20); the perfect one 0', () => {
    const T = 40;
    const task = copyTask({ delay: T, seed: 3 });
    const batches = task.batches(7, 2);
    const guess = (x: Tensor) => {
      const [steps, B] = x.shape;
      const p = new Float32Array(steps * B * 9);
      for (let t = 0; t < steps; t++) {
        for (let b = 0; b < B; b++) {
          if (t < steps - 10) p[(t * B + b) * 9] = 1;
          else for (let k = 1; k < 9; k++) p[(t * B + b) * 9 + k] = 1 / 8;
        }
      }
      return p;
    };
    const m = task.evaluate(guess, batches);
    expect(m.baseline_loss).toBe((10 * Math.log(8)) / (T + 20));
    expect(m.baseline_loss).toBe(copyBaselineLoss(T));
    expect(m.loss).toBeCloseTo(m.baseline_loss, 6);
    expect(m.count).toBe(14);
    const perfect = (x: Tensor) => {
      const y = batches.find((b) => b.inputs === x)!.targets.toArray();
      const p = new Float32Array(y.length * 9);
      y.forEach((k, i) => (p[i * 9 + k] = 1));
      return p;
    };
    expect(task.evaluate(perfect, batches)).toEqual({ loss: 0, baseline_loss: m.baseline_loss, accuracy: 1, count: 14 });
  });

  test('accuracy counts the recall steps only', () => {
    const task = copyTask({ delay: 2, seed: 1 });
    const { targets } = task.batch(1);
    const y = targets.toArray();
    const p = new Float32Array(22 * 9);
    // right everywhere except the first recalled symbol, which gets class 0
    y.forEach((k, i) => (p[i * 9 + (i === 12 ? 0 : k)] = 1));
    const m = task.metrics(p, y);
    expect(m.accuracy).toBeCloseTo(0.9, 12);
    expect(m.loss).toBeCloseTo(-Math.log(1e-30) / 22, 6);
  });

  test('bad options and shapes are typed errors', () => {
    expect(() => copyTask({ delay: 0 })).toThrow(RangeError);
    expect(() => copyBaselineLoss(-1)).toThrow(RangeError);
    const task = copyTask({ delay: 3 });
    expect(() => task.metrics(new Float32Array(22 * 9), new Int32Array(22))).toThrow(/\[23, B\]/);
    expect(() => task.metrics(new Float32Array(10), new Int32Array(23))).toThrow(/probabilities/);
    expect(() => task.metrics(new Float32Array(23 * 9), new Int32Array(23).fill(9))).toThrow(/class in \[0, 9\)/);
  });
});

test('longRangeTask builds either task by name', () => {
  expect(longRangeTask('adding', { length: 12 }).name).toBe('adding');
  const copy = longRangeTask('copy', { length: 12 });
  expect(copy.name).toBe('copy');
  expect(copy.steps).toBe(32);
  expect(() => longRangeTask('parity' as never, { length: 12 })).toThrow(/'adding' or 'copy'/);
});
