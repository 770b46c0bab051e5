// Run by test/install/run.sh inside a project that installed the packed tarball: `import` gives
// the same named exports and the same objects as `require` (one module instance, no dual-package
// copies), and the default export is the CommonJS module.
import assert from 'assert';
import { createRequire } from 'module';
import * as ns from 'bptt';
import bptt, { RNN, Tensor, isa } from 'bptt';

const cjs = createRequire(import.meta.url)('bptt');
const named = Object.keys(ns).filter((n) => n !== 'default').sort();
const required = Object.keys(cjs).filter((n) => n !== '__esModule').sort();
assert.deepStrictEqual(named, required, 'import and require should export the same names');
for (const n of named) assert.strictEqual(ns[n], cjs[n], `import's ${n} should be require's`);
assert.strictEqual(bptt, cjs, 'the default export should be the CommonJS module');

const rnn = new RNN({ inputSize: 4, hiddenSize: 8, outputSize: 4, seed: 1 });
const { logits } = rnn.forward(Tensor.from(new Int32Array([0, 1, 2, 3]), [2, 2]));
assert.deepStrictEqual(logits.shape, [2, 2, 4]);
assert.ok(logits.toArray().every(Number.isFinite));
console.log(`import from 'bptt': ${named.length} named exports, the same as require's; isa ${isa()}`);
