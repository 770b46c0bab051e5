/**
 * Opens HTML files in Debian's headless Chromium (playwright-core, a fresh profile, no network
 * services) and reports what a reader would hit: console errors, page errors, failed requests,
 * requests for anything but the file itself, and each chart figure's SVG marks and size.
 * Without /usr/bin/chromium, `launch` throws saying how to install it: the tests fail, they do
 * not skip.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { chromium, type BrowserContext } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface Opened {
  problems: string[];
  charts: Record<string, { marks: number; width: number; height: number }>;
  omitted: string[];
}

export interface Browser {
  open(file: string): Promise<Opened>;
  close(): Promise<void>;
}

export async function launch(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: the browser test needs Debian's chromium. Install it with \`apt-get install -y --no-install-recommends chromium\` (CI does this in .ci/run).`);
  }
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS });
  } catch (err) {
    fs.rmSync(profile, { recursive: true, force: true });
    throw err;
  }
  return {
    async open(file: string): Promise<Opened> {
      const url = `file://${path.resolve(file)}`;
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
    },
    async close(): Promise<void> {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}
