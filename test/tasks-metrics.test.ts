import { NonFiniteError } from '../lib/errors';
import { majorityClass, naiveForecasts, seasonalNaiveForecasts, unigramLoss } from '../lib/tasks/baselines';
import { ForecastDataset } from '../lib/tasks/forecast';
import { argmaxRows, classificationMetrics, confusionMatrix, forecastErrors, languageModelMetrics, seasonalScale } from '../lib/tasks/metrics';
import {
  classificationReport,
  collectForecasts,
  forecastReport,
  formatClassificationReport,
  formatForecastReport,
  formatLanguageModelReport,
  languageModelReport,
} from '../lib/tasks/reports';
import { seriesFromColumns } from '../lib/tasks/series';

describe('language-model metrics', () => {
  it('perplexity is exp(loss) and bits per token loss / ln 2', () => {
    expect(languageModelMetrics(Math.LN2, 10)).toEqual({ loss: Math.LN2, perplexity: 2, bitsPerToken: 1, tokens: 10 });
    expect(languageModelMetrics(2 * Math.LN2, 1).perplexity).toBeCloseTo(4, 12);
    expect(() => languageModelMetrics(NaN, 1)).toThrow(RangeError);
    expect(() => languageModelMetrics(1, 0)).toThrow(RangeError);
  });

  it('the unigram baseline is add-one smoothed', () => {
    // counts with add-one: [3, 2, 1] of 6
    expect(unigramLoss([0, 0, 1], [0, 2], 3)).toBeCloseTo((Math.log(6 / 3) + Math.log(6 / 1)) / 2, 12);
    expect(() => unigramLoss([0], [3], 3)).toThrow(RangeError);
    expect(() => unigramLoss([0], [], 3)).toThrow(RangeError);
  });

  it('the report says whether the model beats the unigram model', () => {
    const train = [0, 0, 0, 1];
    const evalTokens = [0, 1, 0, 0];
    const baseline = unigramLoss(train, evalTokens, 2);
    const better = languageModelReport(baseline - 0.1, train, evalTokens, 2);
    expect(better.beatsBaseline).toBe(true);
    expect(better.baseline.loss).toBeCloseTo(baseline, 12);
    const worse = languageModelReport(baseline + 0.1, train, evalTokens, 2);
    expect(worse.beatsBaseline).toBe(false);
    expect(formatLanguageModelReport(worse)).toContain('does NOT beat the unigram baseline');
    expect(formatLanguageModelReport(better)).toContain('beats the unigram baseline');
  });
});

describe('classification metrics', () => {
  // true:  0 0 0 1 1 2
  // pred:  0 0 1 1 2 2
  const labels = [0, 0, 0, 1, 1, 2];
  const predictions = [0, 0, 1, 1, 2, 2];

  it('match hand-computed values', () => {
    const m = classificationMetrics(labels, predictions, 3);
    expect(Array.from(m.confusion)).toEqual([2, 1, 0, 0, 1, 1, 0, 0, 1]);
    expect(m.accuracy).toBeCloseTo(4 / 6, 12);
    // class 0: p = 2/2, r = 2/3, f1 = 0.8; class 1: p = 1/2, r = 1/2, f1 = 0.5; class 2: p = 1/2, r = 1, f1 = 2/3
    expect(m.perClass.map((c) => c.f1)).toEqual([0.8, 0.5, 2 / 3].map((v) => expect.closeTo(v, 12)));
    expect(m.perClass.map((c) => c.support)).toEqual([3, 2, 1]);
    expect(m.macroF1).toBeCloseTo((0.8 + 0.5 + 2 / 3) / 3, 12);
  });

  it('average macro-F1 over the classes present among labels or predictions', () => {
    // class 3 neither occurs nor is predicted: it does not count
    expect(classificationMetrics(labels, predictions, 4).macroF1).toBeCloseTo((0.8 + 0.5 + 2 / 3) / 3, 12);
    // a class predicted but absent counts with F1 = 0
    expect(classificationMetrics([0, 0], [0, 1], 2).macroF1).toBeCloseTo((2 / 3 + 0) / 2, 12);
  });

  it('refuses ids out of range and mismatched lengths', () => {
    expect(() => confusionMatrix([0, 3], [0, 0], 3)).toThrow('labels[1] = 3 is outside [0, 3)');
    expect(() => confusionMatrix([0], [0, 1], 3)).toThrow(RangeError);
    expect(() => confusionMatrix([], [], 3)).toThrow(RangeError);
    expect(() => confusionMatrix([0], [0.5], 3)).toThrow(RangeError);
  });

  it('argmaxRows takes the first best class and refuses NaN', () => {
    expect(Array.from(argmaxRows([0, 2, 2, -1, -3, -2], 3))).toEqual([1, 0]);
    expect(() => argmaxRows([0, NaN], 2)).toThrow(NonFiniteError);
    expect(() => argmaxRows([0, 1, 2], 2)).toThrow(RangeError);
  });

  it('the majority baseline predicts the most frequent training class (lowest id on ties)', () => {
    expect(majorityClass([2, 1, 2, 0], 3)).toBe(2);
    expect(majorityClass([1, 0], 2)).toBe(0);
    expect(() => majorityClass([], 2)).toThrow(RangeError);
  });

  it('the report compares with the majority class and says when the model does not beat it', () => {
    const classes = ['spam', 'ham'];
    const train = [1, 1, 1, 0];
    const truth = [1, 1, 0, 0, 1];
    const good = classificationReport(truth, [1, 1, 0, 0, 0], classes, train);
    expect(good.baseline.class).toBe(1);
    expect(good.baseline.metrics.accuracy).toBeCloseTo(3 / 5, 12);
    // 'ham': precision 3/5, recall 1, F1 0.75; 'spam' occurs but is never predicted: F1 0
    expect(good.baseline.metrics.macroF1).toBeCloseTo(0.75 / 2, 12);
    expect(good.beatsBaseline).toBe(true);
    expect(formatClassificationReport(good)).toContain('beats the majority-class baseline');
    const majority = classificationReport(truth, [1, 1, 1, 1, 1], classes, train);
    expect(majority.beatsBaseline).toBe(false);
    const text = formatClassificationReport(majority);
    expect(text).toContain('does NOT beat the majority-class baseline (always "ham") in accuracy and macro-F1');
    expect(text).toContain('confusion (rows: true class, columns: predicted)');
  });
});

