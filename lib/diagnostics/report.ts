/**
 * The diagnosis report: what a trained model's gradients look like (from `diagnose()`, Contract B)
 * and how its training went (from the telemetry log, Contract C), as a self-contained HTML page
 * of SVG charts (vega-lite rendered by vega's headless View) and, in terminal.ts, as text.
 *
 * Charts: loss curves (training loss per update, validation metrics), gradient norm before
 * clipping and the clip rate over training, the per-lag gradient norm on a log scale with its
 * fitted decay rate, Jacobian-product norms by lag, truncation bias against k with the run's k
 * marked, and the spectral radius of each recurrent block over training. A chart whose data the
 * inputs do not hold is left out with a note saying what would provide it.
 */
import type { TelemetryRecord } from '../train/telemetry';
import { downsample, htmlTable, renderPage, type LineChart, type OmittedChart, type Point } from './charts';
import { fitDecayRate, type DecayFit } from './decay';

/**
 * The parts of a diagnosis the report reads: the JSON form of `diagnose()`'s result
 * (`diagnosisToJson`), typed arrays as number arrays. Every field is optional.
 *
 * @example
 * ```ts
 * import type { ReportDiagnosis } from 'bptt';
 *
 * const d: ReportDiagnosis = { perLag: [0.9, 0.3, 0.1], truncationBias: [{ k: 1, relativeError: 0.5, cosine: 0.8 }], spectralRadius: [0.7] };
 * console.log(d.perLag?.length);
 * ```
 */
export interface ReportDiagnosis {
  /** Per lag m = 0..T-1: sqrt(Σ_t Σ_b ‖∂L_t/∂h_{t-m}‖²) for the top layer (null: not finite). */
  perLag?: ArrayLike<number | null>;
  /** The fitted factor per step of perLag (exp of the least-squares slope of ln perLag[m], m >= 1). */
  decayRate?: number | null;
  truncationBias?: { k: number; relativeError: number | null; cosine: number | null }[];
  /** One per recurrent block (index (layer·dirs + d)·gates + g). */
  spectralRadius?: ArrayLike<number | null>;
  /** Largest singular value of each recurrent block, in spectralRadius's order. */
  singularValue?: ArrayLike<number | null>;
  /** The blocks' gate names: ['hh'], ['i', 'f', 'g', 'o'] or ['r', 'z', 'n']. */
  gates?: string[];
  bidirectional?: boolean;
  /** Per layer and direction, by lag m: the RMS Frobenius norm of ∂h_{i+m}/∂h_i, and the standard error of its square. */
  jacobian?: {
    method: string;
    byLayer: { layer: number; direction: number; norm: ArrayLike<number | null>; meanSquare?: ArrayLike<number | null>; standardError?: ArrayLike<number | null> }[];
  } | null;
  [key: string]: unknown;
}

/**
 * What the report shows: a diagnosis, a training log, facts about the model; any may be missing
 * (the charts that need it are then left out with a note).
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { terminalSummary, type ReportInput } from 'bptt';
 *
 * const input: ReportInput = { checkpoint: { file: 'model.safetensors', task: 'adding' }, truncate: 20 };
 * assert.match(terminalSummary(input), /truncation +k = 20/);
 * ```
 */
export interface ReportInput {
  /** Page title; default "bptt diagnosis". */
  title?: string;
  diagnosis?: ReportDiagnosis | null;
  log?: readonly TelemetryRecord[] | null;
  /** About the model: its checkpoint file, task, cell, sizes (shown as a table). */
  checkpoint?: { file?: string; task?: string | null; model?: Record<string, unknown>; [key: string]: unknown } | null;
  /** The truncation k the run used (null: exact BPTT); default: the log's run record. */
  truncate?: number | null;
}

