#!/usr/bin/env node
'use strict';
/**
 * `npm run bench [-- options]`: the training-step benchmark of issue 3.
 *
 * For each workload (bench/workloads.js) it times one training step (forward + full BPTT +
 * global-norm clip + SGD) of the native backend per ISA and thread count, of the pure-TS float64
 * reference backend, and with --peers of TF.js (cpu and wasm backends), side by side in one
 * benchmark.js Suite per workload. It reports median ms per step, GFLOP/s, % of the FMA peak
 * measured in the same run with the same thread count, and ratios; measures the peak memory of a
 * C3 step in a fresh process (bench/memory-probe.js); prints a table and writes
 * bench/results/<timestamp>.json.
 */
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { Command } = require('commander');
const Benchmark = require('benchmark');
const { WORKLOADS, STEP_OPTIONS, flops, stepMemory, makeData } = require('./workloads');

const program = new Command()
  .name('npm run bench --')
  .option('--workloads <list>', 'comma-separated workloads', 'C1,C2,C3,L1,L2,G2')
  .option('--isa <list>', 'comma-separated native ISAs (default: every one supportedIsas() lists)')
  .option('--threads <list>', 'comma-separated native thread counts', '1,2')
  .option('--quick', 'fewer samples and a shorter FMA probe')
  .option('--peers', 'add TF.js (cpu and wasm backends)')
  .option('--profile', 'also time forward, lossAndGradients and trainStep apart (native, best ISA)')
  .parse();
const opts = program.opts();
const list = (s) => String(s).split(',').map((x) => x.trim()).filter(Boolean);

let lib;
try {
  lib = require('../dist');
  lib.isa(); // loads the addon: fail here, with the build instructions, not in the middle of a suite
} catch (err) {
  console.error(`bench needs the built package: run \`npx node-gyp rebuild && npx tsc -p tsconfig.json\` first.\n${err.message}`);
  process.exit(1);
}
const { RNN, Tensor, setIsa, setNumThreads, supportedIsas } = lib;
const { _fmaPeak: fmaPeak, _coreRoundTrip: coreRoundTrip } = require('../dist/native').addon();

const workloadNames = list(opts.workloads);
for (const n of workloadNames) if (!WORKLOADS[n]) program.error(`unknown workload ${n} (have ${Object.keys(WORKLOADS).join(', ')})`);
const isas = opts.isa ? list(opts.isa) : supportedIsas();
for (const i of isas) if (!supportedIsas().includes(i)) program.error(`ISA ${i} is not supported here (have ${supportedIsas().join(', ')})`);
const threadCounts = list(opts.threads).map(Number);
for (const t of threadCounts) if (!Number.isInteger(t) || t < 1 || t > 64) program.error(`bad thread count ${t}`);

const QUICK = Boolean(opts.quick);
// benchmark.js settings per entry: maxTime in seconds, and at least minSamples samples.
const BENCH_OPTIONS = QUICK ? { maxTime: 0.5, minSamples: 3 } : { maxTime: 3, minSamples: 10 };
// A step slower than this is timed with process.hrtime instead: benchmark.js would spend minutes
// on its minimum sample count (the reference backend on C2/C3, TF.js on C3).
const SLOW_STEP_MS = 1000;
// Extra hrtime-timed steps of a slow entry: at most this many, and only while they fit in the budget.
const SLOW_MAX_STEPS = 3;
const SLOW_BUDGET_MS = QUICK ? 3000 : 15000;
// The reference backend's speed as measured (0.2 GFLOP/s on C3 and L1), and the longest step it gets.
const REFERENCE_FLOPS_PER_S = 0.2e9;
const REFERENCE_MAX_S = 60;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const msSince = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

/** The highest of a few probe runs: interference from other processes can only lower it. */
function measurePeak(threads) {
  const [runs, ms] = QUICK ? [2, 200] : [3, 500];
  let best = 0;
  for (let i = 0; i < runs; i++) best = Math.max(best, fmaPeak(ms, threads));
  return best;
}

