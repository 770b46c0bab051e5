import { CheckpointError } from '../lib/errors';
import { BIRTHS_FORECAST, birthsForecast, birthsTable } from '../lib/tasks/defaults';
import { ForecastDataset, ForecastPipeline } from '../lib/tasks/forecast';
import { seriesFromColumns } from '../lib/tasks/series';

/** y = a trend plus a weekly pattern, with day of week 1..7 as a covariate. */
function weekly(n: number, y = (t: number) => 100 + t + 10 * ((t % 7) - 3)) {
  return seriesFromColumns({ y: Array.from({ length: n }, (_, t) => y(t)), dow: Array.from({ length: n }, (_, t) => (t % 7) + 1), x: Array.from({ length: n }, (_, t) => Math.sin(t)) });
}

const options = { target: 'y', covariates: [{ column: 'dow', encoding: 'onehot' as const }, 'x'], window: 14, horizon: 3, season: 7, split: { validation: 10, test: 12 } };

describe('ForecastDataset', () => {
  const table = weekly(100);
  const ds = ForecastDataset.create(table, options);
  const p = ds.pipeline;

  it('splits chronologically: train, then validation, then test', () => {
    expect(ds.parts).toEqual({ train: { start: 0, end: 78 }, validation: { start: 78, end: 88 }, test: { start: 88, end: 100 } });
    expect(p.inputSize).toBe(1 + 7 + 1);
    expect(p.targetSize).toBe(1);
  });

  it('puts a window in the part that holds all of its targets; no training window reads a later value', () => {
    const seen = new Map<number, string>();
    for (const part of ['train', 'validation', 'test'] as const) {
      const { start, end } = ds.parts[part];
      const origins = Array.from(ds.origins(part));
      expect(origins.length).toBe(end - Math.max(start, p.window) - p.horizon + 1);
      for (const o of origins) {
        expect(o).toBeGreaterThanOrEqual(Math.max(start, p.window));
        expect(o + p.horizon).toBeLessThanOrEqual(end); // targets inside the part
        expect(seen.has(o)).toBe(false);
        seen.set(o, part);
      }
    }
    // the last training window's targets end exactly at the split point, its inputs before
    const train = ds.origins('train');
    expect(train[train.length - 1] + p.horizon).toBe(ds.parts.train.end);
  });

  it('batches the windows: inputs are rows [origin - W, origin), targets rows [origin, origin + H), time-major', () => {
    const origins = [14, 40, 85];
    const b = ds.batch(origins);
    const { window: W, horizon: H } = p;
    const D = p.inputSize;
    const B = origins.length;
    expect([b.steps, b.batch, b.inputSize, b.horizon, b.targetSize]).toEqual([W, B, D, H, 1]);
    expect(b.input.data.length).toBe(W * B * D);
    expect(b.targets.length).toBe(H * B);
    const y = table.values[0];
    const dow = table.values[1];
    const x = table.values[2];
    const xMean = x.subarray(0, 78).reduce((a, v) => a + v, 0) / 78;
    for (let k = 0; k < B; k++) {
      for (let s = 0; s < W; s++) {
        const t = origins[k] - W + s;
        const row = b.input.data.subarray((s * B + k) * D, (s * B + k + 1) * D);
        expect(row[0]).toBeCloseTo(p.normalize(0, y[t]), 5);
        const onehot = Array.from(row.subarray(1, 8));
        expect(onehot).toEqual([1, 2, 3, 4, 5, 6, 7].map((d) => (d === dow[t] ? 1 : 0)));
        expect(row[8] * (p.covariates[1] as { std: number }).std + xMean).toBeCloseTo(x[t], 5);
      }
      for (let h = 0; h < H; h++) expect(p.denormalize(0, b.targets[h * B + k])).toBeCloseTo(y[origins[k] + h], 3);
    }
    expect(Array.from(b.origins)).toEqual(origins);
    expect(() => ds.batch([13])).toThrow(RangeError);
    expect(() => ds.batch([98])).toThrow(RangeError);
    expect(() => ds.batch([])).toThrow(RangeError);
  });

  it('fits the normalisation on the training part only', () => {
    const y = table.values[0].subarray(0, 78);
    const mean = y.reduce((a, v) => a + v, 0) / y.length;
    const std = Math.sqrt(y.reduce((a, v) => a + (v - mean) ** 2, 0) / y.length);
    expect(p.targets[0].mean).toBeCloseTo(mean, 10);
    expect(p.targets[0].std).toBeCloseTo(std, 10);
    // Changing every later value changes nothing that was fitted.
    const changed = weekly(100, (t) => (t < 78 ? 100 + t + 10 * ((t % 7) - 3) : 1e6 - t * 1000));
    expect(ForecastDataset.create(changed, options).pipeline.serialize()).toBe(p.serialize());
  });

  it('shuffles only within a part, every window once, the order set by the seed', () => {
    const collect = (seed: number) => Array.from(ds.batches('train', { batchSize: 8, shuffle: true, seed }), (b) => Array.from(b.origins)).flat();
    const a = collect(1);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from(ds.origins('train')));
    expect(collect(1)).toEqual(a);
    expect(collect(2)).not.toEqual(a);
    const inOrder = Array.from(ds.batches('test', { batchSize: 4 }), (b) => b.batch);
    expect(inOrder).toEqual([4, 4, 2]);
  });

  it('refuses a one-hot category the training part never had', () => {
    const dow = Array.from({ length: 100 }, (_, t) => (t < 90 ? (t % 7) + 1 : 8));
    const t = seriesFromColumns({ y: Array.from({ length: 100 }, (_, i) => i), dow });
    expect(() => ForecastDataset.create(t, { ...options, covariates: [{ column: 'dow', encoding: 'onehot' }] })).toThrow(
      new RangeError('column "dow", row 90: value 8 is not one of the categories the training part had (1, 2, 3, 4, 5, 6, 7), so one-hot encoding cannot represent it'),
    );
  });

  it('refuses splits and settings no window fits', () => {
    expect(() => ForecastDataset.create(table, { ...options, split: { validation: 50, test: 40 } })).toThrow(/the training part has 10 steps .* need 17/);
    expect(() => ForecastDataset.create(table, { ...options, split: { validation: 2, test: 12 } })).toThrow('the validation part has 2 steps, fewer than the horizon (3)');
    expect(() => ForecastDataset.create(table, { ...options, season: 15 })).toThrow(/season \(15\) must not exceed window \(14\)/);
    expect(() => ForecastDataset.create(table, { ...options, split: { test: 1.5 } })).toThrow(RangeError);
    expect(() => ForecastDataset.create(table, { ...options, split: { test: 100 } })).toThrow(RangeError);
    expect(() => ForecastDataset.create(table, { ...options, target: 'sales' })).toThrow(/no column "sales"/);
    expect(() => ForecastDataset.create(table, { ...options, covariates: ['y'] })).toThrow(/used twice/);
    expect(() => ForecastDataset.create(table, { ...options, window: 0 })).toThrow(RangeError);
    expect(() => ds.origins('future' as never)).toThrow(RangeError);
  });

  it('a fraction holds out that share of the series; stride thins the windows', () => {
    const d = ForecastDataset.create(table, { ...options, split: { validation: 0.1, test: 0.2 }, stride: 5 });
    expect(d.parts.test).toEqual({ start: 80, end: 100 });
    expect(d.parts.validation).toEqual({ start: 70, end: 80 });
    expect(Array.from(d.origins('train'))).toEqual([14, 19, 24, 29, 34, 39, 44, 49, 54, 59, 64]);
  });
});

