'use strict';
/**
 * Training throughput of the task defaults (issue 11), `npm run bench:tasks`: sequences per second
 * of one epoch of `bptt train --task forecast` (births: GRU 64, windows of 56 days × 8 inputs, the
 * next 14 days regressed from the last step, batch 64) and `--task classify` (first names → gender:
 * LSTM 64 on characters, the class from the last valid step, length-bucketed batches of 32), each
 * step forward + full BPTT + clip + Adam; against TF.js layers running the same model on the same
 * batches in the same run (tf.layers.gru / lstm with returnSequences false + a dense layer, the
 * same loss, Adam, clipped), on both TF.js backends.
 *
 * Where the two differ, and why: our classify batches carry `lengths`, so padding steps cost
 * nothing and the class is read at each name's last letter; TF.js reads right-padded batches to
 * their end (its layers take masks only from an embedding, which would add a layer ours does
 * not have), so it runs the padding steps too. Bucketing keeps padding at about 4 % of the steps.
 */
const { Command } = require('commander');
const { RNN, Tensor, Optimizer, SequenceBatcher, birthsForecast, nameGenderTask, setNumThreads, numThreads, isa } = require('../dist');
const peers = require('./peers-tfjs');

const program = new Command()
  .option('--threads <list>', 'comma-separated thread counts for ours', '1,2')
  .option('--batches <n>', 'batches timed per task (the first ones of an epoch)', (v) => Number(v), 40)
  .option('--no-peers', 'skip TF.js')
  .parse();
const opts = program.opts();
const LR = 3e-3;
const CLIP = 5;

/** The first `n` training batches of each default task, as the CLI's trainer feeds them. */
function taskBatches(n) {
  const births = birthsForecast();
  const forecast = [];
  for (const b of births.batches('train', { batchSize: 64, shuffle: true, seed: 1 })) {
    if (forecast.length === n) break;
    if (b.batch !== 64) continue;
    // [H, B, 1] time-major targets -> [B, H] rows, as the regress head on the last step takes them.
    const y = new Float32Array(b.batch * b.horizon);
    for (let h = 0; h < b.horizon; h++) for (let i = 0; i < b.batch; i++) y[i * b.horizon + h] = b.targets[h * b.batch + i];
    forecast.push({ T: b.steps, B: b.batch, x: b.input.data, y, lengths: null });
  }
  const names = nameGenderTask(0);
  const classify = [];
  for (const b of new SequenceBatcher(names.train, { batchSize: 32 }).batches({ shuffle: true, seed: 1 })) {
    if (classify.length === n) break;
    classify.push({ T: b.steps, B: b.batch, x: b.input.data, y: b.labels, lengths: b.lengths });
  }
  return {
    forecast: { batches: forecast, model: { cell: 'gru', inputSize: births.pipeline.inputSize, hiddenSize: 64, outputSize: births.pipeline.horizon, head: { kind: 'regress', positions: 'last' } } },
    classify: { batches: classify, model: { cell: 'lstm', inputSize: names.encoder.inputSize, hiddenSize: 64, outputSize: names.encoder.numClasses, head: { kind: 'classify', pool: 'last' } } },
  };
}