/**
 * Nanoseconds for a cache line to travel to another core and back. On a VM the host may place the
 * two vCPUs on one die (~50-150 ns here) or on two (~300-500 ns), and every 2-thread step hands
 * data between them, so its time moves with this; each workload states it before and after.
 */
const roundTripNs = () => Math.round(coreRoundTrip(QUICK ? 5000 : 20000));

/**
 * What the machine gives each workload: the core-to-core round trip and, with more than one
 * thread timed, one short FMA probe on the most threads (the host may share our vCPUs with other
 * tenants for minutes at a time, which the best-of probes at the start and end do not show).
 */
function machineState() {
  const threads = Math.max(...threadCounts);
  return { roundTripNs: roundTripNs(), fmaGflops: threads > 1 ? +fmaPeak(200, threads).toFixed(1) : undefined };
}
const describeState = (s) => `round trip ${s.roundTripNs} ns${s.fmaGflops !== undefined ? `, ${Math.max(...threadCounts)}-thread FMA ${s.fmaGflops} GFLOP/s` : ''}`;

/**
 * The entries of one workload. Each has a label, the thread count its arithmetic runs on (for
 * "% of peak"), and prepare() → { step, dispose }, which sets any global state it needs (ISA,
 * threads, TF.js backend) and builds a fresh model with the same seed.
 */
function nativeEntry(w, data, kind, isa, threads) {
  return {
    impl: kind,
    isa,
    threads,
    prepare() {
      if (kind === 'native') {
        setIsa(isa);
        setNumThreads(threads);
      }
      const rnn = new RNN({ inputSize: w.D, hiddenSize: w.H, outputSize: w.K, cell: w.cell, seed: 7, backend: kind });
      const x = w.inputs === 'tokens' ? Tensor.from(data.inputs, [w.T, w.B]) : Tensor.from(data.inputs, [w.T, w.B, w.D]);
      const y = Tensor.from(data.targets, [w.T, w.B]);
      return {
        step: () => rnn.trainStep(x, y, STEP_OPTIONS).hT.dispose(),
        dispose: () => {
          x.dispose();
          y.dispose();
          rnn.dispose();
        },
      };
    },
  };
}

function tfjsEntry(w, data, tfjs, backend) {
  return {
    impl: `tfjs-${backend}`,
    isa: backend === 'wasm' ? `wasm${tfjs.wasm.simd ? '-simd' : ''}` : 'js',
    threads: 1, // neither backend runs more than one thread of arithmetic in Node
    prepare() {
      // Both backends were initialised in loadTfjs, so the switch completes synchronously.
      tfjs.tf.setBackend(backend);
      if (tfjs.tf.getBackend() !== backend) throw new Error(`TF.js backend ${backend} did not activate`);
      return tfjs.createStep(tfjs, w, data);
    },
  };
}

/** Times the first step, then decides: benchmark.js for fast entries, hrtime for slow ones. */
function probe(entry) {
  const s = entry.prepare();
  const t0 = process.hrtime.bigint();
  s.step();
  const first = msSince(t0);
  if (first <= SLOW_STEP_MS) {
    s.dispose();
    return null;
  }
  const samples = [];
  let spent = 0;
  while (samples.length < SLOW_MAX_STEPS && spent + first <= SLOW_BUDGET_MS) {
    const t = process.hrtime.bigint();
    s.step();
    samples.push(msSince(t));
    spent += samples[samples.length - 1];
  }
  s.dispose();
  // Steps after the first when any fit in the budget; else the first (its warm-up is small next to a > 1 s step).
  const used = samples.length ? samples : [first];
  return { samplesMs: used, method: `hrtime, ${used.length} step${used.length > 1 ? 's' : ''}${samples.length ? ' after 1 warm-up' : ''}` };
}

