/**
 * The API reference keeps its promise: every name lib/index.ts exports has a doc comment with an
 * @example code block, every example (of the exports, their public members and the package's
 * @module comment) type-checks against lib/*.ts and runs without throwing, and TypeDoc builds the
 * reference without a warning.
 *
 * scripts/doc-examples.js does the extracting, type-checking and running (`npm run
 * docs:examples`) in a child process: a plain Node realm, as users run the examples (Jest's vm
 * realm differs, e.g. it has no Symbol.dispose for `using`), and a crash there fails these tests
 * instead of taking Jest down. Each example is reported as its own test.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';

const REPO = path.resolve(__dirname, '..');

interface ExampleReport {
  owner: string;
  where: string;
  code: string;
  typeErrors: string | null;
  ran: boolean;
  error: string | null;
  output: string;
  ms: number;
}

interface Report {
  names: string[];
  withoutExample: string[];
  examples: ExampleReport[];
}

function runScript(file: string, args: string[]) {
  return spawnSync(process.execPath, [path.join(REPO, 'scripts', file), ...args], { cwd: REPO, encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 });
}

const run = runScript('doc-examples.js', ['--json']);
let report: Report | null = null;
try {
  report = JSON.parse(run.stdout) as Report;
} catch {
  // reported by the first test
}

describe('the API reference', () => {
  test('scripts/doc-examples.js reports on every example', () => {
    expect(report === null ? `no report (exit ${run.status ?? run.signal})\n${run.stderr.slice(-3000)}` : 'report').toBe('report');
  });

  test('every exported name has a doc comment with an @example code block', () => {
    expect(report!.names.length).toBeGreaterThan(100);
    expect(report!.withoutExample).toEqual([]);
  });

  // (test.each refuses an empty table; without a report the first test says why.)
  const examples = report?.examples ?? [];
  if (examples.length > 0) {
    test.each(examples.map((e) => [`${e.owner} (${e.where})`, e] as const))('example of %s type-checks and runs', (_, e) => {
      const problem = e.typeErrors ?? e.error;
      expect(problem === null ? 'ran' : `${problem}\n--- example ---\n${e.code}\n--- its output ---\n${e.output}`).toBe('ran');
      expect(e.ran).toBe(true);
    });
  }

  test('`npm run docs:check`: TypeDoc converts and validates without a warning and sees every example', () => {
    const r = runScript('check-doc-examples.mjs', []);
    expect(r.status === 0 ? 'exit 0' : `exit ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`).toBe('exit 0');
  });
});
