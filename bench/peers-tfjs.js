'use strict';
/**
 * The training step of bench/workloads.js in TF.js, for `npm run bench -- --peers`: the cpu
 * backend (plain JS, single-threaded) and the wasm backend (XNNPACK, SIMD; single-threaded in
 * Node, where tfjs-backend-wasm disables its threaded build), both loaded from node_modules with
 * no network access.
 *
 * The step is what an efficient TF.js user would write, and mirrors the native one:
 *   - the input projection of all T·B rows at once (a gather of rows of Uᵀ for token inputs, like
 *     our native gather, so neither side multiplies by one-hot vectors; one matMul for dense);
 *   - the recurrence s_t = tanh(xU_t + s_{t-1}·Wᵀ + b), then the output layer and the softmax
 *     cross-entropy (mean over T·B) over all rows at once;
 *   - gradients of every parameter with tf.variableGrads (full BPTT), global-norm clipping and
 *     the SGD update, all in one tf.tidy so nothing leaks between steps.
 * Weights are kept in the right-multiplying layout (Uᵀ [D, H], Wᵀ [H, H], Vᵀ [H, K]), TF.js's own
 * convention: it saves transposes, and the arithmetic is the same.
 *
 * The LSTM and GRU workloads use what TF.js users reach for, tf.layers.lstm / tf.layers.gru with
 * returnSequences and a dense softmax layer on every step (tfjs-layers, batch-major [B, T, D];
 * token inputs one-hot encoded, as TF.js character models do), differentiated and updated by the
 * same clip + SGD step as the tanh one.
 */
const { register } = require('module');
const path = require('path');
const { pathToFileURL } = require('url');
const { STEP_OPTIONS, makeRandom } = require('./workloads');

const BACKENDS = ['wasm', 'cpu'];