describe('ForecastPipeline', () => {
  const table = weekly(60);
  const ds = ForecastDataset.create(table, { ...options, split: { validation: 0, test: 10 } });

  it('round-trips through serialize and gives the same inputs', () => {
    const back = ForecastPipeline.deserialize(ds.pipeline.serialize());
    expect(back.serialize()).toBe(ds.pipeline.serialize());
    expect(back.inputs(table, [20, 60])).toEqual(ds.pipeline.inputs(table, [20, 60]));
    // the window ending at the table's last row, to forecast beyond it
    const last = back.inputs(table, [60]);
    expect(last.length).toBe(14 * back.inputSize);
    expect(last.subarray(13 * back.inputSize, 13 * back.inputSize + 1)[0]).toBeCloseTo(back.normalize(0, table.values[0][59]), 5);
    expect(() => back.inputs(table, [61])).toThrow(RangeError);
  });

  it('refuses a saved pipeline that is not valid', () => {
    const good = JSON.parse(ds.pipeline.serialize());
    const bad = [
      'not json',
      '{}',
      JSON.stringify({ ...good, window: 0 }),
      JSON.stringify({ ...good, targets: [{ ...good.targets[0], std: 0 }] }),
      JSON.stringify({ ...good, covariates: [{ column: 'dow', encoding: 'onehot', categories: [2, 1] }] }),
      JSON.stringify({ ...good, covariates: [{ column: 'dow', encoding: 'bucket' }] }),
      JSON.stringify({ ...good, targets: [{ column: 'y', encoding: 'onehot', categories: [1] }] }),
    ];
    for (const json of bad) expect(() => ForecastPipeline.deserialize(json)).toThrow(CheckpointError);
  });

  it('gives a constant training column a std of 1, so it normalises to 0', () => {
    const t = seriesFromColumns({ y: Array.from({ length: 40 }, (_, i) => i), c: new Array(40).fill(5) });
    const d = ForecastDataset.create(t, { target: 'y', covariates: ['c'], window: 5, horizon: 2, split: { validation: 0, test: 0 } });
    expect(d.pipeline.covariates[0]).toEqual({ column: 'c', encoding: 'numeric', mean: 5, std: 1 });
  });
});

describe('the births default', () => {
  it('is 1969-1988 daily with day of week; test is 1988, validation 1987', () => {
    const table = birthsTable();
    expect(table.times?.[0]).toBe('1969-01-01');
    expect(table.times?.[table.length - 1]).toBe('1988-12-31');
    const days = (Date.UTC(1989, 0, 1) - Date.UTC(1969, 0, 1)) / 86_400_000;
    expect(table.length).toBe(days);
    const ds = birthsForecast();
    expect(table.times?.[ds.parts.test.start]).toBe('1988-01-01');
    expect(table.times?.[ds.parts.validation.start]).toBe('1987-01-01');
    expect(ds.parts.test.end - ds.parts.test.start).toBe(366);
    expect({ window: ds.pipeline.window, horizon: ds.pipeline.horizon, season: ds.pipeline.season }).toEqual(BIRTHS_FORECAST);
    expect(ds.pipeline.inputSize).toBe(8);
    expect(ds.origins('test').length).toBe(366 - 14 + 1);
    // normalised training targets have mean 0 and std 1
    const y = table.values[0].subarray(0, ds.parts.train.end);
    const z = Array.from(y, (v) => ds.pipeline.normalize(0, v));
    const m = z.reduce((a, v) => a + v, 0) / z.length;
    expect(m).toBeCloseTo(0, 10);
    expect(Math.sqrt(z.reduce((a, v) => a + (v - m) ** 2, 0) / z.length)).toBeCloseTo(1, 10);
  });
});
