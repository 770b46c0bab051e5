/**
 * The quick study end to end (what `npm run study -- OUT --quick` runs): every table row is there
 * and consistent with its definition (baseline 1/6, ratio = mse / baseline, "beats" = more than 3
 * standard errors below, parameter counts of each cell), the exploding model's spectral radius is
 * 1.5, truncation at k >= the window is exact, norm clipping clips, the files are written and the
 * HTML opens in headless Chromium without errors with every chart drawn.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runStudy, type StudyResult } from '../lib/study';
import { launch } from './helpers/browser';

jest.setTimeout(600_000);

let dir: string;
let result: StudyResult;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-study-'));
  result = await runStudy({ out: path.join(dir, 'out'), quick: true });
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const MODELS = ['tanh RNN', 'IRNN', 'LSTM', 'GRU'];
const GATES: Record<string, number> = { tanh: 1, relu: 1, lstm: 4, gru: 3 };

test('adding problem: four models at four lengths, consistent rows', () => {
  expect(result.adding.map((r) => [r.length, r.model])).toEqual([50, 100, 200, 400].flatMap((T) => MODELS.map((m) => [T, m])));
  const H = result.settings.hidden;
  for (const r of result.adding) {
    expect(r.baseline_mse).toBe(1 / 6);
    expect(Number.isFinite(r.mse) && r.mse >= 0).toBe(true);
    expect(r.ratio).toBeCloseTo(r.mse / r.baseline_mse, 12);
    expect(r.standardError).toBeGreaterThan(0);
    expect(r.beats).toBe(r.baseline_mse - r.mse > 3 * r.standardError);
    // one layer, input 2, a 1-wide linear head: gates · (H·2 + H·H + 2H) + H + 1
    expect(r.parameters).toBe(GATES[r.cell] * (H * 2 + H * H + 2 * H) + H + 1);
    const profiled = r.length === result.settings.profileLength;
    expect([r.model, r.decayInit !== null, r.decayTrained !== null]).toEqual([r.model, profiled, profiled]);
  }
});

test('TBPTT: one row per k, exact at k >= the window, bias in range', () => {
  expect(result.truncation.map((t) => t.k)).toEqual(result.settings.lm.ks);
  for (const t of result.truncation) {
    expect(t.loss).toBeGreaterThan(0);
    expect(t.loss).toBeLessThan(Math.log(60)); // better than uniform over the vocabulary
    expect(t.relativeError).toBeGreaterThanOrEqual(0);
    expect(Math.abs(t.cosine)).toBeLessThanOrEqual(1 + 1e-9);
    if (t.k >= result.settings.lm.window) expect([t.k, t.relativeError, t.cosine]).toEqual([t.k, 0, 1]);
    else expect(t.relativeError).toBeGreaterThan(0);
  }
});

test('exploding case: spectral radius 1.5; norm clipping clips', () => {
  expect(result.explodingSpectralRadius).toBeCloseTo(1.5, 4);
  expect(result.clipping.map((c) => c.variant)).toEqual(['no clipping', 'clip norm 1', 'clip value 0.1']);
  expect(result.clipping[0].clipped).toBe(0);
  expect(result.clipping[1].clipped).toBeGreaterThan(0);
});

test('study.md, study.json and a self-contained study.html that opens without errors, every chart drawn', async () => {
  const md = fs.readFileSync(result.files.markdown, 'utf8');
  expect(md).toBe(result.markdown);
  for (const r of result.adding) expect(md).toMatch(new RegExp(`^\\| ${r.model} \\| ${r.length} \\| ${r.parameters} \\|`, 'm'));
  const json = JSON.parse(fs.readFileSync(result.files.json, 'utf8'));
  expect(json.adding).toHaveLength(16);
  const html = fs.readFileSync(result.files.html, 'utf8');
  expect(html).not.toMatch(/<script|<link|<img/i);
  const browser = await launch();
  try {
    const page = await browser.open(result.files.html);
    expect(page.problems).toEqual([]);
    const expected = ['adding-mse', 'adding-loss-50', 'adding-loss-100', 'adding-loss-200', 'adding-loss-400', 'per-lag-init', 'per-lag-trained', 'tbptt-loss', 'tbptt-bias', 'exploding-per-lag', 'exploding-grad-norm', 'exploding-loss'];
    expect(Object.keys(page.charts)).toEqual(expected);
    for (const id of expected) expect([id, page.charts[id].marks > 0]).toEqual([id, true]);
  } finally {
    await browser.close();
  }
});

test('bad options are typed errors', async () => {
  await expect(runStudy({} as never)).rejects.toThrow(TypeError);
  const file = path.join(dir, 'a-file');
  fs.writeFileSync(file, '');
  await expect(runStudy({ out: path.join(file, 'sub'), quick: true })).rejects.toThrow(/cannot create the study folder/);
});