/** Runs the fast entries of a workload as one benchmark.js Suite; fills entry.samplesMs and entry.method. */
function runSuite(name, entries) {
  if (!entries.length) return;
  const suite = new Benchmark.Suite(name);
  for (const e of entries) {
    let current;
    suite.add(`${e.impl} ${e.isa} ${e.threads}t`, () => current.step(), {
      ...BENCH_OPTIONS,
      onStart: () => {
        current = e.prepare();
      },
      onComplete: function () {
        current.dispose();
        if (this.error) throw this.error;
        e.samplesMs = this.stats.sample.map((s) => s * 1e3);
        e.method = `benchmark.js, ${this.stats.sample.length} samples, ±${this.stats.rme.toFixed(1)}%`;
      },
    });
  }
  suite.run({ async: false });
}

/** Times forward, lossAndGradients and trainStep apart, to show the kernel work which phase dominates. */
function profile(w, data, isa, threads) {
  setIsa(isa);
  setNumThreads(threads);
  const rnn = new RNN({ inputSize: w.D, hiddenSize: w.H, outputSize: w.K, cell: w.cell, seed: 7 });
  const x = w.inputs === 'tokens' ? Tensor.from(data.inputs, [w.T, w.B]) : Tensor.from(data.inputs, [w.T, w.B, w.D]);
  const y = Tensor.from(data.targets, [w.T, w.B]);
  const disposeAll = (o) => Object.values(o).forEach((v) => (v instanceof Tensor ? v.dispose() : typeof v === 'object' && v && disposeAll(v)));
  const phases = {
    forward: () => disposeAll(rnn.forward(x)),
    lossAndGradients: () => disposeAll(rnn.lossAndGradients(x, y)),
    trainStep: () => rnn.trainStep(x, y, STEP_OPTIONS).hT.dispose(),
  };
  const out = { workload: w.name, isa, threads };
  for (const [phase, fn] of Object.entries(phases)) {
    fn(); // warm-up
    const times = [];
    const deadline = Date.now() + (QUICK ? 300 : 1500);
    while (times.length < 3 || (Date.now() < deadline && times.length < 200)) {
      const t0 = process.hrtime.bigint();
      fn();
      times.push(msSince(t0));
    }
    out[phase] = median(times);
  }
  x.dispose();
  y.dispose();
  rnn.dispose();
  return out;
}

/** Peak memory of a C3 step, in a fresh process so that earlier workloads don't set the high-water mark. */
function memoryProbe(isa, threads) {
  const out = execFileSync(process.execPath, ['--expose-gc', path.join(__dirname, 'memory-probe.js'), 'C3', isa, String(threads)], { encoding: 'utf8' });
  return JSON.parse(out);
}

