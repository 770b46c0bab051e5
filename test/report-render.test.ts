/**
 * The report without a browser: the decay fit against known exponentials, what each chart is fed
 * (the run's k marked, clip rates, validation points), charts without data left out with a note,
 * the page self-contained and its text escaped, the terminal summary's numbers.
 */
import { clipRate, renderReport, reportCharts, reportData, type ReportDiagnosis } from '../lib/diagnostics/report';
import { fitDecayRate } from '../lib/diagnostics/decay';
import type { TelemetryRecord } from '../lib/train/telemetry';
import { lineChartSpec, type LineChart, type OmittedChart } from '../lib/diagnostics/charts';
import { terminalSummary } from '../lib/diagnostics/terminal';
import { ALL_CHARTS, fullDiagnosis, fullLog } from './helpers/report-fixtures';

const chartsById = (input: Parameters<typeof reportData>[0]) =>
  Object.fromEntries(reportCharts(reportData(input), input.diagnosis ?? null).flatMap((s) => s.charts).map((c) => [c.id, c]));

describe('fitDecayRate', () => {
  test('recovers rate and scale of an exact exponential, skipping zeros and non-finite lags', () => {
    const g = Array.from({ length: 30 }, (_, m) => 3 * Math.exp(-0.2 * m));
    g[5] = 0;
    g[7] = NaN;
    g[0] = 100; // lag 0 (each step's own loss term) is not fitted
    const fit = fitDecayRate(g)!;
    expect(fit.factor).toBeCloseTo(Math.exp(-0.2), 12);
    expect(fit.scale).toBeCloseTo(3, 10);
    expect(fit.count).toBe(27);
    expect(fitDecayRate([9, 1, 2, 4])!.factor).toBeCloseTo(2, 12); // growing
    expect(fitDecayRate([1, 1])).toBeNull();
    expect(fitDecayRate([1, 0, null, 1])).toBeNull();
  });
});

