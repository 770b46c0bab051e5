/**
 * Charts for the reports: vega-lite specifications compiled to vega and rendered to SVG strings by
 * vega's headless View (no browser, no canvas, no network), and the self-contained HTML page that
 * holds them. One chart helper (`lineChart`) covers every plot of the diagnosis report and the
 * study, so they look and behave alike.
 */
import type * as Vega from 'vega';
import type * as VegaLite from 'vega-lite';

/** A row of chart data: x, y and the series it belongs to. */
export interface Point {
  x: number;
  y: number;
  series: string;
}

/** A line chart: one line per series, optionally on a log y scale, with marked reference lines. */
export interface LineChart {
  /** Stable id: the HTML figure gets data-chart="<id>". */
  id: string;
  title: string;
  xTitle: string;
  yTitle: string;
  points: Point[];
  logY?: boolean;
  /** Vertical rules, e.g. the run's truncation k. */
  xRules?: { x: number; label: string }[];
  /** Horizontal rules, e.g. a baseline or the spectral radius 1. */
  yRules?: { y: number; label: string }[];
  /** Draw points on the lines (for short series). */
  marks?: 'line' | 'point' | 'line+point' | 'bar';
  /** Subtitle, e.g. the fitted decay rate. */
  subtitle?: string;
}

/** Titled text for a chart that has no data: the page says why it is missing. */
export interface OmittedChart {
  id: string;
  title: string;
  reason: string;
}

const WIDTH = 560;
const HEIGHT = 220;

function finitePoints(points: Point[], logY: boolean): Point[] {
  return points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y) && (!logY || p.y > 0));
}

/**
 * The vega-lite specification of a line chart. (Typed as a plain object so that the package's
 * declarations do not pull in vega-lite's types.)
 */
export function lineChartSpec(chart: LineChart): Record<string, unknown> {
  const logY = chart.logY === true;
  const values = finitePoints(chart.points, logY);
  const series = [...new Set(values.map((p) => p.series))];
  const kind = chart.marks ?? 'line';
  const color = series.length > 1 ? { color: { field: 'series', type: 'nominal' as const, title: null, sort: series } } : {};
  const x = { field: 'x', type: kind === 'bar' ? ('ordinal' as const) : ('quantitative' as const), title: chart.xTitle };
  const y = { field: 'y', type: 'quantitative' as const, title: chart.yTitle, scale: logY ? { type: 'log' as const } : { zero: false } };
  const layers: object[] = [
    kind === 'bar'
      ? { mark: { type: 'bar' }, encoding: { x, y: { ...y, scale: logY ? { type: 'log' as const } : {} }, ...color } }
      : { mark: { type: kind === 'point' ? 'point' : 'line', point: kind === 'line+point', clip: true }, encoding: { x, y, ...color } },
  ];
  for (const r of chart.xRules ?? []) {
    layers.push({ data: { values: [r] }, mark: { type: 'rule', strokeDash: [4, 3], color: '#c0392b' }, encoding: { x: { field: 'x', type: 'quantitative' } } });
    layers.push({ data: { values: [r] }, mark: { type: 'text', align: 'left', dx: 4, dy: -4, color: '#c0392b', baseline: 'top' }, encoding: { x: { field: 'x', type: 'quantitative' }, y: { value: 0 }, text: { field: 'label' } } });
  }
  for (const r of chart.yRules ?? []) {
    if (logY && !(r.y > 0)) continue;
    layers.push({ data: { values: [r] }, mark: { type: 'rule', strokeDash: [4, 3], color: '#7f8c8d' }, encoding: { y: { field: 'y', type: 'quantitative' } } });
    layers.push({ data: { values: [r] }, mark: { type: 'text', align: 'right', dy: -4, color: '#7f8c8d' }, encoding: { y: { field: 'y', type: 'quantitative' }, x: { value: WIDTH }, text: { field: 'label' } } });
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: chart.subtitle === undefined ? chart.title : { text: chart.title, subtitle: chart.subtitle },
    width: WIDTH,
    height: HEIGHT,
    data: { values },
    layer: layers,
    config: { font: 'sans-serif', view: { stroke: '#ddd' }, legend: { labelLimit: 320 } },
  };
}

