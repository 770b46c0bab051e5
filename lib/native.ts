/**
 * Loads the compiled addon once, lazily, so that the pure-TS parts of the library (the reference
 * backend, tokenizer, checkpoints) work where the addon cannot be built or loaded.
 *
 * Where it comes from: a build from source in build/Release (what `npm ci` in this repository and
 * `npm install --build-from-source` make) if there is one, else the prebuilt Node-API binary that
 * the npm package ships in prebuilds/<platform>-<arch>/, as node-gyp-build finds them, or the file
 * named by BPTT_ADDON_PATH (tests load other builds this way).
 */
import * as fs from 'fs';
import * as path from 'path';
import { NativeUnavailableError } from './errors';

// The addon's exports are declared where they are used (lib/backends/native.ts, lib/tensor.ts);
// here it is an opaque record of functions.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type NativeAddon = Record<string, any>;

// node-gyp-build ships no type declarations; resolve() is the part used here.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const nodeGypBuild: { resolve(dir: string): string } = require('node-gyp-build');

let cached: NativeAddon | undefined;
let failure: NativeUnavailableError | undefined;

const packageRoot = path.resolve(__dirname, '..');

/** The addon if something has loaded it already, else undefined (never loads it). */
export function loadedAddon(): NativeAddon | undefined {
  return cached;
}

/** Returns the addon, loading it on first use. Throws NativeUnavailableError if it cannot load. */
export function addon(): NativeAddon {
  if (cached) return cached;
  if (failure) throw failure;
  try {
    cached = loadAddon(packageRoot, process.env.BPTT_ADDON_PATH);
    return cached;
  } catch (err) {
    failure = err instanceof NativeUnavailableError ? err : new NativeUnavailableError(`could not load the bptt native addon: ${String(err)}`);
    throw failure;
  }
}

/**
 * True when the addon loads (it is loaded on first use, once). When false, models and backends
 * work with `backend: 'reference'` and native calls throw NativeUnavailableError saying why.
 *
 * @example
 * ```ts
 * import { RNN, nativeAvailable } from 'bptt';
 *
 * const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, backend: nativeAvailable() ? 'native' : 'reference' });
 * console.log(rnn.backend);
 * ```
 */
export function nativeAvailable(): boolean {
  try {
    addon();
    return true;
  } catch {
    return false;
  }
}

/**
 * Loads the addon of the package installed at `root` (or the file `override`), without caching.
 * Every failure is a NativeUnavailableError that says what was looked for, where, and how to fix it.
 */
export function loadAddon(root: string, override?: string): NativeAddon {
  if (override) {
    const file = path.resolve(override);
    return requireAddon(file, `BPTT_ADDON_PATH=${override} (${file}) did not load`, 'Point BPTT_ADDON_PATH at a bptt.node built for this machine, or unset it.');
  }
  let file: string;
  try {
    file = nodeGypBuild.resolve(root);
  } catch {
    throw new NativeUnavailableError(
      `could not load the bptt native addon: no build for ${describeMachine()} was found. ` +
        `Looked for a build from source in ${path.join(root, 'build', 'Release')} (and build/Debug) and for a prebuilt binary in ` +
        `${path.join(root, 'prebuilds', `${process.platform}-${process.arch}`)}; this package ships prebuilt binaries for ${describePrebuilds(root)}.\n` +
        compileAdvice(root),
    );
  }
  return requireAddon(file, `found ${file}, but it did not load on ${describeMachine()}`, compileAdvice(root));
}

function requireAddon(file: string, what: string, fix: string): NativeAddon {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(file) as NativeAddon;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new NativeUnavailableError(`could not load the bptt native addon: ${what}: ${reason}\n${fix}`);
  }
}

function compileAdvice(root: string): string {
  return (
    `Compile it for this machine: \`npm rebuild bptt --build-from-source\` in the project that installed bptt, or \`npx node-gyp rebuild\` in ${root} ` +
    `(either needs a C++17 compiler, make and python3). The pure-TS backend stays usable with { backend: 'reference' }.`
  );
}

function describeMachine(): string {
  // Node's report header names the glibc version on glibc systems and nothing on musl.
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  const libc = process.platform !== 'linux' ? '' : header?.glibcVersionRuntime ? `, glibc ${header.glibcVersionRuntime}` : ', not glibc (musl?)';
  return `${process.platform}-${process.arch}${libc}, Node ${process.versions.node} (Node-API ${process.versions.napi})`;
}

function describePrebuilds(root: string): string {
  const dir = path.join(root, 'prebuilds');
  const found = listDir(dir).flatMap((tuple) => listDir(path.join(dir, tuple)).map((file) => `${tuple}/${file}`));
  return found.length > 0 ? found.join(', ') : 'no platform (it has no prebuilds/ folder)';
}

function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}
