#!/usr/bin/env node
'use strict';
/**
 * `npm run bench:placement [-- options]`: 2-thread training steps sorted by where the host put
 * the two vCPUs while they ran.
 *
 * On this project's VM the host moves its two vCPUs, every few minutes, between one die (a cache
 * line to the other core and back in 60-100 ns) and two (350-650 ns), and a 2-thread step that
 * hands data between the cores slows down with them apart. One run of `npm run bench` sees one
 * placement, or a mix, per workload. This bench keeps timing instead: for each workload it runs
 * fresh child processes one after another for --minutes, each timing batches of --batch steps
 * with the round trip probed before and after every batch, and sorts the batches: both probes
 * above 300 ns is apart, both below 150 ns together, anything else (the host moved the vCPUs
 * during the batch) is left out. It reports the median step of each placement, and % of the FMA
 * peak on the same thread count, the best of the probes the children ran at their start and end.
 */
const { spawnSync } = require('child_process');
const { Command } = require('commander');
const { WORKLOADS, STEP_OPTIONS, flops, makeData } = require('./workloads');

// Round trips (ns) that classify a batch, between the ranges measured for each placement.
const TOGETHER_BELOW = 150;
const APART_ABOVE = 300;
// Each child's share of the time: long enough to amortise its start (loading, warm-up, peak probes).
const CHILD_SECONDS = 6;

const [mode, ...childArgs] = process.argv.slice(2);
if (mode === '--child') runChild(childArgs);
else runParent();

/** One child: `--child W threads batch`; prints one JSON line of batches and peak probes. */
function runChild([name, threadsArg, batchArg]) {
  const { RNN, Tensor, setNumThreads } = require('../dist');
  const { _fmaPeak: fmaPeak, _coreRoundTrip: coreRoundTrip } = require('../dist/native').addon();
  const w = WORKLOADS[name];
  const threads = Number(threadsArg);
  const batch = Number(batchArg);
  const data = makeData(w);
  setNumThreads(threads);
  const peaks = [fmaPeak(200, threads)];
  const rnn = new RNN({ inputSize: w.D, hiddenSize: w.H, outputSize: w.K, cell: w.cell, seed: 7 });
  const x = w.inputs === 'tokens' ? Tensor.from(data.inputs, [w.T, w.B]) : Tensor.from(data.inputs, [w.T, w.B, w.D]);
  const y = Tensor.from(data.targets, [w.T, w.B]);
  const step = () => rnn.trainStep(x, y, STEP_OPTIONS).hT.dispose();
  for (let i = 0; i < 3; i++) step();
  const batches = [];
  const end = Date.now() + CHILD_SECONDS * 1000;
  while (Date.now() < end) {
    const before = coreRoundTrip(3000);
    const ms = [];
    for (let i = 0; i < batch; i++) {
      const t0 = process.hrtime.bigint();
      step();
      ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const after = coreRoundTrip(3000);
    batches.push({ before, after, ms: median(ms) });
  }
  peaks.push(fmaPeak(200, threads));
  process.stdout.write(`${JSON.stringify({ batches, peaks })}\n`);
}

function runParent() {
  const program = new Command()
    .name('npm run bench:placement --')
    .option('--workloads <list>', 'comma-separated workloads', 'C2,C3,L1,L2,G2')
    .option('--threads <n>', 'native threads', '2')
    .option('--minutes <m>', 'minutes per workload', '3')
    .option('--batch <n>', 'steps between two round-trip probes', '8')
    .parse();
  const opts = program.opts();
  const names = String(opts.workloads).split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (!WORKLOADS[n]) program.error(`unknown workload ${n} (have ${Object.keys(WORKLOADS).join(', ')})`);
  const threads = Number(opts.threads);
  const minutes = Number(opts.minutes);
  const batch = Number(opts.batch);
  if (!Number.isInteger(threads) || threads < 2) program.error(`--threads must be an integer of at least 2, got ${opts.threads}`);
  if (!(minutes > 0)) program.error(`--minutes must be positive, got ${opts.minutes}`);
  if (!Number.isInteger(batch) || batch < 1) program.error(`--batch must be a positive integer, got ${opts.batch}`);
  try {
    require('../dist').isa();
  } catch (err) {
    console.error(`bench:placement needs the built package: run \`npx node-gyp rebuild && npx tsc -p tsconfig.json\` first.\n${err.message}`);
    process.exit(1);
  }

  console.log(`bptt placement bench: ${threads} threads, ${minutes} min per workload, batches of ${batch} steps; together: round trip < ${TOGETHER_BELOW} ns before and after, apart: > ${APART_ABOVE} ns`);
  console.log('| workload | together ms | together % peak | batches | apart ms | apart % peak | batches | mixed | FMA peak GFLOP/s |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const name of names) {
    const together = [];
    const apart = [];
    const peaks = [];
    let mixed = 0;
    const end = Date.now() + minutes * 60_000;
    while (Date.now() < end) {
      const r = spawnSync(process.execPath, [__filename, '--child', name, String(threads), String(batch)], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`child for ${name} failed (status ${r.status}): ${r.stderr}`);
      const out = JSON.parse(r.stdout.trim().split('\n').pop());
      peaks.push(...out.peaks);
      for (const b of out.batches) {
        if (b.before < TOGETHER_BELOW && b.after < TOGETHER_BELOW) together.push(b.ms);
        else if (b.before > APART_ABOVE && b.after > APART_ABOVE) apart.push(b.ms);
        else mixed++;
      }
    }
    const peak = Math.max(...peaks);
    const gflop = flops(WORKLOADS[name]).dense / 1e9;
    const cells = (v) => (v.length === 0 ? ['—', '—', '0'] : [median(v).toFixed(2), `${((100 * gflop) / (median(v) / 1e3) / peak).toFixed(1)} %`, String(v.length)]);
    console.log(`| ${name} | ${cells(together).join(' | ')} | ${cells(apart).join(' | ')} | ${mixed} | ${peak.toFixed(1)} |`);
  }
  console.log('\nFLOPs: the dense count of bench/workloads.js. A placement that never came up shows —.');
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
