// Run by test/install/run.sh inside a project that installed the packed tarball: `require('bptt')`
// loads the native backend, every instruction set it offers computes the oracle's loss and
// gradients, and a few Adam steps lower the loss.
'use strict';
const assert = require('assert');
const bptt = require('bptt');
const { RNN, Tensor, Optimizer, isa, supportedIsas, setIsa } = bptt;

const active = isa();
assert.ok(['avx512', 'avx2', 'scalar'].includes(active), `isa() should name a kernel set, got ${active}`);
assert.strictEqual(supportedIsas()[0], active, 'the best supported instruction set is the default');

const [D, H, T, B] = [7, 16, 9, 3];
let state = 12345;
const nextId = () => (state = (state * 1103515245 + 12345) % 2 ** 31) % D;
const inputs = Tensor.from(Int32Array.from({ length: T * B }, nextId), [T, B]);
const targets = Tensor.from(Int32Array.from({ length: T * B }, nextId), [T, B]);

const oracle = new RNN({ inputSize: D, hiddenSize: H, outputSize: D, seed: 5, backend: 'reference' });
const expected = oracle.lossAndGradients(inputs, targets);
for (const name of supportedIsas()) {
  setIsa(name);
  const got = new RNN({ inputSize: D, hiddenSize: H, outputSize: D, seed: 5 }).lossAndGradients(inputs, targets);
  assert.ok(Math.abs(got.loss - expected.loss) <= 1e-5 * Math.abs(expected.loss), `${name}: loss ${got.loss} vs oracle ${expected.loss}`);
  for (const p of ['U', 'W', 'b', 'V', 'c']) {
    const a = got.grads[p].toArray();
    const e = expected.grads[p].toArray();
    let err = 0;
    let norm = 0;
    for (let i = 0; i < e.length; i++) {
      err = Math.max(err, Math.abs(a[i] - e[i]));
      norm = Math.max(norm, Math.abs(e[i]));
    }
    assert.ok(err <= 1e-4 * norm + 1e-7, `${name}: grads.${p} differs from the oracle by ${err} (max |g| ${norm})`);
  }
}
setIsa('auto');

const rnn = new RNN({ inputSize: D, hiddenSize: H, outputSize: D, seed: 5 });
const adam = new Optimizer(rnn, { kind: 'adam' });
const first = rnn.trainStep(inputs, targets, { lr: 1e-2, clipNorm: 5, optimizer: adam }).loss;
let last = first;
for (let i = 0; i < 30; i++) last = rnn.trainStep(inputs, targets, { lr: 1e-2, clipNorm: 5, optimizer: adam }).loss;
assert.ok(last < 0.8 * first, `30 Adam steps on one batch should lower the loss, got ${first} -> ${last}`);
console.log(`require('bptt'): isa ${active} of ${supportedIsas().join(', ')}; gradients match the oracle on each; loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