/** The numbers both reports show, pulled out of the inputs once. */
export interface ReportData {
  updates: Extract<TelemetryRecord, { type: 'update' }>[];
  profiles: Extract<TelemetryRecord, { type: 'profile' }>[];
  validations: Extract<TelemetryRecord, { type: 'validation' }>[];
  run: Extract<TelemetryRecord, { type: 'run' }> | null;
  truncate: number | null;
  perLag: number[] | null;
  decay: DecayFit | null;
  /** Per layer-direction RMS norms by lag, with the ±2 standard-error band of the estimate when it is one. */
  jacobian: { label: string; norm: number[]; low: number[] | null; high: number[] | null }[] | null;
}

/** A JSON array (null for a non-finite number) back to numbers (NaN). */
const toArray = (a: ArrayLike<number | null> | null | undefined): number[] | null => (a === undefined || a === null ? null : Array.from(a, (x) => (x === null ? NaN : x)));

/** Sorts the inputs into the series the reports draw. */
export function reportData(input: ReportInput): ReportData {
  const log = input.log ?? [];
  if (!Array.isArray(log)) throw new TypeError(`log must be an array of telemetry records, got ${typeof log}`);
  const updates: ReportData['updates'] = [];
  const profiles: ReportData['profiles'] = [];
  const validations: ReportData['validations'] = [];
  let run: ReportData['run'] = null;
  for (const r of log) {
    if (r.type === 'update') updates.push(r);
    else if (r.type === 'profile') profiles.push(r);
    else if (r.type === 'validation') validations.push(r);
    else if (r.type === 'run' && run === null) run = r;
  }
  const truncate = input.truncate !== undefined ? input.truncate : typeof run?.truncate === 'number' ? run.truncate : null;
  const d = input.diagnosis ?? null;
  const perLag = toArray(d?.perLag) ?? toArray(profiles.at(-1)?.perLag);
  let jacobian: ReportData['jacobian'] = null;
  if (d?.jacobian && Array.isArray(d.jacobian.byLayer) && d.jacobian.byLayer.length > 0) {
    const estimate = d.jacobian.method === 'estimate';
    jacobian = d.jacobian.byLayer.map((j) => {
      const label = `layer ${j.layer}${d.bidirectional ? (j.direction === 0 ? ' forward' : ' reverse') : ''}`;
      const ms = toArray(j.meanSquare);
      const se = toArray(j.standardError);
      // the band of the estimated mean square, ±2 standard errors, as norms
      const band = (sign: number) => (estimate && ms !== null && se !== null ? ms.map((v, m) => Math.sqrt(Math.max(v + sign * 2 * se[m], 0))) : null);
      return { label, norm: toArray(j.norm)!, low: band(-1), high: band(1) };
    });
  }
  // the fit diagnose() reports as decayRate, of the profile shown
  const decay = perLag === null ? null : fitDecayRate(perLag);
  return { updates, profiles, validations, run, truncate, perLag, decay, jacobian };
}

const fmt = (x: number, digits = 4) => (Number.isFinite(x) ? (Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(2) : Number(x.toPrecision(digits)).toString()) : String(x));
export { fmt as formatNumber };

/** Clip rate per bucket of consecutive updates: at most `buckets` points. */
export function clipRate(updates: ReportData['updates'], buckets = 50): { step: number; rate: number }[] {
  const out: { step: number; rate: number }[] = [];
  const per = Math.max(1, Math.ceil(updates.length / buckets));
  for (let i = 0; i < updates.length; i += per) {
    const chunk = updates.slice(i, i + per);
    out.push({ step: chunk[chunk.length - 1].step, rate: chunk.filter((u) => u.clipped).length / chunk.length });
  }
  return out;
}

const MAX_POINTS = 600;
const NO_LOG = 'the report has no training log (bptt train --log FILE.jsonl, then bptt diagnose --log FILE.jsonl)';

function series(name: string, xs: readonly number[], ys: readonly number[]): Point[] {
  const d = downsample(xs, ys, MAX_POINTS);
  return d.x.map((x, i) => ({ x, y: d.y[i], series: name }));
}

