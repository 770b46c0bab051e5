/**
 * The diagnosis report for the terminal: the summary numbers of report.ts plus small line charts
 * drawn with asciichart (loss over training, log10 of the per-lag gradient norm), and the
 * truncation bias as a table.
 */
import { downsample } from './charts';
import { formatNumber, reportData, summaryRows, type ReportInput } from './report';

// asciichart ships no types; this is the one call the summary makes.
const asciichart = require('asciichart') as { plot(series: number[], config: { height: number; format: (x: number) => string }): string };

const CHART_WIDTH = 60;
const CHART_HEIGHT = 6;

function chart(title: string, ys: number[], format: (x: number) => string): string {
  const finite = ys.filter(Number.isFinite);
  if (finite.length < 2) return '';
  const { y } = downsample(
    finite.map((_, i) => i),
    finite,
    CHART_WIDTH,
  );
  return `${title}\n${asciichart.plot(y, { height: CHART_HEIGHT, format: (x) => format(x).padStart(9) })}\n`;
}

/**
 * The report as plain text for a terminal: the summary table, small charts of the training loss
 * and of the per-lag gradient norm (log10 scale), and the truncation bias by k.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { terminalSummary } from 'bptt';
 *
 * const text = terminalSummary({ diagnosis: { perLag: [1, 0.5, 0.25, 0.125], spectralRadius: [0.9] } });
 * assert.match(text, /per-lag decay\s+×0\.5 per step/);
 * console.log(text);
 * ```
 */
export function terminalSummary(input: ReportInput): string {
  const data = reportData(input);
  const rows = summaryRows(input, data);
  const width = Math.max(...rows.map(([k]) => k.length));
  const out = [rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n'), ''];
  if (data.updates.length > 0) out.push(chart('training loss by update', data.updates.map((u) => u.loss), (x) => formatNumber(x, 3)));
  if (data.perLag !== null) out.push(chart('log10 gradient norm by lag m (left: m = 0)', data.perLag.map((g) => (g > 0 ? Math.log10(g) : NaN)), (x) => x.toFixed(2)));
  const bias = [...(input.diagnosis?.truncationBias ?? [])].sort((a, b) => a.k - b.k);
  if (bias.length > 0) {
    out.push('truncation bias      k  rel. error  cosine');
    const num = (x: number | null) => (x === null ? 'n/a' : formatNumber(x));
    for (const b of bias) out.push(`${data.truncate === b.k ? '  (this run) ' : '             '}${String(b.k).padStart(8)}  ${num(b.relativeError).padStart(10)}  ${num(b.cosine).padStart(6)}`);
  }
  return out.filter((s) => s !== '').join('\n') + '\n';
}