// ---- formatting ----
const fmt = (x, digits) => (x === undefined || x === null || Number.isNaN(x) ? '' : x.toFixed(digits));
const fmtMs = (ms) => (ms < 1 ? `${(ms * 1e3).toFixed(1)} µs` : ms < 100 ? `${ms.toFixed(2)} ms` : ms < 10000 ? `${ms.toFixed(1)} ms` : `${(ms / 1e3).toFixed(2)} s`);
const MiB = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;
function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => (i < 3 || i === cells.length - 1 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  return [line(headers), widths.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

function gitCommit() {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: __dirname, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

async function main() {
  const started = new Date();
  const machine = {
    cpu: os.cpus()[0].model.trim(),
    logicalCpus: os.cpus().length,
    memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    loadavgAtStart: os.loadavg().map((x) => +x.toFixed(2)),
  };
  console.log(`bptt bench  ${started.toISOString()}  commit ${gitCommit() ?? '?'}  ${machine.cpu}, ${machine.logicalCpus} CPUs, Node ${machine.node}`);
  console.log(`native ISAs: ${isas.join(', ')}   threads: ${threadCounts.join(', ')}   ${QUICK ? 'quick' : 'full'} mode   load average ${machine.loadavgAtStart.join(' ')}`);
  if (machine.loadavgAtStart[0] > 0.5) console.log('note: the machine is busy (load average > 0.5); numbers and the FMA peak will be low');

  const peakThreads = [...new Set([1, ...threadCounts])];
  const peak = {};
  for (const t of peakThreads) peak[t] = measurePeak(t);
  console.log(`FMA peak (register-resident FMA loop, best of a few runs; probed again at the end): ${peakThreads.map((t) => `${t} thread${t > 1 ? 's' : ''} ${peak[t].toFixed(1)} GFLOP/s`).join(', ')}\n`);

  // Before anything large is allocated here: Linux carries a parent's RSS high-water mark into an
  // exec'd child's maxRSS, so a probe spawned late would report this process's peak, not its own.
  const memory = workloadNames.includes('C3') ? memoryProbe(isas[0], Math.max(...threadCounts)) : undefined;

  let tfjs;
  if (opts.peers) {
    const peers = require('./peers-tfjs');
    const loaded = await peers.loadTfjs();
    tfjs = { ...loaded, createStep: peers.createStep, backends: peers.BACKENDS };
    console.log(`TF.js ${loaded.version}: cpu backend (JS) and wasm backend (SIMD ${loaded.wasm.simd ? 'on' : 'off'}, threads ${loaded.wasm.threads ? 'on' : 'off'})\n`);
  }

  const results = [];
  const machineStates = {};
  for (const name of workloadNames) {
    const w = WORKLOADS[name];
    const data = makeData(w);
    const f = flops(w);
    const entries = [];
    for (const isa of isas) for (const t of threadCounts) entries.push(nativeEntry(w, data, 'native', isa, t));
    // The float64 reference runs at about 0.2 GFLOP/s: skipped where one step would take minutes.
    if (f.dense / REFERENCE_FLOPS_PER_S <= REFERENCE_MAX_S) entries.push(nativeEntry(w, data, 'reference', 'float64', 1));
    else console.log(`${name}: reference backend skipped (one step would take about ${Math.round(f.dense / REFERENCE_FLOPS_PER_S)} s)`);
    if (tfjs) for (const b of tfjs.backends) entries.push(tfjsEntry(w, data, tfjs, b));

    process.stdout.write(`${name} ${w.title} (${w.cell ?? 'tanh'}, T=${w.T} B=${w.B} D=${w.D} H=${w.H} K=${w.K}, ${w.inputs}): timing ${entries.length} implementations... `);
    const fast = [];
    for (const e of entries) {
      const slow = probe(e);
      if (slow) Object.assign(e, slow);
      else fast.push(e);
    }
    const state = { before: machineState() };
    runSuite(name, fast);
    state.after = machineState();
    machineStates[name] = state;
    console.log(`done\n  machine before: ${describeState(state.before)}; after: ${describeState(state.after)}`);

    for (const e of entries) {
      const ms = median(e.samplesMs);
      results.push({
        workload: name,
        impl: e.impl,
        isa: e.isa,
        threads: e.threads,
        medianMs: ms,
        meanMs: e.samplesMs.reduce((a, b) => a + b, 0) / e.samplesMs.length,
        samples: e.samplesMs.length,
        method: e.method,
        gflops: f.dense / ms / 1e6,
        actualGflops: f.actual / ms / 1e6,
        pctPeak: (100 * f.dense) / ms / 1e6 / peak[e.threads],
      });
    }
    // Ratios within the workload: speedup over the reference, and how many times slower a peer is
    // than our native step on its thread count (best ISA).
    const rows = results.filter((r) => r.workload === name);
    const ref = rows.find((r) => r.impl === 'reference');
    const bestNative = (t) => rows.filter((r) => r.impl === 'native' && r.threads === t).sort((a, b) => a.medianMs - b.medianMs)[0];
    for (const r of rows) {
      // No reference row where its step would take minutes (skipped above).
      if (ref) r.speedupVsReference = ref.medianMs / r.medianMs;
      const nat = bestNative(r.threads);
      if (r.impl.startsWith('tfjs') && nat) r.timesNative = r.medianMs / nat.medianMs;
    }
  }

  // The probe again: another process busy on a core during the first probe would otherwise
  // lower the peak and inflate every "% peak" of that thread count.
  const peakAtEnd = {};
  for (const t of peakThreads) {
    peakAtEnd[t] = measurePeak(t);
    if (Math.abs(peakAtEnd[t] - peak[t]) > 0.1 * Math.max(peak[t], peakAtEnd[t])) {
      console.log(`note: the ${t}-thread FMA peak moved from ${peak[t].toFixed(1)} to ${peakAtEnd[t].toFixed(1)} GFLOP/s during the run (other load?); using the higher`);
    }
    if (peakAtEnd[t] > peak[t]) {
      for (const r of results) if (r.threads === t) r.pctPeak *= peak[t] / peakAtEnd[t];
      peak[t] = peakAtEnd[t];
    }
  }

  // ---- report ----
  console.log('\nMedian ms per training step (forward + full BPTT + clip + SGD). GFLOP/s use the dense count');
  console.log('3·2·T·B·(G·D·H + G·H·H + H·K) (G gate blocks: 1 tanh, 4 LSTM, 3 GRU); "% peak" is against the FMA peak above for the same thread count.');
  const headers = ['workload', 'impl', 'isa', 'thr', 'median', 'GFLOP/s', '% peak', '× ref', '× native', 'method'];
  console.log(
    table(
      headers,
      results.map((r) => [r.workload, r.impl, r.isa, r.threads, fmtMs(r.medianMs), fmt(r.gflops, 1), fmt(r.pctPeak, 1), fmt(r.speedupVsReference, 1), r.timesNative ? `${fmt(r.timesNative, 1)} slower` : '', r.method]),
    ),
  );
  console.log('"× ref": speedup over the reference backend. "× native": a peer\'s time over our best native step on the same thread count.');
  for (const name of workloadNames) {
    const w = WORKLOADS[name];
    const f = flops(w);
    if (f.gatherSaving) {
      console.log(`${name}: ${(f.dense / 1e9).toFixed(4)} GFLOP dense count; token inputs make U·x a gather, so ${(f.actual / 1e9).toFixed(4)} GFLOP are actually computed (saving ${(f.gatherSaving / 1e9).toFixed(4)} GFLOP = ${((100 * f.gatherSaving) / f.dense).toFixed(1)} %).`);
    }
  }

  if (memory) {
    const m = memory;
    console.log(`\nPeak memory of a C3 step (fresh process, native ${m.isa}, ${m.threads} threads):`);
    console.log(`  must hold ${MiB(m.required.total)} = ${m.required.formula}`);
    console.log(`    params+grads ${MiB(m.required.parts.paramsAndGrads)}, states ${MiB(m.required.parts.states)}, logits ${MiB(m.required.parts.logits)}, inputs ${MiB(m.required.parts.inputs)}, targets+hT ${MiB(m.required.parts.targets + m.required.parts.hT)}`);
    console.log(`  RSS growth over the process before the model: after the 1st step ${MiB(m.rssGrowth.afterFirstStep)}, after ${m.steps} steps ${MiB(m.rssGrowth.afterSteps)}`);
    const le = m.peakGrowthIsUpperBound ? '≤ ' : '';
    console.log(`  high-water growth (maxRSS): ${le}${MiB(m.peakGrowth)} = ${le}${m.ratio.toFixed(2)}× what the step must hold (target ≤ 1.5×)`);
  }

  let profiles;
  if (opts.profile) {
    profiles = [];
    for (const name of workloadNames) for (const t of threadCounts) profiles.push(profile(WORKLOADS[name], makeData(WORKLOADS[name]), isas[0], t));
    console.log(`\nPhases (native ${isas[0]}, median ms): backward ≈ lossAndGradients − forward, clip+update ≈ trainStep − lossAndGradients`);
    console.log(
      table(
        ['workload', 'isa', 'thr', 'forward', 'lossAndGrad', 'trainStep', 'backward', 'clip+update'],
        profiles.map((p) => [p.workload, p.isa, p.threads, fmtMs(p.forward), fmtMs(p.lossAndGradients), fmtMs(p.trainStep), fmtMs(p.lossAndGradients - p.forward), fmtMs(p.trainStep - p.lossAndGradients)]),
      ),
    );
  }

  const targets = checkTargets(results, memory);
  if (targets.length) {
    console.log('\nIssue 3 targets (native, best ISA):');
    for (const t of targets) console.log(`  ${t.met ? 'met    ' : 'NOT met'}  ${t.target}: ${t.measured}`);
  }

  const file = path.join(__dirname, 'results', `${started.toISOString().replace(/[:.]/g, '-')}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const json = {
    date: started.toISOString(),
    commit: gitCommit(),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: { ...machine, loadavgAtEnd: os.loadavg().map((x) => +x.toFixed(2)) },
    options: { workloads: workloadNames, isas, threads: threadCounts, quick: QUICK, peers: Boolean(opts.peers), benchmark: BENCH_OPTIONS, stepOptions: STEP_OPTIONS },
    tfjs: tfjs ? { version: tfjs.version, wasm: tfjs.wasm } : undefined,
    fmaPeakGflops: peak,
    machineDuringWorkloads: machineStates,
    workloads: Object.fromEntries(workloadNames.map((n) => [n, { ...WORKLOADS[n], flops: flops(WORKLOADS[n]), memory: stepMemory(WORKLOADS[n]) }])),
    results,
    memory,
    profile: profiles,
    targets,
  };
  fs.writeFileSync(file, JSON.stringify(json, null, 2) + '\n');
  console.log(`\nwrote ${path.relative(process.cwd(), file)}`);
}

/** The issue's targets that this run measured, each with whether it is met. */
function checkTargets(results, memory) {
  const best = (wl, t) => results.filter((r) => r.workload === wl && r.impl === 'native' && r.threads === t && r.isa === isas[0])[0];
  const out = [];
  const c1 = best('C1', 1);
  if (c1) out.push({ target: 'C1 ≤ 60 µs per step, 1 thread', measured: fmtMs(c1.medianMs), met: c1.medianMs <= 0.06 });
  const c2 = best('C2', 2);
  if (c2) out.push({ target: 'C2 ≥ 70 % of peak, 2 threads', measured: `${c2.pctPeak.toFixed(1)} % (${fmtMs(c2.medianMs)})`, met: c2.pctPeak >= 70 });
  const c3a = best('C3', 1);
  const c3b = best('C3', 2);
  if (c3b) out.push({ target: 'C3 ≥ 80 % of peak, 2 threads', measured: `${c3b.pctPeak.toFixed(1)} % (${fmtMs(c3b.medianMs)})`, met: c3b.pctPeak >= 80 });
  if (c3a) out.push({ target: 'C3 ≥ 80 % of one core, 1 thread', measured: `${c3a.pctPeak.toFixed(1)} % (${fmtMs(c3a.medianMs)})`, met: c3a.pctPeak >= 80 });
  if (c3a && c3b) out.push({ target: 'C3 2 threads ≥ 1.8× 1 thread', measured: `${(c3a.medianMs / c3b.medianMs).toFixed(2)}×`, met: c3a.medianMs / c3b.medianMs >= 1.8 });
  if (memory) out.push({ target: 'C3 peak memory ≤ 1.5× what it must hold', measured: `${memory.ratio.toFixed(2)}×`, met: memory.ratio <= 1.5 });
  return out;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