/** The report's charts, in page order, each either drawable or omitted with its reason. */
export function reportCharts(data: ReportData, diagnosis: ReportDiagnosis | null): { heading: string; charts: (LineChart | OmittedChart)[] }[] {
  const u = data.updates;
  const steps = u.map((r) => r.step);
  const training: (LineChart | OmittedChart)[] = [];
  if (u.length === 0 && data.validations.length === 0) {
    training.push({ id: 'loss', title: 'Loss over training', reason: NO_LOG });
  } else {
    const points = series('training loss', steps, u.map((r) => r.loss));
    for (const key of ['loss', 'mse']) {
      const v = data.validations.filter((r) => typeof r.metrics[key] === 'number');
      points.push(...v.map((r) => ({ x: r.step, y: r.metrics[key] as number, series: `validation ${key}` })));
    }
    training.push({ id: 'loss', title: 'Loss over training', xTitle: 'update', yTitle: 'loss', points, marks: 'line' });
  }
  if (u.length === 0) {
    training.push({ id: 'grad-norm', title: 'Gradient norm before clipping', reason: NO_LOG });
    training.push({ id: 'clip-rate', title: 'Clip rate', reason: NO_LOG });
  } else {
    training.push({ id: 'grad-norm', title: 'Gradient norm before clipping', xTitle: 'update', yTitle: '‖∇L‖ (log)', points: series('gradient norm', steps, u.map((r) => r.gradNorm)), logY: true });
    const rates = clipRate(u);
    const clipped = u.filter((r) => r.clipped).length;
    training.push({
      id: 'clip-rate',
      title: 'Clip rate',
      subtitle: `${clipped} of ${u.length} updates clipped (${fmt((100 * clipped) / u.length, 3)} %), per bucket of ${Math.ceil(u.length / rates.length)} updates`,
      xTitle: 'update',
      yTitle: 'fraction clipped',
      points: rates.map((r) => ({ x: r.step, y: r.rate, series: 'clip rate' })),
      marks: 'line+point',
    });
  }

  const gradients: (LineChart | OmittedChart)[] = [];
  if (data.perLag === null) {
    gradients.push({ id: 'per-lag', title: 'Gradient norm by lag', reason: 'no diagnosis and no profile records in the log' });
  } else {
    const points: Point[] = data.perLag.map((y, m) => ({ x: m, y, series: diagnosis?.perLag !== undefined ? 'now' : `update ${data.profiles.at(-1)!.step}` }));
    // how the profile changed over training: up to 4 earlier profiles from the log
    const earlier = data.profiles.slice(0, diagnosis?.perLag !== undefined ? undefined : -1);
    const pick = earlier.length <= 4 ? earlier : [0, 1, 2, 3].map((i) => earlier[Math.round((i * (earlier.length - 1)) / 3)]);
    for (const p of pick) points.push(...(p.perLag ?? []).map((y, m) => ({ x: m, y, series: `update ${p.step}` })));
    const fit = data.decay;
    const subtitle = fit === null ? 'too few positive norms to fit a decay rate' : `fitted decay: ×${fmt(fit.factor)} per step (${fmt(-Math.log(fit.factor))} nats per step), ‖g_m‖ ≈ ${fmt(fit.scale)}·${fmt(fit.factor)}^m over m ≥ 1`;
    if (fit !== null) points.push(...data.perLag.map((_, m) => ({ x: m, y: fit.scale * fit.factor ** m, series: 'fit' })).slice(1));
    gradients.push({ id: 'per-lag', title: 'Gradient norm by lag m: sqrt(Σ_t Σ_b ‖∂L_t/∂h_{t−m}‖²)', subtitle, xTitle: 'lag m (steps)', yTitle: 'norm (log)', points, logY: true });
  }
  if (data.jacobian === null) {
    gradients.push({ id: 'jacobian', title: 'Jacobian-product norm by lag', reason: 'the diagnosis holds no Jacobian norms' });
  } else {
    const points: Point[] = [];
    for (const j of data.jacobian) {
      points.push(...j.norm.map((y, m) => ({ x: m, y, series: j.label })));
      if (j.low !== null && j.high !== null) {
        points.push(...j.low.map((y, m) => ({ x: m, y, series: `${j.label} −2 s.e.` })));
        points.push(...j.high.map((y, m) => ({ x: m, y, series: `${j.label} +2 s.e.` })));
      }
    }
    const how = diagnosis?.jacobian?.method === 'estimate' ? 'random-probe estimate, with ±2 standard errors' : 'exact';
    gradients.push({ id: 'jacobian', title: 'Jacobian-product norm by lag: RMS ‖∂h_{i+m}/∂h_i‖_F', subtitle: how, xTitle: 'lag m (steps)', yTitle: 'norm (log)', points, logY: true, yRules: [{ y: 1, label: '1' }] });
  }
  const bias = diagnosis?.truncationBias ?? [];
  if (bias.length === 0) {
    gradients.push({ id: 'truncation-bias', title: 'Truncation bias against k', reason: 'the diagnosis holds no truncation bias (diagnose --truncate k1,k2,…)' });
  } else {
    const sorted = [...bias].sort((a, b) => a.k - b.k);
    const finite = (x: number | null) => (x === null ? NaN : x);
    gradients.push({
      id: 'truncation-bias',
      title: 'Truncation bias against k',
      subtitle: 'relative error ‖g_k − g‖/‖g‖ and cosine of the k-step truncated gradient against the full one',
      xTitle: 'k (steps back)',
      yTitle: 'relative error / cosine',
      points: [...sorted.map((b) => ({ x: b.k, y: finite(b.relativeError), series: 'relative error' })), ...sorted.map((b) => ({ x: b.k, y: finite(b.cosine), series: 'cosine' }))],
      marks: 'line+point',
      xRules: data.truncate === null ? [] : [{ x: data.truncate, label: `this run: k = ${data.truncate}` }],
    });
  }
  const profilesWithRadius = data.profiles.filter((p) => Array.isArray(p.spectralRadius) && p.spectralRadius.length > 0);
  if (profilesWithRadius.length > 0) {
    const points: Point[] = [];
    for (const p of profilesWithRadius) p.spectralRadius!.forEach((y, i) => points.push({ x: p.step, y, series: `block ${i}` }));
    gradients.push({ id: 'spectral-radius', title: 'Spectral radius of each recurrent block over training', xTitle: 'update', yTitle: 'ρ', points, marks: 'line+point', yRules: [{ y: 1, label: 'ρ = 1' }] });
  } else if (diagnosis?.spectralRadius !== undefined && diagnosis.spectralRadius.length > 0) {
    const points = Array.from(diagnosis.spectralRadius, (y, i) => ({ x: i, y: y ?? NaN, series: 'ρ' }));
    gradients.push({ id: 'spectral-radius', title: 'Spectral radius of each recurrent block (now; the log has no profiles over training)', xTitle: 'block', yTitle: 'ρ', points, marks: 'bar', yRules: [{ y: 1, label: 'ρ = 1' }] });
  } else {
    gradients.push({ id: 'spectral-radius', title: 'Spectral radius over training', reason: 'no profile records in the log (--log-every N) and no diagnosis' });
  }
  return [
    { heading: 'Training', charts: training },
    { heading: 'Gradients through time', charts: gradients },
  ];
}

