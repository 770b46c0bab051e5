/**
 * `bptt diagnose` of classify and forecast checkpoints trained through the CLI: the JSON line is
 * diagnose()'s JSON of the batch the command documents (evenly spread windows / examples of FILE,
 * or of the default data's test part, through the checkpoint's own normalisation or encoder),
 * rebuilt here independently; --out writes the report; data the checkpoint cannot read is an error.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runCli } from './helpers/cli';
import { diagnose, diagnosisToJson } from '../lib/diagnostics/diagnose';
import { loadCheckpoint } from '../lib/train/checkpoint';
import { ForecastPipeline } from '../lib/tasks/forecast';
import { readSeriesCsv, seriesColumn } from '../lib/tasks/series';
import { SequenceEncoder } from '../lib/tasks/sequences';
import { birthsForecast, nameGenderTask } from '../lib/tasks/defaults';
import { Tensor } from '../lib/tensor';

const run = runCli;

test("importing the package loads none of the CLI: runDiagnose loads the task readers when a checkpoint needs them", () => {
  jest.isolateModules(() => {
    jest.doMock('../lib/cli/common', () => {
      throw new Error('lib/cli/common was loaded');
    });
    expect(() => require('../lib')).not.toThrow();
  });
});

async function train(...argv: string[]): Promise<void> {
  const t = await run('train', ...argv, '--cell', 'gru', '--hidden', '6', '--seed', '3', '--json');
  if (t.code !== 0) throw new Error(`training failed: ${t.err}`);
}

/** The one JSON line a --json command printed. */
function jsonLine(out: string): Record<string, unknown> {
  const lines = out.split('\n').filter((l) => l.trim() !== '');
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]);
}

/** B of n indices, evenly spread, first and last included. */
function spreadIndices(n: number, B: number): number[] {
  return Array.from({ length: B }, (_, b) => Math.floor((b * (n - 1)) / (B - 1)));
}

/** The truncation lengths diagnose takes by default: 1, 2, 4, ... below T, and the run's k. */
function defaultKs(T: number, runK: number | null = null): number[] {
  const ks: number[] = [];
  for (let k = 1; k < T; k *= 2) ks.push(k);
  if (runK !== null && runK < T && !ks.includes(runK)) ks.push(runK);
  return ks.sort((a, b) => a - b);
}

/** diagnose()'s JSON of a checkpoint's model on a batch. */
function expected(checkpoint: string, x: Tensor, y: Tensor, truncate: number[], lengths?: Int32Array): Record<string, unknown> {
  const rnn = loadCheckpoint(checkpoint).rnn;
  try {
    return diagnosisToJson(diagnose(rnn, x, y, { truncate, ...(lengths ? { lengths } : {}) }));
  } finally {
    rnn.dispose();
    x.dispose();
    y.dispose();
  }
}

function expectSameDiagnosis(got: Record<string, unknown>, want: Record<string, unknown>, T: number): void {
  expect(got.perLag).toHaveLength(T);
  expect((got.perLag as number[]).every((v) => Number.isFinite(v)) && (got.perLag as number[]).some((v) => v > 0)).toBe(true);
  expect(got.perLag).toEqual(want.perLag);
  expect(got.truncationBias).toEqual(want.truncationBias);
  expect(got.spectralRadius).toEqual(want.spectralRadius);
  expect(got.jacobian).toEqual(want.jacobian);
}

