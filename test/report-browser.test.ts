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
import { chromium, type BrowserContext } from 'playwright-core';
import { renderReport, type ReportInput } from '../lib/diagnostics/report';
import { ALL_CHARTS, fullDiagnosis, fullLog } from './helpers/report-fixtures';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

jest.setTimeout(120_000);

let dir: string;
let context: BrowserContext | null = null;

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: the browser test needs Debian's chromium. Install it with \`apt-get install -y --no-install-recommends chromium\` (CI does this in .ci/run).`);
  }
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-report-browser-'));
  context = await chromium.launchPersistentContext(path.join(dir, 'profile'), { executablePath: CHROMIUM, headless: true, args: FLAGS });
});

afterAll(async () => {
  await context?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

interface Opened {
  problems: string[];
  charts: Record<string, { marks: number; width: number; height: number }>;
  omitted: string[];
}

async function open(input: ReportInput, name: string): Promise<Opened> {
  if (context === null) throw new Error('no browser (see the first failure)');
  const file = path.join(dir, `${name}.html`);
  fs.writeFileSync(file, await renderReport(input));
  const url = `file://${file}`;
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`failed request: ${r.url()} ${r.failure()?.errorText}`));
  page.on('request', (r) => {
    if (r.url() !== url) problems.push(`request other than the report: ${r.url()}`);
  });
  try {
    const response = await page.goto(url, { waitUntil: 'load' });
    if (response !== null && !response.ok()) problems.push(`the report did not load: ${response.status()}`);
    const charts = await page.$$eval('figure.chart', (figures) =>
      Object.fromEntries(
        figures.map((f) => {
          const svg = f.querySelector('svg');
          const box = svg?.getBoundingClientRect();
          // vega gives data marks the class role-mark; count their drawn children
          const marks = svg === null ? 0 : svg.querySelectorAll('g.role-mark > path, g.role-mark > line, g.role-mark > rect, g.role-mark > text').length;
          return [f.getAttribute('data-chart') ?? '', { marks, width: box?.width ?? 0, height: box?.height ?? 0 }];
        }),
      ),
    );
    const omitted = await page.$$eval('p.omitted', (ps) => ps.map((p) => p.getAttribute('data-omitted') ?? ''));
    return { problems, charts, omitted };
  } finally {
    await page.close();
  }
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