/** The summary facts as [label, value] pairs, shared by the HTML and terminal reports. */
export function summaryRows(input: ReportInput, data: ReportData): [string, string][] {
  const rows: [string, string][] = [];
  const c = input.checkpoint ?? {};
  if (c.file) rows.push(['checkpoint', String(c.file)]);
  if (c.data) rows.push(['diagnosed on', String(c.data)]);
  const task = c.task ?? data.run?.task;
  if (task !== undefined && task !== null) rows.push(['task', String(task)]);
  const model = c.model ?? data.run?.model;
  if (model) rows.push(['model', Object.entries(model).filter(([, v]) => v !== undefined && typeof v !== 'object').map(([k, v]) => `${k} ${v}`).join(', ')]);
  rows.push(['truncation', data.truncate === null ? 'exact BPTT (or unknown)' : `k = ${data.truncate}`]);
  const u = data.updates;
  if (u.length > 0) {
    rows.push(['updates', `${u.length} (last step ${u[u.length - 1].step})`]);
    const tail = u.slice(-Math.max(1, Math.ceil(u.length / 20)));
    rows.push(['training loss', `first ${fmt(u[0].loss)}, last ${fmt(tail.reduce((s, r) => s + r.loss, 0) / tail.length)} (mean of the last ${tail.length})`]);
    const norms = u.map((r) => r.gradNorm).filter(Number.isFinite).sort((a, b) => a - b);
    if (norms.length > 0) rows.push(['gradient norm', `median ${fmt(norms[Math.floor(norms.length / 2)])}, max ${fmt(norms[norms.length - 1])}`]);
    const clipped = u.filter((r) => r.clipped).length;
    rows.push(['clipped updates', `${clipped} of ${u.length} (${fmt((100 * clipped) / u.length, 3)} %)`]);
  }
  const v = data.validations.at(-1);
  if (v) rows.push(['last validation', Object.entries(v.metrics).filter(([, x]) => typeof x === 'number').map(([k, x]) => `${k} ${fmt(x as number)}`).join(', ')]);
  if (data.decay) rows.push(['per-lag decay', `×${fmt(data.decay.factor)} per step (${fmt(-Math.log(data.decay.factor))} nats per step, fitted over ${data.decay.count} lags)`]);
  const d = input.diagnosis;
  const gates = d?.gates ?? [];
  const blocks = (values: ArrayLike<number | null>) =>
    Array.from(values, (x, i) => `${gates.length > 1 ? `${gates[i % gates.length]} ` : ''}${x === null ? 'n/a' : fmt(x, 3)}`).join(', ');
  if (d?.spectralRadius && d.spectralRadius.length > 0) rows.push(['spectral radius', blocks(d.spectralRadius)]);
  if (d?.singularValue && d.singularValue.length > 0) {
    const note = gates.length <= 1 ? ' (tanh/relu: σ < 1 suffices for vanishing gradients, σ > 1 is necessary for exploding ones)' : '';
    rows.push(['largest singular value', `${blocks(d.singularValue)}${note}`]);
  }
  return rows;
}

