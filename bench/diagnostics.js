#!/usr/bin/env node
'use strict';
/**
 * `node bench/diagnostics.js [--threads N] [--reps N] [--workloads C2,L1,...]`: what the gradient
 * diagnostics cost, against one training step of the same model (issue 12's targets: per-lag
 * norms within 10x, the Jacobian estimate within 20x, at C2's shape).
 *
 * Per workload (tokens in, softmax head, mean loss): the median ms of
 *   step      rnn.trainStep (forward + full BPTT + SGD), the unit;
 *   per-lag   the native primitive on the output gradient: every step a source, every layer;
 *   jacobian  the primitive on P Rademacher probe sets (default P = 2);
 *   spectral  eigenvalues (double Hessenberg + QR, native) and largest singular value of every block;
 *   diagnose  the whole diagnose() with truncate [4, 16] and the Jacobian estimate.
 * and each as a multiple of the step.
 *
 * Build first: `npx node-gyp rebuild && npm run build:ts`.
 */
const { RNN, Tensor, diagnose, setNumThreads } = require('../dist');
const { blockSpectrum, sourceGradientNorms } = require('../dist/diagnostics/sources');

const WORKLOADS = {
  C2: { cell: 'tanh', numLayers: 1, H: 256, V: 65, T: 64, B: 32 },
  R2: { cell: 'relu', numLayers: 2, H: 256, V: 65, T: 64, B: 32 },
  L1: { cell: 'lstm', numLayers: 1, H: 256, V: 65, T: 64, B: 32 },
  G1: { cell: 'gru', numLayers: 1, H: 256, V: 65, T: 64, B: 32 },
};

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

// Median wall and CPU milliseconds (CPU: user + system of the process, all threads). On a host
// shared with other work the CPU time of a 1-thread run is the steadier measure of the cost.
function time(reps, fn) {
  fn(); // warm-up
  const wall = [];
  const cpu = [];
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    fn();
    wall.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e3);
  }
  return { wall: median(wall), cpu: median(cpu) };
}

const threads = Number(arg('threads', '1'));
const reps = Number(arg('reps', '5'));
const probes = Number(arg('probes', '2'));
setNumThreads(threads);
const names = arg('workloads', 'C2').split(',');
console.log(`threads ${threads}, ${reps} reps, median wall ms (x one training step; cpu ms, x the step's cpu ms)`);
for (const name of names) {
  const w = WORKLOADS[name];
  if (!w) throw new Error(`unknown workload ${name}; known: ${Object.keys(WORKLOADS).join(', ')}`);
  const rnn = new RNN({ inputSize: w.V, hiddenSize: w.H, outputSize: w.V, cell: w.cell, numLayers: w.numLayers, seed: 1 });
  let state = 12345;
  const token = () => ((state = (state * 1103515245 + 12345) >>> 0) >>> 8) % w.V;
  const x = Tensor.from(Int32Array.from({ length: w.T * w.B }, token), [w.T, w.B]);
  const y = Tensor.from(Int32Array.from({ length: w.T * w.B }, token), [w.T, w.B]);
  const { spec, weights } = rnn.layerView();
  const batch = { steps: w.T, batch: w.B, input: { kind: 'tokens', data: x.data() }, lengths: null };
  const dy = Float32Array.from({ length: w.T * w.B * w.H }, () => (token() - w.V / 2) / w.V);
  const per = w.numLayers * w.T * w.B * w.H;
  const rademacher = Float32Array.from({ length: probes * per }, () => (token() % 2 ? 1 : -1));
  const step = time(reps, () => rnn.trainStep(x, y, { lr: 0 }));
  const results = {
    'per-lag': time(reps, () => sourceGradientNorms(spec, weights, batch, { kind: 'output', dy })),
    [`jacobian (P=${probes})`]: time(reps, () => sourceGradientNorms(spec, weights, batch, { kind: 'probes', probes: rademacher, count: probes })),
    spectral: time(Math.min(reps, 3), () => {
      for (const [n, W] of Object.entries(weights)) {
        if (!n.startsWith('weight_hh')) continue;
        for (let g = 0; g < W.length / (w.H * w.H); g++) {
          blockSpectrum(W.subarray(g * w.H * w.H, (g + 1) * w.H * w.H), w.H);
        }
      }
    }),
    diagnose: time(Math.min(reps, 3), () => diagnose(rnn, x, y, { truncate: [4, 16], jacobian: { mode: 'estimate', probes } })),
  };
  const cells = Object.entries(results).map(
    ([k, t]) => `${k} ${t.wall.toFixed(1)} (${(t.wall / step.wall).toFixed(1)}x; cpu ${t.cpu.toFixed(1)}, ${(t.cpu / step.cpu).toFixed(1)}x)`,
  );
  console.log(`${name} ${w.cell} L=${w.numLayers} H=${w.H} T=${w.T} B=${w.B}: step ${step.wall.toFixed(2)} (cpu ${step.cpu.toFixed(2)}) | ${cells.join(' | ')}`);
}