/** Loads tfjs-core with both backends, the wasm binaries from the local package; returns tf and what the wasm backend runs. */
async function loadTfjs() {
  const tf = require('@tensorflow/tfjs-core');
  require('@tensorflow/tfjs-backend-cpu');
  // tfjs-core's CommonJS bundle registers no gradients (the @tensorflow/tfjs union package adds
  // them); its ES-module build has TF.js's own, which need a resolve hook to load in Node. They
  // register into tfjs's global registry, which the CommonJS bundle shares.
  register(pathToFileURL(path.join(__dirname, 'tfjs-esm-resolve.mjs')));
  await import(pathToFileURL(require.resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js')).href);
  // Production mode: no debug checks, as a user after speed would run it (also silences the
  // "install tfjs-node" banner, which would land in the middle of the table).
  tf.enableProdMode();
  // tfjs-layers calls tensor methods (x.flatten(), ...) that the union package @tensorflow/tfjs
  // installs on the tensor prototype; tfjs-core's ES-module build has the same registration.
  await import(pathToFileURL(require.resolve('@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops.js')).href);
  const layers = require('@tensorflow/tfjs-layers');
  const wasm = require('@tensorflow/tfjs-backend-wasm');
  const wasmDir = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  wasm.setWasmPaths(wasmDir + path.sep);
  // Initialise the wasm backend now, so its compilation is not timed as part of a step.
  await tf.setBackend('wasm');
  await tf.ready();
  const variant = {
    simd: await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'),
    threads: await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'),
  };
  return { tf, layers, version: tf.version_core, wasm: variant };
}

/**
 * tf.gather with its gradient as a scatter-add. TF.js differentiates gather through
 * unsortedSegmentSum, which the wasm backend lacks; scatterND sums duplicate indices, which is
 * the same gradient, and both backends have it.
 */
function gatherRows(tf, table, ids) {
  return tf.customGrad((t, i, save) => {
    save([i]);
    return {
      value: tf.gather(t, i),
      gradFunc: (dy, [saved]) => [tf.scatterND(tf.expandDims(saved, 1), dy, t.shape), tf.zerosLike(saved)],
    };
  })(table, ids);
}

/** One clipped SGD step over `vars` for the scalar `loss()`; returns [loss, gradNorm] read back. */
function clippedSgdStep(tf, loss, vars) {
  const { lr, clipNorm } = STEP_OPTIONS;
  return tf.tidy(() => {
    const { value, grads } = tf.variableGrads(loss, vars);
    const gs = vars.map((v) => grads[v.name]);
    const norm = tf.sqrt(tf.addN(gs.map((g) => tf.sum(tf.square(g)))));
    const scale = tf.mul(-lr, tf.minimum(1, tf.div(clipNorm, norm)));
    vars.forEach((v, i) => v.assign(tf.add(v, tf.mul(gs[i], scale))));
    return Array.from(tf.stack([value, norm]).dataSync());
  });
}

/**
 * Builds the step for workload `w` on the active backend: returns { step, dispose } where step()
 * runs one training step and returns [loss, gradNorm] (read back, as our trainStep returns them).
 */
function createStep(tfjs, w, data, seed = 7) {
  return w.cell ? createLayersStep(tfjs, w, data) : createTanhStep(tfjs.tf, w, data, seed);
}

/** The tanh RNN written out with tfjs-core ops. */
function createTanhStep(tf, w, data, seed) {
  const { T, B, D, H, K } = w;
  const rng = makeRandom(seed);
  const uniform = (n, scale) => Float32Array.from({ length: n }, () => (2 * rng.next() - 1) * scale);
  // Created in a tidy so that the initial values and the int32 targets are freed: dispose()
  // then leaves TF.js's tensor count where it was.
  const { vars, x, labels, h0 } = tf.tidy(() => ({
    vars: [
      tf.variable(tf.tensor2d(uniform(D * H, 1 / Math.sqrt(D)), [D, H]), true, 'UT'),
      tf.variable(tf.tensor2d(uniform(H * H, 1 / Math.sqrt(H)), [H, H]), true, 'WT'),
      tf.variable(tf.zeros([H]), true, 'b'),
      tf.variable(tf.tensor2d(uniform(H * K, 1 / Math.sqrt(H)), [H, K]), true, 'VT'),
      tf.variable(tf.zeros([K]), true, 'c'),
    ],
    x: w.inputs === 'tokens' ? tf.tensor1d(data.inputs, 'int32') : tf.tensor2d(data.inputs, [T * B, D]),
    labels: tf.oneHot(tf.tensor1d(data.targets, 'int32'), K),
    h0: tf.zeros([B, H]),
  }));
  const [UT, WT, b, VT, c] = vars;

  const loss = () => {
    const xU = w.inputs === 'tokens' ? gatherRows(tf, UT, x) : tf.matMul(x, UT); // [T·B, H], time-major rows
    const xUt = tf.split(xU, T, 0);
    let h = h0;
    const states = [];
    for (let t = 0; t < T; t++) {
      h = tf.tanh(tf.add(tf.add(xUt[t], tf.matMul(h, WT)), b));
      states.push(h);
    }
    const logits = tf.add(tf.matMul(tf.concat(states, 0), VT), c);
    return tf.losses.softmaxCrossEntropy(labels, logits);
  };

  const step = () => clippedSgdStep(tf, loss, vars);
  const dispose = () => tf.dispose([...vars, x, labels, h0]);
  return { step, dispose };
}

/** tf.layers.lstm / gru (returnSequences) + a dense layer on every step, softmax cross-entropy. */
function createLayersStep({ tf, layers }, w, data) {
  const { T, B, D, H, K } = w;
  const input = layers.input({ shape: [T, D] });
  // Glorot instead of the layers' orthogonal default for the recurrent kernel: TF.js computes
  // that by a QR in JS, minutes at H = 512, and the initial values do not change the step's cost.
  const cellOptions = { units: H, returnSequences: true, recurrentInitializer: 'glorotUniform' };
  const recurrent = (w.cell === 'lstm' ? layers.layers.lstm(cellOptions) : layers.layers.gru(cellOptions)).apply(input);
  const model = layers.model({ inputs: input, outputs: layers.layers.dense({ units: K }).apply(recurrent) });
  // The workload's data is time-major; the layers take batch-major [B, T, ...].
  const { x, labels } = tf.tidy(() => {
    const values =
      w.inputs === 'tokens' ? tf.cast(tf.oneHot(tf.tensor2d(data.inputs, [T, B], 'int32'), D), 'float32') : tf.tensor3d(data.inputs, [T, B, D]);
    return {
      x: tf.transpose(values, [1, 0, 2]),
      labels: tf.oneHot(tf.transpose(tf.tensor2d(data.targets, [T, B], 'int32')).reshape([B * T]), K),
    };
  });
  const vars = model.trainableWeights.map((v) => v.read());
  const loss = () => tf.losses.softmaxCrossEntropy(labels, tf.reshape(model.apply(x, { training: true }), [B * T, K]));
  const step = () => clippedSgdStep(tf, loss, vars);
  const dispose = () => {
    tf.dispose([x, labels]);
    model.dispose();
  };
  return { step, dispose };
}

module.exports = { BACKENDS, loadTfjs, createStep };
