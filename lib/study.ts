/**
 * The remedies study (`npm run study -- OUT [--quick]`, `bptt study`): what the four classic
 * recurrent models do on a task that needs long memory, what their gradients look like, what
 * truncation costs a language model, and what clipping does to exploding gradients.
 *
 * 1. Adding problem at T ∈ {50, 100, 200, 400}: tanh RNN, IRNN (relu, W_hh = I, zero biases),
 *    LSTM and GRU at equal hidden size, the same optimizer (Adam), learning rate, clipping (norm 1),
 *    batches and number of updates; test MSE on held-out sequences against the 1/6 baseline.
 * 2. The per-lag gradient norm ‖∂L/∂h_{T−1−m}‖ (the loss is read at the last step only) of the
 *    four at T = 100, at initialisation and after training, and its fitted decay per step.
 * 3. TBPTT(k, k) on the character language model of the first-name list for a range of k, at an
 *    equal number of training tokens: held-out loss and the truncation bias of the gradient
 *    (relative error and cosine against full BPTT on 64-step windows) of each trained model.
 * 4. The exploding case: a tanh RNN whose W_hh is an orthogonal matrix times 1.5 (every eigenvalue
 *    of modulus 1.5, so spectral radius 1.5) trained by SGD on the adding problem without
 *    clipping, with norm clipping and with value clipping.
 *
 * Everything is seeded: the same options give the same numbers on the same machine.
 */
import * as fs from 'fs';
import * as path from 'path';
import { RNN } from './rnn';
import { Optimizer } from './optim';
import { Tensor } from './tensor';
import { NonFiniteError } from './errors';
import { diagnose } from './diagnostics/diagnose';
import { downsample, escapeHtml, htmlTable, renderPage, type LineChart, type PageSection, type Point } from './diagnostics/charts';
import { addingProblem, ADDING_BASELINE_MSE, type AddingProblem, type LongRangeBatch } from './tasks/longrange';
import { CharTokenizer } from './train/tokenizer';
import { defaultNames, namesText, shuffled } from './train/data';
import { StreamBatcher, holdoutSplit } from './train/batcher';
import { Trainer } from './train/trainer';
import { evaluate } from './train/evaluate';

/** The models the study compares (equal hidden size). */
const MODELS = [
  { name: 'tanh RNN', cell: 'tanh', init: 'pytorch' },
  { name: 'IRNN', cell: 'relu', init: 'identity' },
  { name: 'LSTM', cell: 'lstm', init: 'pytorch' },
  { name: 'GRU', cell: 'gru', init: 'pytorch' },
] as const;

interface StudySettings {
  lengths: number[];
  hidden: number;
  batch: number;
  steps: number;
  lr: number;
  clipNorm: number;
  testSequences: number;
  /** T of the per-lag profiles. */
  profileLength: number;
  lm: { hidden: number; batch: number; ks: number[]; tokens: number; window: number };
  exploding: { length: number; hidden: number; steps: number; lr: number; clipNorm: number; clipValue: number };
}

const FULL: StudySettings = {
  lengths: [50, 100, 200, 400],
  hidden: 48,
  batch: 32,
  steps: 2500,
  lr: 2e-3,
  clipNorm: 1,
  testSequences: 1024,
  profileLength: 100,
  lm: { hidden: 64, batch: 32, ks: [1, 2, 4, 8, 16, 32, 64], tokens: 1_000_000, window: 64 },
  exploding: { length: 100, hidden: 64, steps: 1000, lr: 0.1, clipNorm: 1, clipValue: 0.1 },
};

const QUICK: StudySettings = {
  lengths: [50, 100, 200, 400],
  hidden: 16,
  batch: 16,
  steps: 60,
  lr: 1e-3,
  clipNorm: 1,
  testSequences: 128,
  profileLength: 50,
  lm: { hidden: 32, batch: 16, ks: [2, 8, 32], tokens: 16_000, window: 32 },
  exploding: { length: 50, hidden: 32, steps: 60, lr: 0.1, clipNorm: 1, clipValue: 0.1 },
};