function seconds(fn) {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** Sequences per second of our training steps over the batches (after one warm-up pass over the first). */
function ours(task, dense) {
  const rnn = new RNN({ ...task.model, seed: 1 });
  const adam = new Optimizer(rnn, { kind: 'adam' });
  const tensors = task.batches.map((b) => ({
    x: Tensor.from(b.x, dense ? [b.T, b.B, task.model.inputSize] : [b.T, b.B]),
    y: Tensor.from(b.y, dense ? [b.B, task.model.outputSize] : [b.B]),
    lengths: b.lengths,
  }));
  const step = (t) => rnn.trainStep(t.x, t.y, { lr: LR, clipNorm: CLIP, optimizer: adam, ...(t.lengths ? { lengths: t.lengths } : {}) });
  step(tensors[0]);
  const s = seconds(() => tensors.forEach(step));
  rnn.dispose();
  return task.batches.reduce((a, b) => a + b.B, 0) / s;
}

/** The same model in TF.js layers, trained on the same batches; sequences per second. */
async function tfjsRun(tfjs, backend, task, dense) {
  const { tf, layers } = tfjs;
  await tf.setBackend(backend);
  const { inputSize: D, hiddenSize: H, outputSize: K, cell } = task.model;
  // Any number of steps per batch ([null, D]), as the buckets' lengths differ.
  const input = layers.input({ shape: [null, D] });
  const rec = (cell === 'lstm' ? layers.layers.lstm : layers.layers.gru)({ units: H, recurrentInitializer: 'glorotUniform' }).apply(input);
  const model = layers.model({ inputs: input, outputs: layers.layers.dense({ units: K }).apply(rec) });
  const vars = model.trainableWeights.map((v) => v.read());
  const optimizer = tf.train.adam(LR);
  const inputs = task.batches.map((b) =>
    tf.tidy(() => {
      const x = dense ? tf.tensor3d(b.x, [b.T, b.B, D]) : tf.cast(tf.oneHot(tf.tensor2d(b.x, [b.T, b.B], 'int32'), D), 'float32');
      return { x: tf.transpose(x, [1, 0, 2]), y: dense ? tf.tensor2d(b.y, [b.B, K]) : tf.oneHot(tf.tensor1d(b.y, 'int32'), K) };
    }),
  );
  const step = (b) =>
    tf.tidy(() => {
      const loss = () => {
        const out = model.apply(b.x, { training: true });
        return dense ? tf.losses.meanSquaredError(b.y, out) : tf.losses.softmaxCrossEntropy(b.y, out);
      };
      const { grads } = tf.variableGrads(loss, vars);
      const norm = tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g)))));
      const scale = tf.minimum(1, tf.div(CLIP, norm));
      optimizer.applyGradients(Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, tf.mul(g, scale)])));
      return norm.dataSync()[0]; // read back, as our trainStep returns its gradient norm
    });
  step(inputs[0]);
  const s = seconds(() => inputs.forEach(step));
  tf.dispose(inputs.flatMap((b) => [b.x, b.y]));
  model.dispose();
  optimizer.dispose();
  return task.batches.reduce((a, b) => a + b.B, 0) / s;
}

(async () => {
  const tasks = taskBatches(opts.batches);
  const before = numThreads();
  const rows = [];
  for (const [name, task] of Object.entries(tasks)) {
    const dense = name === 'forecast';
    const padded = task.batches.reduce((a, b) => a + b.T * b.B, 0);
    const valid = task.batches.reduce((a, b) => a + (b.lengths ? b.lengths.reduce((s, l) => s + l, 0) : b.T * b.B), 0);
    const row = { task: name, batches: task.batches.length, padding: 1 - valid / padded };
    for (const t of opts.threads.split(',').map(Number)) {
      setNumThreads(t);
      row[`ours${t}`] = ours(task, dense);
    }
    rows.push(row);
  }
  setNumThreads(before);
  let tfjs;
  if (opts.peers) {
    tfjs = await peers.loadTfjs();
    for (const row of rows) for (const b of peers.BACKENDS) row[`tfjs-${b}`] = await tfjsRun(tfjs, b, tasks[row.task], row.task === 'forecast');
  }
  const threads = opts.threads.split(',');
  console.log(`Training throughput of the task defaults, sequences/s (kernels ${isa()}; ${opts.batches} batches each${tfjs ? `; TF.js ${tfjs.version}` : ''})\n`);
  const head = ['task', ...threads.map((t) => `bptt, ${t} thread${t === '1' ? '' : 's'}`), ...(tfjs ? peers.BACKENDS.map((b) => `TF.js ${b}`) : []), ...(tfjs ? ['bptt 1 thread ÷ best TF.js'] : [])];
  console.log(`| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|`);
  for (const r of rows) {
    const cells = [`${r.task} (padding ${(100 * r.padding).toFixed(1)} %)`, ...threads.map((t) => r[`ours${t}`].toFixed(0))];
    if (tfjs) {
      const best = Math.max(...peers.BACKENDS.map((b) => r[`tfjs-${b}`]));
      cells.push(...peers.BACKENDS.map((b) => r[`tfjs-${b}`].toFixed(0)), `${(r[`ours${threads[0]}`] / best).toFixed(1)}×`);
    }
    console.log(`| ${cells.join(' | ')} |`);
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