let dir: string;
let series: string;
let texts: string;
const W = 12;
const HORIZON = 3;
const ROWS = 150;
const textRows: { text: string; label: string }[] = [];

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-diagnose-tasks-'));
  series = path.join(dir, 'series.csv');
  const rows = ['date,sales,dow'];
  for (let t = 0; t < ROWS; t++) rows.push(`d${t},${(100 + 20 * Math.sin((2 * Math.PI * t) / 7) + 0.1 * t).toFixed(3)},${(t % 7) + 1}`);
  fs.writeFileSync(series, `${rows.join('\n')}\n`);
  texts = path.join(dir, 'texts.jsonl');
  for (let i = 0; i < 60; i++) {
    const label = i % 3 === 0 ? 'b' : 'a';
    textRows.push({ text: label.repeat(2 + (i % 5)) + 'xy'.slice(0, i % 3), label });
  }
  fs.writeFileSync(texts, `${textRows.map((r) => JSON.stringify(r)).join('\n')}\n`);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('bptt diagnose of a forecast checkpoint', () => {
  const ck = () => path.join(dir, 'fc.safetensors');
  beforeAll(() => train('--task', 'forecast', series, '--column', 'sales', '--covariates', 'dow:onehot', '--window', String(W), '--horizon', String(HORIZON), '--season', '7', '--epochs', '1', '--truncate', '5', '--out', ck()));

  test("--json: diagnose()'s JSON of --batch windows spread evenly over FILE, normalised as in training; the run's k joins the list", async () => {
    const B = 5;
    const d = await run('diagnose', ck(), series, '--json', '--batch', String(B));
    expect(d.err).toBe('');
    expect(d.code).toBe(0);
    const got = jsonLine(d.out);
    // the batch, rebuilt from the CSV and the pipeline in the checkpoint
    const task = loadCheckpoint(ck()).task!;
    const p = ForecastPipeline.deserialize(JSON.stringify(task.pipeline));
    const table = await readSeriesCsv(series, { columns: ['sales', 'dow'], fill: 'none' });
    const sales = seriesColumn(table, 'sales');
    const origins = spreadIndices(ROWS - W - HORIZON + 1, B).map((i) => W + i);
    expect(origins[B - 1]).toBe(ROWS - HORIZON); // the last window's targets are the last rows
    const targets = new Float32Array(B * HORIZON);
    origins.forEach((o, b) => {
      for (let h = 0; h < HORIZON; h++) targets[b * HORIZON + h] = (sales[o + h] - p.targets[0].mean) / p.targets[0].std;
    });
    const ks = defaultKs(W, 5);
    expect(got.truncationBias).toEqual(expect.arrayContaining([expect.objectContaining({ k: 5 })]));
    const want = expected(ck(), Tensor.from(p.inputs(table, origins), [W, B, p.inputSize]), Tensor.from(targets, [B, HORIZON]), ks);
    expectSameDiagnosis(got, want, W);
  });

  test('--out writes the report; the summary says what was diagnosed', async () => {
    const out = path.join(dir, 'fc.html');
    const d = await run('diagnose', ck(), series, '--batch', '4', '--out', out);
    expect(d.code).toBe(0);
    expect(d.out).toMatch(new RegExp(`^diagnosed on +4 windows of ${W} steps \\(${HORIZON} ahead\\) of .*series\\.csv$`, 'm'));
    const html = fs.readFileSync(out, 'utf8');
    for (const id of ['per-lag', 'jacobian', 'truncation-bias', 'spectral-radius']) expect(html).toContain(`data-chart="${id}"`);
  });

  test('a file too short for one window, or without the columns, is a one-line error and no report', async () => {
    const short = path.join(dir, 'short.csv');
    fs.writeFileSync(short, `date,sales,dow\n${Array.from({ length: W + HORIZON - 1 }, (_, t) => `d${t},1,${(t % 7) + 1}`).join('\n')}\n`);
    const out = path.join(dir, 'never.html');
    const d = await run('diagnose', ck(), short, '--out', out);
    expect(d.code).toBe(1);
    expect(d.err).toMatch(new RegExp(`short\\.csv has ${W + HORIZON - 1} rows`));
    const other = path.join(dir, 'other.csv');
    fs.writeFileSync(other, 'date,visits\nd0,1\nd1,2\n');
    expect((await run('diagnose', ck(), other, '--out', out)).code).toBe(1);
    // without FILE: the default births series, which this model was not trained on
    const d2 = await run('diagnose', ck(), '--out', out);
    expect(d2.code).toBe(1);
    expect(d2.err).toMatch(/other data than the default births series/);
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe('bptt diagnose of a classify checkpoint', () => {
  const ck = () => path.join(dir, 'cl.safetensors');
  beforeAll(() => train('--task', 'classify', texts, '--epochs', '1', '--out', ck()));

  test("--json: diagnose()'s JSON of --batch examples spread evenly over FILE, encoded with the checkpoint's encoder, padded with their lengths", async () => {
    const B = 6;
    const d = await run('diagnose', ck(), texts, '--json', '--batch', String(B));
    expect(d.err).toBe('');
    expect(d.code).toBe(0);
    const got = jsonLine(d.out);
    const encoder = SequenceEncoder.deserialize(JSON.stringify(loadCheckpoint(ck()).task!.encoder));
    const picked = spreadIndices(textRows.length, B).map((i) => textRows[i]);
    const ids = picked.map((r) => encoder.encodeText(r.text));
    const lengths = Int32Array.from(ids, (s) => s.length);
    const T = Math.max(...lengths);
    expect(new Set(lengths).size).toBeGreaterThan(1); // a padded batch
    const x = new Int32Array(T * B);
    ids.forEach((s, b) => s.forEach((id, t) => (x[t * B + b] = id)));
    const y = Int32Array.from(picked, (r) => encoder.labels.indexOf(r.label));
    const want = expected(ck(), Tensor.from(x, [T, B]), Tensor.from(y, [B]), defaultKs(T), lengths);
    expectSameDiagnosis(got, want, T);
  });

  test('--out writes the report; a checkpoint of other labels needs its FILE', async () => {
    const out = path.join(dir, 'cl.html');
    const d = await run('diagnose', ck(), texts, '--batch', '3', '--out', out);
    expect(d.code).toBe(0);
    expect(d.out).toMatch(/^diagnosed on +3 examples of .*texts\.jsonl, up to \d+ steps$/m);
    expect(fs.readFileSync(out, 'utf8')).toContain('data-chart="per-lag"');
    const d2 = await run('diagnose', ck());
    expect(d2.code).toBe(1);
    expect(d2.err).toMatch(/classifies a, b, not the default first names' female, male/);
  });
});

describe('bptt diagnose without FILE: the test part of the default data, as training split it', () => {
  test('forecast: windows of the births test part', async () => {
    const ck = path.join(dir, 'births.safetensors');
    await train('--task', 'forecast', '--steps', '1', '--batch', '8', '--out', ck);
    const B = 3;
    const d = await run('diagnose', ck, '--json', '--batch', String(B));
    expect(d.code).toBe(0);
    const got = jsonLine(d.out);
    const births = birthsForecast();
    const test = births.origins('test');
    const batch = births.batch(spreadIndices(test.length, B).map((i) => test[i]));
    const { steps: T, horizon: H } = batch;
    const rows = new Float32Array(B * H);
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) rows[b * H + h] = batch.targets[h * B + b];
    const want = expected(ck, Tensor.from(batch.input.data, [T, B, batch.inputSize]), Tensor.from(rows, [B, H]), defaultKs(T));
    expectSameDiagnosis(got, want, T);
  });

  test('classify: examples of the first names test part of the run\'s seed', async () => {
    const ck = path.join(dir, 'names.safetensors');
    await train('--task', 'classify', '--steps', '1', '--batch', '8', '--out', ck);
    const B = 4;
    const d = await run('diagnose', ck, '--json', '--batch', String(B));
    expect(d.code).toBe(0);
    const got = jsonLine(d.out);
    const { test } = nameGenderTask(3);
    const picked = spreadIndices(test.count, B);
    const lengths = Int32Array.from(picked, (i) => test.offsets[i + 1] - test.offsets[i]);
    const T = Math.max(...lengths);
    const x = new Int32Array(T * B);
    picked.forEach((i, b) => {
      for (let t = 0; t < lengths[b]; t++) x[t * B + b] = (test.data as Int32Array)[test.offsets[i] + t];
    });
    const want = expected(ck, Tensor.from(x, [T, B]), Tensor.from(Int32Array.from(picked, (i) => test.labels[i]), [B]), defaultKs(T), lengths);
    expectSameDiagnosis(got, want, T);
  });
});
