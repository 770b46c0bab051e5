#!/usr/bin/env node
'use strict';
/**
 * Writes, for scripts/torch-check-checkpoint.py, one checkpoint per model configuration (every
 * cell, stacked, bidirectional; a classify and a forecast head) into DIR, with the inputs and
 * bptt's outputs for them in DIR/cases.json. usage: node scripts/torch-check-checkpoint.js DIR (after `npm run build:ts`)
 */
const path = require('path');
const fs = require('fs');
const { RNN, Tensor, saveCheckpoint } = require('../dist');

const dir = process.argv[2];
if (!dir) throw new Error('usage: node scripts/torch-check-checkpoint.js DIR');
fs.mkdirSync(dir, { recursive: true });
const configs = [
  { cell: 'tanh', numLayers: 1, bidirectional: false },
  { cell: 'relu', numLayers: 2, bidirectional: true },
  { cell: 'lstm', numLayers: 2, bidirectional: false },
  { cell: 'lstm', numLayers: 3, bidirectional: true },
  { cell: 'gru', numLayers: 2, bidirectional: true },
  { cell: 'tanh', numLayers: 2, bidirectional: false, dropout: 0.3 },
];
const cases = [];
const T = 7;
const B = 3;
const D = 11;
configs.forEach((cfg, i) => {
  const rnn = new RNN({ inputSize: D, hiddenSize: 6, outputSize: 5, seed: 100 + i, ...cfg });
  const tokens = Int32Array.from({ length: T * B }, (_, j) => (j * 7 + i) % D);
  const x = Tensor.from(tokens, [T, B]);
  const logits = rnn.forward(x).logits.toArray();
  const name = `${cfg.cell}-L${cfg.numLayers}${cfg.bidirectional ? '-bi' : ''}${cfg.dropout ? '-dropout' : ''}`;
  const file = path.join(dir, `${name}.safetensors`);
  saveCheckpoint(file, rnn);
  cases.push({ name, file, steps: T, batch: B, tokens: Array.from(tokens), logits: Array.from(logits) });
});
// Task heads: a bidirectional LSTM classifier over padded token sequences (PyTorch's h_n: the
// forward direction at each sequence's last valid step, the reverse one at step 0) and a GRU
// forecaster reading dense windows, its Linear on the last step.
{
  const K = 3;
  const rnn = new RNN({ inputSize: D, hiddenSize: 6, outputSize: K, cell: 'lstm', numLayers: 2, bidirectional: true, seed: 200, head: { kind: 'classify', pool: 'last' } });
  const tokens = Int32Array.from({ length: T * B }, (_, j) => (j * 5 + 1) % D);
  const lengths = Int32Array.of(T, 3, 5);
  for (let t = 0; t < T; t++) for (let b = 0; b < B; b++) if (t >= lengths[b]) tokens[t * B + b] = 0;
  const probabilities = rnn.predict(Tensor.from(tokens, [T, B]), { lengths }).toArray();
  const file = path.join(dir, 'classify-lstm-L2-bi.safetensors');
  saveCheckpoint(file, rnn);
  cases.push({ name: 'classify-lstm-L2-bi', kind: 'classify', file, steps: T, batch: B, tokens: Array.from(tokens), lengths: Array.from(lengths), probabilities: Array.from(probabilities) });
}
{
  const Din = 4;
  const horizon = 5;
  const rnn = new RNN({ inputSize: Din, hiddenSize: 6, outputSize: horizon, cell: 'gru', seed: 201, head: { kind: 'regress', positions: 'last' } });
  const x = Tensor.randn([T, B, Din], { seed: 9 });
  const values = rnn.predict(x).toArray();
  const file = path.join(dir, 'forecast-gru.safetensors');
  saveCheckpoint(file, rnn);
  cases.push({ name: 'forecast-gru', kind: 'forecast', file, steps: T, batch: B, dense: Array.from(x.toArray()), inputSize: Din, values: Array.from(values) });
}
fs.writeFileSync(path.join(dir, 'cases.json'), JSON.stringify(cases));
console.log(`${cases.length} checkpoints in ${dir}`);