describe('report charts', () => {
  test('the full inputs give every chart, with the run k marked on the truncation bias', () => {
    const charts = chartsById({ diagnosis: fullDiagnosis(), log: fullLog(300, 16) });
    expect(Object.keys(charts)).toEqual(ALL_CHARTS);
    for (const c of Object.values(charts)) expect((c as OmittedChart).reason).toBeUndefined();
    const bias = charts['truncation-bias'] as LineChart;
    expect(bias.xRules).toEqual([{ x: 16, label: 'this run: k = 16' }]);
    expect(bias.points.filter((p) => p.series === 'relative error').map((p) => p.x)).toEqual([4, 8, 16, 32]);
    // an explicit truncate wins over the log's
    expect((chartsById({ diagnosis: fullDiagnosis(), log: fullLog(10, 16), truncate: 8 })['truncation-bias'] as LineChart).xRules![0].x).toBe(8);
    expect((chartsById({ diagnosis: fullDiagnosis(), log: fullLog(10, null) })['truncation-bias'] as LineChart).xRules).toEqual([]);
    const perLag = charts['per-lag'] as LineChart;
    expect(perLag.logY).toBe(true);
    expect(perLag.subtitle).toMatch(/×0\.9048 per step \(0\.1 nats per step\)/);
    const loss = charts['loss'] as LineChart;
    expect(loss.points.filter((p) => p.series === 'validation loss').map((p) => p.x)).toEqual([50, 100, 150, 200, 250, 300]);
    const radius = charts['spectral-radius'] as LineChart;
    expect(new Set(radius.points.map((p) => p.series))).toEqual(new Set(['block 0', 'block 1']));
  });

  test('clip rate per bucket of updates', () => {
    const updates = Array.from({ length: 10 }, (_, i) => ({ type: 'update' as const, step: i + 1, loss: 1, gradNorm: 1, clipped: i < 3, clipScale: 1, lr: 1 }));
    expect(clipRate(updates, 5)).toEqual([
      { step: 2, rate: 1 },
      { step: 4, rate: 0.5 },
      { step: 6, rate: 0 },
      { step: 8, rate: 0 },
      { step: 10, rate: 0 },
    ]);
  });

  test('charts without data are notes saying what would provide them', async () => {
    const charts = chartsById({});
    for (const id of ALL_CHARTS) expect(typeof (charts[id] as OmittedChart).reason).toBe('string');
    const html = await renderReport({});
    expect(html).not.toContain('<svg');
    for (const id of ALL_CHARTS) expect(html).toContain(`data-omitted="${id}"`);
    expect(html).toMatch(/--log FILE.jsonl/);
    // a log of non-finite gradient norms draws no empty log-scale chart
    const log: TelemetryRecord[] = [{ type: 'update', step: 1, loss: 1, gradNorm: Infinity, clipped: true, clipScale: 0, lr: 1e-3 }];
    const html2 = await renderReport({ log });
    expect(html2).toContain('data-chart="loss"');
    expect(html2).toContain('data-omitted="grad-norm"');
  });

  test('the page is self-contained: no script, no external reference; text is escaped', async () => {
    const html = await renderReport({ title: '<b>x</b> & "y"', diagnosis: fullDiagnosis(), log: fullLog(), checkpoint: { file: '<evil>.safetensors' } });
    expect(html).not.toMatch(/<script|<link|<img|@import|url\(http/i);
    expect(html).not.toMatch(/(src|href)="http/i);
    expect(html).toContain('&lt;b&gt;x&lt;/b&gt; &amp; &quot;y&quot;');
    expect(html).toContain('&lt;evil&gt;.safetensors');
    expect(html).not.toContain('<evil>');
    expect(html.match(/<figure class="chart"/g)!.length).toBe(ALL_CHARTS.length);
  });

  test('log-scale specs drop the points a log scale cannot show', () => {
    const spec = lineChartSpec({ id: 'x', title: 't', xTitle: 'x', yTitle: 'y', logY: true, points: [{ x: 0, y: 1, series: 'a' }, { x: 1, y: 0, series: 'a' }, { x: 2, y: -1, series: 'a' }, { x: 3, y: NaN, series: 'a' }] });
    expect((spec.data as { values: unknown[] }).values).toEqual([{ x: 0, y: 1, series: 'a' }]);
  });

  test('a log that is not an array is a TypeError', async () => {
    await expect(renderReport({ log: 'x' as never })).rejects.toThrow(TypeError);
  });
});

describe('terminalSummary', () => {
  test('summary numbers, charts and the truncation-bias table with the run k marked', () => {
    const text = terminalSummary({ diagnosis: fullDiagnosis(), log: fullLog(300, 16), checkpoint: { file: 'm.safetensors' } });
    expect(text).toMatch(/^checkpoint +m\.safetensors$/m);
    expect(text).toMatch(/^task +adding$/m);
    expect(text).toMatch(/^truncation +k = 16$/m);
    expect(text).toMatch(/^updates +300 \(last step 300\)$/m);
    expect(text).toMatch(/^per-lag decay +×0\.9048 per step \(0\.1 nats per step, fitted over 39 lags\)$/m);
    expect(text).toMatch(/^spectral radius +0\.93, 1\.05$/m);
    expect(text).toMatch(/^largest singular value +1\.4, 1\.6 \(tanh\/relu: σ < 1 suffices/m);
    expect(text).toMatch(/^ +\(this run\) +16 /m);
    expect(text).toContain('training loss by update');
    expect(text).toContain('log10 gradient norm by lag');
    const clipped = fullLog(300).filter((r) => r.type === 'update' && r.clipped).length;
    expect(text).toMatch(new RegExp(`^clipped updates +${clipped} of 300 `, "m"));
  });

  test('with nothing to show it still says what it knows', () => {
    expect(terminalSummary({})).toMatch(/truncation +exact BPTT/);
  });
});

describe('with a real diagnosis', () => {
  test("diagnose()'s JSON feeds every diagnosis chart; the report's fit is diagnose()'s decayRate", async () => {
    const { RNN } = await import('../lib/rnn');
    const { Tensor } = await import('../lib/tensor');
    const { diagnose, diagnosisToJson } = await import('../lib/diagnostics/diagnose');
    const rnn = new RNN({ inputSize: 3, hiddenSize: 6, outputSize: 3, cell: 'lstm', numLayers: 2, seed: 4 });
    const x = Tensor.from(Int32Array.from({ length: 40 }, (_, i) => (i * 7) % 3), [20, 2]);
    const y = Tensor.from(Int32Array.from({ length: 40 }, (_, i) => (i * 5) % 3), [20, 2]);
    const json = JSON.parse(JSON.stringify(diagnosisToJson(diagnose(rnn, x, y, { truncate: [2, 5, 10], jacobian: { mode: 'estimate', probes: 4 } })))) as ReportDiagnosis;
    const data = reportData({ diagnosis: json, truncate: 5 });
    expect(data.decay!.factor).toBeCloseTo(json.decayRate as number, 12);
    const charts = chartsById({ diagnosis: json, truncate: 5 });
    for (const id of ['per-lag', 'jacobian', 'truncation-bias', 'spectral-radius']) expect([id, (charts[id] as OmittedChart).reason]).toEqual([id, undefined]);
    expect(data.jacobian!.map((j) => j.label)).toEqual(['layer 0', 'layer 1']);
    expect(data.jacobian![1].low!.every((v, m) => v <= data.jacobian![1].norm[m] + 1e-12)).toBe(true);
    expect((charts['spectral-radius'] as LineChart).points).toHaveLength(8); // 2 layers × 4 gates
    expect(terminalSummary({ diagnosis: json })).toMatch(/^spectral radius +i [\d.]+, f [\d.]+, g [\d.]+, o/m);
  });
});