/** Renders a vega-lite specification to an SVG string with vega's headless View. */
export async function renderSvg(spec: Record<string, unknown>): Promise<string> {
  // loaded on first use: requiring vega and vega-lite takes ~160 ms, which every `require('bptt')` would pay
  const vega = require('vega') as typeof Vega;
  const vegaLite = require('vega-lite') as typeof VegaLite;
  const view = new vega.View(vega.parse(vegaLite.compile(spec as unknown as VegaLite.TopLevelSpec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Whether a chart has anything to draw (finite points, positive on a log scale). */
export function hasData(chart: LineChart): boolean {
  return finitePoints(chart.points, chart.logY === true).length > 0;
}

/** Escapes text for HTML. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A section of a report page: a heading, paragraphs of text or a table (raw HTML), charts. */
export interface PageSection {
  heading: string;
  html?: string;
  charts: (LineChart | OmittedChart)[];
}

function isOmitted(c: LineChart | OmittedChart): c is OmittedChart {
  return (c as OmittedChart).reason !== undefined;
}

/**
 * A self-contained HTML page (inline CSS and SVG; no script, no external request). Charts
 * without data are replaced by a note saying why.
 */
export async function renderPage(title: string, intro: string, sections: PageSection[]): Promise<string> {
  const body: string[] = [];
  for (const section of sections) {
    body.push(`<section><h2>${escapeHtml(section.heading)}</h2>`);
    if (section.html) body.push(section.html);
    for (const chart of section.charts) {
      if (isOmitted(chart) || !hasData(chart)) {
        const reason = isOmitted(chart) ? chart.reason : 'no finite data to plot';
        body.push(`<p class="omitted" data-omitted="${escapeHtml(chart.id)}"><b>${escapeHtml(chart.title)}</b>: not drawn, ${escapeHtml(reason)}.</p>`);
      } else {
        body.push(`<figure class="chart" data-chart="${escapeHtml(chart.id)}">${await renderSvg(lineChartSpec(chart))}</figure>`);
      }
    }
    body.push('</section>');
  }
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body { font-family: sans-serif; margin: 2em auto; max-width: 62em; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; } td, th { border: 1px solid #ddd; padding: .2em .6em; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
figure.chart { margin: 1em 0; } figure.chart svg { max-width: 100%; height: auto; }
p.omitted { color: #777; font-style: italic; }
table.facts td { text-align: left; }
</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
${intro}
${body.join('\n')}
</body>
</html>
`;
}

/** An HTML table from a header row (null: none) and rows of cells (escaped). */
export function htmlTable(header: string[] | null, rows: (string | number)[][], className = ''): string {
  const cell = (tag: string, v: string | number) => `<${tag}>${escapeHtml(String(v))}</${tag}>`;
  const head = header === null ? '' : `<tr>${header.map((h) => cell('th', h)).join('')}</tr>`;
  return `<table${className ? ` class="${className}"` : ''}>${head}${rows.map((r) => `<tr>${r.map((v) => cell('td', v)).join('')}</tr>`).join('')}</table>`;
}

/** At most `max` points of a long series: the mean of each of `max` consecutive buckets. */
export function downsample(xs: readonly number[], ys: readonly number[], max: number): { x: number[]; y: number[] } {
  if (xs.length <= max) return { x: [...xs], y: [...ys] };
  const x: number[] = [];
  const y: number[] = [];
  const per = xs.length / max;
  for (let i = 0; i < max; i++) {
    const lo = Math.floor(i * per);
    const hi = Math.floor((i + 1) * per);
    let sx = 0;
    let sy = 0;
    let n = 0;
    for (let j = lo; j < hi; j++) {
      if (!Number.isFinite(ys[j])) continue;
      sx += xs[j];
      sy += ys[j];
      n++;
    }
    if (n > 0) {
      x.push(sx / n);
      y.push(sy / n);
    }
  }
  return { x, y };
}