describe('forecast metrics and baselines', () => {
  it('MAE, RMSE and MASE match hand-computed values', () => {
    const e = forecastErrors([1, 2, 3, 4], [2, 2, 5, 4], 0.5);
    expect(e.mae).toBeCloseTo(0.75, 12);
    expect(e.rmse).toBeCloseTo(Math.sqrt(5 / 4), 12);
    expect(e.mase).toBeCloseTo(1.5, 12);
    expect(forecastErrors([1], [1], 0).mase).toBeNull();
    expect(() => forecastErrors([1], [NaN], 1)).toThrow(NonFiniteError);
    expect(() => forecastErrors([1, 2], [1], 1)).toThrow(RangeError);
  });

  it("MASE's scale is the in-sample seasonal-naive MAE", () => {
    expect(seasonalScale([1, 3, 2, 5, 4], 2)).toBeCloseTo((1 + 2 + 2) / 3, 12);
    expect(seasonalScale([1, 3, 2, 5, 4], 1)).toBeCloseTo((2 + 1 + 3 + 1) / 4, 12);
    expect(() => seasonalScale([1, 2], 2)).toThrow(RangeError);
  });

  it('the seasonal-naive forecast repeats the last observed season; the naive one the last value', () => {
    const y = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19];
    // origin 6, season 3: steps 1..5 ahead read y[3], y[4], y[5], y[3], y[4]; origin 8: y[5], y[6], y[7], y[5], y[6]
    expect(Array.from(seasonalNaiveForecasts(y, [6, 8], 5, 3))).toEqual([13, 15, 14, 16, 15, 17, 13, 15, 14, 16]);
    expect(Array.from(naiveForecasts(y, [6, 8], 2))).toEqual([15, 17, 15, 17]);
    expect(() => seasonalNaiveForecasts(y, [2], 1, 3)).toThrow(RangeError);
  });
});

describe('forecastReport', () => {
  // a pure weekly pattern plus noise-free trend: the seasonal-naive forecast is off by the trend
  const n = 120;
  const table = seriesFromColumns({ y: Array.from({ length: n }, (_, t) => 50 + 0.5 * t + 8 * Math.sin((2 * Math.PI * t) / 7)) });
  const ds = ForecastDataset.create(table, { target: 'y', window: 14, horizon: 3, season: 7, split: { validation: 0, test: 20 } });
  const origins = ds.origins('test');
  const N = origins.length;
  const H = 3;
  const y = table.values[0];

  it('scores perfect forecasts at 0 and says they beat both baselines', () => {
    const perfect = new Float64Array(H * N);
    for (let h = 0; h < H; h++) for (let k = 0; k < N; k++) perfect[h * N + k] = ds.pipeline.normalize(0, y[origins[k] + h]);
    const r = forecastReport(ds, 'test', perfect);
    expect(r.columns[0].model.mae).toBeCloseTo(0, 9);
    expect(r.beatsNaive && r.beatsSeasonalNaive).toBe(true);
    expect(r.columns[0].scale).toBeCloseTo(seasonalScale(y.subarray(0, 100), 7), 12);
    // the seasonal-naive error here is the trend over one week: 0.5 * 7
    expect(r.columns[0].seasonalNaive.mae).toBeCloseTo(3.5, 9);
    expect(formatForecastReport(r)).toContain('The model beats the naive and the seasonal-naive forecasts.');
  });

  it('says so when the model is no better than the seasonal-naive forecast', () => {
    const sn = seasonalNaiveForecasts(y, origins, H, 7);
    const r = forecastReport(ds, 'test', sn.map((v) => ds.pipeline.normalize(0, v)));
    expect(r.columns[0].model.mae).toBeCloseTo(r.columns[0].seasonalNaive.mae, 9);
    expect(r.beatsSeasonalNaive).toBe(false);
    expect(r.beatsNaive).toBe(true);
    expect(formatForecastReport(r)).toMatch(/The model does NOT beat the seasonal-naive forecast: MAE 3\.5000 against 3\.5000\./);
    expect(formatForecastReport(r)).not.toContain('NOT beat the naive');
  });

  it('collectForecasts assembles batch outputs [H, B, C] into [H, N, C] in window order', async () => {
    const collected = await collectForecasts(ds, 'test', (b) => b.targets, { batchSize: 4 });
    const r = forecastReport(ds, 'test', collected);
    expect(r.columns[0].model.mae).toBeLessThan(1e-4); // float32 targets, denormalised
    await expect(collectForecasts(ds, 'test', () => new Float32Array(1), { batchSize: 4 })).rejects.toThrow(RangeError);
    await expect(collectForecasts(ds, 'test', (b) => new Float32Array(b.targets.length).fill(NaN), { batchSize: 4 })).rejects.toThrow(NonFiniteError);
    expect(() => forecastReport(ds, 'test', new Float64Array(3))).toThrow(RangeError);
    expect(() => forecastReport(ds, 'validation', new Float64Array(0))).toThrow('the validation part has no windows to evaluate');
  });
});
