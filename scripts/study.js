#!/usr/bin/env node
/**
 * `npm run study -- [OUT] [--quick]`: runs the remedies study (lib/study.ts) and writes study.md,
 * study.html and study.json to OUT (default study-out). Needs the built package (npm run
 * build:ts, which `npm run study` does first).
 */
'use strict';
const path = require('path');

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const rest = args.filter((a) => a !== '--quick');
const outFlag = rest.indexOf('--out');
const out = outFlag >= 0 ? rest[outFlag + 1] : rest[0] ?? 'study-out';
const unknown = rest.filter((a, i) => a.startsWith('-') && !(a === '--out' && i === outFlag));
if (unknown.length > 0 || out === undefined || rest.length > (outFlag >= 0 ? 2 : 1)) {
  console.error('usage: npm run study -- [OUT | --out OUT] [--quick]');
  process.exit(2);
}

const { runStudy } = require(path.join(__dirname, '..', 'dist', 'study.js'));
runStudy({ out, quick, progress: (line) => console.error(line) }).then(
  (r) => {
    process.stdout.write(r.markdown);
  },
  (err) => {
    console.error(`study: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
