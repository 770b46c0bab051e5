#!/usr/bin/env node
'use strict';
/**
 * Writes, for scripts/torch-check-checkpoint.py, one checkpoint per model configuration (every
 * cell, stacked, bidirectional) into DIR, with token inputs and bptt's logits for them in
 * DIR/cases.json. usage: node scripts/torch-check-checkpoint.js DIR (after `npm run build:ts`)
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
fs.writeFileSync(path.join(dir, 'cases.json'), JSON.stringify(cases));
console.log(`${cases.length} checkpoints in ${dir}`);
