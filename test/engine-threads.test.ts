/**
 * The recurrent engine's entry points (layer API and engine models) under the conditions issue 13
 * names: worker threads that each use them, workers terminated mid-job, token ids and lengths in a
 * SharedArrayBuffer another thread rewrites. Each runs in a child process with a time bound
 * (test/helpers/child.ts), so a crash fails the test instead of taking Jest down.
 */
import { expectCleanExit, runChild, runTerminations } from './helpers/child';

// An LSTM model and a layer problem big enough that their recurrences use the thread pool.
const SETUP = `
  const { RNN, Tensor, Optimizer, backends, layerParameterShapes } = require(REPO + '/lib');
  function model(seed) {
    const rnn = new RNN({ inputSize: 32, hiddenSize: 96, outputSize: 32, seed, cell: 'lstm', numLayers: 2 });
    const T = 16, B = 8;
    const x = Tensor.from(Int32Array.from({ length: T * B }, (_, i) => (i * 7 + seed) % 32), [T, B]);
    const y = Tensor.from(Int32Array.from({ length: T * B }, (_, i) => (i * 5 + 3) % 32), [T, B]);
    return { rnn, x, y, opt: new Optimizer(rnn, { kind: 'adam' }) };
  }
  const spec = { cell: 'gru', inputSize: 24, hiddenSize: 64, numLayers: 2, bidirectional: true };
  const weights = Object.fromEntries(Object.entries(layerParameterShapes(spec)).map(([n, s], i) => [n, Float32Array.from({ length: s.reduce((a, b) => a * b) }, (_, j) => Math.sin(i + j) * 0.1)]));
  const T = 20, B = 9;
  const layerBatch = { steps: T, batch: B, input: { kind: 'dense', data: Float32Array.from({ length: T * B * 24 }, (_, j) => Math.cos(j)) }, lengths: Int32Array.from({ length: B }, (_, b) => 1 + (b * 7) % T) };
  const dy = Float32Array.from({ length: T * B * 128 }, (_, j) => Math.sin(j * 0.3));
`;

// Trains an LSTM model a few steps and runs a truncated layer backward; a checksum of the results.
const WORK = `
  function work() {
    const m = model(3);
    for (let i = 0; i < 4; i++) m.rnn.trainStep(m.x, m.y, { lr: 0.01, optimizer: m.opt });
    const out = backends.native.layerForward(spec, weights, layerBatch);
    const g = backends.native.layerBackward(spec, weights, out.saved, { dy, truncate: 5 });
    out.saved.dispose();
    let s = 0;
    for (const t of Object.values(m.rnn.params)) for (const v of t.toArray()) s = (s * 31 + v * 1e6) % 1e15;
    for (const v of g.grads.weight_hh_l1_reverse) s = (s * 31 + v * 1e6) % 1e15;
    return s;
  }
`;

describe('the engine on worker threads', () => {
  test('two workers and the main thread train LSTM models and run the layer API at the same time, with results equal to a lone run', () => {
    const r = runChild(
      `
      const { Worker } = require('worker_threads');
      ${SETUP}
      ${WORK}
      const alone = work();
      const body = 'const REPO = ' + JSON.stringify(REPO) + '; require(' + JSON.stringify(HOOK) + ');' + ${JSON.stringify(SETUP + WORK)} + 'require("worker_threads").parentPort.postMessage(work());';
      const workers = [0, 1].map(() => new Promise((resolve, reject) => { const w = new Worker(body, { eval: true }); w.once('message', resolve); w.once('error', reject); }));
      const here = work();
      Promise.all(workers).then((sums) => console.log(JSON.stringify([alone, here, ...sums].every((s) => s === alone))));
    `,
      { timeoutMs: 120_000 },
    );
    expectCleanExit(r);
    expect(r.stdout).toBe('true\n');
  });
});

describe('terminating a worker during an engine job', () => {
  test.each([
    ['LSTM trainStepAsync', 'await m.rnn.trainStepAsync(m.x, m.y, { lr: 0.01, optimizer: m.opt })'],
    ['LSTM lossAndGradientsAsync', 'await m.rnn.lossAndGradientsAsync(m.x, m.y)'],
    ['layerForwardAsync', '(await backends.native.layerForwardAsync(spec, weights, layerBatch)).saved.dispose()'],
    ['layerBackwardAsync', 'await backends.native.layerBackwardAsync(spec, weights, m.saved, { dy })'],
  ])('%s leaves the process running', (_name, call) => {
    const setup = `${SETUP}\nfunction setup() { const m = model(2); m.saved = backends.native.layerForward(spec, weights, layerBatch).saved; return m; }`;
    const r = runTerminations(setup, call);
    expectCleanExit(r);
    expect(r.stdout).toBe('survived\n');
  });
});

describe('ids in shared memory rewritten by another thread', () => {
  test('token ids and lengths of the layer API and engine models: results or RangeErrors, never a crash', () => {
    const r = runChild(
      `
      const { Worker } = require('worker_threads');
      ${SETUP}
      const sab = new SharedArrayBuffer((T * B + B) * 4);
      const tokens = new Int32Array(sab, 0, T * B), lengths = new Int32Array(sab, T * B * 4, B);
      const flipper = new Worker('const a = new Int32Array(require("worker_threads").workerData); for (;;) { a.fill(1); a.fill(1e9); a.fill(-5e8); }', { eval: true, workerData: sab });
      const tokenSpec = { cell: 'lstm', inputSize: 40, hiddenSize: 48 };
      const tokenWeights = Object.fromEntries(Object.entries(layerParameterShapes(tokenSpec)).map(([n, s]) => [n, new Float32Array(s.reduce((a, b) => a * b)).fill(0.01)]));
      const m = new RNN({ inputSize: 40, hiddenSize: 48, outputSize: 40, seed: 1, cell: 'gru' });
      const x = Tensor.from(tokens, [T, B]);
      (async () => {
        let ok = 0, refused = 0;
        for (let i = 0; i < 300; i++) {
          try {
            const batch = { steps: T, batch: B, input: { kind: 'tokens', data: tokens }, lengths };
            const out = i % 2 ? await backends.native.layerForwardAsync(tokenSpec, tokenWeights, batch) : backends.native.layerForward(tokenSpec, tokenWeights, batch);
            out.saved.dispose();
            m.forward(x, { lengths }).logits.dispose();
            ok++;
          } catch (err) {
            if (!(err instanceof RangeError) && !/outside/.test(String(err.message))) throw err;
            refused++;
          }
        }
        await flipper.terminate();
        console.log(ok + refused === 300 ? 'survived' : 'miscounted');
      })().catch((err) => { console.error(err); process.exit(1); });
    `,
      { timeoutMs: 120_000 },
    );
    expectCleanExit(r);
    expect(r.stdout).toBe('survived\n');
  });
});
