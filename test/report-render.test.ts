/**
 * The report without a browser: the decay fit against known exponentials, what each chart is fed
 * (the run's k marked, clip rates, validation points), charts without data left out with a note,
 * the page self-contained and its text escaped, the terminal summary's numbers.
 */
import { clipRate, fitDecayRate, renderReport, reportCharts, reportData, type ReportLogRecord } from '../lib/diagnostics/report';
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
    const fit = fitDecayRate(g)!;
    expect(fit.rate).toBeCloseTo(0.2, 12);
    expect(fit.scale).toBeCloseTo(3, 10);
    expect(fit.count).toBe(28);
    expect(fitDecayRate([1, 2, 4])!.rate).toBeCloseTo(-Math.LN2, 12); // growing: negative rate
    expect(fitDecayRate([1])).toBeNull();
    expect(fitDecayRate([0, 0, 1])).toBeNull();
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
    expect(perLag.subtitle).toMatch(/λ = 0\.1 per step/);
    const loss = charts['loss'] as LineChart;
    expect(loss.points.filter((p) => p.series === 'validation loss').map((p) => p.x)).toEqual([50, 100, 150, 200, 250, 300]);
    const radius = charts['spectral-radius'] as LineChart;
    expect(new Set(radius.points.map((p) => p.series))).toEqual(new Set(['block 0', 'block 1']));
  });

  test('clip rate per bucket of updates', () => {
    const updates = Array.from({ length: 10 }, (_, i) => ({ type: 'update' as const, step: i + 1, loss: 1, gradNorm: 1, clipped: i < 3 }));
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
    const log: ReportLogRecord[] = [{ type: 'update', step: 1, loss: 1, gradNorm: Infinity, clipped: true }];
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
    expect(text).toMatch(/^per-lag decay +λ = 0\.1 per step/m);
    expect(text).toMatch(/^spectral radius +0\.93, 1\.05$/m);
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
