/**
 * The HTML report in a real browser: Debian's headless Chromium driven by playwright-core opens
 * the file with a fresh profile and no network services; no console message of type error, no
 * page error, no request other than the file itself (so nothing fails to load and nothing is
 * fetched), and every expected chart is an SVG with drawn marks. A report missing data shows the
 * notes instead. Without /usr/bin/chromium these tests FAIL, saying how to install it.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { renderReport, type ReportInput } from '../lib/diagnostics/report';
import { launch, type Browser, type Opened } from './helpers/browser';
import { ALL_CHARTS, fullDiagnosis, fullLog } from './helpers/report-fixtures';

jest.setTimeout(120_000);

let dir: string;
let browser: Browser | null = null;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-report-browser-'));
  browser = await launch();
});

afterAll(async () => {
  await browser?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function open(input: ReportInput, name: string): Promise<Opened> {
  if (browser === null) throw new Error('no browser (see the first failure)');
  const file = path.join(dir, `${name}.html`);
  fs.writeFileSync(file, await renderReport(input));
  return browser.open(file);
}

test('the full report opens without errors or requests, every chart an SVG with marks', async () => {
  const r = await open({ diagnosis: fullDiagnosis(), log: fullLog(), checkpoint: { file: 'model.safetensors' } }, 'full');
  expect(r.problems).toEqual([]);
  expect(Object.keys(r.charts)).toEqual(ALL_CHARTS);
  for (const id of ALL_CHARTS) {
    expect([id, r.charts[id].marks > 0]).toEqual([id, true]);
    expect(r.charts[id].width).toBeGreaterThan(100);
    expect(r.charts[id].height).toBeGreaterThan(100);
  }
  expect(r.omitted).toEqual([]);
});

test('without a log the training charts are notes, the diagnosis charts are drawn', async () => {
  const d = fullDiagnosis();
  delete d.jacobian;
  const r = await open({ diagnosis: d }, 'diagnosis-only');
  expect(r.problems).toEqual([]);
  expect(Object.keys(r.charts)).toEqual(['per-lag', 'truncation-bias', 'spectral-radius']);
  for (const id of Object.keys(r.charts)) expect(r.charts[id].marks).toBeGreaterThan(0);
  expect(r.omitted).toEqual(['loss', 'grad-norm', 'clip-rate', 'jacobian']);
});
