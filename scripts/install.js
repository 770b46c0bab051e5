// npm's install step for bptt. When the package holds a prebuilt binary for this machine that
// loads (node-gyp-build tries it in a child process), there is nothing to do; otherwise, or with
// `npm install --build-from-source`, node-gyp-build compiles the addon with node-gyp. A build
// already in build/ does not count (PREBUILDS_ONLY): a source checkout, which has no prebuilt
// binary, compiles on every `npm ci`, so it never keeps an addon older than its sources.
// When compiling fails too, this says what was looked for, where, and how to fix it, and fails the
// install; the loader (dist/native.js) writes that diagnosis, so install and run time agree.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const build = spawnSync(process.execPath, [require.resolve('node-gyp-build/bin.js')], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, PREBUILDS_ONLY: '1' },
});
if (build.status === 0) process.exit(0);

const loader = path.join(root, 'dist', 'native.js');
let diagnosis;
try {
  // A source checkout has no dist/ until its "prepare" script runs, after this one.
  if (!fs.existsSync(loader)) throw new Error('Compiling needs a C++17 compiler, make and python3.');
  require(loader).loadAddon(root);
  diagnosis =
    'Compiling from source was asked for (--build-from-source) and failed, but a prebuilt binary of this package loads on this machine: ' +
    'install without --build-from-source to use it, or install what node-gyp needs (a C++17 compiler, make and python3).';
} catch (err) {
  diagnosis = err.message;
}
console.error(`\nbptt: the native addon could not be installed: compiling from source failed (node-gyp's output is above).\n${diagnosis}\n`);
process.exit(1);