/**
 * Options of {@link runStudy}.
 */
export interface StudyOptions {
  /** The folder to write study.md, study.html and study.json to (created if missing). */
  out: string;
  /** The small version (under 2 minutes): fewer updates, smaller models, fewer k. */
  quick?: boolean;
  /** Progress lines (default: none). */
  progress?: (line: string) => void;
}

/** One row of the adding-problem table. */
export interface AddingResult {
  model: string;
  cell: string;
  length: number;
  parameters: number;
  mse: number;
  baseline_mse: number;
  /** mse / baseline_mse. */
  ratio: number;
  /** Standard error of the test MSE (over the test sequences). */
  standardError: number;
  /** The test MSE is below the baseline by more than 3 standard errors. */
  beats: boolean;
  /** Fitted per-step decay factor of the per-lag gradient norm at initialisation and after training (T = profileLength only). */
  decayInit: number | null;
  decayTrained: number | null;
  /** Wall time of this model's run (the four models of a length train at the same time). */
  seconds: number;
  /** Updates whose step failed with a non-finite value (skipped; nothing changed). */
  nonFinite: number;
}

/** One row of the truncation table. */
export interface TruncationResult {
  k: number;
  updates: number;
  /** Held-out loss, nats per character. */
  loss: number;
  /** The trained model's gradient at its own k against full BPTT on held-out windows. */
  relativeError: number;
  cosine: number;
}

/** One row of the clipping table. */
export interface ClippingResult {
  variant: string;
  medianGradNorm: number;
  maxGradNorm: number;
  /** Fraction of the updates whose gradient was clipped. */
  clipped: number;
  nonFinite: number;
  mse: number;
  baseline_mse: number;
}

/**
 * What {@link runStudy} measured, and where it wrote it.
 */
export interface StudyResult {
  quick: boolean;
  settings: StudySettings;
  adding: AddingResult[];
  truncation: TruncationResult[];
  clipping: ClippingResult[];
  /** Spectral radius of the exploding model's W_hh, measured by diagnose(). */
  explodingSpectralRadius: number;
  markdown: string;
  files: { markdown: string; html: string; json: string };
  seconds: number;
}

interface Curve {
  name: string;
  steps: number[];
  values: number[];
}

const fmt = (x: number, digits = 3) => (Number.isFinite(x) ? (Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(2) : Number(x.toPrecision(digits)).toString()) : String(x));

function parameterCount(rnn: RNN): number {
  return Object.values(rnn.params).reduce((n, t) => n + t.size, 0);
}

function predictValues(rnn: RNN): (x: Tensor) => Float32Array {
  return (x) => {
    const y = rnn.predict(x);
    try {
      return y.toArray() as Float32Array;
    } finally {
      y.dispose();
    }
  };
}

function disposeBatches(batches: LongRangeBatch[]): void {
  for (const b of batches) {
    b.inputs.dispose();
    b.targets.dispose();
  }
}

/**
 * Trains on the task's stream (each step off the main thread, so that several models train at
 * once on the machine's cores); returns the loss and gradient-norm curves and the non-finite count.
 */
async function trainAdding(rnn: RNN, task: AddingProblem, s: { steps: number; batch: number; lr: number; optimizer: 'adam' | 'sgd'; clipNorm?: number; clipValue?: number }) {
  const optimizer = new Optimizer(rnn, { kind: s.optimizer });
  const loss: number[] = [];
  const gradNorm: number[] = [];
  const steps: number[] = [];
  let clipped = 0;
  let nonFinite = 0;
  for (let i = 1; i <= s.steps; i++) {
    const { inputs, targets } = task.batch(s.batch);
    try {
      const r = await rnn.trainStepAsync(inputs, targets, { lr: s.lr, optimizer, clipNorm: s.clipNorm, clipValue: s.clipValue });
      r.hT.dispose();
      r.cT?.dispose();
      steps.push(i);
      loss.push(r.loss);
      gradNorm.push(r.gradNorm);
      if (r.clipped) clipped++;
    } catch (err) {
      if (!(err instanceof NonFiniteError)) throw err;
      nonFinite++; // the step changed nothing; go on with the next batch
    } finally {
      inputs.dispose();
      targets.dispose();
    }
  }
  optimizer.dispose();
  return { steps, loss, gradNorm, clipped, nonFinite };
}