/**
 * The report as a self-contained HTML page: inline SVG charts (vega-lite compiled to vega,
 * rendered by vega's headless View), no script, no network. Charts without data are left out
 * with a note.
 *
 * @throws TypeError when `log` is not an array.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { renderReport } from 'bptt';
 *
 * const html = await renderReport({
 *   diagnosis: { perLag: [1, 0.5, 0.25, 0.125], truncationBias: [{ k: 1, relativeError: 0.4, cosine: 0.9 }], spectralRadius: [0.8] },
 *   log: [
 *     { type: 'update', step: 1, loss: 2, gradNorm: 3, clipped: false, clipScale: 1, lr: 0.01 },
 *     { type: 'update', step: 2, loss: 1.5, gradNorm: 2, clipped: true, clipScale: 0.5, lr: 0.01 },
 *   ],
 * });
 * assert.ok(html.startsWith('<!DOCTYPE html>'));
 * assert.ok(html.includes('data-chart="per-lag"') && html.includes('<svg'));
 * assert.ok(html.includes('data-omitted="jacobian"')); // no Jacobian norms given: a note, not an empty chart
 * ```
 */
export async function renderReport(input: ReportInput): Promise<string> {
  const data = reportData(input);
  const rows = summaryRows(input, data);
  const intro = `<section><h2>Summary</h2>${htmlTable(null, rows, 'facts')}</section>`;
  return renderPage(input.title ?? 'bptt diagnosis', intro, reportCharts(data, input.diagnosis ?? null));
}

