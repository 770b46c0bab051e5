// Builds the prebuilt binary that the npm package ships (`npm pack` runs this as "prepack"):
// prebuilds/linux-x64/node.napi.glibc.node, named as node-gyp-build's loader looks for it. One
// Node-API binary serves every Node version with Node-API 8, and its kernels pick AVX-512, AVX2 or
// scalar code at run time, so one file serves every x86-64 Linux machine with a recent enough glibc.
//
// It compiles a clean copy of binding.gyp and native/ in build-prebuilt/ (so the developer's
// build/ is left alone) with the flags of native/sources.json and nothing from the environment,
// plus binding.gyp's bptt_prebuilt link options: libstdc++ linked in and hidden (the binary does
// not depend on the user's libstdc++ version), unused sections dropped, symbols stripped. Then it
// checks what the binary asks of the system (objdump -T / -p) against what we promise, copies it
// into prebuilds/ and loads it in a child process.
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

// The oldest glibc the shipped binary runs on. Building on a newer system can bind newer symbol
// versions (e.g. C23's __isoc23_strtol@GLIBC_2.38); the check below then stops the pack.
const OLDEST_GLIBC = '2.34';
// Shared libraries the binary may need: glibc's own and libgcc_s (present wherever Node runs).
const ALLOWED_NEEDED = ['libc.so.6', 'libm.so.6', 'libgcc_s.so.1', 'ld-linux-x86-64.so.2', 'libpthread.so.0', 'libdl.so.2'];

const root = path.resolve(__dirname, '..');
const stage = path.join(root, 'build-prebuilt');
const target = path.join(root, 'prebuilds', 'linux-x64', 'node.napi.glibc.node');

function fail(message) {
  console.error(`prebuild: ${message}`);
  process.exit(1);
}

function compareVersions(a, b) {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  }
  return 0;
}

function checkPlatform() {
  const glibc = process.report.getReport().header.glibcVersionRuntime;
  if (process.platform !== 'linux' || process.arch !== 'x64' || !glibc) {
    fail(`the package ships a linux-x64 glibc binary, which is built on linux-x64 with glibc; this is ${process.platform}-${process.arch}${glibc ? '' : ' without glibc'}`);
  }
}

// Runtime ISA dispatch is the point: the portable code must not be compiled for the build
// machine's CPU, and only the per-ISA kernel files get -m flags, never -march/-mtune.
function checkFlags() {
  const sources = JSON.parse(fs.readFileSync(path.join(root, 'native', 'sources.json'), 'utf8'));
  const portable = sources.flags.filter((f) => f.startsWith('-m'));
  if (portable.length > 0) fail(`native/sources.json "flags" apply to the portable code and must not select an ISA, got ${portable.join(' ')}`);
  const pinned = [...sources.flags, ...sources.avx2_flags, ...sources.avx512_flags].filter((f) => /^-m(arch|tune|cpu)=/.test(f));
  if (pinned.length > 0) fail(`native/sources.json must not pin a CPU (the kernels are chosen at run time), got ${pinned.join(' ')}`);
}

function build() {
  fs.rmSync(stage, { recursive: true, force: true });
  fs.mkdirSync(stage);
  fs.copyFileSync(path.join(root, 'binding.gyp'), path.join(stage, 'binding.gyp'));
  fs.cpSync(path.join(root, 'native'), path.join(stage, 'native'), { recursive: true });
  const env = { ...process.env };
  for (const name of ['CFLAGS', 'CXXFLAGS', 'CPPFLAGS', 'LDFLAGS']) delete env[name];
  // Node's own headers where it has them (npm passes its nodedir setting otherwise), so that
  // node-gyp has nothing to download.
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (!env.npm_config_nodedir && fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) env.npm_config_nodedir = prefix;
  const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');
  const args = [nodeGyp, 'rebuild', '--jobs', 'max', '--loglevel', 'warn', '--', '-Dbptt_prebuilt=1'];
  execFileSync(process.execPath, args, { cwd: stage, env, stdio: ['ignore', 'ignore', 'inherit'] });
  return path.join(stage, 'build', 'Release', 'bptt.node');
}

/** What the binary needs from the system, read with objdump (binutils comes with the compiler). */
function inspect(file) {
  const symbols = execFileSync('objdump', ['-T', file], { encoding: 'utf8' });
  const headers = execFileSync('objdump', ['-p', file], { encoding: 'utf8' });
  const versions = new Map(); // GLIBC_x.y -> symbols
  const cxxRuntime = new Set();
  for (const line of symbols.split('\n')) {
    const m = /\((GLIBC|GLIBCXX|CXXABI)_([0-9.]+)\)\s+(\S+)$/.exec(line.trim());
    if (!m) continue;
    if (m[1] !== 'GLIBC') cxxRuntime.add(`${m[1]}_${m[2]}`);
    else versions.set(m[2], [...(versions.get(m[2]) ?? []), m[3]]);
  }
  const needed = [...headers.matchAll(/^\s*NEEDED\s+(\S+)/gm)].map((m) => m[1]);
  const newest = [...versions.keys()].sort(compareVersions).pop();
  return { versions, newest, cxxRuntime: [...cxxRuntime], needed };
}

function main() {
  checkPlatform();
  checkFlags();
  const built = build();
  const info = inspect(built);
  if (info.cxxRuntime.length > 0) fail(`the binary depends on the system's libstdc++ (${info.cxxRuntime.join(', ')}); it must be linked in`);
  const extra = info.needed.filter((n) => !ALLOWED_NEEDED.includes(n));
  if (extra.length > 0) fail(`the binary needs shared libraries that a slim system may lack: ${extra.join(', ')}`);
  if (compareVersions(info.newest, OLDEST_GLIBC) > 0) {
    fail(`the binary needs glibc ${info.newest} (${info.versions.get(info.newest).join(', ')}), newer than the ${OLDEST_GLIBC} we promise; build on an older system`);
  }
  fs.rmSync(path.join(root, 'prebuilds'), { recursive: true, force: true });
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.copyFileSync(built, target);
  fs.rmSync(stage, { recursive: true, force: true });
  // Load it as a user would, in a fresh process.
  const isas = execFileSync(process.execPath, ['-e', `console.log(require(${JSON.stringify(target)}).supportedIsas().join(' '))`], { encoding: 'utf8' }).trim();
  const size = fs.statSync(target).size;
  console.error(
    `prebuild: ${path.relative(root, target)}: ${size} bytes, needs glibc >= ${info.newest} (${info.versions.get(info.newest).join(', ')}), ` +
      `libraries ${info.needed.join(' ')}; kernels on this CPU: ${isas}`,
  );
}

main();
