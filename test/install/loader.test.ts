/**
 * The addon loader (lib/native.ts): it finds the build from source or the prebuilt binary, and
 * when neither loads its error says what it looked for, where, and how to fix it.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { NativeUnavailableError } from '../../lib/errors';
import { loadAddon } from '../../lib/native';
import { expectCleanExit, runChild } from '../helpers/child';

const repoRoot = path.resolve(__dirname, '..', '..');
const tuple = `${process.platform}-${process.arch}`;

function tempPackage(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bptt-loader-'));
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'bptt' }));
  return dir;
}

function loadError(root: string, override?: string): NativeUnavailableError {
  try {
    loadAddon(root, override);
  } catch (err) {
    expect(err).toBeInstanceOf(NativeUnavailableError);
    return err as NativeUnavailableError;
  }
  throw new Error('loadAddon should have thrown');
}

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

test("loads this repository's build", () => {
  const addon = loadAddon(repoRoot);
  expect(['avx512', 'avx2', 'scalar']).toContain(addon.isa());
});

test('with no build and no prebuilt binary, says where it looked and how to compile', () => {
  const root = tempPackage();
  dirs.push(root);
  const { message } = loadError(root);
  expect(message).toContain(`no build for ${tuple}`);
  expect(message).toContain(path.join(root, 'build', 'Release'));
  expect(message).toContain(path.join(root, 'prebuilds', tuple));
  expect(message).toContain('ships prebuilt binaries for no platform');
  expect(message).toContain('npm rebuild bptt --build-from-source');
  expect(message).toContain(`npx node-gyp rebuild\` in ${root}`);
  expect(message).toContain("{ backend: 'reference' }");
});

test('with prebuilt binaries for other platforms only, names them', () => {
  const root = tempPackage();
  dirs.push(root);
  const other = process.platform === 'linux' ? 'darwin-arm64' : 'linux-x64';
  fs.mkdirSync(path.join(root, 'prebuilds', other), { recursive: true });
  fs.writeFileSync(path.join(root, 'prebuilds', other, 'node.napi.node'), 'not for this machine');
  const { message } = loadError(root);
  expect(message).toContain(`ships prebuilt binaries for ${other}/node.napi.node`);
});

test('a prebuilt binary that does not load: names the file and the reason, and how to compile', () => {
  const root = tempPackage();
  dirs.push(root);
  const file = path.join(root, 'prebuilds', tuple, 'node.napi.node');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, 'not a shared library');
  const { message } = loadError(root);
  expect(message).toContain(`found ${file}, but it did not load on ${tuple}`);
  expect(message).toContain('npm rebuild bptt --build-from-source');
});

test('BPTT_ADDON_PATH that does not load: names it', () => {
  const missing = path.join(os.tmpdir(), 'bptt-no-such-dir', 'bptt.node');
  const { message } = loadError(repoRoot, missing);
  expect(message).toContain(`BPTT_ADDON_PATH=${missing}`);
  expect(message).toContain('unset it');
});

test("without a loadable addon, isa() is 'unavailable', supportedIsas() is empty and the reference backend trains", () => {
  const r = runChild(
    `
    const { isa, supportedIsas, nativeAvailable, RNN, Tensor } = require(REPO + '/lib');
    const rnn = new RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3, seed: 1, backend: 'reference', cell: 'lstm' });
    const x = Tensor.from(Int32Array.of(0, 1, 2), [3, 1]);
    const step = rnn.trainStep(x, Tensor.from(Int32Array.of(1, 2, 0), [3, 1]), { lr: 0.1 });
    console.log(JSON.stringify([isa(), supportedIsas(), nativeAvailable(), Number.isFinite(step.loss)]));
  `,
    { env: { BPTT_ADDON_PATH: path.join(os.tmpdir(), 'bptt-no-such-dir', 'bptt.node') } },
  );
  expectCleanExit(r);
  expect(r.stdout).toBe('["unavailable",[],false,true]\n');
});