/** The test MSE with its standard error over the sequences (the mean is the task's own metric). */
function testMse(rnn: RNN, task: AddingProblem, test: LongRangeBatch[]): { mse: number; baseline_mse: number; standardError: number } {
  const predict = predictValues(rnn);
  const squared: number[] = [];
  for (const b of test) {
    const p = predict(b.inputs);
    const y = b.targets.toArray();
    for (let i = 0; i < y.length; i++) squared.push((p[i] - y[i]) ** 2);
  }
  const { mse, baseline_mse } = task.evaluate(predict, test);
  const variance = squared.reduce((v, e) => v + (e - mse) ** 2, 0) / Math.max(1, squared.length - 1);
  return { mse, baseline_mse, standardError: Math.sqrt(variance / squared.length) };
}

/** The per-lag gradient norm of the model's own loss on a batch, and its fitted decay per step. */
function perLag(rnn: RNN, batch: LongRangeBatch): { perLag: number[]; decay: number | null; spectralRadius: number[] } {
  const d = diagnose(rnn, batch.inputs, batch.targets, { truncate: [], jacobian: false });
  return { perLag: Array.from(d.perLag), decay: Number.isFinite(d.decayRate) ? d.decayRate : null, spectralRadius: d.spectralRadius };
}

function markdownTable(header: string[], rows: (string | number)[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/**
 * Runs the study and writes study.md (tables), study.html (tables and charts; self-contained)
 * and study.json (every number) to `out`.
 *
 * @throws Error naming the folder when it cannot be written.
 */
export async function runStudy(options: StudyOptions): Promise<StudyResult> {
  if (options === null || typeof options !== 'object' || typeof options.out !== 'string' || options.out === '') throw new TypeError('runStudy expects { out: folder, quick?, progress? }');
  try {
    fs.mkdirSync(options.out, { recursive: true });
  } catch (err) {
    throw new Error(`cannot create the study folder ${options.out}: ${(err as Error).message}`);
  }
  const quick = options.quick === true;
  const s = quick ? QUICK : FULL;
  const say = options.progress ?? (() => {});
  const started = Date.now();

  // 1 + 2. Adding problem: four models, four lengths; per-lag profiles at T = profileLength.
  const adding: AddingResult[] = [];
  const lossCurves = new Map<number, Curve[]>();
  const profiles: { name: string; when: 'initialisation' | 'after training'; perLag: number[] }[] = [];
  for (const T of s.lengths) {
    const test = addingProblem({ length: T, seed: 1_000_000 + T }).batches(Math.min(s.testSequences, 256), Math.max(1, Math.round(s.testSequences / 256)));
    const curves: Curve[] = [];
    // the four models train together (each an independent seeded run: the numbers do not depend on the interleaving)
    const runs = await Promise.all(
      MODELS.map(async (m) => {
        const t0 = Date.now();
        const rnn = new RNN({ inputSize: 2, hiddenSize: s.hidden, outputSize: 1, cell: m.cell, init: m.init, head: { kind: 'regress', positions: 'last' }, seed: 1 });
        const before = T === s.profileLength ? perLag(rnn, test[0]) : null;
        const task = addingProblem({ length: T, seed: T });
        const r = await trainAdding(rnn, task, { steps: s.steps, batch: s.batch, lr: s.lr, optimizer: 'adam', clipNorm: s.clipNorm });
        const metrics = testMse(rnn, task, test);
        const after = T === s.profileLength ? perLag(rnn, test[0]) : null;
        const row: AddingResult = {
          model: m.name,
          cell: m.cell,
          length: T,
          parameters: parameterCount(rnn),
          mse: metrics.mse,
          baseline_mse: metrics.baseline_mse,
          ratio: metrics.mse / metrics.baseline_mse,
          standardError: metrics.standardError,
          beats: metrics.baseline_mse - metrics.mse > 3 * metrics.standardError,
          decayInit: before?.decay ?? null,
          decayTrained: after?.decay ?? null,
          seconds: (Date.now() - t0) / 1000,
          nonFinite: r.nonFinite,
        };
        say(`adding T=${T} ${m.name}: test mse ${fmt(row.mse, 4)} (${fmt(row.ratio)} × baseline) in ${fmt(row.seconds)} s`);
        rnn.dispose();
        return { m, row, curve: { name: m.name, steps: r.steps, values: r.loss }, before, after };
      }),
    );
    for (const { m, row, curve, before, after } of runs) {
      adding.push(row);
      curves.push(curve);
      if (before && after) {
        profiles.push({ name: m.name, when: 'initialisation', perLag: before.perLag });
        profiles.push({ name: m.name, when: 'after training', perLag: after.perLag });
      }
    }
    lossCurves.set(T, curves);
    disposeBatches(test);
  }

  // 3. TBPTT(k, k) on the names language model, equal training tokens.
  const text = namesText(shuffled(defaultNames(), 1));
  const tokenizer = CharTokenizer.fromText(text);
  const { train, valid } = holdoutSplit(text, 0.1);
  const trainTokens = tokenizer.encode(train);
  const validTokens = tokenizer.encode(valid);
  const V = tokenizer.vocabSize;
  const W = s.lm.window;
  const B = s.lm.batch;
  const wx = new Int32Array(W * B);
  const wy = new Int32Array(W * B);
  const stride = Math.floor((validTokens.length - W - 1) / (B - 1));
  for (let b = 0; b < B; b++) for (let t = 0; t < W; t++) [wx[t * B + b], wy[t * B + b]] = [validTokens[b * stride + t], validTokens[b * stride + t + 1]];
  const windowX = Tensor.from(wx, [W, B]);
  const windowY = Tensor.from(wy, [W, B]);
  const truncation: TruncationResult[] = [];
  let biasCurve: { k: number; relativeError: number; cosine: number }[] = [];
  for (const k of s.lm.ks) {
    const rnn = new RNN({ inputSize: V, hiddenSize: s.lm.hidden, outputSize: V, seed: 1 });
    const updates = Math.max(1, Math.round(s.lm.tokens / (k * s.lm.batch)));
    const trainer = new Trainer(rnn, { k1: k, k2: k, lr: 2e-3, clipNorm: 5 });
    await trainer.fit(new StreamBatcher(trainTokens, s.lm.batch), { steps: updates });
    trainer.dispose();
    const loss = evaluate(rnn, validTokens, { batch: 32, seq: 64 }).loss;
    // the bias at the model's own k; for the longest k's model, at every k (k >= W is exact on these windows)
    const last = k === s.lm.ks[s.lm.ks.length - 1];
    const ks = [...new Set((last ? s.lm.ks : [k]).map((x) => Math.min(x, W)))];
    const d = diagnose(rnn, windowX, windowY, { truncate: ks, jacobian: false });
    const own = d.truncationBias.find((e) => e.k === Math.min(k, W))!;
    if (last) biasCurve = d.truncationBias.map((e) => ({ k: e.k, relativeError: e.relativeError, cosine: e.cosine }));
    truncation.push({ k, updates, loss, relativeError: own.relativeError, cosine: own.cosine });
    say(`TBPTT k=${k}: ${updates} updates, held-out loss ${fmt(loss, 4)} nats/char, bias at k: relative error ${fmt(own.relativeError)}, cosine ${fmt(own.cosine)}`);
    rnn.dispose();
  }
  windowX.dispose();
  windowY.dispose();

  // 4. Exploding gradients: W_hh = 1.5 × orthogonal, SGD, three clipping variants.
  const e = s.exploding;
  const explodingTest = addingProblem({ length: e.length, seed: 2_000_000 }).batches(Math.min(s.testSequences, 256), 1);
  const variants = [
    { variant: 'no clipping', clipNorm: undefined, clipValue: undefined },
    { variant: `clip norm ${e.clipNorm}`, clipNorm: e.clipNorm, clipValue: undefined },
    { variant: `clip value ${e.clipValue}`, clipNorm: undefined, clipValue: e.clipValue },
  ];
  const clipping: ClippingResult[] = [];
  const gradCurves: Curve[] = [];
  const explodingLoss: Curve[] = [];
  let explodingSpectralRadius = NaN;
  let explodingProfile: number[] = [];
  for (const v of variants) {
    const rnn = new RNN({ inputSize: 2, hiddenSize: e.hidden, outputSize: 1, cell: 'tanh', init: 'orthogonal', head: { kind: 'regress', positions: 'last' }, seed: 1 });
    const whh = rnn.params['rnn.weight_hh_l0'];
    whh.write((whh.toArray() as Float32Array).map((w) => 1.5 * w));
    const init = perLag(rnn, explodingTest[0]);
    explodingSpectralRadius = init.spectralRadius[0];
    explodingProfile = init.perLag;
    const task = addingProblem({ length: e.length, seed: 7 });
    const r = await trainAdding(rnn, task, { steps: e.steps, batch: s.batch, lr: e.lr, optimizer: 'sgd', clipNorm: v.clipNorm, clipValue: v.clipValue });
    const metrics = task.evaluate(predictValues(rnn), explodingTest);
    const sorted = [...r.gradNorm].sort((a, b) => a - b);
    clipping.push({
      variant: v.variant,
      medianGradNorm: sorted[Math.floor(sorted.length / 2)] ?? NaN,
      maxGradNorm: sorted[sorted.length - 1] ?? NaN,
      clipped: r.clipped / Math.max(1, r.steps.length),
      nonFinite: r.nonFinite,
      mse: metrics.mse,
      baseline_mse: metrics.baseline_mse,
    });
    gradCurves.push({ name: v.variant, steps: r.steps, values: r.gradNorm });
    explodingLoss.push({ name: v.variant, steps: r.steps, values: r.loss });
    say(`exploding (ρ = ${fmt(explodingSpectralRadius)}), ${v.variant}: median |g| ${fmt(clipping.at(-1)!.medianGradNorm)}, test mse ${fmt(metrics.mse, 4)}`);
    rnn.dispose();
  }
  disposeBatches(explodingTest);

  const seconds = (Date.now() - started) / 1000;
  const result = { quick, settings: s, adding, truncation, clipping, explodingSpectralRadius, seconds };
  const markdown = studyMarkdown(result);
  const files = { markdown: path.join(options.out, 'study.md'), html: path.join(options.out, 'study.html'), json: path.join(options.out, 'study.json') };
  const html = await studyHtml(result, { lossCurves, profiles, biasCurve, gradCurves, explodingLoss, explodingProfile });
  try {
    fs.writeFileSync(files.markdown, markdown);
    fs.writeFileSync(files.html, html);
    fs.writeFileSync(files.json, `${JSON.stringify(result, null, 1)}\n`);
  } catch (err) {
    throw new Error(`cannot write the study to ${options.out}: ${(err as Error).message}`);
  }
  say(`study written to ${files.markdown}, ${files.html} and ${files.json} in ${fmt(seconds)} s`);
  return { ...result, markdown, files };
}

type StudyNumbers = Omit<StudyResult, 'markdown' | 'files'>;

function addingRows(r: StudyNumbers): (string | number)[][] {
  return r.adding.map((a) => [a.model, a.length, a.parameters, `${fmt(a.mse, 4)} ± ${fmt(a.standardError, 2)}`, `${fmt(a.ratio)}`, a.beats ? `yes, ${fmt(100 * (1 - a.ratio), 3)} % lower` : 'no', a.decayInit === null ? '' : fmt(a.decayInit, 4), a.decayTrained === null ? '' : fmt(a.decayTrained, 4)]);
}
const ADDING_HEADER = ['model', 'T', 'parameters', 'test MSE', 'MSE / baseline', 'beats baseline', 'per-lag decay at init', 'after training'];
const TRUNCATION_HEADER = ['k', 'updates', 'held-out loss (nats/char)', 'relative error at k', 'cosine at k'];
const truncationRows = (r: StudyNumbers) => r.truncation.map((t) => [t.k, t.updates, fmt(t.loss, 4), fmt(t.relativeError), fmt(t.cosine)]);
const CLIPPING_HEADER = ['variant', 'median ‖g‖', 'max ‖g‖', 'updates clipped', 'non-finite steps', 'test MSE', 'MSE / baseline'];
const clippingRows = (r: StudyNumbers) => r.clipping.map((c) => [c.variant, fmt(c.medianGradNorm), fmt(c.maxGradNorm), `${fmt(100 * c.clipped)} %`, c.nonFinite, fmt(c.mse, 4), fmt(c.mse / c.baseline_mse)]);

function settingsText(r: StudyNumbers): string[] {
  const s = r.settings;
  return [
    `Adding problem: equal hidden size H = ${s.hidden} for every model (parameter counts in the table), one layer, regression head on the last step, Adam lr ${s.lr}, gradient norm clipped at ${s.clipNorm}, batch ${s.batch}, ${s.steps} updates; test MSE (± its standard error) on ${Math.max(1, Math.round(s.testSequences / 256)) * Math.min(s.testSequences, 256)} held-out sequences, "beats" meaning more than 3 standard errors below baseline MSE 1/6 ≈ ${fmt(ADDING_BASELINE_MSE, 4)} (predicting 1). Per-lag decay: diagnose()'s fitted factor per step of ‖∂L/∂h_{T−1−m}‖ at T = ${s.profileLength} (below 1: the gradient fades with the lag).`,
    `TBPTT: character language model of the first-name list (tanh RNN, H = ${s.lm.hidden}, Adam lr 2e-3, clip 5, batch ${s.lm.batch}), TBPTT(k, k) over ${s.lm.tokens} training tokens for every k; held-out loss on 10 % of the names; truncation bias of each trained model's gradient at its own k against full BPTT on ${s.lm.batch} held-out ${s.lm.window}-character windows (k ≥ ${s.lm.window} is exact there).`,
    `Exploding case: tanh RNN, H = ${s.exploding.hidden}, W_hh = 1.5 × a random orthogonal matrix (measured spectral radius ${fmt(r.explodingSpectralRadius, 4)}), adding problem T = ${s.exploding.length}, SGD lr ${s.exploding.lr}, batch ${s.batch}, ${s.exploding.steps} updates.`,
  ];
}

function studyMarkdown(r: StudyNumbers): string {
  const [a, t, c] = settingsText(r);
  return [
    `# bptt study${r.quick ? ' (quick)' : ''}`,
    '',
    `Run in ${fmt(r.seconds)} s.`,
    '',
    '## Adding problem',
    '',
    a,
    '',
    markdownTable(ADDING_HEADER, addingRows(r)),
    '',
    '## Truncated BPTT on a language model',
    '',
    t,
    '',
    markdownTable(TRUNCATION_HEADER, truncationRows(r)),
    '',
    '## Clipping the exploding case',
    '',
    c,
    '',
    markdownTable(CLIPPING_HEADER, clippingRows(r)),
    '',
  ].join('\n');
}

function curvePoints(curves: Curve[]): Point[] {
  return curves.flatMap((c) => {
    const d = downsample(c.steps, c.values, 200);
    return d.x.map((x, i) => ({ x, y: d.y[i], series: c.name }));
  });
}

async function studyHtml(
  r: StudyNumbers,
  c: {
    lossCurves: Map<number, Curve[]>;
    profiles: { name: string; when: string; perLag: number[] }[];
    biasCurve: { k: number; relativeError: number; cosine: number }[];
    gradCurves: Curve[];
    explodingLoss: Curve[];
    explodingProfile: number[];
  },
): Promise<string> {
  const [a, t, e] = settingsText(r);
  const p = (text: string) => `<p>${escapeHtml(text)}</p>`;
  const baseline = [{ y: ADDING_BASELINE_MSE, label: 'baseline 1/6' }];
  const addingCharts: LineChart[] = [
    {
      id: 'adding-mse',
      title: 'Adding problem: test MSE against T',
      xTitle: 'T',
      yTitle: 'test MSE (log)',
      logY: true,
      marks: 'line+point',
      points: r.adding.map((x) => ({ x: x.length, y: x.mse, series: x.model })),
      yRules: baseline,
    },
    ...[...c.lossCurves].map(([T, curves]) => ({ id: `adding-loss-${T}`, title: `Adding problem, T = ${T}: training loss`, xTitle: 'update', yTitle: 'MSE (log)', logY: true, points: curvePoints(curves), yRules: baseline })),
  ];
  const profileCharts: LineChart[] = (['initialisation', 'after training'] as const).map((when) => ({
    id: `per-lag-${when === 'initialisation' ? 'init' : 'trained'}`,
    title: `Gradient norm by lag at T = ${r.settings.profileLength}, ${when}: ‖∂L/∂h_{T−1−m}‖`,
    xTitle: 'lag m (steps before the last)',
    yTitle: 'norm (log)',
    logY: true,
    points: c.profiles.filter((x) => x.when === when).flatMap((x) => x.perLag.map((y, m) => ({ x: m, y, series: x.name }))),
  }));
  const truncationCharts: LineChart[] = [
    { id: 'tbptt-loss', title: 'TBPTT(k, k): held-out loss against k', xTitle: 'k', yTitle: 'nats per character', marks: 'line+point', points: r.truncation.map((x) => ({ x: x.k, y: x.loss, series: 'held-out loss' })) },
    {
      id: 'tbptt-bias',
      title: 'Truncation bias against k',
      subtitle: `each model at its own k, and the k = ${r.settings.lm.ks.at(-1)} model at every k`,
      xTitle: 'k',
      yTitle: 'relative error / cosine',
      marks: 'line+point',
      points: [
        ...r.truncation.map((x) => ({ x: Math.min(x.k, r.settings.lm.window), y: x.relativeError, series: 'relative error, own model' })),
        ...r.truncation.map((x) => ({ x: Math.min(x.k, r.settings.lm.window), y: x.cosine, series: 'cosine, own model' })),
        ...c.biasCurve.map((x) => ({ x: x.k, y: x.relativeError, series: `relative error, k = ${r.settings.lm.ks.at(-1)} model` })),
        ...c.biasCurve.map((x) => ({ x: x.k, y: x.cosine, series: `cosine, k = ${r.settings.lm.ks.at(-1)} model` })),
      ],
    },
  ];
  const clippingCharts: LineChart[] = [
    { id: 'exploding-per-lag', title: 'Exploding case at initialisation: gradient norm by lag', xTitle: 'lag m', yTitle: 'norm (log)', logY: true, points: c.explodingProfile.map((y, m) => ({ x: m, y, series: 'ρ(W_hh) = 1.5' })) },
    { id: 'exploding-grad-norm', title: 'Exploding case: gradient norm before clipping', xTitle: 'update', yTitle: '‖g‖ (log)', logY: true, points: curvePoints(c.gradCurves) },
    { id: 'exploding-loss', title: 'Exploding case: training loss', xTitle: 'update', yTitle: 'MSE (log)', logY: true, points: curvePoints(c.explodingLoss), yRules: baseline },
  ];
  const sections: PageSection[] = [
    { heading: 'Adding problem', html: p(a) + htmlTable(ADDING_HEADER, addingRows(r)), charts: addingCharts },
    { heading: 'Gradient norm by lag', charts: profileCharts },
    { heading: 'Truncated BPTT on a language model', html: p(t) + htmlTable(TRUNCATION_HEADER, truncationRows(r)), charts: truncationCharts },
    { heading: 'Clipping the exploding case', html: p(e) + htmlTable(CLIPPING_HEADER, clippingRows(r)), charts: clippingCharts },
  ];
  return renderPage(`bptt study${r.quick ? ' (quick)' : ''}`, p(`Run in ${fmt(r.seconds)} s.`), sections);
}
