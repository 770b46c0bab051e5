// GEMM throughput (GFLOP/s) of the native kernels on the shapes the RNN uses, for every ISA and
// 1 and 2 threads: `node bench/gemm.js [isa]` after `npx node-gyp rebuild`.
'use strict';
const Benchmark = require('benchmark');
const addon = require('bindings')({ bindings: 'bptt', module_root: require('path').resolve(__dirname, '..') });

// [M, N, K, packed]: the recurrent step (M = batch, prepacked W), all-rows projections.
const shapes = [
  [64, 512, 512, true],
  [32, 256, 256, true],
  [64, 512, 512, false],
  [6400, 512, 512, false],
  [6400, 256, 65, false],
];
const isas = process.argv[2] ? [process.argv[2]] : addon.supportedIsas();
const random = (n) => Float32Array.from({ length: n }, () => Math.random() - 0.5);

for (const isa of isas) {
  addon.setIsa(isa);
  for (const threads of [1, 2]) {
    addon.setNumThreads(threads);
    for (const [M, N, K, packed] of shapes) {
      const A = random(M * K), B = random(K * N), C = new Float32Array(M * N);
      const gemm = packed ? addon._gemmPacked : addon._gemm;
      const bench = new Benchmark(`${isa} ${threads}T ${M}x${N}x${K}${packed ? ' packed' : ''}`, () =>
        gemm(M, N, K, A, K, false, B, N, false, C, N, false, false),
      );
      bench.run();
      const gflops = (2 * M * N * K) / bench.stats.mean / 1e9;
      console.log(`${bench.name.padEnd(36)} ${gflops.toFixed(1).padStart(6)} GFLOP/s  ±${bench.stats.rme.toFixed(1)}%`);
    }
  }
}
