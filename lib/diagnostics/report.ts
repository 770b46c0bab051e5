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
import { downsample, htmlTable, renderPage, type LineChart, type OmittedChart, type Point } from './charts';

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
  /** Per lag m = 0..T-1: sqrt(Σ_t Σ_b ‖∂L_t/∂h_{t-m}‖²) for the top layer. */
  perLag?: ArrayLike<number>;
  truncationBias?: { k: number; relativeError: number; cosine: number }[];
  /** One per recurrent block (layer·dirs + d, times gates for gated cells). */
  spectralRadius?: ArrayLike<number>;
  /** Largest singular value of each recurrent block, in spectralRadius's order. */
  singularValue?: ArrayLike<number>;
  /** ‖∂h_{i+m}/∂h_i‖ by lag m (mean over i and the batch), and its standard error when estimated. */
  jacobian?: { norms: ArrayLike<number>; standardError?: ArrayLike<number> | null } | ArrayLike<number>;
  [key: string]: unknown;
}

/**
 * A record of the training telemetry log (`bptt train --log FILE.jsonl`): run, update, profile or
 * validation.
 *
 * @example
 * ```ts
 * import type { ReportLogRecord } from 'bptt';
 *
 * const r: ReportLogRecord = { type: 'update', step: 1, loss: 2.3, gradNorm: 4.1, clipped: false, clipScale: 1, lr: 1e-3 };
 * console.log(r.type);
 * ```
 */
export type ReportLogRecord =
  | { type: 'run'; task?: unknown; model?: Record<string, unknown>; truncate?: number | null; [key: string]: unknown }
  | { type: 'update'; step: number; loss: number; gradNorm: number; clipped: boolean; clipScale?: number; lr?: number }
  | { type: 'profile'; step: number; perLag?: number[]; spectralRadius?: number[]; [key: string]: unknown }
  | { type: 'validation'; step: number; epoch?: number; metrics: Record<string, number | null> };

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
  log?: readonly ReportLogRecord[] | null;
  /** About the model: its checkpoint file, task, cell, sizes (shown as a table). */
  checkpoint?: { file?: string; task?: string | null; model?: Record<string, unknown>; [key: string]: unknown } | null;
  /** The truncation k the run used (null: exact BPTT); default: the log's run record. */
  truncate?: number | null;
}

/** The fitted exponential decay of a per-lag profile. */
export interface DecayFit {
  /** λ in ‖g_m‖ ≈ A·e^{-λ m}: nats per step (negative when the profile grows with the lag). */
  rate: number;
  /** A. */
  scale: number;
  /** Lags used (finite, positive norms). */
  count: number;
}

/**
 * Least-squares fit of ln ‖g_m‖ = ln A − λ m over the lags whose norm is finite and positive;
 * null with fewer than 2 such lags.
 */
export function fitDecayRate(perLag: ArrayLike<number>): DecayFit | null {
  let n = 0;
  let sx = 0;
  let sy = 0;
  let sxx = 0;
  let sxy = 0;
  for (let m = 0; m < perLag.length; m++) {
    const g = perLag[m];
    if (!(g > 0) || !Number.isFinite(g)) continue;
    const y = Math.log(g);
    n++;
    sx += m;
    sy += y;
    sxx += m * m;
    sxy += m * y;
  }
  const den = n * sxx - sx * sx;
  if (n < 2 || den === 0) return null;
  const slope = (n * sxy - sx * sy) / den;
  return { rate: -slope, scale: Math.exp((sy - slope * sx) / n), count: n };
}

/** The numbers both reports show, pulled out of the inputs once. */
export interface ReportData {
  updates: Extract<ReportLogRecord, { type: 'update' }>[];
  profiles: Extract<ReportLogRecord, { type: 'profile' }>[];
  validations: Extract<ReportLogRecord, { type: 'validation' }>[];
  run: Extract<ReportLogRecord, { type: 'run' }> | null;
  truncate: number | null;
  perLag: number[] | null;
  decay: DecayFit | null;
  jacobian: { norms: number[]; standardError: number[] | null } | null;
}

