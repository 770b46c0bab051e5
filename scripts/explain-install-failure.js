// The install script's last word when node-gyp-build could neither load a prebuilt binary nor
// compile one (node-gyp's output is above this): says what was looked for, where, and how to fix
// it, and fails the install. The loader (dist/native.js) writes the diagnosis, so that install
// and run time say the same thing.
'use strict';
const fs = require('fs');
const path = require('path');

const loader = path.join(__dirname, '..', 'dist', 'native.js');
let diagnosis;
try {
  // A source checkout has no dist/ until its "prepare" script runs, after this one.
  if (!fs.existsSync(loader)) throw new Error('Compiling needs a C++17 compiler, make and python3.');
  require(loader).loadAddon(path.resolve(__dirname, '..'));
  diagnosis =
    'Compiling from source was asked for (--build-from-source) and failed, but a prebuilt binary of this package loads on this machine: ' +
    'install without --build-from-source to use it, or install what node-gyp needs (a C++17 compiler, make and python3).';
} catch (err) {
  diagnosis = err.message;
}
console.error(`\nbptt: the native addon could not be installed: compiling from source failed (node-gyp's output is above).\n${diagnosis}\n`);
process.exit(1);
