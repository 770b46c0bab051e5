/**
 * Loads the compiled addon once, lazily, so that the pure-TS parts of the library (the reference
 * backend, tokenizer, checkpoints) work where the addon cannot be built or loaded.
 */
import * as path from 'path';
import { NativeUnavailableError } from './errors';

// The addon's exports are declared where they are used (lib/backends/native.ts, lib/tensor.ts);
// here it is an opaque record of functions.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type NativeAddon = Record<string, any>;

let cached: NativeAddon | undefined;
let failure: NativeUnavailableError | undefined;

const packageRoot = path.resolve(__dirname, '..');

/** Returns the addon, loading it on first use. Throws NativeUnavailableError if it cannot load. */
export function addon(): NativeAddon {
  if (cached) return cached;
  if (failure) throw failure;
  const override = process.env.BPTT_ADDON_PATH;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    cached = override ? require(path.resolve(override)) : require('bindings')({ bindings: 'bptt', module_root: packageRoot });
    return cached as NativeAddon;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    failure = new NativeUnavailableError(
      `could not load the bptt native addon (${override ? `BPTT_ADDON_PATH=${override}` : `looked for bptt.node under ${packageRoot}/build/Release and the other locations of the 'bindings' package`}): ${reason}\n` +
        `Rebuild it with \`npm rebuild bptt\` (or \`npx node-gyp rebuild\` in ${packageRoot}); ` +
        `the pure-TS backend stays usable with { backend: 'reference' }.`,
    );
    throw failure;
  }
}

/** True when the addon loads. */
export function nativeAvailable(): boolean {
  try {
    addon();
    return true;
  } catch {
    return false;
  }
}