const toArray = (a: ArrayLike<number> | null | undefined): number[] | null => (a === undefined || a === null ? null : Array.from(a));

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
  if (d?.jacobian !== undefined && d.jacobian !== null) {
    const j = d.jacobian as { norms?: ArrayLike<number>; standardError?: ArrayLike<number> | null };
    jacobian = j.norms !== undefined ? { norms: Array.from(j.norms), standardError: toArray(j.standardError) } : { norms: Array.from(d.jacobian as ArrayLike<number>), standardError: null };
  }
  return { updates, profiles, validations, run, truncate, perLag, decay: perLag === null ? null : fitDecayRate(perLag), jacobian };
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
    const subtitle = fit === null ? 'too few positive norms to fit a decay rate' : `fitted decay λ = ${fmt(fit.rate)} per step (×${fmt(Math.exp(-fit.rate))} per step; ‖g_m‖ ≈ ${fmt(fit.scale)}·e^(−λm))`;
    if (fit !== null) points.push(...data.perLag.map((_, m) => ({ x: m, y: fit.scale * Math.exp(-fit.rate * m), series: 'fit' })));
    gradients.push({ id: 'per-lag', title: 'Gradient norm by lag m: sqrt(Σ_t Σ_b ‖∂L_t/∂h_{t−m}‖²)', subtitle, xTitle: 'lag m (steps)', yTitle: 'norm (log)', points, logY: true });
  }
  if (data.jacobian === null) {
    gradients.push({ id: 'jacobian', title: 'Jacobian-product norm by lag', reason: 'the diagnosis holds no Jacobian norms' });
  } else {
    const j = data.jacobian;
    const points: Point[] = j.norms.map((y, m) => ({ x: m, y, series: '‖∂h_{i+m}/∂h_i‖' }));
    if (j.standardError !== null) {
      const se = j.standardError;
      points.push(...j.norms.map((y, m) => ({ x: m, y: y + 2 * se[m], series: '+2 s.e.' })));
      points.push(...j.norms.map((y, m) => ({ x: m, y: y - 2 * se[m], series: '−2 s.e.' })));
    }
    gradients.push({ id: 'jacobian', title: 'Jacobian-product norm by lag', xTitle: 'lag m (steps)', yTitle: 'norm (log)', points, logY: true, yRules: [{ y: 1, label: '1' }] });
  }
  const bias = diagnosis?.truncationBias ?? [];
  if (bias.length === 0) {
    gradients.push({ id: 'truncation-bias', title: 'Truncation bias against k', reason: 'the diagnosis holds no truncation bias (diagnose --truncate k1,k2,…)' });
  } else {
    const sorted = [...bias].sort((a, b) => a.k - b.k);
    gradients.push({
      id: 'truncation-bias',
      title: 'Truncation bias against k',
      subtitle: 'relative error ‖g_k − g‖/‖g‖ and cosine of the k-step truncated gradient against the full one',
      xTitle: 'k (steps back)',
      yTitle: 'relative error / cosine',
      points: [...sorted.map((b) => ({ x: b.k, y: b.relativeError, series: 'relative error' })), ...sorted.map((b) => ({ x: b.k, y: b.cosine, series: 'cosine' }))],
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
    const points = Array.from(diagnosis.spectralRadius, (y, i) => ({ x: i, y, series: 'ρ' }));
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
  if (data.decay) rows.push(['per-lag decay', `λ = ${fmt(data.decay.rate)} per step (×${fmt(Math.exp(-data.decay.rate))} per step over ${data.decay.count} lags)`]);
  const d = input.diagnosis;
  if (d?.spectralRadius && d.spectralRadius.length > 0) rows.push(['spectral radius', Array.from(d.spectralRadius, (x) => fmt(x, 3)).join(', ')]);
  if (d?.singularValue && d.singularValue.length > 0) {
    const s = Array.from(d.singularValue);
    rows.push(['largest singular value', `${s.map((x) => fmt(x, 3)).join(', ')} (σ < 1 suffices for vanishing gradients in tanh/relu RNNs; σ > 1 is necessary for exploding ones)`]);
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
 *   log: [{ type: 'update', step: 1, loss: 2, gradNorm: 3, clipped: false }, { type: 'update', step: 2, loss: 1.5, gradNorm: 2, clipped: true }],
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

